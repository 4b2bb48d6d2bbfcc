"""Is this text something a person typed? Shared by the chat and the question parser; imports
nothing heavy, so the chat can use it before the advisor is loaded."""

from __future__ import annotations

import unicodedata

from advisor.limits import MAX_UNREADABLE_SHARE


def unreadable_count(text: str) -> int:
    """Characters that no person typed: replacement marks from bad bytes, control and private codes."""
    n = 0
    for ch in text:
        if ch in "\n\t\r":
            continue
        if ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn"):
            n += 1
    return n


def looks_binary(text: str) -> bool:
    bad = unreadable_count(text)
    return bool(bad) and bad > MAX_UNREADABLE_SHARE * max(len(text), 1)
