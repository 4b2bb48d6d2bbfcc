"""The serving performance model: a continuous-batching server (vLLM) at a concurrency, on N GPUs.

A serving engine runs one decode step for every running sequence at once and mixes the prompts of
new requests into those steps (chunked prefill). For a configuration (GPU, GPU count, model shape,
format, concurrency B, the task's prompt and output lengths) one step takes

    step = fixed overhead + per-layer overhead (more with several GPUs: collectives per layer)
           + the memory time (weights the batch touches: the distinct experts its tokens route to
             under uniform routing, and the KV cache of B sequences at mid-answer context, over
             N x bandwidth x efficiency)
           + the compute time (B decode tokens plus the prompts' tokens amortised over the answer,
             times the data-parallel replicas, which step in lockstep; over N x the format's dense
             tensor rate x efficiency)

and the inter-token latency is one step, throughput B / step, power per GPU between idle and the
limit as a function of how much of the step is compute and memory traffic, and J/token = N x power x
step / B. The efficiencies, overheads, power coefficients and each task's effective prompt length
are fitted by least squares (log throughput and log J/token) on the measured serving rows
(`fit`, written to measurements/catalog/serving_params.csv by `python -m advisor.estimate.serving`).

The parameters are shared by every GPU (fractions of each GPU's own specs), so the model transfers
to a GPU without serving rows (an A100) as a named cross-GPU transfer; `anchor` then corrects a
prediction by the measured/modelled ratio of the nearest measured configurations. Pure Python.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from statistics import median

from advisor.estimate.golden import golden_section
from measurements import catalog
from measurements.schema import GPU, MeasurementRow, ModelArch, WeightFormat

# frameworks this model answers (the HF regimes go through advisor.estimate.physics)
SERVING_FRAMEWORKS = ("vllm",)
GB = 1e9
PARAMS_FILE = "serving_params.csv"

# the parameters, their search limits and units; "prompt:<workload>" are per task
LIMITS = {
    "eff_bw": (0.05, 1.0), "eff_compute": (0.02, 1.0), "oh_step_ms": (0.01, 30.0), "oh_layer_ms": (1e-4, 1.0),
    "comm_layer_ms": (1e-4, 1.0), "eff_kv": (0.05, 1.0), "overlap": (1.0, 6.0), "u0": (0.0, 1.0), "u_compute": (0.0, 3.0), "u_memory": (0.0, 3.0),
    "fp8_compute": (0.1, 2.0), "mxfp4_compute": (0.05, 2.0), "fp8_bw": (0.2, 2.0), "mxfp4_bw": (0.2, 2.0),
    "moe_compute": (0.05, 2.0), "moe_bw": (0.2, 2.0), "oh_seq_us": (0.01, 200.0),
}
# per-GPU multipliers (bandwidth, compute and power utilisation): fitted for each GPU with rows; a
# GPU without serving rows gets their geometric mean (the cross-GPU transfer)
PER_GPU = {"bw": (0.5, 2.0), "compute": (0.3, 3.0), "power": (0.3, 2.0), "kv": (0.2, 5.0)}
PROMPT_LIMITS = (1.0, 20000.0)
UNITS = {
    "eff_bw": "fraction of peak memory bandwidth", "eff_compute": "fraction of peak dense tensor rate",
    "oh_step_ms": "ms per decode step", "oh_layer_ms": "ms per layer per step",
    "comm_layer_ms": "ms per layer per step with more than one GPU (collectives)",
    "eff_kv": "fraction of peak memory bandwidth reading the KV cache (paged attention)",
    "overlap": "p of the p-norm combining memory and compute time (1: no overlap, large: full overlap)",
    "u0": "fraction of (limit - idle) when serving", "u_compute": "fraction of (limit - idle) per unit of compute share",
    "u_memory": "fraction of (limit - idle) per unit of memory-traffic share",
    "fp8_compute": "FP8 compute efficiency relative to 16-bit", "mxfp4_compute": "MXFP4 compute efficiency relative to 16-bit",
    "fp8_bw": "FP8 bandwidth efficiency relative to 16-bit", "mxfp4_bw": "MXFP4 bandwidth efficiency relative to 16-bit",
    "moe_compute": "compute efficiency of a mixture of experts relative to a dense model (small per-expert matmuls)",
    "moe_bw": "bandwidth efficiency of a mixture of experts relative to a dense model",
    "oh_seq_us": "microseconds per running sequence per step (scheduling, sampling)",
    "bw": "this GPU's bandwidth efficiency relative to the shared one",
    "compute": "this GPU's compute efficiency relative to the shared one",
    "power": "this GPU's power utilisation relative to the shared one",
    "kv": "this GPU's KV-cache (attention kernel) bandwidth efficiency relative to the shared one",
    "prompt": "effective prompt tokens per request of the task (fitted: the task's prompts are not published per row)",
}
LOG_SCALE = {"eff_kv", "eff_bw", "eff_compute", "oh_step_ms", "oh_layer_ms", "comm_layer_ms", "fp8_compute", "mxfp4_compute",
             "fp8_bw", "mxfp4_bw", "moe_compute", "moe_bw", "oh_seq_us"}
ITERS = 18  # golden-section narrowings per parameter and sweep (bracket shrinks 0.618**18, about 2e-4)
# coordinate descent converges slowly along correlated parameters (efficiencies and overheads): four
# sweeps left the loss of a one-GPU fit 21-32% above where it settles; sweeps go on until one gains
# less than SWEEP_TOL of the loss
MAX_SWEEPS = 40
SWEEP_TOL = 0.002
START = {"eff_kv": 0.5, "overlap": 1.5, "eff_bw": 0.6, "eff_compute": 0.4, "oh_step_ms": 2.0, "oh_layer_ms": 0.01, "comm_layer_ms": 0.02, "u0": 0.3,
         "u_compute": 0.5, "u_memory": 0.3, "fp8_compute": 1.0, "mxfp4_compute": 0.5, "fp8_bw": 1.0, "mxfp4_bw": 1.0,
         "moe_compute": 1.0, "moe_bw": 1.0, "oh_seq_us": 5.0}
Params = Mapping[str, float]


# ---------------------------------------------------------------------------------------------
# one configuration


@dataclass(frozen=True)
class Setup:
    gpu: GPU
    arch: ModelArch
    fmt: WeightFormat
    gpu_count: int
    concurrency: float          # sequences running at once (vLLM's max_num_seqs, or the batch it ran)
    workload: str
    gen_tokens: float           # output tokens per request
    prompt_tokens: float | None = None  # None: the task's fitted effective prompt length
    data_parallel: int = 1      # replicas of attention (DP attention with expert parallel MoE layers)


def _weight_bits(fmt: WeightFormat) -> float:
    return fmt.weight_bits + fmt.state_bits_per_weight


def _dense_bits(fmt: WeightFormat) -> float:
    return _weight_bits(fmt) if fmt.quantised == "all" else 16.0


@lru_cache(maxsize=256)
def layer_params(a: ModelArch) -> tuple[float, float, int, int]:
    """(attention params per layer, params per expert per layer, experts, experts per token),
    fitted to the catalog's total and active counts where the shapes alone would miss them."""
    attn = float(a.hidden * a.heads * a.head_dim * 2 + a.hidden * a.kv_heads * a.head_dim * 2)
    e, k = a.num_experts or 1, a.experts_per_token or 1
    embed = a.vocab * a.hidden * (1 if a.tied_embeddings else 2)
    # per-expert size from the catalog's parameter counts (shared experts, hybrid layers and MLA
    # change the shapes; the totals are the published facts)
    body_total = max(a.params_b * GB - embed, 1.0)
    body_active = max(a.active_params_b * GB - embed, 1.0)
    if e > k and body_total > body_active:
        expert = (body_total - body_active) / (a.layers * (e - k))
        attn = max(body_active / a.layers - k * expert, 0.0)
    else:
        attn = min(attn, body_total / a.layers)
        expert = body_total / a.layers - attn
    return attn, expert, e, k


