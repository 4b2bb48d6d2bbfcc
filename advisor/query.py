"""Understanding a question: free text (English or Chinese) or structured fields -> a validated Query.

The parser is deliberately rule-based (regular expressions over a normalised text plus catalog
lookups): it is fast, deterministic, explains every assumption it makes, and never crashes on odd
input. What it cannot understand becomes a `QueryError` whose messages say what was wrong and
what is accepted.

Public API (other modules code against these names):
- `Context`: the slots carried from one question to the next (the chat's follow-ups).
- `Query`: a Context plus the protocol, what was defaulted, warnings and unit conversions.
- `QueryError(ValueError)` with `.errors: list[str]`.
- `parse(text, context=None, protocol=None) -> Query` (`protocol` forces the protocol instead of
  reading it from the words) and `from_fields(protocol, **slots) -> Query`.
"""

from __future__ import annotations

import contextlib
import math
import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from measurements.schema import PRECISIONS, Framework, Precision

UseCase = Literal["production_api", "interactive_chat", "offline_batch"]
CompareAxis = Literal["precision", "gpu", "batch_size", "model_size"]
QueryProtocol = Literal["optimize", "diagnose", "compare", "estimate", "audit", "plan"]
Lang = Literal["en", "zh"]

USE_CASES: tuple[str, ...] = ("production_api", "interactive_chat", "offline_batch")
QUERY_PROTOCOLS: tuple[str, ...] = ("optimize", "diagnose", "compare", "estimate", "audit", "plan")
USE_CASE_LABEL = {
    "production_api": "production API",
    "interactive_chat": "interactive chat",
    "offline_batch": "offline batch processing",
}
PRECISION_LABEL = {
    "fp32": "FP32",
    "fp16": "FP16",
    "bf16": "BF16",
    "fp8": "FP8 (torchao, eager)",
    "nf4": "NF4 (4-bit)",
    "int8_mixed": "INT8 mixed (load_in_8bit default)",
    "int8_pure": "INT8 pure (threshold=0.0)",
}
# The GPU assumed when none is named: the seed's parameter guide picks the most common consumer
# GPU it measured. A catalog key, not a figure.
DEFAULT_GPU = "rtx4090d"
DEFAULT_PRECISION = "fp16"
DEFAULT_USE_CASE = "production_api"
DEFAULT_REGION = "us"

# Unit definitions (not measurements): decimal multipliers and the mean Gregorian month.
_MULT = {
    "k": 1e3, "thousand": 1e3, "千": 1e3,
    "m": 1e6, "mn": 1e6, "million": 1e6, "百万": 1e6, "mil": 1e6,
    "b": 1e9, "bn": 1e9, "billion": 1e9,
    "万": 1e4, "wan": 1e4, "千万": 1e7, "亿": 1e8, "yi": 1e8,
}
# Hours per day, days per week and months per year are calendar definitions; days per month
# comes from the factors catalog (days_per_month).
_PERIOD_IN_DAYS = {"day": 1.0, "hour": 1 / 24, "week": 7.0}
_BYTES = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}


class QueryError(ValueError):
    """The question (or the fields) cannot be answered as given; `errors` says why, one per item."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors) or ["the question could not be understood"]
        super().__init__("; ".join(self.errors))


class Context(BaseModel):
    """What the user has told us so far: only values they stated (never defaults), so a follow-up
    like "and on an A800?" keeps the model and precision and replaces the GPU."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="catalog key, or the name as typed when not in the catalog")
    model_params_b: float | None = Field(default=None, gt=0)
    gpu: str | None = Field(default=None, description="GPU catalog key")
    gpu_count: int | None = Field(default=None, ge=1, description="GPUs serving one replica (tensor parallel size)")
    framework: Framework | None = Field(default=None, description="serving framework / regime")
    precision: Precision | None = None
    batch_size: int | None = None
    prompt_tokens: int | None = None
    gen_tokens: int | None = None
    requests_per_month: float | None = Field(default=None, ge=0)
    tokens_per_month: float | None = Field(default=None, ge=0, description="generated tokens per month")
    job_tokens: float | None = Field(default=None, ge=0, description="a one-off job, in tokens")
    hours_per_day: float | None = Field(default=None, gt=0, le=24)
    workload: str | None = Field(default=None, description="the workload as the user stated it")
    region: str | None = Field(default=None, description="region catalog key")
    price_usd_kwh: float | None = Field(default=None, gt=0)
    grid_gco2_kwh: float | None = Field(default=None, ge=0)
    pue: float | None = Field(default=None, ge=1)
    use_case: UseCase | None = None
    itl_target_ms: float | None = Field(default=None, gt=0, description="per-token latency target (inter-token latency)")
    itl_percentile: float | None = Field(default=None, gt=0, le=100, description="percentile the ITL target applies to")
    e2e_target_s: float | None = Field(default=None, gt=0, description="end-to-end latency target per answer")
    lang: Lang | None = None
    last_protocol: QueryProtocol | None = None


SLOTS: tuple[str, ...] = tuple(k for k in Context.model_fields if k not in ("lang", "last_protocol"))


class Query(Context):
    """A validated question: every slot needed to answer is filled (stated or defaulted)."""

    protocol: QueryProtocol
    text: str = ""
    defaults_applied: list[str] = Field(default_factory=list, description="human-readable: slot, value, why")
    defaulted: list[str] = Field(default_factory=list, description="names of the slots that were defaulted")
    warnings: list[str] = Field(default_factory=list)
    conversions: list[str] = Field(default_factory=list, description="unit conversions made, shown to the user")
    # what the question is about, beyond the configuration
    compare_axis: CompareAxis = "precision"
    compare_precisions: list[str] = Field(default_factory=list)
    compare_gpus: list[str] = Field(default_factory=list)
    compare_batch_sizes: list[int] = Field(default_factory=list)
    explain: bool = Field(default=False, description="a 'why' question: answer with the evidence and the mechanism")
    symptoms: list[str] = Field(default_factory=list, description="slow, high_bill, high_power, high_energy, oom")
    reported_tok_s: float | None = None
    reported_power_w: float | None = None
    reported_j_per_1k_tok: float | None = None
    nightly: bool = False
    compiled: bool = Field(default=False, description="a compiled serving path (vLLM, SGLang, torch.compile)")
    model_name: str | None = Field(default=None, description="display name of the model")
    model_known: bool = Field(default=False, description="the model is in the catalog")
    not_understood: list[str] = Field(
        default_factory=list, description="facts the user stated that could not be used (shown before the answer)"
    )

    def to_context(self) -> Context:
        """The slots the user stated, for the next question."""
        stated = {k: getattr(self, k) for k in SLOTS if k not in self.defaulted}
        return Context(**stated, lang=self.lang, last_protocol=self.protocol)


# ---------------------------------------------------------------------------------------------
# text helpers

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10**4, "亿": 10**8}


def _cn_to_int(s: str) -> int | None:
    """Chinese numerals ("一百万", "三千", "十") -> int; None when `s` is not one."""
    if not s or any(c not in _CN_DIGITS and c not in _CN_UNITS and c not in _CN_BIG for c in s):
        return None
    total, section, digit = 0, 0, None
    for c in s:
        if c in _CN_DIGITS:
            digit = _CN_DIGITS[c]
        elif c in _CN_UNITS:
            section += (digit if digit is not None else 1) * _CN_UNITS[c]
            digit = None
        else:
            section += digit or 0
            total = (total + section) * _CN_BIG[c]
            section, digit = 0, None
    return total + section + (digit or 0)


_CN_NUM_RE = re.compile(r"[零〇一二两三四五六七八九十百千]+(?:[万亿][零〇一二两三四五六七八九十百千]*)*[万亿]?")


