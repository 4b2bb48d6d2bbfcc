"""The import rules of docs/ARCHITECTURE.md, read statically from every file (nothing is imported).

Data flows engine -> measurements <- advisor: measurements imports neither side, the advisor never
imports the engine or torch, and the ways in (CLI, chat, MCP) reach the core through advisor.api
and the render layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# No advisor module imports the engine (the bench command is the engine's own, engine/cli.py,
# found through an entry point). The list may only shrink: it is empty.
ENGINE_IMPORT_EXCEPTIONS: set[str] = set()
# Lazy `import torch` inside a function, only to ask whether a benchmark could run (the MCP
# server's bench tool, after cheaper checks).
TORCH_IMPORT_EXCEPTIONS = {"advisor/mcp/tools.py"}

# The ways in: each a package of its own.
INTERFACE_PACKAGES = ("advisor.cli", "advisor.chat", "advisor.mcp")
# What a way in may import besides its own package: the one API, the render layer, the one set
# of input limits (with the error for input outside them) and the message catalog (its words).
INTERFACE_ALLOWED = ("advisor.api", "advisor.render", "advisor.limits", "advisor.messages")
# The commands that start another way in: `chat` starts the chat, `mcp` the server, and `schema`
# shows the MCP tools' input models. Nothing else crosses from one way in to another.
INTERFACE_LAUNCHES = {
    "advisor/cli/chat.py": {"advisor.chat.session"},
    "advisor/cli/mcp.py": {"advisor.mcp"},
    "advisor/cli/schema.py": {"advisor.mcp.tools"},
}

# Core modules a way in imports directly, per file. The list may only shrink: it is empty.
INTERFACE_EXCEPTIONS: dict[str, set[str]] = {}


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every absolute module name imported anywhere in the file (top level or inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _is(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


def _interfaces() -> list[Path]:
    return [p for pkg in INTERFACE_PACKAGES for p in _files(pkg.replace(".", "/"))]


def _package(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).parts[:2])


def test_scan_sees_imports():
    # The scan itself must work, or every rule below would pass vacuously.
    assert "engine.models" in _imports(ROOT / "engine" / "cli.py")
    assert "measurements.schema" in _imports(ROOT / "engine" / "rows.py")


def test_measurements_imports_neither_advisor_nor_engine():
    bad = {_rel(p): sorted(n for n in _imports(p) if _is(n, "advisor") or _is(n, "engine"))
           for p in _files("measurements")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_engine_never_imports_the_advisor():
    bad = {_rel(p): sorted(n for n in _imports(p) if _is(n, "advisor")) for p in _files("engine")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_advisor_never_imports_engine_or_torch():
    heavy = ("engine", "torch", "transformers", "bitsandbytes")
    bad = {}
    for p in _files("advisor"):
        hits = sorted(n for n in _imports(p) if any(_is(n, h) for h in heavy))
        if _rel(p) in ENGINE_IMPORT_EXCEPTIONS:
            hits = [n for n in hits if not _is(n, "engine")]
        if _rel(p) in TORCH_IMPORT_EXCEPTIONS:
            hits = [n for n in hits if n != "torch"]
        if hits:
            bad[_rel(p)] = hits
    assert bad == {}


def test_engine_and_torch_exceptions_are_still_needed():
    # When a listed module stops importing the engine (or torch), it must leave the list.
    for rel in ENGINE_IMPORT_EXCEPTIONS:
        path = ROOT / rel
        assert path.exists() and any(_is(n, "engine") for n in _imports(path)), rel
    for rel in TORCH_IMPORT_EXCEPTIONS:
        path = ROOT / rel
        assert path.exists() and "torch" in _imports(path), rel


def test_the_ways_in_are_packages():
    for pkg in INTERFACE_PACKAGES:
        assert (ROOT / pkg.replace(".", "/") / "__init__.py").is_file(), pkg
    # the old single-file ways in are gone
    adv = ROOT / "advisor"
    assert not [p.name for p in (adv / "cli.py", adv / "repl.py", adv / "mcp_server.py") if p.exists()]
    assert sorted(adv.glob("cmd_*.py")) == []


def test_interfaces_import_only_api_render_and_listed_exceptions():
    extra = {}
    for p in _interfaces():
        own = _package(p)
        core = {n for n in _imports(p) if any(_is(n, top) for top in ("advisor", "engine", "measurements"))}
        core -= {n for n in core if _is(n, own) or any(_is(n, a) for a in INTERFACE_ALLOWED)}
        core -= INTERFACE_LAUNCHES.get(_rel(p), set())
        core -= INTERFACE_EXCEPTIONS.get(_rel(p), set())
        if core:
            extra[_rel(p)] = sorted(core)
    assert extra == {}


def test_the_api_names_what_it_exports():
    # Every name advisor.api hands out lazily exists where it says, so a way in never meets an
    # AttributeError for a core module renamed under it.
    import importlib

    import advisor.api as api

    missing = [name for name, (module, attr) in api._EXPORTS.items()
               if attr is not None and not hasattr(importlib.import_module(module), attr)]
    assert missing == []
    assert api.load_rows is importlib.import_module("measurements.store").load_rows
    assert api.catalog is importlib.import_module("measurements.catalog")


def test_interface_exceptions_are_still_needed():
    stale = {}
    for rel, names in {**INTERFACE_EXCEPTIONS, **INTERFACE_LAUNCHES}.items():
        path = ROOT / rel
        unused = names - _imports(path) if path.exists() else names
        if unused:
            stale[rel] = sorted(unused)
    assert stale == {}


def test_the_bench_command_is_registered_through_the_entry_point():
    # pyproject declares it; the CLI's loader finds it (from the metadata, or from this checkout's
    # pyproject when the editable install predates the declaration) and registers its parser.
    import tomllib

    from advisor import cli

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["entry-points"][cli.ENTRY_POINT_GROUP] == {"bench": "engine.cli"}
    assert "engine.cli" in cli.plugin_modules()
    assert not any(_is(m, "engine") for m in cli.COMMAND_MODULES)
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "bench" in sub.choices  # type: ignore[attr-defined]


def test_bench_defaults_are_the_protocols():
    from advisor.cli import build_parser
    from engine.protocol import ProtocolSettings

    d = ProtocolSettings()
    args = build_parser().parse_args(["bench", "--model", "qwen2.5-0.5b"])
    assert (args.pause, args.idle, args.cv_throughput, args.cv_power, args.max_reruns) == (
        d.pause_s, d.idle_s, d.cv_max_throughput, d.cv_max_power, d.max_reruns)
    assert abs(1.0 / args.sample_hz - d.sample_interval_s) < 1e-12
