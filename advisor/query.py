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
import difflib
import math
import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from measurements.schema import FRAMEWORKS, PRECISIONS, Framework, Precision

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
_PERIOD_IN_DAYS = {"day": 1.0, "hour": 1 / 24, "minute": 1 / 1440, "second": 1 / 86400, "week": 7.0}
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


def clean_text(text: str) -> str:
    """Text that can always be printed and serialised: lone surrogates (bytes that were not UTF-8)
    and control characters other than newlines and tabs become U+FFFD / spaces."""
    if text.isascii() and text.isprintable():
        return text
    t = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ("\ufffd" if unicodedata.category(ch) == "Cs" else " ")
                   for ch in t)


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u4dbf" or "\u4e00" <= ch <= "\u9fff"


def has_cjk(text: str) -> bool:
    return any(_is_cjk(ch) for ch in text)


# a number that does not start inside a word ("a800" holds no quantity)
_NUM = r"(?<![a-z0-9_.])(\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+)"
_MULT_RE = r"(?:\s*(thousand|million|billion|mil|mn|bn|k|m|b|千万|百万|万|亿|千|wan|yi)(?![a-z]))?"


def _number(num: str, mult: str | None = None) -> float:
    """A stated number with its multiplier word; an absurd one (a 400-digit "size") is a QueryError."""
    digits = num.replace(",", "")
    if len(digits) > 24:
        raise QueryError([f"the number '{digits[:12]}...' ({len(digits)} digits) is too long to be a real quantity"])
    v = float(digits) * _MULT.get((mult or "").strip(), 1.0)
    if not math.isfinite(v):
        raise QueryError([f"the number '{num}' is too large to be a real quantity"])
    return v


def _int(num: str, mult: str | None = None) -> int:
    return int(_number(num, mult))


def _fmt(v: float) -> str:
    """A readable number for conversion lines."""
    if v >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:,.3g}"


def _mentions(text: str, *words: str) -> bool:
    """A cheap substring test that decides whether a (costly to compile) pattern is worth trying."""
    return any(w in text for w in words)


def _blank(text: str, m: re.Match[str] | tuple[int, int]) -> str:
    """Remove a matched span so later rules do not read it twice (and what is left over can be
    reported as not understood)."""
    start, end = (m.start(), m.end()) if isinstance(m, re.Match) else m
    return text[:start] + " " * (end - start) + text[end:]


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


_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9._/+-]*[a-z0-9+]|[a-z0-9]")


def _find_spans(text: str, idx: dict[str, Any], min_len: int = 3, plural: bool = False) -> list[tuple[Any, int, int, str]]:
    """Catalog entries named in `text` as (entry, start, end, words), longest names first, in
    reading order, without overlaps. `plural` also reads "A100s" as "A100"."""
    cat = _catalog()
    toks = [(m.start(), m.end(), m.group(0)) for m in _TOKEN_RE.finditer(text)]
    grams = []
    for i in range(len(toks)):
        for n in range(min(5, len(toks) - i), 0, -1):
            grams.append((i, i + n, " ".join(t[2] for t in toks[i: i + n])))
    grams.sort(key=lambda g: -(g[1] - g[0]) * 1000 - len(g[2]))
    taken: set[int] = set()
    hits: list[tuple[Any, int, int, str]] = []
    for start, end, gram in grams:
        if any(i in taken for i in range(start, end)):
            continue
        key = cat.norm(gram)
        if len(key) < min_len:
            continue
        entry = idx.get(key)
        if entry is None and plural and key.endswith("s") and len(key) > min_len:
            entry = idx.get(key[:-1])
        if entry is None:
            continue
        taken.update(range(start, end))
        hits.append((entry, toks[start][0], toks[end - 1][1], gram))
    hits.sort(key=lambda h: h[1])
    return hits


def _find_in_index(text: str, idx: dict[str, Any], min_len: int = 3) -> list[Any]:
    """Catalog entries named in `text`, in reading order, each once."""
    seen: list[Any] = []
    for e, *_ in _find_spans(text, idx, min_len):
        if e not in seen:
            seen.append(e)
    return seen


# ---------------------------------------------------------------------------------------------
# the parser