def _replace_cn_numerals(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        s = m.group(0)
        # keep a trailing 万/亿 as a multiplier word so "一百万字" reads like "100万字"
        tail = ""
        if s[-1] in _CN_BIG and len(s) > 1:
            s, tail = s[:-1], s[-1]
        if s in ("一", "两") and not tail:  # "一个", "一下": an article, not a quantity
            return m.group(0)
        v = _cn_to_int(s)
        return f"{v}{tail}" if v is not None else m.group(0)

    return _CN_NUM_RE.sub(sub, text)


def normalize_text(text: str) -> str:
    """NFKC (full-width -> ASCII), lower case, Chinese numerals -> digits, CJK spaced from Latin."""
    t = unicodedata.normalize("NFKC", text or "")
    t = t.replace("\u3000", " ").lower()
    t = _replace_cn_numerals(t)
    # a space between CJK and Latin/digits, so "在RTX 5090上" reads as words (a loop: a regex with
    # CJK ranges costs milliseconds to compile in every fresh process)
    out: list[str] = []
    prev = ""
    for ch in t:
        if prev and ((_is_cjk(prev) and (ch.isascii() and (ch.isalnum() or ch == "$")))
                     or (_is_cjk(ch) and prev.isascii() and (prev.isalnum() or prev in "%)"))):
            out.append(" ")
        out.append(ch)
        prev = ch
    return " ".join("".join(out).split())


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u4dbf" or "\u4e00" <= ch <= "\u9fff"


def has_cjk(text: str) -> bool:
    return any(_is_cjk(ch) for ch in text)


# a number that does not start inside a word ("a800" holds no quantity)
_NUM = r"(?<![a-z0-9_.])(\d[\d,]*(?:\.\d+)?|\.\d+)"
_MULT_RE = r"(?:\s*(thousand|million|billion|mil|mn|bn|k|m|b|千万|百万|万|亿|千|wan|yi)(?![a-z]))?"


def _number(num: str, mult: str | None) -> float:
    v = float(num.replace(",", ""))
    return v * _MULT.get((mult or "").strip(), 1.0)


def _fmt(v: float) -> str:
    """A readable number for conversion lines."""
    if v >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:,.3g}"


def _mentions(text: str, *words: str) -> bool:
    """A cheap substring test that decides whether a (costly to compile) pattern is worth trying."""
    return any(w in text for w in words)


def _blank(text: str, m: re.Match[str]) -> str:
    """Remove a matched span so later rules do not read it twice."""
    return text[: m.start()] + " " * (m.end() - m.start()) + text[m.end():]


# ---------------------------------------------------------------------------------------------
# vocabularies (strings, not figures)

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
_BAD_PRECISION = {
    "int4": "Did you mean 'nf4' (4-bit NormalFloat via bitsandbytes)?",
    "fp4": "Did you mean 'nf4' (4-bit NormalFloat via bitsandbytes)?",
    "gptq": "GPTQ is not measured yet; the nearest measured 4-bit format is 'nf4'.",
    "awq": "AWQ is not measured yet; the nearest measured 4-bit format is 'nf4'.",
    "tf32": "TF32 is a matmul mode, not a storage format; use 'fp32' or 'fp16'.",
    "int8": "'int8' is ambiguous: use 'int8_mixed' (load_in_8bit default, threshold 6.0) or 'int8_pure' (llm_int8_threshold=0.0).",
}
_ACCEPTED_PRECISIONS = "fp16, bf16, fp32, fp8, nf4, int8_mixed (alias int8_default), int8_pure"

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
                 r"\bhelp\b", r"\bburn", r"\boverheat", r"too\s+(?:much|high|hot)", r"\bproblem", r"\bwrong\b",
                 r"\bdiagnos", r"\bwhy\s+(?:is|does)\s+my", r"\bissue\b", r"\bsluggish", r"\blow\s+throughput",
                 r"慢", r"高得", r"离谱", r"怎么办", r"诊断", r"太高", r"很高", r"问题", r"烫"],
    "estimate": [r"how\s+much", r"\bcost", r"\bprice", r"\bspend", r"\bbudget", r"\bkwh\b", r"\bco2\b", r"\bcarbon",
                 r"\bemission", r"\bper\s+month\b", r"\bmonthly\b", r"\bestimat", r"多少钱", r"花多少", r"成本", r"费用",
                 r"电费", r"碳排", r"估算", r"要花", r"花费"],
    "optimize": [r"greenest", r"\bbest\b", r"\boptimal", r"\boptimi[sz]", r"\brecommend", r"\bdeploy", r"\bshould\s+i",
                 r"\bconfig(?:uration)?\b", r"most\s+efficient", r"\bsetup\b", r"最省", r"最佳", r"推荐", r"部署", r"应该",
                 r"最优", r"优化", r"怎么配置", r"最环保"],
    "explain": [r"\bwhy\b", r"\bexplain", r"how\s+come", r"为什么", r"为何", r"解释", r"原因"],
    "audit": [r"\baudit\b", r"review\s+(?:my|this)\s+code", r"审查代码", r"代码审查"],
    "plan": [r"fine[\s-]?tun", r"\blora\b", r"\bqlora\b.*\b(?:or|vs)\b", r"\btrain(?:ing)?\b", r"微调", r"训练"],
}
# one alternation per protocol: a single compile each keeps `ecolobster ask` quick to start
_CUE_RES = {k: [re.compile("|".join(f"(?:{p})" for p in v))] for k, v in _PROTOCOL_CUES.items()}

_SYMPTOM_RES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bslow|sluggish|low\s+throughput|tok(?:ens)?/s\s+only|only\s+[\d.]+\s*tok|慢"), "slow"),
    (re.compile(r"\bbill\b|\bcost|expensive|电费|账单|贵"), "high_bill"),
    (re.compile(r"power\s+(?:draw\s+)?(?:is\s+)?(?:high|huge)|hot\b|overheat|high\s+power|功耗|发热|烫"), "high_power"),
    (re.compile(r"energy\s+(?:usage\s+)?(?:seems\s+)?(?:really\s+)?(?:high|huge)|burn|耗电|能耗"), "high_energy"),
    (re.compile(r"out\s+of\s+memory|\boom\b|cuda\s+out|显存不足|爆显存"), "oom"),
]


# ---------------------------------------------------------------------------------------------
# catalog access (lazy, cached in measurements.catalog)


def _catalog():
    from measurements import catalog

    return catalog


def _factor(key: str) -> float:
    return _catalog().factor(key)


def _defaults() -> dict[str, int]:
    f = _catalog().factors()
    out: dict[str, int] = {}
    for slot, key in (("batch_size", "default_batch_size"), ("prompt_tokens", "default_prompt_tokens"),
                      ("gen_tokens", "default_gen_tokens"), ("max_batch_size", "max_batch_size")):
        if key in f:
            out[slot] = int(f[key].value)
    return out


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9._/+-]*[a-z0-9+]|[a-z0-9]", text)


def _ngrams(tokens: list[str], n_max: int = 4) -> list[tuple[int, int, str]]:
    out = []
    for i in range(len(tokens)):
        for n in range(min(n_max, len(tokens) - i), 0, -1):
            out.append((i, i + n, " ".join(tokens[i: i + n])))
    return out


def _find_in_index(text: str, idx: dict[str, Any], min_len: int = 3) -> list[Any]:
    """Catalog entries named in `text`, longest names first, in reading order, without overlaps."""
    cat = _catalog()
    toks = _tokens(text)
    taken: set[int] = set()
    hits: list[tuple[int, Any]] = []
    grams = sorted(_ngrams(toks), key=lambda g: -(g[1] - g[0]) * 1000 - len(g[2]))
    for start, end, gram in grams:
        if any(i in taken for i in range(start, end)):
            continue
        key = cat.norm(gram)
        if len(key) < min_len:
            continue
        entry = idx.get(key)
        if entry is None:
            continue
        taken.update(range(start, end))
        hits.append((start, entry))
    hits.sort(key=lambda h: h[0])
    seen: list[Any] = []
    for _, e in hits:
        if e not in seen:
            seen.append(e)
    return seen


# ---------------------------------------------------------------------------------------------
# the parser


class _Draft:
    """Mutable state while reading one question."""

    def __init__(self, text: str):
        self.raw = text
        self.t = normalize_text(text)
        self.slots: dict[str, Any] = {}
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.conversions: list[str] = []
        self.extra: dict[str, Any] = {}


