"""Section labels of the renderers, from the message catalog (`[label]` in advisor/messages)."""

from __future__ import annotations

from advisor.messages import t


def label(lang: str | None, key: str) -> str:
    return t(lang, f"label.{key}")
