"""Readers of named things: precisions and formats, GPUs and their count, models, regions, frameworks,
the use case and flags."""

from __future__ import annotations

import contextlib
import difflib
import re

from advisor.query.draft import _Draft
from advisor.query.lookup import (
    _catalog,
    _factor,
    _find_spans,
    _gpu_for_arch,
    _gpu_list,
    _looks_like_gpu,
    _near,
)
from advisor.query.text import _blank, _fmt, _int, _mentions, _number, has_cjk
from advisor.query.vocab import (
    _ACCEPTED_PRECISIONS,
    _ALL_PRECISIONS_RE,
    _ARCH_WORDS,
    _COUNT_RE,
    _COUNT_WORDS,
    _FP8_MODE_RES,
    _FRAMEWORK_RES,
    _GPUISH_RE,
    _NOT_A_GPU_NAME,
    _PRECISION_RES,
    _SYMPTOM_RES,
    _UNMEASURED_RES,
    _US_PRONOUN_RE,
    _USE_CASE_RES,
)


def _read_precisions(d: _Draft) -> None:
    t = d.t
    found: list[tuple[int, str]] = []
    said: dict[str, str] = {}  # precision -> the words it was read from
    for rx, key in _PRECISION_RES:
        for m in list(rx.finditer(t)):
            found.append((m.start(), key))
            said.setdefault(key, m.group(0))
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
            d.errors.append(d.m("error.bad_precision", bad=bad, why=d.m(f"bad_precision.{bad}"), accepted=_ACCEPTED_PRECISIONS))
            t = _blank(t, m)
    # a bare "int8": both bitsandbytes variants in a list; alone, the load_in_8bit default
    bare_int8 = [m.start() for m in re.finditer(r"(?<![a-z0-9_])int[\s-]?8(?![a-z0-9_])|(?<![a-z0-9_])8[\s-]?bit\s+int", t)]
    t = re.sub(r"(?<![a-z0-9_])int[\s-]?8(?![a-z0-9_])", lambda m: " " * len(m.group(0)), t)
    d.t = t
    listed = len({k for _, k in found}) + len(bare_int8 and [1]) + len(unmeasured)
    for pos in bare_int8:
        if listed > 1:
            found += [(pos, "int8_mixed"), (pos, "int8_pure")]
            note = d.m("reading.int8_both")
        else:
            found.append((pos, "int8_mixed"))
            note = d.m("reading.int8_default")
        if note not in d.conversions:
            d.conversions.append(note)
    if unmeasured:
        names = list(dict.fromkeys(n for _, n, _ in unmeasured))
        measured = {k for _, k in found}
        if measured:
            for pos, _name, nearest in unmeasured:
                if nearest not in measured:
                    found.append((pos, nearest))
            subs = ", ".join(d.m("reading.sub", name=n, nearest=dict((x, y) for _, x, y in unmeasured)[n].upper())
                             for n in names)
            d.warnings.append(d.m("reading.unmeasured_one" if len(names) == 1 else "reading.unmeasured_many",
                                  names=", ".join(names), subs=subs))
            d.not_understood.append(d.m("reading.unmeasured_used", names=", ".join(names)))
        else:
            nearest = list(dict.fromkeys(x.upper() for _, _, x in unmeasured))
            d.errors.append(d.m("error.unmeasured_one" if len(names) == 1 else "error.unmeasured_many",
                                names=", ".join(names), nearest=" / ".join(nearest), accepted=_ACCEPTED_PRECISIONS))
    order: list[str] = []
    for _, key in sorted(found):
        if key not in order:
            order.append(key)
    # load_in_8bit with threshold=0.0 is pure INT8, not both
    if "int8_pure" in order and "int8_mixed" in order and re.search(r"threshold\s*=\s*0", d.raw.lower()):
        order.remove("int8_mixed")
    if order:
        d.put("precision", order[0], said.get(order[0], "int8"))
        d.extra["precisions"] = order
    if "fp8" in order:
        # dynamic and weight-only FP8 cost very differently: the words that name one are kept
        named = sorted(((m.start(), mode, m) for rx, mode in _FP8_MODE_RES if (m := rx.search(d.raw.lower()))),
                       key=lambda x: x[0])
        if named:
            d.put("fp8_mode", named[0][1], named[0][2])
    if re.search(r"\b8[\s-]?bit\b|8\s*位", d.raw.lower()) and "int8_mixed" in order and "load_in_8bit" not in d.raw.lower():
        d.conversions.append(d.m("reading.eight_bit"))
    if re.search(r"\b4[\s-]?bit\b|4\s*位|4\s*比特|qlora", d.raw.lower()) and "nf4" in order:
        d.conversions.append(d.m("reading.four_bit"))