def _detect_lang(text: str) -> Lang:
    return "zh" if has_cjk(text or "") else "en"


def _read_precisions(d: _Draft) -> None:
    t = d.t
    found: list[tuple[int, str]] = []
    for rx, key in _PRECISION_RES:
        for m in list(rx.finditer(t)):
            found.append((m.start(), key))
            t = _blank(t, m)
    for bad, hint in _BAD_PRECISION.items():
        m = re.search(rf"(?<![a-z0-9_]){bad}(?![a-z0-9_])", t)
        if m:
            d.errors.append(f"precision '{bad}' is not accepted. {hint} Accepted: {_ACCEPTED_PRECISIONS}.")
            t = _blank(t, m)
    d.t = t
    order: list[str] = []
    for _, key in sorted(found):
        if key not in order:
            order.append(key)
    # load_in_8bit with threshold=0.0 is pure INT8, not both
    if "int8_pure" in order and "int8_mixed" in order and re.search(r"threshold\s*=\s*0", d.raw.lower()):
        order.remove("int8_mixed")
    if order:
        d.slots["precision"] = order[0]
        d.extra["precisions"] = order
    if re.search(r"\b8[\s-]?bit\b|8\s*位", d.raw.lower()) and "int8_mixed" in order and "load_in_8bit" not in d.raw.lower():
        d.conversions.append("'8-bit' read as bitsandbytes load_in_8bit, whose default is mixed-precision decomposition "
                             "(int8_mixed, threshold 6.0)")
    if re.search(r"\b4[\s-]?bit\b|4\s*位|4\s*比特|qlora", d.raw.lower()) and "nf4" in order:
        d.conversions.append("'4-bit' read as bitsandbytes NF4 (the QLoRA weight format)")


def _read_batch_and_lengths(d: _Draft) -> None:
    t = d.t
    m = None
    if _mentions(t, "batch", "bs", "批", "concurrent", "并发"):
        m = re.search(r"(?:batch[\s_-]*size|\bbs\b|批大小|批量大小|批次大小|批量|batch)\s*(?:=|:|of|is|to|为|是|设为)?\s*(-?\d+)", t) \
            or re.search(r"(-?\d+)\s*(?:concurrent\s+requests|并发)", t)
    if m:
        d.slots["batch_size"] = int(m.group(1))
        t = _blank(t, m)
    pat_prompt = [
        r"(?:prompt|input|sequence[\s_-]*length|seq[\s_-]*len(?:gth)?|输入)\s*(?:tokens?|length|长度)?\s*(?:=|:|of|is|为)?\s*(-?\d+)\s*(?:tokens?)?",
        r"(-?\d+)[\s-]*(?:input|prompt)[\s-]*tokens?",
        r"(-?\d+)[\s-]*token\s+prompts?",
    ]
    for p in pat_prompt if _mentions(t, "prompt", "input", "seq", "输入") else ():
        m = re.search(p, t)
        if m:
            d.slots["prompt_tokens"] = int(m.group(1))
            t = _blank(t, m)
            break
    pat_gen = [
        r"(?:max_new_tokens|generation[\s_-]*length|gen[\s_-]*len(?:gth)?|output|generat(?:e|ing)|生成|输出)\s*(?:tokens?|length|长度)?\s*(?:=|:|of|is|为)?\s*(-?\d+)\s*(?:tokens?)?",
        r"(-?\d+)[\s-]*(?:output|generated|new|completion)[\s-]*tokens?",
    ]
    for p in pat_gen if _mentions(t, "gen", "output", "new", "completion", "生成", "输出") else ():
        m = re.search(p, t)
        if m:
            d.slots["gen_tokens"] = int(m.group(1))
            t = _blank(t, m)
            break
    d.t = t


def _read_reported(d: _Draft) -> None:
    t = d.t
    m = re.search(_NUM + r"\s*(?:tok/s|tokens?/s(?:ec)?|tokens?\s+per\s+second|t/s|tps\b|个?token每秒)", t) \
        if _mentions(t, "/s", "second", "tps", "每秒") else None
    if m:
        d.extra["reported_tok_s"] = float(m.group(1).replace(",", ""))
        t = _blank(t, m)
    m = re.search(_NUM + r"\s*(kw|w|watts?|瓦)(?![a-z])(?!\s*h)", t)
    if m:
        v = float(m.group(1).replace(",", ""))
        d.extra["reported_power_w"] = v * (1000 if m.group(2) == "kw" else 1)
        t = _blank(t, m)
    m = re.search(_NUM + r"\s*j\s*(?:/|per)\s*1k", t) if _mentions(t, "1k") else None
    if m:
        d.extra["reported_j_per_1k_tok"] = float(m.group(1).replace(",", ""))
        t = _blank(t, m)
    d.t = t


def _read_money_and_grid(d: _Draft) -> None:
    t = d.t
    if not _mentions(t, "kwh", "度", "pue"):
        return
    m = re.search(r"\$\s*" + _NUM + r"\s*(?:/|per|a)\s*kwh", t) or re.search(
        _NUM + r"\s*(?:usd|\$|dollars?|美元)\s*(?:/|per|a|每)\s*(?:kwh|度)", t)
    if m:
        d.slots["price_usd_kwh"] = float(m.group(1).replace(",", ""))
        t = _blank(t, m)
    m = re.search(_NUM + r"\s*(?:g|grams?|克)\s*(?:co2e?|co₂)?\s*(?:/|per|每)\s*(?:kwh|度)", t)
    if m:
        d.slots["grid_gco2_kwh"] = float(m.group(1).replace(",", ""))
        t = _blank(t, m)
    m = re.search(r"\bpue\s*(?:of|=|:|is|为)?\s*" + _NUM, t)
    if m:
        d.slots["pue"] = float(m.group(1).replace(",", ""))
        t = _blank(t, m)
    d.t = t


_PERIOD_RE = r"(?:\s*(?:per|/|a|an|each|every|每)\s*(month|mo|day|daily|hour|hr|week|year|月|天|日|小时|周|年))?"
_PERIOD_WORD = {"month": "month", "mo": "month", "月": "month", "day": "day", "daily": "day", "天": "day", "日": "day",
                "hour": "hour", "hr": "hour", "小时": "hour", "week": "week", "周": "week", "year": "year", "年": "year"}
_LEAD_PERIOD_RE = r"(?:(?:每|一个?)\s*(月|天|日|小时|周|年)|(?:per|every|each|a)\s+(month|day|hour|week|year))\s*"


def _period(word: str | None) -> str | None:
    return _PERIOD_WORD.get(word or "")


def _dpm() -> float:
    return _factor("days_per_month")


def _per_month(period: str | None) -> float:
    """How many of `period` fit in a month."""
    period = period or "month"
    if period == "month":
        return 1.0
    if period == "year":
        return 1 / 12
    return _dpm() / _PERIOD_IN_DAYS[period]


def _monthly(value: float, period: str | None) -> float:
    return value * _per_month(period)


