"""Estimating a configuration from the measurements, with the provenance of every figure.

For a configuration (GPU, model, precision, batch size, lengths) `estimate()` returns throughput,
J per 1,000 generated tokens (gross, and net of idle power), power and memory, with a tier:

- measured: rows of exactly this configuration (the user's own local rows, measured by
  `ecolobster bench`, take precedence over shipped rows).
- interpolated: the same GPU and precision, other batch sizes or model sizes. Between measured
  batch sizes of the same model: log-log interpolation. Beyond them: a power law in batch size
  J = c * BS^-alpha fitted by least squares on the rows of this GPU and precision (model as a
  fixed effect; the nearest measured batch sizes weigh most). Other model sizes: log-log
  interpolation in parameter count between the nearest measured sizes.
- extrapolated: outside the measured sizes, another GPU (through the per-GPU performance model,
  advisor.estimate.physics: the reference GPU's figure times the model's ratio of the two GPUs,
  each from its own bandwidth, compute and power limit), or another precision (the precision's
  ratio to a baseline on other GPUs applied to this GPU's baseline). Always low confidence.

Whatever the tier, an estimate never leaves what physics allows (throughput within the memory and
compute bound, power within [idle, limit] x GPU count), and memory fit (weights in the format with
its quantisation state, KV cache, activations, runtime reserve against VRAM x GPU count) decides
whether a configuration may be recommended. Rows of one framework never stand in for another.

Simulated rows are never used. Pure Python on purpose: the advisor starts fast and needs no numpy.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from advisor.answer import Confidence, Provenance, Tier
from advisor.estimate import physics
from measurements.schema import Fp8Mode, MeasurementRow
from measurements.vocab import format_key, fp8_mode_of

if TYPE_CHECKING:
    from measurements.schema import ModelArch

BF16_AS = "fp16"  # BF16 has FP16's bytes and tensor rates on every GPU in the catalog

_CONF_ORDER = {"high": 0, "medium": 1, "low": 2}
_TIER_ORDER = {"measured": 0, "interpolated": 1, "extrapolated": 2}


class Config(BaseModel):
    """One inference configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: str
    model: str | None = Field(default=None, description="catalog key, or a free name when unknown")
    params_b: float = Field(gt=0)
    precision: str
    fp8_mode: Fp8Mode | None = Field(default=None, description=(
        "fp8: which implementation ('dynamic' or 'weight_only'); None: the GPU's default (physics.default_fp8_mode)"))
    batch_size: int = Field(default=1, ge=1)
    prompt_tokens: int | None = None
    gen_tokens: int | None = None
    gpu_count: int = Field(default=1, ge=1, description="GPUs of one replica (tensor parallel)")
    framework: str = Field(default=physics.DEFAULT_FRAMEWORK, description="measurements.schema.FRAMEWORKS")
    data_parallel: int = Field(default=1, ge=1, description="attention replicas of a serving engine (DP attention)")
    workload: str | None = Field(default=None, description="serving task (chat, reasoning, code-completion); "
                                                           "None: the model's measured task, else chat")

    @property
    def fp8(self) -> str | None:
        """The FP8 implementation this configuration runs (stated, else the GPU's default); None unless fp8."""
        if self.precision != "fp8":
            return None
        return self.fp8_mode or fp8_default(self.gpu)[0]

    @property
    def fmt_key(self) -> str:
        """The performance model's format (formats.csv): the precision, FP8 in its implementation."""
        return format_key(self.precision, self.fp8)

    def label(self) -> str:
        gpus = f"{self.gpu_count}x {self.gpu}" if self.gpu_count > 1 else self.gpu
        fw = "" if self.framework == physics.DEFAULT_FRAMEWORK else f" / {self.framework}"
        prec = f"fp8 {self.fp8.replace('_', '-')}" if self.fp8 and self.framework == physics.DEFAULT_FRAMEWORK \
            else self.precision
        return f"{gpus} / {self.model or f'{self.params_b:g}B'} / {prec} / bs{self.batch_size}{fw}"


class Estimate(BaseModel):
    """The figures of one configuration, with where they come from."""

    model_config = ConfigDict(extra="forbid")

    config: Config
    j_per_1k_tok: float = Field(gt=0, description="gross J per 1,000 generated tokens")
    j_per_1k_tok_net: float | None = Field(default=None, description="net of the GPU's idle power")
    throughput_tok_s: float | None = None
    power_w: float | None = None
    mem_gb: float | None = None
    energy_spread: float | None = Field(default=None, description="std or CI half-width of J/1k tok when measured")
    throughput_std: float | None = None
    tier: Tier
    method: str
    confidence: Confidence
    row_ids: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    bench_command: str | None = None
    local: bool = Field(default=False, description="from the user's own measurements")
    n_runs: int | None = None
    software: str | None = None
    # physics: the bound and the memory fit
    bound_tok_s: float | None = Field(default=None, description="throughput physics allows (memory/compute bound)")
    bound: str | None = Field(default=None, description="which bound: memory bandwidth or compute")
    power_limit_w: float | None = Field(default=None, description="power limit x GPU count")
    mem_need_gb: float | None = Field(default=None, description="estimated memory per GPU (weights, KV, activations, reserve)")
    mem_breakdown: str | None = None
    fits: bool = Field(default=True, description="fits in VRAM x gpu_count; never ranked or recommended if not")
    min_gpu_count: int | None = Field(default=None, description="smallest tensor-parallel count that fits (1, 2, 4, 8)")
    formats_that_fit: list[str] = Field(default_factory=list, description="formats that fit at this GPU count")
    # serving engines (advisor.estimate.serve_estimate): the latency a user sees, the task and its output length
    itl_ms: float | None = Field(default=None, description="inter-token latency (one decode step), ms")
    itl_percentile: float | None = Field(default=None, description="percentile of itl_ms where measured (None: p50 or modelled)")
    workload: str | None = Field(default=None, description="serving task the figures are for")
    output_tokens: float | None = Field(default=None, description="output tokens per request the figures assume")

    @property
    def tokens_per_j(self) -> float:
        return 1000.0 / self.j_per_1k_tok

    def provenance(self) -> Provenance:
        return Provenance(
            subject=self.config.label(),
            tier=self.tier,
            method=self.method,
            confidence=self.confidence,
            row_ids=list(self.row_ids),
            note="; ".join(self.notes),
        )


