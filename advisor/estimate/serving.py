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
prediction by the measured/modelled ratio of the nearest measured configurations. numpy (a pandas
dependency, so in the core install) evaluates the rows of a fit as columns.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from advisor.estimate.golden import golden_section
from measurements import catalog
from measurements.schema import GPU, MeasurementRow, ModelArch, WeightFormat

if TYPE_CHECKING:  # numpy is imported where the model is evaluated: the first answer need not load it
    import numpy as np

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


# the shared efficiency a per-GPU multiplier alone scales; their product is clamped at 1 (the GPU's
# peak). Bandwidth and compute multipliers also meet the format's and MoE factors, so a value above
# 1 / eff_bw still tells on FP8 rows: only the KV multiplier has a point past which nothing changes.
SCALES = {"kv": "eff_kv"}


def gpu_param(p: Params, name: str, gpu: str) -> float:
    """A per-GPU multiplier: the GPU's own, else the geometric mean over the GPUs fitted, each taken
    at most up to where the product with its shared efficiency reaches the peak. Above that the fit
    cannot tell values apart (kv:h100_sxm sits at its search limit, 5.0, where 1.76 already reaches
    the peak), and the raw value would hand a GPU without rows more than its fitted GPUs showed."""
    v = p.get(f"{name}:{gpu}")
    if v is not None:
        return v
    base = p.get(SCALES.get(name, ""))
    cap = 1.0 / base if base else math.inf
    others = [min(x, cap) for k, x in p.items() if k.startswith(f"{name}:")]
    return _geo(others) if others else 1.0


def compute_rate(gpu: GPU, fmt: WeightFormat) -> float:
    """Dense tensor FLOP/s a serving engine runs the format's matmuls at: FP8 weights and
    activations at the FP8 rate where the GPU has one; everything else at the 16-bit rate."""
    if fmt.key == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops * 1e12
    return (gpu.bf16_tflops or gpu.fp16_tflops) * 1e12


Num = TypeVar("Num", float, "np.ndarray")


def experts_touched(experts: Num, per_token: Num, tokens: Num) -> Num:
    """Distinct experts (per layer) that `tokens` tokens route to, each picking `per_token` of
    `experts`: with independent, uniform routing an expert is missed by every token with probability
    (1 - k/e)^T. Counting every pick as a new expert, min(e, T x k), would read all 128 experts of a
    top-1 model at 128 sequences where about 81 are expected. A dense model (e = k = 1) reads its one
    MLP. Numbers or numpy arrays."""
    return cast(Num, experts * (1.0 - (1.0 - per_token / experts) ** tokens))


class _Scalars:
    """The few array functions the model uses, for one configuration in plain floats: an answer
    evaluates the model without loading numpy (the first answer's start-up time)."""

    @staticmethod
    def where(cond: bool, a: float, b: float) -> float:
        return a if cond else b

    minimum, maximum = staticmethod(min), staticmethod(max)
    isnan = staticmethod(math.isnan)

    @staticmethod
    def clip(v: float, lo: float, hi: float) -> float:
        return min(hi, max(lo, v))


@dataclass(frozen=True)
class Columns:
    """Setups as columns: numpy arrays for a fit (every row of a sweep in one pass), plain floats
    for one configuration; `evaluate` runs the same formulas on either."""

    num: dict[str, Any]
    workload: list[str]        # per row
    gpu: list[str]
    fmt: list[str]
    fixed_prompt: Any          # the row's own prompt length, NaN where the task's fitted one applies
    xp: Any                    # numpy, or _Scalars for one configuration

    @staticmethod
    def of(setups: Sequence[Setup], vector: bool = True) -> Columns:
        cols: dict[str, list[float]] = defaultdict(list)
        fixed = []
        for s in setups:
            a, f = s.arch, s.fmt
            attn, expert, e, k = layer_params(a)
            wbits = _weight_bits(f)
            vals = {
                "layers": a.layers, "attn": attn, "expert": expert, "e": e, "k": k, "wbits": wbits,
                "dbits": _dense_bits(f), "attn_bits": 16.0 if f.key == "mxfp4" else wbits,  # gpt-oss: only the experts are MXFP4
                "n": s.gpu_count, "dp": max(s.data_parallel, 1), "b": max(s.concurrency, 1.0), "gen": max(s.gen_tokens, 1.0),
                "gen_raw": s.gen_tokens, "lm_head": a.vocab * a.hidden, "kv_elems": a.kv_elems_per_token(), "kv_bits": f.kv_bits,
                "bw": s.gpu.mem_bandwidth_gbs * GB, "rate": compute_rate(s.gpu, f), "active": a.active_params_b * GB,
                "attn_flops": 4 * a.layers * a.heads * a.head_dim, "moe": float(e > k), "idle": s.gpu.idle_power_w,
                "tdp": s.gpu.tdp_w,
            }
            for key, v in vals.items():
                cols[key].append(float(v))
            fixed.append(math.nan if s.prompt_tokens is None else s.prompt_tokens)
        names: dict[str, list[str]] = {"workload": [s.workload for s in setups], "gpu": [s.gpu.key for s in setups],
                                       "fmt": [s.fmt.key for s in setups]}
        if not vector:
            if len(setups) != 1:
                raise ValueError("plain-float columns hold exactly one configuration")
            return Columns(num={key: v[0] for key, v in cols.items()}, fixed_prompt=fixed[0], xp=_Scalars, **names)
        import numpy as np

        return Columns(num={key: np.asarray(v) for key, v in cols.items()}, fixed_prompt=np.asarray(fixed), xp=np, **names)

    def per_row(self, values: Sequence[str], f: Callable[[str], float]) -> Any:
        """A parameter that depends on a categorical column (task, GPU, format), row by row."""
        if self.xp is _Scalars:
            return f(values[0])
        memo = {v: f(v) for v in set(values)}
        return self.xp.asarray([memo[v] for v in values])