class _Draft:
    """Mutable state while reading one question."""

    def __init__(self, text: str):
        self.raw = text
        # "2xH100" reads as "2x H100"; "8x7b" (Mixtral) stays a name
        self.t = re.sub(r"(?<![a-z0-9])(\d{1,4})\s*[x×*](?=[a-z])", r"\1x ", normalize_text(text))
        self.norm = self.t
        self.slots: dict[str, Any] = {}
        self.not_understood: list[str] = []
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
    # formats with no rows: named once, answered on the nearest measured one only inside a comparison
    unmeasured: list[tuple[int, str, str]] = []
    for rx, name, nearest in _UNMEASURED_RES:
        for m in list(rx.finditer(t)):
            unmeasured.append((m.start(), name, nearest))
            t = _blank(t, m)
    for bad in ("tf32",):
        m = re.search(rf"(?<![a-z0-9_]){bad}(?![a-z0-9_])", t)
        if m:
            d.errors.append(f"precision '{bad}' is not accepted. {_BAD_PRECISION[bad]} Accepted: {_ACCEPTED_PRECISIONS}.")
            t = _blank(t, m)
    # a bare "int8": both bitsandbytes variants in a list; alone, the load_in_8bit default
    bare_int8 = [m.start() for m in re.finditer(r"(?<![a-z0-9_])int[\s-]?8(?![a-z0-9_])|(?<![a-z0-9_])8[\s-]?bit\s+int", t)]
    t = re.sub(r"(?<![a-z0-9_])int[\s-]?8(?![a-z0-9_])", lambda m: " " * len(m.group(0)), t)
    d.t = t
    listed = len({k for _, k in found}) + len(bare_int8 and [1]) + len(unmeasured)
    for pos in bare_int8:
        if listed > 1:
            found += [(pos, "int8_mixed"), (pos, "int8_pure")]
            note = ("'INT8' compared as both bitsandbytes INT8 variants: int8_mixed (load_in_8bit default, outlier "
                    "threshold 6.0) and int8_pure (llm_int8_threshold=0.0)")
        else:
            found.append((pos, "int8_mixed"))
            note = ("'INT8' read as bitsandbytes load_in_8bit with its default outlier threshold 6.0 (int8_mixed); "
                    "say 'int8_pure' for llm_int8_threshold=0.0")
        if note not in d.conversions:
            d.conversions.append(note)
    if unmeasured:
        names = list(dict.fromkeys(n for _, n, _ in unmeasured))
        measured = {k for _, k in found}
        if measured:
            for pos, _name, nearest in unmeasured:
                if nearest not in measured:
                    found.append((pos, nearest))
            subs = ", ".join(f"{n} on {dict((x, y) for _, x, y in unmeasured)[n].upper()}" for n in names)
            d.warnings.append(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} not measured in the dataset: "
                              f"compared on the nearest measured format ({subs}); real {', '.join(names)} kernels "
                              "differ, so measure them with `ecolobster bench` before deciding")
            d.not_understood.append(f"{', '.join(names)}: no measurements; the comparison uses the nearest measured "
                                    "format instead")
        else:
            nearest = list(dict.fromkeys(x.upper() for _, _, x in unmeasured))
            d.errors.append(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} not measured in the dataset, so "
                            f"there are no figures for {'it' if len(names) == 1 else 'them'}. The nearest measured format "
                            f"is {' / '.join(nearest)} (bitsandbytes); ask about that, compare it with FP16, or measure "
                            f"yours with `ecolobster bench`. Measured formats: {_ACCEPTED_PRECISIONS}.")
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


_LEN_NUM = r"~?\s*(\d[\d,]*(?:\.\d+)?)\s*(k|千)?(?![a-z\d])"
_LEN_FILL = r"(?:\s*(?:of|with|at|around|about|roughly|approx\.?|approximately|averag\w*|avg|typically|usually|up\s+to|" \
            r"under|below|max(?:imum)?|length|len|size|is|are|=|:|~|为|是|约|大约|大概|长度|平均|左右)\s*)*"
_PROMPT_WORDS = (r"(?:prompts?|inputs?|input\s+length|context(?:\s+length|\s+window)?|sequence[\s_-]*length|seq[\s_-]*len(?:gth)?|"
                 r"prefill|输入|提示词?|上下文|序列长度)")
_GEN_WORDS = (r"(?:max_new_tokens|answers?|responses?|outputs?|output\s+length|completions?|generations?|generation[\s_-]*length|"
              r"gen[\s_-]*len(?:gth)?|repl(?:y|ies)|generat(?:e|es|ing)|new\s+tokens|输出|生成|回答|回复|答案)")
_TOK = r"(?:\s*(?:-\s*)?(?:tokens?|toks?|个?\s*token|词元))"


def _length_patterns(words: str) -> list[re.Pattern[str]]:
    return [
        # "1,500-token prompts", "300 token answers", "1500 input tokens", "8k context"
        re.compile(_LEN_NUM + _TOK + r"[\s-]+(?:long\s+)?" + words + r"(?![a-z])"),
        re.compile(_LEN_NUM + r"[\s-]*" + words + r"[\s-]*(?:tokens?|toks?)(?![a-z])"),
        re.compile(_LEN_NUM + r"[\s-]*(?:context|上下文)(?![a-z])") if "context" in words else None,
        # "prompts of 1500 tokens", "input 2k", "answers of about 300 tokens", "输入 1500 token"
        re.compile(words + r"(?![a-z])" + _LEN_FILL + _LEN_NUM + r"(?:" + _TOK + r")?"),
    ]


_PROMPT_RES = [p for p in _length_patterns(_PROMPT_WORDS) if p is not None]
_GEN_RES = [p for p in _length_patterns(_GEN_WORDS) if p is not None]


def _read_batch_and_lengths(d: _Draft) -> None:
    t = d.t
    m = None
    if _mentions(t, "batch", "bs", "批", "concurrent", "并发", "concurrency"):
        m = re.search(r"(?:batch[\s_-]*size|\bbs\b|批大小|批量大小|批次大小|批量|batch|concurrency|并发数?)\s*"
                      r"(?:=|:|of|is|to|at|为|是|设为)?\s*(-?\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?)", t) \
            or re.search(r"(-?\d[\d,]*)\s*(?:concurrent\s+(?:requests|users|sequences|streams)|并发)", t)
    if m:
        raw = m.group(1).replace(",", "")
        v = _number(raw.lstrip("-")) * (-1 if raw.startswith("-") else 1)
        if v != int(v):
            d.errors.append(f"batch size must be a whole number of requests, got {raw}")
        else:
            d.slots["batch_size"] = int(v)
        t = _blank(t, m)
    for slot, rxs, trigger in (("prompt_tokens", _PROMPT_RES, ("prompt", "input", "context", "seq", "prefill", "输入",
                                                                "提示", "上下文", "序列")),
                               ("gen_tokens", _GEN_RES, ("new_tokens", "answer", "respon", "output", "complet", "generat",
                                                         "gen", "repl", "输出", "生成", "回答", "回复", "答案"))):
        if not _mentions(t, *trigger):
            continue
        for rx in rxs:
            m = rx.search(t)
            if m:
                v = _number(m.group(1), "k" if m.group(2) else None)
                if v != int(v) or v < 1:
                    d.errors.append(f"{slot} must be a whole number of tokens >= 1, got '{m.group(0).strip()}'")
                else:
                    d.slots[slot] = int(v)
                    if m.group(2):
                        d.conversions.append(f"'{m.group(0).strip()}' read as {int(v):,} tokens ({slot.replace('_', ' ')})")
                t = _blank(t, m)
                break
    # "input 2k output 500" / "2k in, 500 out"
    if "prompt_tokens" not in d.slots or "gen_tokens" not in d.slots:
        m = re.search(_LEN_NUM + r"\s*(?:tokens?\s*)?(?:in|input)\s*[,/]?\s*(?:and\s+)?" + _LEN_NUM + r"\s*(?:tokens?\s*)?"
                      r"(?:out|output)\b", t)
        if m:
            d.slots.setdefault("prompt_tokens", int(_number(m.group(1), "k" if m.group(2) else None)))
            d.slots.setdefault("gen_tokens", int(_number(m.group(3), "k" if m.group(4) else None)))
            t = _blank(t, m)
    d.t = t


