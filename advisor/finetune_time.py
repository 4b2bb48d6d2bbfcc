"""Time, energy, cost and CO2 of a fine-tuning run, from measured fine-tuning rows.

Step time comes from the dataset: a measured row of the same configuration on the same GPU is used
as is ("measured"). Otherwise the training performance model answers (`fit_training`, `_law`):
a step is the smooth maximum of two times that overlap, because the host queues kernels while the
GPU runs earlier ones:

    host = (overhead + checkpointing x gc_overhead) x (adapted linears / 100)^k x host_factor[GPU]
    gpu  = FLOPs per micro-step / (dense 16-bit peak x eff)
           + activation bytes per micro-step / peak bandwidth x traffic     FLOP- and byte-bound work
    step = (host^p + gpu^p)^(1/p)                                           p -> inf: max, p = 1: sum

never below the FLOP time at the full dense peak nor the weights' read time at the peak bandwidth.
The host floor is the per-step launch and optimizer work, paid per adapted linear (each one's
kernels launch every pass); at 512 tokens it sets the step (micro-batch 1, 2 and 4 take about as
long), at 2,048 tokens x 4 the GPU's work does. Power lies between idle and the limit from how
busy the GPU term keeps the GPU, (P - idle) / (limit - idle) = u0 + u1 x gpu / step
(advisor.estimate.physics.board_power, the inference model's rule). Per method one least-squares
fit takes log step time and that power share of every row together (`_fit_step`): the power says
how busy the GPU was even where the host floor sets the step, which is what tells the FLOP term
from the byte term across GPUs. The host factor of each GPU with rows is then fitted on its own
rows (its host CPU and driver), 1 elsewhere. The law is anchored on the nearest measured row of
the method (distance in model size, micro-batch and sequence length apart, rank, checkpointing,
GPU): its step residual to the power `finetune_anchor_exponent` in factors.csv, and its
power residual (a share of limit - idle) as far, scaled down by how far the two rows' GPU busy
shares are apart (a host-bound row says little about a GPU-bound step's power), so
a change of model, tokens or GPU goes through the law and the target GPU's own specs. The law
fitted on the shipped rows is stored with its fit error in measurements/catalog/finetune_params.csv
(`python -m advisor.finetune_time` rewrites it, `--check` compares); answers use it, a held-out
benchmark refits on its own rows. Accuracy: benchmarks/finetune_accuracy.py.

    training FLOPs per token (named rule "training FLOPs: 2F / 3F"):
      F  = 2 x N_matmul + 2 x L x s x d_attn     forward pass (matmuls + causal attention)
      full fine-tuning       3F   (forward, gradient of the activations, gradient of the weights)
      LoRA / QLoRA           2F + 6 x N_lora     (frozen base: no weight gradients)
      gradient checkpointing +F   (every layer's forward runs again in the backward)

N_matmul counts the decoder's linear weights and the lm_head (the embedding lookup does no
matmul); d_attn = heads x head_dim; a causal kernel skips half of the 4 x s x d_attn per layer.
Activation bytes per token: every decoder linear's and the lm_head's input and output in 16 bits
(the lm_head's output is the vocabulary-wide logits), once per pass (forward, backward, the
recompute with checkpointing); the fitted `traffic` multiplier covers the
element-wise work around them (norms, activations, LoRA dropout and adds).
Energy is step time x power; kWh, cost and CO2 go through advisor.derive, so they agree with every other answer.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor import derive
from advisor.answer import CostLine
from advisor.estimate import physics
from advisor.finetune_memory import TrainSetup, count_params, layer_linears, lora_params, setup_from_row
from measurements import catalog
from measurements.schema import GPU, GPUPrice, MeasurementRow, ModelArch, Region
from measurements.store import load_rows

Tier = Literal["measured", "interpolated", "extrapolated"]


def matmul_params(arch: ModelArch) -> int:
    """Weights that take part in matmuls for every token: decoder linears and the lm_head."""
    per_layer = sum(lin.d_in * lin.d_out for lin in layer_linears(arch))
    return per_layer * arch.layers + arch.vocab * arch.hidden


def flops_per_token(arch: ModelArch, setup: TrainSetup) -> float:
    """Training FLOPs per trained token (rule "training FLOPs: 2F / 3F", module docstring)."""
    d_attn = arch.heads * arch.head_dim
    fwd = 2 * matmul_params(arch) + 2 * arch.layers * setup.seq_len * d_attn
    if setup.method == "full":
        total = 3 * fwd
    else:
        total = 2 * fwd + 6 * lora_params(arch, setup.lora_rank, setup.target_modules)
    if setup.grad_checkpointing:
        total += fwd
    return float(total)


def peak_flops(gpu: GPU, setup: TrainSetup) -> float:
    """The GPU's dense 16-bit tensor peak, FLOP/s (bf16 where the setup computes in bf16)."""
    tflops = gpu.fp16_tflops
    if setup.weight_format != "fp16" and gpu.bf16_tflops:
        tflops = gpu.bf16_tflops
    return tflops * 1e12


