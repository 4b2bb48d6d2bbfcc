"""The per-GPU performance model: what a configuration can do on a GPU, from its specs.

For a configuration (GPU, model shape, format, batch size, prompt and generated lengths, GPU count,
framework) the model computes the time of one decode step and of the prefill as the largest of

- the memory-bound time: bytes read per step (the weights a token touches in the format's stored
  size with its quantisation state, the KV cache of every sequence, the LM head) over the GPU's
  memory bandwidth times a calibrated efficiency;
- the compute-bound time: FLOPs per step over the format's dense tensor rate times an efficiency;
- the framework's overhead per step: kernel launches and host work per layer (HF eager is
  launch-bound at small batches on any GPU: that is why an H100 and an H200 measure the same at
  batch size 1), calibrated per framework and format;

with the host's launches and the GPU's kernels overlapping only partly (a smooth maximum of the
overhead and the larger of the two GPU terms), and the board power as idle + a warm floor (a share
of limit - idle) + the energy of the bytes the kernels move (J per GB, one figure for HBM and one
for GDDR: board DRAM costs about twice as much per byte) + the tensor work's share, never above
the limit. The efficiencies, overheads and power coefficients are fitted by least squares on the measured rows
(`advisor.estimate.calibrate`, written to measurements/catalog/perf_params.csv with their fit
error); the specs come from measurements/catalog/gpus.csv and the formats from formats.csv. FP8 is two
formats there, as its two implementations cost: 'fp8' (dynamic activation + weight, FP8 matmuls at the
GPU's FP8 rate) and 'fp8_weight_only' (FP8 storage dequantised on every call to 16-bit matmuls).

The physical limits (`bounds`) use the specs alone: a step can never take less than the stored
bytes over the peak bandwidth nor the FLOPs over the peak tensor rate; power never leaves
[idle, limit] x GPU count. Pure Python: the advisor stays fast to import.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache

from measurements import catalog
from measurements.schema import GPU, ModelArch, WeightFormat

DEFAULT_FRAMEWORK = "hf-eager"
GB = 1e9


@dataclass(frozen=True)
class Shape:
    """The tensors of a model that set bytes and FLOPs."""

    key: str | None
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    experts: int
    experts_per_token: int
    attn_params: float      # per layer
    expert_params: float    # per expert per layer (gate, up, down)
    embed_params: float
    head_params: float      # LM head, read every step (tied or not)
    total_params: float
    exact: bool

    @property
    def linear_params(self) -> float:
        """Every linear-layer weight stored (all experts)."""
        return self.layers * (self.attn_params + self.expert_params * self.experts)

    def linear_read(self, batch: int) -> float:
        """Linear weights a decode step of `batch` sequences touches: attention plus the experts
        routed to (all of them once the batch routes to every expert)."""
        touched = min(self.experts, batch * self.experts_per_token)
        return self.layers * (self.attn_params + self.expert_params * touched)

    @property
    def linear_active(self) -> float:
        return self.layers * (self.attn_params + self.expert_params * self.experts_per_token)

    def kv_bytes_per_token(self, kv_bits: float) -> float:
        return 2 * self.layers * self.kv_heads * self.head_dim * kv_bits / 8


def _shape_from_arch(a: ModelArch, scale: float = 1.0, exact: bool = True) -> Shape:
    attn = a.hidden * a.heads * a.head_dim * 2 + a.hidden * a.kv_heads * a.head_dim * 2
    expert = 3 * a.hidden * a.intermediate
    experts = a.num_experts or 1
    k = a.experts_per_token or 1
    embed = a.vocab * a.hidden
    linear = a.layers * (attn + expert * experts)
    head = embed
    total = linear + embed + (0 if a.tied_embeddings else head)
    # a free-named model of another size: the nearest architecture with its tensors scaled
    return Shape(key=a.key if exact else None, layers=a.layers, hidden=a.hidden, heads=a.heads, kv_heads=a.kv_heads,
                 head_dim=a.head_dim, intermediate=a.intermediate, vocab=a.vocab, tied=a.tied_embeddings,
                 experts=experts, experts_per_token=k, attn_params=attn * scale, expert_params=expert * scale,
                 embed_params=embed * scale, head_params=head * scale, total_params=total * scale, exact=exact)


@lru_cache(maxsize=512)
def shape_of(model: str | None, params_b: float) -> Shape | None:
    """The catalog architecture of `model`; for an unknown name, the catalog architecture nearest
    in size with its tensors scaled to `params_b`."""
    if model:
        try:
            return _shape_from_arch(catalog.resolve_model(model))
        except catalog.UnknownName:
            pass
    ms = catalog.models()
    if not ms:
        return None
    a = min(ms, key=lambda m: abs(math.log(m.params_b / params_b)))
    base = _shape_from_arch(a)
    return _shape_from_arch(a, scale=params_b * GB / base.total_params, exact=False)


def fmt_of(precision: str) -> WeightFormat:
    """The format of a formats.csv key (a precision, or FP8's weight-only path 'fp8_weight_only')."""
    return catalog.formats()[precision]


def default_fp8_mode(gpu: str, measured: Collection[str] = ()) -> tuple[str, str]:
    """The FP8 implementation a question that says only "fp8" gets on `gpu`, and why (a reason key:
    the answer words it through the messages' derivation.fp8_<mode>_<reason> templates).

    The one measured on this GPU where its rows hold exactly one (`measured`: the FP8 modes of its rows):
    measured figures first. Else dynamic (FP8 activations and weights, FP8 matmuls) where the GPU has an
    FP8 tensor rate: the engine's default (--fp8-mode dynamic), torchao's FP8 inference config and what
    vLLM runs. Else weight-only: without FP8 tensor cores FP8 is only stored, dequantised for 16-bit matmuls."""
    try:
        g = catalog.resolve_gpu(gpu)
    except catalog.UnknownName:
        return "dynamic", "engine_default"
    if len(set(measured)) == 1:
        return next(iter(measured)), "measured"
    return ("dynamic", "tensor_cores") if g.fp8_tflops else ("weight_only", "no_fp8_rate")


def _bytes(params: float, fmt: WeightFormat, quantised: bool) -> float:
    if not quantised:
        return params * 2  # embeddings and the LM head of a linear-only format stay 16-bit
    return params * (fmt.weight_bits + fmt.state_bits_per_weight) / 8


def weight_bytes(shape: Shape, fmt: WeightFormat) -> float:
    """Stored bytes of every weight, with the quantisation state."""
    allq = fmt.quantised == "all"
    b = _bytes(shape.linear_params, fmt, True) + _bytes(shape.embed_params, fmt, allq)
    if not shape.tied:
        b += _bytes(shape.head_params, fmt, allq)
    return b


def peak_flops(gpu: GPU, fmt: WeightFormat) -> float:
    """The format's dense tensor rate (FLOP/s); an INT8 format gets FP16's rate where that is higher
    (mixed decomposition and 16-bit activations), FP8 the FP16 rate where the GPU has no FP8 rate."""
    rate = getattr(gpu, fmt.compute_rate, None)
    if fmt.compute_rate == "bf16_tflops" and not rate:
        rate = gpu.fp16_tflops
    if fmt.compute_rate in ("int8_tops", "fp8_tflops"):
        rate = max(rate or 0.0, gpu.fp16_tflops)
    return (rate or gpu.fp16_tflops) * fmt.compute_rate_ratio * 1e12


# ---------------------------------------------------------------------------------------------
# one configuration


@dataclass(frozen=True)
class Work:
    gpu: GPU
    shape: Shape
    fmt: WeightFormat
    batch: int
    prompt: int
    gen: int
    gpu_count: int = 1
    framework: str = DEFAULT_FRAMEWORK
    # the measuring host's launch overhead relative to the median host's (calibration only: an
    # answer is for the median host, since nobody states their CPU and software stack)
    host: float = 1.0

    @property
    def split(self) -> int:
        """How many ways a step's bytes and FLOPs are shared: transformers with device_map="auto"
        places layers on the GPUs one after another (one GPU works at a time), while serving engines
        shard every layer (tensor parallel)."""
        return 1 if self.framework.startswith("hf-") else self.gpu_count

    def dequant_bytes(self, tokens: int) -> float:
        """Bytes a dequantising kernel path moves on a step of `tokens` tokens: a 16-bit copy of every
        quantised weight it touches, written and read back (formats.csv: bitsandbytes 4-bit
        dequantises whenever a step holds more than one token; its fused GEMV serves one)."""
        f = self.fmt
        if not f.dequant_bits_per_weight or tokens < f.dequant_min_tokens:
            return 0.0
        return self.shape.linear_read(tokens) * f.dequant_bits_per_weight / 8

    # -- per decode step at context length ctx (per GPU: tensor parallel splits weights and work)
    def step_bytes(self, ctx: float) -> float:
        allq = self.fmt.quantised == "all"
        w = _bytes(self.shape.linear_read(self.batch), self.fmt, True) + _bytes(self.shape.head_params, self.fmt, allq)
        w += self.dequant_bytes(self.batch)
        kv = self.batch * ctx * self.shape.kv_bytes_per_token(self.fmt.kv_bits)
        act = self.batch * (self.shape.hidden * 4 + self.shape.vocab * 4)  # hidden states, fp32 logits
        return (w + kv) / self.split + act

    def step_flops(self, ctx: float) -> float:
        s = self.shape
        matmul = 2 * (s.linear_active + s.head_params) * self.batch
        attn = 4 * s.layers * s.heads * s.head_dim * ctx * self.batch
        return (matmul + attn) / self.split

    def prefill_bytes(self) -> float:
        allq = self.fmt.quantised == "all"
        w = _bytes(self.shape.linear_read(self.batch * self.prompt), self.fmt, True) + \
            _bytes(self.shape.head_params, self.fmt, allq) + self.dequant_bytes(self.batch * self.prompt)
        kv = self.batch * self.prompt * self.shape.kv_bytes_per_token(self.fmt.kv_bits)
        return (w + kv) / self.split

    def prefill_flops(self) -> float:
        s = self.shape
        toks = self.batch * self.prompt
        matmul = 2 * s.linear_active * toks + 2 * s.head_params * self.batch
        attn = 2 * s.layers * s.heads * s.head_dim * self.prompt * toks  # causal: half of 4 x P^2
        return (matmul + attn) / self.split

    @property
    def mid_ctx(self) -> float:
        return self.prompt + self.gen / 2


@dataclass(frozen=True)
class Bounds:
    """What physics allows, from the specs alone."""

    min_step_s: float
    max_tok_s: float
    max_power_w: float
    min_power_w: float
    min_j_per_1k: float
    binding: str  # "memory bandwidth" or "compute"


def bounds(w: Work) -> Bounds:
    bw = w.gpu.mem_bandwidth_gbs * GB
    ctx = w.mid_ctx
    t_mem = w.step_bytes(ctx) / bw
    t_comp = w.step_flops(ctx) / peak_flops(w.gpu, w.fmt)
    t = max(t_mem, t_comp)
    n = w.gpu_count
    return Bounds(min_step_s=t, max_tok_s=w.batch / t, max_power_w=w.gpu.tdp_w * n, min_power_w=w.gpu.idle_power_w * n,
                  min_j_per_1k=w.gpu.idle_power_w * n * t / w.batch * 1000,
                  binding="memory bandwidth" if t_mem >= t_comp else "compute")


# ---------------------------------------------------------------------------------------------
# the calibrated model

PARAM_NAMES = ("oh_ms_per_layer", "eff_bw", "eff_compute", "overlap", "u0", "u1", "j_per_gb_hbm", "j_per_gb_gddr")
# where a parameter is looked up: the format's own value, then the framework's shared one ('*')
Params = Mapping[tuple[str, str, str], float]


def param(params: Params, framework: str, fmt: str, name: str) -> tuple[float, str] | None:
    for f in (fmt, "*"):
        v = params.get((framework, f, name))
        if v is not None:
            return v, f
    # a format never measured under this framework borrows the figure of the measured format whose
    # kernels it resembles most (formats.csv unmeasured_like), else FP16's (said in the provenance)
    wf = catalog.formats().get(fmt)
    like = wf.unmeasured_like if wf is not None else None
    if wf is not None and name == "eff_bw" and wf.bw_efficiency_of:
        like = wf.bw_efficiency_of  # its kernels stream as that format's do (not fitted on its own rows)
    for lender in (like, "fp16") if like else ("fp16",):
        v = params.get((framework, lender, name))
        if v is not None:
            return v, lender
    return None


@dataclass(frozen=True)
class Prediction:
    tok_s: float
    power_w: float
    j_per_1k: float
    step_s: float
    prefill_s: float
    binding: str   # which term set the decode step: "memory bandwidth", "compute" or "framework overhead"
    busy: float
    bounds: Bounds
    borrowed: tuple[str, ...] = ()

    def describe(self) -> str:
        return (f"performance model: decode step {self.step_s * 1e3:.2f} ms ({self.binding}-bound), "
                f"prefill {self.prefill_s * 1e3:.1f} ms, GPU busy {100 * self.busy:.0f}%; physics bound "
                f"{self.bounds.max_tok_s:,.0f} tok/s ({self.bounds.binding})")


def board_power(gpu: GPU, u0: float, u1: float, busy: float, gpu_count: int = 1) -> float:
    """Board power between idle and the limit: the fraction u0 + u1 x busy of (limit - idle), clamped
    to [0, 1], on each of `gpu_count` GPUs (the fine-tuning model's rule: its steps are compute-bound)."""
    util = min(1.0, max(0.0, u0 + u1 * busy))
    return (gpu.idle_power_w + (gpu.tdp_w - gpu.idle_power_w) * util) * gpu_count


@dataclass(frozen=True)
class _Phase:
    """One forward pass (a decode step or the prefill) on one GPU."""

    t_mem: float
    t_comp: float
    t_oh: float
    traffic: float   # bytes the kernels move (stored bytes over the format's bandwidth efficiency)
    flops: float

    @property
    def t_gpu(self) -> float:
        return max(self.t_mem, self.t_comp)

    def time(self, overlap: float) -> float:
        """The host's launches and the GPU's kernels overlap only partly: a smooth maximum,
        (t_oh^k + t_gpu^k)^(1/k), k = `overlap` (1: one after the other; large: full overlap)."""
        k = max(overlap, 1.0)
        a, b = self.t_oh, self.t_gpu
        m = max(a, b)
        return float(m * ((a / m) ** k + (b / m) ** k) ** (1 / k))


def _phase(w: Work, bytes_: float, flops: float, oh: float, eff_bw: float, eff_c: float,
           fused: bool = False) -> _Phase:
    """`fused`: a fused dequantising kernel (bitsandbytes' 4-bit GEMV) reads each stored byte once and
    unpacks it in registers: it is slow for its arithmetic, not for extra bytes."""
    bw = w.gpu.mem_bandwidth_gbs * GB
    # a streaming kernel below the best efficiency moves more bytes than it stores (repeated reads,
    # copies the model does not count), so its traffic, and the energy of it, grows as its efficiency falls
    traffic = bytes_ if fused else bytes_ * catalog.factor("max_bw_efficiency") / eff_bw
    return _Phase(t_mem=bytes_ / (bw * eff_bw), t_comp=flops / (peak_flops(w.gpu, w.fmt) * eff_c), t_oh=oh,
                  traffic=traffic, flops=flops)


def _power(w: Work, ph: _Phase, t: float, v: Mapping[str, float]) -> float:
    """Board power of one GPU during a phase of duration t: idle, plus the warm floor of a GPU with
    work queued (u0 of limit - idle), plus the energy of the bytes moved (J per GB, by DRAM kind)
    and of the tensor work (u1 of limit - idle at full tensor rate); never above the limit."""
    g = w.gpu
    share = w.split / w.gpu_count  # in a layer pipeline each GPU does 1/N of the work
    dyn = g.tdp_w - g.idle_power_w
    mem_w = v[f"j_per_gb_{g.memory_family}"] * ph.traffic * share / GB / t
    comp_w = dyn * v["u1"] * ph.flops * share / (peak_flops(g, w.fmt) * t)
    return min(g.tdp_w, g.idle_power_w + dyn * min(1.0, v["u0"]) + mem_w + comp_w)


def _kernel_path(w: Work, params: Params, tokens: int, eff_bw: float) -> tuple[float, bool]:
    """The bandwidth efficiency of a step of `tokens` tokens, and whether its kernel is fused. A
    dequantising format has two paths (formats.csv): its fused kernel on steps below
    dequant_min_tokens, at the format's own calibrated efficiency; on longer steps a 16-bit copy of
    the weights and a 16-bit matmul, plain streaming kernels, at FP16's efficiency."""
    if not w.fmt.dequant_bits_per_weight:
        return eff_bw, False
    if not w.dequant_bytes(tokens):
        return eff_bw, True
    f16 = param(params, w.framework, "fp16", "eff_bw")
    return (min(f16[0], 1.0) if f16 is not None else eff_bw), False


def predict(w: Work, params: Params) -> Prediction | None:
    """Throughput, power and J/1k generated tokens of `w`; None when the framework is not calibrated."""
    got = {n: param(params, w.framework, w.fmt.key, n) for n in PARAM_NAMES}
    if any(v is None for v in got.values()):
        return None
    vals = {n: v[0] for n, v in got.items()}  # type: ignore[index]
    borrowed = tuple(sorted({f"{n} from {v[1]}" for n, v in got.items() if v and v[1] not in (w.fmt.key, "*")}))
    oh = vals["oh_ms_per_layer"] * 1e-3 * w.shape.layers * w.host
    eff_bw, eff_c = min(vals["eff_bw"], 1.0), min(vals["eff_compute"], 1.0)
    e_dec, f_dec = _kernel_path(w, params, w.batch, eff_bw)
    e_pre, f_pre = _kernel_path(w, params, w.batch * w.prompt, eff_bw)
    dec = _phase(w, w.step_bytes(w.mid_ctx), w.step_flops(w.mid_ctx), oh, e_dec, eff_c, f_dec)
    pre = _phase(w, w.prefill_bytes(), w.prefill_flops(), oh, e_pre, eff_c, f_pre)
    step, t_pre = dec.time(vals["overlap"]), pre.time(vals["overlap"])
    top = max(dec.t_mem, dec.t_comp, dec.t_oh)
    binding = "memory bandwidth" if top == dec.t_mem else "compute" if top == dec.t_comp else "framework overhead"
    total = t_pre + w.gen * step
    busy = (pre.t_gpu + w.gen * dec.t_gpu) / total
    energy = (_power(w, pre, t_pre, vals) * t_pre + _power(w, dec, step, vals) * w.gen * step) * w.gpu_count
    power = energy / total
    toks = w.batch * w.gen
    return Prediction(tok_s=toks / total, power_w=power, j_per_1k=energy / toks * 1000, step_s=step, prefill_s=t_pre,
                      binding=binding, busy=min(1.0, busy), bounds=bounds(w), borrowed=borrowed)


@lru_cache(maxsize=1)
def shipped_params() -> dict[tuple[str, str, str], float]:
    return {(p.framework, p.format, p.param): p.value for p in catalog.perf_params()}


def calibrated_frameworks(params: Params | None = None) -> set[str]:
    return {k[0] for k in (params if params is not None else shipped_params())}


def work_for(gpu: str, model: str | None, params_b: float, precision: str, batch: int, prompt: int | None,
             gen: int | None, gpu_count: int = 1, framework: str = DEFAULT_FRAMEWORK) -> Work | None:
    try:
        g = catalog.resolve_gpu(gpu)
    except catalog.UnknownName:
        return None
    shape = shape_of(model, params_b)
    if shape is None or precision not in catalog.formats():
        return None
    p = prompt or int(catalog.factor("default_prompt_tokens"))
    n = gen or int(catalog.factor("default_gen_tokens"))
    return Work(gpu=g, shape=shape, fmt=fmt_of(precision), batch=batch, prompt=p, gen=n, gpu_count=gpu_count,
                framework=framework)


# ---------------------------------------------------------------------------------------------
# memory fit


@dataclass(frozen=True)
class MemoryNeed:
    weights_gb: float
    kv_gb: float
    activations_gb: float
    reserve_gb: float
    gpu_count: int
    vram_gb: float

    @property
    def per_gpu_gb(self) -> float:
        return (self.weights_gb + self.kv_gb) / self.gpu_count + self.activations_gb + self.reserve_gb

    @property
    def fits(self) -> bool:
        return self.per_gpu_gb <= self.vram_gb

    def describe(self) -> str:
        n = self.gpu_count
        split = f" / {n} GPUs" if n > 1 else ""
        return (f"weights {self.weights_gb:.1f} GB + KV cache {self.kv_gb:.2f} GB{split} + activations "
                f"{self.activations_gb:.2f} GB + runtime reserve {self.reserve_gb:.1f} GB = {self.per_gpu_gb:.1f} GB "
                f"per GPU of {self.vram_gb:g} GB")


def memory_need(w: Work) -> MemoryNeed:
    s = w.shape
    weights = weight_bytes(s, w.fmt)
    kv = w.batch * (w.prompt + w.gen) * s.kv_bytes_per_token(w.fmt.kv_bits)
    # the prefill's peak: the MLP's gate and up projections and four hidden-size buffers per prompt
    # token in 16 bits, plus the fp32 logits of the last position
    act = w.batch * w.prompt * (2 * s.intermediate + 4 * s.hidden) * 2 / w.gpu_count + w.batch * s.vocab * 4
    return MemoryNeed(weights_gb=weights / GB, kv_gb=kv / GB, activations_gb=act / GB,
                      reserve_gb=catalog.factor("runtime_reserve_gb"), gpu_count=w.gpu_count, vram_gb=w.gpu.vram_gb)


TP_SIZES = (1, 2, 4, 8)


def smallest_fit(w: Work) -> int | None:
    """The smallest tensor-parallel GPU count (1, 2, 4, 8) at which `w` fits; None if not even 8."""
    from dataclasses import replace

    for n in TP_SIZES:
        if memory_need(replace(w, gpu_count=n)).fits:
            return n
    return None


def formats_that_fit(w: Work) -> list[str]:
    """The formats in which `w` fits at its GPU count, fewest bits last."""
    from dataclasses import replace

    out: list[str] = []
    for key in ("fp16", "bf16", "int8_pure", "nf4"):
        if key in catalog.formats() and memory_need(replace(w, fmt=fmt_of(key))).fits:
            out.append(key)
    return out
