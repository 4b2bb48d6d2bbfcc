"""`ecolobster chat` end to end, in a real pseudo-terminal: type a question and follow-ups, read the screen."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]")
PROMPT = r"ecolobster> "
CPR_REQUEST = b"\x1b[6n"


class Terminal:
    """A chat running in a pty. Answers the cursor-position requests a terminal would answer
    (prompt-toolkit then draws its bottom toolbar) and keeps everything shown, ANSI removed."""

    def __init__(self, tmp: Path, columns: int = 100, rows: int = 40, extra_env: dict[str, str] | None = None):
        script = Path(sys.executable).with_name("ecolobster")
        cmd = [str(script), "chat"] if script.exists() else [sys.executable, "-m", "advisor.cli", "chat"]
        env = dict(os.environ, TERM="xterm-256color", LANG="en_US.UTF-8", LC_ALL="en_US.UTF-8",
                   XDG_STATE_HOME=str(tmp / "state"), ECOLOBSTER_DATA_DIR=str(tmp / "data"))
        env.update(extra_env or {})
        self.child = pexpect.spawn(cmd[0], cmd[1:], env=env, dimensions=(rows, columns), timeout=60)
        self.raw = b""
        self.mark = 0

    @property
    def shown(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", errors="replace")).replace("\r\n", "\n")

    def read_until(self, pattern: str, timeout: float = 60) -> str:
        """Read until `pattern` appears in what was shown since the last call; return that part."""
        deadline = time.monotonic() + timeout
        while True:
            since = self.shown[self.mark:]
            m = re.search(pattern, since)
            if m:
                self.mark += m.end()
                return since[: m.end()]
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} on screen; it shows:\n{since[-3000:]}")
            try:
                data = self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF as err:
                raise AssertionError(f"the chat ended while waiting for {pattern!r}:\n{since[-3000:]}") from err
            self.raw += data
            self.seen(data)

    def seen(self, data: bytes) -> None:
        """Answer the cursor-position requests in `data` (a subclass may track a real cursor)."""
        if CPR_REQUEST in data:
            self.child.send("\x1b[1;1R")

    def prompt(self) -> str:
        return self.read_until(PROMPT)

    def ask(self, line: str, until: str = r"(?:mood|心情): \w+ ─╯\n") -> str:
        """Type a line and Enter; return what was shown until `until` and the next prompt."""
        self.child.sendline(line)
        return self.read_until(until + r"[\s\S]*?" + PROMPT)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_chat_in_a_terminal_carries_context_across_follow_ups(tmp_path):
    term = Terminal(tmp_path, extra_env={"NO_COLOR": "1"})
    first = term.prompt()
    assert "Hi, I'm EcoLobster" in first and "Try one of these" in first

    answer = term.ask("What's the greenest way to serve Mistral-7B on an A800?")
    assert "OPTIMIZE" in answer and "Mistral-7B" in answer and "A800" in answer
    # The bottom toolbar now shows the lobster's mood and the carried context.
    term.read_until(r"🦞 (green|yellow|orange|red|gray) +model mistral-7b-v0.2 · gpu a800")

    follow = term.ask("what about batch 16?")
    assert "batch size 16" in flat(re.sub(r"[│╭╮╰╯─]", " ", follow)) and "A800" in follow
    term.read_until(r"gpu a800 · batch 16")

    context = term.ask("/context", until=r"mood\s+\w+")
    assert re.search(r"model\s+mistral-7b-v0.2", context) and re.search(r"gpu\s+a800", context)
    assert re.search(r"batch\s+16", context)

    zh = term.ask("换成 NF4 呢？")
    # the answer follows the user into Chinese (the mood label; the sign-off can fall below the fold
    # when the ranked table is long, as it is since the A800 has NF4 rows)
    assert "NF4" in zh and "心情:" in zh and "龙虾" in zh
    context = term.ask("/context", until=r"心情\s+\w+")
    assert re.search(r"precision\s+nf4", context) and re.search(r"batch\s+16", context)
    assert "下一个问题会沿用" in context

    term.child.sendcontrol("d")
    term.read_until("再见")
    term.child.expect(pexpect.EOF)
    term.child.close()
    assert term.child.exitstatus == 0
    history = (tmp_path / "state" / "ecolobster" / "chat_history").read_text(encoding="utf-8")
    assert "+what about batch 16?" in history and "+换成 NF4 呢？" in history


def test_ctrl_c_clears_the_line_and_the_chat_goes_on(tmp_path):
    term = Terminal(tmp_path, extra_env={"NO_COLOR": "1"})
    term.prompt()
    term.child.send("half a question")
    term.child.sendcontrol("c")
    term.read_until(r"Line cleared[\s\S]*?" + PROMPT)
    out = term.ask("/comprae", until=r"lists the commands")
    assert "Did you mean /compare" in flat(out)
    term.child.sendline("/quit")
    term.read_until("Bye")
    term.child.expect(pexpect.EOF)
    term.child.close()
    assert term.child.exitstatus == 0


def test_piped_questions_are_answered_one_per_line(tmp_path):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), ECOLOBSTER_DATA_DIR=str(tmp_path / "data"))
    script = Path(sys.executable).with_name("ecolobster")
    import subprocess

    proc = subprocess.run(
        [str(script), "chat"],
        input="What's the greenest way to serve Mistral-7B on an A800?\nwhat about batch 16?\n/context\n",
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "\x1b[" not in out  # not a terminal: no colour, no cursor movement
    assert out.count("> ") >= 3 and "> what about batch 16?" in out
    assert re.search(r"batch\s+16", out) and re.search(r"gpu\s+a800", out)
    assert not (tmp_path / "state" / "ecolobster" / "chat_history").exists()  # pipes keep no history


def test_a_corrupt_or_unusable_history_never_blocks_start_up(tmp_path):
    hist = tmp_path / "state" / "ecolobster" / "chat_history"
    hist.parent.mkdir(parents=True)
    hist.write_bytes(bytes(range(256)) * 64 + b"\n+/context\n")  # garbage around one good entry
    term = Terminal(tmp_path, extra_env={"NO_COLOR": "1"})
    term.prompt()
    assert "can't be used" not in term.shown
    out = term.ask("/context", until=r"mood\s+\S+")
    assert "No context yet" in out
    term.child.sendcontrol("d")
    term.child.expect(pexpect.EOF)
    assert hist.read_bytes().endswith(b"+/context\n")

    broken = tmp_path / "other"
    broken.mkdir()
    (broken / "state").mkdir()
    (broken / "state" / "ecolobster").write_text("a file where the folder should be")
    term = Terminal(broken, extra_env={"NO_COLOR": "1"})
    first = term.prompt()
    blocker = broken / "state" / "ecolobster"
    assert f"can't be used ({blocker} is a file, not a folder)" in flat(first) and "in memory only" in flat(first)
    assert "No context yet" in term.ask("/context", until=r"mood\s+\S+")
    term.child.sendline("/quit")
    term.child.expect(pexpect.EOF)
    term.child.close()
    assert term.child.exitstatus == 0
