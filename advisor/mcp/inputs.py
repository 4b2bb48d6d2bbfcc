"""The MCP tools' typed inputs: one pydantic model per tool (unknown fields refused, strict JSON
types, sizes bounded), so their JSON Schemas reach the agent. Nothing here imports `mcp`."""

from __future__ import annotations

import typing
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from advisor.api import BenchPrecision, Precision
from advisor.limits import (
    DEFAULT_ROWS,
    MAX_CODE_CHARS,
    MAX_NAME_CHARS,
    MAX_QUESTION_CHARS,
    MAX_ROWS,
)

# Size limits (advisor/limits.py, the one set for every way in): every string argument holds one
# question's worth at most, a path too; source code may be longer.
MAX_TEXT_CHARS = MAX_QUESTION_CHARS
MAX_PATH_CHARS = MAX_TEXT_CHARS


class ToolError(Exception):
    """A problem with a tool call that the caller can fix; its text is the error result."""



class ToolInput(BaseModel):
    """Base of every tool input: unknown fields are refused, not silently dropped."""

    # strict: JSON has real types, so `true` is not a batch size and "8" is not a number
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


Lang = Literal["en", "zh"]
ShortText = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]


# measurements.schema.FRAMEWORKS (tests/test_serving.py keeps the two equal)
Framework = Literal["hf-eager", "hf-static-cache", "hf-continuous-batching", "vllm", "sglang", "tgi", "trt-llm",
                    "llama.cpp"]


class _Serving(ToolInput):
    """The serving levers every question tool takes (issue #14): a row of one framework never stands
    in for another."""

    framework: Framework | None = Field(default=None, description="serving framework: hf-eager (HF generate), vllm, "
                                                                  "...; omitted: every framework measured on the GPU")
    gpu_count: int | None = Field(default=None, ge=1, le=64, description="GPUs serving one replica (tensor parallel)")
    latency_target_ms: float | None = Field(default=None, gt=0, le=1_000_000,
                                            description="per-token (inter-token) latency target, ms")
    latency_percentile: float | None = Field(default=None, gt=0, le=100,
                                             description="percentile the latency target applies to (50, 90, 95, 99)")


class AskInput(_Serving):
    """A free-text question, in English or Chinese, as a person would type it."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS,
                      description="the question, e.g. 'greenest way to serve mistral-7b on a 4090D, 10k requests/day'")
    lang: Lang | None = Field(default=None, description="answer language; detected from the text when omitted")


class AuditInput(ToolInput):
    """Code to audit for energy traps: a path under the server's root, or the code itself."""

    path: str | None = Field(default=None, min_length=1, max_length=MAX_PATH_CHARS,
                             description="a .py/.ipynb file or a folder, relative to the server's root "
                                         "(or absolute inside it); never read outside the root")
    code: str | None = Field(default=None, min_length=1, max_length=MAX_CODE_CHARS,
                             description="Python source to audit, when the code is not on disk")
    filename: str | None = Field(default=None, max_length=MAX_NAME_CHARS,
                                 description="name to report findings under when `code` is given")
    gpu: str | None = Field(default=None, max_length=MAX_NAME_CHARS,
                            description="the GPU the code runs on (key or alias), for data-backed impact")

    @model_validator(mode="after")
    def _one_source(self) -> AuditInput:
        if (self.path is None) == (self.code is None):
            raise ValueError("give exactly one of 'path' (a file or folder under the root) or 'code' (source text)")
        if self.filename is not None and self.code is None:
            raise ValueError("'filename' only goes with 'code'")
        return self


class QueryMeasurementsInput(ToolInput):
    """Filters over the measurement rows behind every answer (shipped and locally measured)."""

    gpu: str | None = Field(default=None, max_length=MAX_NAME_CHARS, description="GPU key or alias, e.g. 4090d, a800")
    model: str | None = Field(default=None, max_length=MAX_NAME_CHARS,
                              description="model key, alias or hub id (a substring of the hub id also matches)")
    precision: BenchPrecision | None = None
    kind: Literal["measured", "simulated", "derived"] | None = Field(
        default=None, description="simulated rows are kept for the record and are never evidence")
    task: Literal["inference", "finetune"] | None = None
    limit: int = Field(default=DEFAULT_ROWS, ge=1, le=MAX_ROWS, description="most rows to return")


UseCase = Literal["production_api", "interactive_chat", "offline_batch"]
Symptom = Literal["slow", "high_bill", "high_power", "high_energy", "oom"]
MAX_LIST = 16


class _Config(_Serving):
    """The configuration a question is about; every field is optional unless a tool says otherwise,
    and what is left out is defaulted and listed in the answer's `defaults_applied`."""

    model: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS,
                              description="model key, alias or Hugging Face id, e.g. 'mistral-7b', "
                                          "'Qwen/Qwen2.5-7B-Instruct'; an uncatalogued name must state its size ('my-13B')")
    model_params_b: float | None = Field(default=None, gt=0, le=10_000,
                                         description="parameters in billions, for a model not in the catalog")
    gpu: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS,
                            description="GPU key or alias, e.g. 'rtx4090d', '4090d', 'a800', 'rtx5090'")
    precision: Precision | None = Field(default=None, description="weights format; int8_mixed is bitsandbytes "
                                                                  "load_in_8bit's default, int8_pure sets threshold 0.0")
    batch_size: int | None = Field(default=None, ge=1, le=1_000_000)
    prompt_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    gen_tokens: int | None = Field(default=None, ge=1, le=10_000_000, description="generated tokens per request")
    use_case: UseCase | None = None
    lang: Lang | None = Field(default=None, description="language of the answer's text (default en)")


