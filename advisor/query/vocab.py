"""The words the readers know: precisions and formats, frameworks, use cases, protocol cues, symptoms,
periods and the shapes of stated quantities. Strings, never figures."""

from __future__ import annotations

import re

from measurements.vocab import BENCH_PRECISIONS

# Hours per day, days per week and months per year are calendar definitions; days per month
# comes from the factors catalog (days_per_month).
_PERIOD_IN_DAYS = {"day": 1.0, "hour": 1 / 24, "minute": 1 / 1440, "second": 1 / 86400, "week": 7.0}


_BYTES = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}


_PRECISION_PHRASES: list[tuple[str, str]] = [
    # most specific first: the threshold decides what load_in_8bit means
    (r"llm_int8_threshold\s*=\s*0(?:\.0+)?(?![.\d])|threshold\s*=\s*0(?:\.0+)?(?![.\d])|int8[\s_-]*pure|pure[\s_-]*int8|纯\s*int8", "int8_pure"),
    (r"llm_int8_threshold\s*=\s*6(?:\.0+)?|threshold\s*=\s*6(?:\.0+)?|int8[\s_-]*(?:mixed|mix|default)|default[\s_-]*int8|llm\.int8\(?\)?|load_in_8bit(?:\s*=\s*true)?|\b8[\s-]?bit\b|8\s*位|混合\s*int8", "int8_mixed"),
    (r"\bnf4\b|load_in_4bit(?:\s*=\s*true)?|\b4[\s-]?bit\b|qlora(?:\s+weights)?|4\s*位|4\s*比特|bnb[\s_-]*4bit", "nf4"),
    (r"\bfp8\b|float8(?:weightonlyconfig)?|\be4m3\b|\be5m2\b", "fp8"),
    (r"\bbf16\b|bfloat16", "bf16"),
    (r"\bfp16\b|float16|half[\s-]precision|\b16[\s-]?bit\b|半精度", "fp16"),
    (r"\bfp32\b|float32|full[\s-]precision|\b32[\s-]?bit\b|单精度", "fp32"),
]


_PRECISION_RES = [(re.compile(p), k) for p, k in _PRECISION_PHRASES]


# which FP8 implementation a question names (read only when it names fp8): torchao's config names,
# and the words people use for them
_FP8_MODE_PHRASES: list[tuple[str, str]] = [
    (r"float8weightonlyconfig|weight[\s_-]*only|仅权重|只量化权重", "weight_only"),
    (r"float8dynamicactivation\w*|dynamic[\s_-]*(?:activation|act\b|quant)|\bdynamic[\s_-]+(?:fp8|float8)|"
     r"(?:fp8|float8)[\s_-]+dynamic\b|activations?\s*(?:\+|and|&)\s*weights?|动态\s*(?:fp8|量化)|fp8\s*动态", "dynamic"),
]
_FP8_MODE_RES = [(re.compile(p), k) for p, k in _FP8_MODE_PHRASES]


_BAD_PRECISION = {
    "int4": "Did you mean 'nf4' (4-bit NormalFloat via bitsandbytes)?",
    "fp4": "Did you mean 'nf4' (4-bit NormalFloat via bitsandbytes)?",
    "gptq": "GPTQ is not measured yet; the nearest measured 4-bit format is 'nf4'.",
    "awq": "AWQ is not measured yet; the nearest measured 4-bit format is 'nf4'.",
    "tf32": "TF32 is a matmul mode, not a storage format; use 'fp32' or 'fp16'.",
    "int8": "'int8' is ambiguous: use 'int8_mixed' (load_in_8bit default, threshold 6.0) or 'int8_pure' (llm_int8_threshold=0.0).",
}


_ACCEPTED_PRECISIONS = ", ".join(p + (" (alias int8_default)" if p == "int8_mixed" else "") for p in BENCH_PRECISIONS)


