"""Estimates for a serving engine (vLLM): the framework's own rows first, then its own model.

For a configuration served by a continuous-batching engine (Config.framework in
serving.SERVING_FRAMEWORKS; Config.batch_size is the concurrency, vLLM's max_num_seqs):

- measured: a row of this GPU, GPU count, model, format, task and concurrency;
- interpolated: the same configuration measured at other concurrencies, log-log interpolation
  between the two nearest (J/token, throughput, power and inter-token latency);
- extrapolated: beyond the measured concurrencies, the nearest measured row times the serving
  model's ratio of the two concurrencies (with a warning); this model's rows at another GPU count,
  task or GPU, the nearest measured row times the model's ratio of the two configurations; no row of
  the model at all, the serving performance model alone (its leave-one-model-out error is in
  benchmarks/estimator_accuracy.py); a GPU without serving rows, the same model on that GPU's specs
  with the fitted GPUs' mean multipliers (cross-GPU transfer).

Rows of another framework never enter: HF generate rows are not serving rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from statistics import median
from typing import TYPE_CHECKING

from advisor.estimate import physics
from advisor.estimate import serving as S
from measurements import catalog
from measurements.schema import MeasurementRow, ModelArch

if TYPE_CHECKING:
    from advisor.estimate import Config, Estimate

SIXTEEN_BIT = ("fp16", "bf16")


def _same_fmt(o: S.Obs, precision: str) -> bool:
    k = o.setup.fmt.key
    return k == precision or (k in SIXTEEN_BIT and precision in SIXTEEN_BIT)


def _arch(model: str | None) -> ModelArch | None:
    if not model:
        return None
    try:
        return catalog.resolve_model(model)
    except catalog.UnknownName:
        return None


_OBS: dict[tuple[int, str], tuple[Sequence[MeasurementRow], list[S.Obs]]] = {}


def observations(rows: Sequence[MeasurementRow], framework: str) -> list[S.Obs]:
    """The framework's serving rows as model inputs, cached per row list (the dataset's is reused)."""
    key = (id(rows), framework)
    hit = _OBS.get(key)
    if hit is None or hit[0] is not rows or len(hit[1]) > len(rows):
        if len(_OBS) > 8:
            _OBS.clear()
        hit = (rows, S.observations(rows, framework))
        _OBS[key] = hit
    return hit[1]


def default_workload(obs: Sequence[S.Obs], model: str | None) -> str:
    """The task of this model's rows (the one with most rows), else chat."""
    mine = [o.setup.workload for o in obs if model and o.model == model]
    return max(sorted(set(mine)), key=mine.count) if mine else "chat"


def gen_tokens_for(obs: Sequence[S.Obs], model: str | None, workload: str) -> tuple[float, str]:
    """Output tokens per request: this model's measured mean for the task, else the task's median."""
    mine = [o.setup.gen_tokens for o in obs if o.model == model and o.setup.workload == workload]
    if mine:
        return median(mine), f"this model's measured mean output length for {workload} ({median(mine):,.0f} tokens)"
    task = [o.setup.gen_tokens for o in obs if o.setup.workload == workload]
    if task:
        return median(task), f"the median output length of the {workload} rows ({median(task):,.0f} tokens)"
    d = catalog.factor("default_gen_tokens")
    return d, f"default_gen_tokens ({d:g})"


def _itl(r: MeasurementRow, pct: float | None) -> float | None:
    """The row's inter-token latency at the percentile asked (p50 when none)."""
    if pct is None or pct <= 50:
        return r.itl_p50_ms
    for cut, v in ((90, r.itl_p90_ms), (95, r.itl_p95_ms), (99, r.itl_p99_ms)):
        if pct <= cut and v is not None:
            return v
    return r.itl_p99_ms or r.itl_p95_ms or r.itl_p90_ms


def _interp(x: float, x0: float, x1: float, y0: float | None, y1: float | None) -> float | None:
    if y0 is None or y1 is None or y0 <= 0 or y1 <= 0:
        return None
    w = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
    return math.exp(math.log(y0) * (1 - w) + math.log(y1) * w)