def evaluate(c: Columns, p: Params) -> dict[str, Any]:
    """The model over every row of `c`: step time and its parts, power, throughput and J/1k tokens
    (arrays, or floats for plain-float columns)."""
    xp = c.xp  # numpy, or the float shim
    x = c.num
    b, n, dp = x["b"], x["n"], x["dp"]
    task_prompt = c.per_row(c.workload, lambda w: p.get(f"prompt:{w}", p.get("prompt:*", 512.0)))
    prompt = xp.where(xp.isnan(c.fixed_prompt), task_prompt, c.fixed_prompt)
    # prompts mixed into the steps: each answer's prompt is processed once over its gen_tokens steps
    pre_tok = b * prompt / x["gen"]
    touched = experts_touched(x["e"], x["k"], b + pre_tok)
    # attention and the LM head are split over the GPUs of one attention replica; experts over all
    attn_split = xp.maximum(n // dp, 1.0)
    w_bytes = x["layers"] * (x["attn"] * x["attn_bits"] / attn_split + x["expert"] * touched * x["wbits"] / n) / 8
    w_bytes = w_bytes + x["lm_head"] * x["dbits"] / 8 / attn_split
    ctx = prompt + x["gen_raw"] / 2
    kv_bytes = b * ctx * x["kv_elems"] * x["kv_bits"] / 8 / n
    moe = x["moe"] > 0
    eff_bw = (p["eff_bw"] * c.per_row(c.fmt, lambda k: p.get(f"{k}_bw", 1.0)) * xp.where(moe, p.get("moe_bw", 1.0), 1.0)
              * c.per_row(c.gpu, lambda g: gpu_param(p, "bw", g)))
    eff_kv = p["eff_kv"] * c.per_row(c.gpu, lambda g: gpu_param(p, "kv", g))
    t_mem = w_bytes / (x["bw"] * xp.minimum(eff_bw, 1.0)) + kv_bytes / (x["bw"] * xp.minimum(eff_kv, 1.0))
    # attention replicas (DP attention) step in lockstep, synchronised by the expert layers: a prompt
    # chunk on one replica stalls the others, so the prompts' tokens run at one replica's rate
    flops = 2 * x["active"] * (b + pre_tok * dp) + x["attn_flops"] * ctx * b
    eff_c = (p["eff_compute"] * c.per_row(c.fmt, lambda k: p.get(f"{k}_compute", 1.0))
             * xp.where(moe, p.get("moe_compute", 1.0), 1.0) * c.per_row(c.gpu, lambda g: gpu_param(p, "compute", g)))
    t_comp = flops / n / (x["rate"] * xp.minimum(eff_c, 1.0))
    t_oh = (p["oh_step_ms"] + x["layers"] * (p["oh_layer_ms"] + xp.where(n > 1, p["comm_layer_ms"], 0.0))) * 1e-3 \
        + p.get("oh_seq_us", 0.0) * 1e-6 * b
    q = p["overlap"]
    step = t_oh + (t_mem ** q + t_comp ** q) ** (1 / q)
    util = (p["u0"] + p["u_compute"] * t_comp / step + p["u_memory"] * t_mem / step) * c.per_row(
        c.gpu, lambda g: gpu_param(p, "power", g))
    util = xp.clip(util, 0.0, 1.0)
    power = (x["idle"] + (x["tdp"] - x["idle"]) * util) * n
    tok_s = b / step
    return {"step": step, "tok_s": tok_s, "power": power, "j_per_1k": power / tok_s * 1000, "b": b,
            "t_mem": t_mem, "t_comp": t_comp, "t_oh": t_oh, "prompt": prompt}


def predict(s: Setup, p: Params) -> Prediction:
    r = {k: float(v) for k, v in evaluate(Columns.of([s], vector=False), p).items()}
    return Prediction(itl_s=r["step"], tok_s=r["tok_s"], power_w=r["power"], j_per_1k=r["j_per_1k"], batch=r["b"],
                      t_memory_s=r["t_mem"], t_compute_s=r["t_comp"], t_overhead_s=r["t_oh"], prompt_tokens=r["prompt"])


def bounds_tok_s(s: Setup) -> float:
    """The most tokens/s physics allows: the weights read once per step at peak bandwidth and the
    FLOPs at the peak tensor rate, on N GPUs (no efficiency, no overhead, no prompts)."""
    a, f, n = s.arch, s.fmt, s.gpu_count
    attn, expert, e, k = layer_params(a)
    b = max(s.concurrency, 1.0)
    w_bytes = a.layers * (attn + expert * experts_touched(e, k, b)) * min(_weight_bits(f), 16.0) / 8
    t_mem = w_bytes / n / (s.gpu.mem_bandwidth_gbs * GB)
    t_comp = 2 * a.active_params_b * GB * b / n / compute_rate(s.gpu, f)
    return float(b / max(t_mem, t_comp))


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


@dataclass(frozen=True)
class Sample:
    """Observations as model columns and their measured logs, built once per fit."""

    cols: Columns
    log_tok: np.ndarray
    log_j: np.ndarray

    @staticmethod
    def of(obs: Sequence[Obs]) -> Sample:
        import numpy as np

        return Sample(Columns.of([o.setup for o in obs]), np.log([o.tok_s for o in obs]), np.log([o.j_per_1k for o in obs]))

    def loss(self, p: Params) -> float:
        """Squared log errors of throughput and J/token, summed over the rows."""
        import numpy as np

        r = evaluate(self.cols, p)
        return float(np.sum((np.log(r["tok_s"]) - self.log_tok) ** 2 + (np.log(r["j_per_1k"]) - self.log_j) ** 2))


def _loss(obs: Sequence[Obs], p: Params) -> float:
    return Sample.of(obs).loss(p)


def _fit_one(rows: Sample, p: dict[str, float], key: str, lim: tuple[float, float], log: bool) -> float:
    """The value of one parameter that minimises the loss over `rows`, the others held."""
    return golden_section(lambda v: rows.loss({**p, key: v}), *lim, log=log, iters=ITERS)


def fit(obs: Sequence[Obs], sweeps: int = MAX_SWEEPS, tol: float = SWEEP_TOL) -> dict[str, float]:
    """Coordinate descent on the parameters (golden-section search within physical limits),
    minimising squared log errors of throughput and J/token over `obs`, sweep after sweep until one
    lowers the loss by less than the fraction `tol` (or after `sweeps`)."""
    p: dict[str, float] = dict(START)
    fmts = {o.setup.fmt.key for o in obs}
    names = [n for n in LIMITS if not (n.split("_")[0] in ("fp8", "mxfp4") and n.split("_")[0] not in fmts)]
    for w in sorted({o.setup.workload for o in obs}):
        p[f"prompt:{w}"] = 512.0
    every = Sample.of(obs)
    by_task = {w: Sample.of([o for o in obs if o.setup.workload == w]) for w in sorted({o.setup.workload for o in obs})}
    by_gpu = {g: Sample.of([o for o in obs if o.gpu == g]) for g in sorted({o.gpu for o in obs})}
    for g in by_gpu:
        for n in PER_GPU:
            p[f"{n}:{g}"] = 1.0
    last = math.inf
    for _ in range(sweeps):
        cur = every.loss(p)
        if last - cur < tol * cur:
            break
        last = cur
        for g, rows_g in by_gpu.items():
            for n, lim in PER_GPU.items():
                key = f"{n}:{g}"
                p[key] = _fit_one(rows_g, p, key, lim, log=True)
        for n in names:
            p[n] = _fit_one(every, p, n, LIMITS[n], log=n in LOG_SCALE)
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
    """In-sample median absolute % error of J/token."""
    import numpy as np

    s = Sample.of(obs)
    return float(np.median(np.abs(evaluate(s.cols, p)["j_per_1k"] / np.exp(s.log_j) - 1)) * 100)


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
