"""The point first: in a real pseudo-terminal of 80 x 24, each of seed 003's seven "Try It Now"
prompts shows its headline and its recommendation on the screen the answer leaves behind (read
from a VT100 emulation, pyte); `/more` then shows the rest (tables, code, provenance)."""

from __future__ import annotations

import re

import pyte
import pytest

from advisor.api import ask
from tests.test_chat_e2e import Terminal
from tests.test_protocols import PROMPTS

COLUMNS, ROWS = 80, 24


class Screen(Terminal):
    """The pty chat with a VT100 screen behind it: cursor-position requests are answered with the
    emulated cursor, as a real terminal does, so prompt-toolkit draws where a user would see it."""

    def __init__(self, tmp, **kw):
        super().__init__(tmp, **kw)
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.fed = 0

    def seen(self, data: bytes) -> None:
        for chunk in re.split(rb"(\x1b\[6n)", data):
            if chunk == b"\x1b[6n":
                self.child.send(f"\x1b[{self.screen.cursor.y + 1};{self.screen.cursor.x + 1}R")
            else:
                self.stream.feed(chunk)

    def text(self) -> str:
        """What the 80 x 24 screen shows now, panel borders removed and lines joined."""
        return flat(re.sub(r"[│╭╮╰╯─]", " ", " ".join(self.screen.display)))


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("lang", [0, 1], ids=["en", "zh"])
def test_seed_prompts_show_headline_and_recommendation_on_the_first_screen(tmp_path, lang):
    term = Screen(tmp_path, columns=COLUMNS, rows=ROWS, extra_env={"NO_COLOR": "1"})
    term.prompt()
    for key, prompts in PROMPTS.items():
        question = prompts[lang]
        expected, _ = ask(question)
        term.ask("/reset", until=r"(?:Context cleared|上下文已清空)[^\n]*\n")
        term.ask(question)
        shown = term.text()
        head = flat(expected.headline)[:50]
        assert head in shown, f"{key}: headline {head!r} is not on the first screen:\n{shown}"
        if expected.recommendations:
            rec = flat(expected.recommendations[0].title)[:50]
            assert rec in shown, f"{key}: recommendation {rec!r} is not on the first screen:\n{shown}"
        more = term.ask("/more")
        assert "(continued)" in more or "(续)" in more
        if expected.provenance:
            assert re.search(r"Provenance|数据来源与推导", more), key
        if any(r.code for r in expected.recommendations):
            code = next(r.code for r in expected.recommendations if r.code).splitlines()[0]
            assert flat(code) in flat(re.sub(r"[│╭╮╰╯─]", " ", more)), key
    term.child.sendline("/quit")
    term.child.close(force=True)


@pytest.mark.parametrize("question", [p[0] for p in PROMPTS.values()] + [p[1] for p in PROMPTS.values()])
def test_cli_brief_is_twenty_lines_at_80_columns_and_full_keeps_everything(question, capsys):
    from advisor.cli import main

    assert main(["ask", question, "--width", "80"]) == 0
    brief = capsys.readouterr().out
    assert len(brief.rstrip("\n").splitlines()) <= 20
    assert main(["ask", question, "--width", "80", "--detail", "full"]) == 0
    full = capsys.readouterr().out
    expected, _ = ask(question)
    if expected.provenance:
        assert re.search(r"Provenance|数据来源与推导", full) and not re.search(r"Provenance|数据来源与推导", brief)
    assert len(full.splitlines()) > len(brief.splitlines())
