"""The mutable state of one question while its readers run."""

from __future__ import annotations

import re
from typing import Any

from advisor.messages import For
from advisor.query.text import normalize_text


class _Draft:
    """Mutable state while reading one question."""

    def __init__(self, text: str, lang: str = "en"):
        self.raw = text
        # the language the readings are worded in (the question's, or the one asked for)
        self.m = For(lang)
        # "2xH100" reads as "2x H100"; "8x7b" (Mixtral) stays a name
        self.t = re.sub(r"(?<![a-z0-9])(\d{1,4})\s*[x×*](?=[a-z])", r"\1x ", normalize_text(text))
        self.norm = self.t
        self.slots: dict[str, Any] = {}
        self.not_understood: list[str] = []
        self.words: dict[str, str] = {}  # slot -> the words it was read from
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.conversions: list[str] = []
        self.extra: dict[str, Any] = {}

    def put(self, slot: str, value: Any, words: str | re.Match[str]) -> None:
        """Fill a slot and remember the words it was read from (shown by --explain-parse and /why)."""
        self.slots[slot] = value
        w = words.group(0) if isinstance(words, re.Match) else words
        self.words[slot] = " ".join(w.split())
