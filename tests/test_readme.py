"""Every `ecolobster ...` command the README shows parses with the real CLI, and the row ids it
names exist: the README is the first thing a new user copies from."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from advisor.cli import build_parser
from measurements.store import load_rows

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S)
    cmds: list[str] = []
    for block in blocks:
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith("ecolobster "):
                cmds.append(line.split(" | ")[0].split(" > ")[0])
    return cmds


def test_readme_shows_commands():
    assert len(_commands()) >= 15


@pytest.mark.parametrize("cmd", _commands())
def test_readme_command_parses(cmd):
    argv = shlex.split(cmd)[1:]
    args = build_parser().parse_args(argv)
    assert getattr(args, "handler", None) is not None or argv[0] in {"mcp"}


def test_readme_row_ids_exist():
    ids = {r.id for r in load_rows(include_local=False)}
    named = set(re.findall(r"\b(seed00[03]-[a-z0-9._-]+|h[12]00-[a-z0-9._-]+)", README.read_text(encoding="utf-8")))
    named = {n.rstrip(".") for n in named if not n.endswith("-")}
    missing = {n for n in named if n not in ids and not any(i.startswith(n) for i in ids)}
    assert not missing