@dataclass(frozen=True)
class Prediction:
    itl_s: float
    tok_s: float
    power_w: float
    j_per_1k: float
    batch: float
    t_memory_s: float
    t_compute_s: float
    t_overhead_s: float
    prompt_tokens: float

    @property
    def binding(self) -> str:
        m = max(self.t_memory_s, self.t_compute_s, self.t_overhead_s)
        return ("memory bandwidth" if m == self.t_memory_s else "compute" if m == self.t_compute_s
                else "scheduling overhead")

    def describe(self) -> str:
        return (f"serving performance model: decode step {self.itl_s * 1e3:.1f} ms at {self.batch:g} sequences "
                f"(memory {self.t_memory_s * 1e3:.1f} + compute {self.t_compute_s * 1e3:.1f} + overhead "
                f"{self.t_overhead_s * 1e3:.1f} ms; {self.binding} dominates), prompts of {self.prompt_tokens:,.0f} tokens")


def gpu_param(p: Params, name: str, gpu: str) -> float:
    """A per-GPU multiplier: the GPU's own, else the geometric mean over the GPUs fitted."""
    v = p.get(f"{name}:{gpu}")
    if v is not None:
        return v
    others = [x for k, x in p.items() if k.startswith(f"{name}:")]
    return _geo(others) if others else 1.0