# ---------------------------------------------------------------------------------------------
# the evidence


@dataclass(frozen=True)
class Point:
    id: str
    gpu: str
    model: str
    params_b: float
    precision: str  # the formats.csv key: the row's precision, FP8 in its implementation (fp8 / fp8_weight_only)
    batch_size: int
    j: float
    tput: float | None
    power: float | None
    mem: float | None
    spread: float | None
    tput_std: float | None
    n_runs: int | None
    local: bool
    prompt_tokens: int | None
    gen_tokens: int | None
    software: str
    framework: str = "hf-eager"
    gpu_count: int = 1
    host: str = ""  # the measuring setup: GPU and software stack (or the source where none is published)


def _model_key(row: MeasurementRow) -> tuple[str, float]:
    """The catalog key and size of a row's model. The catalog's exact parameter count wins over
    the row's rounded one, so that sizes line up across sources."""
    from measurements import catalog

    m = catalog.model_by_hub_id(row.model_id)
    return (m.key, m.params_b) if m is not None else (row.model_id.lower(), row.params_b)


def _software(r: MeasurementRow, quant_libs: bool = True) -> str:
    parts = []
    for label, v in (("driver", r.driver_version), ("CUDA", r.cuda_version), ("torch", r.torch_version),
                     ("transformers", r.transformers_version),
                     ("bitsandbytes", r.bitsandbytes_version if quant_libs else None),
                     ("torchao", r.torchao_version if quant_libs else None)):
        if v:
            parts.append(f"{label} {v}")
    return ", ".join(parts)


def _host(r: MeasurementRow) -> str:
    """Rows measured on one machine with one software stack share its launch speed (HF eager at small
    batches waits on the host): the GPU with the published stack, or with the repository or document
    the rows come from where no stack is published."""
    # the quantisation libraries serve their own formats alone (torchao FP8, bitsandbytes INT8/NF4):
    # they do not set the host's speed, and a session run without one installed is the same host
    return f"{r.gpu} | {_software(r, quant_libs=False) or r.source.split('@')[0].split('#')[0]}"


def points_from_rows(rows: Iterable[MeasurementRow], local_ids: set[str] | frozenset[str] = frozenset(),
                     framework: str | None = None) -> list[Point]:
    """Inference rows that can serve as evidence: measured (never simulated nor superseded), with energy, of the
    plain form of their precision (NF4 with double quantisation is its own variant); of one
    framework when `framework` is given (Dataset keeps each framework apart anyway). An FP8 row is
    evidence for its own implementation only (dynamic and weight-only cost very differently); one
    that records none is left out rather than guessed."""
    out = []
    for r in rows:
        if r.kind != "measured" or not r.is_evidence or r.task != "inference" or r.energy_j_per_1k_tok is None:
            continue
        if (framework is not None and r.framework != framework) or r.double_quant:
            continue
        fp8 = r.fp8_implementation
        if r.precision == "fp8" and fp8 is None:
            continue
        key, params = _model_key(r)
        out.append(Point(
            id=r.id, gpu=r.gpu, model=key, params_b=params, precision=format_key(r.precision, fp8),
            batch_size=r.batch_size, j=r.energy_j_per_1k_tok, tput=r.throughput_tok_s, power=r.power_w,
            mem=r.gpu_mem_gb, spread=r.energy_ci95 or r.energy_std, tput_std=r.throughput_std, n_runs=r.n_runs,
            local=r.id in local_ids, prompt_tokens=r.prompt_tokens, gen_tokens=r.gen_tokens, software=_software(r),
            # rows before the framework field were all HF transformers generate() in eager mode
            framework=getattr(r, "framework", None) or "hf-eager", gpu_count=r.gpu_count, host=_host(r),
        ))
    return out


# ---------------------------------------------------------------------------------------------
# small fits (pure Python)


def _geo(values: Sequence[float]) -> float:
    if len(values) == 1 or len(set(values)) == 1:  # exact: a measured value comes back unchanged
        return values[0]
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _loglog(points: Sequence[tuple[float, float]], x: float, slope: float | None) -> tuple[float, str] | None:
    """y at x from (x, y) points by log-log interpolation; beyond them, the given slope (or the
    points' own least-squares slope) from the nearest point. Returns (y, 'exact'|'between'|'beyond')."""
    if not points:
        return None
    by_x: dict[float, list[float]] = defaultdict(list)
    for px, py in points:
        by_x[round(px, 6)].append(py)
    xs = sorted(by_x)
    ys = [_geo(by_x[k]) for k in xs]
    lx = math.log(x)
    for k, y in zip(xs, ys, strict=True):
        if math.isclose(k, x, rel_tol=1e-6):
            return y, "exact"
    if xs[0] < x < xs[-1]:
        for i in range(len(xs) - 1):
            if xs[i] < x < xs[i + 1]:
                a, b = math.log(xs[i]), math.log(xs[i + 1])
                w = (lx - a) / (b - a)
                return math.exp(math.log(ys[i]) * (1 - w) + math.log(ys[i + 1]) * w), "between"
    if slope is None:
        if len(xs) < 2:
            return None
        slope = _ls_slope([math.log(v) for v in xs], [math.log(v) for v in ys])
    i = 0 if x < xs[0] else len(xs) - 1
    return math.exp(math.log(ys[i]) + slope * (lx - math.log(xs[i]))), "beyond"


