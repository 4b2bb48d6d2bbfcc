"""EcoLobster as a Model Context Protocol server, so AI agents call it as a tool.

`ecolobster mcp [--root DIR]` serves these tools over stdio (the official `mcp` SDK, optional
extra `ecolobster[mcp]`): optimize, compare, estimate, diagnose, ask, audit, plan_finetune,
query_measurements, and benchmark only with `--allow-benchmark` (it downloads and runs models)
where the engine is installed and a CUDA GPU is present.

Every tool takes a typed input (a pydantic model with `extra="forbid"`, so its JSON Schema
reaches the agent and unknown fields are refused) and returns the Answer twice: as structured
content (the Answer JSON, validated by the client against the tool's output schema) and as
text (a Markdown rendering, then the same JSON, for clients that only read text).

Bad input never takes the server down: malformed or oversized arguments, unknown tools, paths
outside the root and failures inside a protocol come back as an error result (`isError`) that
names what was wrong and what is accepted; the server goes on serving.

The input models and `tool_specs()` import nothing from `mcp`, so `ecolobster schema` can show
them on an install without the extra.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from advisor.api import Answer, field_errors, validation_messages
from advisor.limits import MAX_ARGUMENTS_BYTES, MAX_NAME_CHARS
from advisor.mcp.guard import PathGuard
from advisor.mcp.inputs import MAX_TEXT_CHARS, ToolError
from advisor.mcp.tools import DEFAULT_CALL_BUDGET_S, ServerContext, ToolSpec, tool_specs

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

log = logging.getLogger("ecolobster.mcp")

SERVER_NAME = "ecolobster"
# JSON-RPC lines (policy): far above any real call (arguments are capped at MAX_ARGUMENTS_BYTES),
# nesting far above any tool input (the SDK's own parser stops near 200 levels, silently).
MAX_LINE_BYTES = 4 * 1_000_000
MAX_JSON_DEPTH = 64

INSTRUCTIONS = (
    "EcoLobster answers energy, cost and CO2 questions about running or fine-tuning LLMs on GPUs "
    "from measured data. Every tool returns an Answer: `mood` (green/yellow/orange/red/gray) is the "
    "waste against the best alternative, `alerts` are known energy traps with fixes, `tables` and "
    "`costs` hold the figures, `provenance` says how each group of figures was obtained (tier "
    "measured / interpolated / extrapolated / simulated / none) and `citations` name the rows and "
    "sources. Pass on only figures that appear in a tool's output, each with its provenance tier; "
    "never fill a gap with a number of your own: say the data does not cover it, or run "
    "`benchmark` where that tool is offered."
)


# --------------------------------------------------------------------------------------------
# Calling a tool (no MCP types here, so it is testable on its own)
# --------------------------------------------------------------------------------------------

def describe_validation_error(tool: str, model: type[BaseModel], err: ValidationError) -> str:
    accepted = ", ".join(model.model_fields)
    lines = [f"invalid arguments for tool '{tool}':"]
    for e in field_errors(err):
        where = e.where or "(arguments)"
        if e.kind == "extra_forbidden":
            lines.append(f"- '{where}': unknown field (accepted: {accepted})")
        elif e.kind == "missing":
            lines.append(f"- '{where}': required")
        else:
            lines.append(f"- '{where}': {e.msg}")
    return "\n".join(lines)


@dataclass
class Outcome:
    answer: Answer
    is_error: bool


def error_answer(tool: str, message: str) -> Answer:
    return Answer(protocol="error", title=f"{tool}: error", mood="gray", headline=message.splitlines()[0],
                  errors=[message])


def _long_string(value: Any, limit: int, where: str = "") -> str | None:
    """The first string longer than `limit` anywhere in `value`, named by its path."""
    if isinstance(value, str):
        return where if len(value) > limit else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        hit = _long_string(v, limit, f"{where}.{k}" if where else str(k))
        if hit is not None:
            return hit
    return None


def prepare(specs: dict[str, ToolSpec], name: str, arguments: Any) -> tuple[ToolSpec, BaseModel] | Outcome:
    """Check and validate a call's arguments: the tool's input, or the error to answer with."""
    spec = specs.get(name)
    if spec is None:
        return Outcome(error_answer(name[:MAX_NAME_CHARS], f"unknown tool '{name[:MAX_NAME_CHARS]}'; tools: "
                                                           f"{', '.join(specs)}"), True)
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return Outcome(error_answer(name, f"arguments for '{name}' must be a JSON object"), True)
    try:
        size = len(json.dumps(arguments, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return Outcome(error_answer(name, f"arguments for '{name}' are not plain JSON"), True)
    if size > MAX_ARGUMENTS_BYTES:
        return Outcome(error_answer(name, f"arguments for '{name}' are {size:,} bytes; the limit is "
                                          f"{MAX_ARGUMENTS_BYTES:,}"), True)
    # Every string is capped, whatever the model says; only source code may be long.
    long = _long_string({k: v for k, v in arguments.items() if k != "code"}, MAX_TEXT_CHARS)
    if long is not None:
        return Outcome(error_answer(name, f"invalid arguments for tool '{name}':\n- '{long}': longer than "
                                          f"{MAX_TEXT_CHARS:,} characters"), True)
    try:
        return spec, spec.input_model.model_validate(arguments)
    except ValidationError as err:
        return Outcome(error_answer(name, describe_validation_error(name, spec.input_model, err)), True)


def _failure(name: str, err: Exception) -> Outcome:
    if isinstance(err, ToolError):
        return Outcome(error_answer(name, str(err)), True)
    known = _known_error(err)
    if known is not None:
        return Outcome(error_answer(name, known), True)
    log.error("tool %s failed:\n%s", name, traceback.format_exc())
    return Outcome(error_answer(name, f"internal error in '{name}': {err.__class__.__name__}: {err}"), True)


def call_tool(specs: dict[str, ToolSpec], name: str, arguments: Any, ctx: ServerContext) -> Outcome:
    """Validate `arguments` and run a synchronous tool; every failure becomes an error Outcome."""
    prepared = prepare(specs, name, arguments)
    if isinstance(prepared, Outcome):
        return prepared
    spec, inp = prepared
    try:
        answer = spec.run(inp, ctx)
    except Exception as err:  # noqa: BLE001 - one failing call must not take the server down
        return _failure(name, err)
    return Outcome(answer, unanswered(answer))


async def call_tool_async(specs: dict[str, ToolSpec], name: str, arguments: Any, ctx: ServerContext) -> Outcome:
    spec = specs.get(name)
    if spec is None or not spec.is_async:
        # Protocol code is synchronous: it runs in a worker process, so the server keeps answering
        # (pings, other calls) and a call the client cancels or that runs past the budget is
        # killed, not left burning CPU.
        return await run_in_worker(call_tool, (specs, name, arguments, ctx), name, ctx.call_budget_s)
    prepared = prepare(specs, name, arguments)
    if isinstance(prepared, Outcome):
        return prepared
    spec, inp = prepared
    try:
        answer = await spec.run(inp, ctx)
    except Exception as err:  # noqa: BLE001
        return _failure(name, err)
    return Outcome(answer, unanswered(answer))


def _worker_main(conn: Any, fn: Callable[..., Outcome], args: tuple[Any, ...], name: str) -> None:
    try:
        out = fn(*args)
    except BaseException as err:  # noqa: BLE001 - the parent must get an answer, whatever happened
        out = Outcome(error_answer(name, f"internal error in '{name}': {err.__class__.__name__}: {err}"), True)
    try:
        conn.send(out)
    except Exception as err:  # noqa: BLE001 - e.g. an answer that does not pickle
        conn.send(Outcome(error_answer(name, f"internal error in '{name}': the answer could not be returned "
                                             f"({err.__class__.__name__})"), True))
    finally:
        conn.close()


def _receive(conn: Any) -> Any:
    """Block until the worker sends its outcome or dies (EOFError). Closes its end itself, so a
    thread abandoned on cancellation never reads a descriptor that was closed and reused."""
    try:
        return conn.recv()
    finally:
        conn.close()


async def run_in_worker(fn: Callable[..., Outcome], args: tuple[Any, ...], name: str,
                        budget_s: float | None) -> Outcome:
    """Run `fn(*args)` in a forked child process and return its Outcome. Cancellation (the client's
    notifications/cancelled, a disconnect) and the time budget kill the child at once. Where fork
    is not available, a worker thread (abandoned, not killed, on cancellation)."""
    import multiprocessing

    import anyio

    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - non-POSIX
        return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
    mp = multiprocessing.get_context("fork")
    recv_end, send_end = mp.Pipe(duplex=False)
    proc = mp.Process(target=_worker_main, args=(send_end, fn, args, name), daemon=True)
    with warnings.catch_warnings():
        # Python 3.12+ warns on fork in a threaded process; the child only runs `fn` (pure Python,
        # no lock another thread may hold) and exits, so the warning is noise in the client's log.
        warnings.simplefilter("ignore", DeprecationWarning)
        proc.start()
    send_end.close()
    try:
        with anyio.fail_after(budget_s):
            return await anyio.to_thread.run_sync(_receive, recv_end, abandon_on_cancel=True)
    except TimeoutError:
        return Outcome(error_answer(name, f"'{name}' ran past the server's budget of {budget_s:g} s per call and "
                                          "was stopped; ask for less (a smaller folder, fewer options), or start "
                                          "the server with a larger `ecolobster mcp --call-timeout`"), True)
    except EOFError:
        proc.join(5)
        log.error("tool %s: worker process ended without an answer (exit code %s)", name, proc.exitcode)
        return Outcome(error_answer(name, f"internal error in '{name}': its worker process ended without an "
                                          f"answer (exit code {proc.exitcode})"), True)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)


def unanswered(answer: Answer) -> bool:
    """An Answer that carries errors did not answer the question (protocols put nothing else there)."""
    return answer.protocol == "error" or bool(answer.errors)


def _known_error(err: Exception) -> str | None:
    """Errors other modules raise for bad user input, which carry a message meant for the user."""
    names = {c.__name__ for c in type(err).__mro__}
    if "QueryError" in names:
        errors = getattr(err, "errors", None) or [str(err)]
        return "invalid parameters:\n" + "\n".join(f"- {e}" for e in errors)
    if names & {"UnknownName", "UsageError", "DataError", "SettingsError"}:
        return str(err)
    if isinstance(err, ValidationError):  # a value the tool's schema allows but the protocol's model refuses
        return "invalid parameters:\n" + "\n".join(validation_messages(err, "- {where}: {msg}", whole="value"))
    if isinstance(err, OverflowError):
        return f"a figure in the arguments is too large to compute with ({err}); give a realistic value"
    return None


def render_markdown(answer: Answer) -> str:
    from advisor.render import to_markdown

    return to_markdown(answer)


# --------------------------------------------------------------------------------------------
# The MCP server
# --------------------------------------------------------------------------------------------

def answer_output_schema() -> dict[str, Any]:
    return Answer.model_json_schema(mode="serialization")


def build_server(root: Path | str, include_benchmark: bool | None = False,
                 call_budget_s: float | None = DEFAULT_CALL_BUDGET_S) -> Server:
    import mcp_types as types
    from mcp.server.lowlevel import Server

    ctx = ServerContext(guard=PathGuard(root), call_budget_s=call_budget_s)
    specs = {s.name: s for s in tool_specs(include_benchmark)}
    output_schema = answer_output_schema()
    tools = [
        types.Tool(
            name=s.name,
            title=s.title,
            description=s.description,
            input_schema=s.input_model.model_json_schema(),
            output_schema=output_schema,
            annotations=types.ToolAnnotations(title=s.title, read_only_hint=s.read_only,
                                              destructive_hint=False, open_world_hint=False),
        )
        for s in specs.values()
    ]

    async def on_list_tools(_ctx: Any, _params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        outcome = await call_tool_async(specs, params.name, params.arguments, ctx)
        data = outcome.answer.model_dump(mode="json")
        text = "\n".join(outcome.answer.errors) if outcome.is_error and outcome.answer.errors else None
        if text is None:
            try:
                text = render_markdown(outcome.answer)
            except Exception:  # noqa: BLE001 - the JSON still carries the whole answer
                log.error("Markdown rendering failed:\n%s", traceback.format_exc())
                text = outcome.answer.headline or outcome.answer.title
        content: list[Any] = [types.TextContent(type="text", text=text),
                   types.TextContent(type="text", text=json.dumps(data, ensure_ascii=False))]
        return types.CallToolResult(content=content, structured_content=data, is_error=outcome.is_error)

    return Server(
        SERVER_NAME,
        version=_version(),
        title="EcoLobster",
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ecolobster")
    except PackageNotFoundError:
        return "0"


# --------------------------------------------------------------------------------------------
# The wire: every line gets an answer
# --------------------------------------------------------------------------------------------

PARSE_ERROR, INVALID_REQUEST = -32700, -32600


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def screen_line(line: str) -> tuple[str | None, tuple[Any, int, str] | None]:
    """Check one JSON-RPC line before the SDK reads it: (the line, None) when it is fit to pass on,
    else (None, (id, code, message)) for the error response. The SDK drops a line it cannot parse
    without answering, so the client would wait for its timeout; a lone surrogate would break the
    reply's UTF-8 encoding."""
    import mcp_types as types

    if not line.strip():
        return None, None
    try:
        obj = json.loads(line)
    except RecursionError:
        return None, (None, PARSE_ERROR, f"Parse error: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    except ValueError as err:
        return None, (None, PARSE_ERROR, f"Parse error: {getattr(err, 'msg', None) or err.__class__.__name__}")
    rid = obj.get("id") if isinstance(obj, dict) else None
    rid = rid if (isinstance(rid, int) and not isinstance(rid, bool)) or isinstance(rid, str) else None
    if rid is not None:
        try:
            json.dumps(rid, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            rid = None
    if _depth(obj) > MAX_JSON_DEPTH:
        return None, (rid, INVALID_REQUEST, f"Invalid Request: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None, (rid, INVALID_REQUEST, "Invalid Request: a string holds a lone surrogate (\\ud800-\\udfff "
                                            "escape without its pair), which is not Unicode text")
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValueError as err:
        first = field_errors(err)[0].msg if isinstance(err, ValidationError) else str(err)
        return None, (rid, INVALID_REQUEST, f"Invalid Request: not a JSON-RPC 2.0 message ({first})")
    return line, None


class ScreenedStdin:
    """The server's stdin as the SDK's stdio transport reads it (an async iterable of lines), with
    every line screened (screen_line): a bad line is answered with a JSON-RPC error through
    `write` and never reaches the SDK. Lines are read in bounded pieces, so one endless line
    cannot exhaust memory."""

    def __init__(self, raw: Any):
        import anyio

        self.raw = raw
        self.write: Any = None
        self.ready = anyio.Event()

    def attach(self, write: Any) -> None:
        self.write = write
        self.ready.set()

    def _readline(self) -> str | None:
        chunk = self.raw.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return None
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while True:  # drop the rest of the line unread
                more = self.raw.readline(MAX_LINE_BYTES)
                if not more or more.endswith(b"\n"):
                    break
            return "\x00too-long"
        return chunk.decode("utf-8", errors="replace")

    async def _reply(self, rid: Any, code: int, message: str) -> None:
        import anyio
        import mcp_types as types
        from mcp.shared.message import SessionMessage

        await self.ready.wait()
        err = types.JSONRPCError(jsonrpc="2.0", id=rid, error=types.ErrorData(code=code, message=message))
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):  # shutting down
            await self.write.send(SessionMessage(err))

    def __aiter__(self) -> Any:
        return self._lines()

    async def _lines(self) -> Any:
        import anyio

        while True:
            line = await anyio.to_thread.run_sync(self._readline, abandon_on_cancel=True)
            if line is None:
                return
            if line == "\x00too-long":
                await self._reply(None, INVALID_REQUEST, f"Invalid Request: line longer than {MAX_LINE_BYTES:,} bytes")
                continue
            ok, err = screen_line(line)
            if err is not None:
                await self._reply(*err)
            elif ok is not None:
                yield ok


def serve(root: Path | str, include_benchmark: bool | None = False,
          call_budget_s: float | None = DEFAULT_CALL_BUDGET_S) -> None:
    """Serve over stdio until the client closes the connection. The root becomes the working
    directory, so audit findings name files relative to it."""
    import anyio
    from mcp.server.stdio import stdio_server

    server = build_server(root, include_benchmark, call_budget_s)
    os.chdir(Path(root).expanduser().resolve())
    # The wire is a private duplicate of fd 0; fd 0 itself reads /dev/null, so no child process
    # (a benchmark) can swallow the client's messages.
    wire = os.fdopen(os.dup(0), "rb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    stdin = ScreenedStdin(wire)

    async def main() -> None:
        async with stdio_server(stdin=stdin) as (read, write):  # type: ignore[arg-type]
            stdin.attach(write)
            await server.run(read, write, server.create_initialization_options())

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="ecolobster-mcp: %(message)s")
    anyio.run(main)
