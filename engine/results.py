"""Sweep results on disk: one JSON line per configuration, written so a killed sweep resumes.

A result line is appended (one write, flushed and fsynced) only when its configuration is
finished; on restart the configurations whose key already has an ``ok`` or ``oom`` line are
skipped, and those that failed with an error are tried again.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.protocol import ProtocolSettings
from engine.provenance import Provenance
from measurements.jsonl import parse_jsonl
from measurements.store import append_lines

if TYPE_CHECKING:
    from engine.power import Window

DONE_STATUSES = ("ok", "oom")


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    append_lines(Path(path), (json.dumps(record, default=str) + "\n").encode("utf-8"))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every parseable line; a torn last line (killed writer) is skipped."""
    path = Path(path)
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    return parse_jsonl(path.read_text(encoding="utf-8", errors="replace"), str(path))


def done_keys(path: str | Path) -> set[str]:
    return {r["key"] for r in read_jsonl(path) if r.get("status") in DONE_STATUSES and "key" in r}


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._+-]+", "-", text.strip().lower()).strip("-")
    return s or "x"


def local_row_id(host: str, when: dt.datetime, body: str) -> str:
    """Local row ids never collide with shipped ones or with each other: host tag + UTC time."""
    return f"local-{host}-{when.strftime('%Y%m%dT%H%M%S')}-{slug(body)}"


def gb(n_bytes: float | None) -> float | None:
    """Bytes -> GB (1e9 bytes, the unit of every *_gb field the engine writes)."""
    return None if n_bytes is None else n_bytes / 1e9


class SweepBase:
    """What the inference and fine-tuning sweeps share: their settings, the resumable result file,
    the progress events and the deadline after which no new configuration starts."""

    result_cls: Any = None  # the pydantic result model of the sweep

    def __init__(self, configs: Any, settings: Any, device: str, out_path: str | Path,
                 trace_dir: str | Path | None = None, monitor: Any = None, loader: Any = None,
                 provenance: Any = None, on_event: Any = None, deadline: float | None = None):
        from engine.power import EnergyMonitor

        self.configs = list(configs)
        self.settings, self.device = settings, device
        self.out_path = Path(out_path)
        self.trace_dir = Path(trace_dir) if trace_dir else None
        self.monitor = monitor if monitor is not None else EnergyMonitor.time_only()
        if loader is None:
            from engine.models import load_model

            loader = load_model
        self.loader = loader
        self.provenance = provenance
        self.on_event = on_event
        # Monotonic time after which no new configuration starts (it is left for a resumed run).
        self.deadline = deadline

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _emit(self, kind: str, **payload: Any) -> None:
        if self.on_event:
            self.on_event(kind, payload)

    def _save(self, res: Any) -> Any:
        append_jsonl(self.out_path, res.model_dump(mode="json"))
        self._emit("config_done", result=res)
        return res

    def _load(self, cfg: Any) -> Any:
        raise NotImplementedError

    def _one(self, lm: Any, cfg: Any) -> Any:
        raise NotImplementedError

    def _interleaved(self, lm: Any, group: list[Any]) -> list[Any]:
        raise NotImplementedError(f"{type(self).__name__} does not measure interleaved configurations")

    def run(self) -> list[Any]:
        """Skip finished configurations, load each model once for its group of configurations, record
        a failed load (OOM or error) for every configuration of the group, and stop starting new
        ones past the deadline."""
        from engine.inference import is_oom
        from engine.models import free_memory
        from engine.protocol import pause

        done = done_keys(self.out_path)
        for c in self.configs:
            if c.key() in done:
                self._emit("skip", key=c.key())
        todo = [c for c in self.configs if c.key() not in done]
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for c in todo:
            groups.setdefault(c.load_key(), []).append(c)
        results: list[Any] = []
        index = 0
        for group in groups.values():
            if self._past_deadline():
                self._emit("deadline", left=sum(len(g) for g in groups.values()))
                break
            self._emit("load", config=group[0])
            try:
                lm = self._load(group[0])
            except Exception as err:
                status = "oom" if is_oom(err) else "error"
                for c in group:
                    index += 1
                    results.append(self._save(self._base(c, status, error=f"load: {type(err).__name__}: {err}")))
                free_memory()
                continue
            pause(self.settings.pause_s)
            if getattr(self, "interleave", False) and len(group) > 1:
                # Compared configurations of one loaded model, measured in rounds (ABAB).
                index += len(group)
                self._emit("config_start", config=group[0], index=index, total=len(todo))
                results += [self._save(r) for r in self._interleaved(lm, group)]
                group = []
            for c in group:
                if self._past_deadline():
                    break
                index += 1
                self._emit("config_start", config=c, index=index, total=len(todo))
                results.append(self._save(self._one(lm, c)))
            del lm
            free_memory()
        return results

    def _base(self, cfg: Any, status: str, **kw: Any) -> Any:
        return self.result_cls(key=cfg.key(), status=status, config=cfg, device=self.device,
                               started_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
                               settings=self.settings, provenance=self.provenance, **kw)


class WindowEnergy(BaseModel):
    """The energy of one measured window (a generate call, a training step, a load test) as every
    result line records it: the figure used, how it was read, and both readings (the NVML counter
    and the 10 Hz sampler's integral), kept so their gap can be reported."""

    energy_j: float | None = None
    counter_j: float | None = None
    sampler_j: float | None = None
    method: str = "unavailable"


def energy_fields(w: Window) -> dict[str, Any]:
    """A closed window's readings as `WindowEnergy`'s fields."""
    return dict(energy_j=w.energy_j, counter_j=w.counter_total_j, sampler_j=w.sampler_total_j, method=w.method)


class ResultBase(BaseModel):
    """The fields every configuration's result line has, inference or fine-tuning."""

    model_config = ConfigDict(extra="forbid")

    key: str
    status: Literal["ok", "oom", "error"]
    error: str | None = None
    device: str
    model_id: str | None = None
    arch_key: str | None = None
    params_b: float | None = None
    weights: str | None = None
    load_s: float | None = None
    started_at: dt.datetime
    settings: ProtocolSettings
    provenance: Provenance | None = None
    attempts: int = 0
    gate_failed: bool = False
    gate_notes: list[str] = []
    power_w: float | None = None
    power_std: float | None = None
    idle_power_w: float | None = None
    energy_std: float | None = None
    energy_ci95: float | None = None
    energy_method: str | None = None
    counter_vs_sampler: float | None = Field(default=None, description="mean |sampler - counter| / counter")
    peak_mem_alloc_gb: float | None = None
    peak_mem_reserved_gb: float | None = None
    peak_mem_nvml_gb: float | None = None
    trace_file: str | None = None
    notes: list[str] = []
