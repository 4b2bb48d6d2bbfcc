"""The fuzz suite (issue #17): hypothesis over the question parser, every CLI command's arguments,
the MCP tools and JSON-RPC screen, the local store's reader and the auditor's file readers.

What each property asserts: nothing raises (a traceback is a bug), nothing hangs (each example
runs under an alarm), the exit code is 0, 2 for usage/I/O errors, or 1 only where 1 means a
result (audit findings, `data validate` errors, a bench whose runs all failed), and every answer
still serialises to JSON.

The budget is fixed and small (CI runs it with the rest of the suite in well under a minute on
two cores); examples are derandomised so CI is reproducible. For a deeper local hunt scale the
example counts: ECOLOBSTER_FUZZ_SCALE=20 pytest tests/test_fuzz.py.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.cli import build_parser, main

SCALE = max(1, int(os.environ.get("ECOLOBSTER_FUZZ_SCALE", "1")))
EXAMPLE_S = 20  # one example running longer than this is a hang


def fuzz(n: int) -> settings:
    return settings(max_examples=n * SCALE, deadline=None, derandomize=SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


@contextmanager
def no_hang(what: str):
    def alarm(signum, frame):
        raise TimeoutError(f"{what} ran past {EXAMPLE_S} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(EXAMPLE_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# Values a careless user or an attacker types. Numbers at and past every bound, words the parser
# must not swallow, Unicode that breaks encoders and renderers.
HOSTILE = [
    "0", "1", "-1", "-5", "8", "8.9", "16", "1e6", "1.5e6", "1e9", "1e308", "-1e308", "1e999", "nan", "inf", "-inf",
    "9" * 400, "0x10", "1_000", "1,000", "", " ", "a800", "h100", "4090d", "rtx4090d", "cpu", "mars",
    "mistral-7b", "mistrall-7b", "qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct", "my-13B", "400" + "0" * 300 + "B",
    "fp16", "int8", "nf4", "bf16", "us", "eu", "china", "production_api", "lora", "qlora", "full",
    "\u202egpj.exe", "\ud800", "中文", "批量 16", "x" * 5000, "--", "-x", "true", "null", "{}", "[", "\x00",
]
WORDS = [
    "greenest", "config", "for", "on", "an", "a", "mistral-7b", "qwen2.5-7b", "llama-3-8b", "A800", "H100", "4090D",
    "batch", "size", "requests", "per", "month", "day", "users", "tokens", "prompt", "seq", "len", "fp16", "int8",
    "nf4", "compare", "estimate", "diagnose", "slow", "bill", "LoRA", "QLoRA", "region", "mars", "gpu", "cost",
    "1e6", "1.5e6", "1e308", "9" * 400, "8.9", "-8", "0", "16", "10k", "1M", "4", "x", "B", "GB", "tok/s", "W",
    "百万", "显卡", "批量", "每月", "请求", "?", ",", "\u202e", "\ud800", "🦞", "\x00",
]


# --- the question parser ---------------------------------------------------------------------

@fuzz(120)
@given(text=st.one_of(st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join),
                      st.text(min_size=1, max_size=300)))
def test_any_question_gets_an_answer_that_serialises(text):
    from advisor.api import ask
    from advisor.render import render

    with no_hang(f"ask({text!r})"):
        answer, context = ask(text)
        data = json.loads(render(answer, "json"))
        assert data["protocol"] == answer.protocol
        render(answer, "markdown")
        render(answer, "rich", width=80)
        ask("and on an H100?", context)  # a follow-up on whatever context came out


# --- every CLI command's arguments -----------------------------------------------------------

def _commands() -> dict[str, argparse.ArgumentParser]:
    """Each leaf command's parser, by its argv prefix ("ask", "data list", ...)."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[prefix] = parser
            return
        for name, sp in subs[0].choices.items():
            walk(f"{prefix} {name}".strip(), sp)

    walk("", build_parser())
    return out