def _ls_slope(xs: Sequence[float], ys: Sequence[float], weights: Sequence[float] | None = None) -> float:
    w = weights or [1.0] * len(xs)
    sw = sum(w)
    mx = sum(wi * xi for wi, xi in zip(w, xs, strict=True)) / sw
    my = sum(wi * yi for wi, yi in zip(w, ys, strict=True)) / sw
    sxx = sum(wi * (xi - mx) ** 2 for wi, xi in zip(w, xs, strict=True))
    if sxx == 0:
        return 0.0
    return sum(wi * (xi - mx) * (yi - my) for wi, xi, yi in zip(w, xs, ys, strict=True)) / sxx


@dataclass
class BatchLaw:
    """J per 1k tok (or throughput) = c * BS^slope, fitted by least squares in log-log space with
    each GPU x model x precision as a fixed effect, weighting the batch sizes nearest the target most."""

    slope: float
    n_rows: int
    batch_sizes: tuple[int, ...]
    where: str

    def describe(self, metric: str = "J/1k tok") -> str:
        bs = ",".join(str(b) for b in self.batch_sizes)
        return (f"batch power law {metric} ~ BS^{self.slope:+.2f}, least squares on {self.n_rows} rows of {self.where} "
                f"(BS {bs})")


def fit_batch_law(pts: Sequence[Point], metric: str, target_bs: float | None = None, where: str = "",
                  local_span: float | None = None) -> BatchLaw | None:
    groups: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for p in pts:
        v = p.j if metric == "j" else p.tput
        if v:
            groups[(p.gpu, p.model, p.precision)].append((math.log(p.batch_size), math.log(v)))
    xs, ys, ws = [], [], []
    n = 0
    bss: set[int] = set()
    for obs in groups.values():
        if len({x for x, _ in obs}) < 2:
            continue
        mx = sum(x for x, _ in obs) / len(obs)
        my = sum(y for _, y in obs) / len(obs)
        for x, y in obs:
            w = 1.0
            if target_bs is not None and local_span:
                # points far from the target in log(BS) count less: the law flattens at large batches
                w = math.exp(-(((x - math.log(target_bs)) / local_span) ** 2))
            xs.append(x - mx)
            ys.append(y - my)
            ws.append(max(w, 1e-6))
            n += 1
            bss.add(round(math.exp(x)))
    if n < 2 or sum(x * x for x in xs) == 0:
        return None
    return BatchLaw(slope=_ls_slope(xs, ys, ws), n_rows=n, batch_sizes=tuple(sorted(bss)), where=where)


# ---------------------------------------------------------------------------------------------
# the estimator


@dataclass
class _Cand:
    value: float
    tier: str
    confidence: str
    method: str
    row_ids: list[str]
    notes: list[str] = field(default_factory=list)

    def rank(self) -> tuple[int, int]:
        return _TIER_ORDER[self.tier], _CONF_ORDER[self.confidence]


def _worse(a: str, b: str, order: dict[str, int]) -> str:
    return a if order[a] >= order[b] else b


def weaker_tier(*tiers: str) -> str:
    """The least direct of the tiers (measured < interpolated < extrapolated): a figure that compares
    two estimates is only as direct as the less direct one."""
    return max(tiers, key=_TIER_ORDER.__getitem__)


# Tuning chosen with benchmarks/estimator_accuracy.py (leave-one-out over the measured rows).
LOCAL_SPAN = 1.0   # width, in ln(BS), of the weights of the local batch law (None: one global law)


