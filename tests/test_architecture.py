"""docs/ARCHITECTURE.md stays true: every path its module list names exists (unless marked planned),
and every Python package of advisor/, engine/ and measurements/ is named there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def _module_list() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Module list", 1)[1]
    return [line for line in section.splitlines() if line.lstrip().startswith("- `")]


def _named(lines: list[str]) -> set[str]:
    return {m for line in lines for m in re.findall(r"`([\w./]+)`", line) if "/" in m}


def test_module_list_is_not_empty():
    named = _named(_module_list())
    assert "advisor/api.py" in named and "measurements/schema.py" in named and len(named) > 30


def test_every_named_path_exists():
    missing = sorted(p for line in _module_list() if "*planned*" not in line
                     for p in _named([line]) if not (ROOT / p).exists())
    assert missing == []


def test_every_package_is_named():
    named = _named(_module_list())
    packages = sorted(
        init.parent.relative_to(ROOT).as_posix() + "/"
        for top in ("advisor", "engine", "measurements")
        for init in (ROOT / top).rglob("__init__.py")
    )
    assert packages and [p for p in packages if p not in named] == []


def test_readme_links_the_map():
    assert "docs/ARCHITECTURE.md" in (ROOT / "README.md").read_text(encoding="utf-8")
