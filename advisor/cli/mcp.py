"""`ecolobster mcp`: serve EcoLobster's tools to AI agents over the Model Context Protocol (stdio)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from advisor.limits import UsageError

MCP_REQUIREMENT = "mcp>=2.3,<3"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mcp",
        help="serve the advisor as MCP tools over stdio (for Claude Desktop, Claude Code and other agents)",
        description="Serve EcoLobster as a Model Context Protocol server over stdio. An MCP client starts "
                    "this command; it is not meant to be typed. The audit tool reads files only under --root.",
    )
    p.add_argument("--root", default=".", metavar="DIR",
                   help="the only directory tree the audit tool may read (default: the current directory)")
    p.add_argument("--allow-benchmark", action="store_true",
                   help="offer the benchmark tool (where the engine and a CUDA GPU are present): it lets the agent "
                        "download any Hugging Face model and run it on this GPU for up to 4 hours; off by default")
    p.add_argument("--call-timeout", type=float, default=None, metavar="S",
                   help="seconds one tool call may run before it is stopped (default 120; 1-86400)")
    p.add_argument("--list-tools", action="store_true",
                   help="print the tools (names, descriptions, input schemas) and exit instead of serving")
    p.add_argument("--format", choices=["json", "markdown"], default="markdown",
                   help="output format of --list-tools (default: markdown)")
    p.set_defaults(handler=cmd_mcp)


def _check_sdk() -> None:
    try:
        from importlib.metadata import version

        import mcp.server.lowlevel  # noqa: F401
        major = int(version("mcp").split(".")[0])
    except Exception:  # noqa: BLE001 - any failure here means the extra is missing or broken
        raise UsageError(f"the MCP server needs the optional extra: pip install 'ecolobster[mcp]' ({MCP_REQUIREMENT})") \
            from None
    if major < 2:
        raise UsageError(f"the installed mcp SDK is {version('mcp')}; the server needs {MCP_REQUIREMENT}: "
                         "pip install -U 'ecolobster[mcp]'")


def cmd_mcp(args: argparse.Namespace) -> int:
    from advisor.mcp import server, tools

    root = Path(args.root).expanduser()
    if not root.is_dir():
        raise UsageError(f"--root '{args.root}' is not a directory")
    budget = tools.DEFAULT_CALL_BUDGET_S if args.call_timeout is None else args.call_timeout
    if not 1 <= budget <= 86_400:  # NaN fails too
        raise UsageError(f"--call-timeout must be between 1 and 86400 seconds (got {args.call_timeout})")
    include_benchmark = None if args.allow_benchmark else False  # None: offered where a GPU is there
    if args.list_tools:
        specs = tools.tool_specs(include_benchmark)
        if args.format == "json":
            print(json.dumps([{"name": s.name, "title": s.title, "description": s.description,
                               "input_schema": s.input_model.model_json_schema()} for s in specs],
                             indent=2, ensure_ascii=False))
        else:
            print(f"EcoLobster MCP tools (root: {root.resolve()})\n")
            for s in specs:
                fields = ", ".join(s.input_model.model_fields)
                print(f"- **{s.name}** ({fields}): {s.description}")
        return 0
    _check_sdk()
    if args.allow_benchmark and not tools.benchmark_available():
        print("warning: --allow-benchmark: no engine extra or CUDA GPU here, so the benchmark tool is not offered",
              file=sys.stderr)
    server.serve(root, include_benchmark, budget)
    return 0
