"""Peak GPU memory of fine-tuning (full, LoRA, QLoRA) and of inference, by component, without torch.

The estimate follows what PyTorch, transformers, peft and bitsandbytes actually allocate, so each
component can be checked on its own:

* weights: 16-bit or 32-bit tensors; bitsandbytes NF4 (two 4-bit codes per byte plus one absmax per
  block of 64 weights: an fp32 absmax, or with double quantisation an 8-bit absmax plus one fp32
  absmax per 256 blocks and a 256-entry code table); LLM.int8 (one byte per weight plus one fp32
  scale per output row). Embeddings, lm_head, norms and biases stay in 16 bit, and peft's
  `prepare_model_for_kbit_training` casts every one of them to fp32.
* LoRA adapters: r x (d_in + d_out) per targeted linear, per layer, from the catalog's shapes; peft
  keeps them in fp32 (`autocast_adapter_dtype=True`), so their gradients are fp32 too.
* optimizer states: torch AdamW keeps two states in the parameter's dtype (and its foreach step
  allocates one more parameter-sized buffer); bitsandbytes 8-bit AdamW keeps two 1-byte states
  plus one fp32 absmax per 2,048 values; paged optimizers live in CUDA unified memory, outside
  PyTorch's allocator.
* activations: a walk through one decoder layer that lists every tensor autograd saves for the
  backward pass, with its dtype as it flows through the code path (autocast or not, fp32 residual
  stream after the k-bit preparation, peft's cast of each LoRA input to the adapter dtype, fused
  projections). With gradient checkpointing only each layer's input is kept and one layer is
  recomputed at a time.
* logits: the lm_head output, its fp32 copy for the loss, the log-softmax output the loss keeps,
  and the two fp32 gradients of the loss backward: s x V elements each, large for 150k vocabularies.
* the peak is the largest of four phases: end of forward (in the loss), the loss backward, a layer's
  backward, and the optimizer step.

Named derivation: "saved-tensor walk" (see references/finetuning.md). It was checked on CPU against
the live tensor bytes of the real transformers/peft/bitsandbytes code (tests/test_finetune_memory.py)
and is compared with every measured fine-tuning row's peak allocated memory.

Byte sizes of the number formats and bitsandbytes' block sizes are definitions of those formats,
not measured figures. Measured overheads (allocator fragmentation, CUDA context) come from the
measured rows when they exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from measurements.schema import ModelArch

GB = 1e9  # reports use decimal gigabytes, as GPU vendors state VRAM

# --- format definitions -------------------------------------------------------------------------
BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "int64": 8}
NF4_BLOCK = 64  # bitsandbytes Params4bit default blocksize
NF4_DQ_BLOCK = 256  # blocksize of the second-level (double) quantisation of the absmax values
NF4_DQ_CODE = 256  # fp32 entries of the dynamic 8-bit code table kept per quantised tensor
BNB8_OPT_BLOCK = 2048  # bitsandbytes blockwise 8-bit optimizer state block
BNB8_OPT_MIN_NUMEL = 4096  # smaller tensors keep 32-bit states in bitsandbytes 8-bit optimizers

Method = Literal["full", "lora", "qlora"]
WeightFormat = Literal["fp32", "bf16", "fp16", "int8", "nf4"]
Optimizer = Literal["adamw", "adamw_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd"]
OPTIMIZERS: tuple[str, ...] = ("adamw", "adamw_fused", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd")
Attention = Literal["sdpa", "eager"]
CANONICAL_MODULES: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")

# transformers' optimizer names (TrainingArguments.optim) and common spellings -> ours
_OPT_ALIASES = {
    "adamw": "adamw", "adamw_torch": "adamw", "adam": "adamw", "adamw_32bit": "adamw",
    "adamw_torch_fused": "adamw_fused", "adamw_fused": "adamw_fused", "fused": "adamw_fused",
    "adamw_8bit": "adamw_8bit", "adamw_bnb_8bit": "adamw_8bit", "adam8bit": "adamw_8bit", "8bit": "adamw_8bit",
    "adamw8bit": "adamw_8bit", "bnb_adamw_8bit": "adamw_8bit",
    "paged_adamw_8bit": "paged_adamw_8bit", "paged_adamw8bit": "paged_adamw_8bit", "paged": "paged_adamw_8bit",
    "paged_adamw_32bit": "paged_adamw_32bit", "paged_adamw": "paged_adamw_32bit",
    "sgd": "sgd",
}


def normalize_optimizer(name: str) -> str:
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in _OPT_ALIASES:
        return _OPT_ALIASES[key]
    raise ValueError(f"unknown optimizer '{name}'; accepted: {', '.join(sorted(set(_OPT_ALIASES)))}")


# module names per transformers model_type (how peft's target_modules must spell them)
_FUSED_QKV = {"phi3"}
_FUSED_GATE_UP = {"phi3"}
_QKV_BIAS = {"qwen2"}
_NONPARAM_LAYERNORM = {"olmo"}  # OLMo (v1) uses a LayerNorm without weights
_LAYERNORM = {"olmo"}


def module_names(model_type: str, modules: tuple[str, ...]) -> list[str]:
    """peft `target_modules` names for canonical modules (q, k, v, o, gate, up, down)."""
    out: list[str] = []
    for m in modules:
        if model_type in _FUSED_QKV and m in ("q", "k", "v"):
            name = "qkv_proj"
        elif model_type in _FUSED_GATE_UP and m in ("gate", "up"):
            name = "gate_up_proj"
        else:
            name = f"{m}_proj"
        if name not in out:
            out.append(name)
    return out


def parse_target_modules(text: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Accepts 'all-linear', 'attention', 'q,v', 'q_proj,v_proj', 'qkv_proj', 'gate_up_proj' ..."""
    if text is None:
        return CANONICAL_MODULES
    items = [text] if isinstance(text, str) else list(text)
    parts: list[str] = []
    for item in items:
        parts += [p.strip().lower() for p in item.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    out: list[str] = []
    for p in parts:
        if p in ("all", "all-linear", "all_linear"):
            names = list(CANONICAL_MODULES)
        elif p in ("attention", "attn"):
            names = ["q", "k", "v", "o"]
        elif p in ("mlp", "ffn"):
            names = ["gate", "up", "down"]
        elif p in ("qkv", "qkv_proj", "query_key_value"):
            names = ["q", "k", "v"]
        elif p in ("gate_up", "gate_up_proj"):
            names = ["gate", "up"]
        else:
            base = p.removesuffix("_proj")
            if base not in CANONICAL_MODULES:
                raise ValueError(
                    f"unknown target module '{p}'; accepted: all-linear, attention, mlp, q, k, v, o, gate, up, "
                    "down (with or without _proj), qkv_proj, gate_up_proj"
                )
            names = [base]
        for n in names:
            if n not in out:
                out.append(n)
    if not out:
        raise ValueError("target modules is empty; accepted: all-linear, attention, mlp or a list such as q,v")
    return tuple(m for m in CANONICAL_MODULES if m in out)


class TrainSetup(BaseModel):
    """One fine-tuning configuration, as the training code runs it.

    The code-path switches say what the training loop does, because they change memory a lot:
    `autocast` (bf16 autocast around the forward, as the HF Trainer does with bf16=True),
    `kbit_fp32_upcast` (peft's prepare_model_for_kbit_training), `keep_logits` (the loop holds the
    model output, and so the logits, through backward).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method
    weights: WeightFormat | None = Field(default=None, description="base weight format; default by method")
    double_quant: bool = True
    lora_rank: int = Field(default=16, ge=1, le=4096)
    target_modules: tuple[str, ...] = CANONICAL_MODULES
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    batch_size: int = Field(default=1, ge=1)
    seq_len: int = Field(default=2048, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    grad_checkpointing: bool = False
    optimizer: Optimizer = "adamw"
    autocast: bool = False
    kbit_fp32_upcast: bool | None = Field(default=None, description="default: True for nf4/int8 weights")
    keep_logits: bool = False
    attention: Attention = "sdpa"
    full_master_fp32: bool = Field(default=False, description="full FT keeps fp32 master weights (mixed precision)")

    @field_validator("optimizer", mode="before")
    @classmethod
    def _opt(cls, v: object) -> object:
        return normalize_optimizer(v) if isinstance(v, str) else v

    @field_validator("target_modules", mode="before")
    @classmethod
    def _targets(cls, v: object) -> object:
        return parse_target_modules(v)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _consistent(self) -> TrainSetup:
        w = self.weight_format
        if self.method == "qlora" and w not in ("nf4", "int8"):
            raise ValueError(f"qlora trains LoRA adapters on a quantised base: weights must be nf4 or int8, not {w}")
        if self.method in ("full", "lora") and w in ("nf4", "int8"):
            raise ValueError(f"{self.method} needs 16/32-bit base weights; use method=qlora for {w}")
        return self

    @property
    def weight_format(self) -> str:
        if self.weights:
            return self.weights
        return "nf4" if self.method == "qlora" else "bf16"

    @property
    def upcast(self) -> bool:
        if self.kbit_fp32_upcast is not None:
            return self.kbit_fp32_upcast and self.weight_format in ("nf4", "int8")
        return self.weight_format in ("nf4", "int8")

    @property
    def tokens_per_micro_step(self) -> int:
        return self.batch_size * self.seq_len


class Component(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    label: str
    bytes: float = Field(ge=0)
    in_allocator: bool = Field(default=True, description="counted by torch.cuda.max_memory_allocated")
    note: str = ""

    @property
    def gb(self) -> float:
        return self.bytes / GB


class MemoryEstimate(BaseModel):
    """Predicted peak memory, by component, for one model and setup."""

    model_config = ConfigDict(extra="forbid")

    model: str
    setup: TrainSetup | None = None
    mode: Literal["train", "inference"]
    components: list[Component]
    peak_phase: str
    phase_peaks_gb: dict[str, float]
    peak_allocated_gb: float
    outside_allocator_gb: float = 0.0
    params_total: int
    params_trainable: int
    params_catalog_b: float
    warnings: list[str] = Field(default_factory=list)
    method: str = "saved-tensor walk"

    def component(self, key: str) -> Component:
        for c in self.components:
            if c.key == key:
                return c
        raise KeyError(f"no component '{key}' (have: {', '.join(c.key for c in self.components)})")

    def device_total_gb(self, reserve_ratio: float, context_gb: float) -> float:
        """What nvidia-smi would show: allocator reserve over the peak, CUDA context, unified memory."""
        return self.peak_allocated_gb * reserve_ratio + context_gb + self.outside_allocator_gb


# --- architecture shapes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Linear:
    name: str  # canonical module(s) it implements: "q", "qkv", "gate_up", ...
    d_in: int
    d_out: int
    members: tuple[str, ...]  # canonical modules fused into it
    bias: bool = False


def layer_linears(arch: ModelArch) -> list[Linear]:
    """The linear layers of one decoder layer, fused the way the model's code fuses them."""
    if arch.num_experts:
        raise ValueError(
            f"{arch.key} is a mixture-of-experts model; the fine-tuning estimator covers dense decoders only "
            "(llama, mistral, qwen2, phi3, olmo, gemma style)"
        )
    h, hq, hkv, i = arch.hidden, arch.heads * arch.head_dim, arch.kv_heads * arch.head_dim, arch.intermediate
    bias = arch.model_type in _QKV_BIAS
    out: list[Linear] = []
    if arch.model_type in _FUSED_QKV:
        out.append(Linear("qkv", h, hq + 2 * hkv, ("q", "k", "v"), bias))
    else:
        out += [Linear("q", h, hq, ("q",), bias), Linear("k", h, hkv, ("k",), bias), Linear("v", h, hkv, ("v",), bias)]
    out.append(Linear("o", hq, h, ("o",)))
    if arch.model_type in _FUSED_GATE_UP:
        out.append(Linear("gate_up", h, 2 * i, ("gate", "up")))
    else:
        out += [Linear("gate", h, i, ("gate",)), Linear("up", h, i, ("up",))]
    out.append(Linear("down", i, h, ("down",)))
    return out


@dataclass
class ParamCounts:
    linear_weights: int = 0  # quantisable (every decoder linear)
    linear_biases: int = 0
    norms: int = 0
    embed: int = 0
    lm_head: int = 0
    per_linear: list[tuple[Linear, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.linear_weights + self.linear_biases + self.norms + self.embed + self.lm_head

    @property
    def non_quantised(self) -> int:
        return self.linear_biases + self.norms + self.embed + self.lm_head


def count_params(arch: ModelArch) -> ParamCounts:
    pc = ParamCounts()
    for lin in layer_linears(arch):
        pc.linear_weights += lin.d_in * lin.d_out * arch.layers
        if lin.bias:
            pc.linear_biases += lin.d_out * arch.layers
        pc.per_linear.append((lin, arch.layers))
    norm_params = 0 if arch.model_type in _NONPARAM_LAYERNORM else arch.hidden
    pc.norms = norm_params * (2 * arch.layers + 1)
    pc.embed = arch.vocab * arch.hidden
    pc.lm_head = 0 if arch.tied_embeddings else arch.vocab * arch.hidden
    return pc


def lora_params(arch: ModelArch, rank: int, targets: tuple[str, ...]) -> int:
    """r x (d_in + d_out) for each targeted linear of each layer (a fused linear is one target)."""
    n = 0
    for lin in layer_linears(arch):
        if any(m in targets for m in lin.members):
            n += rank * (lin.d_in + lin.d_out)
    return n * arch.layers


# --- weights ---------------------------------------------------------------------------------------


def nf4_bytes(numel: int, double_quant: bool) -> float:
    """bitsandbytes NF4 storage of one weight tensor: packed codes plus its quantisation state."""
    blocks = math.ceil(numel / NF4_BLOCK)
    codes = math.ceil(numel / 2)
    if not double_quant:
        return codes + blocks * BYTES["fp32"]
    # 8-bit absmax per block, an fp32 absmax per 256 blocks, the code table and the offset
    return codes + blocks + math.ceil(blocks / NF4_DQ_BLOCK) * BYTES["fp32"] + NF4_DQ_CODE * BYTES["fp32"] + BYTES["fp32"]


def weight_components(arch: ModelArch, setup: TrainSetup | None, fmt: str, double_quant: bool, upcast: bool,
                      dtype16: str = "bf16") -> list[Component]:
    pc = count_params(arch)
    comps: list[Component] = []
    other_b = BYTES["fp32"] if upcast else BYTES[dtype16] if fmt != "fp32" else BYTES["fp32"]
    if fmt == "nf4":
        q = sum(nf4_bytes(lin.d_in * lin.d_out, double_quant) * n for lin, n in pc.per_linear)
        codes = pc.linear_weights / 2
        comps.append(Component(key="weights_quantised", label="base weights (NF4 codes)", bytes=codes,
                               note=f"{pc.linear_weights / 1e9:.2f}B decoder-linear weights x 0.5 byte"))
        comps.append(Component(key="quant_state", label="NF4 quantisation state" + (" (double quant)" if double_quant else ""),
                               bytes=q - codes,
                               note="8-bit absmax per 64 weights + fp32 per 256 blocks" if double_quant
                               else "fp32 absmax per 64 weights"))
    elif fmt == "int8":
        q = sum((lin.d_in * lin.d_out + lin.d_out * BYTES["fp32"]) * n for lin, n in pc.per_linear)
        comps.append(Component(key="weights_quantised", label="base weights (int8 + row scales)", bytes=q,
                               note="1 byte per weight + an fp32 scale per output row"))
    else:
        b = BYTES[fmt]
        comps.append(Component(key="weights", label=f"base weights ({fmt})", bytes=pc.total * b,
                               note=f"{pc.total / 1e9:.2f}B parameters x {b} bytes"))
        return comps
    kept = "fp32 (prepare_model_for_kbit_training)" if upcast else dtype16
    comps.append(Component(key="weights_unquantised", label=f"embeddings, lm_head, norms, biases ({kept})",
                           bytes=pc.non_quantised * other_b,
                           note=f"{pc.non_quantised / 1e6:.0f}M parameters left unquantised x {other_b} bytes"))
    return comps


# --- activations: the saved-tensor walk --------------------------------------------------------


@dataclass
class _T:
    """A tensor in the walk: bytes per element and the storage it lives in."""

    dt: str
    sid: str


class _Walk:
    """Records the storages autograd keeps for backward, per token (x batch x seq later)."""

    def __init__(self) -> None:
        self.saved: dict[str, float] = {}
        self.n = 0

    def new(self, dt: str) -> _T:
        self.n += 1
        return _T(dt, f"t{self.n}")

    def save(self, t: _T, elems: float, label: str = "") -> None:
        self.saved.setdefault(t.sid, elems * BYTES[t.dt])

    @property
    def total(self) -> float:
        return sum(self.saved.values())


def _promote(a: str, b: str) -> str:
    return "fp32" if "fp32" in (a, b) else a


@dataclass(frozen=True)
class _Path:
    """The dtypes of one code path."""

    res: str  # residual stream (= embedding output dtype)
    norm_w: str  # norm weight dtype
    compute: str  # 16-bit compute dtype
    autocast: bool
    quantised: bool  # base linears are bnb layers (output dtype follows the input)
    int8: bool  # LLM.int8 layers keep their input for backward
    lora: str  # adapter dtype
    full: bool  # base weights train
    lm_head: str


def _path(setup: TrainSetup) -> _Path:
    fmt = setup.weight_format
    compute = "fp16" if fmt == "fp16" else "bf16"
    if fmt == "fp32" or setup.upcast:
        res = norm_w = lm = "fp32"
    else:
        res = norm_w = lm = compute
    return _Path(res=res, norm_w=norm_w, compute=compute, autocast=setup.autocast,
                 quantised=fmt in ("nf4", "int8"), int8=fmt == "int8", lora="fp32", full=setup.method == "full", lm_head=lm)


def _norm(w: _Walk, x: _T, arch: ModelArch, p: _Path, grad: bool, trainable_w: bool) -> _T:
    """RMSNorm / LayerNorm as transformers writes them: upcast to fp32, normalise, cast back, scale."""
    h = arch.hidden
    if not grad:
        out_dt = x.dt if arch.model_type in _NONPARAM_LAYERNORM else _promote(p.norm_w, x.dt)
        return w.new(out_dt)
    x32 = x if x.dt == "fp32" else w.new("fp32")
    w.save(x32, h)
    stats = w.new("fp32")  # rsqrt (RMSNorm) or mean + rstd (LayerNorm)
    w.save(stats, 2 if arch.model_type in _LAYERNORM else 1)
    if arch.model_type in _NONPARAM_LAYERNORM:
        return x if x.dt == "fp32" else w.new(x.dt)
    back = x32 if x.dt == "fp32" else w.new(x.dt)
    if trainable_w:
        w.save(back, h)  # the weight's gradient needs the normalised input
    return w.new(_promote(p.norm_w, back.dt))


def _linear(w: _Walk, x: _T, d_in: int, d_out: int, p: _Path, lora: bool, rank: int, dropout: bool) -> _T:
    """One projection: the frozen or trained base layer plus an optional peft LoRA branch.

    Autocast caches casts of weights only, so each layer casts an fp32 input again (a new tensor).
    bitsandbytes layers are custom autograd functions: they cast to the compute dtype inside and
    return the input's dtype, autocast or not.
    """
    if p.full:
        xin = w.new(p.compute) if (p.autocast and x.dt == "fp32") else x
        w.save(xin, d_in)
    elif p.int8:
        w.save(x, d_in)  # bitsandbytes MatMul8bitLt keeps its input A whenever a gradient flows
    base_dt = x.dt if (p.quantised or not p.autocast) else p.compute
    if not lora:
        return w.new(base_dt)
    # peft: x.to(adapter dtype) (a copy when the dtype differs), dropout, A, B, scale, add, cast back
    xl = x if x.dt == p.lora else w.new(p.lora)
    if dropout:
        xl = w.new(xl.dt)
        w.save(_T("int8", xl.sid + ":mask"), d_in)  # the dropout mask (bool)
    if p.autocast:
        xa = xl if xl.dt == p.compute else w.new(p.compute)
        w.save(xa, d_in)
        a_out = w.new(p.compute)
    else:
        w.save(xl, d_in)
        a_out = w.new(p.lora)
    w.save(a_out, rank)
    return w.new(base_dt)


def sdpa_kernel(arch: ModelArch, dtype: str) -> str:
    """The kernel PyTorch's SDPA picks on a CUDA GPU for causal training without a padding mask.

    Flash attention takes 16-bit inputs. For fp32 inputs (QLoRA after the k-bit preparation, without
    autocast) the memory-efficient kernel serves plain multi-head attention, but transformers asks
    for native grouped-query attention (enable_gqa), which that kernel does not support: SDPA falls
    back to the math kernel, which keeps the full probability matrix. The measured H100 rows show
    it (QLoRA without checkpointing on Qwen2.5, a GQA model, needs heads x seq^2 x 4 bytes more
    per layer; Phi-3-mini, plain multi-head, does not).
    """
    if dtype in ("bf16", "fp16"):
        return "flash"
    return "math" if arch.kv_heads < arch.heads else "efficient"


def layer_saved_bytes_per_token(arch: ModelArch, setup: TrainSetup, first_layer_grad: bool = True) -> float:
    """Bytes autograd keeps for one decoder layer, per token (multiply by batch x seq)."""
    p = _path(setup)
    w = _Walk()
    h, hq, hkv, i = arch.hidden, arch.heads * arch.head_dim, arch.kv_heads * arch.head_dim, arch.intermediate
    lora_on = setup.method != "full"
    targets = setup.target_modules if lora_on else ()
    drop = setup.lora_dropout > 0
    r = setup.lora_rank
    x = w.new(p.res)
    n1 = _norm(w, x, arch, p, grad=first_layer_grad, trainable_w=p.full)
    lins = {lin.name: lin for lin in layer_linears(arch)}
    # attention projections
    if "qkv" in lins:
        lin = lins["qkv"]
        qkv = _linear(w, n1, lin.d_in, lin.d_out, p, any(m in targets for m in lin.members), r, drop)
        q_dt = k_dt = qkv.dt
        v_store, v_elems = qkv, hq + 2 * hkv  # v is a view: saving it keeps the whole fused output
    else:
        q = _linear(w, n1, h, hq, p, "q" in targets, r, drop)
        k = _linear(w, n1, h, hkv, p, "k" in targets, r, drop)
        v = _linear(w, n1, h, hkv, p, "v" in targets, r, drop)
        q_dt, k_dt = q.dt, k.dt
        v_store, v_elems = v, hkv
    # rotary embedding makes new q and k (cos/sin are shared by all layers)
    q_rot, k_rot = w.new(q_dt), w.new(k_dt)
    if p.autocast and q_dt == "fp32":  # SDPA runs in the autocast dtype: casts are new tensors
        q_rot, k_rot = w.new(p.compute), w.new(p.compute)
        v_store, v_elems = w.new(p.compute), hkv
    attn_dt = q_rot.dt
    s = setup.seq_len
    kernel = sdpa_kernel(arch, attn_dt) if setup.attention == "sdpa" else "eager"
    if kernel in ("flash", "efficient"):
        w.save(q_rot, hq)
        w.save(k_rot, hkv)
        w.save(v_store, v_elems)
        attn_out = w.new(attn_dt)
        w.save(attn_out, hq)
        w.save(w.new("fp32"), arch.heads)  # log-sum-exp per head
    elif kernel == "math":
        # ATen's math kernel: scaled q, the expanded and scaled k, the expanded v, and the
        # softmax probabilities (heads x seq per token) in the attention dtype
        for _ in range(3):
            w.save(w.new(attn_dt), hq)
        w.save(w.new(attn_dt), arch.heads * s)
        attn_out = w.new(attn_dt)
    else:  # eager (transformers' own): fp32 softmax probabilities and their 16-bit copy
        w.save(q_rot, hq)
        w.save(k_rot, hkv)
        w.save(v_store, v_elems)
        w.save(w.new("fp32"), arch.heads * s)
        w.save(w.new(attn_dt), arch.heads * s)
        attn_out = w.new(attn_dt)
    o_in = w.new(attn_out.dt)  # transpose(1, 2).contiguous() copy
    lin = lins["o"]
    o = _linear(w, o_in, lin.d_in, lin.d_out, p, "o" in targets, r, drop)
    x2 = w.new(_promote(x.dt, o.dt))
    n2 = _norm(w, x2, arch, p, grad=True, trainable_w=p.full)
    if "gate_up" in lins:
        lin = lins["gate_up"]
        gu = _linear(w, n2, lin.d_in, lin.d_out, p, any(m in targets for m in lin.members), r, drop)
        w.save(gu, 2 * i)  # gate and up are views of one storage; silu and mul keep it
        act_dt = gu.dt
    else:
        g = _linear(w, n2, h, i, p, "gate" in targets, r, drop)
        u = _linear(w, n2, h, i, p, "up" in targets, r, drop)
        w.save(g, i)  # silu keeps its input
        w.save(u, i)  # mul keeps both factors
        act_dt = _promote(g.dt, u.dt)
    silu = w.new(act_dt)
    w.save(silu, i)
    prod = w.new(act_dt)
    lin = lins["down"]
    _linear(w, prod, lin.d_in, lin.d_out, p, "down" in targets, r, drop)
    return w.total


@dataclass
class _Act:
    saved_all: float  # every layer's saved tensors (no checkpointing) or the checkpoint inputs
    layer: float  # one layer's saved tensors (recomputed under checkpointing)
    final_norm: float
    per_token_layer: float
    grad_stream: float  # one gradient of the residual stream


def activation_bytes(arch: ModelArch, setup: TrainSetup) -> _Act:
    p = _path(setup)
    t = setup.tokens_per_micro_step
    # The embedding output needs no gradient in LoRA unless checkpointing asks for input grads.
    first_grad = p.full or setup.grad_checkpointing
    per_layer = layer_saved_bytes_per_token(arch, setup)
    first = layer_saved_bytes_per_token(arch, setup, first_layer_grad=first_grad)
    final_norm = (arch.hidden * BYTES["fp32"] + BYTES["fp32"] * (2 if arch.model_type in _LAYERNORM else 1)) * t
    if p.full:  # the trainable final norm and lm_head keep their inputs
        final_norm += arch.hidden * BYTES[p.res] * 2 * t
    if setup.grad_checkpointing:
        saved_all = arch.layers * arch.hidden * BYTES[p.res] * t
    else:
        saved_all = (first + per_layer * (arch.layers - 1)) * t
    return _Act(saved_all=saved_all, layer=per_layer * t, final_norm=final_norm, per_token_layer=per_layer,
                grad_stream=arch.hidden * BYTES[p.res] * t)


def logits_bytes(arch: ModelArch, setup: TrainSetup) -> dict[str, float]:
    """The loss region: lm_head output, its fp32 copy, the kept log-softmax and the loss gradients."""
    p = _path(setup)
    sv = setup.tokens_per_micro_step * arch.vocab
    logit_dt = p.compute if p.autocast else p.lm_head
    logits = sv * BYTES[logit_dt]
    f32_copy = 0.0 if logit_dt == "fp32" else sv * BYTES["fp32"]
    logsm = sv * BYTES["fp32"]
    grad = sv * BYTES["fp32"]
    head_cast = 0.0
    if p.autocast and p.lm_head == "fp32":
        head_cast = arch.vocab * arch.hidden * BYTES[p.compute]
    return {"logits": logits, "fp32_copy": f32_copy, "log_softmax": logsm, "grad": grad,
            "logits_dt": BYTES[logit_dt], "head_cast": head_cast}


# --- optimizer ------------------------------------------------------------------------------------


def optimizer_bytes(n_params: int, param_bytes: int, optimizer: str, numel_per_tensor: float) -> tuple[float, float, str]:
    """(state bytes, step-time temporary bytes, note) for n_params trainable parameters."""
    if optimizer in ("adamw", "adamw_fused"):
        states = 2 * n_params * param_bytes
        temp = n_params * param_bytes if optimizer == "adamw" else 0.0
        return states, temp, f"2 states x {param_bytes} bytes (torch AdamW keeps the parameter dtype)"
    if optimizer == "paged_adamw_32bit":
        return 2 * n_params * BYTES["fp32"], 0.0, "2 fp32 states in CUDA unified memory (paged)"
    if optimizer in ("adamw_8bit", "paged_adamw_8bit"):
        if numel_per_tensor < BNB8_OPT_MIN_NUMEL:
            return 2 * n_params * BYTES["fp32"], 0.0, "tensors too small for 8-bit states: fp32"
        per = 2 * (1 + BYTES["fp32"] / BNB8_OPT_BLOCK)
        where = " in CUDA unified memory (paged)" if optimizer.startswith("paged") else ""
        return n_params * per, 0.0, f"2 x 8-bit states + fp32 absmax per {BNB8_OPT_BLOCK}{where}"
    return 0.0, 0.0, "plain SGD keeps no state"


# --- the estimate ------------------------------------------------------------------------------------


def estimate_training(arch: ModelArch, setup: TrainSetup) -> MemoryEstimate:
    """Peak allocated memory of one training step (after the first, when optimizer states exist)."""
    p = _path(setup)
    pc = count_params(arch)
    warnings: list[str] = []
    derived_b = pc.total / 1e9
    if abs(derived_b - arch.params_b) / arch.params_b > 0.05:
        warnings.append(
            f"parameters derived from the shapes ({derived_b:.2f}B) differ from the catalog's {arch.params_b}B "
            "by more than 5%: the architecture entry may miss a component"
        )
    comps = weight_components(arch, setup, setup.weight_format, setup.double_quant, setup.upcast)
    weights = sum(c.bytes for c in comps)

    # trainable parameters, gradients, optimizer states
    if setup.method == "full":
        trainable = pc.total
        if setup.full_master_fp32:
            pb = BYTES["fp32"]
            comps.append(Component(key="master_weights", label="fp32 master weights", bytes=trainable * pb))
        else:
            pb = BYTES[setup.weight_format]
        grads = trainable * pb
        per_tensor = trainable / max(1, len(pc.per_linear) * arch.layers)
        comps.append(Component(key="gradients", label=f"gradients ({'fp32' if pb == 4 else setup.weight_format})",
                               bytes=grads, note=f"{trainable / 1e9:.2f}B x {pb} bytes"))
    else:
        trainable = lora_params(arch, setup.lora_rank, setup.target_modules)
        pb = BYTES["fp32"]
        comps.append(Component(key="lora_adapters", label=f"LoRA adapters r={setup.lora_rank} (fp32)",
                               bytes=trainable * pb,
                               note=f"{trainable / 1e6:.1f}M params: r x (d_in + d_out) per targeted linear x {arch.layers} layers"))
        grads = trainable * pb
        per_tensor = setup.lora_rank * arch.hidden
        comps.append(Component(key="gradients", label="adapter gradients (fp32)", bytes=grads))
    states, opt_temp, opt_note = optimizer_bytes(trainable, pb, setup.optimizer, per_tensor)
    paged = setup.optimizer.startswith("paged")
    comps.append(Component(key="optimizer", label=f"optimizer states ({setup.optimizer})", bytes=states,
                           in_allocator=not paged, note=opt_note))
    master = setup.full_master_fp32 and setup.method == "full"
    persistent = weights + (trainable * BYTES["fp32"] if master else 0.0)
    if setup.method != "full":
        persistent += trainable * pb
    opt_alloc = 0.0 if paged else states
    # gradients exist during the forward only when accumulating over micro-batches
    grads_in_fwd = grads if setup.grad_accum > 1 else 0.0

    act = activation_bytes(arch, setup)
    lg = logits_bytes(arch, setup)
    keep = lg["logits"] if setup.keep_logits else 0.0
    # end of forward, inside the loss: logits, their fp32 copy and the log-softmax output
    loss_fwd = lg["logits"] + lg["fp32_copy"] + lg["log_softmax"]
    # loss backward: kept log-softmax, the nll gradient and the log-softmax gradient (fp32 each)
    loss_bwd = keep + lg["log_softmax"] + 2 * lg["grad"]
    # autocast casts an fp32 lm_head weight to 16 bit on every forward and keeps the copy for backward
    head_cast = lg["head_cast"]
    base = persistent + opt_alloc
    tokens = setup.tokens_per_micro_step
    head_grad_in = arch.hidden * BYTES[p.res] * tokens
    phases = {
        "forward (loss)": base + grads_in_fwd + act.saved_all + act.final_norm + head_cast + loss_fwd,
        "backward (loss)": base + grads_in_fwd + act.saved_all + act.final_norm + head_cast + loss_bwd,
    }
    # a layer's backward: under checkpointing the layer is recomputed on top of the checkpoints;
    # in full fine-tuning weight gradients grow while saved activations shrink (max at either end)
    layer_transient = _layer_backward_transient(arch, setup)
    layer_live = act.saved_all + (act.layer if setup.grad_checkpointing else 0.0)
    if setup.method == "full":
        held = max(layer_live + grads_in_fwd, grads + (act.layer if setup.grad_checkpointing else 0.0))
    else:
        held = layer_live + grads
    phases["backward (layers)"] = base + held + layer_transient + head_grad_in
    if setup.grad_checkpointing:  # the forward of one layer runs without keeping its tensors
        phases["forward (layers)"] = base + grads_in_fwd + act.saved_all + _layer_forward_working_set(arch, setup)
    step_grads = grads
    if master:
        step_grads = grads + trainable * BYTES["bf16"]
    phases["optimizer step"] = base + step_grads + opt_temp
    peak_phase = max(phases, key=lambda k: phases[k])
    peak = phases[peak_phase]

    act_label = "activations (" + ("checkpointed layer inputs + one recomputed layer" if setup.grad_checkpointing
                                   else "all layers' saved tensors") + ")"
    act_bytes = act.saved_all + (act.layer if setup.grad_checkpointing else 0.0)
    comps.append(Component(key="activations", label=act_label, bytes=act_bytes,
                           note=f"{act.per_token_layer / 1024:.1f} KiB per token per layer x {tokens} tokens"
                           + (f" (checkpoints: {arch.layers} x hidden x {BYTES[p.res]} bytes)" if setup.grad_checkpointing else f" x {arch.layers} layers")))
    comps.append(Component(key="logits", label="logits + fp32 loss copies",
                           bytes=max(loss_fwd, loss_bwd) + act.final_norm + head_cast,
                           note=f"{tokens} tokens x vocab {arch.vocab}: logits, fp32 copy, log-softmax, gradients"))
    comps.append(Component(key="transient", label="backward temporaries", bytes=layer_transient + head_grad_in,
                           note="gradients of one layer's intermediates, dequantised weights"))
    if opt_temp:
        comps.append(Component(key="optimizer_step_temp", label="optimizer step buffer (foreach AdamW)",
                               bytes=opt_temp, note="one parameter-sized buffer while stepping"))
    return MemoryEstimate(
        model=arch.key, setup=setup, mode="train", components=comps, peak_phase=peak_phase,
        phase_peaks_gb={k: v / GB for k, v in phases.items()}, peak_allocated_gb=peak / GB,
        outside_allocator_gb=(states if paged else 0.0) / GB, params_total=pc.total, params_trainable=trainable,
        params_catalog_b=arch.params_b, warnings=warnings,
    )


def _mlp_dtypes(setup: TrainSetup) -> tuple[str, str, str]:
    """(base output, LoRA output, their sum) dtypes in the gated MLP on this code path."""
    p = _path(setup)
    x = _promote(p.norm_w, p.res)
    base = x if (p.quantised or not p.autocast) else p.compute
    lora = p.compute if p.autocast else p.lora
    return base, lora, _promote(base, lora)


def _layer_backward_transient(arch: ModelArch, setup: TrainSetup) -> float:
    """Gradients alive on top of one layer's saved tensors while it runs backward.

    The gated MLP's backward is the widest point: at the multiply autograd holds the gradient of
    the product and creates those of both factors (intermediate-sized, in the activation dtype)
    while the product's own saved copy is already released; the down projection's LoRA branch
    creates the fp32 gradient of its (fp32) input. The residual stream's gradient comes on top.
    """
    p = _path(setup)
    t = setup.tokens_per_micro_step
    i = arch.intermediate
    base, _, _ = _mlp_dtypes(setup)
    act_b = BYTES[base]
    lora_in_b = BYTES[p.compute] if p.autocast else BYTES[p.lora]
    lora_down = setup.method != "full" and "down" in setup.target_modules
    widest = max(lora_in_b * i if lora_down else 0.0, 2 * i * act_b)
    return (widest + arch.hidden * BYTES[p.res]) * t


def _layer_forward_working_set(arch: ModelArch, setup: TrainSetup) -> float:
    """Tensors alive at once in one layer's forward when nothing is kept (checkpointing).

    The widest moment is the MLP's second input projection: the first one's output is alive while
    the base output, the LoRA branch output and their sum exist together (a bitsandbytes layer
    also holds its 16-bit output before casting it back to the fp32 input dtype).
    """
    p = _path(setup)
    t = setup.tokens_per_micro_step
    i = arch.intermediate
    base, lora, summed = _mlp_dtypes(setup)
    bnb_tmp = BYTES[p.compute] if (p.quantised and base == "fp32") else 0
    fused = arch.model_type in _FUSED_GATE_UP
    lora_up = setup.method != "full" and "up" in setup.target_modules
    width = 2 * i if fused else i
    proj = width * (BYTES[base] + bnb_tmp + ((BYTES[lora] + BYTES[summed]) if lora_up else 0))
    if fused:
        act = 4 * i * BYTES[summed if lora_up else base]  # gate_up output, silu and product
        ws = max(proj, act)
    else:
        ws = i * BYTES[summed if lora_up else base] + proj  # the gate output is alive meanwhile
        ws = max(ws, 3 * i * BYTES[summed if lora_up else base])
    return ws * t


def estimate_inference(arch: ModelArch, weights: WeightFormat = "bf16", batch_size: int = 1, context: int = 2048,
                       double_quant: bool = True) -> MemoryEstimate:
    """Weights plus the KV cache for `context` tokens and one step's logits."""
    comps = weight_components(arch, None, weights, double_quant, upcast=False)
    kv = 2 * arch.layers * arch.kv_heads * arch.head_dim * BYTES["bf16"] * context * batch_size
    comps.append(Component(key="kv_cache", label="KV cache (bf16)", bytes=kv,
                           note=f"2 x {arch.layers} layers x {arch.kv_heads} KV heads x {arch.head_dim} x {context} tokens x batch {batch_size}"))
    logits = batch_size * arch.vocab * BYTES["fp32"]
    comps.append(Component(key="logits", label="last-token logits (fp32)", bytes=logits))
    pc = count_params(arch)
    total = sum(c.bytes for c in comps)
    return MemoryEstimate(model=arch.key, mode="inference", components=comps, peak_phase="decode",
                          phase_peaks_gb={"decode": total / GB}, peak_allocated_gb=total / GB,
                          params_total=pc.total, params_trainable=0, params_catalog_b=arch.params_b)


# --- measured rows -> the setup they ran -----------------------------------------------------------

_PRECISION_TO_WEIGHTS = {"nf4": "nf4", "int8_mixed": "int8", "int8_pure": "int8", "bf16": "bf16", "fp16": "fp16",
                         "fp32": "fp32"}


def setup_from_row(row) -> TrainSetup:  # row: measurements.schema.MeasurementRow (task=finetune)
    """The TrainSetup a measured fine-tuning row ran (the engine's loop: no autocast, the output
    dropped before backward, peft's k-bit preparation for QLoRA), read from its fields."""
    if row.task != "finetune" or row.method is None:
        raise ValueError(f"row '{row.id}' is not a fine-tuning row")
    weights = _PRECISION_TO_WEIGHTS.get(row.precision)
    if weights is None:
        raise ValueError(f"row '{row.id}': precision '{row.precision}' is not a fine-tuning weight format")
    upcast = (row.kbit_upcast if row.kbit_upcast is not None else True) if row.method == "qlora" else None
    opt = row.optimizer or "adamw"
    return TrainSetup(
        method=row.method,
        weights=weights,  # type: ignore[arg-type]
        double_quant=bool(row.double_quant),
        lora_rank=row.lora_rank or 16,
        target_modules=parse_target_modules(row.target_modules) if row.target_modules else CANONICAL_MODULES,
        lora_dropout=row.lora_dropout or 0.0,
        batch_size=row.batch_size,
        seq_len=row.seq_len or 512,
        grad_checkpointing=bool(row.grad_checkpointing),
        optimizer=normalize_optimizer(opt),  # type: ignore[arg-type]
        autocast=False,
        kbit_fp32_upcast=upcast,
        keep_logits=False,
    )


# --- what nvidia-smi adds on top of the allocator's peak -------------------------------------------


class DeviceOverheads(BaseModel):
    """Allocator reserve and CUDA context, from measured fine-tuning rows (median over rows)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reserve_ratio: float = Field(description="peak reserved / peak allocated")
    context_gb: float = Field(description="NVML used - peak reserved: CUDA context, library handles")
    row_ids: list[str]

    @property
    def measured(self) -> bool:
        return bool(self.row_ids)


def device_overheads(rows) -> DeviceOverheads:  # rows: list[MeasurementRow]
    ratios: list[float] = []
    contexts: list[float] = []
    ids: list[str] = []
    for r in rows:
        if r.task != "finetune" or r.kind != "measured":
            continue
        if r.peak_mem_alloc_gb and r.peak_mem_reserved_gb and r.peak_mem_nvml_gb:
            ratios.append(r.peak_mem_reserved_gb / r.peak_mem_alloc_gb)
            contexts.append(r.peak_mem_nvml_gb - r.peak_mem_reserved_gb)
            ids.append(r.id)
    if not ids:
        # nothing measured yet: the allocator's peak alone (said so by the caller)
        return DeviceOverheads(reserve_ratio=1.0, context_gb=0.0, row_ids=[])
    ratios.sort()
    contexts.sort()
    return DeviceOverheads(reserve_ratio=ratios[len(ratios) // 2], context_gb=contexts[len(contexts) // 2], row_ids=ids)


def validation_table() -> str:
    """The README's per-row table: predicted vs measured peak allocated memory of every measured
    fine-tuning row (`python -m advisor.finetune_memory` prints it)."""
    from measurements import catalog
    from measurements.store import load_rows

    lines = ["| row (h100-ft-syn-... unless another GPU is named) | method | seq | ckpt | measured GB | predicted GB | error |",
             "|---|---|---|---|---|---|---|"]
    for r in load_rows(include_local=False):
        if r.task != "finetune" or r.kind != "measured" or not r.peak_mem_alloc_gb:
            continue
        arch = catalog.model_by_hub_id(r.model_id)
        if arch is None:
            continue
        est = estimate_training(arch, setup_from_row(r))
        err = (est.peak_allocated_gb / r.peak_mem_alloc_gb - 1) * 100
        lines.append(f"| {r.id.removeprefix('h100-ft-syn-')} | {r.method} {r.precision} | {r.seq_len} | "
                     f"{'on' if r.grad_checkpointing else 'off'} | {r.peak_mem_alloc_gb:.2f} | "
                     f"{est.peak_allocated_gb:.2f} | {err:+.1f}% |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(validation_table())
