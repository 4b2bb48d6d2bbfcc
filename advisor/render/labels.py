"""Section labels of the renderers, from the message catalog (`[label]` in advisor/messages)."""

from __future__ import annotations

from advisor.messages import For, t


def label(lang: str | None, key: str) -> str:
    return t(lang, f"label.{key}")


def value_word(lang: str | None, group: str, value: str) -> str:
    """A value of the Answer (a tier, a confidence) as a word of `lang`, the value itself where the
    catalog has none; JSON keeps the value."""
    return For(lang).word(group, value)