_PCT_RE = re.compile(r"\bp(\d{2}(?:\.\d+)?)\b|(\d{2}(?:\.\d+)?)(?:th|%)?\s*percentile|百分位\s*(\d{2})|(\d{2})\s*分位")


def _read_latency(d: _Draft) -> None:
    """Latency targets: per token ("p90 under 50 ms per token", "ITL 40ms") and per answer
    ("under 2 s per answer"). Time to first token has no slot yet: reported, not dropped."""
    if not _mentions(d.t, "ms", "sec", " s", "毫秒", "秒", "latency", "延迟"):
        return
    for m in list(re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(ms|milliseconds?|毫秒|s|secs?|seconds?|秒)(?![a-z])", d.t)):
        lo, hi = max(0, m.start() - 45), min(len(d.t), m.end() + 25)
        around = d.t[lo:hi]
        value = _number(m.group(1))
        unit_s = value / 1000 if m.group(2) in ("ms", "millisecond", "milliseconds", "毫秒") else value
        pct = _PCT_RE.search(around)
        span = (m.start(), m.end())
        after = d.t[m.end():m.end() + 22]
        itl_cue = (r"per[\s-]*token|/\s*tok|\bitl\b|tpot|inter[\s-]*token|token[\s-]*latency|每\s*个?\s*token|逐字")
        e2e_cue = (r"answer|response|request|reply|completion|end[\s-]*to[\s-]*end|\be2e\b|回答|响应|请求|回复")
        # the words right after the number decide first ("50 ms per token and 2 s per answer")
        if re.search(itl_cue, after) and "itl_target_ms" not in d.slots or re.search(e2e_cue, after) and "e2e_target_s" not in d.slots:
            around = after
        if re.search(r"first\s+token|ttft|首\s*token|首字", around):
            d.not_understood.append(f"'{around.strip()}': a time-to-first-token target; the advisor has no TTFT slot yet, "
                                    "so it is not checked")
        elif re.search(r"per[\s-]*token|/\s*tok|\bitl\b|tpot|inter[\s-]*token|token[\s-]*latency|每\s*个?\s*token|逐字",
                       around):
            d.slots["itl_target_ms"] = unit_s * 1000
            if pct:
                d.slots["itl_percentile"] = _number(next(g for g in pct.groups() if g))
        elif re.search(r"answer|response|request|reply|completion|end[\s-]*to[\s-]*end|\be2e\b|回答|响应|请求|回复|延迟|"
                       r"latency", around):
            d.slots["e2e_target_s"] = unit_s
            if pct:
                d.extra["e2e_percentile"] = _number(next(g for g in pct.groups() if g))
        else:
            continue
        d.t = _blank(d.t, span)
        if pct:
            d.t = _blank(d.t, (lo + pct.start(), lo + pct.end()))


def _read_reported(d: _Draft) -> None:
    t = d.t
    m = re.search(_NUM + r"\s*(?:tok/s|tokens?/s(?:ec)?|tokens?\s+per\s+second|t/s|tps\b|个?token每秒)", t) \
        if _mentions(t, "/s", "second", "tps", "每秒") else None
    if m:
        d.extra["reported_tok_s"] = _number(m.group(1))
        t = _blank(t, m)
    m = re.search(_NUM + r"\s*(kw|w|watts?|瓦)(?![a-z])(?!\s*h)", t)
    if m:
        d.extra["reported_power_w"] = _number(m.group(1)) * (1000 if m.group(2) == "kw" else 1)
        t = _blank(t, m)
    m = re.search(_NUM + r"\s*j\s*(?:/|per)\s*1k", t) if _mentions(t, "1k") else None
    if m:
        d.extra["reported_j_per_1k_tok"] = _number(m.group(1))
        t = _blank(t, m)
    d.t = t


def _read_money_and_grid(d: _Draft) -> None:
    t = d.t
    if not _mentions(t, "kwh", "度", "pue"):
        return
    m = re.search(r"\$\s*" + _NUM + r"\s*(?:/|per|a)\s*kwh", t) or re.search(
        _NUM + r"\s*(?:usd|\$|dollars?|美元)\s*(?:/|per|a|每)\s*(?:kwh|度)", t)
    if m:
        d.slots["price_usd_kwh"] = _number(m.group(1))
        t = _blank(t, m)
    m = re.search(_NUM + r"\s*(?:g|grams?|克)\s*(?:co2e?|co₂)?\s*(?:/|per|每)\s*(?:kwh|度)", t)
    if m:
        d.slots["grid_gco2_kwh"] = _number(m.group(1))
        t = _blank(t, m)
    m = re.search(r"\bpue\s*(?:of|=|:|is|为)?\s*" + _NUM, t)
    if m:
        d.slots["pue"] = _number(m.group(1))
        t = _blank(t, m)
    d.t = t


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
    people = _mentions(t, "user", "people", "customer", "employee", "用户", "人")
    # N users each sending M messages a day: both stated, no factor needed
    m = re.search(_NUM + _MULT_RE + r"\s*(?:daily\s+)?(?:active\s+)?(?:users?|people|customers|employees|个?用户|人)"
                  r"[\s,，]*(?:who\s+)?(?:each|every\s+one|每人|每个人?)?\s*(?:send(?:s|ing)?|mak(?:es|ing)|ask(?:s|ing)?|"
                  r"with|having|do(?:es|ing)?|发|发送|问)?\s*(?:about|around|~|roughly|约)?\s*" + _NUM + _MULT_RE
                  + r"\s*(?:messages|requests|queries|questions|chats|prompts|calls|条消息|次请求|个问题|条|次)" + _PERIOD_RE, t) \
        if people else None
    if m:
        users, each = _number(m.group(1), m.group(2)), _number(m.group(3), m.group(4))
        per = _period(m.group(5)) or "day"
        rpm = users * each * _per_month(per)
        d.slots["requests_per_month"] = rpm
        d.slots["workload"] = m.group(0).strip()
        conv.append(f"{_fmt(users)} users x {_fmt(each)} requests per user per {per} x {_fmt(_per_month(per))} "
                    f"{per}s/month = {_fmt(rpm)} requests/month")
        d.t = _blank(t, m)
        return
    # users per day x requests per user per day
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
    # requests (and what users call them: messages, chats, queries), QPS / RPS
    asks = _mentions(t, "req", "call", "quer", "inference", "prompt", "messag", "chat", "conversation", "question",
                     "completion", "qps", "rps", "请求", "调用", "推理", "次", "消息", "对话", "问题")
    noun = (r"(?:requests?|reqs?|calls?|queries|query|inferences|prompts|messages|msgs|chats|conversations|questions|"
            r"completions|generations|次请求|个请求|次调用|次推理|条消息|次对话|个问题|请求|消息|次)")
    m = lead = None
    per_second = re.search(r"(?:\b(?:qps|rps)\s*(?:of|=|:|is|about|around|~|at|peak|峰值|为|约)?\s*~?" + _NUM + _MULT_RE
                           + r"|" + _NUM + _MULT_RE + r"\s*(?:qps|rps|req/s|requests/s)\b)", t) \
        if _mentions(t, "qps", "rps", "/s") else None
    if per_second:
        num, mult = (per_second.group(1), per_second.group(2)) if per_second.group(1) else (per_second.group(3),
                                                                                           per_second.group(4))
        n, per = _number(num, mult), "second"
    elif asks:
        m = re.search(_NUM + _MULT_RE + r"\s*(?:[a-z-]+\s+){0,2}?" + noun + _PERIOD_RE, t)
        if m is None or m.group(3) is None:  # "每秒 10 个请求": the period comes first
            lead = re.search(_LEAD_PERIOD_RE + _NUM + _MULT_RE + r"\s*(?:次|个|条)?(?:[\u4e00-\u9fff]{0,4}?)?"
                             r"(?:请求|调用|推理|消息|对话|问题|requests?|calls?|messages|queries)", t)
            m = None if lead else m
        if m:
            n, per = _number(m.group(1), m.group(2)), _period(m.group(3))
        elif lead:
            n, per = _number(lead.group(3), lead.group(4)), _period(lead.group(1) or lead.group(2))
    hit = per_second or m or lead
    if hit:
        rpm = _monthly(n, per)
        d.slots["requests_per_month"] = rpm
        d.slots["workload"] = hit.group(0).strip()
        if per and per != "month":
            conv.append(f"{_fmt(n)} requests per {per} x {_fmt(_per_month(per))} {per}s/month = "
                        f"{_fmt(rpm)} requests/month")
        elif per is None:
            conv.append(f"'{hit.group(0).strip()}' states no period: read as per month")
        d.t = _blank(t, hit)
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
    m = re.search(_NUM + r"\s*(kb|mb|gb|tb|gigabytes?|megabytes?|terabytes?)\b\s*(?:of\s+)?(?:\w+\s+)?(?:text|data|corpus|"
                  r"documents|logs|文本|数据|语料)" + _PERIOD_RE, t) \
        if _mentions(t, "b ", "byte") or t.endswith("b") else None
    if m:
        unit = m.group(2)[0] + "b"
        gb = _number(m.group(1)) * _BYTES[unit] / _BYTES["gb"]
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
        d.slots["hours_per_day"] = _number(m.group(1))
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


_COUNT_WORDS = {"one": 1, "single": 1, "a single": 1, "two": 2, "dual": 2, "a pair of": 2, "pair of": 2, "twin": 2,
                "three": 3, "four": 4, "quad": 4, "six": 6, "eight": 8, "sixteen": 16, "两": 2, "双": 2, "四": 4, "八": 8}
_COUNT_RE = r"(\d{1,5}|a single|a pair of|pair of|single|one|two|dual|twin|three|four|quad|six|eight|sixteen|两|双)"
# the count right before a GPU's name: "2x H100", "8 A100s", "a node of 8 H100", "两张A800", "4块4090"
_COUNT_BEFORE_RE = re.compile(_COUNT_RE + r"\s*(?:x|×|\*|张|块|卡|个)?\s*(?:nvidia\s+|geforce\s+|tesla\s+)?$")
_GPU_COUNT_RES = [
    re.compile(r"(?:tensor[\s_-]*parallel(?:ism)?(?:[\s_-]*(?:size|degree))?|\btp(?:[\s_-]*size)?)\s*(?:=|:|of|is|为)?\s*(\d{1,5})\b"),
    re.compile(r"\btp(\d{1,3})\b"),
    re.compile(_COUNT_RE + r"\s*(?:x\s*)?(?:gpus|gpu's|graphics cards|cards|devices|accelerators|张卡|块卡|卡|张显卡|块显卡)(?![a-z])"),
]
# a word before "GPU" that names no GPU we know ("mars gpu"): an unknown GPU, never a default one
_NOT_A_GPU_NAME = set(["a", "an", "the", "my", "our", "your", "their", "his", "her", "its", "this", "that", "these", "those", "one", "single", "same", "each", "per", "any", "every", "which", "what", "whose", "another", "other", "different", "new", "old", "older", "newer", "modern", "current", "latest", "desktop", "laptop", "gaming", "server", "workstation", "dedicated", "shared", "home", "free", "spare", "extra", "consumer", "datacenter", "data-center", "cloud", "local", "remote", "big", "small", "large", "tiny", "cheap", "cheaper", "cheapest", "best", "better", "fastest", "faster", "slower", "slowest", "more", "fewer", "multiple", "several", "many", "few", "some", "all", "no", "only", "first", "second", "third", "right", "wrong", "good", "bad", "nvidia", "amd", "intel", "rented", "rent", "own", "existing", "available", "strong", "weak", "powerful", "modest", "high-end", "low-end", "mid-range", "entry-level", "budget", "decent", "same-size", "whole", "full", "entire", "typical", "standard", "different-size", "integrated", "discrete", "external", "internal", "virtual", "physical", "bare", "multi", "single-gpu", "multi-gpu", "per-gpu", "on", "of", "in", "for", "with", "to", "from", "at", "by", "as", "is", "are", "was", "be", "and", "or", "not", "my-own", "of-the", "24gb", "16gb", "48gb", "80gb", "vram", "memory", "enough", "idle", "hot", "blackwell", "hopper", "ampere", "ada", "lovelace", "turing", "volta", "pascal"])


def _read_gpu(d: _Draft) -> None:
    cat = _catalog()
    hits = _find_spans(d.t, cat._gpu_index(), min_len=2, plural=True)
    gpus: list[str] = []
    counts: list[tuple[int, str]] = []
    for g, start, end, _words in hits:
        if g.key not in gpus:
            gpus.append(g.key)
        before = _COUNT_BEFORE_RE.search(d.t[max(0, start - 24):start])
        if before:
            word = before.group(1)
            n = _COUNT_WORDS.get(word) or (_int(word) if word.isdigit() else 0)
            if n:
                counts.append((n, f"{word} {_words}"))
                start = max(0, start - 24) + before.start()
        d.t = _blank(d.t, (start, end))
    # architecture names ("my Blackwell GPU"): the GPU of that architecture with the most rows
    for word, arch in _ARCH_WORDS.items():
        if re.search(rf"\b{word}\b", d.t) and not gpus:
            key = _gpu_for_arch(arch)
            if key:
                gpus.append(key)
                d.conversions.append(f"'{word}' read as {key}, the {arch} GPU with the most measurements")
    unknown: list[str] = []  # one error for all unknown names, the supported list said once
    if not hits:
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
    if not gpus:
        for m in re.finditer(r"(?<![\w.-])([a-z][a-z0-9-]{1,20})\s+(?:gpus?|graphics\s+cards?|显卡)\b", d.t):
            word = m.group(1)
            if (word in _NOT_A_GPU_NAME or word in _ARCH_WORDS or re.search(r"(?:er|est|ed|ing|ly|ful|al)$", word)
                    or any(u.startswith(f"'{word}'") for u in unknown)):
                continue
            near = difflib.get_close_matches(cat.norm(word), list(cat._gpu_index()), n=3, cutoff=0.6)
            keys = list(dict.fromkeys(cat._gpu_index()[n].key for n in near))
            hint = f" (did you mean {', '.join(repr(k) for k in keys)}?)" if keys else ""
            unknown.append(f"'{word}'{hint}")
    if unknown:
        more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
        d.errors.append(f"GPU {', '.join(unknown[:5])}{more} {'is' if len(unknown) == 1 else 'are'} not "
                        f"supported. Supported: {_gpu_list()}. For another GPU, measure it with "
                        "`ecolobster bench`.")
    if gpus:
        d.slots["gpu"] = gpus[0]
        d.extra["gpus"] = gpus
    _read_gpu_count(d, counts)


def _read_gpu_count(d: _Draft, counts: list[tuple[int, str]]) -> None:
    """GPUs per replica: tensor parallel size first ("8 GPUs, tensor parallel 4" is two replicas of
    four), else the count stated with the GPU or as "N GPUs"."""
    tp: tuple[int, str] | None = None
    total: list[tuple[int, str]] = list(counts)
    for i, rx in enumerate(_GPU_COUNT_RES):
        for m in list(rx.finditer(d.t)):
            word = m.group(1)
            n = _COUNT_WORDS.get(word) or (_int(word) if word.isdigit() else 0)
            if not n:
                continue
            if i < 2:
                tp = tp or (n, m.group(0).strip())
            else:
                total.append((n, m.group(0).strip()))
            d.t = _blank(d.t, m)
    if tp is not None:
        d.slots["gpu_count"] = tp[0]
        d.extra["gpu_count_words"] = tp[1]
        others = sorted({n for n, _ in total if n != tp[0]})
        for n in others:
            if n % tp[0] == 0:
                d.conversions.append(f"{n} GPUs at tensor parallel {tp[0]} = {n // tp[0]} replicas of {tp[0]} GPUs; "
                                     "figures are per replica")
            else:
                d.warnings.append(f"{n} GPUs and tensor parallel {tp[0]} were both stated; {n} is not a multiple of "
                                  f"{tp[0]}: answered for {tp[0]} GPUs per replica")
        return
    values = sorted({n for n, _ in total})
    if len(values) == 1:
        d.slots["gpu_count"] = values[0]
        d.extra["gpu_count_words"] = next(w for n, w in total if n == values[0])
    elif len(values) > 1:
        d.errors.append(f"the GPU count is stated more than once with different values ({', '.join(map(str, values))}): "
                        "say how many GPUs serve one copy of the model (e.g. '2x H100' or 'tensor parallel 4')")


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
    spans = _find_spans(d.t, cat._model_index(), min_len=4)
    if spans:
        m = spans[0][0]
        d.slots["model"] = m.key
        d.slots["model_params_b"] = m.params_b
        d.extra["model_name"] = m.name
        d.extra["model_known"] = True
        d.extra["models"] = list(dict.fromkeys(h[0].key for h in spans))
        for e, start, end, words in spans:
            d.t = _blank(d.t, (start, end))
            if e.key != m.key:
                d.not_understood.append(f"'{words}': a second model; comparing models is not supported, so the answer "
                                        f"is for {m.name} only (ask about {e.name} separately)")
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
        size = _model_size(sm.group(1), d)
        if size is None:
            continue
        # a mixture of experts named by its active parameters ("Qwen3-30B-A3B"): total size first
        d.slots["model"] = name
        d.slots["model_params_b"] = size
        d.extra["model_name"] = name
        d.extra["model_known"] = False
        active = re.search(r"-a(\d+(?:\.\d+)?)b(?![a-z0-9])", name)
        if active:
            d.not_understood.append(f"'{name}': a mixture of experts with {active.group(1)}B active parameters; it is "
                                    f"not in the catalog, so its figures are scaled from its {_fmt(size)}B total as a "
                                    "dense model and overstate energy per token")
        d.t = d.t.replace(name, " " * len(name), 1)
        return
    # "a 7B model", "7b 模型"
    m = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)\s*b\b(?:[\s-]*(?:param(?:eter)?s?|model|llm|模型|参数))?", d.t)
    if m and not re.search(r"\d\s*b\s*(?:yte|it)", d.t[m.start():m.end() + 4]) and _model_size(m.group(1), d):
        size = _number(m.group(1))
        d.t = _blank(d.t, m)
        d.slots["model"] = f"{_fmt(size)}B model"
        d.slots["model_params_b"] = size
        d.extra["model_name"] = f"a {_fmt(size)}B model"
        d.extra["model_known"] = False