class Dataset:
    """Measured points and the fits over them. `estimate()` uses the shipped + local data; the
    accuracy benchmark builds one per left-out row."""

    def __init__(self, points: Sequence[Point], local_span: float | None = None,
                 params: physics.Params | None = None, framework: str = physics.DEFAULT_FRAMEWORK):
        # one framework and single-GPU rows only: a row of one regime never stands in for another
        self.all_points = list(points)
        self.framework = framework
        self.points = [p for p in self.all_points if p.framework == framework and p.gpu_count == 1]
        self.local_span = LOCAL_SPAN if local_span is None else (local_span or None)
        self.params = physics.shipped_params() if params is None else params
        self._subs: dict[str, Dataset] = {}
        self.rows: list[MeasurementRow] = []
        self.by_gp: dict[tuple[str, str], list[Point]] = defaultdict(list)
        for p in self.points:
            self.by_gp[(p.gpu, p.precision)].append(p)
        self._cache: dict[tuple[Any, ...], Any] = {}  # (kind, ...) -> a law, a candidate or a slope

    def for_framework(self, framework: str) -> Dataset:
        """The evidence of one framework (the same calibration)."""
        if framework == self.framework:
            return self
        if framework not in self._subs:
            self._subs[framework] = Dataset(self.all_points, self.local_span, self.params, framework)
            self._subs[framework].rows = self.rows
        return self._subs[framework]

    # -- batch ---------------------------------------------------------------------------------
    def _batch_law(self, gpu: str, prec: str, metric: str, target_bs: float) -> tuple[BatchLaw | None, str]:
        """The law for (gpu, precision); else borrowed from the same GPU's other precisions, then
        the same precision on other GPUs, then all rows. Returns (law, scope)."""
        key = ("law", gpu, prec, metric, round(target_bs, 3))
        if key not in self._cache:
            self._cache[key] = self._batch_law_uncached(gpu, prec, metric, target_bs)
        law: tuple[BatchLaw | None, str] = self._cache[key]
        return law

    def _batch_law_uncached(self, gpu: str, prec: str, metric: str, target_bs: float) -> tuple[BatchLaw | None, str]:
        own = fit_batch_law(self.by_gp.get((gpu, prec), []), metric, target_bs, f"{gpu}/{prec}", self.local_span)
        same_gpu = [p for p in self.points if p.gpu == gpu]
        pooled = fit_batch_law(same_gpu, metric, target_bs, f"{gpu} (all precisions)", self.local_span)
        if own and (min(own.batch_sizes) <= target_bs <= max(own.batch_sizes) or pooled is None
                    or not min(pooled.batch_sizes) <= target_bs <= max(pooled.batch_sizes)):
            return own, "own"
        if pooled:
            # beyond this precision's own sweep, the GPU's longer sweeps (other precisions) know
            # where the gains flatten out
            return pooled, "gpu"
        # Borrowed from other GPUs: one law pooled over every precision, so that the precisions'
        # order measured on this GPU is kept rather than reshuffled by another GPU's sweeps.
        law = fit_batch_law(self.points, metric, target_bs, "all GPUs and precisions", self.local_span)
        return (law, "other_gpu") if law else (None, "none")

    def _same_gp(self, gpu: str, model: str | None, params: float, prec: str, bs: int, metric: str) -> _Cand | None:
        """Measured or interpolated on this GPU and precision."""
        key = ("gp", gpu, model, round(params, 4), prec, bs, metric)
        if key in self._cache:
            hit: _Cand | None = self._cache[key]
            return hit
        pts = [p for p in self.by_gp.get((gpu, prec), []) if (p.j if metric == "j" else p.tput)]
        cand = self._same_gp_uncached(pts, gpu, model, params, prec, bs, metric) if pts else None
        self._cache[key] = cand
        return cand

    def _same_gp_uncached(self, pts: list[Point], gpu: str, model: str | None, params: float, prec: str, bs: int,
                          metric: str) -> _Cand | None:
        def val(p: Point) -> float:
            return p.j if metric == "j" else p.tput  # type: ignore[return-value]

        mine = [p for p in pts if model is not None and p.model == model]
        # exact: local rows first
        exact = [p for p in mine if p.batch_size == bs]
        if exact:
            local = [p for p in exact if p.local]
            use = local or exact
            conf = "high" if all((p.n_runs or 0) >= 5 for p in use) else "medium"
            return _Cand(_geo([val(p) for p in use]), "measured", conf,
                         "measured on your GPU" if local else "measured", [p.id for p in use])
        if mine:
            c = self._batch_from(mine, gpu, prec, bs, metric, val)
            if c:
                return c
        # other model sizes on this GPU and precision: interpolate in size at each measured batch size
        by_bs: dict[int, list[Point]] = defaultdict(list)
        for p in pts:
            by_bs[p.batch_size].append(p)
        best: _Cand | None = None
        for b in sorted(by_bs, key=lambda b: (abs(math.log(b / bs)), -b)):
            group = by_bs[b]
            r = _loglog([(p.params_b, val(p)) for p in group], params, self._size_slope(metric, prec))
            if r is None:
                continue
            y, how = r
            rows = sorted(group, key=lambda p: abs(math.log(p.params_b / params)))
            ids = [p.id for p in rows[:2]] if how != "exact" else [p.id for p in group if math.isclose(p.params_b, params, rel_tol=1e-3)]
            if how == "exact":
                method = f"same size ({params:g}B) measured with another model"
                tier, conf = "interpolated", "medium"
            elif how == "between":
                method = "log-log interpolation in model size between the nearest measured sizes"
                tier, conf = "interpolated", "medium"
            else:
                tier, conf = "extrapolated", "low"
                anchored = self._model_anchor(rows[:2], gpu, model, params, prec, b, metric)
                if anchored is not None:
                    # beyond the measured sizes the regime changes (a large model stops being
                    # launch-bound): the performance model carries the size, anchored on the
                    # nearest measured sizes' ratio of measured to modelled
                    y, method = anchored
                else:
                    method = "log-log extrapolation in model size beyond the measured sizes"
                    ratio = self._ratio_to_baseline(gpu, model, params, prec, b, metric) if prec != "fp16" else None
                    if ratio is not None:
                        # two extrapolations that tend to err in opposite directions (the value itself,
                        # and its ratio to FP16): their geometric mean halves the leave-one-out error
                        y = math.sqrt(y * ratio.value)
                        method = f"geometric mean of {method} and {ratio.method}"
                        ids = ids + [i for i in ratio.row_ids if i not in ids]
            cand = _Cand(y, tier, conf, method, ids)
            if b != bs:
                scaled = self._scale_batch(cand, gpu, prec, b, bs, metric)
                if scaled is None:
                    continue
                cand = scaled
            if best is None or cand.rank() < best.rank():
                best = cand
            break
        return best

    def _predict_point(self, gpu: str, model: str | None, params: float, prec: str, bs: int,
                       lens: tuple[int | None, int | None]) -> physics.Prediction | None:
        w = physics.work_for(gpu, model, params, prec, bs, lens[0], lens[1], framework=self.framework)
        return physics.predict(w, self.params) if w is not None else None

    def _model_anchor(self, near: Sequence[Point], gpu: str, model: str | None, params: float, prec: str, bs: int,
                      metric: str) -> tuple[float, str] | None:
        """The performance model's figure for the target times the geometric mean of measured /
        modelled over the nearest measured points (same GPU, precision and batch size)."""
        res = []
        for p in near:
            pr = self._predict_point(p.gpu, p.model, p.params_b, p.precision, p.batch_size, (p.prompt_tokens, p.gen_tokens))
            v = p.j if metric == "j" else p.tput
            if pr is None or not v:
                return None
            res.append(v / (pr.j_per_1k if metric == "j" else pr.tok_s))
        if not res:
            return None
        t = self._predict_point(gpu, model, params, prec, bs, (near[0].prompt_tokens, near[0].gen_tokens))
        if t is None:
            return None
        r = _geo(res)
        sizes = ", ".join(f"{p.params_b:g}B" for p in near)
        return ((t.j_per_1k if metric == "j" else t.tok_s) * r,
                f"{t.describe()}, anchored on the nearest measured sizes ({sizes}: measured/modelled x{r:.2f})")

    def _ratio_to_baseline(self, gpu: str, model: str | None, params: float, prec: str, bs: int,
                           metric: str) -> _Cand | None:
        """This GPU's FP16 figure at the target size times the precision/FP16 ratio, the ratio
        fitted against ln(params) by least squares over this GPU's measured pairs."""
        base = self._same_gp(gpu, model, params, "fp16", bs, metric)
        if base is None:
            return None
        fp16 = {(p.model, p.batch_size): p for p in self.by_gp.get((gpu, "fp16"), [])}
        xs, ys, ids = [], [], []
        for p in self.by_gp.get((gpu, prec), []):
            b = fp16.get((p.model, p.batch_size))
            va = p.j if metric == "j" else p.tput
            vb = (b.j if metric == "j" else b.tput) if b else None
            if va and vb:
                xs.append(math.log(p.params_b))
                ys.append(math.log(va / vb))
                ids += [p.id, b.id]  # type: ignore[union-attr]
        if not xs:
            return None
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = _ls_slope(xs, ys) if len(set(xs)) > 1 else 0.0
        r = math.exp(my + slope * (math.log(params) - mx))
        return _Cand(base.value * r, "extrapolated", "low",
                     f"{gpu} FP16 at this size x the {prec}/FP16 ratio fitted on ln(params) over {len(xs)} pairs", ids)

    def _batch_from(self, mine: list[Point], gpu: str, prec: str, bs: int, metric: str,
                    val: Callable[[Point], float]) -> _Cand | None:
        pairs = [(float(p.batch_size), val(p)) for p in mine]
        bss = sorted({p.batch_size for p in mine})
        if bss[0] < bs < bss[-1]:
            y, _ = _loglog(pairs, bs, None)  # type: ignore[misc]
            lo = max(b for b in bss if b < bs)
            hi = min(b for b in bss if b > bs)
            ids = [p.id for p in mine if p.batch_size in (lo, hi)]
            return _Cand(y, "interpolated", "medium",
                         f"log-log interpolation between measured batch sizes {lo} and {hi}", ids)
        nearest = min(bss, key=lambda b: (abs(math.log(b / bs)), -b))
        base = [p for p in mine if p.batch_size == nearest]
        cand = _Cand(_geo([val(p) for p in base]), "measured", "high", "measured", [p.id for p in base])
        return self._scale_batch(cand, gpu, prec, nearest, bs, metric)

    def _scale_batch(self, cand: _Cand, gpu: str, prec: str, from_bs: int, to_bs: int, metric: str) -> _Cand | None:
        # Walk from one batch size to the other in steps of at most a doubling, each step with the
        # law fitted around its own midpoint: the law flattens at large batches, so one exponent
        # for the whole span would over- or under-shoot.
        n = max(1, math.ceil(abs(math.log2(to_bs / from_bs)) - 1e-9))
        y = cand.value
        law = None
        scope = "own"
        order = {"own": 0, "gpu": 1, "other_gpu": 2, "none": 3}
        for k in range(n):
            a = from_bs * (to_bs / from_bs) ** (k / n)
            b = from_bs * (to_bs / from_bs) ** ((k + 1) / n)
            step, sc = self._batch_law(gpu, prec, metric, math.sqrt(a * b))
            if step is None:
                return None
            y *= (b / a) ** step.slope
            law = law or step
            scope = sc if order[sc] > order[scope] else scope
        assert law is not None
        tier = "interpolated" if scope in ("own", "gpu") else "extrapolated"
        tier = _worse(tier, cand.tier, _TIER_ORDER)
        conf = "medium" if scope == "own" else "low"
        conf = _worse(conf, cand.confidence, _CONF_ORDER)
        base = cand.method if cand.tier != "measured" else f"measured at BS={from_bs}"
        how = law.describe("J/1k tok" if metric == "j" else "tok/s")
        if n > 1:
            how += f", refitted around each of {n} steps"
        return _Cand(y, tier, conf, f"{base}; scaled to BS={to_bs} by the {how}",
                     cand.row_ids, cand.notes)

    def _size_slope(self, metric: str, prec: str) -> float | None:
        """Pooled log-log slope of the metric against parameter count (GPU x precision x batch
        size x model family as fixed effects); None when the data cannot say."""
        key = ("size_slope", metric, prec)
        if key in self._cache:
            slope: float | None = self._cache[key]
            return slope
        groups: dict[tuple[Any, ...], list[tuple[float, float]]] = defaultdict(list)
        for p in self.points:
            v = p.j if metric == "j" else p.tput
            if v:
                groups[(p.gpu, p.precision, p.batch_size)].append((math.log(p.params_b), math.log(v)))
        xs, ys = [], []
        for obs in groups.values():
            if len({x for x, _ in obs}) < 2:
                continue
            mx = sum(x for x, _ in obs) / len(obs)
            my = sum(y for _, y in obs) / len(obs)
            xs += [x - mx for x, _ in obs]
            ys += [y - my for _, y in obs]
        slope = _ls_slope(xs, ys) if len(xs) >= 2 else None
        self._cache[key] = slope
        return slope

    # -- across GPUs -----------------------------------------------------------------------------
    def _lens(self, ids: Sequence[str]) -> tuple[int | None, int | None]:
        pts = [p for p in self.points if p.id in set(ids)]
        pl = sorted(p.prompt_tokens for p in pts if p.prompt_tokens)
        gl = sorted(p.gen_tokens for p in pts if p.gen_tokens)
        return (pl[len(pl) // 2] if pl else None, gl[len(gl) // 2] if gl else None)

    def _other_gpu(self, gpu: str, model: str | None, params: float, prec: str, bs: int, metric: str,
                   stated: tuple[int | None, int | None] = (None, None)) -> _Cand | None:
        """Cross-GPU transfer through the performance model: the model calibrated on every measured GPU's
        rows (each GPU weighing the same) predicts this GPU from its own bandwidth, compute, memory kind
        and power limit, at the lengths the reference rows were measured at. A reference GPU's figure
        times the model's ratio of the two GPUs would carry that reference host's launch overhead over
        (measured per layer it differs twofold between hosts of the same GPU); the pooled calibration
        averages it out (benchmarks/estimator_accuracy.py, leave-one-GPU-out)."""
        refs = []
        for (g, p), _pts in self.by_gp.items():
            if p != prec or g == gpu:
                continue
            c = self._same_gp(g, model, params, prec, bs, metric)
            # a GPU without catalog specs cannot have taught the model anything
            if c is not None and physics.work_for(g, model, params, prec, bs, None, None) is not None:
                refs.append((c, g))
        ref_lens = self._lens([i for c, _ in refs for i in c.row_ids]) if refs else (None, None)
        lens = (stated[0] or ref_lens[0], stated[1] or ref_lens[1])
        w = physics.work_for(gpu, model, params, prec, bs, lens[0], lens[1], framework=self.framework)
        pr = physics.predict(w, self.params) if w is not None else None
        if pr is None:
            return None
        value = pr.j_per_1k if metric == "j" else pr.tok_s
        if not refs:
            return _Cand(value, "extrapolated", "low",
                         f"{pr.describe()}, calibrated on the {self.framework} rows (no row of this precision on "
                         "any GPU to transfer from)", [])
        gpus = sorted({g for _, g in refs})
        method = (f"cross-GPU transfer through the performance model calibrated on the measured {self.framework} rows "
                  f"(this precision measured on {', '.join(gpus)}): {pr.describe()} on {gpu}")
        ids = list(dict.fromkeys(i for c, _ in refs for i in c.row_ids))
        return _Cand(value, "extrapolated", "low", method, ids)

    def _other_precision(self, gpu: str, model: str | None, params: float, prec: str, bs: int, metric: str) -> _Cand | None:
        """This GPU's baseline times the precision's ratio to that baseline on other GPUs."""
        for base in ("fp16", "int8_pure", "nf4", "int8_mixed", "fp8", "fp32", "bf16"):
            if base == prec:
                continue
            b = self._same_gp(gpu, model, params, base, bs, metric)
            if b is None:
                continue
            ratios, ids = [], []
            for (g, p), _ in self.by_gp.items():
                if g == gpu or p != prec:
                    continue
                num = self._same_gp(g, model, params, prec, bs, metric)
                den = self._same_gp(g, model, params, base, bs, metric)
                if num and den:
                    ratios.append(num.value / den.value)
                    ids += num.row_ids + den.row_ids
            if not ratios:
                continue
            r = _geo(ratios)
            method = (f"{gpu} {base} ({b.method}) x the {prec}/{base} ratio {r:.2f} measured on other GPUs "
                      f"(precision transfer)")
            return _Cand(b.value * r, "extrapolated", "low", method, b.row_ids + ids)
        return None

    # -- public ----------------------------------------------------------------------------------
    def estimate_metric(self, gpu: str, model: str | None, params: float, prec: str, bs: int, metric: str,
                        lens: tuple[int | None, int | None] = (None, None)) -> _Cand | None:
        """`lens` (prompt, generated tokens) as the question states them: a figure the performance model
        computes for a GPU without rows is computed at them (else at the reference rows' lengths)."""
        key = ("est", gpu, model, round(params, 4), prec, bs, metric, lens)
        if key in self._cache:
            hit: _Cand | None = self._cache[key]
            return hit
        prec_eff = BF16_AS if prec == "bf16" and not self.by_gp.get((gpu, "bf16")) else prec
        # this GPU and precision first, whatever its tier: its own rows beat any transfer
        c = self._same_gp(gpu, model, params, prec_eff, bs, metric)
        if c is None:
            alts = [x for x in (self._other_gpu(gpu, model, params, prec_eff, bs, metric, lens),
                                self._other_precision(gpu, model, params, prec_eff, bs, metric)) if x]
            if alts:
                c = _combine(alts) if len(alts) > 1 else alts[0]
        if c is not None and prec_eff != prec:
            c = _Cand(c.value, _worse(c.tier, "interpolated", _TIER_ORDER), c.confidence,
                      f"{c.method}; BF16 taken as FP16 (same bytes per weight and tensor rate)", c.row_ids, c.notes)
        self._cache[key] = c
        return c


def fp8_default(gpu: str, ds: Dataset | None = None) -> tuple[str, str]:
    """The FP8 implementation (and the reason key) of a question on `gpu` that says only "fp8": the one
    measured on this GPU when its rows hold exactly one, else the GPU's (physics.default_fp8_mode)."""
    from measurements import catalog

    try:
        key = catalog.resolve_gpu(gpu).key
    except catalog.UnknownName:
        key = gpu
    measured = {fp8_mode_of(p.precision) for p in (ds or dataset()).points if p.gpu == key} - {None}
    return physics.default_fp8_mode(gpu, measured)  # type: ignore[arg-type]


def _combine(cands: list[_Cand]) -> _Cand:
    """Two independent extrapolations: their geometric mean (errors partly cancel)."""
    value = _geo([c.value for c in cands])
    ids: list[str] = []
    for c in cands:
        ids += [i for i in c.row_ids if i not in ids]
    return _Cand(value, "extrapolated", "low", " | ".join(c.method for c in cands) + " (geometric mean of both)", ids)


# ---------------------------------------------------------------------------------------------
# memory


def _arch_for(model: str | None, params_b: float) -> ModelArch | None:
    from measurements import catalog

    if model:
        try:
            return catalog.resolve_model(model)
        except catalog.UnknownName:
            pass
    ms = catalog.models()
    return min(ms, key=lambda m: abs(math.log(m.params_b / params_b))) if ms else None


def work_of(cfg: Config) -> physics.Work | None:
    """The performance model's view of a configuration (None for a GPU or format not in the catalog)."""
    return physics.work_for(cfg.gpu, cfg.model, cfg.params_b, cfg.fmt_key, cfg.batch_size, cfg.prompt_tokens,
                            cfg.gen_tokens, cfg.gpu_count, cfg.framework)


def memory_need(cfg: Config) -> physics.MemoryNeed | None:
    """Weights in the format with its quantisation state (every expert of a mixture-of-experts model),
    KV cache for batch x (prompt + generation), activations and the runtime reserve, per GPU."""
    w = work_of(cfg)
    return physics.memory_need(w) if w is not None else None


# ---------------------------------------------------------------------------------------------
# the default dataset (shipped + local rows), cached while the local store is unchanged


def _local_signature() -> tuple[str, int, int]:
    from measurements import store

    path = store.local_store_path()
    try:
        st = os.stat(path)
        return (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        return (str(path), 0, 0)


@lru_cache(maxsize=4)
def _dataset_for(signature: tuple[str, int, int]) -> Dataset:
    from measurements import store

    rows = store.load_rows()
    shipped = {r.id for r in store.shipped_rows()}
    local_ids = {r.id for r in rows if r.id not in shipped}
    ds = Dataset(points_from_rows(rows, local_ids))
    ds.rows = list(rows)  # the evidence layer (measurements.select) pairs the rows themselves
    return ds


def dataset() -> Dataset:
    return _dataset_for(_local_signature())


def rows_per_gpu() -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for p in dataset().points:
        counts[p.gpu] += 1
    return dict(counts)


def memory_need_gb(model: str | None, params_b: float, precision: str, batch_size: int, seq_tokens: int) -> float | None:
    """GPU memory (GB, one GPU) a configuration needs, whatever the GPU."""
    from measurements import catalog

    gpus = catalog.gpus()
    if not gpus or precision not in catalog.formats():
        return None
    prompt = max(seq_tokens, 1)
    cfg = Config(gpu=gpus[0].key, model=model, params_b=params_b, precision=precision, batch_size=batch_size,
                 prompt_tokens=prompt, gen_tokens=1)
    need = memory_need(cfg)
    return need.per_gpu_gb if need else None


def bench_command(cfg: Config) -> str:
    """The `ecolobster bench` call that would measure `cfg` on the user's GPU. Catalog models are
    built synthetically from their architecture; another hub id is loaded as is; a bare size uses
    the catalog architecture nearest in size."""
    from measurements import catalog

    synthetic = True
    try:
        model = catalog.resolve_model(cfg.model).key if cfg.model else None
    except catalog.UnknownName:
        model = None
        if cfg.model and "/" in cfg.model and " " not in cfg.model:
            model, synthetic = cfg.model, False
    if model is None:
        arch = _arch_for(None, cfg.params_b)
        model = arch.key if arch is not None else f"{cfg.params_b:g}b"
    parts = [f"ecolobster bench --model {model} --precision {cfg.precision} --batch-size {cfg.batch_size}"]
    if cfg.prompt_tokens:
        parts.append(f"--prompt-tokens {cfg.prompt_tokens}")
    if cfg.gen_tokens:
        parts.append(f"--gen-tokens {cfg.gen_tokens}")
    if cfg.fp8:
        parts.append(f"--fp8-mode {cfg.fp8}")  # the FP8 implementation the figures are for
    if synthetic:
        parts.append("--synthetic")
    return " ".join(parts)


def estimate(cfg: Config, ds: Dataset | None = None, itl_percentile: float | None = None) -> Estimate | None:
    """The figures of `cfg` with their provenance; None when nothing in the data can support one.
    A serving engine's configuration is answered from its own rows and model (serve_estimate)."""
    from advisor.estimate import serve_estimate, serving

    if cfg.framework in serving.SERVING_FRAMEWORKS:
        base = ds or dataset()
        return serve_estimate.estimate(cfg, base.rows, itl_percentile=itl_percentile)
    ds = (ds or dataset()).for_framework(cfg.framework)
    fp8_note = None
    if cfg.precision == "fp8":
        # the two FP8 implementations cost very differently: the answer says which one it is for, and why
        from advisor.messages import t

        mode, why = (cfg.fp8_mode, "stated") if cfg.fp8_mode else fp8_default(cfg.gpu, ds)
        fp8_note = t("en", f"derivation.fp8_{mode}_{why}", gpu=cfg.gpu)
        cfg = cfg.model_copy(update={"fp8_mode": mode})
    est = _multi_gpu(ds, cfg) if cfg.gpu_count > 1 else _estimate(ds, cfg)
    if est is not None and fp8_note:
        est.notes.insert(0, fp8_note)
    return est


def _multi_gpu(ds: Dataset, cfg: Config) -> Estimate | None:
    """A tensor-parallel replica: the single-GPU estimate scaled by the performance model's ratio
    of N GPUs to one (weights, KV cache and FLOPs split N ways; overheads and idle power not)."""
    one = _estimate(ds, cfg.model_copy(update={"gpu_count": 1}))
    w1, wn = work_of(cfg.model_copy(update={"gpu_count": 1})), work_of(cfg)
    p1 = physics.predict(w1, ds.params) if w1 else None
    pn = physics.predict(wn, ds.params) if wn else None
    if one is None or p1 is None or pn is None or one.throughput_tok_s is None:
        return None
    tput = one.throughput_tok_s * pn.tok_s / p1.tok_s
    j = one.j_per_1k_tok * pn.j_per_1k / p1.j_per_1k
    method = (f"{one.method}; scaled to {cfg.gpu_count} GPUs (tensor parallel) by the performance model "
              f"(throughput x{pn.tok_s / p1.tok_s:.2f}, energy x{pn.j_per_1k / p1.j_per_1k:.2f}; no multi-GPU row measured)")
    return _finish(ds, cfg, j, tput, None, _worse(one.tier, "extrapolated", _TIER_ORDER), "low", method,
                   one.row_ids, list(one.notes), [], pn)


def _estimate(ds: Dataset, cfg: Config) -> Estimate | None:
    lens = (cfg.prompt_tokens, cfg.gen_tokens)
    cj = ds.estimate_metric(cfg.gpu, cfg.model, cfg.params_b, cfg.fmt_key, cfg.batch_size, "j", lens)
    if cj is None:
        return None
    ct = ds.estimate_metric(cfg.gpu, cfg.model, cfg.params_b, cfg.fmt_key, cfg.batch_size, "tput", lens)
    tput = ct.value if ct else None
    notes = list(cj.notes)
    exact = [p for p in ds.points if p.id in cj.row_ids] if cj.tier == "measured" else []
    row_lens = {((p.prompt_tokens, p.gen_tokens)) for p in ds.points if p.id in cj.row_ids}
    if cfg.gen_tokens and row_lens and all(gt and gt != cfg.gen_tokens for _, gt in row_lens):
        shown = ", ".join(f"{pt}->{gt}" for pt, gt in sorted(row_lens, key=str))
        notes.append(f"rows measured at {shown} tokens (prompt->generated); J per 1k generated tokens is taken as "
                     "independent of length, so energy per request scales with the tokens generated")
    w = work_of(cfg)
    pred = physics.predict(w, ds.params) if w is not None else None
    return _finish(ds, cfg, cj.value, tput, exact, cj.tier, cj.confidence, cj.method, cj.row_ids, notes, exact, pred)


def _finish(ds: Dataset, cfg: Config, j: float, tput: float | None, exact: list[Point] | None, tier: str,
            confidence: str, method: str, row_ids: list[str], notes: list[str], _exact: list[Point],
            pred: physics.Prediction | None) -> Estimate:
    """Power, memory and the physics checks common to every estimate."""
    exact = exact or []
    w = work_of(cfg)
    b = physics.bounds(w) if w is not None else None
    power = None
    if exact:
        pw = [p.power for p in exact if p.power]
        power = sum(pw) / len(pw) if pw else None  # a measured power beats the derived one
    if tput is None and pred is not None:
        tput = pred.tok_s
        method += f"; throughput from the {pred.describe()}"
    if b is not None and tier != "measured" and tput is not None:
        # no figure outside physics: throughput within the bound, power within [idle, limit]
        if tput > b.max_tok_s:
            notes.append(f"throughput capped at the {b.binding} bound ({b.max_tok_s:,.0f} tok/s; the interpolation gave "
                         f"{tput:,.0f}); energy per token raised in proportion (the same power for longer)")
            j *= tput / b.max_tok_s
            tput = b.max_tok_s
        lo, hi = b.min_power_w * 1000.0 / tput, b.max_power_w * 1000.0 / tput
        if j > hi or j < lo:
            side = "power limit" if j > hi else "idle power"
            notes.append(f"energy held within the GPU's {side} at this throughput ({j:,.0f} -> "
                         f"{min(max(j, lo), hi):,.0f} J/1k tok)")
            j = min(max(j, lo), hi)
    if power is None and tput:
        power = j * tput / 1000.0
    if b is not None and tier != "measured" and power is not None:
        power = min(max(power, b.min_power_w), b.max_power_w)
    idle = w.gpu.idle_power_w * cfg.gpu_count if w is not None else None
    net = None
    if tput and idle is not None:
        n = j - idle * 1000.0 / tput
        net = n if n > 0 else None
    spread = tput_std = n_runs = software = None
    if exact:
        spreads = [p.spread for p in exact if p.spread is not None]
        spread = spreads[0] if len(exact) == 1 and spreads else None
        stds = [p.tput_std for p in exact if p.tput_std is not None]
        tput_std = stds[0] if len(exact) == 1 and stds else None
        n_runs = sum(p.n_runs or 0 for p in exact) or None
        software = exact[0].software
    need = physics.memory_need(w) if w is not None else None
    if exact and all(p.mem for p in exact) and cfg.batch_size == exact[0].batch_size:
        mem_gb: float | None = sum(p.mem or 0.0 for p in exact) / len(exact)
    else:
        mem_gb = need.per_gpu_gb if need else None
    fits = need.fits if need else True
    min_n = fmts = None
    if need is not None and w is not None and not fits:
        min_n = physics.smallest_fit(w)
        fmts = physics.formats_that_fit(w)
    if pred is not None and tier != "measured" and pred.describe() not in method:
        notes.append(pred.describe())
    local = any(p.local for p in ds.points if p.id in row_ids)
    return Estimate(
        config=cfg, j_per_1k_tok=j, j_per_1k_tok_net=net, throughput_tok_s=tput, power_w=power, mem_gb=mem_gb,
        energy_spread=spread, throughput_std=tput_std, tier=tier, method=method,  # type: ignore[arg-type]
        confidence=confidence, row_ids=row_ids, notes=notes,  # type: ignore[arg-type]
        bench_command=None if tier == "measured" else bench_command(cfg), local=local, n_runs=n_runs,
        software=software, bound_tok_s=b.max_tok_s if b else None, bound=b.binding if b else None,
        power_limit_w=b.max_power_w if b else None, mem_need_gb=need.per_gpu_gb if need else None,
        mem_breakdown=need.describe() if need else None, fits=fits, min_gpu_count=min_n, formats_that_fit=fmts or [],
    )
