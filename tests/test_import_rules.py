"""The import rules of docs/ARCHITECTURE.md, read statically from every file (nothing is imported).

Data flows engine -> measurements <- advisor: measurements imports neither side, the advisor never
imports the engine or torch, and the ways in (CLI, chat, MCP) reach the core through advisor.api
and the render layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Until the bench command moves to engine/cli.py (issue #19 item 2) these two advisor modules
# still import the engine, lazily inside functions. The list may only shrink.
ENGINE_IMPORT_EXCEPTIONS = {"advisor/cli/bench.py", "advisor/cli/bench_serve.py"}
# Lazy `import torch` inside a function, only when a GPU benchmark is about to run (the bench
# command) or to ask whether one could (the MCP server's bench tool, after cheaper checks).
TORCH_IMPORT_EXCEPTIONS = {"advisor/cli/bench.py", "advisor/cli/bench_serve.py", "advisor/mcp/tools.py"}

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

# Core modules the ways in still import directly: only the bench command, until it moves to the
# engine (issue #19 item 2). Listed per file so the list can only shrink, never grow silently.
INTERFACE_EXCEPTIONS = {
    "advisor/cli/bench.py": {"engine", "engine.finetune", "engine.inference", "engine.models",
                             "engine.power", "engine.protocol", "engine.provenance", "engine.rows",
                             "measurements", "measurements.store"},
    "advisor/cli/bench_serve.py": {"engine.inference", "engine.parallel", "engine.results", "engine.rows",
                                   "engine.serve"},
}


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
    assert "engine.models" in _imports(ROOT / "advisor" / "cli" / "bench.py")
    assert "measurements.schema" in _imports(ROOT / "engine" / "rows.py")


def test_measurements_imports_neither_advisor_nor_engine():
    bad = {_rel(p): sorted(n for n in _imports(p) if _is(n, "advisor") or _is(n, "engine"))
           for p in _files("measurements")}
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