def _model_size(num: str, d: _Draft) -> float | None:
    """Billions of parameters from a name; a size no model has is an error, not a crash."""
    size = _number(num)
    if size <= 0:
        return None
    top = _factor("max_model_params_b")
    if size > top:
        d.errors.append(f"a model of {_fmt(size)}B parameters is beyond any model we can reason about "
                        f"(up to {_fmt(top)}B): check the size")
        return None
    return size


_US_PRONOUN_RE = re.compile(r"\b(?:tell|told|tells|help|helps|let|lets|give|gives|gave|show|shows|for|to|with|of|from|"
                            r"by|among|charge|charges|charged|cost|costs|bill|bills|billed)\s+us\b")


def _read_region(d: _Draft) -> None:
    """A region only when the question names one: a two-letter code must be written as one ("US",
    "EU", "in the us"), never read from the pronoun "us" or a unit ("80 GB")."""
    cat = _catalog()
    raw = d.raw
    for r, start, end, words in _find_spans(d.t, cat._region_index(), min_len=2):
        if len(cat.norm(words)) <= 2:
            code = words.strip()
            upper = re.search(rf"(?<![A-Za-z]){re.escape(code.upper())}(?![A-Za-z])", raw)
            lower_ok = re.search(rf"\b(?:in|the|across|region|grid)\s+(?:the\s+)?{re.escape(code)}\b", d.t)
            if re.search(r"\d\s*$", d.t[:start]) or not (upper or lower_ok):
                continue
            if code == "us" and _US_PRONOUN_RE.search(d.t[max(0, start - 12):end]) and not lower_ok:
                continue
        d.slots["region"] = r.key
        d.t = _blank(d.t, (start, end))
        return
    if re.search(r"中国|国内", d.t):
        with contextlib.suppress(cat.UnknownName):
            d.slots["region"] = cat.resolve_region("china").key
            return
    m = re.search(r"\b(?:region|grid|located|datacenter|data\s+center)\s*(?:is|=|:|of|in|at)?\s*(?:the\s+)?([a-z][a-z_-]{1,20})\b", d.t)
    if m and m.group(1) not in ("is", "of", "in", "at", "the", "a", "my", "our", "and", "carbon", "intensity", "price",
                                "mix", "average", "where", "with", "power", "electricity", "emissions", "which", "what"):
        try:
            d.slots["region"] = cat.resolve_region(m.group(1)).key
        except cat.UnknownName as err:
            d.errors.append(f"region '{m.group(1)}' is not in the catalog.{_near(err)} Accepted: "
                            f"{', '.join(x.key for x in cat.regions())}; or state the price ($/kWh) and grid "
                            "intensity (gCO2/kWh) yourself.")
        d.t = _blank(d.t, m)


