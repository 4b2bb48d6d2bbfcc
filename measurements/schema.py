"""The contract between the engine and the advisor: a measurement row and the catalog entries.

Every field has a unit in its name or its description. CSV files may carry any subset of the
optional columns; an empty cell means "not known" (None).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from measurements.vocab import PRECISIONS as PRECISIONS  # the one vocabulary (measurements/vocab.py)
from measurements.vocab import FormatKey as FormatKey
from measurements.vocab import Fp8Mode as Fp8Mode
from measurements.vocab import Precision as Precision

Kind = Literal["measured", "simulated", "derived"]
Task = Literal["inference", "finetune"]
Weights = Literal["real", "synthetic"]
FinetuneMethod = Literal["full", "lora", "qlora"]
# The serving regime is a dimension of every row (DESIGN: "the framework is a dimension"): a row
# of one framework never silently stands in for another.
Framework = Literal[
    "hf-eager", "hf-static-cache", "hf-continuous-batching", "vllm", "sglang", "tgi", "trt-llm", "llama.cpp"
]
FRAMEWORKS: tuple[str, ...] = (
    "hf-eager", "hf-static-cache", "hf-continuous-batching", "vllm", "sglang", "tgi", "trt-llm", "llama.cpp"
)
# What a serving row's requests were (the `task` field says inference or fine-tuning): chat turns,
# reasoning with long outputs, or code completion (fill-in-the-middle).
Workload = Literal["chat", "reasoning", "code-completion"]
WORKLOADS: tuple[str, ...] = ("chat", "reasoning", "code-completion")


class Record(BaseModel):
    """A row or catalog entry: read-only once validated, and a column the model does not name is
    an error (a misspelt CSV header never passes silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Where a figure or an entry comes from: never empty (principle 1, every number has a source).
Source = Annotated[str, Field(min_length=3)]

# torchao's FP8 configs and the FP8 implementation each runs (measurements.vocab.Fp8Mode)
FP8_CONFIGS = {"Float8WeightOnlyConfig": "weight_only", "Float8DynamicActivationFloat8WeightConfig": "dynamic"}


class MeasurementRow(Record):
    """One measured (or simulated, or derived) configuration."""

    id: str = Field(min_length=3, pattern=r"^[A-Za-z0-9._:+-]+$", description="stable identifier")
    source: str = Field(min_length=3, description="where the figures come from (file, table, run)")
    kind: Kind
    task: Task
    gpu: str = Field(min_length=1, description="GPU catalog key, or 'cpu' for a CPU-only run")
    gpu_count: int = Field(default=1, ge=1)
    model_id: str = Field(min_length=1, description="hub id of the model")
    params_b: float = Field(gt=0, description="total parameters, billions")
    weights: Weights = "real"
    precision: Precision
    fp8_mode: Fp8Mode | None = Field(default=None, description=(
        "fp8 rows: which FP8 implementation ran ('dynamic': FP8 activations and weights, FP8 matmuls; "
        "'weight_only': FP8 weights dequantised to 16 bits for 16-bit matmuls); None: not recorded"))
    batch_size: int = Field(ge=1)
    prompt_tokens: int | None = Field(default=None, ge=1)
    gen_tokens: int | None = Field(default=None, ge=1)

    throughput_tok_s: float | None = Field(default=None, gt=0, description="generated (or trained) tokens/s")
    throughput_std: float | None = Field(default=None, ge=0)
    prefill_ms: float | None = Field(default=None, ge=0, description="time to first token, ms")
    decode_tok_s: float | None = Field(default=None, gt=0, description="decode-only throughput")
    power_w: float | None = Field(default=None, gt=0, description="mean board power while running, W")
    idle_power_w: float | None = Field(default=None, ge=0)
    energy_j_per_1k_tok: float | None = Field(default=None, gt=0, description="gross J per 1,000 tokens")
    energy_std: float | None = Field(default=None, ge=0)
    energy_ci95: float | None = Field(default=None, ge=0, description="half-width of the 95% CI")
    energy_net_j_per_1k_tok: float | None = Field(default=None, ge=0, description="net of idle power")
    energy_method: str | None = Field(default=None, description="nvml_counter | power_sampler | reported")
    gpu_mem_gb: float | None = Field(default=None, gt=0)
    n_runs: int | None = Field(default=None, ge=1)

    torch_version: str | None = None
    transformers_version: str | None = None
    bitsandbytes_version: str | None = None
    torchao_version: str | None = None
    peft_version: str | None = None
    cuda_version: str | None = None
    driver_version: str | None = None
    nightly_build: bool = False
    measured_on: dt.date | None = None
    notes: str = ""
    # A row whose printed figures a more primary file of the same session contradicts: kept for the
    # record (nothing stored is lost), never evidence nor calibration input; the other row holds the
    # configuration's figures and the notes say why.
    superseded_by: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._:+-]+$",
        description="id of the row that holds this configuration's figures instead (its notes say why)")

    # fine-tuning
    method: FinetuneMethod | None = None
    lora_rank: int | None = Field(default=None, ge=1)
    lora_dropout: float | None = Field(default=None, ge=0, lt=1, description="LoRA dropout (LoRA/QLoRA rows)")
    target_modules: str | None = Field(
        default=None, description="modules LoRA adapts: 'all-linear' or a ';'-separated list (LoRA/QLoRA rows)")
    double_quant: bool | None = Field(default=None, description="NF4 with double quantisation of the scales "
                                      "(QLoRA bases, and inference rows that say so)")
    kbit_upcast: bool | None = Field(
        default=None, description="peft prepare_model_for_kbit_training up-cast non-quantised parameters to FP32 (QLoRA rows)")
    seq_len: int | None = Field(default=None, ge=1)
    grad_checkpointing: bool | None = None
    optimizer: str | None = None
    step_time_s: float | None = Field(default=None, gt=0)
    energy_j_per_step: float | None = Field(default=None, gt=0)
    peak_mem_alloc_gb: float | None = Field(default=None, gt=0)
    peak_mem_reserved_gb: float | None = Field(default=None, gt=0)
    peak_mem_nvml_gb: float | None = Field(default=None, gt=0)
    run_energy_wh: float | None = Field(default=None, gt=0, description="whole run, Wh")
    run_duration_h: float | None = Field(default=None, gt=0)
    tokens_processed: int | None = Field(default=None, ge=1)
    trace_file: str | None = None

    # serving: the engine, parallelism and load of the run, and what a user of it sees
    framework: Framework = Field(default="hf-eager", description="serving regime (schema.FRAMEWORKS)")
    workload: Workload | None = Field(default=None, description="chat, reasoning or code-completion")
    workload_dataset: str | None = Field(default=None, description="where the prompts came from")
    tensor_parallel: int | None = Field(default=None, ge=1)
    data_parallel: int | None = Field(default=None, ge=1)
    expert_parallel: int | None = Field(default=None, ge=1)
    max_num_seqs: int | None = Field(default=None, ge=1, description="the server's concurrency limit")
    mean_batch_size: float | None = Field(default=None, gt=0, description="sequences actually running, mean")
    mean_output_tokens: float | None = Field(default=None, gt=0, description="generated tokens per request, mean")
    energy_j_per_request: float | None = Field(default=None, gt=0, description="J per response")
    ttft_p50_ms: float | None = Field(default=None, ge=0, description="time to first token, median")
    ttft_p90_ms: float | None = Field(default=None, ge=0)
    ttft_p99_ms: float | None = Field(default=None, ge=0)
    itl_p50_ms: float | None = Field(default=None, ge=0, description="inter-token latency, median")
    itl_p90_ms: float | None = Field(default=None, ge=0)
    itl_p95_ms: float | None = Field(default=None, ge=0)
    itl_p99_ms: float | None = Field(default=None, ge=0)
    e2e_p50_s: float | None = Field(default=None, ge=0, description="end-to-end request latency, median, s")
    e2e_p90_s: float | None = Field(default=None, ge=0)
    e2e_p99_s: float | None = Field(default=None, ge=0)
    # quality beside energy, where the source measured it
    perplexity: float | None = Field(default=None, gt=0)
    perplexity_dataset: str | None = None
    # published data: where exactly the figures were read
    source_repo: str | None = Field(default=None, description="owner/name of the source repository")
    source_commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{7,40}$")
    source_path: str | None = None

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_hint(cls, v: object) -> object:
        if isinstance(v, str) and v.strip().lower() == "int8":
            raise ValueError("'int8' is ambiguous: use int8_mixed (threshold 6.0) or int8_pure (threshold 0.0)")
        return v.strip().lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _task_fields(self) -> MeasurementRow:
        if self.fp8_mode is not None and self.precision != "fp8":
            raise ValueError(f"fp8_mode '{self.fp8_mode}' is for fp8 rows only (this row is {self.precision}): "
                             "leave it empty")
        if self.task == "finetune" and self.method is None:
            raise ValueError("fine-tuning rows need 'method' (full, lora or qlora)")
        if self.perplexity is not None and not self.perplexity_dataset:
            raise ValueError("a perplexity needs 'perplexity_dataset' (the text it was measured on)")
        parallel = [v for v in (self.tensor_parallel, self.data_parallel) if v is not None]
        if len(parallel) == 2 and self.tensor_parallel * self.data_parallel > self.gpu_count:  # type: ignore[operator]
            raise ValueError(f"tensor_parallel x data_parallel ({self.tensor_parallel} x {self.data_parallel}) "
                             f"exceeds gpu_count ({self.gpu_count})")
        if self.superseded_by is not None and (self.superseded_by == self.id or self.superseded_by not in self.notes):
            raise ValueError("superseded_by names another row, and the notes say why that row replaces this one "
                             "(naming it)")
        # An inference measurement without energy is allowed (CPU runs), but must say why.
        if (self.task == "inference" and self.energy_j_per_1k_tok is None and self.kind == "measured"
                and "energy unavailable" not in self.notes.lower()):
            raise ValueError("measured inference rows need energy_j_per_1k_tok or a note 'energy unavailable'")
        return self

    @property
    def fp8_implementation(self) -> str | None:
        """An fp8 row's implementation: its fp8_mode, else the torchao config its notes name (the engine
        wrote "fp8 via torchao <version> <config>" before the column existed); None if neither or not fp8."""
        if self.precision != "fp8":
            return None
        if self.fp8_mode is not None:
            return self.fp8_mode
        named = {m for cfg, m in FP8_CONFIGS.items() if cfg in self.notes}
        return named.pop() if len(named) == 1 else None

    @property
    def is_evidence(self) -> bool:
        """Simulated and superseded rows are kept for the record and never used as evidence."""
        return self.kind != "simulated" and self.superseded_by is None


