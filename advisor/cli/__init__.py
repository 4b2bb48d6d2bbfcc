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
from pathlib import Path

from advisor.limits import MAX_WIDTH, MIN_WIDTH, UsageError, clamp_width

# One module per command group (docs/ARCHITECTURE.md: each command's room easy to find).
COMMAND_MODULES: tuple[str, ...] = (
    "advisor.cli.data",
    "advisor.cli.audit",
    "advisor.cli.ask",
    "advisor.cli.chat",
    "advisor.cli.schema",
    "advisor.cli.mcp",
    "advisor.cli.plan",
    "advisor.cli.report",
)


# Other packages add commands through this entry-point group (pyproject.toml): the engine's `bench`.
# Each entry names a module with `register(subparsers)`, like the modules above.
ENTRY_POINT_GROUP = "ecolobster.commands"


def plugin_modules() -> list[str]:
    """The command modules of the `ecolobster.commands` entry points, by command name.

    From the installed metadata and, when running from a source checkout, from its pyproject.toml
    too: an editable install keeps the metadata of the day it was made, so a command declared
    since then still appears (the installed entry wins where both name one)."""
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for name, value in _declared_in_checkout().items():
        found.setdefault(name, value)
    return [value.split(":", 1)[0].strip() for _, value in sorted(found.items())]


def _declared_in_checkout() -> dict[str, str]:
    """The entry points of this group that the pyproject.toml beside the package declares, if the
    package runs from the ecolobster source tree (an installed wheel has no pyproject beside it)."""
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    if project.get("name") != "ecolobster":
        return {}
    group = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    return {str(k): str(v) for k, v in group.items()} if isinstance(group, dict) else {}


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
    for name in (*COMMAND_MODULES, *plugin_modules()):
        importlib.import_module(name).register(sub)
    return parser


def _tolerant_output() -> None:
    """Arguments that are not valid UTF-8 reach Python as lone surrogates (surrogateescape); echoed
    in an error message or an answer they would crash the write. Show them escaped instead."""
    for stream in (sys.stdout, sys.stderr):
        # not every stream is a text stream we may reconfigure
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]


def _configure_logging() -> None:
    """ECOLOBSTER_LOG=debug|info|warning shows what the engine and the store log (errors they
    recover from, with tracebacks at debug); unset, only their warnings reach stderr."""
    import os

    level = os.environ.get("ECOLOBSTER_LOG", "").strip().upper()
    if level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        import logging

        logging.basicConfig(level=level, stream=sys.stderr, format="ecolobster: %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    _tolerant_output()
    _configure_logging()
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