COMMANDS = _commands()
PATHY = ("out", "history_file", "root", "config", "output", "o", "paths", "path", "stdin_filename", "report")
# Exit 1 means a result, not a failure, only here.
RESULT_ONE = {"audit", "data validate", "bench"}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Paths the fuzzer may hand to commands (never outside tmp_path), a quiet stdin, and a bench
    that validates and stores but never measures."""
    from engine import cli as cmd_bench

    (tmp_path / "dir").mkdir()
    (tmp_path / "serve.py").write_text("from transformers import AutoModelForCausalLM\n"
                                       "m = AutoModelForCausalLM.from_pretrained('x', load_in_8bit=True)\n")
    (tmp_path / "requirements.txt").write_text("torch==2.0.0.dev20230101\n")
    (tmp_path / "eco.toml").write_text("[tool.ecolobster]\nfail-on = 'high'\n")
    paths = [str(tmp_path / p) for p in ("dir", "serve.py", "requirements.txt", "eco.toml", "missing/x.json",
                                         "new.json", "dir/new.sarif")] + ["/dev/zero", "", "."]
    for name in dir(cmd_bench):
        if name.startswith("_run_"):
            monkeypatch.setattr(cmd_bench, name, lambda *a, **k: ([], []))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return paths


def _value(draw, action: argparse.Action, paths: list[str]) -> str:
    if action.dest in PATHY or action.type is Path:
        return draw(st.sampled_from(paths))
    if action.choices and draw(st.integers(0, 4)):
        return str(draw(st.sampled_from(list(action.choices))))
    return draw(st.sampled_from(HOSTILE))


@st.composite
def argvs(draw, command: str, paths: list[str]) -> list[str]:
    parser = COMMANDS[command]
    argv = command.split()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        if not action.option_strings:  # positional
            n = 1 if action.nargs in (None, 1) else draw(st.integers(0 if action.nargs in ("?", "*") else 1, 3))
            argv += [_value(draw, action, paths) for _ in range(n)]
            continue
        if not action.required and draw(st.integers(0, 3)) != 0:
            continue
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            argv.append(flag)
        else:
            n = 1 if action.nargs in (None, 1, "?") else draw(st.integers(1, 3))
            argv += [flag, *[_value(draw, action, paths) for _ in range(n)]]
    if command == "mcp":
        argv.append("--list-tools")  # serving would take over this process's stdin
    return argv


# `bench` first imports torch (a few seconds, once); the rest answer in milliseconds.
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_survives_any_arguments(command, sandbox, capsys):
    @fuzz(12)
    @given(data=st.data())
    def run(data):
        argv = data.draw(argvs(command, sandbox), label="argv")
        with no_hang(f"ecolobster {argv!r}"):
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse: --help (0) or a refused argument (2)
                code = exit_.code if isinstance(exit_.code, int) else 2
        out, err = capsys.readouterr()
        assert "Traceback" not in err, (argv, err[-2000:])
        assert code in (0, 2) or (code == 1 and command in RESULT_ONE), (argv, code, err[-2000:])

    run()


# --- the MCP tools and the JSON-RPC screen ---------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 30), 10 ** 30),
              st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(HOSTILE)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(HOSTILE), inner, max_size=3)),
    max_leaves=8,
)


def _tool_specs():
    pytest.importorskip("mcp", reason="the MCP server is the optional extra 'mcp'")
    from advisor.mcp import tools as mcp_tools

    return {s.name: s for s in mcp_tools.tool_specs()}


@pytest.mark.parametrize("tool", ["optimize", "compare", "estimate", "diagnose", "ask", "audit",
                                  "query_measurements", "plan_finetune"])
def test_every_mcp_tool_answers_any_arguments(tool, tmp_path):
    from advisor.mcp import guard as mcp_guard
    from advisor.mcp import server as mcp_server
    from advisor.mcp import tools as mcp_tools

    specs = _tool_specs()
    fields = list(specs[tool].input_model.model_fields)
    (tmp_path / "serve.py").write_text("import torch\nx = torch.float32\n")
    ctx = mcp_tools.ServerContext(guard=mcp_guard.PathGuard(tmp_path))

    @fuzz(25)
    @given(args=st.dictionaries(st.one_of(st.sampled_from(fields), st.sampled_from(HOSTILE)), JSON_VALUES,
                                max_size=5))
    def run(args):
        with no_hang(f"{tool}({args!r})"):
            out = mcp_server.call_tool(specs, tool, args, ctx)
        json.loads(out.answer.model_dump_json())
        assert not [e for e in out.answer.errors if e.startswith("internal error")], (args, out.answer.errors)

    run()


@fuzz(300)
@given(line=st.one_of(st.text(max_size=200),
                      st.builds(json.dumps, JSON_VALUES),
                      st.builds(lambda v: json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                      "params": {"name": "ask", "arguments": v}}), JSON_VALUES)))
def test_json_rpc_screen_answers_or_passes_every_line(line):
    pytest.importorskip("mcp", reason="the MCP server is the optional extra 'mcp'")
    from advisor.mcp.server import screen_line

    ok, err = screen_line(line)
    assert (ok is None) or (err is None)
    if err is not None:
        rid, code, message = err
        assert code in (-32700, -32600) and message
        json.dumps(rid, ensure_ascii=False).encode("utf-8")
    if ok is not None:
        ok.encode("utf-8")  # a line passed on can be answered in UTF-8


# --- the local store's reader ----------------------------------------------------------------

GOOD = dict(id="t-1", source="test", kind="measured", task="inference", gpu="a800", model_id="x/y",
            params_b=7.0, precision="fp16", batch_size=1, energy_j_per_1k_tok=100.0)


@fuzz(80)
@given(lines=st.lists(st.one_of(
    st.builds(lambda k, v: json.dumps({**GOOD, "id": "f-1", k: v}), st.sampled_from(sorted(GOOD) + ["notes", "x"]),
              JSON_VALUES),
    st.binary(max_size=300),
    st.sampled_from([b"[" * 5000, b"{" * 3000, b'{"id": ' + b"9" * 5000 + b"}", json.dumps(GOOD).encode()]),
).map(lambda x: x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass")), max_size=8))
def test_store_reader_survives_any_lines(lines, tmp_path_factory):
    from measurements.store import read_local

    path = tmp_path_factory.mktemp("fz") / "m.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with no_hang("read_local"):
        got = read_local(path)
    for r in got.rows:
        json.loads(r.model_dump_json())
    non_empty = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
    assert len(got.rows) + len(got.problems) + len(got.errors) >= non_empty or got.errors


# --- the auditor's file readers ----------------------------------------------------------------

@fuzz(60)
@given(name=st.sampled_from(["x.py", "x.ipynb", "requirements.txt", "pyproject.toml", "Dockerfile", "c.yaml",
                             "c.json", "run.sh"]),
       body=st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(lambda t: t.encode("utf-8", "replace")),
                      st.sampled_from([b"RUN pip install " + b"--pre " * 3000, b"\xef\xbb\xbf\x00\x00",
                                       b'{"cells": [' * 50, b"[[[[" * 500, b"torch==2.0.0.dev " * 2000])))
def test_auditor_reads_any_file(name, body, tmp_path_factory):
    from advisor.audit import Auditor, AuditSettings

    folder = tmp_path_factory.mktemp("au")
    (folder / name).write_bytes(body)
    with no_hang(f"audit {name}"):
        result = Auditor(AuditSettings()).audit_paths([str(folder / name)])
    assert not [d for d in getattr(result, "diagnostics", []) if "internal error" in d.message]