def calibrated_formats(p: dict[str, float]) -> set[str]:
    """The formats a serving law answers for: 16-bit and each format it has its own efficiencies for
    (`<format>_bw`). Another format (NF4, INT8 under vLLM) would silently borrow the 16-bit kernels'
    efficiency with the format's bytes, which no row supports."""
    return set(SIXTEEN_BIT) | {f for f in catalog.formats() if f"{f}_bw" in p}


def estimate(cfg: Config, rows: Sequence[MeasurementRow], params: dict[str, float] | None = None,
             itl_percentile: float | None = None) -> Estimate | None:
    """The advisor.estimate.Estimate of a serving configuration; None when the framework has no
    calibration or the model's architecture is not in the catalog."""
    from advisor.estimate import Estimate

    p = params if params is not None else S.shipped_params().get(cfg.framework)
    a = _arch(cfg.model)
    fmts = catalog.formats()
    if not p or a is None or cfg.precision not in calibrated_formats(p):
        return None
    try:
        g = catalog.resolve_gpu(cfg.gpu)
    except catalog.UnknownName:
        return None
    obs = observations(rows, cfg.framework)
    workload = cfg.workload or default_workload(obs, a.key)
    if cfg.gen_tokens:
        gen, gen_how = float(cfg.gen_tokens), f"{cfg.gen_tokens} output tokens per request (stated)"
    else:
        gen, gen_how = gen_tokens_for(obs, a.key, workload)
    target = S.Setup(gpu=g, arch=a, fmt=fmts[cfg.precision], gpu_count=cfg.gpu_count, concurrency=float(cfg.batch_size),
                     workload=workload, gen_tokens=gen, prompt_tokens=float(cfg.prompt_tokens) if cfg.prompt_tokens else None,
                     data_parallel=cfg.data_parallel)
    pt = S.predict(target, p)
    notes = [f"output length: {gen_how}; task: {workload}"]
    if cfg.precision in SIXTEEN_BIT and cfg.precision != "bf16":
        notes.append("FP16 answered from the BF16 rows and model: the same bytes per weight and tensor rate")
    same = [o for o in obs if o.model == a.key and o.gpu == g.key and _same_fmt(o, cfg.precision)
            and o.setup.gpu_count == cfg.gpu_count and o.setup.workload == workload
            and o.setup.data_parallel == cfg.data_parallel]
    bs = float(cfg.batch_size)
    j = tput = power = itl = None
    ids: list[str] = []
    tier, conf = "extrapolated", "low"
    exact = [o for o in same if math.isclose(o.setup.concurrency, bs)]
    n_gpu_fitted = sorted({o.gpu for o in obs})
    if exact:
        o = exact[0]
        j, tput, power, itl = o.j_per_1k, o.tok_s, o.row.power_w, _itl(o.row, itl_percentile)
        ids = [x.row.id for x in exact]
        tier, conf, method = "measured", "high", f"measured ({o.row.source})"
        if not cfg.gen_tokens:
            gen = o.setup.gen_tokens  # the answers this row's requests actually got
            notes[0] = f"output length: this row's mean ({gen:,.0f} tokens); task: {workload}"
    elif same:
        cs = sorted(same, key=lambda o: o.setup.concurrency)
        lo = [o for o in cs if o.setup.concurrency < bs]
        hi = [o for o in cs if o.setup.concurrency > bs]
        if lo and hi:
            o0, o1 = lo[-1], hi[0]
            x0, x1 = o0.setup.concurrency, o1.setup.concurrency
            j = _interp(bs, x0, x1, o0.j_per_1k, o1.j_per_1k)
            tput = _interp(bs, x0, x1, o0.tok_s, o1.tok_s)
            power = _interp(bs, x0, x1, o0.row.power_w, o1.row.power_w)
            itl = _interp(bs, x0, x1, _itl(o0.row, itl_percentile), _itl(o1.row, itl_percentile))
            ids = [o0.row.id, o1.row.id]
            tier, conf = "interpolated", "medium"
            method = f"log-log interpolation between the measured concurrencies {x0:g} and {x1:g}"
        else:
            near = lo[-1] if lo else hi[0]
            j, tput, power, itl, method = _anchored(near, target, pt, p, itl_percentile)
            ids = [near.row.id]
            method = (f"beyond the measured concurrencies ({cs[0].setup.concurrency:g}-{cs[-1].setup.concurrency:g}): "
                      + method)
            notes.append(f"concurrency {bs:g} is outside the measured range of this configuration "
                         f"({cs[0].setup.concurrency:g}-{cs[-1].setup.concurrency:g}): extrapolated, check it with a "
                         "measurement")
    else:
        # this model measured elsewhere (another GPU count, task or GPU): anchor on the nearest row
        kin = [o for o in obs if o.model == a.key and _same_fmt(o, cfg.precision)]
        # another GPU's row: the one nearest in memory bandwidth (an A100 anchors on the H100, not the
        # B200), since the model's GPU-to-GPU ratio is its least certain part
        kin.sort(key=lambda o: (o.gpu != g.key, o.setup.workload != workload, o.setup.gpu_count != cfg.gpu_count,
                                round(abs(math.log(o.setup.gpu.mem_bandwidth_gbs / g.mem_bandwidth_gbs)), 3),
                                abs(math.log(o.setup.concurrency / bs))))
        if kin:
            near = kin[0]
            j, tput, power, itl, method = _anchored(near, target, pt, p, itl_percentile)
            ids = [near.row.id]
            method = (f"{method} (this model measured on {near.setup.gpu_count} x {near.gpu}, {near.setup.workload}, "
                      f"concurrency {near.setup.concurrency:g})")
        else:
            j, tput, power, itl = pt.j_per_1k, pt.tok_s, pt.power_w, pt.itl_s * 1e3
            method = (f"{pt.describe()}; calibrated on {len(obs)} {cfg.framework} rows of other models "
                      "(leave-one-model-out error in benchmarks/estimator_accuracy.py)")
        if g.key not in n_gpu_fitted:
            method = (f"cross-GPU transfer to the {g.name} through the serving model (its own bandwidth, tensor rate, "
                      f"power limit and the mean efficiency multipliers of {', '.join(n_gpu_fitted)}; "
                      f"leave-one-GPU-out error in benchmarks/estimator_accuracy.py): {method}")
    assert j is not None and tput is not None
    # physics: throughput within the bound, power within [idle, limit] x GPUs
    cap = S.bounds_tok_s(target)
    if tier != "measured":
        if tput > cap:
            notes.append(f"throughput capped at the physics bound ({cap:,.0f} tok/s)")
            j *= tput / cap
            tput = cap
        n = cfg.gpu_count
        power = power if power is not None else j * tput / 1000
        power = min(max(power, g.idle_power_w * n), g.tdp_w * n)
        j = min(max(j, g.idle_power_w * n * 1000 / tput), g.tdp_w * n * 1000 / tput)
    if itl is None:
        itl = 1000.0 * bs / tput
    # the prompts' KV cache: the stated prompt length, else the catalog's default (the tasks' prompt
    # lengths are not published per row; the fitted effective length is a compute figure)
    prompt = float(cfg.prompt_tokens or catalog.factor("default_prompt_tokens"))
    need, cap_seqs, breakdown = memory(target, prompt)
    fits = tier == "measured" or _fits(target, prompt)
    if tier != "measured" and need <= g.vram_gb and cap_seqs < bs:
        notes.append(f"the KV cache holds about {cap_seqs:,.0f} sequences of this task on {cfg.gpu_count} x {g.key}: "
                     f"concurrency {bs:g} would not all run at once")
    # like the HF estimate's: the fewest GPUs (tensor parallel) that would hold what does not fit
    min_n = None if fits else next((n for n in physics.TP_SIZES if n > cfg.gpu_count
                                    and _fits(replace(target, gpu_count=n), prompt)), None)
    idle = g.idle_power_w * cfg.gpu_count
    net = j - idle * 1000 / tput
    return Estimate(
        config=cfg, j_per_1k_tok=j, j_per_1k_tok_net=net if net > 0 else None, throughput_tok_s=tput, power_w=power,
        mem_gb=need, tier=tier, method=method, confidence=conf, row_ids=ids, notes=notes,  # type: ignore[arg-type]
        bound_tok_s=cap, bound="memory bandwidth / compute", power_limit_w=g.tdp_w * cfg.gpu_count, mem_need_gb=need,
        mem_breakdown=breakdown, fits=fits, min_gpu_count=min_n, itl_ms=itl, workload=workload, output_tokens=gen,
        itl_percentile=itl_percentile if tier in ("measured", "interpolated") else None,
        n_runs=1 if tier == "measured" else None,
    )