# serving frameworks as users name them -> measurements.schema.FRAMEWORKS; the most specific first
_FRAMEWORK_PHRASES: list[tuple[str, str, str | None]] = [
    (r"tensorrt[\s_-]*llm|trt[\s_-]*llm|\btensorrt\b|triton[\s-]+(?:inference[\s-]+)?server", "trt-llm", None),
    (r"\bvllm\b", "vllm", None),
    (r"\bsglang\b", "sglang", None),
    (r"text[\s-]*generation[\s-]*inference|\btgi\b", "tgi", None),
    (r"llama[\s._-]?cpp|llamacpp|\bgguf\b", "llama.cpp", None),
    (r"\bollama\b", "llama.cpp", "Ollama runs llama.cpp: read as the llama.cpp framework"),
    (r"(?:hf|hugging\s*face|transformers)[^.?!,]{0,30}continuous[\s-]*batching|continuous[\s-]*batching[^.?!,]{0,30}"
     r"(?:hf|hugging\s*face|transformers)", "hf-continuous-batching", None),
    (r"static[\s_-]*cache|cuda[\s-]*graphs?|torch\.compile|torch\s+compile", "hf-static-cache", None),
    (r"hugging\s*face\s+transformers|\bhf\s+transformers|\btransformers\b|\bhf\s+generate|\.generate\(\)|"
     r"model\.generate|\bhf\s+eager|eager\s+mode", "hf-eager", None),
]
_FRAMEWORK_RES = [(re.compile(p), k, note) for p, k, note in _FRAMEWORK_PHRASES]
# frameworks whose kernels run compiled (CUDA graphs, fused kernels): the FP8 eager-mode trap does not apply
_COMPILED_FRAMEWORKS = ("vllm", "sglang", "tgi", "trt-llm", "hf-static-cache")