def compute_rate(gpu: GPU, fmt: WeightFormat) -> float:
    """Dense tensor FLOP/s a serving engine runs the format's matmuls at: FP8 weights and
    activations at the FP8 rate where the GPU has one; everything else at the 16-bit rate."""
    if fmt.key == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops * 1e12
    return (gpu.bf16_tflops or gpu.fp16_tflops) * 1e12


def experts_touched(experts: int, per_token: int, tokens: float) -> float:
    """Distinct experts (per layer) that `tokens` tokens route to, each picking `per_token` of
    `experts`: with independent, uniform routing an expert is missed by every token with probability
    (1 - k/e)^T. Counting every pick as a new expert, min(e, T x k), would read all 128 experts of a
    top-1 model at 128 sequences where about 81 are expected. A dense model reads its one 'expert'."""
    if experts <= per_token:
        return float(experts)
    return experts * (1.0 - math.pow(1.0 - per_token / experts, tokens))


def predict(s: Setup, p: Params) -> Prediction:
    a, g, f, n = s.arch, s.gpu, s.fmt, s.gpu_count
    b = max(s.concurrency, 1.0)
    prompt = s.prompt_tokens if s.prompt_tokens is not None else p.get(f"prompt:{s.workload}", p.get("prompt:*", 512.0))
    attn, expert, e, k = layer_params(a)
    # prompts mixed into the steps: each answer's prompt is processed once over its gen_tokens steps
    pre_tok = b * prompt / max(s.gen_tokens, 1.0)
    touched = experts_touched(e, k, b + pre_tok)
    wbits, dbits = _weight_bits(f), _dense_bits(f)
    attn_bits = 16.0 if f.key == "mxfp4" else wbits  # gpt-oss: only the experts are MXFP4
    # attention and the LM head are split over the GPUs of one attention replica; experts over all
    attn_split = max(n // max(s.data_parallel, 1), 1)
    w_bytes = a.layers * (attn * attn_bits / attn_split + expert * touched * wbits / n) / 8
    w_bytes += a.vocab * a.hidden * dbits / 8 / attn_split
    ctx = prompt + s.gen_tokens / 2
    kv_bytes = b * ctx * a.kv_elems_per_token() * f.kv_bits / 8 / n
    bw = g.mem_bandwidth_gbs * GB
    moe = e > k
    eff_bw = (p["eff_bw"] * p.get(f"{f.key}_bw", 1.0) * (p.get("moe_bw", 1.0) if moe else 1.0)
              * gpu_param(p, "bw", g.key))
    t_mem = w_bytes / (bw * min(eff_bw, 1.0)) + kv_bytes / (bw * min(p["eff_kv"] * gpu_param(p, "kv", g.key), 1.0))
    active = a.active_params_b * GB
    # attention replicas (DP attention) step in lockstep, synchronised by the expert layers: a prompt
    # chunk on one replica stalls the others, so the prompts' tokens run at one replica's rate
    flops = 2 * active * (b + pre_tok * max(s.data_parallel, 1)) + 4 * a.layers * a.heads * a.head_dim * ctx * b
    eff_c = (p["eff_compute"] * p.get(f"{f.key}_compute", 1.0) * (p.get("moe_compute", 1.0) if moe else 1.0)
             * gpu_param(p, "compute", g.key))
    t_comp = flops / n / (compute_rate(g, f) * min(eff_c, 1.0))
    t_oh = (p["oh_step_ms"] + a.layers * (p["oh_layer_ms"] + (p["comm_layer_ms"] if n > 1 else 0.0))) * 1e-3 \
        + p.get("oh_seq_us", 0.0) * 1e-6 * b
    q = p["overlap"]
    step = t_oh + (t_mem ** q + t_comp ** q) ** (1 / q)
    util = (p["u0"] + p["u_compute"] * t_comp / step + p["u_memory"] * t_mem / step) * gpu_param(p, "power", g.key)
    util = min(1.0, max(0.0, util))
    power = (g.idle_power_w + (g.tdp_w - g.idle_power_w) * util) * n
    tok_s = b / step
    return Prediction(itl_s=step, tok_s=tok_s, power_w=power, j_per_1k=power / tok_s * 1000, batch=b, t_memory_s=t_mem,
                      t_compute_s=t_comp, t_overhead_s=t_oh, prompt_tokens=prompt)


def bounds_tok_s(s: Setup) -> float:
    """The most tokens/s physics allows: the weights read once per step at peak bandwidth and the
    FLOPs at the peak tensor rate, on N GPUs (no efficiency, no overhead, no prompts)."""
    a, f, n = s.arch, s.fmt, s.gpu_count
    attn, expert, e, k = layer_params(a)
    b = max(s.concurrency, 1.0)
    w_bytes = a.layers * (attn + expert * experts_touched(e, k, b)) * min(_weight_bits(f), 16.0) / 8
    t_mem = w_bytes / n / (s.gpu.mem_bandwidth_gbs * GB)
    t_comp = 2 * a.active_params_b * GB * b / n / compute_rate(s.gpu, f)
    return b / max(t_mem, t_comp)


# ---------------------------------------------------------------------------------------------
# the measured rows


@dataclass(frozen=True)
class Obs:
    """A measured serving row as model input."""

    row: MeasurementRow
    setup: Setup
    j_per_1k: float
    tok_s: float

    @property
    def model(self) -> str:
        return self.setup.arch.key

    @property
    def gpu(self) -> str:
        return self.setup.gpu.key


def workload_of(r: MeasurementRow) -> str:
    return r.workload or "chat"


def observations(rows: Iterable[MeasurementRow], framework: str = "vllm") -> list[Obs]:
    out = []
    fmts = catalog.formats()
    for r in rows:
        if (r.kind != "measured" or not r.is_evidence or r.task != "inference" or (r.framework or "hf-eager") != framework
                or not r.energy_j_per_1k_tok or not r.throughput_tok_s or r.precision not in fmts):
            continue
        a = catalog.model_by_hub_id(r.model_id)
        if a is None:
            try:
                a = catalog.resolve_model(r.model_id)
            except catalog.UnknownName:
                continue
        try:
            g = catalog.gpu(r.gpu)
        except (catalog.UnknownName, KeyError):
            continue
        s = Setup(gpu=g, arch=a, fmt=fmts[r.precision], gpu_count=r.gpu_count,
                  concurrency=float(r.max_num_seqs or r.batch_size), workload=workload_of(r),
                  gen_tokens=float(r.mean_output_tokens or r.gen_tokens or catalog.factor("default_gen_tokens")),
                  prompt_tokens=float(r.prompt_tokens) if r.prompt_tokens else None,
                  data_parallel=r.data_parallel or 1)
        out.append(Obs(r, s, r.energy_j_per_1k_tok, r.throughput_tok_s))
    return out


def _geo(vals: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


# ---------------------------------------------------------------------------------------------
# calibration


def _loss(obs: Sequence[Obs], p: Params) -> float:
    s = 0.0
    for o in obs:
        pr = predict(o.setup, p)
        s += math.log(pr.tok_s / o.tok_s) ** 2 + math.log(pr.j_per_1k / o.j_per_1k) ** 2
    return s


def _fit_one(rows: Sequence[Obs], p: dict[str, float], key: str, lim: tuple[float, float], log: bool) -> float:
    """The value of one parameter that minimises the loss over `rows`, the others held."""
    return golden_section(lambda v: _loss(rows, {**p, key: v}), *lim, log=log, iters=ITERS)


def fit(obs: Sequence[Obs], sweeps: int = MAX_SWEEPS, tol: float = SWEEP_TOL) -> dict[str, float]:
    """Coordinate descent on the parameters (golden-section search within physical limits),
    minimising squared log errors of throughput and J/token over `obs`, sweep after sweep until one
    lowers the loss by less than the fraction `tol` (or after `sweeps`)."""
    p: dict[str, float] = dict(START)
    fmts = {o.setup.fmt.key for o in obs}
    names = [n for n in LIMITS if not (n.split("_")[0] in ("fp8", "mxfp4") and n.split("_")[0] not in fmts)]
    for w in sorted({o.setup.workload for o in obs}):
        p[f"prompt:{w}"] = 512.0
    by_task: dict[str, list[Obs]] = defaultdict(list)
    for o in obs:
        by_task[o.setup.workload].append(o)
    by_gpu: dict[str, list[Obs]] = defaultdict(list)
    for o in obs:
        by_gpu[o.gpu].append(o)
    for g in by_gpu:
        for n in PER_GPU:
            p[f"{n}:{g}"] = 1.0
    last = math.inf
    for _ in range(sweeps):
        cur = _loss(obs, p)
        if last - cur < tol * cur:
            break
        last = cur
        for g, rows_g in by_gpu.items():
            for n, lim in PER_GPU.items():
                key = f"{n}:{g}"
                p[key] = _fit_one(rows_g, p, key, lim, log=True)
        for n in names:
            p[n] = _fit_one(obs, p, n, LIMITS[n], log=n in LOG_SCALE)
        for w, rows in by_task.items():
            key = f"prompt:{w}"
            p[key] = _fit_one(rows, p, key, PROMPT_LIMITS, log=True)
    # a task not in the rows gets the geometric mean of the fitted ones
    prompts = [v for k, v in p.items() if k.startswith("prompt:")]
    p["prompt:*"] = _geo(prompts) if prompts else 512.0
    return {k: v for k, v in p.items() if k in names or ":" in k}


FIELDS = ["framework", "param", "value", "unit", "n_rows", "fit_median_abs_pct_err", "source"]


def _params_path() -> Path:
    return catalog.CATALOG_DIR / PARAMS_FILE


@lru_cache(maxsize=1)
def shipped_params() -> dict[str, dict[str, float]]:
    """framework -> parameters, from measurements/catalog/serving_params.csv."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for r in catalog.serving_params():
        out[r.framework][r.param] = r.value
    return dict(out)


def fit_error(obs: Sequence[Obs], p: Params) -> float:
    return median(abs(predict(o.setup, p).j_per_1k / o.j_per_1k - 1) * 100 for o in obs)


def main(argv: list[str] | None = None) -> int:
    from measurements import store

    ap = argparse.ArgumentParser(description="Calibrate the serving performance model on the shipped serving rows.")
    ap.add_argument("--check", action="store_true", help="compare a fresh fit with the shipped file")
    args = ap.parse_args(argv)
    rows = store.load_rows(include_local=False)
    out_rows = []
    fresh: dict[str, dict[str, float]] = {}
    for fw in SERVING_FRAMEWORKS:
        obs = observations(rows, fw)
        if not obs:
            continue
        p = fit(obs)
        fresh[fw] = p
        err = fit_error(obs, p)
        print(f"{fw}: {len(obs)} rows, in-sample median |error| of J/token {err:.1f}%")
        when = dt.date.today().isoformat()
        for k, v in sorted(p.items()):
            unit = UNITS[k.split(":")[0]]
            out_rows.append({"framework": fw, "param": k, "value": f"{v:.6g}", "unit": unit, "n_rows": len(obs),
                             "fit_median_abs_pct_err": f"{err:.1f}",
                             "source": f"least squares (log throughput and log J/token) over the {len(obs)} measured {fw} "
                                       f"serving rows of the shipped data; python -m advisor.estimate.serving, {when}"})
    if args.check:
        shipped = shipped_params()
        bad = [(fw, k) for fw, p in fresh.items() for k, v in p.items()
               if k not in shipped.get(fw, {}) or abs(shipped[fw][k] / v - 1) > 0.05]
        print("shipped calibration matches" if not bad else f"stale: {bad}")
        return 0 if not bad else 1
    with _params_path().open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(out_rows)
    print(f"wrote {_params_path()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Obs", "Prediction", "Setup", "bounds_tok_s", "experts_touched", "fit", "observations", "predict", "replace", "shipped_params"]
