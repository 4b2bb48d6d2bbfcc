"""The EcoLobster voice: a few lines in English or Chinese (`[voice]` in the message catalog),
chosen by the answer's mood and its first alert. The voice is a layer over the Answer; it never
carries a number (a test checks every line for digits), so it can never contradict the figures."""

from __future__ import annotations

import re

from advisor.answer import Answer
from advisor.messages import For, has

_DIGIT = re.compile(r"\d")


def lines_for(answer: Answer, lang: str) -> list[str]:
    m = For(lang)
    if answer.protocol == "error":
        return [m("voice.open.gray"), m("voice.close.error"), m("voice.sign")]
    out = [m(f"voice.open.{answer.mood}")]
    if answer.alerts and has(f"voice.alert.{answer.alerts[0].code}"):
        out.append(m(f"voice.alert.{answer.alerts[0].code}"))
    out.append(m(f"voice.close.{answer.mood}"))
    out.append(m("voice.sign"))
    return out


def apply(answer: Answer, lang: str | None = None) -> Answer:
    """A copy of `answer` with the EcoLobster voice lines for its mood, in `lang` (default: the
    answer's own language)."""
    lg = lang or answer.lang or "en"
    lines = [ln for ln in lines_for(answer, lg) if not _DIGIT.search(ln)]
    return answer.model_copy(update={"voice": lines, "lang": lg if lg in ("en", "zh") else "en"})