def _read_framework(d: _Draft) -> None:
    if not _mentions(d.t, "llm", "lang", "tgi", "text", "llama", "gguf", "ollama", "batching", "cache", "graph",
                     "compile", "transformers", "hf", "eager", "generate", "tensorrt", "triton", "trt"):
        return
    found: list[tuple[int, str, str]] = []
    for rx, key, note in _FRAMEWORK_RES:
        for m in list(rx.finditer(d.t)):
            found.append((m.start(), key, m.group(0).strip()))
            if note and note not in d.conversions:
                d.conversions.append(note)
            d.t = _blank(d.t, m)
    if not found:
        return
    found.sort()
    keys = list(dict.fromkeys(k for _, k, _ in found))
    d.slots["framework"] = keys[0]
    d.extra["framework_words"] = found[0][2]
    for k in keys[1:]:
        words = next(w for _, kk, w in found if kk == k)
        d.not_understood.append(f"'{words}': a second serving framework; the answer is for {keys[0]} only")


def _read_use_case(d: _Draft) -> None:
    for rx, key in _USE_CASE_RES:
        if rx.search(d.norm):  # the words as written: "chat requests" was read as a rate already
            d.slots["use_case"] = key
            return


def _read_flags(d: _Draft) -> None:
    raw = d.raw.lower()
    d.extra["nightly"] = bool(re.search(r"nightly|\.dev\d*|dev\s+build|预览版|夜间版", raw))
    d.extra["compiled"] = bool(re.search(r"vllm|sglang|torch\.compile|tensorrt|transformer\s+engine|\btgi\b|"
                                         r"text[\s-]*generation[\s-]*inference|trt[\s_-]*llm|cuda[\s-]*graphs?", raw))
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
    if (hit["compare"] or d.extra.get("all_precisions") or len(d.extra.get("gpus", [])) > 1
            or len(d.extra.get("precisions", [])) > 1):
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