def _read_workload(d: _Draft) -> None:
    t = d.t
    conv = d.conversions
    # users per day x requests per user per day
    people = _mentions(t, "user", "people", "customer", "用户", "人")
    m = re.search(_NUM + _MULT_RE + r"\s*(?:daily\s+)?(?:active\s+)?(?:users?|people|customers|个?用户|人)" + _PERIOD_RE, t) \
        if people else None
    lead = re.search(_LEAD_PERIOD_RE + _NUM + _MULT_RE + r"\s*(?:个?用户|人|users?)", t) if people and not m else None
    if m or lead:
        if m:
            n, per = _number(m.group(1), m.group(2)), _period(m.group(3)) or "day"
        else:
            assert lead is not None
            n, per = _number(lead.group(3), lead.group(4)), _period(lead.group(1) or lead.group(2)) or "day"
        rpu = _factor("requests_per_user_day")
        per_day_users = n * _per_month(per) / _dpm()
        rpm = per_day_users * rpu * _dpm()
        d.slots["requests_per_month"] = rpm
        d.slots["workload"] = (m or lead).group(0).strip()  # type: ignore[union-attr]
        conv.append(f"{_fmt(per_day_users)} users/day x {_fmt(rpu)} requests per user per day (factor "
                    f"requests_per_user_day) x {_dpm():.2f} days/month = {_fmt(rpm)} requests/month")
        t = _blank(t, m or lead)  # type: ignore[arg-type]
        d.t = t
        return
    # requests
    asks = _mentions(t, "req", "call", "quer", "inference", "prompt", "请求", "调用", "推理", "次")
    m = re.search(_NUM + _MULT_RE + r"\s*(?:requests?|reqs?|calls?|queries|inferences|prompts|次请求|个请求|次调用|次推理|请求|次)" + _PERIOD_RE, t) \
        if asks else None
    lead = None if m or not asks else re.search(_LEAD_PERIOD_RE + _NUM + _MULT_RE + r"\s*(?:次|个)?(?:请求|调用|推理|requests?|calls?)", t)
    if m or lead:
        if m:
            n, per = _number(m.group(1), m.group(2)), _period(m.group(3))
        else:
            assert lead is not None
            n, per = _number(lead.group(3), lead.group(4)), _period(lead.group(1) or lead.group(2))
        rpm = _monthly(n, per)
        d.slots["requests_per_month"] = rpm
        d.slots["workload"] = (m or lead).group(0).strip()  # type: ignore[union-attr]
        if per and per != "month":
            conv.append(f"{_fmt(n)} requests per {per} x {_fmt(_per_month(per))} = {_fmt(rpm)} requests/month")
        t = _blank(t, m or lead)  # type: ignore[arg-type]
        d.t = t
        return
    # characters (Chinese 字 / 万字 / "wan zi" or English characters)
    m = re.search(_NUM + _MULT_RE + r"\s*(?:(chinese)\s+)?(characters|chars|汉字|个字|字|zi)(?![a-z])" + _PERIOD_RE, t) \
        if _mentions(t, "char", "字", "zi") else None
    if m:
        chars = _number(m.group(1), m.group(2))
        chinese = bool(m.group(3)) or m.group(4) in ("汉字", "个字", "字", "zi") or (m.group(2) or "") in ("万", "亿", "wan", "yi")
        key = "chinese_chars_per_token" if chinese else "english_chars_per_token"
        cpt = _factor(key)
        tokens = chars / cpt
        stated = m.group(0).strip()
        lang_word = "Chinese" if chinese else "English"
        conv.append(f"{stated} = {_fmt(chars)} {lang_word} characters / {_fmt(cpt)} characters per token "
                    f"(factor {key}) = {_fmt(tokens)} tokens")
        _set_tokens(d, tokens, _period(m.group(5)), stated)
        d.t = _blank(t, m)
        return
    # bytes of text
    m = re.search(_NUM + r"\s*(kb|mb|gb|tb|gigabytes?|megabytes?|terabytes?)\b\s*(?:of\s+)?(?:text|data|corpus|文本|数据)?" + _PERIOD_RE, t) \
        if _mentions(t, "b ", "byte") or t.endswith("b") else None
    if m:
        unit = m.group(2)[0] + "b"
        gb = float(m.group(1).replace(",", "")) * _BYTES[unit] / _BYTES["gb"]
        tpg = _factor("english_tokens_per_gb")
        tokens = gb * tpg
        conv.append(f"{m.group(0).strip()} = {_fmt(gb)} GB x {_fmt(tpg)} tokens per GB of English text "
                    f"(factor english_tokens_per_gb) = {_fmt(tokens)} tokens")
        _set_tokens(d, tokens, _period(m.group(3)), m.group(0).strip())
        d.t = _blank(t, m)
        return
    # tokens
    m = re.search(_NUM + _MULT_RE + r"\s*(?:tokens?|toks?|个?token|词元)" + _PERIOD_RE, t) if _mentions(t, "tok", "词元") else None
    if m:
        tokens = _number(m.group(1), m.group(2))
        _set_tokens(d, tokens, _period(m.group(3)), m.group(0).strip())
        d.t = _blank(t, m)
        return
    # hours a day of continuous generation
    if not _mentions(t, "h", "小时"):
        return
    m = re.search(_NUM + r"\s*(?:hours?|hrs?|h|小时)\s*(?:a|per|/|each|every|每)?\s*(?:day|天|日)", t) or re.search(
        r"(?:每天|每日|a day)\s*" + _NUM + r"\s*(?:hours?|小时)", t)
    if m:
        d.slots["hours_per_day"] = float(m.group(1).replace(",", ""))
        d.slots["workload"] = m.group(0).strip()
        d.t = _blank(t, m)


def _set_tokens(d: _Draft, tokens: float, period: str | None, stated: str) -> None:
    d.slots["workload"] = stated
    if period is None:
        d.slots["job_tokens"] = tokens
    else:
        d.slots["tokens_per_month"] = _monthly(tokens, period)
        if period != "month":
            d.conversions.append(f"{_fmt(tokens)} tokens per {period} x {_fmt(_per_month(period))} = "
                                 f"{_fmt(d.slots['tokens_per_month'])} tokens/month")


_GPUISH_RE = re.compile(
    r"\b(?:rtx|gtx|tesla|quadro|titan|radeon|instinct|gaudi)\s*-?\s*[a-z]*\d{2,4}\s*(?:ti|super|xt|x|d)?\b"
    r"|\bmi\d{2,3}[a-z]?\b|\b[abhlv]\d{2,3}[a-z]?\b|\bb200\b|\bgb200\b|\bl40s?\b"
)


def _read_gpu(d: _Draft) -> None:
    cat = _catalog()
    hits = _find_in_index(d.t, cat._gpu_index(), min_len=3)
    gpus = [g.key for g in hits]
    # architecture names ("my Blackwell GPU"): the GPU of that architecture with the most rows
    for word, arch in _ARCH_WORDS.items():
        if re.search(rf"\b{word}\b", d.t) and not gpus:
            key = _gpu_for_arch(arch)
            if key:
                gpus.append(key)
                d.conversions.append(f"'{word}' read as {key}, the {arch} GPU with the most measurements")
    if not hits:
        unknown: list[str] = []  # one error for all unknown names, the supported list said once
        for m in _GPUISH_RE.finditer(d.t):
            name = m.group(0).strip()
            try:
                g = cat.resolve_gpu(name)
            except cat.UnknownName as err:
                if re.fullmatch(r"[abhlv]\d{2,3}[a-z]?", name) and name[0] in "abhlv" and not _looks_like_gpu(name):
                    continue
                if all(not u.startswith(f"'{name}'") for u in unknown):
                    hint = f" (did you mean {', '.join(repr(n) for n in err.nearest)}?)" if err.nearest else ""
                    unknown.append(f"'{name}'{hint}")
                continue
            if g.key not in gpus:
                gpus.append(g.key)
        if unknown:
            more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
            d.errors.append(f"GPU {', '.join(unknown[:5])}{more} {'is' if len(unknown) == 1 else 'are'} not "
                            f"supported. Supported: {_gpu_list()}. For another GPU, measure it with "
                            "`ecolobster bench`.")
    if gpus:
        d.slots["gpu"] = gpus[0]
        d.extra["gpus"] = gpus


def _looks_like_gpu(name: str) -> bool:
    # a bare letter+digits token is only a GPU claim when the letter names a GPU family we know
    return name[0] in "ahlvb" and len(name) >= 3


def _near(err: Any) -> str:
    return f" Did you mean {', '.join(repr(n) for n in err.nearest)}?" if getattr(err, "nearest", None) else ""


def _gpu_list() -> str:
    return ", ".join(g.key for g in _catalog().gpus())


def _gpu_for_arch(arch: str) -> str | None:
    cands = [g for g in _catalog().gpus() if g.architecture.lower().startswith(arch.lower().split()[0])]
    if not cands:
        return None
    counts = _rows_per_gpu()
    return max(cands, key=lambda g: (counts.get(g.key, 0), -len(g.key))).key


def _measured_models() -> set[str]:
    from advisor import estimate

    return {p.model for p in estimate.dataset().points}


def _rows_per_gpu() -> dict[str, int]:
    from advisor import estimate

    return estimate.rows_per_gpu()


