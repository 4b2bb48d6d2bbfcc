"""Catalog lookups for the readers: names found in a text (with their spans), factors, defaults and
the calendar conversions between periods (days per month comes from the factors catalog)."""

from __future__ import annotations

import re
from typing import Any

from advisor.query.vocab import _PERIOD_IN_DAYS, _PERIOD_WORD


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
    """Catalog entries named in `text` as (entry, start, end, words), in reading order, without
    overlaps: at each word the longest name (up to five words) that starts there. `plural` also
    reads "A100s" as "A100". Linear in the text: names are looked up by their normalised form."""
    cat = _catalog()
    toks = [(m.start(), m.end(), m.group(0)) for m in _TOKEN_RE.finditer(text)]
    norms = [cat.norm(t[2]) for t in toks]
    longest = _longest_key(idx)
    hits: list[tuple[Any, int, int, str]] = []
    i = 0
    while i < len(toks):
        found = None
        key = ""
        ends = []
        for j in range(i, min(i + 5, len(toks))):
            key += norms[j]
            if len(key) > longest + 1:
                break
            ends.append((j, key))
        for j, key in reversed(ends):
            if len(key) < min_len:
                continue
            entry = idx.get(key)
            if entry is None and plural and key.endswith("s") and len(key) > min_len:
                entry = idx.get(key[:-1])
            if entry is not None:
                found = (entry, toks[i][0], toks[j][1], " ".join(t[2] for t in toks[i:j + 1]))
                i = j + 1
                break
        if found:
            hits.append(found)
        else:
            i += 1
    return hits


def _longest_key(idx: dict[str, Any]) -> int:
    n = _LONGEST.get(id(idx))
    if n is None:
        n = _LONGEST[id(idx)] = max((len(k) for k in idx), default=0)
    return n


_LONGEST: dict[int, int] = {}


def _find_in_index(text: str, idx: dict[str, Any], min_len: int = 3) -> list[Any]:
    """Catalog entries named in `text`, in reading order, each once."""
    seen: list[Any] = []
    for e, *_ in _find_spans(text, idx, min_len):
        if e not in seen:
            seen.append(e)
    return seen


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


def _looks_like_gpu(name: str) -> bool:
    # a bare letter+digits token is only a GPU claim when the letter names a GPU family we know
    return name[0] in "ahlvb" and len(name) >= 3


def _near(err: Any, lang: str = "en") -> str:
    from advisor.messages import t

    if not getattr(err, "nearest", None):
        return ""
    return t(lang, "error.near", names=", ".join(repr(n) for n in err.nearest))


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


def _is_catalog_model(name: str) -> bool:
    cat = _catalog()
    try:
        cat.resolve_model(name)
        return True
    except cat.UnknownName:
        return False
