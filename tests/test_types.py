"""The type check of pyproject's [tool.mypy] passes (strict on measurements/ and the estimator, the
default checks on the API, the input limits and the ways in), so a landing cannot break it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_passes_on_the_configured_packages():
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert out.stdout.startswith("Success: no issues found")


def test_the_strict_packages_are_the_contract_and_the_estimator():
    import tomllib

    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    strict = next(o for o in mypy["overrides"] if o.get("disallow_untyped_defs"))
    assert {"measurements.*", "advisor.estimate.*"} <= set(strict["module"])
    assert {"measurements", "advisor/estimate"} <= set(mypy["files"])
    assert strict["disallow_any_generics"] and strict["warn_return_any"] and strict["no_implicit_reexport"]


def test_the_engine_is_checked_without_reading_its_heavy_dependencies():
    import tomllib

    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert "engine" in mypy["files"]
    skipped = next(o for o in mypy["overrides"] if o.get("follow_imports") == "skip")
    assert {"torch", "torch.*", "transformers", "bitsandbytes"} <= set(skipped["module"])