# the count right before a GPU's name: "2x H100", "8 A100s", "a node of 8 H100", "两张A800", "4块4090"
_COUNT_BEFORE_RE = re.compile(_COUNT_RE + r"\s*(?:x|×|\*|张|块|卡|个)?\s*(?:nvidia\s+|geforce\s+|tesla\s+)?$")


_GPU_COUNT_RES = [
    re.compile(r"(?:tensor[\s_-]*parallel(?:ism)?(?:[\s_-]*(?:size|degree))?|\btp(?:[\s_-]*size)?)\s*(?:=|:|of|is|为)?\s*(\d{1,5})\b"),
    re.compile(r"\btp(\d{1,3})\b"),
    re.compile(_COUNT_RE + r"\s*(?:x\s*)?(?:gpus|gpu's|graphics cards|cards|devices|accelerators|张卡|块卡|卡|张显卡|块显卡)(?![a-z])"),
]


def _read_gpu(d: _Draft) -> None:
    cat = _catalog()
    hits = _find_spans(d.t, cat._gpu_index(), min_len=2, plural=True)
    gpus: list[str] = []
    counts: list[tuple[int, str]] = []
    said: dict[str, str] = {}
    for g, start, end, _words in hits:
        if g.key not in gpus:
            gpus.append(g.key)
            said[g.key] = _words
        before = _COUNT_BEFORE_RE.search(d.t[max(0, start - 24):start])
        if before:
            word = before.group(1)
            n = _COUNT_WORDS.get(word) or (_int(word) if word.isdigit() else 0)
            if n and (n <= 512 or "x" in before.group(0)):  # "GTX 1080 A800": 1080 names a GPU, not a count
                counts.append((n, f"{word} {_words}"))
                start = max(0, start - 24) + before.start()
        d.t = _blank(d.t, (start, end))
    # architecture names ("my Blackwell GPU"): the GPU of that architecture with the most rows
    for word, arch in _ARCH_WORDS.items():
        if re.search(rf"\b{word}\b", d.t) and not gpus:
            key = _gpu_for_arch(arch)
            if key:
                gpus.append(key)
                d.conversions.append(d.m("reading.arch_word", word=word, key=key, arch=arch))
    unknown: list[str] = []  # one error for all unknown names, the supported list said once
    # the catalog's names are blanked: a GPU-like name left over is one we do not know
    for m in _GPUISH_RE.finditer(d.t):
        name = m.group(0).strip()
        if re.fullmatch(r"a\d{1,3}b", name):  # a mixture of experts' active size ("Qwen2-57B-A14B"), not a GPU
            continue
        try:
            g = cat.resolve_gpu(name)
        except cat.UnknownName as err:
            if re.fullmatch(r"[abhlv]\d{2,3}[a-z]?", name) and name[0] in "abhlv" and not _looks_like_gpu(name):
                continue
            if all(not u.startswith(f"'{name}'") for u in unknown):
                hint = d.m("error.did_you_mean", keys=", ".join(repr(n) for n in err.nearest)) if err.nearest else ""
                unknown.append(f"'{name}'{hint}")
            continue
        if g.key not in gpus:
            gpus.append(g.key)
    # a word before "GPU" that names none we know ("mars gpu"), even next to a known one
    for m in re.finditer(r"(?<![\w.-])([a-z][a-z0-9-]{1,20})\s+(?:gpus?|graphics\s+cards?|显卡)\b", d.t):
        word = m.group(1)
        if (word in _NOT_A_GPU_NAME or word in _ARCH_WORDS or re.search(r"(?:er|est|ed|ing|ly|ful|al)$", word)
                or any(u.startswith(f"'{word}'") for u in unknown)):
            continue
        near = difflib.get_close_matches(cat.norm(word), list(cat._gpu_index()), n=3, cutoff=0.6)
        keys = list(dict.fromkeys(cat._gpu_index()[n].key for n in near))
        hint = d.m("error.did_you_mean", keys=", ".join(repr(k) for k in keys)) if keys else ""
        unknown.append(f"'{word}'{hint}")
    if unknown:
        more = d.m("error.and_more", n=len(unknown) - 5) if len(unknown) > 5 else ""
        d.errors.append(d.m("error.gpu_unknown_one" if len(unknown) == 1 else "error.gpu_unknown_many",
                            names=", ".join(unknown[:5]), more=more, supported=_gpu_list()))
    if gpus:
        d.put("gpu", gpus[0], said.get(gpus[0], gpus[0]))
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
        d.put("gpu_count", tp[0], tp[1])
        others = sorted({n for n, _ in total if n != tp[0]})
        for n in others:
            if n % tp[0] == 0:
                d.conversions.append(d.m("reading.tp", n=n, tp=tp[0], replicas=n // tp[0]))
            else:
                d.warnings.append(d.m("reading.tp_warn", n=n, tp=tp[0]))
        return
    values = sorted({n for n, _ in total})
    if len(values) == 1:
        d.put("gpu_count", values[0], next(w for n, w in total if n == values[0]))
    elif len(values) > 1:
        d.errors.append(d.m("error.gpu_counts", values=", ".join(map(str, values))))


_SIZE_RE = re.compile(r"(?<![\w.])(?:(?P<name>[a-z][\w.]*?(?:[-_ /][\w.]+?)*?)[-_ ]?)?(?P<size>\d+(?:\.\d+)?)\s*b(?![a-z0-9])")


def _read_model(d: _Draft) -> None:
    cat = _catalog()
    spans = _find_spans(d.t, cat._model_index(), min_len=4)
    if spans:
        m = spans[0][0]
        d.put("model", m.key, spans[0][3])
        d.put("model_params_b", m.params_b, spans[0][3] + " (catalog)")
        d.extra["model_name"] = m.name
        d.extra["model_known"] = True
        d.extra["models"] = list(dict.fromkeys(h[0].key for h in spans))
        for e, start, end, words in spans:
            d.t = _blank(d.t, (start, end))
            if e.key != m.key:
                d.not_understood.append(d.m("reading.second_model", words=words, model=m.name, other=e.name))
        return
    # a hub id we do not know: take the size from the name
    hm = re.search(r"(?<![\w.-])([a-z0-9][\w.-]*/[a-z0-9][\w.-]*)", d.t)
    cands = []
    if hm and re.search(r"\d+(?:\.\d+)?b", hm.group(1)):
        cands.append(hm.group(1))
    for m in re.finditer(r"(?<![\w.-])[a-z][\w.]*(?:-[\w.]+)*", d.t):
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
        d.put("model", name, name)
        d.put("model_params_b", size, name)
        d.extra["model_name"] = name
        d.extra["model_known"] = False
        active = re.search(r"-a(\d+(?:\.\d+)?)b(?![a-z0-9])", name)
        if active:
            d.not_understood.append(d.m("reading.moe", name=name, active=active.group(1), total=_fmt(size)))
        d.t = d.t.replace(name, " " * len(name), 1)
        return
    # "a 7B model", "7b 模型"
    m = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)\s*b\b(?:[\s-]*(?:param(?:eter)?s?|model|llm|模型|参数))?", d.t)
    if m and not re.search(r"\d\s*b\s*(?:yte|it)", d.t[m.start():m.end() + 4]) and _model_size(m.group(1), d):
        size = _number(m.group(1))
        d.t = _blank(d.t, m)
        d.put("model", f"{_fmt(size)}B model", m)
        d.put("model_params_b", size, m)
        d.extra["model_name"] = f"a {_fmt(size)}B model"
        d.extra["model_known"] = False


def _model_size(num: str, d: _Draft) -> float | None:
    """Billions of parameters from a name; a size no model has is an error, not a crash."""
    size = _number(num)
    if size <= 0:
        return None
    top = _factor("max_model_params_b")
    if size > top:
        d.errors.append(d.m("error.model_too_big", size=_fmt(size), top=_fmt(top)))
        return None
    return size


def _read_region(d: _Draft) -> None:
    """A region only when the question names one: a two-letter code must be written as one ("US",
    "EU", "in the us"), never read from the pronoun "us" or a unit ("80 GB")."""
    cat = _catalog()
    raw = d.raw
    checked: dict[str, tuple[bool, bool]] = {}  # a code's verdict, once per question (linear time)
    for r, start, end, words in _find_spans(d.t, cat._region_index(), min_len=2):
        if len(cat.norm(words)) <= 2:
            code = words.strip()
            if code not in checked:
                checked[code] = (
                    bool(re.search(rf"(?<![A-Za-z]){re.escape(code.upper())}(?![A-Za-z])", raw)),
                    bool(re.search(rf"\b(?:in|the|across|region|grid)\s+(?:the\s+)?{re.escape(code)}\b", d.t)))
            upper, lower_ok = checked[code]
            if re.search(r"\d\s*$", d.t[max(0, start - 4):start]) or not (upper or lower_ok):
                continue
            if code == "us" and _US_PRONOUN_RE.search(d.t[max(0, start - 12):end]) and not lower_ok:
                continue
        d.put("region", r.key, words)
        d.t = _blank(d.t, (start, end))
        return
    for r in cat.regions():  # Chinese names ("欧洲", "法国"): the token index holds Latin words only
        for alias in (r.name, *r.aliases):
            if has_cjk(alias) and alias in d.t:
                d.put("region", r.key, alias)
                d.t = d.t.replace(alias, " " * len(alias), 1)
                return
    if re.search(r"中国|国内", d.t):
        with contextlib.suppress(cat.UnknownName):
            d.put("region", cat.resolve_region("china").key, "中国" if "中国" in d.t else "国内")
            return
    m = re.search(r"\b(?:region|grid|located|datacenter|data\s+center)\s*(?:is|=|:|of|in|at)?\s*(?:the\s+)?([a-z][a-z_-]{1,20})\b", d.t)
    if m and m.group(1) not in ("is", "of", "in", "at", "the", "a", "my", "our", "and", "carbon", "intensity", "price",
                                "mix", "average", "where", "with", "power", "electricity", "emissions", "which", "what"):
        try:
            d.put("region", cat.resolve_region(m.group(1)).key, m)
        except cat.UnknownName as err:
            d.errors.append(d.m("error.region", region=m.group(1), near=_near(err, d.m.lang),
                                accepted=", ".join(x.key for x in cat.regions())))
        d.t = _blank(d.t, m)


def _read_framework(d: _Draft) -> None:
    if not _mentions(d.t, "llm", "lang", "tgi", "text", "llama", "gguf", "ollama", "batching", "cache", "graph",
                     "compile", "transformers", "hf", "eager", "generate", "tensorrt", "triton", "trt"):
        return
    found: list[tuple[int, str, str]] = []
    for rx, key, note in _FRAMEWORK_RES:
        for m in list(rx.finditer(d.t)):
            found.append((m.start(), key, m.group(0).strip()))
            if note and d.m(note) not in d.conversions:
                d.conversions.append(d.m(note))
            d.t = _blank(d.t, m)
    if not found:
        return
    found.sort()
    keys = list(dict.fromkeys(k for _, k, _ in found))
    d.put("framework", keys[0], found[0][2])
    if len(keys) > 1:
        # several frameworks named: a comparison across them (finish.py reports them if the
        # question is not a comparison)
        d.extra["frameworks"] = keys


def _read_use_case(d: _Draft) -> None:
    for rx, key in _USE_CASE_RES:
        m = rx.search(d.norm)  # the words as written: "chat requests" was read as a rate already
        if m:
            d.put("use_case", key, m)
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
