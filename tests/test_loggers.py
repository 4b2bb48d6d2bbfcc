"""The engine and the store log the errors they recover from (module loggers), instead of
swallowing them: nothing there catches every exception and passes in silence."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted((ROOT / "engine").glob("*.py")) + [ROOT / "measurements" / "store.py", ROOT / "measurements" / "jsonl.py"]


def _broad(handler: ast.ExceptHandler) -> bool:
    t = handler.type
    return t is None or (isinstance(t, ast.Name) and t.id in ("Exception", "BaseException"))


def _silent(body: list[ast.stmt]) -> bool:
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Return) and s.value is None)
               or (isinstance(s, ast.Return) and isinstance(s.value, ast.Constant) and s.value.value is None)
               for s in body)


def test_no_broad_exception_is_swallowed_silently():
    bad = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ExceptHandler) and _broad(node) and _silent(node.body):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.With):
                for item in node.items:
                    call = item.context_expr
                    if (isinstance(call, ast.Call) and getattr(call.func, "attr", getattr(call.func, "id", "")) == "suppress"
                            and any(isinstance(a, ast.Name) and a.id == "Exception" for a in call.args)):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bad == []


def test_the_engine_and_the_store_have_module_loggers():
    for rel in ("engine/power.py", "engine/finetune.py", "engine/inference.py", "engine/serve.py",
                "measurements/jsonl.py", "engine/rows.py", "engine/provenance.py", "measurements/store.py"):
        assert "log = logging.getLogger(__name__)" in (ROOT / rel).read_text(encoding="utf-8"), rel


def test_a_torn_results_line_is_skipped_and_logged(tmp_path, caplog):
    from engine.results import read_jsonl

    path = tmp_path / "bench.jsonl"
    path.write_text('{"key": "a", "status": "ok"}\n{"key": "b", "sta\n', encoding="utf-8")
    with caplog.at_level(logging.DEBUG, logger="measurements.jsonl"):
        recs = read_jsonl(path)
    assert [r["key"] for r in recs] == ["a"]
    assert any("not JSON" in r.getMessage() and r.name == "measurements.jsonl" for r in caplog.records)


def test_ecolobster_log_shows_the_loggers_on_stderr():
    code = ("import logging, sys; from advisor.cli import _configure_logging; _configure_logging(); "
            "logging.getLogger('engine.power').debug('hello from the engine')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"ECOLOBSTER_LOG": "debug", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert "ecolobster: engine.power: hello from the engine" in out.stderr