_SIZE_RE = re.compile(r"(?<![\w.])(?:(?P<name>[a-z][\w.]*?(?:[-_ /][\w.]+?)*?)[-_ ]?)?(?P<size>\d+(?:\.\d+)?)\s*b(?![a-z0-9])")


def _read_model(d: _Draft) -> None:
    cat = _catalog()
    hits = _find_in_index(d.t, cat._model_index(), min_len=4)
    if hits:
        m = hits[0]
        d.slots["model"] = m.key
        d.slots["model_params_b"] = m.params_b
        d.extra["model_name"] = m.name
        d.extra["model_known"] = True
        d.extra["models"] = [h.key for h in hits]
        return
    # a hub id we do not know: take the size from the name
    hm = re.search(r"\b([a-z0-9][\w.-]*/[a-z0-9][\w.-]*)", d.t)
    cands = []
    if hm and re.search(r"\d+(?:\.\d+)?b", hm.group(1)):
        cands.append(hm.group(1))
    for m in re.finditer(r"[a-z][\w.]*(?:-[\w.]+)*", d.t):
        if re.search(r"(?:^|[-_])\d+(?:\.\d+)?b(?:$|[-_])", m.group(0)) or re.search(r"[a-z]\d+(?:\.\d+)?b$", m.group(0)):
            cands.append(m.group(0))
    for name in cands:
        sm = re.search(r"(\d+(?:\.\d+)?)b(?![a-z0-9])", name.split("/")[-1])
        if not sm:
            continue
        size = float(sm.group(1))
        if size <= 0:
            continue
        d.slots["model"] = name
        d.slots["model_params_b"] = size
        d.extra["model_name"] = name
        d.extra["model_known"] = False
        return
    # "a 7B model", "7b 模型"
    m = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)\s*b\b(?:[\s-]*(?:param(?:eter)?s?|model|llm|模型|参数))?", d.t)
    if m and float(m.group(1)) > 0 and not re.search(r"\d\s*b\s*(?:yte|it)", d.t[m.start():m.end() + 4]):
        size = float(m.group(1))
        d.slots["model"] = f"{_fmt(size)}B model"
        d.slots["model_params_b"] = size
        d.extra["model_name"] = f"a {_fmt(size)}B model"
        d.extra["model_known"] = False


def _read_region(d: _Draft) -> None:
    cat = _catalog()
    hits = _find_in_index(d.t, cat._region_index(), min_len=2)
    # two-letter names only when written as a word ("in the US", "EU")
    for r in hits:
        d.slots["region"] = r.key
        return
    if re.search(r"中国|国内|china", d.t):
        with contextlib.suppress(cat.UnknownName):
            d.slots["region"] = cat.resolve_region("china").key


def _read_use_case(d: _Draft) -> None:
    for rx, key in _USE_CASE_RES:
        if rx.search(d.t):
            d.slots["use_case"] = key
            return


def _read_flags(d: _Draft) -> None:
    raw = d.raw.lower()
    d.extra["nightly"] = bool(re.search(r"nightly|\.dev\d*|dev\s+build|预览版|夜间版", raw))
    d.extra["compiled"] = bool(re.search(r"vllm|sglang|torch\.compile|tensorrt|transformer\s+engine", raw))
    d.extra["symptoms"] = [key for rx, key in _SYMPTOM_RES if rx.search(d.t)]
    if _ALL_PRECISIONS_RE.search(d.t):
        d.extra["all_precisions"] = True


# what the reader functions record besides slots when the text states something
_STATED_EXTRAS: tuple[str, ...] = ("precisions", "all_precisions", "gpus", "models", "model_name", "symptoms",
                                   "reported_tok_s", "reported_power_w", "reported_j_per_1k_tok", "nightly", "compiled")


def _states_something(d: _Draft) -> bool:
    return bool(d.slots) or any(d.extra.get(k) for k in _STATED_EXTRAS)


def _not_a_follow_up(d: _Draft, last_protocol: str) -> str:
    shown = d.raw.strip()
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if has_cjk(d.raw):
        return (f"没看懂“{shown}”：它没有提到模型、GPU、精度、批大小、地区或负载，所以无法接着上一个问题（{last_protocol}）回答。"
                "可以这样追问：“批大小 16 呢？”、“换成 NF4 呢？”、“换成 A800 呢？”，或者问一个新问题，"
                "例如“RTX 4090 上 Qwen2.5-7B 最省电的配置是什么？”")
    return (f"I did not understand \"{shown}\": it names no model, GPU, precision, batch size, region or workload, "
            f"so it cannot change the last question ({last_protocol}). Follow up with e.g. \"what about batch 16?\", "
            "\"and on an A800?\", \"switch to NF4\" or \"in France?\", or ask a new question such as "
            "\"greenest config for Qwen2.5-7B on an RTX 4090D\".")


def _classify(d: _Draft, context: Context | None) -> tuple[str | None, bool]:
    t = d.t
    hit = {k: any(rx.search(t) for rx in rxs) for k, rxs in _CUE_RES.items()}
    explain = hit["explain"] and not re.search(r"\bwhy\s+(?:is|does)\s+my|为什么我的", t)
    if hit["audit"]:
        return "audit", explain
    if hit["plan"] and not hit["compare"]:
        return "plan", explain
    if hit["compare"] or d.extra.get("all_precisions") or len(d.extra.get("gpus", [])) > 1:
        return "compare", explain
    if explain:
        # a "why" about a format is answered with the evidence across model sizes
        return ("compare" if not d.extra.get("symptoms") else "diagnose"), True
    has_workload = any(k in d.slots for k in ("requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day"))
    trap_config = d.slots.get("precision") in ("int8_mixed", "fp8") and re.search(r"\b(?:i'?m|i am|my|we)\b|我", t)
    if hit["diagnose"] or (d.extra.get("reported_tok_s") or d.extra.get("reported_power_w")) or (
            trap_config and d.extra.get("symptoms")):
        return "diagnose", False
    if hit["estimate"] and (has_workload or not hit["optimize"]):
        return "estimate", False
    if re.search(r"\bshould\s+i\s+use|要不要用|该不该用|应该用", t) and d.extra.get("precisions") and "model" not in d.slots:
        return "compare", True
    if hit["optimize"]:
        return "optimize", False
    if has_workload:
        return "estimate", False
    if context is not None and context.last_protocol:
        # a follow-up keeps the last protocol only when it changes something; words that state
        # nothing ("foo bar") must not silently repeat the previous answer
        if _states_something(d):
            return context.last_protocol, False
        raise QueryError([_not_a_follow_up(d, context.last_protocol)])
    if "model" in d.slots or "gpu" in d.slots or "precision" in d.slots:
        return "optimize", False
    return None, explain