class Calibration(BaseModel):
    """One measured fine-tuning row, read as an achieved utilisation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    row_id: str
    gpu: str
    arch: str
    method: str
    weights: str
    setup: TrainSetup
    tokens_per_s: float
    step_time_s: float
    power_w: float | None
    energy_j_per_step: float | None
    utilisation: float
    n_params: int
    tdp_w: float


def calibrations(rows: list[MeasurementRow] | None = None) -> list[Calibration]:
    """Every measured fine-tuning row with a throughput, as a utilisation (simulated rows never)."""
    rows = load_rows() if rows is None else rows
    out: list[Calibration] = []
    for r in rows:
        if r.task != "finetune" or r.kind != "measured" or not r.throughput_tok_s or not r.step_time_s:
            continue
        arch = catalog.model_by_hub_id(r.model_id)
        if arch is None:
            continue
        try:
            gpu = catalog.resolve_gpu(r.gpu)
            setup = setup_from_row(r)
        except ValueError:
            continue
        util = flops_per_token(arch, setup) * r.throughput_tok_s / peak_flops(gpu, setup)
        out.append(Calibration(row_id=r.id, gpu=gpu.key, arch=arch.key, method=setup.method,
                               weights=setup.weight_format, setup=setup, tokens_per_s=r.throughput_tok_s,
                               step_time_s=r.step_time_s, power_w=r.power_w, energy_j_per_step=r.energy_j_per_step,
                               utilisation=util, n_params=count_params(arch).total, tdp_w=gpu.tdp_w))
    return out


class StepEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu: str
    step_time_s: float = Field(description="one micro-step of batch x seq tokens")
    tokens_per_s: float
    power_w: float | None
    energy_j_per_step: float | None
    j_per_1k_tok: float | None
    utilisation: float
    tier: Tier
    method: str
    confidence: Literal["high", "medium", "low"]
    row_ids: list[str]
    note: str = ""


def _same_config(a: TrainSetup, b: TrainSetup) -> bool:
    keys = ("method", "weight_format", "double_quant", "lora_rank", "batch_size", "seq_len", "grad_checkpointing",
            "optimizer")
    if a.method != "full" and a.target_modules != b.target_modules:
        return False
    return all(getattr(a, k) == getattr(b, k) for k in keys if not (k == "lora_rank" and a.method == "full"))


def _distance(arch: ModelArch, setup: TrainSetup, gpu: GPU, c: Calibration) -> float:
    d = abs(math.log(count_params(arch).total / c.n_params))
    # batch and sequence length apart: 4 x 512 tokens sits at the host floor like 1 x 512, not like
    # 1 x 2,048 (same tokens, GPU-bound, longer attention)
    d += abs(math.log(setup.batch_size / c.setup.batch_size)) + abs(math.log(setup.seq_len / c.setup.seq_len))
    d += 0.25 * abs(math.log(setup.lora_rank / c.setup.lora_rank)) if setup.method != "full" else 0.0
    d += 0.5 * (setup.grad_checkpointing != c.setup.grad_checkpointing)
    d += 0.5 * (setup.double_quant != c.setup.double_quant and setup.weight_format == "nf4")
    d += 3.0 * (gpu.key != c.gpu)  # another GPU: the utilisation may not carry over
    return d


class TrainFit(BaseModel):
    """The fitted step-time and power law of one fine-tuning method (see `fit_training`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    eff: float = Field(description="achieved fraction of the dense 16-bit peak on the FLOP term")
    traffic: float = Field(default=0.0, ge=0, description="activation traffic multiplier on the byte term")
    overhead_s: float = Field(description="per-step host, launch and optimizer time, seconds")
    gc_overhead_s: float = Field(description="extra per-step host time with gradient checkpointing, seconds")
    sharpness: float = Field(default=1.0, ge=1, description="p of the smooth maximum of host and GPU time")
    linears_exponent: float = Field(default=0.0, ge=0, description="host floor ~ (adapted linears / 100)^k")
    u0: float
    u1: float
    host_factor: dict[str, float] = Field(default_factory=dict, description="per GPU with rows: its host floor")
    n_rows: int
    fit_median_pct_err: float = Field(description="median |error| of step time over the rows fitted")
    borrowed_from: str | None = None


MIN_FIT_ROWS = 10  # two per unknown of the step law


def _lstsq(xs: list[list[float]], ys: list[float]) -> list[float]:
    """Least squares by the normal equations (a handful of unknowns); a tiny ridge keeps a column
    that never varies (e.g. no checkpointed row) from making the system singular."""
    k = len(xs[0])
    a = [[sum(x[i] * x[j] for x in xs) + (1e-9 if i == j else 0.0) for j in range(k)] for i in range(k)]
    b = [sum(x[i] * y for x, y in zip(xs, ys, strict=True)) for i in range(k)]
    for c in range(k):  # Gaussian elimination with partial pivoting
        piv = max(range(c, k), key=lambda r: abs(a[r][c]))
        a[c], a[piv], b[c], b[piv] = a[piv], a[c], b[piv], b[c]
        for r in range(k):
            if r != c and a[c][c]:
                f = a[r][c] / a[c][c]
                a[r] = [v - f * w for v, w in zip(a[r], a[c], strict=True)]
                b[r] -= f * b[c]
    return [b[i] / a[i][i] if a[i][i] else 0.0 for i in range(k)]


def _compute_s(arch: ModelArch, setup: TrainSetup, gpu: GPU) -> float:
    """FLOP time of one micro-step at the full dense peak (the fit scales it by 1 / eff)."""
    return flops_per_token(arch, setup) * setup.tokens_per_micro_step / peak_flops(gpu, setup)


def _passes(setup: TrainSetup) -> int:
    return 3 + (1 if setup.grad_checkpointing else 0)  # forward, two backward GEMMs' worth, recompute


def activation_bytes_per_token(arch: ModelArch, setup: TrainSetup) -> float:
    """Every decoder linear's and the lm_head's input and output in 16 bits, once per pass (module
    docstring): the lm_head's output, the logits, is one vocabulary-wide row per token."""
    per_pass = arch.layers * sum(lin.d_in + lin.d_out for lin in layer_linears(arch)) + arch.hidden + arch.vocab
    return 2.0 * per_pass * _passes(setup)


def _traffic_s(arch: ModelArch, setup: TrainSetup, gpu: GPU) -> float:
    """Activation bytes of one micro-step at the peak bandwidth (the fit scales it by `traffic`)."""
    return activation_bytes_per_token(arch, setup) * setup.tokens_per_micro_step / (gpu.mem_bandwidth_gbs * 1e9)


def memory_floor_s(arch: ModelArch, setup: TrainSetup, gpu: GPU) -> float:
    """Weights read in the stored format once per pass (forward, backward, recompute) at the peak
    bandwidth: no step can be shorter."""
    fmt = catalog.formats().get(setup.weight_format)
    bits = (fmt.weight_bits + fmt.state_bits_per_weight) if fmt else 16
    return count_params(arch).total * bits / 8 * _passes(setup) / (gpu.mem_bandwidth_gbs * 1e9)


def _power_share(gpu: GPU, watts: float) -> float:
    """Board power as a fraction of (limit - idle), the power rule's own scale."""
    return (watts - gpu.idle_power_w) / (gpu.tdp_w - gpu.idle_power_w)


def adapted_linears(arch: ModelArch, setup: TrainSetup) -> int:
    """Decoder linears that carry an adapter (LoRA / QLoRA) or, in full fine-tuning, every one."""
    linears = layer_linears(arch)
    if setup.method != "full":
        linears = [lin for lin in linears if set(lin.members) & set(setup.target_modules)]
    return arch.layers * max(len(linears), 1)


def _smooth_max(host: float, gpu: float, p: float) -> float:
    big = max(host, gpu)
    return big * ((host / big) ** p + (gpu / big) ** p) ** (1 / p) if big > 0 else 0.0


Features = tuple[float, float, float, float]  # compute_s, traffic_s, checkpointing, adapted linears / 100


def _step(x: Features, theta: list[float], host_factor: float = 1.0) -> tuple[float, float]:
    """Step time and GPU time of the law for features `x` (see `_features`)."""
    inv_eff, traffic, oh, gc, p, k = theta
    gpu = x[0] * inv_eff + x[1] * traffic
    return _smooth_max((oh + gc * x[2]) * x[3] ** k * host_factor, gpu, p), gpu


# theta = (1/eff, traffic, overhead, gc_overhead, p, k) from free z: 1/eff = 1 + e^z (eff <= 1,
# never faster than the dense peak), p = 1 + e^z (between the sum and the maximum), the rest >= 0
def _theta(z: list[float]) -> list[float]:
    e = [math.exp(min(max(v, -30.0), 30.0)) for v in z]
    return [1 + e[0], e[1], e[2], e[3], 1 + e[4], e[5]]


def _fit_step(xs: list[Features], steps: list[float],
              shares: list[float | None]) -> tuple[list[float], float, float]:
    """Levenberg-Marquardt, from a few starting points, on two residuals per row: log step time
    (relative error) and, where the row has power, the power share (P - idle) / (limit - idle)
    against u0 + u1 x busy. The power says how busy the GPU was even where the host floor sets the
    step, which is what separates the FLOP term from the byte term across GPUs."""
    ys = [math.log(t) for t in steps]
    npar, nlaw = 8, 6

    def resid(z: list[float]) -> list[float]:
        th = _theta(z[:nlaw])
        out, pw = [], []
        for x, y, sh in zip(xs, ys, shares, strict=True):
            step, t_gpu = _step(x, th)
            out.append(math.log(max(step, 1e-12)) - y)
            if sh is not None:
                pw.append(min(1.0, max(0.0, z[nlaw] + z[nlaw + 1] * min(1.0, t_gpu / step))) - sh)
        return out + pw

    best: tuple[float, list[float]] | None = None
    for p0, t0 in ((0.5, 0.3), (2.0, 0.3), (6.0, 0.3), (0.5, 3.0), (2.0, 3.0), (6.0, 3.0)):
        z, lam = [0.0, math.log(t0), math.log(0.2), math.log(0.1), math.log(p0), math.log(0.5), 0.1, 0.8], 1e-2
        r = resid(z)
        sse = sum(v * v for v in r)
        for _ in range(150):
            cols = []
            for k in range(npar):
                dz = list(z)
                dz[k] += 1e-6
                cols.append([(a - b) / 1e-6 for a, b in zip(resid(dz), r, strict=True)])
            jtj = [[sum(a * b for a, b in zip(ci, cj, strict=True)) for cj in cols] for ci in cols]
            jtr = [sum(a * b for a, b in zip(ci, r, strict=True)) for ci in cols]
            damped = [[jtj[i][j] + (lam * (jtj[i][i] + 1e-6) if i == j else 0.0) for j in range(npar)]
                      for i in range(npar)]
            delta = _solve(damped, [-v for v in jtr])
            z2 = [a + d for a, d in zip(z, delta, strict=True)]
            r2 = resid(z2)
            sse2 = sum(v * v for v in r2)
            if sse2 < sse:
                done = sse - sse2 < 1e-9 * sse  # converged: the step no longer improves the fit
                z, r, sse, lam = z2, r2, sse2, lam / 3
                if done:
                    break
            else:
                lam *= 4
            if lam > 1e8:
                break
        if best is None or sse < best[0]:
            best = (sse, z)
    assert best is not None
    return _theta(best[1][:nlaw]), best[1][nlaw], best[1][nlaw + 1]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """A small square system by Gaussian elimination with partial pivoting."""
    k = len(b)
    m = [row[:] + [v] for row, v in zip(a, b, strict=True)]
    for c in range(k):
        piv = max(range(c, k), key=lambda r: abs(m[r][c]))
        m[c], m[piv] = m[piv], m[c]
        if not m[c][c]:
            continue
        for r in range(k):
            if r != c:
                f = m[r][c] / m[c][c]
                m[r] = [v - f * w for v, w in zip(m[r], m[c], strict=True)]
    return [m[i][k] / m[i][i] if m[i][i] else 0.0 for i in range(k)]


def _features_of(arch: ModelArch, setup: TrainSetup, gpu: GPU) -> Features:
    """What the law reads of a configuration; the host floor scales with the adapted linears
    (each one's kernels are launched every pass)."""
    return (_compute_s(arch, setup, gpu), _traffic_s(arch, setup, gpu), float(setup.grad_checkpointing),
            adapted_linears(arch, setup) / 100)


def _features(c: Calibration) -> Features:
    return _features_of(catalog.resolve_model(c.arch), c.setup, catalog.resolve_gpu(c.gpu))


def _host_factor(xs: list[Features], steps: list[float], theta: list[float]) -> float:
    """The host-floor factor that fits one GPU's rows best (log step time; a grid over 0.5-2x)."""
    def sse(h: float) -> float:
        return sum((math.log(_step(x, theta, h)[0]) - math.log(t)) ** 2 for x, t in zip(xs, steps, strict=True))

    return min((math.exp(i / 100) for i in range(-70, 71)), key=sse)


def fit_training(cal: list[Calibration]) -> dict[str, TrainFit]:
    """Per method, least squares on the measured rows (relative error of step time) of the law in
    the module docstring, then each GPU's host factor on its own rows, then the power:
    (P - idle) / (limit - idle) = u0 + u1 x busy, busy = gpu / step, the inference model's power
    rule (advisor.estimate.physics.board_power). QLoRA's dequantisation is inside QLoRA's own eff,
    traffic and overhead."""
    return _fit_cached(tuple(sorted(cal, key=lambda c: c.row_id)))


@lru_cache(maxsize=64)
def _fit_cached(cal: tuple[Calibration, ...]) -> dict[str, TrainFit]:
    fits: dict[str, TrainFit] = {}
    for method in sorted({c.method for c in cal}):
        rows = [c for c in cal if c.method == method]
        xs = [_features(c) for c in rows]
        steps = [c.step_time_s for c in rows]
        shares = [None if c.power_w is None else _power_share(catalog.resolve_gpu(c.gpu), c.power_w) for c in rows]
        if len(rows) >= MIN_FIT_ROWS:
            theta, u0, u1 = _fit_step(xs, steps, shares)
        else:  # borrowed below; a placeholder so the thin method's own error is still reported
            theta, u0, u1 = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], 0.0, 0.0
        hosts = {}
        for g in sorted({c.gpu for c in rows}):
            sel = [i for i, c in enumerate(rows) if c.gpu == g]
            hosts[g] = _host_factor([xs[i] for i in sel], [steps[i] for i in sel], theta)
        errs = [abs(_step(x, theta, hosts[c.gpu])[0] / c.step_time_s - 1) for c, x in zip(rows, xs, strict=True)]
        errs.sort()
        fits[method] = TrainFit(method=method, eff=1 / theta[0], traffic=theta[1], overhead_s=theta[2],
                                gc_overhead_s=theta[3], sharpness=theta[4], linears_exponent=theta[5], u0=u0,
                                u1=u1, host_factor=hosts,
                                n_rows=len(rows), fit_median_pct_err=100 * errs[len(errs) // 2])
    # five unknowns need more rows than that, over more than one model: a thinner method borrows
    # the law of the best-measured one (its own rows still anchor it, see estimate_step)
    donor = max(fits.values(), key=lambda f: f.n_rows, default=None)
    for m, f in list(fits.items()):
        if donor and f.n_rows < MIN_FIT_ROWS and m != donor.method:
            fits[m] = donor.model_copy(update={"method": m, "n_rows": f.n_rows, "borrowed_from": donor.method})
    return fits


TRAIN_PARAMS = {"eff": "fraction of the dense 16-bit peak on the FLOP term",
                "traffic": "multiplier on the activation bytes' time at peak bandwidth",
                "overhead_s": "seconds per micro-step (host, launches, optimizer)",
                "gc_overhead_s": "extra seconds per micro-step with gradient checkpointing",
                "sharpness": "p of the smooth maximum (host^p + gpu^p)^(1/p)",
                "linears_exponent": "k of the host floor's (adapted linears / 100)^k",
                "u0": "fraction of (limit - idle) drawn at no FLOP work",
                "u1": "fraction of (limit - idle) per unit of the GPU term's share of the step"}
HOST_PARAM = "host_factor@"  # + GPU key: that GPU's host floor relative to the fitted overhead


@lru_cache(maxsize=1)
def shipped_fits() -> dict[str, TrainFit]:
    """The training law per method as calibrated on the shipped rows (measurements/catalog/finetune_params.csv)."""
    by: dict[str, dict] = {}
    for p in catalog.finetune_params():
        d = by.setdefault(p.method, {"method": p.method, "n_rows": p.n_rows, "borrowed_from": p.borrowed_from,
                                     "fit_median_pct_err": p.fit_median_abs_pct_err or 0.0, "host_factor": {}})
        if p.param.startswith(HOST_PARAM):
            d["host_factor"][p.param.removeprefix(HOST_PARAM)] = p.value
        else:
            d[p.param] = p.value
    return {m: TrainFit(**d) for m, d in by.items()}


FIT_FIELDS = ["method", "param", "value", "unit", "n_rows", "fit_median_abs_pct_err", "borrowed_from", "source"]


def fit_rows(fits: dict[str, TrainFit], when: str) -> list[dict]:
    out = []
    for m, f in sorted(fits.items()):
        params = [(name, unit, getattr(f, name)) for name, unit in TRAIN_PARAMS.items()]
        params += [(HOST_PARAM + g, f"host floor on {g} relative to overhead_s, fitted on its own rows", v)
                    for g, v in sorted(f.host_factor.items())]
        for name, unit, value in params:
            how = (f"{f.borrowed_from}'s law: {f.n_rows} {m} rows cannot fit it" if f.borrowed_from else
                   f"least squares over the {f.n_rows} measured {m} fine-tuning rows of the shipped data "
                   "(relative error of step time; power on the rows with power)")
            out.append({"method": m, "param": name, "value": f"{value:.6g}", "unit": unit, "n_rows": f.n_rows,
                        "fit_median_abs_pct_err": f"{f.fit_median_pct_err:.1f}", "borrowed_from": f.borrowed_from or "",
                        "source": f"{how}; python -m advisor.finetune_time, {when}; fit error = median |error| of "
                                  "step time over the rows fitted"})
    return out


def main(argv: list[str] | None = None) -> int:
    """Refit the training law on the shipped fine-tuning rows and write finetune_params.csv (--check: compare)."""
    import argparse
    import csv
    import datetime as dt

    ap = argparse.ArgumentParser(description="calibrate the training performance model on the shipped rows")
    ap.add_argument("--check", action="store_true", help="compare a fresh fit with the shipped file")
    args = ap.parse_args(argv)
    fits = fit_training(calibrations(load_rows(include_local=False)))
    for m, f in sorted(fits.items()):
        hosts = " ".join(f"{g} x{v:.2f}" for g, v in sorted(f.host_factor.items()))
        print(f"{m:<6} n={f.n_rows:>3} eff {f.eff:.3f} traffic x{f.traffic:.1f} overhead {f.overhead_s * 1e3:.0f} ms "
              f"(+{f.gc_overhead_s * 1e3:.0f} ms checkpointed; host {hosts}) p {f.sharpness:.2f} "
              f"u0 {f.u0:.3f} u1 {f.u1:.3f} "
              f"median |err| step {f.fit_median_pct_err:.1f}%" + (f" (law of {f.borrowed_from})" if f.borrowed_from else ""))
    if args.check:
        shipped = shipped_fits()
        bad = [m for m, f in fits.items() if m not in shipped or any(
            abs(getattr(shipped[m], n) - getattr(f, n)) > 0.05 * max(abs(getattr(f, n)), 1e-9) for n in TRAIN_PARAMS)]
        print("shipped calibration matches" if not bad else f"stale: {bad}")
        return 0 if not bad else 1
    path = catalog.CATALOG_DIR / "finetune_params.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=FIT_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(fit_rows(fits, dt.date.today().isoformat()))
    print(f"wrote {path}")
    return 0


def _law(arch: ModelArch, setup: TrainSetup, gpu: GPU, fit: TrainFit) -> tuple[float, float, float, float]:
    """Step time, busy fraction, power and floor of the fitted law (no anchoring). The floor is the
    larger of the FLOP time at the full dense peak and the weights' read time at peak bandwidth."""
    x = _features_of(arch, setup, gpu)
    theta = [1 / fit.eff, fit.traffic, fit.overhead_s, fit.gc_overhead_s, fit.sharpness, fit.linears_exponent]
    step, t_gpu = _step(x, theta, fit.host_factor.get(gpu.key, 1.0))
    floor = max(x[0], memory_floor_s(arch, setup, gpu))
    step = max(step, floor)
    busy = min(1.0, t_gpu / step)
    return step, busy, physics.board_power(gpu, fit.u0, fit.u1, busy), floor


def estimate_step(arch: ModelArch, setup: TrainSetup, gpu: GPU, cal: list[Calibration] | None = None,
                  fits: dict[str, TrainFit] | None = None) -> StepEstimate | None:
    """Step time and energy of `setup` on `gpu`; None when no measured fine-tuning row exists.

    A measured row of the same configuration is answered as measured; anything else goes through
    the step law of the method on the target GPU's own peak, bandwidth and power limit: `fits` when
    given, else the shipped calibration (finetune_params.csv) for the default rows, else the law
    fitted on `cal` (a held-out benchmark passes its own rows and gets a law that never saw the rest)."""
    if fits is None:
        fits = shipped_fits() if cal is None and catalog.finetune_params() else None
    cal = calibrations() if cal is None else cal
    if not cal:
        return None
    tokens = setup.tokens_per_micro_step
    exact = [c for c in cal if c.arch == arch.key and c.gpu == gpu.key and _same_config(setup, c.setup)]
    if exact:
        c = exact[0]
        e = c.energy_j_per_step
        return StepEstimate(gpu=gpu.key, step_time_s=c.step_time_s, tokens_per_s=c.tokens_per_s, power_w=c.power_w,
                            energy_j_per_step=e, j_per_1k_tok=e / tokens * 1000 if e else None,
                            utilisation=c.utilisation, tier="measured", method="measured", confidence="high",
                            row_ids=[c.row_id])
    fits = fit_training(cal) if fits is None else fits
    fit = fits.get(setup.method)
    borrowed = None
    if fit is None:  # no row of this method: the nearest method's law, said in the note
        order = {"qlora": ["lora", "full"], "lora": ["qlora", "full"], "full": ["lora", "qlora"]}[setup.method]
        borrowed = next(m for m in order if m in fits)
        fit = fits[borrowed]
    step, busy, power, floor = _law(arch, setup, gpu, fit)
    step_law = step
    # anchored on the nearest measured row of the method: the law carries the change of model,
    # tokens and GPU, the row its own residual (what the law misses about that configuration)
    pool = [c for c in cal if c.method == fit.method]
    best = min(pool, key=lambda c: _distance(arch, setup, gpu, c))
    b_gpu = catalog.resolve_gpu(best.gpu)
    b_step, b_busy, b_power, _ = _law(catalog.resolve_model(best.arch), best.setup, b_gpu, fit)
    step = max(step * (best.step_time_s / b_step) ** catalog.factor("finetune_anchor_exponent"), floor)
    busy = min(1.0, busy * step_law / step)  # the GPU's work is the law's; an anchored step changes its share
    if best.power_w is not None:
        # the row's power residual as a share of (limit - idle), trusted as far as its step residual:
        # additive, so a row drawing little at the host floor does not scale a GPU-bound estimate down
        shift = _power_share(b_gpu, best.power_w) - _power_share(b_gpu, b_power)
        shift *= catalog.factor("finetune_anchor_exponent") * max(0.0, 1 - abs(busy - b_busy))
        power = physics.board_power(gpu, fit.u0 + shift, fit.u1, busy)
    else:
        power = physics.board_power(gpu, fit.u0, fit.u1, busy)
    energy = power * step
    tok_s = tokens / step
    util = flops_per_token(arch, setup) * tok_s / peak_flops(gpu, setup)
    on_gpu = [c for c in pool if c.gpu == gpu.key]
    inside = bool(on_gpu) and min(c.n_params for c in on_gpu) <= count_params(arch).total <= max(
        c.n_params for c in on_gpu) and min(c.setup.tokens_per_micro_step for c in on_gpu) <= tokens <= max(
        c.setup.tokens_per_micro_step for c in on_gpu)
    if on_gpu and inside and borrowed is None:
        tier: Tier = "interpolated"
        conf: Literal["high", "medium", "low"] = "medium"
    else:
        tier, conf = "extrapolated", ("medium" if on_gpu and borrowed is None else "low")
    how = (f"training performance model ({fit.method}: smooth maximum of a "
           f"{fit.overhead_s * 1e3:.0f} ms per-step host floor and the GPU's work, FLOPs at "
           f"{fit.eff * 100:.0f}% of the dense 16-bit peak + activation bytes at peak bandwidth x{fit.traffic:.1f}, "
           f"fitted on {fit.n_rows} measured rows, median fit error {fit.fit_median_pct_err:.0f}%)")
    if fit.borrowed_from:
        how += f"; {fit.n_rows} {fit.method} rows are too few to fit, so {fit.borrowed_from}'s law anchored on them"
    if step == floor:
        bound = "compute" if _compute_s(arch, setup, gpu) >= memory_floor_s(arch, setup, gpu) else "memory bandwidth"
    else:
        bound = "GPU work" if busy >= 0.5 else "host launch"
    note = (f"{flops_per_token(arch, setup) / 1e9:.1f} GFLOP per trained token (rule 'training FLOPs: 2F / 3F'); "
            f"step {bound}-bound, GPU busy {busy * 100:.0f}%; power between idle and the limit as in inference")
    if borrowed:
        note += f"; no {setup.method} row yet, borrowed from {borrowed}"
    return StepEstimate(gpu=gpu.key, step_time_s=step, tokens_per_s=tok_s, power_w=power, energy_j_per_step=energy,
                        j_per_1k_tok=energy / tokens * 1000, utilisation=util, tier=tier, method=how, confidence=conf,
                        row_ids=sorted(c.row_id for c in pool), note=note)


class Workload(BaseModel):
    """How much the run trains on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    examples: int | None = Field(default=None, ge=1)
    avg_tokens: float | None = Field(default=None, gt=0)
    tokens: float | None = Field(default=None, gt=0, description="tokens per epoch, when given directly")
    epochs: float = Field(default=1, gt=0)

    def tokens_per_epoch(self, seq_len: int) -> float:
        if self.tokens is not None:
            return self.tokens
        if self.examples is None or self.avg_tokens is None:
            raise ValueError("give the dataset as examples + average tokens, or as total tokens")
        return self.examples * min(self.avg_tokens, seq_len)  # longer examples are truncated

    def total_tokens(self, seq_len: int) -> float:
        return self.tokens_per_epoch(seq_len) * self.epochs


def cheapest_price(gpu_key: str, override: float | None = None) -> GPUPrice | None:
    if override is not None:
        import datetime as dt

        return GPUPrice(gpu=gpu_key, provider="user", usd_per_hour=override, as_of=dt.date.today(),
                        source="given by the user")
    prices = [p for p in catalog.gpu_prices() if p.gpu == gpu_key]
    return min(prices, key=lambda p: (p.usd_per_hour, -p.as_of.toordinal())) if prices else None


class RunEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu: str
    step: StepEstimate
    tokens: float
    micro_steps: int
    optimizer_steps: int
    hours: float
    gpu_energy_kwh: float | None
    cost: CostLine | None = Field(default=None, description="electricity, facility kWh and CO2 (derive.cost_line)")
    rental_usd: float | None = None
    price: GPUPrice | None = None

    @property
    def total_usd(self) -> float | None:
        """Renting: the hourly price (electricity included); an own GPU: the electricity."""
        if self.rental_usd is not None:
            return self.rental_usd
        return self.cost.usd if self.cost else None


def estimate_run(arch: ModelArch, setup: TrainSetup, gpu: GPU, work: Workload, region: Region,
                 pue: float | None = None, price_override: float | None = None,
                 cal: list[Calibration] | None = None, fits: dict[str, TrainFit] | None = None) -> RunEstimate | None:
    step = estimate_step(arch, setup, gpu, cal, fits)
    if step is None:
        return None
    tokens = work.total_tokens(setup.seq_len)
    micro = math.ceil(tokens / setup.tokens_per_micro_step)
    opt_steps = math.ceil(micro / setup.grad_accum)
    seconds = tokens / step.tokens_per_s
    hours = seconds / 3600
    cost = None
    gpu_kwh = None
    if step.j_per_1k_tok is not None:
        pue_v = derive.pue_for(region, pue)
        gpu_kwh = derive.energy_kwh(step.j_per_1k_tok, tokens, 1.0)
        cost = derive.cost_line(f"{setup.method} on {gpu.key}", step.j_per_1k_tok, tokens, region.price_usd_kwh,
                                region.grid_gco2_kwh, pue_v,
                                basis=f"{tokens:,.0f} trained tokens, PUE {pue_v:g}, {region.name} electricity and grid")
    price = cheapest_price(gpu.key, price_override)
    rental = hours * price.usd_per_hour if price else None
    return RunEstimate(gpu=gpu.key, step=step, tokens=tokens, micro_steps=micro, optimizer_steps=opt_steps,
                       hours=hours, gpu_energy_kwh=gpu_kwh, cost=cost, rental_usd=rental, price=price)


if __name__ == "__main__":
    raise SystemExit(main())
