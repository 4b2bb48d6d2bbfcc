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
- extrapolated: outside the measured sizes, another GPU (transfer by the catalog's specs,
  calibrated on the pairs of GPUs the data cover), or another precision (the precision's ratio
  to a baseline on other GPUs applied to this GPU's baseline). Always low confidence.

Simulated rows are never used. Pure Python on purpose: the advisor starts fast and needs no numpy.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import median

from pydantic import BaseModel, ConfigDict, Field

from advisor.answer import Confidence, Provenance, Tier
from measurements.schema import MeasurementRow

# Bits per stored weight of each format: definitions of the formats, used only where no memory
# rows exist for a precision (scaled from the FP16 memory fit).
BITS_PER_WEIGHT = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8_mixed": 8, "int8_pure": 8, "nf4": 4}
# Bytes per KV-cache element: the cache is kept in 16-bit floats for every format measured here.
KV_BYTES = 2
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
    batch_size: int = Field(default=1, ge=1)
    prompt_tokens: int | None = None
    gen_tokens: int | None = None

    def label(self) -> str:
        return f"{self.gpu} / {self.model or f'{self.params_b:g}B'} / {self.precision} / bs{self.batch_size}"


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
    precision: str
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


def _model_key(row: MeasurementRow) -> tuple[str, float]:
    """The catalog key and size of a row's model. The catalog's exact parameter count wins over
    the row's rounded one, so that sizes line up across sources."""
    from measurements import catalog

    m = catalog.model_by_hub_id(row.model_id)
    return (m.key, m.params_b) if m is not None else (row.model_id.lower(), row.params_b)


def _software(r: MeasurementRow) -> str:
    parts = []
    for label, v in (("driver", r.driver_version), ("CUDA", r.cuda_version), ("torch", r.torch_version),
                     ("transformers", r.transformers_version), ("bitsandbytes", r.bitsandbytes_version),
                     ("torchao", r.torchao_version)):
        if v:
            parts.append(f"{label} {v}")
    return ", ".join(parts)


def points_from_rows(rows: Iterable[MeasurementRow], local_ids: set[str] | frozenset[str] = frozenset()) -> list[Point]:
    """Inference rows that can serve as evidence: measured (never simulated), with energy."""
    out = []
    for r in rows:
        if r.kind != "measured" or r.task != "inference" or r.energy_j_per_1k_tok is None:
            continue
        key, params = _model_key(r)
        out.append(Point(
            id=r.id, gpu=r.gpu, model=key, params_b=params, precision=r.precision,
            batch_size=r.batch_size, j=r.energy_j_per_1k_tok, tput=r.throughput_tok_s, power=r.power_w,
            mem=r.gpu_mem_gb, spread=r.energy_ci95 or r.energy_std, tput_std=r.throughput_std, n_runs=r.n_runs,
            local=r.id in local_ids, prompt_tokens=r.prompt_tokens, gen_tokens=r.gen_tokens, software=_software(r),
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


# Tuning chosen with benchmarks/estimator_accuracy.py (leave-one-out over the measured rows).
LOCAL_SPAN = 1.0   # width, in ln(BS), of the weights of the local batch law (None: one global law)
TRANSFER = "bw"  # spec behind cross-GPU transfer: "tdp_bw", "bw" or "none"


class Dataset:
    """Measured points and the fits over them. `estimate()` uses the shipped + local data; the
    accuracy benchmark builds one per left-out row."""

    def __init__(self, points: Sequence[Point], local_span: float | None = None, transfer: str | None = None):
        self.points = list(points)
        self.local_span = LOCAL_SPAN if local_span is None else (local_span or None)
        self.transfer = transfer or TRANSFER
        self.by_gp: dict[tuple[str, str], list[Point]] = defaultdict(list)
        for p in self.points:
            self.by_gp[(p.gpu, p.precision)].append(p)
        self._cache: dict[tuple, object] = {}
        self._beta: dict[str, tuple[float, int]] = {}

    # -- batch ---------------------------------------------------------------------------------
    def _batch_law(self, gpu: str, prec: str, metric: str, target_bs: float) -> tuple[BatchLaw | None, str]:
        """The law for (gpu, precision); else borrowed from the same GPU's other precisions, then
        the same precision on other GPUs, then all rows. Returns (law, scope)."""
        key = ("law", gpu, prec, metric, round(target_bs, 3))
        if key not in self._cache:
            self._cache[key] = self._batch_law_uncached(gpu, prec, metric, target_bs)  # type: ignore[assignment]
        return self._cache[key]  # type: ignore[return-value]

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
            return self._cache[key]
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
                method = "log-log extrapolation in model size beyond the measured sizes"
                tier, conf = "extrapolated", "low"
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

    def _batch_from(self, mine: list[Point], gpu: str, prec: str, bs: int, metric: str, val) -> _Cand | None:
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
            return self._cache[key]  # type: ignore[return-value]
        groups: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
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
        self._cache[key] = slope  # type: ignore[assignment]
        return slope

    # -- across GPUs -----------------------------------------------------------------------------
    def _spec(self, gpu: str, metric: str) -> float | None:
        from measurements import catalog

        try:
            g = catalog.resolve_gpu(gpu)
        except catalog.UnknownName:
            return None
        # decode at small batches streams the weights once per token: throughput follows memory
        # bandwidth and energy per token its inverse (or TDP over it); the exponent is calibrated
        # on the data, and the benchmark picked 1/bandwidth (lower leave-one-out error)
        if self.transfer == "none":
            return 1.0
        if metric == "j":
            return g.tdp_w / g.mem_bandwidth_gbs if self.transfer == "tdp_bw" else 1.0 / g.mem_bandwidth_gbs
        return g.mem_bandwidth_gbs

    def transfer_beta(self, metric: str) -> tuple[float, int]:
        """Exponent of the spec ratio, by least squares through the origin on every pair of GPUs
        that measured the same model, precision and batch size."""
        if metric in self._beta:
            return self._beta[metric]
        cells: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for p in self.points:
            v = p.j if metric == "j" else p.tput
            if v:
                cells[(p.model, p.precision, p.batch_size)][p.gpu].append(v)
        sxy = sxx = 0.0
        n = 0
        for by_gpu in cells.values():
            gs = sorted(by_gpu)
            for i in range(len(gs)):
                for k in range(i + 1, len(gs)):
                    si, sk = self._spec(gs[i], metric), self._spec(gs[k], metric)
                    if not si or not sk or si == sk:
                        continue
                    x = math.log(si / sk)
                    y = math.log(_geo(by_gpu[gs[i]]) / _geo(by_gpu[gs[k]]))
                    sxy += x * y
                    sxx += x * x
                    n += 1
        beta = sxy / sxx if sxx else 1.0
        self._beta[metric] = (beta, n)
        return beta, n

    def _other_gpu(self, gpu: str, model: str | None, params: float, prec: str, bs: int, metric: str) -> _Cand | None:
        spec_t = self._spec(gpu, metric)
        if spec_t is None:
            return None
        beta, npairs = self.transfer_beta(metric)
        cands = []
        for (g, p), _pts in self.by_gp.items():
            if p != prec or g == gpu:
                continue
            c = self._same_gp(g, model, params, prec, bs, metric)
            spec_r = self._spec(g, metric)
            if c is None or spec_r is None:
                continue
            cands.append((c, g, (spec_t / spec_r) ** beta))
        if not cands:
            return None
        cands.sort(key=lambda t: t[0].rank())
        top = [t for t in cands if t[0].rank() == cands[0][0].rank()]
        value = _geo([c.value * f for c, _, f in top])
        refs = ", ".join(g for _, g, _ in top)
        if self.transfer == "none" or spec_t == 1.0:
            method = f"cross-GPU transfer from {refs} ({top[0][0].method}), unscaled"
        else:
            spec = ("TDP / memory bandwidth" if self.transfer == "tdp_bw" else "1 / memory bandwidth") if metric == "j" \
                else "memory bandwidth"
            method = (f"cross-GPU transfer from {refs} ({top[0][0].method}) by the {spec} ratio ^ {beta:.2f} "
                      f"(exponent fitted on {npairs} pairs of GPUs in the data)")
        ids = [i for c, _, _ in top for i in c.row_ids]
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
    def estimate_metric(self, gpu: str, model: str | None, params: float, prec: str, bs: int, metric: str) -> _Cand | None:
        key = ("est", gpu, model, round(params, 4), prec, bs, metric)
        if key in self._cache:
            return self._cache[key]
        prec_eff = BF16_AS if prec == "bf16" and not self.by_gp.get((gpu, "bf16")) else prec
        # this GPU and precision first, whatever its tier: its own rows beat any transfer
        c = self._same_gp(gpu, model, params, prec_eff, bs, metric)
        if c is None:
            alts = [x for x in (self._other_gpu(gpu, model, params, prec_eff, bs, metric),
                                self._other_precision(gpu, model, params, prec_eff, bs, metric)) if x]
            if alts:
                c = _combine(alts) if len(alts) > 1 else alts[0]
        if c is not None and prec_eff != prec:
            c = _Cand(c.value, _worse(c.tier, "interpolated", _TIER_ORDER), c.confidence,
                      f"{c.method}; BF16 taken as FP16 (same bytes per weight and tensor rate)", c.row_ids, c.notes)
        self._cache[key] = c
        return c


def _combine(cands: list[_Cand]) -> _Cand:
    """Two independent extrapolations: their geometric mean (errors partly cancel)."""
    value = _geo([c.value for c in cands])
    ids: list[str] = []
    for c in cands:
        ids += [i for i in c.row_ids if i not in ids]
    return _Cand(value, "extrapolated", "low", " | ".join(c.method for c in cands) + " (geometric mean of both)", ids)


# ---------------------------------------------------------------------------------------------
# memory


def _arch_for(model: str | None, params_b: float):
    from measurements import catalog

    if model:
        try:
            return catalog.resolve_model(model)
        except catalog.UnknownName:
            pass
    ms = catalog.models()
    return min(ms, key=lambda m: abs(math.log(m.params_b / params_b))) if ms else None


def _memory_fit(points: Sequence[Point]) -> dict[str, tuple[float, float, int]]:
    """Per precision: GPU memory (GB) = a + k * params_b, least squares over rows with memory."""
    by: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for p in points:
        if p.mem:
            by[p.precision].append((p.params_b, p.mem))
    out = {}
    for prec, obs in by.items():
        if len({x for x, _ in obs}) < 2:
            continue
        k = _ls_slope([x for x, _ in obs], [y for _, y in obs])
        mx = sum(x for x, _ in obs) / len(obs)
        my = sum(y for _, y in obs) / len(obs)
        out[prec] = (my - k * mx, k, len(obs))
    return out


def _catalog_key(model: str) -> str | None:
    from measurements import catalog

    try:
        return catalog.resolve_model(model).key
    except catalog.UnknownName:
        return None


def kv_cache_gb(model: str | None, params_b: float, tokens: int) -> float:
    arch = _arch_for(model, params_b)
    if arch is None:
        return 0.0
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * KV_BYTES * tokens / 1e9


def memory_gb(ds: Dataset, model: str | None, params_b: float, precision: str, batch_size: int,
              seq_tokens: int) -> tuple[float, str] | None:
    """Weights (+ runtime overhead, as measured) from the per-precision memory fit, plus the KV
    cache of the extra sequences and tokens beyond a single measured sequence."""
    fits = _memory_fit(ds.points)
    prec = BF16_AS if precision == "bf16" else precision
    arch = _arch_for(model, params_b) if model else None
    if arch is not None and model and arch.key == _catalog_key(model):
        params_b = arch.params_b  # every expert of a mixture-of-experts model sits in memory
    if prec in fits:
        a, k, n = fits[prec]
        base = a + k * params_b
        how = f"memory fit for {prec} (GB = {a:.2f} + {k:.2f} x params_b, {n} rows)"
    elif "fp16" in fits:
        a, k, n = fits["fp16"]
        scale = BITS_PER_WEIGHT[prec] / BITS_PER_WEIGHT["fp16"]
        base = a + k * params_b * scale
        how = f"FP16 memory fit scaled by bits per weight ({BITS_PER_WEIGHT[prec]}/16)"
    else:
        return None
    measured_len = _typical_len(ds)
    extra_tokens = max(batch_size * seq_tokens - measured_len, 0)
    return max(base, 0.0) + kv_cache_gb(model, params_b, extra_tokens), how


def _typical_len(ds: Dataset) -> int:
    lens = [(p.prompt_tokens or 0) + (p.gen_tokens or 0) for p in ds.points if p.mem]
    return int(median(lens)) if lens else 0


# ---------------------------------------------------------------------------------------------
# the default dataset (shipped + local rows), cached while the local store is unchanged


def _local_signature() -> tuple:
    from measurements import store

    path = store.local_store_path()
    try:
        st = os.stat(path)
        return (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        return (str(path), 0, 0)


@lru_cache(maxsize=4)
def _dataset_for(signature: tuple) -> Dataset:
    from measurements import store

    rows = store.load_rows()
    shipped = {r.id for r in store.shipped_rows()}
    local_ids = {r.id for r in rows if r.id not in shipped}
    return Dataset(points_from_rows(rows, local_ids))


def dataset() -> Dataset:
    return _dataset_for(_local_signature())


def rows_per_gpu() -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for p in dataset().points:
        counts[p.gpu] += 1
    return dict(counts)


def memory_need_gb(model: str | None, params_b: float, precision: str, batch_size: int, seq_tokens: int) -> float | None:
    r = memory_gb(dataset(), model, params_b, precision, batch_size, seq_tokens)
    return r[0] if r else None


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
    if cfg.precision == "fp8":
        parts.append("--fp8-mode weight_only")  # the FP8 path the shipped rows measured
    if synthetic:
        parts.append("--synthetic")
    return " ".join(parts)


def estimate(cfg: Config, ds: Dataset | None = None) -> Estimate | None:
    """The figures of `cfg` with their provenance; None when nothing in the data can support one."""
    ds = ds or dataset()
    return _estimate(ds, cfg)


def _estimate(ds: Dataset, cfg: Config) -> Estimate | None:
    from measurements import catalog

    cj = ds.estimate_metric(cfg.gpu, cfg.model, cfg.params_b, cfg.precision, cfg.batch_size, "j")
    if cj is None:
        return None
    ct = ds.estimate_metric(cfg.gpu, cfg.model, cfg.params_b, cfg.precision, cfg.batch_size, "tput")
    tput = ct.value if ct else None
    power = cj.value * tput / 1000.0 if tput else None
    net = None
    notes = list(cj.notes)
    try:
        g = catalog.resolve_gpu(cfg.gpu)
        idle = g.idle_power_w
    except catalog.UnknownName:
        idle = None
    if tput and idle is not None:
        n = cj.value - idle * 1000.0 / tput
        net = n if n > 0 else None
    exact = [p for p in ds.points if p.id in cj.row_ids] if cj.tier == "measured" else []
    spread = None
    tput_std = None
    n_runs = None
    software = None
    if exact:
        spreads = [p.spread for p in exact if p.spread is not None]
        spread = spreads[0] if len(exact) == 1 and spreads else None
        stds = [p.tput_std for p in exact if p.tput_std is not None]
        tput_std = stds[0] if len(exact) == 1 and stds else None
        n_runs = sum(p.n_runs or 0 for p in exact) or None
        software = exact[0].software
        # a measured power beats the derived one
        pw = [p.power for p in exact if p.power]
        if pw:
            power = sum(pw) / len(pw)
    lens = {((p.prompt_tokens, p.gen_tokens)) for p in ds.points if p.id in cj.row_ids}
    if cfg.gen_tokens and lens and all(gt and gt != cfg.gen_tokens for _, gt in lens):
        shown = ", ".join(f"{pt}->{gt}" for pt, gt in sorted(lens, key=str))
        notes.append(f"rows measured at {shown} tokens (prompt->generated); J per 1k generated tokens is taken as "
                     "independent of length, so energy per request scales with the tokens generated")
    mem = memory_gb(ds, cfg.model, cfg.params_b, cfg.precision, cfg.batch_size,
                    (cfg.prompt_tokens or 0) + (cfg.gen_tokens or 0))
    if exact and all(p.mem for p in exact) and cfg.batch_size == exact[0].batch_size:
        mem_gb = sum(p.mem for p in exact) / len(exact)  # type: ignore[misc]
    else:
        mem_gb = mem[0] if mem else None
    local = any(p.local for p in ds.points if p.id in cj.row_ids)
    tier = cj.tier
    return Estimate(
        config=cfg,
        j_per_1k_tok=cj.value,
        j_per_1k_tok_net=net,
        throughput_tok_s=tput,
        power_w=power,
        mem_gb=mem_gb,
        energy_spread=spread,
        throughput_std=tput_std,
        tier=tier,  # type: ignore[arg-type]
        method=cj.method,
        confidence=cj.confidence,  # type: ignore[arg-type]
        row_ids=cj.row_ids,
        notes=notes,
        bench_command=None if tier == "measured" else bench_command(cfg),
        local=local,
        n_runs=n_runs,
        software=software,
    )


def crossover_params(ds: Dataset, precision: str, baseline: str = "fp16", gpu: str | None = None
                     ) -> tuple[float, float, list[str]] | None:
    """Model size (billions) where `precision` stops costing more energy than `baseline`: the zero
    of a least-squares line of ln(J_prec / J_base) against ln(params) over measured pairs (same
    GPU, model and batch size). Returns (crossover_b, slope, row ids) or None."""
    base: dict[tuple, Point] = {}
    for p in ds.points:
        if p.precision == baseline and (gpu is None or p.gpu == gpu):
            base[(p.gpu, p.model, p.batch_size)] = p
    xs, ys, ids = [], [], []
    for p in ds.points:
        if p.precision != precision or (gpu is not None and p.gpu != gpu):
            continue
        b = base.get((p.gpu, p.model, p.batch_size))
        if b is None:
            continue
        xs.append(math.log(p.params_b))
        ys.append(math.log(p.j / b.j))
        ids += [p.id, b.id]
    if len(set(xs)) < 2:
        return None
    slope = _ls_slope(xs, ys)
    if slope >= 0:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return math.exp(mx - my / slope), slope, ids