# what a stated quantity looks like: a number with a unit, or money
_LEFTOVER_RE = re.compile(
    r"(?:[$€£¥]\s*\d[\d,]*(?:\.\d+)?(?:\s*(?:k|m|million|thousand|/\s*[a-z]+))?)"
    r"|(?<![\w.])\d[\d,]*(?:\.\d+)?\s*(?:k|m|b|thousand|million|billion|万|亿)?\s*"
    r"(?:tokens?|toks?|tok/s|ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|"
    r"gb|tb|mb|gib|w|kw|mw|watts?|kwh|mwh|%|percent|users?|requests?|calls?|queries|messages|gpus?|nodes?|replicas?|"
    r"servers?|instances?|epochs?|examples?|documents?|docs|pages|files|images|usd|dollars?|eur|euros?|yuan|rmb|元|"
    r"cents?|gco2|kgco2|tco2|tonnes?|秒|毫秒|分钟|小时|天|个月|年|块|张|台|用户|请求|条|次|字)(?![a-z])"
)


def _leftover_facts(t: str) -> list[str]:
    """Quantities still in the text after every reader took its part: stated, but not used."""
    out = []
    for m in _LEFTOVER_RE.finditer(t):
        words = " ".join(m.group(0).split())
        out.append(f"'{words}': a stated quantity the advisor could not place in the question; the answer does not "
                   "use it")
    return out


def parse(text: str, context: Context | None = None, protocol: str | None = None) -> Query:
    """Read a question in English or Chinese; merge it over `context` (the previous slots).
    `protocol` (one of QUERY_PROTOCOLS) forces the protocol, as the chat's /compare etc. do; with a
    context the text may then be empty ("run the last configuration through this protocol")."""
    if not isinstance(text, str):
        raise QueryError([f"the question must be text, not {type(text).__name__}"])
    text = clean_text(text)
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
        _read_latency(d)
        _read_batch_and_lengths(d)
        _read_workload(d)
        _read_framework(d)
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
    if protocol != "plan":  # the fine-tuning reader takes its own figures (budget, examples, epochs)
        d.not_understood += _leftover_facts(d.t)
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
        not_understood=d.not_understood,
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