def parse(text: str, context: Context | None = None, protocol: str | None = None) -> Query:
    """Read a question in English or Chinese; merge it over `context` (the previous slots).
    `protocol` (one of QUERY_PROTOCOLS) forces the protocol, as the chat's /compare etc. do; with a
    context the text may then be empty ("run the last configuration through this protocol")."""
    if not isinstance(text, str):
        raise QueryError([f"the question must be text, not {type(text).__name__}"])
    if protocol is not None and protocol not in QUERY_PROTOCOLS:
        raise QueryError([f"protocol '{protocol}' is not known. Accepted: {', '.join(QUERY_PROTOCOLS)}."])
    if len(text) > 20000:
        raise QueryError(["the question is longer than 20,000 characters: ask about one configuration at a time"])
    d = _Draft(text)
    forced = protocol
    if not d.t and not (forced and context is not None):
        raise QueryError(["the question is empty: ask e.g. \"What's the greenest config for Qwen2.5-7B on an RTX 4090?\""])
    try:
        _read_flags(d)
        _read_precisions(d)
        _read_reported(d)
        _read_money_and_grid(d)
        _read_batch_and_lengths(d)
        _read_workload(d)
        _read_gpu(d)
        _read_model(d)
        _read_region(d)
        _read_use_case(d)
        if forced:
            # the reader functions ran: the slots are known; the words only still decide "why?"
            explain = bool(_CUE_RES["explain"][0].search(d.t)) and not re.search(r"\bwhy\s+(?:is|does)\s+my|为什么我的", d.t)
            protocol = forced
        else:
            protocol, explain = _classify(d, context)
    except QueryError:
        raise
    except (ValueError, OverflowError, ArithmeticError) as err:  # a number too odd to use
        raise QueryError([f"could not read a number in the question ({err})"]) from None
    if protocol is None:
        d.errors.append(
            "I could not find a configuration or a question I can answer. Name a model and a GPU, e.g. "
            "\"greenest config for Qwen2.5-7B on an RTX 4090D\", \"compare precisions for Mistral-7B on A800\", "
            "or \"what do 1M requests a month on Mistral-7B cost?\"")
    if d.errors:
        raise QueryError(d.errors)
    base: dict[str, Any] = {}
    if context is not None:
        base = {k: v for k, v in context.model_dump().items() if k in SLOTS and v is not None}
        # a new model invalidates the old size
        if "model" in d.slots:
            base.pop("model_params_b", None)
        # a new workload replaces the old one whole
        if any(k in d.slots for k in ("requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day")):
            for k in ("requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day", "workload"):
                base.pop(k, None)
    merged = {**base, **d.slots}
    lang = context.lang if (context is not None and context.lang and not has_cjk(text)
                            and _detect_lang(text) == "en" and not re.search(r"[a-z]{3}", d.t)) else _detect_lang(text)
    extra = d.extra
    model_known = extra.get("model_known")
    if model_known is None and merged.get("model"):
        model_known = _is_catalog_model(merged["model"])
    return _finish(
        protocol=protocol,  # type: ignore[arg-type]
        slots=merged,
        lang=lang,
        text=text,
        warnings=d.warnings,
        conversions=d.conversions,
        explain=explain,
        precisions=extra.get("precisions", []),
        all_precisions=bool(extra.get("all_precisions")),
        gpus=extra.get("gpus", []),
        symptoms=extra.get("symptoms", []),
        reported_tok_s=extra.get("reported_tok_s"),
        reported_power_w=extra.get("reported_power_w"),
        reported_j_per_1k_tok=extra.get("reported_j_per_1k_tok"),
        nightly=bool(extra.get("nightly")),
        compiled=bool(extra.get("compiled")),
        model_name=extra.get("model_name"),
        model_known=bool(model_known),
    )


def _is_catalog_model(name: str) -> bool:
    cat = _catalog()
    try:
        cat.resolve_model(name)
        return True
    except cat.UnknownName:
        return False


# ---------------------------------------------------------------------------------------------
# structured input

_FIELD_ALIASES = {
    "model_id": "model", "hardware_platform": "gpu", "hardware": "gpu", "quantization": "quantization",
    "sequence_length": "prompt_tokens", "seq_len": "prompt_tokens", "input_tokens": "prompt_tokens",
    "generation_length": "gen_tokens", "max_new_tokens": "gen_tokens", "output_tokens": "gen_tokens",
    "bs": "batch_size", "price": "price_usd_kwh", "grid_intensity": "grid_gco2_kwh", "carbon_intensity": "grid_gco2_kwh",
}
_COMPUTE_DTYPES = {"fp16", "bf16", "fp32", "tf32"}
_PRECISION_ALIASES = {
    "int8_default": "int8_mixed", "int8-default": "int8_mixed", "int8_mix": "int8_mixed", "int8-mixed": "int8_mixed",
    "llm.int8": "int8_mixed", "load_in_8bit": "int8_mixed", "int8-pure": "int8_pure", "pure_int8": "int8_pure",
    "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float32": "fp32", "4bit": "nf4", "4-bit": "nf4",
    "load_in_4bit": "nf4", "qlora": "nf4", "float8": "fp8",
}


def _norm_precision(value: Any, field: str, errors: list[str]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    v = str(value).strip().lower()
    v = _PRECISION_ALIASES.get(v, v)
    if v in PRECISIONS:
        return v
    if v in _BAD_PRECISION:
        if v == "int8" and field == "precision":
            errors.append("precision 'int8' is a quantization method, not a precision: use quantization='int8_pure' "
                          "(threshold 0.0) or 'int8_mixed' (load_in_8bit default). Precision options: fp32, bf16, fp16.")
        else:
            errors.append(f"{field} '{value}' is not accepted. {_BAD_PRECISION[v]} Accepted: {_ACCEPTED_PRECISIONS}.")
        return None
    import difflib

    near = difflib.get_close_matches(v, list(PRECISIONS) + list(_PRECISION_ALIASES), n=2, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(_PRECISION_ALIASES.get(n, n)) for n in near)}?" if near else ""
    errors.append(f"{field} '{value}' is not recognised.{hint} Accepted: {_ACCEPTED_PRECISIONS}.")
    return None


def _int_field(value: Any, name: str, errors: list[str]) -> int | None:
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        errors.append(f"{name} must be a whole number, got {value!r}")
        return None
    if not math.isfinite(f) or f != int(f):
        errors.append(f"{name} must be a whole number, got {value!r}")
        return None
    return int(f)


def _float_field(value: Any, name: str, errors: list[str]) -> float | None:
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        errors.append(f"{name} must be a number, got {value!r}")
        return None
    if not math.isfinite(f):
        errors.append(f"{name} must be a finite number, got {value!r}")
        return None
    return f


