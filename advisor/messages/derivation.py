"""Derivation descriptions (how a figure was obtained) in the answer's language.

The estimator (advisor.estimate and its performance model) and the fine-tuning time model
(advisor.finetune_time) word each derivation in English as they build it, one inside another
("<base>; scaled to BS=32 by the <batch law>"), and that text is part of their JSON. For a
Chinese answer `derivation_text` reads the English back through the `[derivation]` templates of
en.toml (each a pattern with named fields) and writes the zh.toml template of the same key; the
fields that hold a derivation are read the same way, those that hold a value word (a bound, a
limit) through their word tables. A text no template covers stays as written, and
tests/test_language.py finds it. So a new wording in the estimator needs its template here.
"""

from __future__ import annotations

import re
import string
from functools import cache, lru_cache

from advisor.messages import catalog, has, norm, t

# fields of the templates that hold a derivation themselves, and those that hold a value word
_NESTED = frozenset({"base", "how", "pred", "m", "a", "b", "where", "note"})
_WORDS = {"binding": "bound", "bbinding": "bound", "bound": "bound", "side": "limit"}
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    out = []
    for key, tmpl in catalog("en").items():
        if not key.startswith("derivation."):
            continue
        # a derivation field may hold anything; a value (number, GPU key, size list) never spans a
        # separator or a parenthesis, which keeps each reading to its own clause
        rx = "".join(re.escape(lit) + ("" if not f else f"(?P<{f}>.+?)" if f in _NESTED else f"(?P<{f}>[^;()]+?)")
                     for lit, f, _, _ in string.Formatter().parse(tmpl))
        out.append((key, re.compile(rx + r"\Z", re.S)))
    # the longest template first: the most specific reading wins
    return tuple(sorted(out, key=lambda kp: -len(catalog("en")[kp[0]])))


def derivation_text(text: str, lang: str | None) -> str:
    """`text` (a derivation as the estimator wrote it) in `lang`; the text itself in English or
    where no template covers all of it."""
    if norm(lang) == "en" or not text:
        return text
    out = _read(text, norm(lang))
    return text if out is None else out


@lru_cache(maxsize=4096)
def _read(text: str, lang: str) -> str | None:
    """The whole of `text` in `lang`, or None when some part of it has no template."""
    for key, rx in _patterns():
        mt = rx.match(text)
        if mt is None:
            continue
        fields: dict[str, str] = {}
        for name, val in mt.groupdict().items():
            if name in _NESTED:
                got = _read(val, lang)
            elif name in _WORDS:
                got = t(lang, f"{_WORDS[name]}.{val}") if has(f"{_WORDS[name]}.{val}") else None
            else:
                got = val
            if got is None:
                break
            fields[name] = got
        else:
            return t(lang, key, **fields)
    if _CJK.search(text) and "; " not in text:
        return text  # already in Chinese (a note the protocol wrote in the answer's language)
    # several derivations or notes joined by "; ": the first split whose both sides read
    parts = text.split("; ")
    for i in range(1, len(parts)):
        left = _read("; ".join(parts[:i]), lang)
        if left is None:
            continue
        right = _read("; ".join(parts[i:]), lang)
        if right is not None:
            return left + t(lang, "sep.clause") + right
    return None