# quantisation formats users name that have no measurements: (pattern, name shown, nearest measured format)
_UNMEASURED_FORMATS: list[tuple[str, str, str]] = [
    (r"\bgguf\s*q\d(?:_k)?(?:_[msl0])?\b|\bq[2-8]_k(?:_[msl])?\b|\bq[48]_0\b", "GGUF (llama.cpp k-quants)", "nf4"),
    (r"\bgptq\b", "GPTQ", "nf4"),
    (r"\bawq\b", "AWQ", "nf4"),
    (r"\bexl2\b", "EXL2", "nf4"),
    (r"\bhqq\b", "HQQ", "nf4"),
    (r"\b(?:nv|mx)fp4\b|\bfp4\b", "FP4", "nf4"),
    (r"\bw4a16\b|\bint[\s-]?4\b|\b4[\s-]?bit\s+int(?:eger)?\b", "INT4", "nf4"),
    (r"\bw8a8\b|\bsmoothquant\b", "W8A8 (SmoothQuant)", "int8_mixed"),
]


_UNMEASURED_RES = [(re.compile(p), n, k) for p, n, k in _UNMEASURED_FORMATS]


_ALL_PRECISIONS_RE = re.compile(
    r"(?:all|every|each|the)\s+(?:\d+|five|four)?\s*(?:precisions|quantizations|quantisation|quantization methods|formats)"
    r"|\b(?:5|five)\s+precisions|所有\s*(?:精度|量化)|(?:5|五)\s*种\s*(?:精度|量化)|各种\s*(?:精度|量化)"
)


_USE_CASE_RES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"offline|batch[\s-]?(?:job|processing|inference)|bulk|summari[sz]e\s+[\d,]+|process(?:ing)?\s+[\d,.]+\s*(?:k|m|million)?\s*(?:documents|docs|files)|离线|批处理|批量处理"), "offline_batch"),
    # a bare "chat" too (the defaults line tells users to say it), but not a model name's "-chat" suffix
    (re.compile(r"interactive|chat\s?bot|chat\s+app|(?<![-_\w])chat(?:ting)?\b(?![-_])|real[\s-]?time|聊天|对话|交互"),
     "interactive_chat"),
    (re.compile(r"production|\bapi\b|serv(?:e|ing)|endpoint|deploy(?:ment)?\s+for\s+users|线上|生产|服务"), "production_api"),
]


_ARCH_WORDS = {"blackwell": "Blackwell", "ada": "Ada Lovelace", "ada lovelace": "Ada Lovelace", "ampere": "Ampere",
               "hopper": "Hopper", "volta": "Volta", "turing": "Turing"}