class _Workload(ToolInput):
    """How much work, in the unit the user gave; give at most one volume."""

    requests_per_day: float | None = Field(default=None, ge=0)
    requests_per_month: float | None = Field(default=None, ge=0)
    users_per_day: float | None = Field(default=None, ge=0)
    tokens_per_day: float | None = Field(default=None, ge=0, description="generated tokens per day")
    tokens_per_month: float | None = Field(default=None, ge=0, description="generated tokens per month")
    job_tokens: float | None = Field(default=None, ge=0, description="a one-off job, in generated tokens")
    characters: float | None = Field(default=None, ge=0, description="a one-off job of English text, in characters")
    chinese_characters: float | None = Field(default=None, ge=0, description="a one-off job of Chinese text, in characters")
    text_gb: float | None = Field(default=None, ge=0, description="a one-off job, in GB of English text")
    hours_per_day: float | None = Field(default=None, gt=0, le=24)
    region: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS,
                               description="region key or alias for electricity price and grid carbon, e.g. 'us', 'eu', 'cn'")
    price_usd_kwh: float | None = Field(default=None, gt=0, description="your electricity price; overrides the region's")
    grid_gco2_kwh: float | None = Field(default=None, ge=0, description="your grid's gCO2/kWh; overrides the region's")
    pue: float | None = Field(default=None, ge=1, le=10, description="data-centre overhead (1.0 = none)")
    own_gpus: bool | None = Field(default=None, description="the GPUs are yours: purchase price amortised over a "
                                  "lifetime + electricity, instead of rental + electricity")
    gpu_lifetime_years: float | None = Field(default=None, gt=0, le=20, description="years an owned GPU is amortised "
                                             "over (default: the catalog factor gpu_lifetime_years)")
    gpu_purchase_usd: float | None = Field(default=None, gt=0, le=1_000_000,
                                           description="what one owned GPU cost, USD (default: the catalog's price)")


class OptimizeInput(_Workload, _Config):
    """The greenest configuration for a model on a GPU for a use."""

    model: str = Field(min_length=1, max_length=MAX_NAME_CHARS,  # type: ignore[assignment]
                       description="model key, alias or Hugging Face id, e.g. 'mistral-7b'")


class EstimateInput(_Workload, _Config):
    """Energy, cost and CO2 of a workload, current configuration vs the optimized one."""

    model: str = Field(min_length=1, max_length=MAX_NAME_CHARS,  # type: ignore[assignment]
                       description="model key, alias or Hugging Face id, e.g. 'mistral-7b'")


class CompareInput(_Workload, _Config):
    """Compare precisions, GPUs or batch sizes side by side."""

    compare_axis: Literal["precision", "gpu", "batch_size", "model_size", "framework"] | None = Field(
        default=None, description="what varies; inferred from the lists below when omitted")
    compare_precisions: list[Precision] | None = Field(default=None, max_length=MAX_LIST,
                                                       description="precisions to compare (default: all measured)")
    compare_gpus: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]] | None = Field(
        default=None, max_length=MAX_LIST, description="GPUs to compare")
    compare_batch_sizes: list[Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(
        default=None, max_length=MAX_LIST, description="batch sizes to compare")
    compare_frameworks: list[Framework] | None = Field(default=None, min_length=2,
                                                       max_length=len(typing.get_args(Framework)),
                                                       description="frameworks to compare, e.g. ['hf-eager', 'vllm']")


class DiagnoseInput(_Workload, _Config):
    """What is wrong when inference is slow, power-hungry or expensive."""

    symptoms: list[Symptom] | None = Field(default=None, max_length=MAX_LIST)
    reported_tok_s: float | None = Field(default=None, gt=0, description="throughput the user observes, tokens/s")
    reported_power_w: float | None = Field(default=None, gt=0, description="board power the user observes, W")
    nightly: bool | None = Field(default=None, description="a nightly/pre-release torch build")
    compiled: bool | None = Field(default=None, description="a compiled serving path (vLLM, SGLang, torch.compile)")


class BenchmarkInput(ToolInput):
    """Measure inference on this machine's GPU (runs `ecolobster bench` in a child process)."""

    model: str = Field(min_length=1, max_length=MAX_NAME_CHARS,
                       description="catalog key or alias; with synthetic=false also a hub id or a local path "
                                   "under the server's root")
    synthetic: bool = Field(default=True, description="build the model from the architecture catalog with random "
                                                      "weights (no download; throughput and energy depend on shapes)")
    precisions: list[BenchPrecision] = Field(default=["fp16"], min_length=1,
                                             max_length=len(typing.get_args(BenchPrecision)))
    batch_sizes: list[Annotated[int, Field(ge=1, le=1024)]] = Field(default=[1], min_length=1, max_length=MAX_LIST)
    prompt_tokens: int | None = Field(default=None, ge=1, le=131_072)
    gen_tokens: int | None = Field(default=None, ge=2, le=131_072)
    runs: int | None = Field(default=None, ge=1, le=100, description="measured runs per configuration (default 10)")
    warmup: int | None = Field(default=None, ge=0, le=20, description="warm-up runs (default 3)")
    pause_s: float | None = Field(default=None, ge=0, le=600,
                                  description="stabilisation pause after loading the model, s (default 30)")
    idle_s: float | None = Field(default=None, ge=0, le=120,
                                 description="idle-power baseline before each configuration, s (default 5; 0: none)")
    timeout_s: int = Field(default=1800, ge=10, le=4 * 3600,
                           description="stop the measurement after this many seconds; finished configurations stay stored")
