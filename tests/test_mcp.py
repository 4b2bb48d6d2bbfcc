"""The MCP server end to end: `ecolobster mcp` runs as a subprocess (the venv's console script)
and the official SDK client talks to it over stdio, as Claude Desktop or Claude Code would.

One server session (module fixture) makes every call up front; the tests then assert on what
came back. Disconnects and malformed JSON-RPC get servers of their own.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

pytest.importorskip("mcp", reason="the MCP server is the optional extra 'mcp'")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from advisor import limits  # noqa: E402
from advisor.answer import Answer  # noqa: E402
from advisor.mcp import guard as mcp_guard  # noqa: E402
from advisor.mcp import inputs as mcp_inputs  # noqa: E402
from advisor.mcp import server as mcp_server  # noqa: E402
from advisor.mcp import tools as mcp_tools  # noqa: E402
from measurements.store import load_rows  # noqa: E402

ECOLOBSTER = Path(sys.executable).parent / "ecolobster"
# The venv's console script; where the package is not installed (the GPU machine runs the tests
# from a copy of the tree) the same entry point through the interpreter.
SERVER_CMD = [str(ECOLOBSTER)] if ECOLOBSTER.exists() else [sys.executable, "-m", "advisor.cli"]
EXPECTED_TOOLS = {"optimize", "compare", "estimate", "diagnose", "ask", "audit", "query_measurements", "plan_finetune"}

TRAP_CODE = ("from transformers import AutoModelForCausalLM\n"
             "model = AutoModelForCausalLM.from_pretrained('mistralai/Mistral-7B-Instruct-v0.2', load_in_8bit=True)\n")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict[str, Path]:
    """A root the server may read, and an outside folder it must not, linked from inside."""
    base = tmp_path_factory.mktemp("mcp")
    root, outside = base / "root", base / "outside"
    (root / "pkg").mkdir(parents=True)
    (root / ".venv" / "lib").mkdir(parents=True)
    outside.mkdir()
    (root / "serve.py").write_text(TRAP_CODE)
    (root / "pkg" / "train.py").write_text(TRAP_CODE)
    (root / "notes.txt").write_text("not python\n")
    (root / ".venv" / "lib" / "vendored.py").write_text(TRAP_CODE)
    (outside / "secret.py").write_text(TRAP_CODE)
    (root / "link_out.py").symlink_to(outside / "secret.py")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "pkg" / "link_out.py").symlink_to(outside / "secret.py")
    data = base / "data"
    data.mkdir()
    return {"base": base, "root": root, "outside": outside, "data": data}


def server_params(root: Path, data: Path, *flags: str) -> StdioServerParameters:
    env = {"ECOLOBSTER_DATA_DIR": str(data), "XDG_STATE_HOME": str(data / "state"), "NO_COLOR": "1"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return StdioServerParameters(command=SERVER_CMD[0], args=[*SERVER_CMD[1:], "mcp", "--root", str(root), *flags],
                                 cwd=str(root), env=env)


# name -> (tool, arguments). Valid calls first, then invalid ones; a final call checks the
# server still answers after all of them.
VALID: dict[str, tuple[str, Any]] = {
    "qm_all": ("query_measurements", {"limit": 500}),
    "qm_gpu": ("query_measurements", {"gpu": "4090d", "precision": "nf4"}),
    "qm_limit": ("query_measurements", {"limit": 3}),
    "qm_simulated": ("query_measurements", {"kind": "simulated"}),
    "audit_code": ("audit", {"code": TRAP_CODE, "filename": "snippet.py"}),
    "audit_file": ("audit", {"path": "serve.py"}),
    "audit_dir": ("audit", {"path": "pkg"}),
    "audit_root": ("audit", {"path": "."}),
    "ask_en": ("ask", {"text": "greenest way to serve mistral-7b on an rtx 4090d"}),
    "ask_zh": ("ask", {"text": "在A800上运行Mistral-7B，每天一万个请求，电费多少？"}),
    "optimize": ("optimize", {"model": "mistral-7b", "gpu": "4090d", "use_case": "production_api",
                              "requests_per_day": 10000}),
    "compare": ("compare", {"model": "mistral-7b", "gpu": "a800", "compare_precisions": ["fp16", "int8_mixed", "int8_pure"]}),
    "estimate": ("estimate", {"model": "mistral-7b", "gpu": "4090d", "precision": "nf4", "tokens_per_month": 1e8,
                              "region": "eu"}),
    "diagnose": ("diagnose", {"model": "mistral-7b", "gpu": "a800", "precision": "int8_mixed",
                              "symptoms": ["slow", "high_bill"]}),
    "path_abs_in": ("audit", {"path": "<root>/serve.py"}),
    "plan": ("plan_finetune", {"model": "qwen2.5-7b", "examples": 10000, "avg_tokens": 512, "gpus": ["4090d", "a800"],
                               "budget_usd": 50}),
}
INVALID: dict[str, tuple[str, Any]] = {
    "unknown_tool": ("no_such_tool", {}),
    "unknown_field": ("query_measurements", {"gpu": "4090d", "colour": "green"}),
    "wrong_type": ("query_measurements", {"limit": "many"}),
    "limit_too_big": ("query_measurements", {"limit": 10**6}),
    "bad_enum": ("query_measurements", {"precision": "int8"}),
    "unknown_gpu": ("query_measurements", {"gpu": "gtx-9999"}),
    "ask_missing": ("ask", {}),
    "ask_huge": ("ask", {"text": "x" * (mcp_inputs.MAX_TEXT_CHARS + 1)}),
    "code_huge": ("audit", {"code": "x = 1\n" * (mcp_inputs.MAX_CODE_CHARS // 6 + 1)}),
    "args_huge": ("audit", {"code": "x = 1\n", "filename": "a" * (limits.MAX_ARGUMENTS_BYTES + 10)}),
    "audit_both": ("audit", {"code": "x = 1\n", "path": "serve.py"}),
    "audit_neither": ("audit", {}),
    "path_dotdot": ("audit", {"path": "../outside/secret.py"}),
    "path_abs_out": ("audit", {"path": "<outside>/secret.py"}),
    "path_symlink": ("audit", {"path": "link_out.py"}),
    "path_symlink_dir": ("audit", {"path": "linkdir/secret.py"}),
    "path_missing": ("audit", {"path": "nope.py"}),
    "path_not_python": ("audit", {"path": "notes.txt"}),
    "path_nul": ("audit", {"path": "serve\x00.py"}),
    "ask_wrong_lang": ("ask", {"text": "hi", "lang": "fr"}),
    "ask_gibberish": ("ask", {"text": "qwzx plfm"}),
    "optimize_no_model": ("optimize", {"gpu": "4090d"}),
    "optimize_bad_model": ("optimize", {"model": "no-such-model"}),
    "compare_bad_gpu": ("compare", {"model": "mistral-7b", "compare_gpus": ["a800", "gtx-9999"]}),
    "diagnose_bad_symptom": ("diagnose", {"symptoms": ["sad"]}),
    "estimate_negative": ("estimate", {"model": "mistral-7b", "requests_per_day": -5}),
    "long_name": ("optimize", {"model": "m" * (mcp_inputs.MAX_TEXT_CHARS + 1)}),
    "plan_bad_method": ("plan_finetune", {"model": "qwen2.5-7b", "method": "dora"}),
    "plan_unknown_model": ("plan_finetune", {"model": "no-such-model"}),
    "plan_extra": ("plan_finetune", {"model": "qwen2.5-7b", "learning_rate": 1e-4}),
    "plan_seq_short": ("plan_finetune", {"model": "qwen2.5-7b", "seq_len": 4}),
    "nested_long": ("compare", {"model": "mistral-7b", "compare_gpus": ["a800", "g" * (mcp_inputs.MAX_TEXT_CHARS + 1)]}),
}
CALLS = {**VALID, **INVALID, "after_errors": ("query_measurements", {"limit": 1})}


async def _run_session(tree: dict[str, Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    errlog = (tree["base"] / "server-stderr.txt").open("w")
    try:
        async with stdio_client(server_params(tree["root"], tree["data"]), errlog=errlog) as (r, w), \
                ClientSession(r, w) as s:
            out["init"] = await s.initialize()
            out["tools"] = (await s.list_tools()).tools
            for key, (tool, args) in CALLS.items():
                if key == "after_errors":
                    # A call the client abandons (cancels) must not stop the server either.
                    with anyio.move_on_after(0.05):
                        await s.call_tool("audit", {"path": "."})
                args = {k: (v.replace("<outside>", str(tree["outside"])).replace("<root>", str(tree["root"]))
                            if isinstance(v, str) else v) for k, v in args.items()}
                out[key] = await s.call_tool(tool, args)
            out["ping"] = await s.send_ping()
    finally:
        errlog.close()
    out["stderr"] = (tree["base"] / "server-stderr.txt").read_text()
    return out


@pytest.fixture(scope="module")
def session_results(tree) -> dict[str, Any]:
    return anyio.run(_run_session, tree)


def answer_of(result: Any) -> Answer:
    assert result.structured_content is not None
    return Answer.model_validate(result.structured_content)


def error_text(result: Any) -> str:
    assert result.is_error, f"expected an error result, got {result.content[0].text[:300]}"
    return result.content[0].text


# ---------------------------------------------------------------- listing


def test_lists_exactly_the_tools_without_a_gpu(session_results):
    names = {t.name for t in session_results["tools"]}
    assert names == EXPECTED_TOOLS
    assert "benchmark" not in names  # no engine + CUDA GPU on this machine


def test_every_tool_has_a_strict_typed_input_and_the_answer_as_output(session_results):
    answer_schema = mcp_server.answer_output_schema()
    for tool in session_results["tools"]:
        assert tool.description and len(tool.description) > 40
        assert tool.input_schema["type"] == "object"
        assert tool.input_schema["additionalProperties"] is False, tool.name
        assert tool.input_schema["properties"], tool.name
        assert tool.output_schema == answer_schema
        assert tool.annotations.read_only_hint is True


def test_server_identifies_itself_and_instructs_on_provenance(session_results):
    init = session_results["init"]
    assert init.server_info.name == "ecolobster"
    assert "provenance" in init.instructions and "never" in init.instructions


# ---------------------------------------------------------------- valid calls


@pytest.mark.parametrize("key", [*VALID, "after_errors"])
def test_valid_calls_return_answer_json_and_markdown(session_results, key):
    result = session_results[key]
    assert not result.is_error, result.content[0].text
    answer = answer_of(result)
    jsonschema.validate(result.structured_content, mcp_server.answer_output_schema())
    markdown, as_json = result.content[0].text, result.content[1].text
    assert answer.title in markdown
    assert json.loads(as_json) == result.structured_content


def test_query_measurements_filters_and_counts(session_results):
    rows = load_rows()
    every = answer_of(session_results["qm_all"])
    assert every.extra["total"] == len(rows) > 500  # more rows than one call returns: the first 500 come back
    assert [r["id"] for r in every.extra["rows"]] == [r.id for r in rows[:500]]
    assert {c.ref for c in every.citations} == {r.id for r in rows[:500]}

    nf4 = answer_of(session_results["qm_gpu"])
    assert nf4.extra["rows"], "the seed data has RTX 4090D NF4 rows"
    assert {(r["gpu"], r["precision"]) for r in nf4.extra["rows"]} == {("rtx4090d", "nf4")}
    assert nf4.query == {"gpu": "4090d", "precision": "nf4"}

    three = answer_of(session_results["qm_limit"])
    assert three.extra["returned"] == 3 and len(three.tables[0].rows) == 3
    assert three.extra["total"] == len(rows)


def test_query_measurements_provenance_keeps_simulated_rows_apart(session_results):
    sim = answer_of(session_results["qm_simulated"])
    assert sim.extra["rows"] and all(r["kind"] == "simulated" for r in sim.extra["rows"])
    assert [p.tier for p in sim.provenance] == ["simulated"]
    assert set(sim.provenance[0].row_ids) == {r["id"] for r in sim.extra["rows"]}


def test_audit_reads_only_python_files_inside_the_root(session_results, tree):
    one = answer_of(session_results["audit_file"])
    assert "serve.py" in json.dumps(one.model_dump())
    folder = answer_of(session_results["audit_dir"])
    blob = json.dumps(folder.model_dump())
    assert "train.py" in blob
    assert "secret.py" not in blob.replace("link_out.py", "")
    assert any("link_out.py" in w and "outside the root" in w for w in folder.warnings)
    whole = json.dumps(answer_of(session_results["audit_root"]).model_dump())
    assert "vendored.py" not in whole  # .venv is not the user's code
    assert str(tree["outside"]) not in whole


# ---------------------------------------------------------------- invalid calls


def test_unknown_tool_names_the_tools(session_results):
    text = error_text(session_results["unknown_tool"])
    assert "unknown tool 'no_such_tool'" in text and "query_measurements" in text


def test_unknown_field_is_refused_with_the_accepted_fields(session_results):
    text = error_text(session_results["unknown_field"])
    assert "'colour': unknown field" in text and "accepted: gpu, model, precision" in text


@pytest.mark.parametrize("key,needle", [
    ("wrong_type", "'limit'"),
    ("limit_too_big", f"less than or equal to {mcp_inputs.MAX_ROWS}"),
    ("bad_enum", "'precision'"),
    ("ask_missing", "'text': required"),
    ("ask_huge", f"'text': longer than {mcp_inputs.MAX_TEXT_CHARS:,} characters"),
    ("code_huge", f"at most {mcp_inputs.MAX_CODE_CHARS} characters"),
    ("args_huge", "the limit is"),
    ("audit_both", "exactly one of 'path'"),
    ("audit_neither", "exactly one of 'path'"),
    ("ask_wrong_lang", "'lang'"),
    ("unknown_gpu", "Unknown GPU 'gtx-9999'"),
])
def test_bad_arguments_get_a_clear_error(session_results, key, needle):
    text = error_text(session_results[key])
    assert needle in text
    answer = answer_of(session_results[key])
    assert answer.protocol == "error" and answer.errors


@pytest.mark.parametrize("key", ["path_dotdot", "path_abs_out", "path_symlink", "path_symlink_dir"])
def test_paths_escaping_the_root_are_refused(session_results, tree, key):
    text = error_text(session_results[key])
    assert "outside the server's root" in text
    assert "--root" in text  # says how to allow another tree


def test_missing_and_non_python_paths(session_results):
    assert "no file or folder 'nope.py'" in error_text(session_results["path_missing"])
    assert "not a file type the auditor reads" in error_text(session_results["path_not_python"])
    assert "NUL" in error_text(session_results["path_nul"])


def test_server_survives_every_bad_call(session_results):
    assert not session_results["after_errors"].is_error
    assert answer_of(session_results["after_errors"]).extra["returned"] == 1
    assert session_results["ping"] is not None
    assert "Traceback" not in session_results["stderr"]


# ---------------------------------------------------------------- raw JSON-RPC


class RawServer:
    """`ecolobster mcp` driven line by line, to send what the SDK client would never send."""

    def __init__(self, root: Path, data: Path):
        env = {**os.environ, "ECOLOBSTER_DATA_DIR": str(data), "NO_COLOR": "1"}
        self.proc = subprocess.Popen([*SERVER_CMD, "mcp", "--root", str(root)], cwd=root, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def send(self, msg: dict[str, Any] | str) -> None:
        line = msg if isinstance(msg, str) else json.dumps(msg)
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, want_id: int, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"server closed stdout; stderr: {self.stderr()}")
            msg = json.loads(line)
            if msg.get("id") == want_id:
                return msg
        raise AssertionError(f"no reply to request {want_id} within {timeout}s")

    def initialize(self) -> None:
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "raw-test", "version": "0"}}})
        assert "result" in self.recv(0)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close_and_wait(self, timeout: float = 20.0) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""


@pytest.fixture
def raw(tree):
    server = RawServer(tree["root"], tree["data"])
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()


def test_malformed_requests_get_errors_and_the_server_stays_up(raw):
    raw.initialize()
    raw.send({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
              "params": {"name": "query_measurements", "arguments": "not an object"}})
    bad = raw.recv(1)
    assert "error" in bad and bad["error"]["code"] == -32602  # invalid params
    raw.send("this is not json")
    raw.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"arguments": {}}})
    assert "error" in raw.recv(2)
    raw.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
              "params": {"name": "query_measurements", "arguments": {"limit": 2}}})
    ok = raw.recv(3)["result"]
    assert ok["isError"] is False and ok["structuredContent"]["extra"]["returned"] == 2
    assert raw.close_and_wait() == 0


def test_client_disconnecting_mid_call_ends_the_server_cleanly(raw):
    raw.initialize()
    raw.send({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
              "params": {"name": "audit", "arguments": {"path": "."}}})
    rc = raw.close_and_wait()  # stdin closed while the call may still run
    err = raw.stderr()
    assert rc == 0, err
    assert "Traceback" not in err


def test_cancelled_call_leaves_the_server_serving(raw):
    raw.initialize()
    raw.send({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
              "params": {"name": "audit", "arguments": {"path": "."}}})
    raw.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4}})
    raw.send({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
              "params": {"name": "query_measurements", "arguments": {"limit": 1}}})
    assert raw.recv(5)["result"]["isError"] is False
    assert raw.close_and_wait() == 0


# ---------------------------------------------------------------- in-process units


def test_call_tool_refuses_non_object_arguments(tmp_path):
    ctx = mcp_tools.ServerContext(guard=mcp_guard.PathGuard(tmp_path))
    specs = {s.name: s for s in mcp_tools.tool_specs(include_benchmark=False)}
    out = mcp_server.call_tool(specs, "query_measurements", ["gpu", "4090d"], ctx)
    assert out.is_error and "must be a JSON object" in out.answer.errors[0]


def test_path_guard_allows_inside_and_refuses_outside(tree):
    guard = mcp_guard.PathGuard(tree["root"])
    assert guard.resolve("pkg/../serve.py") == (tree["root"] / "serve.py").resolve()
    assert guard.resolve(str(tree["root"] / "pkg")) == (tree["root"] / "pkg").resolve()
    for bad in ("..", "../outside", str(tree["outside"]), "link_out.py", "linkdir", "/etc/passwd"):
        with pytest.raises(mcp_inputs.ToolError, match="outside the server's root"):
            guard.resolve(bad)
    files, skipped = guard.source_files(guard.resolve("."))
    names = sorted(f.name for f in files)
    assert names == ["serve.py", "train.py"]
    assert sorted(s.split(":")[0] for s in skipped) == ["link_out.py", "linkdir", "pkg/link_out.py"]
    assert all("a link to outside the root" in s for s in skipped)


def test_mcp_command_refuses_a_missing_root(tmp_path):
    proc = subprocess.run([*SERVER_CMD, "mcp", "--root", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "is not a directory" in proc.stderr


def test_list_tools_without_serving(tmp_path):
    proc = subprocess.run([*SERVER_CMD, "mcp", "--list-tools", "--format", "json"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert {t["name"] for t in listed} == EXPECTED_TOOLS
    assert all(t["input_schema"]["additionalProperties"] is False for t in listed)


# ---------------------------------------------------------------- what the protocols answer


@pytest.mark.parametrize("key", list(INVALID))
def test_every_invalid_call_is_a_clear_error_result(session_results, key):
    text = error_text(session_results[key])
    assert "internal error" not in text, text
    answer = answer_of(session_results[key])
    assert answer.errors and answer.mood == "gray"
    assert answer.protocol in ("error", CALLS[key][0].removesuffix("_finetune"))


def test_protocol_tools_answer_with_provenance_and_citations(session_results):
    known_rows = {r.id for r in load_rows()}
    for key in ("optimize", "compare", "estimate", "diagnose"):
        answer = answer_of(session_results[key])
        assert answer.protocol == key
        assert answer.query.get("model") == "mistral-7b-v0.2", answer.query
        assert answer.provenance, key
        cited = {c.ref for c in answer.citations if c.kind == "row"}
        assert cited and cited <= known_rows, key


def test_structured_tools_match_the_cli(session_results, capsys):
    """The MCP tool and the command with the same fields give the same Answer (voice aside)."""
    from advisor.cli import main

    capsys.readouterr()
    assert main(["optimize", "--model", "mistral-7b", "--gpu", "4090d", "--use-case", "production_api",
                 "--requests-per-day", "10000", "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    tool = session_results["optimize"].structured_content
    drop = ("voice",)
    assert {k: v for k, v in tool.items() if k not in drop} == {k: v for k, v in cli.items() if k not in drop}


def test_specific_answers(session_results):
    compare = answer_of(session_results["compare"])
    blob = json.dumps(compare.tables[0].model_dump())
    assert all(p in blob.lower() for p in ("fp16", "int8"))
    estimate = answer_of(session_results["estimate"])
    assert estimate.costs and all(c.kwh > 0 for c in estimate.costs)
    assert estimate.query.get("region") == "eu"
    audit = answer_of(session_results["audit_code"])
    assert "ECO101" in {a.code for a in audit.alerts}
    assert answer_of(session_results["ask_zh"]).lang == "zh"
    assert "model" in error_text(session_results["optimize_no_model"])
    assert "gtx-9999" in error_text(session_results["compare_bad_gpu"])
    assert "longer than" in error_text(session_results["nested_long"])
    plan = answer_of(session_results["plan"])
    assert plan.protocol == "plan" and plan.tables and plan.provenance
    assert plan.query["model"] == "qwen2.5-7b" and plan.query["gpus"] == ["4090d", "a800"]
    assert "'method'" in error_text(session_results["plan_bad_method"])
    assert "Unknown model 'no-such-model'" in error_text(session_results["plan_unknown_model"])
    assert "'learning_rate': unknown field" in error_text(session_results["plan_extra"])


# ---------------------------------------------------------------- benchmark


def _bench_ctx(tmp_path: Path) -> tuple[dict, mcp_tools.ServerContext]:
    specs = {s.name: s for s in mcp_tools.tool_specs(include_benchmark=True)}
    return specs, mcp_tools.ServerContext(guard=mcp_guard.PathGuard(tmp_path))


def test_benchmark_tool_is_typed_and_async():
    spec = {s.name: s for s in mcp_tools.tool_specs(include_benchmark=True)}["benchmark"]
    assert spec.is_async and not spec.read_only
    schema = spec.input_model.model_json_schema()
    assert schema["additionalProperties"] is False and schema["required"] == ["model"]
    assert set(schema["properties"]["precisions"]["items"]["enum"]) == {
        "fp32", "fp16", "bf16", "fp8", "nf4", "int8_mixed", "int8_pure"}


def test_benchmark_refuses_bad_input_before_measuring(tmp_path):
    specs, ctx = _bench_ctx(tmp_path)

    async def go():
        return [await mcp_server.call_tool_async(specs, "benchmark", args, ctx) for args in (
            {"model": "qwen2.5-0.5b", "precisions": ["int8"]},
            {"model": "qwen2.5-0.5b", "batch_sizes": [0]},
            {"model": "qwen2.5-0.5b", "precisions": []},
            {"model": "../weights", "synthetic": False},
            {"model": "qwen2.5-0.5b", "gpu": "h100"},
        )]

    bad_precision, bad_batch, empty, outside, unknown = anyio.run(go)
    assert all(o.is_error for o in (bad_precision, bad_batch, empty, outside, unknown))
    assert "'precisions.0'" in bad_precision.answer.errors[0]
    assert "'batch_sizes.0'" in bad_batch.answer.errors[0]
    assert "'precisions'" in empty.answer.errors[0]
    assert "outside the server's root" in outside.answer.errors[0]
    assert "'gpu': unknown field" in unknown.answer.errors[0]


def test_benchmark_one_at_a_time(tmp_path):
    specs, ctx = _bench_ctx(tmp_path)
    ctx.bench_running = True
    out = anyio.run(mcp_server.call_tool_async, specs, "benchmark", {"model": "qwen2.5-0.5b"}, ctx)
    assert out.is_error and "already running" in out.answer.errors[0]


@pytest.mark.skipif(mcp_tools.benchmark_available(), reason="checks the no-GPU path")
def test_benchmark_without_a_gpu_reports_the_child_error(tmp_path):
    """The real `ecolobster bench` child runs and refuses; its message reaches the agent."""
    specs, ctx = _bench_ctx(tmp_path)
    out = anyio.run(mcp_server.call_tool_async, specs, "benchmark",
                    {"model": "qwen2.5-0.5b", "runs": 1, "warmup": 0, "pause_s": 0, "idle_s": 0}, ctx)
    assert out.is_error
    text = out.answer.errors[0]
    assert "CUDA" in text or "engine extra" in text, text
    assert not ctx.bench_running


async def _gpu_session(tree: dict[str, Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    args = {"model": "qwen2.5-0.5b", "precisions": ["fp16", "bf16"], "batch_sizes": [1, 4], "prompt_tokens": 64,
            "gen_tokens": 32, "runs": 3, "warmup": 1, "pause_s": 0, "idle_s": 1, "timeout_s": 500}
    # The benchmark tool is offered only when the server is started to allow it.
    async with stdio_client(server_params(tree["root"], tree["data"], "--allow-benchmark")) as (r, w), \
            ClientSession(r, w) as s:
        await s.initialize()
        out["tools"] = {t.name for t in (await s.list_tools()).tools}
        results: list[Any] = []

        async def call(a: dict[str, Any]) -> None:
            results.append(await s.call_tool("benchmark", a))

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, args)
            await anyio.sleep(1.0)
            tg.start_soon(call, {**args, "batch_sizes": [8]})  # while the first one measures
        out["first"], out["second"] = sorted(results, key=lambda r: r.is_error)
        out["rows"] = await s.call_tool("query_measurements", {"model": "qwen2.5-0.5b", "kind": "measured"})
        with anyio.move_on_after(3):  # a cancelled benchmark must kill its child process
            await s.call_tool("benchmark", {**args, "batch_sizes": [2], "runs": 50})
        await anyio.sleep(3)
        out["children"] = [p.name for p in Path("/proc").glob("[0-9]*") if b"advisor.cli\x00bench" in _cmdline(p)]
        out["after"] = await s.call_tool("query_measurements", {"limit": 1})
    return out


def _cmdline(p: Path) -> bytes:
    try:
        return (p / "cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.gpu
@pytest.mark.skipif(not mcp_tools.benchmark_available(), reason="needs the engine and a CUDA GPU")
def test_benchmark_tool_measures_on_the_gpu(tree):
    out = anyio.run(_gpu_session, tree)
    assert "benchmark" in out["tools"]
    first, second = out["first"], out["second"]
    assert not first.is_error, first.content[0].text
    assert second.is_error and "already running" in second.content[0].text
    answer = answer_of(first)
    assert answer.extra["returned"] == 4, answer.extra  # 2 precisions x 2 batch sizes
    rows = answer.extra["rows"]
    assert all(r["kind"] == "measured" and r["weights"] == "synthetic" for r in rows)
    assert all(r["energy_j_per_1k_tok"] > 0 and r["throughput_tok_s"] > 0 for r in rows)
    assert {p.tier for p in answer.provenance} == {"measured"}
    stored = {r["id"] for r in answer_of(out["rows"]).extra["rows"]}
    assert {r["id"] for r in rows} <= stored  # the local dataset now answers from them
    assert out["children"] == [], "a cancelled benchmark left its child process running"
    assert not out["after"].is_error