def _norm_framework(value: Any) -> str | None:
    v = str(value).strip().lower()
    if v in FRAMEWORKS:
        return v
    for rx, key, _note in _FRAMEWORK_RES:
        if rx.fullmatch(v) or rx.search(v):
            return key
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
                    if err.nearest:  # a typo of a catalog name is answered as typed, never swapped: say so
                        warnings.append(f"model '{name}' is not in the catalog: answered as an uncatalogued "
                                        f"{sm.group(1)}B model.{_near(err)}")
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
    for name in ("batch_size", "prompt_tokens", "gen_tokens", "gpu_count"):
        if name in given:
            v = _int_field(given[name], name, errors)
            if v is not None:
                out[name] = v
    if "framework" in given:
        fw = _norm_framework(given["framework"])
        if fw is None:
            errors.append(f"framework '{given['framework']}' is not known. Accepted: {', '.join(FRAMEWORKS)} (or vLLM, "
                          "TGI, SGLang, TensorRT-LLM, llama.cpp, Ollama, HF transformers).")
        else:
            out["framework"] = fw
    rates = [n for n in ("requests_per_month", "requests_per_day", "users_per_day", "tokens_per_month", "tokens_per_day")
             if n in given]
    if len(rates) > 1:
        errors.append(f"{' and '.join(rates)} were both given: state the workload once (one of them).")
    for name in ("requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day", "price_usd_kwh",
                 "grid_gco2_kwh", "pue", "reported_tok_s", "reported_power_w", "itl_target_ms", "itl_percentile",
                 "e2e_target_s"):
        if name in given:
            v = _float_field(given[name], name, errors)
            if v is not None and name.startswith(("reported_", "itl_", "e2e_")) and v <= 0:
                errors.append(f"{name} must be a positive number, got {given[name]!r}")
            elif v is not None:
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
    top_bs = int(_factor("max_accepted_batch_size"))
    bs = s.get("batch_size")
    if bs is not None:
        if bs < 1:
            errors.append(f"batch_size must be >= 1, got {bs}. Did you mean batch_size=1?")
        elif bs > top_bs:
            errors.append(f"batch_size={bs} exceeds the maximum accepted ({top_bs} concurrent requests). Use "
                          f"batch_size <= {top_bs}; for more traffic, add replicas (the capacity answer counts them).")
    top_tok = _factor("max_query_tokens")
    for slot, typical in (("prompt_tokens", "512 (chat), 1024 (documents), 2048 (long context)"),
                          ("gen_tokens", "128 (short answers), 256 (default), 512 (detailed answers)")):
        v = s.get(slot)
        if v is not None and v < 1:
            errors.append(f"{slot} must be >= 1, got {v}. Typical values: {typical}.")
        elif v is not None and v > top_tok:
            errors.append(f"{slot}={_fmt(v) if v < 1e30 else '1e30+'} is longer than any model's context window "
                          f"(up to {_fmt(top_tok)} tokens). Typical values: {typical}.")
    gc = s.get("gpu_count")
    if gc is not None and not 1 <= gc <= 4096:
        errors.append(f"gpu_count must be between 1 and 4096 GPUs per replica, got {gc}")
    top_rate = _factor("max_monthly_requests")
    for slot in ("requests_per_month", "tokens_per_month", "job_tokens"):
        v = s.get(slot)
        if v is not None and (not math.isfinite(v) or v < 0):
            errors.append(f"{slot} must be a non-negative number, got {v}")
        elif v is not None and v > top_rate * (1 if slot == "requests_per_month" else 1e4):
            errors.append(f"{slot}={v:.3g} is beyond any real workload (the bound is "
                          f"{top_rate * (1 if slot == 'requests_per_month' else 1e4):.0e}): check the figure")
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
            axis: str | None = None, batch_sizes: list[int] | None = None,
            not_understood: list[str] | None = None) -> Query:
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
    if bs is not None and defaults.get("max_batch_size") and bs > defaults["max_batch_size"]:
        warnings.append(f"batch_size={bs} is beyond the measured range (up to {defaults['max_batch_size']}): its "
                        "figures are extrapolated, not measured; check them with `ecolobster bench`.")
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
    named = {s.get("precision"), *compare_precisions}
    if gpu is not None and "bf16" in named and not gpu.bf16_support:
        warnings.append(f"BF16 is not supported natively on {gpu.name} ({gpu.architecture}); use FP16.")
    if gpu is not None and "fp8" in named and not gpu.fp8_support:
        warnings.append(f"{gpu.name} ({gpu.architecture}) has no FP8 tensor cores; FP8 weights would be emulated.")
    if gpu is not None and s.get("model_params_b") and s.get("precision"):
        from advisor import estimate as est

        need = est.memory_need_gb(s.get("model"), s["model_params_b"], s["precision"], s.get("batch_size") or 1,
                                  (s.get("prompt_tokens") or 0) + (s.get("gen_tokens") or 0))
        n_gpu = s.get("gpu_count") or 1
        if need is not None and need > gpu.vram_gb * n_gpu:
            have = f"{n_gpu} x {gpu.name}'s {gpu.vram_gb * n_gpu:g} GB" if n_gpu > 1 else f"{gpu.name}'s {gpu.vram_gb:g} GB"
            warnings.append(f"{model_name or s['model']} in {s['precision']} at batch size {s.get('batch_size')} needs "
                            f"about {need:.1f} GB of GPU memory (estimated), more than the {have}. Consider more "
                            "GPUs, a smaller batch, shorter sequences or a 4-bit/8-bit format.")
    if s.get("batch_size") == 1 and s.get("use_case") in ("production_api", "offline_batch") and "batch_size" not in defaulted:
        warnings.append(f"batch size 1 for {USE_CASE_LABEL[s['use_case']]}: batching concurrent requests is the "
                        "largest energy saving available (see the batch comparison).")
    compiled = compiled or s.get("framework") in _COMPILED_FRAMEWORKS
    try:
        q = _build(protocol, text, lang, defaults_applied, defaulted, warnings, conversions, axis, compare_precisions,
                   gpus, batch_sizes, explain, symptoms, reported_tok_s, reported_power_w, reported_j_per_1k_tok,
                   nightly, compiled, model_name, arch, model_known, s)
        q.not_understood = list(dict.fromkeys(not_understood or []))
        return q
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
