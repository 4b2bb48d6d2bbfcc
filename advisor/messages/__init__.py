"""The message catalog: every sentence an answer shows, keyed, in English and Chinese.

Text lives in `en.toml` and `zh.toml` beside this module, one table per area (`[optimize]`,
`[alert]`, `[label]`, ...); a key is `area.name` and its value a `str.format` template with named
fields. Code asks for text with `t(lang, "optimize.headline", prec=..., ...)` (or a bound `For(lang)`),
never writes a sentence itself, so one answer is in one language. Numbers are formatted by the
caller (advisor.protocols.common.fnum, fpct, fusd) and passed in; the templates hold words only.
`tests/test_messages.py` checks that both files have the same keys with the same fields, and that
every key the code names exists; `tests/test_language.py` walks the protocols in both languages.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

LANGS = ("en", "zh")
_DIR = Path(__file__).resolve().parent


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


@cache
def catalog(lang: str) -> dict[str, str]:
    """Every key -> template of one language (read once per process)."""
    with open(_DIR / f"{lang}.toml", "rb") as fh:
        return _flatten(tomllib.load(fh))


def norm(lang: str | None) -> str:
    return lang if lang in LANGS else "en"


def t(lang: str | None, key: str, /, **fields: object) -> str:
    """The text of `key` in `lang` (English for an unknown language) with `fields` filled in. A key
    missing from a language falls back to English (the catalog test keeps both complete); a key
    missing from English is a programming error and raises KeyError."""
    lg = norm(lang)
    tmpl = catalog(lg).get(key)
    if tmpl is None:
        tmpl = catalog("en")[key]
    return tmpl.format(**fields) if fields else tmpl


def has(key: str) -> bool:
    return key in catalog("en")


class For:
    """`t` bound to one language: `m = For(q.lang); m("optimize.title", model=...)`; `m.lang` is it."""

    def __init__(self, lang: str | None) -> None:
        self.lang = norm(lang)

    def __call__(self, key: str, /, **fields: object) -> str:
        return t(self.lang, key, **fields)

    def join(self, items: list[str], sep: str = "list") -> str:
        """Items joined the way the language joins them (`sep`: list, clause or slash)."""
        return t(self.lang, f"sep.{sep}").join(items)

    def word(self, group: str, value: str | None) -> str:
        """A value word (tier, confidence, use case, ...) in this language; the value itself when
        the catalog has no entry for it (a free name)."""
        if value is None:
            return ""
        key = f"{group}.{value}"
        return t(self.lang, key) if has(key) else value
