"""Node types for what is not Python: lines of requirements files, pyproject tables, shell
install commands and training configs (YAML/JSON). Rules register for these the same way they
register for AST nodes, so one dispatch serves every kind of file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ShellCommand:
    """One logical shell line (notebook `!pip ...`, a .sh line, a Dockerfile RUN, a CI `run:`)."""

    text: str
    line: int
    origin: str = "shell"


@dataclass(frozen=True)
class Requirement:
    """A package requirement: `name`, the version part `spec`, an optional direct `url`."""

    name: str
    spec: str
    line: int
    raw: str
    origin: str  # requirements file | pyproject.toml | install command | conda environment
    url: str | None = None


@dataclass(frozen=True)
class IndexOption:
    """Where packages come from or which versions are allowed: an index URL, a find-links URL,
    a conda channel, or `--pre` (pre-releases allowed)."""

    flag: str
    value: str
    line: int
    raw: str
    origin: str


@dataclass(frozen=True)
class ConfigEntry:
    value: Any
    line: int


@dataclass
class TrainingConfig:
    """A YAML/JSON training configuration (HF TrainingArguments JSON, axolotl, DeepSpeed):
    flattened dotted keys -> value and line."""

    entries: dict[str, ConfigEntry]
    line: int
    flavour: str  # hf | axolotl | deepspeed
    extra: dict[str, Any] = field(default_factory=dict)