class GPU(Record):
    key: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    aliases: tuple[str, ...] = ()
    architecture: str
    compute_capability: str = Field(pattern=r"^\d+\.\d+$")
    vram_gb: float = Field(gt=0, le=1024)
    mem_bandwidth_gbs: float = Field(gt=0, le=20000)
    memory_type: Literal["HBM2", "HBM2e", "HBM3", "HBM3e", "GDDR6", "GDDR6X", "GDDR7"] = Field(
        description="DRAM kind: stacked HBM moves a byte for less energy than GDDR on the board")
    tdp_w: float = Field(gt=0, le=2000)
    idle_power_w: float = Field(gt=0, le=200)
    fp16_tflops: float = Field(gt=0, le=5000, description="dense FP16 tensor TFLOPS")
    bf16_tflops: float | None = Field(default=None, ge=0, le=5000)
    int8_tops: float | None = Field(default=None, ge=0, le=10000)
    fp8_tflops: float | None = Field(default=None, ge=0, le=10000, description="dense FP8 tensor TFLOPS")
    fp8_support: bool
    bf16_support: bool
    segment: Literal["consumer", "datacenter", "workstation"]
    source: Source
    notes: str = ""

    @property
    def memory_family(self) -> Literal["hbm", "gddr"]:
        return "hbm" if self.memory_type.startswith("HBM") else "gddr"