_PROTOCOL_CUES: dict[str, list[str]] = {
    "compare": [r"\bcompare", r"\bcomparison", r"\bvs\.?\b", r"\bversus\b", r"side[\s-]by[\s-]side", r"对比", r"比较",
                r"which\s+(?:precision|quantization|gpu|batch)", r"哪个(?:精度|量化|显卡|更)"],
    "diagnose": [r"\b(?:usage|consumption|energy|power|bill|costs?)\b[^.?!]{0,30}\b(?:high|huge|crazy|insane|through the roof)",
                 r"\bslow", r"\bbill\b.*\b(?:high|crazy|huge|insane)", r"(?:high|crazy|huge|insane)\b.*\bbill\b",
                 r"\bhelp\b(?!\s+(?:us|me)\s+(?:pick|choose|decide|select|find|figure|plan|estimate|size|compare))",
                 r"out\s+of\s+memory|\boom\b|显存不足|爆显存", r"\bburn", r"\boverheat", r"too\s+(?:much|high|hot)", r"\bproblem", r"\bwrong\b",
                 r"\bdiagnos", r"\bwhy\s+(?:is|does)\s+my", r"\bissue\b", r"\bsluggish", r"\blow\s+throughput",
                 # "is this wasteful?" asks about the stated setup (not "the least wasteful config")
                 r"\b(?:is|are|am)\s+(?:this|that|it|my|our|i|we)\b[^.?!]{0,60}\b(?:wasteful|wasting|inefficient)",
                 r"慢", r"高得", r"离谱", r"怎么办", r"诊断", r"太高", r"很高", r"问题", r"烫", r"浪费吗", r"是否浪费", r"在浪费"],
    "estimate": [r"how\s+much", r"\bcost", r"\bprice", r"\bspend", r"\bbudget", r"\bkwh\b", r"\bco2\b", r"\bcarbon",
                 r"\bemission", r"\bper\s+month\b", r"\bmonthly\b", r"\bestimat", r"多少钱", r"花多少", r"成本", r"费用",
                 r"电费", r"碳排", r"估算", r"要花", r"花费"],
    "optimize": [r"greenest", r"\bbest\b", r"\boptimal", r"\boptimi[sz]", r"\brecommend", r"\bdeploy", r"\bshould\s+i",
                 r"\bconfig(?:uration)?\b", r"most\s+efficient", r"\bsetup\b", r"最省", r"最佳", r"推荐", r"部署", r"应该",
                 r"最优", r"优化", r"怎么配置", r"最环保"],
    "explain": [r"\bwhy\b", r"\bexplain(?:\s+(?:to\s+me\s+)?(?:why|how|what|when|the\s+(?:difference|reason|paradox|mechanism|trade-?off)))|^\s*explain\b", r"how\s+come", r"为什么", r"为何", r"解释", r"原因"],
    "audit": [r"\baudit\b", r"review\s+(?:my|this)\s+code", r"审查代码", r"代码审查"],
    "plan": [r"fine[\s-]?tun", r"\bq?lora\b", r"\btrain(?:ing)?\b", r"微调", r"训练"],
    # "is NF4 worth it?", "does 4-bit save energy?": a yes/no question on one format, answered by
    # comparing it with 16-bit at the same batch size (not by a batch-size recommendation)
    "worth": [r"\bworth\b", r"\bpays?\s+off\b", r"\bpay\s+for\s+itself\b",
              r"\b(?:does|do|will|would|can|could)\b[^.?!]{0,60}\b(?:save|saves|reduce|reduces|cut|cuts|lower|lowers)\s+"
              r"(?:\w+\s+){0,2}(?:energy|power|electricity|joules|the\s+bill|costs?)\b",
              # "should I use 4-bit ... to save energy?": the same yes/no question on one format
              r"\b(?:use|using|switch(?:ing)?\s+to|go\s+with|try)\b[^.?!]{0,60}\bto\s+(?:save|reduce|cut|lower)\s+"
              r"(?:\w+\s+){0,2}(?:energy|power|electricity|joules|the\s+bill|costs?)\b",
              r"值得", r"划算", r"省电吗", r"省不省", r"能不能省", r"能省电", r"是否省电", r"有必要"],
}


# one alternation per protocol: a single compile each keeps `ecolobster ask` quick to start
_CUE_RES = {k: [re.compile("|".join(f"(?:{p})" for p in v))] for k, v in _PROTOCOL_CUES.items()}


_SYMPTOM_RES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bslow|sluggish|low\s+throughput|tok(?:ens)?/s\s+only|only\s+(?:(?:does|do|gets?|gives?|reach(?:es)?|manages?)\s+)?[\d.]+\s*t(?:ok|/s)|慢"), "slow"),
    (re.compile(r"\bbill\b|\bcost|expensive|电费|账单|贵"), "high_bill"),
    (re.compile(r"power\s+(?:draw\s+)?(?:is\s+)?(?:high|huge)|hot\b|overheat|high\s+power|功耗|发热|烫"), "high_power"),
    (re.compile(r"energy\s+(?:usage\s+)?(?:seems\s+)?(?:really\s+)?(?:high|huge)|burn|耗电|能耗"), "high_energy"),
    (re.compile(r"out\s+of\s+memory|\boom\b|cuda\s+out|显存不足|爆显存"), "oom"),
]


