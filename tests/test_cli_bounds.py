"""Bounded inputs and outputs of the CLI (issue #17): --width, $COLUMNS, the chat's history file
and bench's protocol knobs get a clear error (exit 2) or a safe fallback, never a hang or a
traceback."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest
from prompt_toolkit.history import InMemoryHistory

from advisor.chat import history as chat_history
from advisor.cli import main

ROOT = Path(__file__).resolve().parents[1]
Q = "greenest config for Mistral-7B on an A800"


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse refuses an argument
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("width", ["99999999", "-5", "0", "19", "1001", "wide"])
def test_out_of_range_width_is_a_usage_error_naming_the_range(capsys, width):
    code, out, err = _cli(capsys, "ask", Q, "--width", width)
    assert code == 2 and out == ""
    assert "--width" in err and "accepted: 20-1000" in err and "Traceback" not in err


def test_width_within_range_is_used(capsys):
    code, out, _ = _cli(capsys, "ask", Q, "--width", "60")
    assert code == 0 and out and max(len(line) for line in out.splitlines()) <= 60


def test_huge_columns_from_the_environment_is_clamped(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "99999999")
    t0 = time.monotonic()
    code, out, _ = _cli(capsys, "ask", Q)
    assert code == 0 and time.monotonic() - t0 < 20
    assert max(len(line) for line in out.splitlines()) <= 1000


@pytest.mark.parametrize("flag,value,needle", [
    ("--pause", "-1", "--pause must be between 0 and 3600 (got -1.0)"),
    ("--idle", "-0.5", "--idle must be between 0 and 600"),
    ("--cv-power", "nan", "--cv-power must be between"),
    ("--max-reruns", "-1", "--max-reruns must be between 0 and 20"),
    ("--sample-hz", "1e9", "--sample-hz must be between 0.1 and 1000"),
])
def test_bench_protocol_knobs_out_of_range_are_clear_errors(capsys, flag, value, needle):
    code, out, err = _cli(capsys, "bench", "--model", "qwen2.5-0.5b", "--synthetic", "--device", "cpu",
                          flag, value)
    assert code == 2 and needle in err and "ValidationError" not in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["dev_zero", "fifo", "huge"])
def test_history_file_that_cannot_be_bounded_falls_back_to_memory(tmp_path, monkeypatch, kind):
    if kind == "dev_zero":
        path, said = Path("/dev/zero"), "not a regular file"
    elif kind == "fifo":
        path, said = tmp_path / "fifo", "not a regular file"
        os.mkfifo(path)  # opening it to read would block for ever
    else:
        path, said = tmp_path / "hist", "MB a history file may hold"
        path.write_text("+hi\n" * 100)
        monkeypatch.setattr(chat_history, "MAX_HISTORY_FILE_BYTES", 100)
    t0 = time.monotonic()
    hist, problem = chat_history.make_history(path)
    assert time.monotonic() - t0 < 5
    assert isinstance(hist, InMemoryHistory) and problem is not None and said in problem


def test_chat_with_dev_zero_history_starts_and_says_so(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, TERM="xterm-256color", NO_COLOR="1", PYTHONPATH=str(ROOT),
               XDG_STATE_HOME=str(tmp_path / "state"), ECOLOBSTER_DATA_DIR=str(tmp_path / "data"))
    child = pexpect.spawn(sys.executable, ["-m", "advisor.cli", "chat", "--history-file", "/dev/zero"],
                          env=env, dimensions=(40, 100), timeout=60, cwd=str(ROOT))
    seen = b""
    deadline = time.monotonic() + 60
    while b"in memory only" not in seen:
        assert time.monotonic() < deadline, seen[-2000:]
        try:
            seen += child.read_nonblocking(65536, timeout=0.5)
        except pexpect.TIMEOUT:
            child.send("\x1b[1;1R")  # answer a cursor-position request, as a terminal would
    rss_kb = int(re.search(rb"VmRSS:\s+(\d+)", Path(f"/proc/{child.pid}/status").read_bytes()).group(1))
    assert rss_kb < 500_000  # /dev/zero was not read into memory
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