class ModelArch(Record):
    key: str = Field(pattern=r"^[a-z0-9_.-]+$")
    hub_id: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    name: str
    aliases: tuple[str, ...] = ()
    model_type: str = Field(description="transformers model_type, e.g. qwen2, llama, mistral")
    params_b: float = Field(gt=0)
    active_params_b: float = Field(gt=0)
    layers: int = Field(ge=1)
    hidden: int = Field(ge=1)
    heads: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    intermediate: int = Field(ge=1)
    vocab: int = Field(ge=1)
    tied_embeddings: bool
    context_length: int = Field(ge=1)
    num_experts: int | None = Field(default=None, ge=1)
    experts_per_token: int | None = Field(default=None, ge=1)
    # Where the KV cache is not 2 x kv_heads x head_dim on every layer: hybrids keep one only on
    # their attention layers; multi-head latent attention (DeepSeek) caches one compressed vector.
    attention_layers: int | None = Field(default=None, ge=1, description="layers with a KV cache, if not all")
    kv_cache_dim: int | None = Field(default=None, ge=1, description="cached elements per token and layer, if not 2 x kv_heads x head_dim")
    source: Source
    notes: str = ""

    def kv_elems_per_token(self) -> int:
        """KV-cache elements one token adds, over all layers that keep a cache."""
        per_layer = self.kv_cache_dim or 2 * self.kv_heads * self.head_dim
        return (self.attention_layers or self.layers) * per_layer

    @model_validator(mode="after")
    def _shapes(self) -> ModelArch:
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.active_params_b > self.params_b:
            raise ValueError("active_params_b cannot exceed params_b")
        if self.attention_layers is not None and self.attention_layers > self.layers:
            raise ValueError("attention_layers cannot exceed layers")
        return self