def _anchored(near: S.Obs, target: S.Setup, pt: S.Prediction, p: S.Params, pct: float | None,
              ) -> tuple[float, float, float | None, float | None, str]:
    """The nearest measured row times the serving model's ratio of the target to that row."""
    pn = S.predict(near.setup, p)
    rj, rt = pt.j_per_1k / pn.j_per_1k, pt.tok_s / pn.tok_s
    itl_n = _itl(near.row, pct)
    itl = itl_n * (pt.itl_s / pn.itl_s) if itl_n else None
    pw = near.row.power_w * pt.power_w / pn.power_w if near.row.power_w else None
    method = (f"measured row {near.row.id} x the serving model's ratio of the two configurations "
              f"(J/token x{rj:.2f}, throughput x{rt:.2f}; {pt.describe()})")
    return near.j_per_1k * rj, near.tok_s * rt, pw, itl, method


def _fits(s: S.Setup, prompt: float) -> bool:
    """Weights, reserve and every running sequence's KV cache within each GPU's memory."""
    need, cap_seqs, _ = memory(s, prompt)
    return need <= s.gpu.vram_gb and cap_seqs >= s.concurrency


def memory(s: S.Setup, prompt: float) -> tuple[float, float, str]:
    """(GB per GPU at this concurrency, sequences the KV cache holds, breakdown): weights split over
    the GPUs, the KV cache of every running sequence at mid-answer context, the runtime reserve."""
    a, f, n = s.arch, s.fmt, s.gpu_count
    wb = a.params_b * 1e9 * (f.weight_bits + f.state_bits_per_weight) / 8
    if f.key == "mxfp4" or f.quantised == "linear":
        attn, expert, e, _ = S.layer_params(a)
        quant = a.layers * expert * e if f.key == "mxfp4" else a.layers * (attn + expert * e)
        wb = quant * (f.weight_bits + f.state_bits_per_weight) / 8 + (a.params_b * 1e9 - quant) * 2
    per_seq = (prompt + s.gen_tokens / 2) * a.kv_elems_per_token() * f.kv_bits / 8
    reserve = catalog.factor("runtime_reserve_gb")
    w_gb = wb / 1e9 / n
    kv_gb = s.concurrency * per_seq / 1e9 / n
    free = s.gpu.vram_gb - w_gb - reserve
    cap = max(free, 0.0) * 1e9 * n / per_seq if per_seq > 0 else math.inf
    total = w_gb + kv_gb + reserve
    breakdown = (f"weights {w_gb:.1f} GB + KV cache {kv_gb:.1f} GB ({s.concurrency:g} sequences at "
                 f"{prompt + s.gen_tokens / 2:,.0f} tokens) + runtime reserve {reserve:.1f} GB = {total:.1f} GB per GPU "
                 f"of {s.gpu.vram_gb:g} GB")
    return total, cap, breakdown


__all__ = ["default_workload", "estimate", "gen_tokens_for", "memory", "observations", "replace"]


def _shipped_obs(framework: str) -> list[S.Obs]:
    from advisor.estimate import dataset

    return observations(dataset().rows, framework)


def measured_concurrency(framework: str, gpu: str | None) -> tuple[float, float] | None:
    """The concurrencies the framework was measured at on this GPU (any GPU when None)."""
    cs = [o.setup.concurrency for o in _shipped_obs(framework) if gpu is None or o.gpu == gpu]
    return (min(cs), max(cs)) if cs else None


def measured_models(framework: str) -> set[str]:
    return {o.model for o in _shipped_obs(framework)}
