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
ENGINE_IMPORT_EXCEPTIONS = {"advisor/cmd_bench.py", "advisor/bench_serve.py"}
# Lazy `import torch` inside a function, only when a GPU benchmark is about to run (the bench
# command) or to ask whether one could (the MCP server's bench tool, after cheaper checks).
TORCH_IMPORT_EXCEPTIONS = {"advisor/cmd_bench.py", "advisor/bench_serve.py", "advisor/mcp_server.py"}

# Modules a way in may import: the API, the render layer, the command plumbing and the shared
# input limits and measurement contract.
INTERFACE_ALLOWED = ("advisor.api", "advisor.render", "advisor.cli", "advisor.limits",
                     "advisor.cmd_", "advisor.repl", "advisor.mcp_server", "measurements")

# Core modules the ways in still import directly today (issue #19 item 1 is not done: they should
# go through advisor.api). Listed per file so the list can only shrink, never grow silently.
INTERFACE_EXCEPTIONS = {
    "advisor/cmd_ask.py": {"advisor.query", "advisor.query.explain"},
    "advisor/cmd_audit.py": {"advisor.audit", "advisor.audit.ci", "advisor.audit.policy",
                             "advisor.audit.sarif", "advisor.protocols.audit"},
    "advisor/cmd_bench.py": {"advisor", "engine", "engine.finetune", "engine.inference",
                             "engine.models", "engine.power", "engine.protocol",
                             "engine.provenance", "engine.rows"},
    "advisor/cmd_mcp.py": {"advisor"},
    "advisor/cmd_plan.py": {"advisor.protocols.plan"},
    "advisor/cmd_report.py": {"advisor.bench_report"},
    "advisor/cmd_schema.py": {"advisor", "advisor.answer", "advisor.query"},
    "advisor/repl.py": {"advisor.protocols", "advisor.query.explain", "advisor.textcheck"},
    "advisor/mcp_server.py": {"advisor.answer", "advisor.audit.sources", "advisor.audit.walk",
                              "advisor.protocols.audit", "advisor.protocols.plan",
                              "advisor.query"},
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
    adv = ROOT / "advisor"
    return [adv / "cli.py", adv / "repl.py", adv / "mcp_server.py", *sorted(adv.glob("cmd_*.py"))]


def test_scan_sees_imports():
    # The scan itself must work, or every rule below would pass vacuously.
    assert "engine.models" in _imports(ROOT / "advisor" / "cmd_bench.py")
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


def test_interfaces_import_only_api_render_and_listed_exceptions():
    extra = {}
    for p in _interfaces():
        core = {n for n in _imports(p) if _is(n, "advisor") or _is(n, "engine")}
        core -= {n for n in core if n.startswith(INTERFACE_ALLOWED)}
        core -= INTERFACE_EXCEPTIONS.get(_rel(p), set())
        if core:
            extra[_rel(p)] = sorted(core)
    assert extra == {}


def test_interface_exceptions_are_still_needed():
    stale = {}
    for rel, names in INTERFACE_EXCEPTIONS.items():
        path = ROOT / rel
        unused = names - _imports(path) if path.exists() else names
        if unused:
            stale[rel] = sorted(unused)
    assert stale == {}
