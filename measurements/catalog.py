"""The catalogs: GPUs, model architectures, regions, named factors and GPU rental prices.

Each catalog is a CSV under catalog/ whose rows carry their source. Lookups accept the names
people type (aliases, case, spaces, dashes) and fail with the accepted values and a "did you
mean" when nothing matches.
"""

from __future__ import annotations

import csv
import difflib
import re
from functools import lru_cache
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from measurements.schema import (
    GPU,
    Factor,
    FinetuneParam,
    GPUPrice,
    GPUPurchasePrice,
    ModelArch,
    PerfParam,
    Region,
    ServingParam,
    WeightFormat,
)
from measurements.store import DataError, _describe

CATALOG_DIR = Path(__file__).parent / "catalog"
T = TypeVar("T", bound=BaseModel)


class UnknownName(ValueError):
    """A name that no catalog entry matches; carries the accepted values and the nearest ones."""

    def __init__(self, what: str, given: str, accepted: list[str], nearest: list[str]):
        self.what, self.given, self.accepted, self.nearest = what, given, accepted, nearest
        hint = f" Did you mean {', '.join(repr(n) for n in nearest)}?" if nearest else ""
        super().__init__(f"Unknown {what} '{given}'.{hint} Accepted: {', '.join(accepted)}.")


def _read(name: str, model: type[T], *, fitted: bool = False) -> tuple[T, ...]:
    """The entries of one catalog file; a file of fitted parameters (`fitted`) may be absent until
    its calibration has run, and then reads as no entries."""
    path = CATALOG_DIR / name
    if fitted and not path.exists():
        return ()
    out: list[T] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for rec in reader:
            values: dict[str, object] = {}
            for k, v in rec.items():
                if k is None:
                    raise DataError(f"{name}:{reader.line_num}: more cells than header columns")
                v = (v or "").strip()
                if not v:
                    continue
                if k == "aliases":
                    values[k] = tuple(a.strip().lower() for a in v.split(";") if a.strip())
                else:
                    values[k] = v
            try:
                out.append(model.model_validate(values))
            except ValidationError as err:
                raise DataError(f"{name}:{reader.line_num}: {_describe(err)}") from None
    return tuple(out)


@lru_cache(maxsize=1)
def gpus() -> tuple[GPU, ...]:
    return _read("gpus.csv", GPU)


@lru_cache(maxsize=1)
def models() -> tuple[ModelArch, ...]:
    return _read("models.csv", ModelArch)


@lru_cache(maxsize=1)
def regions() -> tuple[Region, ...]:
    return _read("regions.csv", Region)


@lru_cache(maxsize=1)
def factors() -> dict[str, Factor]:
    return {f.key: f for f in _read("factors.csv", Factor)}


@lru_cache(maxsize=1)
def gpu_prices() -> tuple[GPUPrice, ...]:
    return _read("gpu_prices.csv", GPUPrice)


@lru_cache(maxsize=1)
def gpu_purchase_prices() -> tuple[GPUPurchasePrice, ...]:
    return _read("gpu_purchase_prices.csv", GPUPurchasePrice)


@lru_cache(maxsize=1)
def formats() -> dict[str, WeightFormat]:
    return {f.key: f for f in _read("formats.csv", WeightFormat)}


@lru_cache(maxsize=1)
def serving_params() -> tuple[ServingParam, ...]:
    """The serving model's calibrated parameters (written by `python -m advisor.estimate.serving`)."""
    return _read("serving_params.csv", ServingParam, fitted=True)


@lru_cache(maxsize=1)
def perf_params() -> tuple[PerfParam, ...]:
    """The performance model's calibrated parameters (written by `python -m advisor.estimate.calibrate`)."""
    return _read("perf_params.csv", PerfParam, fitted=True)


@lru_cache(maxsize=1)
def finetune_params() -> tuple[FinetuneParam, ...]:
    """The training performance model's fitted parameters (written by `python -m advisor.finetune_time`)."""
    return _read("finetune_params.csv", FinetuneParam, fitted=True)


def factor(key: str) -> float:
    """The value of a named factor; a missing key is a bug in the caller, said plainly."""
    try:
        return factors()[key].value
    except KeyError:
        raise KeyError(f"factor '{key}' is not in measurements/catalog/factors.csv") from None


def norm(text: str) -> str:
    """Canonical form for name matching: lowercase, no spaces, dashes, underscores or 'nvidia'."""
    t = text.strip().lower().replace("nvidia", "").replace("geforce", "")
    return re.sub(r"[\s_\-/]+", "", t)


class _Named(Protocol):
    """A catalog entry that resolves by name: its key, its display name and aliases."""

    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...


_Entry = TypeVar("_Entry", bound=_Named)


def _index(entries: tuple[_Entry, ...], extra: str | None = None) -> dict[str, _Entry]:
    idx: dict[str, _Entry] = {}
    for e in entries:
        names = [e.key, e.name, *e.aliases]
        if extra:
            names.append(getattr(e, extra))
        for n in names:
            idx.setdefault(norm(n), e)
    return idx


@lru_cache(maxsize=1)
def _gpu_index() -> dict[str, GPU]:
    return _index(gpus())


@lru_cache(maxsize=1)
def _model_index() -> dict[str, ModelArch]:
    idx = _index(models(), extra="hub_id")
    for m in models():  # the repo name alone ("Qwen2.5-7B") also resolves
        idx.setdefault(norm(m.hub_id.split("/", 1)[1]), m)
    return idx


@lru_cache(maxsize=1)
def _region_index() -> dict[str, Region]:
    return _index(regions())


def _resolve(what: str, text: str, idx: dict[str, _Entry], keys: list[str]) -> _Entry:
    if not text or not text.strip():
        raise UnknownName(what, text, keys, [])
    hit = idx.get(norm(text))
    if hit is not None:
        return hit
    near = difflib.get_close_matches(norm(text), list(idx), n=3, cutoff=0.6)
    nearest: list[str] = []
    for n in near:
        k = idx[n].key
        if k not in nearest:
            nearest.append(k)
    raise UnknownName(what, text, keys, nearest)


def resolve_gpu(text: str) -> GPU:
    return _resolve("GPU", text, _gpu_index(), [g.key for g in gpus()])


def resolve_model(text: str) -> ModelArch:
    return _resolve("model", text, _model_index(), [m.key for m in models()])


def resolve_region(text: str) -> Region:
    return _resolve("region", text, _region_index(), [r.key for r in regions()])


def gpu(key: str) -> GPU:
    return resolve_gpu(key)


def model_by_hub_id(hub_id: str) -> ModelArch | None:
    return _model_index().get(norm(hub_id))