_PCT_RE = re.compile(r"\bp(\d{2}(?:\.\d+)?)\b|(\d{2}(?:\.\d+)?)(?:th|%)?\s*percentile|百分位\s*(\d{2})|(\d{2})\s*分位")


_PERIOD_RE = (r"(?:\s*(?:(?:per|/|an?|each|every|in\s+an?|每)\s*(?:single\s+)?)?(second|secs?|s|minute|mins?|month|mo|"
              r"days?|hours?|hrs?|h|weeks?|wk|years?|yr|秒|秒钟|分钟|月|天|日|小时|周|年|daily|monthly|hourly|weekly|"
              r"yearly|annually|per\s+annum)(?![a-z0-9]))?")


_PERIOD_WORD = {"month": "month", "mo": "month", "月": "month", "monthly": "month",
                "day": "day", "days": "day", "daily": "day", "天": "day", "日": "day",
                "hour": "hour", "hours": "hour", "hr": "hour", "hrs": "hour", "h": "hour", "hourly": "hour", "小时": "hour",
                "week": "week", "weeks": "week", "wk": "week", "weekly": "week", "周": "week",
                "year": "year", "years": "year", "yr": "year", "yearly": "year", "annually": "year", "per annum": "year",
                "年": "year", "second": "second", "sec": "second", "secs": "second", "s": "second", "秒": "second",
                "秒钟": "second", "minute": "minute", "min": "minute", "mins": "minute", "分钟": "minute"}


_LEAD_PERIOD_RE = (r"(?:(?:每|一个?)\s*(月|天|日|小时|周|年|秒|秒钟|分钟)|(?:per|every|each|a)\s+(month|day|hour|week|year|"
                   r"second|minute))\s*(?:有|约|大约|大概|处理|接收|收到)?\s*")


_GPUISH_RE = re.compile(
    r"\b(?:rtx|gtx|tesla|quadro|titan|radeon|instinct|gaudi)\s*-?\s*(?:rx\s*|pro\s*)?[a-z]*\d{2,4}\s*(?:ti|super|xtx|xt|x|d)?\b"
    r"|\brx\s*\d{4}\s*(?:xtx|xt)?\b"
    r"|\bmi\d{2,3}[a-z]?\b|\b[abhlv]\d{2,3}[a-z]?\b|\bb200\b|\bgb200\b|\bl40s?\b"
)


_COUNT_WORDS = {"one": 1, "single": 1, "a single": 1, "two": 2, "dual": 2, "a pair of": 2, "pair of": 2, "twin": 2,
                "three": 3, "four": 4, "quad": 4, "six": 6, "eight": 8, "sixteen": 16, "两": 2, "双": 2, "四": 4, "八": 8}


_COUNT_RE = r"(\d{1,5}|a single|a pair of|pair of|single|one|two|dual|twin|three|four|quad|six|eight|sixteen|两|双)"


# a word before "GPU" that names no GPU we know ("mars gpu"): an unknown GPU, never a default one
_NOT_A_GPU_NAME = set(["a", "an", "the", "my", "our", "your", "their", "his", "her", "its", "this", "that", "these", "those", "one", "single", "same", "each", "per", "any", "every", "which", "what", "whose", "another", "other", "different", "new", "old", "older", "newer", "modern", "current", "latest", "desktop", "laptop", "gaming", "server", "workstation", "dedicated", "shared", "home", "free", "spare", "extra", "consumer", "datacenter", "data-center", "cloud", "local", "remote", "big", "small", "large", "tiny", "cheap", "cheaper", "cheapest", "best", "better", "fastest", "faster", "slower", "slowest", "more", "fewer", "multiple", "several", "many", "few", "some", "all", "no", "only", "first", "second", "third", "right", "wrong", "good", "bad", "nvidia", "amd", "intel", "rented", "rent", "own", "existing", "available", "strong", "weak", "powerful", "modest", "high-end", "low-end", "mid-range", "entry-level", "budget", "decent", "same-size", "whole", "full", "entire", "typical", "standard", "different-size", "integrated", "discrete", "external", "internal", "virtual", "physical", "bare", "multi", "single-gpu", "multi-gpu", "per-gpu", "on", "of", "in", "for", "with", "to", "from", "at", "by", "as", "is", "are", "was", "be", "and", "or", "not", "my-own", "of-the", "24gb", "16gb", "48gb", "80gb", "vram", "memory", "enough", "idle", "hot", "blackwell", "hopper", "ampere", "ada", "lovelace", "turing", "volta", "pascal"])


