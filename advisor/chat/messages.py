"""What the chat itself says, in English and Chinese (answers bring their own words; both come from
the message catalog, advisor/messages), and how its lines are laid out on a terminal: wrapping by
display width, colour, the user's language."""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Any, Literal

from advisor.messages import catalog, t

Lang = Literal["en", "zh"]
LANGS: tuple[str, ...] = ("en", "zh")

# Words the chat itself says (answers bring their own words): the message catalog's [chat] and
# [chat_example] sections (advisor/messages), in English and Chinese.
# --------------------------------------------------------------------------------------------

EXAMPLES: dict[str, tuple[str, ...]] = {
    lang: tuple(v for k, v in sorted(catalog(lang).items()) if k.startswith("chat_example.")) for lang in LANGS
}


def msg(language: str, key: str, **kw: Any) -> str:
    return t(language, f"chat.{key}", **kw)


def cell_width(text: str) -> int:
    """Terminal columns `text` takes: wide (CJK, emoji) characters take two, combining ones none."""
    n = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        n += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return n


_WRAP_TOKEN = re.compile(r"\s+|[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+")


def wrap(text: str, width: int, indent: int | None = None) -> str:
    """Wrap each line to `width` terminal columns; Chinese may break between any two characters.

    Continuation lines are indented like the line they continue (plus the bullet, if any), or by
    `indent` when given."""
    out: list[str] = []
    for line in text.split("\n"):
        if cell_width(line) <= width:
            out.append(line)
            continue
        lead = len(line) - len(line.lstrip(" "))
        hang = indent if indent is not None else lead + (2 if line.lstrip(" ").startswith("• ") else 0)
        current, used = "", 0
        for token in _WRAP_TOKEN.findall(line):
            w = cell_width(token)
            if used + w > width and current.strip():
                out.append(current.rstrip())
                current, used = " " * hang, hang
                if token.isspace():
                    continue
            current += token
            used += w
        if current.strip():
            out.append(current.rstrip())
    return "\n".join(out)


def env_lang() -> Lang:
    """The user's language from the locale variables: Chinese when they say zh, else English."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def color_enabled(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or odd stream
        return False
