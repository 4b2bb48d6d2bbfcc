"""Run settings: rule selection, the failure threshold, the GPU, excludes and policy overrides,
from the command line and from `[tool.ecolobster]` in pyproject.toml (the command line wins)."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from advisor.answer import Mood
from advisor.audit.policy import Policy
from measurements.validation import field_errors

FAIL_ON = ("yellow", "orange", "red")
FORMATS = ("rich", "markdown", "json", "sarif")

# [tool.ecolobster] keys -> (settings field, policy field)
CONFIG_KEYS: dict[str, tuple[str, str | None]] = {
    "select": ("select", None), "ignore": ("ignore", None), "fail-on": ("fail_on", None), "gpu": ("gpu", None),
    "exclude": ("exclude", None), "respect-gitignore": ("respect_gitignore", None),
    "max-file-mb": ("", "max_file_mb"), "max-notebook-mb": ("", "max_notebook_mb"),
    "time-budget-s": ("", "time_budget_s"),
    "max-checkpoints-per-run": ("", "max_checkpoints_per_run"),
    "min-save-interval-steps": ("", "min_save_interval_steps"), "short-run-steps": ("", "short_run_steps"),
    "lora16-weight-share": ("", "lora16_weight_share"),
}


class SettingsError(ValueError):
    """A setting the user gave is not valid; the message says what is accepted."""


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    select: list[str] | None = None
    ignore: list[str] = Field(default_factory=list)
    fail_on: Mood = "yellow"
    gpu: str | None = None  # a GPU key (resolved)
    exclude: list[str] = Field(default_factory=list)
    respect_gitignore: bool = True
    policy: Policy = Field(default_factory=Policy)
    config_file: str | None = None


def _codes(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{what} must be a list of rule codes such as [\"ECO101\", \"ECO2\"]")
    return [v.strip().upper() for v in value]


def check_codes(codes: list[str], what: str) -> list[str]:
    """Every code must name a rule or be a prefix of some (ECO1 = every inference rule)."""
    from advisor.audit.registry import all_rules

    known = list(all_rules())
    for c in codes:
        if not any(k.startswith(c) for k in known):
            near = difflib.get_close_matches(c, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise SettingsError(f"unknown rule code '{c}' in {what}.{hint} Accepted: {', '.join(known)} "
                                "(or a prefix such as ECO1).")
    return codes


def resolve_gpu(text: str) -> str:
    """A GPU name as typed -> its catalog key; falls back to the GPUs the dataset has measured when
    the catalog is not available."""
    from measurements import catalog

    try:
        return catalog.resolve_gpu(text).key
    except catalog.UnknownName as err:
        raise SettingsError(str(err)) from None
    except (FileNotFoundError, ValueError):
        from measurements.store import load_rows

        keys = sorted({r.gpu for r in load_rows()})
        n = catalog.norm(text)
        for k in keys:
            if catalog.norm(k) == n:
                return k
        near = difflib.get_close_matches(n, keys, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise SettingsError(f"Unknown GPU '{text}'.{hint} Accepted: {', '.join(keys)}.") from None


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a [tool.ecolobster] table."""
    d = start if start.is_dir() else start.parent
    d = d.resolve()
    for cand in [d, *d.parents]:
        p = cand / "pyproject.toml"
        if p.is_file():
            try:
                data = tomllib.loads(p.read_text(encoding="utf-8", errors="replace"))
            except (tomllib.TOMLDecodeError, OSError):
                continue
            if isinstance(data.get("tool"), dict) and "ecolobster" in data["tool"]:
                return p
        if (cand / ".git").exists():
            break
    return None


def from_table(table: dict[str, Any], source: str) -> dict[str, Any]:
    """[tool.ecolobster] -> keyword arguments for AuditSettings (validated, with clear errors)."""
    out: dict[str, Any] = {}
    policy: dict[str, Any] = {}
    for key, value in table.items():
        if key not in CONFIG_KEYS:
            near = difflib.get_close_matches(key, list(CONFIG_KEYS), n=2, cutoff=0.5)
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise SettingsError(f"{source}: unknown key '{key}' in [tool.ecolobster].{hint} "
                                f"Accepted: {', '.join(CONFIG_KEYS)}.")
        field, pfield = CONFIG_KEYS[key]
        if pfield:
            policy[pfield] = value
        elif field in ("select", "ignore"):
            out[field] = check_codes(_codes(value, f"{source} {key}"), f"{source} {key}")
        elif field == "fail_on":
            if value not in FAIL_ON:
                raise SettingsError(f"{source}: fail-on = {value!r} is not accepted; use one of {', '.join(FAIL_ON)}")
            out[field] = value
        elif field == "gpu":
            out[field] = resolve_gpu(str(value))
        elif field == "exclude":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SettingsError(f"{source}: exclude must be a list of .gitignore-style patterns")
            out[field] = value
        else:
            out[field] = bool(value)
    if policy:
        try:
            out["policy"] = Policy(**policy)
        except ValidationError as err:
            first = field_errors(err)[0]
            raise SettingsError(f"{source}: [tool.ecolobster] {first.loc[0]}: {first.msg}") from None
    return out


def load_settings(paths: list[str], *, select: list[str] | None = None, ignore: list[str] | None = None,
                  fail_on: str | None = None, gpu: str | None = None, exclude: list[str] | None = None,
                  config: Path | None = None) -> AuditSettings:
    """Settings for a run: pyproject defaults first, then the command line."""
    base: dict[str, Any] = {}
    cfg = config
    if cfg is None:
        starts = [Path(p) for p in paths if p != "-"] or [Path.cwd()]
        cfg = find_pyproject(starts[0] if starts[0].exists() else Path.cwd())
    if cfg is not None:
        try:
            data = tomllib.loads(Path(cfg).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise SettingsError(f"cannot read settings from {cfg}: {err}") from None
        table = (data.get("tool") or {}).get("ecolobster") or {}
        if not isinstance(table, dict):
            raise SettingsError(f"{cfg}: [tool.ecolobster] must be a table")
        base = from_table(table, str(cfg))
        base["config_file"] = str(cfg)
    if select:
        base["select"] = check_codes(_codes(select, "--select"), "--select")
    if ignore:
        base["ignore"] = check_codes(_codes(ignore, "--ignore"), "--ignore")
    if fail_on:
        if fail_on not in FAIL_ON:
            raise SettingsError(f"--fail-on {fail_on!r} is not accepted; use one of {', '.join(FAIL_ON)}")
        base["fail_on"] = fail_on
    if gpu:
        base["gpu"] = resolve_gpu(gpu)
    if exclude:
        base["exclude"] = list(base.get("exclude", [])) + list(exclude)
    return AuditSettings(**base)