def from_fields(protocol: str, **slots: Any) -> Query:
    """Build a Query from named fields (CLI flags, MCP tool arguments, the seed's JSON requests).

    Accepts the seed's field names too (model_id, hardware_platform, quantization,
    sequence_length, generation_length) and per-day workloads (requests_per_day, users_per_day).
    Every problem is collected, so one call reports all of them.
    """
    errors: list[str] = []
    warnings: list[str] = []
    conversions: list[str] = []
    known_protocols = ("optimize", "diagnose", "compare", "estimate", "audit", "plan")
    if protocol not in known_protocols:
        errors.append(f"protocol '{protocol}' is not known. Accepted: {', '.join(known_protocols)}.")
    given: dict[str, Any] = {}
    for k, v in slots.items():
        k2 = _FIELD_ALIASES.get(k, k)
        if v is None:
            continue
        given[k2] = v
    accepted = set(SLOTS) | {"quantization", "requests_per_day", "users_per_day", "tokens_per_day", "lang", "symptoms",
                             "reported_tok_s", "reported_power_w", "compare_axis", "compare_gpus", "compare_precisions",
                             "compare_batch_sizes", "nightly", "compiled", "explain", "characters", "chinese_characters",
                             "text_gb", "context"}
    unknown = sorted(set(given) - accepted)
    if unknown:
        errors.append(f"unknown field(s) {unknown}. Accepted: {', '.join(sorted(accepted - {'context'}))}.")
    cat = _catalog()
    out: dict[str, Any] = {}
    ctx: Context | None = given.pop("context", None)
    model_name, model_known = None, False
    if "model" in given:
        name = str(given["model"]).strip()
        if not name:
            errors.append("model is required: name a model (e.g. 'Mistral-7B') or a Hugging Face id "
                          "(e.g. 'mistralai/Mistral-7B-Instruct-v0.2').")
        else:
            try:
                m = cat.resolve_model(name)
                out["model"], out["model_params_b"], model_name, model_known = m.key, m.params_b, m.name, True
            except cat.UnknownName as err:
                sm = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z0-9])", name.split("/")[-1])
                if sm and float(sm.group(1)) > 0:
                    out["model"], out["model_params_b"], model_name = name, float(sm.group(1)), name
                elif given.get("model_params_b"):
                    out["model"], model_name = name, name
                else:
                    errors.append(f"model '{name}' is not in the catalog and its name does not state a size.{_near(err)} "
                                  "Give a size in the name (e.g. 'my-model-7B') or model_params_b, or one of: "
                                  f"{', '.join(mm.key for mm in cat.models())}.")
    if "model_params_b" in given:
        p = _float_field(given["model_params_b"], "model_params_b", errors)
        if p is not None and p <= 0:
            errors.append(f"model_params_b must be > 0 (billions of parameters), got {p}")
        elif p is not None:
            out["model_params_b"] = p
            if "model" not in out:
                out["model"], model_name = f"{_fmt(p)}B model", f"a {_fmt(p)}B model"
    if "gpu" in given:
        name = str(given["gpu"]).strip()
        try:
            out["gpu"] = cat.resolve_gpu(name).key
        except cat.UnknownName as err:
            errors.append(f"GPU '{name}' is not supported.{_near(err)} Supported: {_gpu_list()}. "
                          "For another GPU, measure it with `ecolobster bench`.")
    prec = _norm_precision(given.get("precision"), "precision", errors)
    quant = _norm_precision(given.get("quantization"), "quantization", errors)
    if prec and quant and prec != quant:
        if prec in _COMPUTE_DTYPES and quant not in _COMPUTE_DTYPES:
            if prec == "fp32" and quant == "nf4":
                warnings.append("conflicting parameters: NF4 dequantizes to FP16/BF16, not FP32; using FP16 compute with NF4 weights.")
            out["precision"] = quant
        elif quant in _COMPUTE_DTYPES and prec not in _COMPUTE_DTYPES:
            out["precision"] = prec
        else:
            errors.append(f"precision '{prec}' and quantization '{quant}' conflict: give one of them.")
    elif prec or quant:
        out["precision"] = quant or prec
    for name in ("batch_size", "prompt_tokens", "gen_tokens"):
        if name in given:
            v = _int_field(given[name], name, errors)
            if v is not None:
                out[name] = v
    for name in ("requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day", "price_usd_kwh",
                 "grid_gco2_kwh", "pue", "reported_tok_s", "reported_power_w"):
        if name in given:
            v = _float_field(given[name], name, errors)
            if v is not None:
                out[name] = v
    for name, slot, label in (("requests_per_day", "requests_per_month", "requests"), ("tokens_per_day", "tokens_per_month", "tokens")):
        if name in given:
            v = _float_field(given[name], name, errors)
            if v is not None:
                out[slot] = v * _dpm()
                out["workload"] = f"{_fmt(v)} {label}/day"
                conversions.append(f"{_fmt(v)} {label}/day x {_dpm():.2f} days/month = {_fmt(out[slot])} {label}/month")
    if "users_per_day" in given:
        v = _float_field(given["users_per_day"], "users_per_day", errors)
        if v is not None:
            rpu = _factor("requests_per_user_day")
            out["requests_per_month"] = v * rpu * _dpm()
            out["workload"] = f"{_fmt(v)} users/day"
            conversions.append(f"{_fmt(v)} users/day x {_fmt(rpu)} requests per user per day (factor requests_per_user_day) "
                               f"x {_dpm():.2f} days/month = {_fmt(out['requests_per_month'])} requests/month")
    for name, key, lang_word in (("characters", "english_chars_per_token", "English"),
                                 ("chinese_characters", "chinese_chars_per_token", "Chinese")):
        if name in given:
            v = _float_field(given[name], name, errors)
            if v is not None:
                cpt = _factor(key)
                out["job_tokens"] = v / cpt
                out["workload"] = f"{_fmt(v)} {lang_word} characters"
                conversions.append(f"{_fmt(v)} {lang_word} characters / {_fmt(cpt)} characters per token (factor {key}) "
                                   f"= {_fmt(out['job_tokens'])} tokens")
    if "text_gb" in given:
        v = _float_field(given["text_gb"], "text_gb", errors)
        if v is not None:
            tpg = _factor("english_tokens_per_gb")
            out["job_tokens"] = v * tpg
            out["workload"] = f"{_fmt(v)} GB of text"
            conversions.append(f"{_fmt(v)} GB x {_fmt(tpg)} tokens per GB (factor english_tokens_per_gb) = {_fmt(out['job_tokens'])} tokens")
    if "region" in given:
        try:
            out["region"] = cat.resolve_region(str(given["region"])).key
        except cat.UnknownName as err:
            errors.append(str(err))
    if "use_case" in given:
        uc = str(given["use_case"]).strip().lower().replace(" ", "_").replace("-", "_")
        uc = {"production": "production_api", "api": "production_api", "chat": "interactive_chat",
              "interactive": "interactive_chat", "batch": "offline_batch", "offline": "offline_batch"}.get(uc, uc)
        if uc in USE_CASES:
            out["use_case"] = uc
        else:
            errors.append(f"use_case '{given['use_case']}' is not known. Accepted: {', '.join(USE_CASES)} "
                          "(or production, chat, batch).")
    if "workload" in given:
        out["workload"] = str(given["workload"])
    lang = given.get("lang") or (ctx.lang if ctx else None) or "en"
    if lang not in ("en", "zh"):
        errors.append(f"lang '{lang}' is not supported. Accepted: en, zh.")
        lang = "en"
    errors += _range_errors(out)
    if errors:
        raise QueryError(errors)
    base = {k: v for k, v in (ctx.model_dump().items() if ctx else []) if k in SLOTS and v is not None}
    axis = given.get("compare_axis")
    precs: list[str] = []
    for p in given.get("compare_precisions") or []:
        q = _norm_precision(p, "compare_precisions", errors)
        if q:
            precs.append(q)
    gpus_l: list[str] = []
    for g in given.get("compare_gpus") or []:
        try:
            gpus_l.append(cat.resolve_gpu(str(g)).key)
        except cat.UnknownName as err:
            errors.append(str(err))
    if errors:
        raise QueryError(errors)
    if axis is not None and axis not in ("precision", "gpu", "batch_size", "model_size"):
        raise QueryError([f"compare_axis '{axis}' is not known. Accepted: precision, gpu, batch_size, model_size."])
    if "model" not in out and "model" not in base and protocol in ("optimize", "estimate"):
        raise QueryError(["model is required: name a model (e.g. 'Mistral-7B') or a Hugging Face id "
                          "(e.g. 'mistralai/Mistral-7B-Instruct-v0.2')."])
    return _finish(
        protocol=protocol,  # type: ignore[arg-type]
        slots={**base, **out},
        lang=lang,
        text="",
        warnings=warnings,
        conversions=conversions,
        explain=bool(given.get("explain")),
        precisions=precs or ([out["precision"]] if "precision" in out else []),
        all_precisions=axis == "precision" and not precs,
        gpus=gpus_l or ([out["gpu"]] if "gpu" in out else []),
        symptoms=list(given.get("symptoms") or []),
        reported_tok_s=out.get("reported_tok_s"),
        reported_power_w=out.get("reported_power_w"),
        reported_j_per_1k_tok=None,
        nightly=bool(given.get("nightly")),
        compiled=bool(given.get("compiled")),
        model_name=model_name,
        model_known=model_known or bool(base.get("model") and _is_catalog_model(base["model"])),
        axis=axis,
        batch_sizes=[int(b) for b in given.get("compare_batch_sizes") or []],
    )


# ---------------------------------------------------------------------------------------------
# defaults and validation shared by both entry points


def _range_errors(s: dict[str, Any]) -> list[str]:
    """Out-of-range values: batch size within 1..max_batch_size, positive lengths, PUE >= 1."""
    errors: list[str] = []
    max_bs = _defaults().get("max_batch_size")
    bs = s.get("batch_size")
    if bs is not None:
        if bs < 1:
            errors.append(f"batch_size must be >= 1, got {bs}. Did you mean batch_size=1?")
        elif max_bs is not None and bs > max_bs:
            errors.append(f"batch_size={bs} exceeds the maximum supported ({max_bs}). Use batch_size <= {max_bs}, "
                          "or a continuous-batching server (vLLM) for larger batches.")
    for slot, typical in (("prompt_tokens", "512 (chat), 1024 (documents), 2048 (long context)"),
                          ("gen_tokens", "128 (short answers), 256 (default), 512 (detailed answers)")):
        v = s.get(slot)
        if v is not None and v < 1:
            errors.append(f"{slot} must be >= 1, got {v}. Typical values: {typical}.")
    for slot in ("requests_per_month", "tokens_per_month", "job_tokens"):
        v = s.get(slot)
        if v is not None and (not math.isfinite(v) or v < 0):
            errors.append(f"{slot} must be a non-negative number, got {v}")
    if s.get("pue") is not None and s["pue"] < 1:
        errors.append(f"PUE must be >= 1 (1.0 means no facility overhead), got {s['pue']}")
    h = s.get("hours_per_day")
    if h is not None and not 0 < h <= 24:
        errors.append(f"hours per day must be between 0 and 24, got {h:g}")
    for slot in ("price_usd_kwh", "grid_gco2_kwh"):
        v = s.get(slot)
        if v is not None and (not math.isfinite(v) or v < 0 or (slot == "price_usd_kwh" and v == 0)):
            errors.append(f"{slot} must be a positive number, got {v}")
    return errors


