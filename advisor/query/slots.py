"""The typed slots of a question: Context (what the user stated, carried between questions), Query (a
validated question: every slot filled, stated or defaulted, with warnings, conversions and what was not
understood) and QueryError."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from measurements.schema import Fp8Mode, Framework, Precision

UseCase = Literal["production_api", "interactive_chat", "offline_batch"]


CompareAxis = Literal["precision", "gpu", "batch_size", "model_size", "framework"]


QueryProtocol = Literal["optimize", "diagnose", "compare", "estimate", "audit", "plan"]


Lang = Literal["en", "zh"]


USE_CASES: tuple[str, ...] = ("production_api", "interactive_chat", "offline_batch")


QUERY_PROTOCOLS: tuple[str, ...] = ("optimize", "diagnose", "compare", "estimate", "audit", "plan")


USE_CASE_LABEL = {
    "production_api": "production API",
    "interactive_chat": "interactive chat",
    "offline_batch": "offline batch processing",
}


PRECISION_LABEL = {
    "fp32": "FP32",
    "fp16": "FP16",
    "bf16": "BF16",
    "fp8": "FP8 (torchao, eager)",
    "nf4": "NF4 (4-bit)",
    "int8_mixed": "INT8 mixed (load_in_8bit default)",
    "int8_pure": "INT8 pure (threshold=0.0)",
}


# The GPU assumed when none is named: the seed's parameter guide picks the most common consumer
# GPU it measured. A catalog key, not a figure.
DEFAULT_GPU = "rtx4090d"


DEFAULT_PRECISION = "fp16"


DEFAULT_USE_CASE = "production_api"


DEFAULT_REGION = "us"


class QueryError(ValueError):
    """The question (or the fields) cannot be answered as given; `errors` says why, one per item."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors) or ["the question could not be understood"]
        super().__init__("; ".join(self.errors))


class Context(BaseModel):
    """What the user has told us so far: only values they stated (never defaults), so a follow-up
    like "and on an A800?" keeps the model and precision and replaces the GPU."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="catalog key, or the name as typed when not in the catalog")
    model_params_b: float | None = Field(default=None, gt=0)
    gpu: str | None = Field(default=None, description="GPU catalog key")
    gpu_count: int | None = Field(default=None, ge=1, description="GPUs serving one replica (tensor parallel size)")
    framework: Framework | None = Field(default=None, description="serving framework / regime")
    precision: Precision | None = None
    fp8_mode: Fp8Mode | None = Field(default=None, description="fp8: dynamic (FP8 matmuls) or weight_only, as stated")
    batch_size: int | None = None
    prompt_tokens: int | None = None
    gen_tokens: int | None = None
    requests_per_month: float | None = Field(default=None, ge=0)
    tokens_per_month: float | None = Field(default=None, ge=0, description="generated tokens per month")
    job_tokens: float | None = Field(default=None, ge=0, description="a one-off job, in tokens")
    hours_per_day: float | None = Field(default=None, gt=0, le=24)
    workload: str | None = Field(default=None, description="the workload as the user stated it")
    region: str | None = Field(default=None, description="region catalog key")
    price_usd_kwh: float | None = Field(default=None, gt=0)
    grid_gco2_kwh: float | None = Field(default=None, ge=0)
    pue: float | None = Field(default=None, ge=1)
    own_gpus: bool | None = Field(default=None, description="the GPUs are the user's own: purchase amortised over a "
                                  "lifetime + electricity, instead of rental + electricity")
    gpu_lifetime_years: float | None = Field(default=None, gt=0, le=20, description="years an owned GPU is amortised over")
    gpu_purchase_usd: float | None = Field(default=None, gt=0, description="what one owned GPU cost (overrides the catalog)")
    use_case: UseCase | None = None
    itl_target_ms: float | None = Field(default=None, gt=0, description="per-token latency target (inter-token latency)")
    itl_percentile: float | None = Field(default=None, gt=0, le=100, description="percentile the ITL target applies to")
    e2e_target_s: float | None = Field(default=None, gt=0, description="end-to-end latency target per answer")
    lang: Lang | None = None
    last_protocol: QueryProtocol | None = None


@dataclass
class Reading:
    """What a question states besides the slots themselves (from the text or from named fields):
    the lists to compare, symptoms, reported figures, flags, and the words each slot came from."""

    warnings: list[str] = field(default_factory=list)
    conversions: list[str] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)
    words: dict[str, str] = field(default_factory=dict)
    explain: bool = False
    precisions: list[str] = field(default_factory=list)
    all_precisions: bool = False
    gpus: list[str] = field(default_factory=list)
    symptoms: list[str] = field(default_factory=list)
    reported_tok_s: float | None = None
    reported_power_w: float | None = None
    reported_j_per_1k_tok: float | None = None
    nightly: bool = False
    compiled: bool = False
    model_name: str | None = None
    model_known: bool = False
    axis: str | None = None
    batch_sizes: list[int] = field(default_factory=list)
    frameworks: list[str] = field(default_factory=list)
    finetune: dict[str, Any] = field(default_factory=dict)
    carried: list[str] = field(default_factory=list)
    standalone: bool = False


SLOTS: tuple[str, ...] = tuple(k for k in Context.model_fields if k not in ("lang", "last_protocol"))


class Query(Context):
    """A validated question: every slot needed to answer is filled (stated or defaulted)."""

    protocol: QueryProtocol
    text: str = ""
    defaults_applied: list[str] = Field(default_factory=list, description="human-readable: slot, value, why")
    defaulted: list[str] = Field(default_factory=list, description="names of the slots that were defaulted")
    warnings: list[str] = Field(default_factory=list)
    conversions: list[str] = Field(default_factory=list, description="unit conversions made, shown to the user")
    # what the question is about, beyond the configuration
    compare_axis: CompareAxis = "precision"
    compare_precisions: list[str] = Field(default_factory=list)
    compare_gpus: list[str] = Field(default_factory=list)
    compare_batch_sizes: list[int] = Field(default_factory=list)
    compare_frameworks: list[str] = Field(default_factory=list, description="frameworks to compare (axis framework)")
    explain: bool = Field(default=False, description="a 'why' question: answer with the evidence and the mechanism")
    symptoms: list[str] = Field(default_factory=list, description="slow, high_bill, high_power, high_energy, oom")
    reported_tok_s: float | None = None
    reported_power_w: float | None = None
    reported_j_per_1k_tok: float | None = None
    nightly: bool = False
    compiled: bool = Field(default=False, description="a compiled serving path (vLLM, SGLang, torch.compile)")
    model_name: str | None = Field(default=None, description="display name of the model")
    model_known: bool = Field(default=False, description="the model is in the catalog")
    not_understood: list[str] = Field(
        default_factory=list, description="facts the user stated that could not be used (shown before the answer)"
    )
    finetune: dict[str, Any] = Field(
        default_factory=dict, description="a fine-tuning question's run: PlanRequest fields (examples, epochs, ...)")
    carried: list[str] = Field(default_factory=list, description="slots taken from earlier questions in the chat")
    standalone: bool = Field(default=False, description="a general question answered without the chat's context")
    stated_words: dict[str, str] = Field(
        default_factory=dict, description="for each stated slot, the words of the question it was read from")

    def to_context(self) -> Context:
        """The slots the user stated, for the next question."""
        stated = {k: getattr(self, k) for k in SLOTS if k not in self.defaulted}
        return Context(**stated, lang=self.lang, last_protocol=self.protocol)