_US_PRONOUN_RE = re.compile(r"\b(?:tell|told|tells|help|helps|let|lets|give|gives|gave|show|shows|for|to|with|of|from|"
                            r"by|among|charge|charges|charged|cost|costs|bill|bills|billed)\s+us\b")


# serving frameworks as users name them -> measurements.schema.FRAMEWORKS; the most specific first
# (pattern, framework, the catalog key of the note the reading adds, if any)
_FRAMEWORK_PHRASES: list[tuple[str, str, str | None]] = [
    (r"tensorrt[\s_-]*llm|trt[\s_-]*llm|\btensorrt\b|triton[\s-]+(?:inference[\s-]+)?server", "trt-llm", None),
    (r"\bvllm\b", "vllm", None),
    (r"\bsglang\b", "sglang", None),
    (r"text[\s-]*generation[\s-]*inference|\btgi\b", "tgi", None),
    (r"llama[\s._-]?cpp|llamacpp|\bgguf\b", "llama.cpp", None),
    (r"\bollama\b", "llama.cpp", "reading.ollama"),  # the note: a message catalog key
    (r"(?:hf|hugging\s*face|transformers)[^.?!,]{0,30}continuous[\s-]*batching|continuous[\s-]*batching[^.?!,]{0,30}"
     r"(?:hf|hugging\s*face|transformers)", "hf-continuous-batching", None),
    (r"static[\s_-]*cache|cuda[\s-]*graphs?|torch\.compile|torch\s+compile", "hf-static-cache", None),
    (r"hugging\s*face\s+transformers|\bhf\s+transformers|\btransformers\b|\bhf\s+generate|\.generate\(\)|"
     r"model\.generate|\bhf\s+eager|eager\s+mode", "hf-eager", None),
]


_FRAMEWORK_RES = [(re.compile(p), k, note) for p, k, note in _FRAMEWORK_PHRASES]


# frameworks whose kernels run compiled (CUDA graphs, fused kernels): the FP8 eager-mode trap does not apply
_COMPILED_FRAMEWORKS = ("vllm", "sglang", "tgi", "trt-llm", "hf-static-cache")


# what a stated quantity looks like: a number with a unit, or money
_LEFTOVER_RE = re.compile(
    r"(?:[$€£¥]\s*(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:\s*(?:k|m|million|thousand|/\s*[a-z]+))?)"
    r"|(?<![\w.])(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?\s*(?:k|m|b|thousand|million|billion|万|亿)?\s*"
    r"(?:tokens?|toks?|tok/s|ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|"
    r"gb|tb|mb|gib|w|kw|mw|watts?|kwh|mwh|%|percent|users?|requests?|calls?|queries|messages|gpus?|nodes?|replicas?|"
    r"servers?|instances?|epochs?|examples?|documents?|docs|pages|files|images|usd|dollars?|eur|euros?|yuan|rmb|元|"
    r"cents?|gco2|kgco2|tco2|tonnes?|秒|毫秒|分钟|小时|天|个月|年|块|张|台|用户|请求|条|次|字)(?![a-z])"
)
