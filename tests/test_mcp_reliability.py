"""The MCP server under a misbehaving client (issue #17): every JSON-RPC line gets an answer,
abandoned calls stop using CPU, strict argument types, the benchmark tool is opt-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp", reason="the MCP server is the optional extra 'mcp'")

from advisor.mcp import guard as mcp_guard  # noqa: E402
from advisor.mcp import inputs as mcp_inputs  # noqa: E402
from advisor.mcp import server as mcp_server  # noqa: E402
from advisor.mcp import tools as mcp_tools  # noqa: E402
from advisor.mcp.server import Outcome, screen_line  # noqa: E402
from advisor.mcp.tools import ServerContext, ToolSpec  # noqa: E402
from tests.test_mcp import RawServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def raw(tmp_path):
    (tmp_path / "root").mkdir()
    server = RawServer(tmp_path / "root", tmp_path / "data")
    server.initialize()
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()


def _recv_any(raw: RawServer, timeout: float = 20.0) -> dict:
    import select

    assert raw.proc.stdout is not None
    ready, _, _ = select.select([raw.proc.stdout], [], [], timeout)
    assert ready, "no reply: the client would wait for its timeout"
    return json.loads(raw.proc.stdout.readline())


def test_every_bad_line_gets_a_json_rpc_error_and_the_server_stays_up(raw):
    raw.send("{not json")
    assert _recv_any(raw)["error"]["code"] == -32700
    raw.send("[" * 20_000 + "]" * 20_000)
    reply = _recv_any(raw)
    assert reply["id"] is None and reply["error"]["code"] == -32700 and "nested" in reply["error"]["message"]
    raw.send('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ask","arguments":'
             '{"text":' + "[" * 150 + "]" * 150 + '}}}')  # deep enough to make the SDK drop it silently
    reply = raw.recv(3)
    assert reply["error"]["code"] == -32600 and "64 levels" in reply["error"]["message"]
    raw.send('{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"ask","arguments":'
             '{"text":"greenest \\ud800 config"}}}')
    reply = raw.recv(4)
    assert reply["error"]["code"] == -32600 and "lone surrogate" in reply["error"]["message"]
    raw.send('{"jsonrpc":"2.0","id":5,"method":5}')
    assert raw.recv(5)["error"]["code"] == -32600
    assert raw.proc.stdin is not None
    raw.proc.stdin.write(b'{"jsonrpc":"2.0","id":6,"method":"ping","junk":"\xff\xfe"}\n')  # not UTF-8
    raw.proc.stdin.flush()
    assert raw.recv(6)["result"] == {}  # invalid UTF-8 bytes are replaced, the ping still answered
    raw.send({"jsonrpc": "2.0", "id": 7, "method": "ping"})
    assert raw.recv(7)["result"] == {}
    assert raw.close_and_wait() == 0


def test_strict_ints_and_overflow_are_clear_tool_errors(raw):
    raw.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
              "params": {"name": "optimize", "arguments": {"model": "mistral-7b", "batch_size": True}}})
    res = raw.recv(1)["result"]
    assert res["isError"] and "'batch_size'" in res["content"][0]["text"]
    raw.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
              "params": {"name": "estimate", "arguments": {"model": "mistral-7b", "requests_per_month": 1e308}}})
    res = raw.recv(2)["result"]
    assert res["isError"] and "internal error" not in res["content"][0]["text"]
    assert "requests_per_month" in res["content"][0]["text"]


def test_screen_line_passes_good_messages_untouched():
    good = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert screen_line(good) == (good, None)
    assert screen_line("   \n") == (None, None)
    _, err = screen_line('{"jsonrpc":"2.0","id":"x\\udc00","method":"ping"}')
    assert err is not None and err[0] is None  # an id that cannot be echoed back is answered as null


def _spin(path: str) -> Outcome:  # a tool call that never ends on its own
    Path(path).write_text(str(os.getpid()))
    while True:
        pass


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state in ("Z", "X")


def _pid_when_started(marker: Path) -> int:
    deadline = time.monotonic() + 20
    while not marker.exists() or not marker.read_text():
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.02)
    return int(marker.read_text())


def test_cancelled_call_stops_its_worker(tmp_path):
    marker = tmp_path / "pid"

    async def go() -> None:
        with anyio.move_on_after(1.0):
            await mcp_server.run_in_worker(_spin, (str(marker),), "spin", None)

    t0 = time.monotonic()
    anyio.run(go)
    assert time.monotonic() - t0 < 10
    pid = _pid_when_started(marker)
    assert _gone(pid), "the abandoned call is still running"


def test_call_past_the_budget_is_stopped_with_a_clear_error(tmp_path):
    marker = tmp_path / "pid"
    spec = ToolSpec("spin", "Spin", "never ends", mcp_inputs.AskInput, lambda inp, ctx: _spin(str(marker)))
    ctx = ServerContext(guard=mcp_guard.PathGuard(tmp_path), call_budget_s=1.0)
    out = anyio.run(mcp_server.call_tool_async, {"spin": spec}, "spin", {"text": "x"}, ctx)
    assert out.is_error and "budget of 1 s" in out.answer.errors[0] and "--call-timeout" in out.answer.errors[0]
    assert _gone(_pid_when_started(marker))


def test_worker_answers_like_the_in_process_call(tmp_path):
    specs = {s.name: s for s in mcp_tools.tool_specs()}
    ctx = ServerContext(guard=mcp_guard.PathGuard(tmp_path))
    args = {"limit": 3}
    direct = mcp_server.call_tool(specs, "query_measurements", args, ctx)
    forked = anyio.run(mcp_server.call_tool_async, specs, "query_measurements", args, ctx)
    assert forked.answer.model_dump() == direct.answer.model_dump() and not forked.is_error


def test_benchmark_tool_is_opt_in_and_says_what_it_does():
    assert "benchmark" not in {s.name for s in mcp_tools.tool_specs()}
    spec = {s.name: s for s in mcp_tools.tool_specs(include_benchmark=True)}["benchmark"]
    assert "DOWNLOADS" in spec.description and "4 hours" in spec.description
    assert "--allow-benchmark" in spec.description
    out = subprocess.run([sys.executable, "-m", "advisor.cli", "mcp", "--list-tools", "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and "benchmark" not in {t["name"] for t in json.loads(out.stdout)}


@pytest.mark.parametrize("value", ["0", "-3", "nan", "1e9"])
def test_call_timeout_out_of_range_is_a_usage_error(value, capsys):
    from advisor.cli import main

    assert main(["mcp", "--call-timeout", value, "--list-tools"]) == 2
    assert "between 1 and 86400" in capsys.readouterr().err