def _finish(*, protocol: str, slots: dict[str, Any], lang: str, text: str, warnings: list[str], conversions: list[str],
            explain: bool, precisions: list[str], all_precisions: bool, gpus: list[str], symptoms: list[str],
            reported_tok_s: float | None, reported_power_w: float | None, reported_j_per_1k_tok: float | None,
            nightly: bool, compiled: bool, model_name: str | None, model_known: bool,
            axis: str | None = None, batch_sizes: list[int] | None = None) -> Query:
    cat = _catalog()
    errors: list[str] = []
    warnings = list(warnings)
    defaults = _defaults()
    defaults_applied: list[str] = []
    defaulted: list[str] = []
    s = dict(slots)

    # which comparison
    if axis is None:
        if len(gpus) > 1:
            axis = "gpu"
        elif explain and "model" not in s:
            axis = "model_size"
        elif protocol == "compare" and re.search(r"batch\s*sizes|批大小|不同批", text.lower()):
            axis = "batch_size"
        elif protocol == "compare" and "model" not in s and not all_precisions:
            axis = "model_size"
        else:
            axis = "precision"
    compare_precisions = [] if all_precisions else list(precisions)

    def default(slot: str, value: Any, why: str) -> None:
        s[slot] = value
        defaulted.append(slot)
        defaults_applied.append(f"{slot.replace('_', ' ')}: {value} ({why})")

    needs_model = protocol in ("optimize", "estimate")
    if needs_model and not s.get("model"):
        errors.append("model is required for this question: name one (e.g. 'Mistral-7B', 'Qwen2.5-7B') or a size "
                      "('a 7B model').")
    if ("gpu" not in s and axis != "gpu"
            and not (axis == "model_size" and protocol in ("compare", "diagnose") and "model" not in s)):
        default("gpu", DEFAULT_GPU, "default: the seed's most common consumer GPU; name yours for accurate figures")
    if "precision" not in s and axis != "model_size":
        default("precision", DEFAULT_PRECISION, "default: the unquantized baseline")
    if "batch_size" not in s:
        default("batch_size", defaults.get("batch_size", 1), "default: single request; batching is usually the biggest saving")
    if "prompt_tokens" not in s:
        default("prompt_tokens", defaults["prompt_tokens"], "default prompt length")
    if "gen_tokens" not in s:
        default("gen_tokens", defaults["gen_tokens"], "default generation length")
    if "use_case" not in s:
        default("use_case", DEFAULT_USE_CASE, "default; say 'chat' or 'offline batch' to change")
    if "region" not in s and ("price_usd_kwh" not in s or "grid_gco2_kwh" not in s):
        default("region", DEFAULT_REGION, "default electricity price and grid carbon; name a region to change")

    # hard errors (the seed's parameter guide)
    errors += _range_errors(s)
    bs = s.get("batch_size")
    if bs is not None and bs >= 1 and bs & (bs - 1):
        lo = 1 << (bs.bit_length() - 1)
        warnings.append(f"batch_size={bs} is not a power of 2; GPU kernels are tuned for powers of two. "
                        f"Consider {lo} or {lo * 2}.")
    if errors:
        raise QueryError(errors)

    # warnings that need the catalog
    arch = None
    if s.get("model") and model_known:
        try:
            arch = cat.resolve_model(s["model"])
        except cat.UnknownName:
            arch = None
    if s.get("model") and not model_known:
        p = s.get("model_params_b")
        size = f" ({_fmt(p)}B parameters)" if p else ""
        warnings.append(f"{model_name or s['model']}{size} is not directly measured: figures are derived from other "
                        "model sizes. For accurate results, measure it with `ecolobster bench`.")
    if arch is not None and arch.key not in _measured_models():
        warnings.append(f"{arch.name} ({arch.params_b:g}B parameters) has no measurements yet: its figures are "
                        "derived from measured models of similar size (see the provenance). Measure it with "
                        "`ecolobster bench` for exact figures.")
    if arch is not None and s.get("prompt_tokens") and s.get("gen_tokens"):
        total = s["prompt_tokens"] + s["gen_tokens"]
        if total > arch.context_length:
            warnings.append(f"prompt + generation = {total} tokens exceeds {arch.name}'s context window "
                            f"({arch.context_length} tokens).")
    gpu = None
    if s.get("gpu"):
        gpu = cat.resolve_gpu(s["gpu"])
    if gpu is not None and s.get("precision") == "bf16" and not gpu.bf16_support:
        warnings.append(f"BF16 is not supported natively on {gpu.name} ({gpu.architecture}); use FP16.")
    if gpu is not None and s.get("precision") == "fp8" and not gpu.fp8_support:
        warnings.append(f"{gpu.name} ({gpu.architecture}) has no FP8 tensor cores; FP8 weights would be emulated.")
    if gpu is not None and s.get("model_params_b") and s.get("precision"):
        from advisor import estimate as est

        need = est.memory_need_gb(s.get("model"), s["model_params_b"], s["precision"], s.get("batch_size") or 1,
                                  (s.get("prompt_tokens") or 0) + (s.get("gen_tokens") or 0))
        if need is not None and need > gpu.vram_gb:
            warnings.append(f"{model_name or s['model']} in {s['precision']} at batch size {s.get('batch_size')} needs "
                            f"about {need:.1f} GB of GPU memory (estimated), more than the {gpu.name}'s "
                            f"{gpu.vram_gb:g} GB. Consider a smaller batch, shorter sequences or a 4-bit/8-bit format.")
    if s.get("batch_size") == 1 and s.get("use_case") in ("production_api", "offline_batch") and "batch_size" not in defaulted:
        warnings.append(f"batch size 1 for {USE_CASE_LABEL[s['use_case']]}: batching concurrent requests is the "
                        "largest energy saving available (see the batch comparison).")
    try:
        return _build(protocol, text, lang, defaults_applied, defaulted, warnings, conversions, axis, compare_precisions,
                      gpus, batch_sizes, explain, symptoms, reported_tok_s, reported_power_w, reported_j_per_1k_tok,
                      nightly, compiled, model_name, arch, model_known, s)
    except ValidationError as err:  # a value no rule above caught: still a clear error, never a crash
        raise QueryError([f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()]) from None


def _build(protocol, text, lang, defaults_applied, defaulted, warnings, conversions, axis, compare_precisions, gpus,
           batch_sizes, explain, symptoms, reported_tok_s, reported_power_w, reported_j_per_1k_tok, nightly, compiled,
           model_name, arch, model_known, s) -> Query:
    q = Query(
        protocol=protocol,  # type: ignore[arg-type]
        text=text,
        lang=lang,  # type: ignore[arg-type]
        defaults_applied=defaults_applied,
        defaulted=defaulted,
        warnings=warnings,
        conversions=conversions,
        compare_axis=axis,  # type: ignore[arg-type]
        compare_precisions=compare_precisions,
        compare_gpus=gpus if len(gpus) > 1 else [],
        compare_batch_sizes=batch_sizes or [],
        explain=explain,
        symptoms=symptoms,
        reported_tok_s=reported_tok_s,
        reported_power_w=reported_power_w,
        reported_j_per_1k_tok=reported_j_per_1k_tok,
        nightly=nightly,
        compiled=compiled,
        model_name=model_name or (arch.name if arch else None),
        model_known=model_known,
        **{k: v for k, v in s.items() if k in SLOTS},
    )
    return q
