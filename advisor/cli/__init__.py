"""The `ecolobster` command: a composition root that wires the command groups together.

Each group lives in its own module `advisor.cli.<group>` with `register(subparsers)`; handlers
import what they need when they run, so `ecolobster --help` and `ask` start fast. The command
modules reach the core only through `advisor.api` and show answers through `advisor.render`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys

from advisor.limits import MAX_WIDTH, MIN_WIDTH, UsageError, clamp_width

# One module per command group (docs/ARCHITECTURE.md: each command's room easy to find).
COMMAND_MODULES: tuple[str, ...] = (
    "advisor.cli.data",
    "advisor.cli.audit",
    "advisor.cli.ask",
    "advisor.cli.chat",
    "advisor.cli.schema",
    "advisor.cli.mcp",
    "advisor.cli.bench",
    "advisor.cli.plan",
    "advisor.cli.report",
)


def width_arg(text: str) -> int:
    """argparse type of --width: an integer column count within MIN_WIDTH..MAX_WIDTH."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of columns "
                                         f"(accepted: {MIN_WIDTH}-{MAX_WIDTH})") from None
    if not MIN_WIDTH <= value <= MAX_WIDTH:
        raise argparse.ArgumentTypeError(f"{value} columns is out of range (accepted: {MIN_WIDTH}-{MAX_WIDTH})")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecolobster",
        description="EcoLobster: the greenest, cheapest way to run or fine-tune an LLM on a GPU, from measurements.",
    )
    parser.add_argument("--version", action="version", version="ecolobster 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _tolerant_output() -> None:
    """Arguments that are not valid UTF-8 reach Python as lone surrogates (surrogateescape); echoed
    in an error message or an answer they would crash the write. Show them escaped instead."""
    for stream in (sys.stdout, sys.stderr):
        # not every stream is a text stream we may reconfigure
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    _tolerant_output()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `ecolobster data export | head`
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        _report_store_problems()


def _report_store_problems() -> None:
    """Whatever the local store's reader skipped and no answer has shown yet goes to stderr."""
    store = sys.modules.get("measurements.store")  # not imported: no rows were read
    if store is None:
        return
    for p in store.take_problems():
        print(f"warning: {p}", file=sys.stderr)


__all__ = ["MAX_WIDTH", "MIN_WIDTH", "UsageError", "build_parser", "clamp_width", "main", "width_arg"]