class Region(Record):
    key: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    name_zh: str = Field(default="", description="the name in Chinese answers")
    aliases: tuple[str, ...] = ()
    kind: Literal["grid", "cloud"]
    price_usd_kwh: float = Field(gt=0, le=2)
    grid_gco2_kwh: float = Field(ge=0, le=1500)
    price_source: Source
    carbon_source: Source
    notes: str = ""


class Factor(Record):
    """A named constant used in answers (PUE, equivalences, conversions), with its source."""

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    value: float
    unit: str
    description: str
    source: Source


class GPUPrice(Record):
    """Hourly rental price of a GPU, for cost of fine-tuning runs."""

    gpu: str
    provider: str
    usd_per_hour: float = Field(gt=0, le=200)
    as_of: dt.date
    source: Source


class GPUPurchasePrice(Record):
    """What one GPU costs to buy, for the amortised cost of owned GPUs."""

    gpu: str
    usd: float = Field(gt=0, le=1_000_000)
    as_of: dt.date
    source: Source


class WeightFormat(Record):
    """How a precision stores the weights and the KV cache, and which tensor rate its matmuls run at."""

    key: FormatKey
    weight_bits: float = Field(gt=0, le=32, description="bits per stored weight of the quantised layers")
    state_bits_per_weight: float = Field(ge=0, le=8, description="quantisation state (scales, absmax) per weight")
    quantised: Literal["all", "linear"] = Field(description="'linear': embeddings and the LM head stay 16-bit")
    kv_bits: float = Field(gt=0, le=32)
    compute_rate: Literal["fp16_tflops", "bf16_tflops", "int8_tops", "fp8_tflops"]
    compute_rate_ratio: float = Field(gt=0, le=1)
    dequant_bits_per_weight: float = Field(default=0, ge=0, le=256, description=(
        "bits per quantised weight that a dequantising kernel path writes and reads back (a 16-bit copy: 32; "
        "an eager dequantisation through 32-bit intermediates more) before a 16-bit matmul, on steps of at least dequant_min_tokens tokens; 0: none"))
    dequant_min_tokens: int = Field(default=0, ge=0, description="tokens per step from which the dequantising path runs")
    bw_efficiency_of: FormatKey | None = Field(default=None, description=(
        "the format whose fitted bandwidth efficiency this one's kernels stream at, instead of one fitted on "
        "its own rows (its extra traffic is modelled as bytes: dequant_bits_per_weight); empty: its own"))
    unmeasured_like: FormatKey | None = Field(default=None, description=(
        "where no row of this format exists, the format whose fitted kernel figures (overhead per layer, "
        "bandwidth efficiency) it takes: the one whose kernels it resembles most; empty: FP16's"))
    source: Source
    notes: str = ""


class ServingParam(Record):
    """One calibrated parameter of the serving performance model (advisor.estimate.serving), fitted
    by least squares on the measured rows of one serving framework."""

    framework: Framework
    param: str = Field(min_length=2, description="a shared name, 'prompt:<workload>' or '<multiplier>:<gpu>'")
    value: float = Field(gt=0)
    unit: str
    n_rows: int = Field(ge=1)
    fit_median_abs_pct_err: float | None = Field(default=None, ge=0)
    source: Source


class PerfParam(Record):
    """One calibrated parameter of the per-GPU performance model (advisor.estimate.physics), fitted
    by least squares on the measured rows of one framework and format."""

    framework: Framework
    format: str = Field(description="a precision, or '*' for a parameter shared by the framework's formats")
    param: str
    value: float
    unit: str
    n_rows: int = Field(ge=0)
    fit_median_abs_pct_err: float | None = Field(default=None, ge=0)
    source: Source


class FinetuneParam(Record):
    """One fitted parameter of the training performance model (advisor.finetune_time), per
    fine-tuning method, fitted by least squares on the measured fine-tuning rows."""

    method: Literal["full", "lora", "qlora"]
    param: str
    value: float
    unit: str
    n_rows: int = Field(ge=0)
    fit_median_abs_pct_err: float | None = Field(default=None, ge=0, description="median |error| of step time")
    borrowed_from: Literal["full", "lora", "qlora"] | None = Field(
        default=None, description="too few rows of this method: the law of the best-measured method")
    source: Source
