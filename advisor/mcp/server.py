"""EcoLobster as a Model Context Protocol server, so AI agents call it as a tool.

`ecolobster mcp [--root DIR]` serves these tools over stdio (the official `mcp` SDK, optional
extra `ecolobster[mcp]`): optimize, compare, estimate, diagnose, ask, audit, plan_finetune,
query_measurements, and benchmark only with `--allow-benchmark` (it downloads and runs models)
where the engine is installed and a CUDA GPU is present.

Every tool takes a typed input (a pydantic model with `extra="forbid"`, so its JSON Schema
reaches the agent and unknown fields are refused) and returns the Answer twice: as structured
content (the Answer JSON, validated by the client against the tool's output schema) and as
text (a Markdown rendering, then the same JSON, for clients that only read text).

Bad input never takes the server down: malformed or oversized arguments, unknown tools, paths
outside the root and failures inside a protocol come back as an error result (`isError`) that
names what was wrong and what is accepted; the server goes on serving.

The input models and `tool_specs()` import nothing from `mcp`, so `ecolobster schema` can show
them on an install without the extra.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from advisor.answer import Answer, Citation, Provenance, Table
from advisor.limits import MAX_CODE_CHARS, MAX_QUESTION_CHARS

if TYPE_CHECKING:  # pragma: no cover
    from mcp.server.lowlevel import Server

log = logging.getLogger("ecolobster.mcp")

SERVER_NAME = "ecolobster"

# Size limits: policy against runaway input from an agent, not measured figures. A question is a
# few sentences; a pasted source file a few thousand lines; a whole call a megabyte of JSON.
MAX_TEXT_CHARS = MAX_QUESTION_CHARS  # every string argument: one question's worth at most

MAX_NAME_CHARS = 200
MAX_PATH_CHARS = MAX_TEXT_CHARS
MAX_ARGUMENTS_BYTES = 1_000_000
MAX_AUDIT_FILES = 500
MAX_ROWS = 500
DEFAULT_ROWS = 50
# Time budget of one synchronous call (policy): answers take well under a second and an audit of a
# 500-file folder seconds; past this the worker is killed and the call answered with an error.
DEFAULT_CALL_BUDGET_S = 120.0
# JSON-RPC lines (policy): far above any real call (arguments are capped at MAX_ARGUMENTS_BYTES),
# nesting far above any tool input (the SDK's own parser stops near 200 levels, silently).
MAX_LINE_BYTES = 4 * 1_000_000
MAX_JSON_DEPTH = 64

INSTRUCTIONS = (
    "EcoLobster answers energy, cost and CO2 questions about running or fine-tuning LLMs on GPUs "
    "from measured data. Every tool returns an Answer: `mood` (green/yellow/orange/red/gray) is the "
    "waste against the best alternative, `alerts` are known energy traps with fixes, `tables` and "
    "`costs` hold the figures, `provenance` says how each group of figures was obtained (tier "
    "measured / interpolated / extrapolated / simulated / none) and `citations` name the rows and "
    "sources. Pass on only figures that appear in a tool's output, each with its provenance tier; "
    "never fill a gap with a number of your own: say the data does not cover it, or run "
    "`benchmark` where that tool is offered."
)


class ToolError(Exception):
    """A problem with a tool call that the caller can fix; its text is the error result."""


# --------------------------------------------------------------------------------------------
# Tool inputs
# --------------------------------------------------------------------------------------------

class ToolInput(BaseModel):
    """Base of every tool input: unknown fields are refused, not silently dropped."""

    # strict: JSON has real types, so `true` is not a batch size and "8" is not a number
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


Lang = Literal["en", "zh"]
ShortText = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]


class AskInput(ToolInput):
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
    precision: Literal["fp32", "fp16", "bf16", "fp8", "nf4", "int8_mixed", "int8_pure"] | None = None
    kind: Literal["measured", "simulated", "derived"] | None = Field(
        default=None, description="simulated rows are kept for the record and are never evidence")
    task: Literal["inference", "finetune"] | None = None
    limit: int = Field(default=DEFAULT_ROWS, ge=1, le=MAX_ROWS, description="most rows to return")


Precision = Literal["fp32", "fp16", "bf16", "fp8", "nf4", "int8_mixed", "int8_pure"]
UseCase = Literal["production_api", "interactive_chat", "offline_batch"]
Symptom = Literal["slow", "high_bill", "high_power", "high_energy", "oom"]
MAX_LIST = 16


class _Config(ToolInput):
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

    compare_axis: Literal["precision", "gpu", "batch_size", "model_size"] | None = Field(
        default=None, description="what varies; inferred from the lists below when omitted")
    compare_precisions: list[Precision] | None = Field(default=None, max_length=MAX_LIST,
                                                       description="precisions to compare (default: all measured)")
    compare_gpus: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]] | None = Field(
        default=None, max_length=MAX_LIST, description="GPUs to compare")
    compare_batch_sizes: list[Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(
        default=None, max_length=MAX_LIST, description="batch sizes to compare")


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
    precisions: list[Precision] = Field(default=["fp16"], min_length=1, max_length=len(typing.get_args(Precision)))
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


# --------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    run: Callable[..., Any]  # (input, ServerContext) -> Answer; a coroutine function when is_async
    read_only: bool = True
    is_async: bool = False


@dataclass
class ServerContext:
    """What a tool may touch: the root its file access is confined to."""

    guard: PathGuard
    bench_running: bool = False
    # Seconds a synchronous tool call may run before its worker is killed (None: no budget).
    call_budget_s: float | None = DEFAULT_CALL_BUDGET_S


class PathGuard:
    """Confines file access to one directory tree.

    A path is refused when it names anything outside the root: `..` that climbs out, an absolute
    path elsewhere, or a symlink (of the file or of a folder on the way) whose target lies
    outside. The refusal does not say whether the outside path exists. Folders are walked without
    following links, honouring the auditor's default excludes and .gitignore files.
    """

    def __init__(self, root: Path | str):
        given = Path(root).expanduser()
        if not given.is_dir():
            raise ToolError(f"root '{root}' is not a directory")
        self.given = Path(os.path.abspath(given))
        self.root = given.resolve(strict=True)

    def _inside(self, p: Path) -> bool:
        return p == self.root or p.is_relative_to(self.root)

    def resolve(self, raw: str) -> Path:
        if "\x00" in raw:
            raise ToolError("path contains a NUL byte")
        p = Path(raw)
        lexical = Path(os.path.normpath(p if p.is_absolute() else self.given / p))
        if not (lexical == self.given or lexical.is_relative_to(self.given) or self._inside(lexical)):
            raise ToolError(self._refusal(raw))
        try:
            real = lexical.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            raise ToolError(f"no file or folder '{raw}' under the server's root {self.given}") from None
        except (OSError, RuntimeError) as err:  # symlink loops, permissions
            raise ToolError(f"cannot read '{raw}': {err.__class__.__name__}") from None
        if not self._inside(real):
            raise ToolError(self._refusal(raw))
        return real

    def _refusal(self, raw: str) -> str:
        return (f"path '{raw}' is outside the server's root {self.given}; the audit tool reads only files "
                "under it (start the server with `ecolobster mcp --root DIR` to choose another), "
                "or pass the source as 'code'")

    def display(self, real: Path) -> str:
        rel = real.relative_to(self.root).as_posix()
        return rel if rel != "." else "."

    def source_files(self, real: Path) -> tuple[list[Path], list[str]]:
        """The files the auditor reads at `real` (a file, or a folder walked without following
        links), and notes about what was left out for lying outside the root."""
        from advisor.audit.sources import kind_for
        from advisor.audit.walk import DEFAULT_EXCLUDES, IgnoreRules, real_path

        if real.is_file():
            if kind_for(real.name) is None:
                raise ToolError(f"'{self.display(real)}' is not a file type the auditor reads; accepted: .py, "
                                ".ipynb, requirements*.txt, pyproject.toml, .yaml/.yml, .json, .sh, Dockerfile, "
                                "or a folder")
            return [real], []
        rules = IgnoreRules()
        rules.extend(list(DEFAULT_EXCLUDES))
        files: list[Path] = []
        skipped: list[str] = []
        for dirpath, dirnames, filenames in os.walk(real, followlinks=False):
            here = Path(dirpath)
            rel = here.relative_to(real).as_posix()
            rel = "" if rel == "." else rel
            gitignore = here / ".gitignore"
            gi_real = real_path(gitignore)
            if gi_real is not None and gitignore.is_file() and self._inside(gi_real):
                rules.extend(gitignore.read_text(encoding="utf-8", errors="replace").splitlines(), rel)
            kept = []
            for d in sorted(dirnames):
                drel = f"{rel}/{d}" if rel else d
                if rules.ignored(drel, True):
                    continue
                if (here / d).is_symlink():  # never followed; say so when it leads outside
                    target = real_path(here / d)
                    if target is None or not self._inside(target):
                        skipped.append(f"{self.display(here / d)}: a link to outside the root, not read")
                    continue
                kept.append(d)
            dirnames[:] = kept
            for name in sorted(filenames):
                frel = f"{rel}/{name}" if rel else name
                if kind_for(name) is None or rules.ignored(frel, False):
                    continue
                f = here / name
                target = real_path(f)
                if target is None:
                    skipped.append(f"{self.display(f)}: a symlink loop, not read")
                    continue
                if not self._inside(target):
                    skipped.append(f"{self.display(f)}: a link to outside the root, not read")
                    continue
                files.append(f)
                if len(files) > MAX_AUDIT_FILES:
                    raise ToolError(f"'{self.display(real)}' holds more than {MAX_AUDIT_FILES} files the auditor "
                                    "reads; audit a smaller folder")
        if not files:
            raise ToolError(f"no file the auditor reads under '{self.display(real)}' (Python, notebooks, "
                            "requirements, pyproject, YAML/JSON configs, shell scripts, Dockerfiles)")
        return files, skipped


def _answer_query(protocol: str, inp: ToolInput) -> Answer:
    from advisor.api import answer_query
    from advisor.query import from_fields

    query = from_fields(protocol, **inp.model_dump(exclude_none=True))
    return answer_query(query, query.lang)


def _tool_optimize(inp: OptimizeInput, ctx: ServerContext) -> Answer:
    return _answer_query("optimize", inp)


def _tool_compare(inp: CompareInput, ctx: ServerContext) -> Answer:
    return _answer_query("compare", inp)


def _tool_estimate(inp: EstimateInput, ctx: ServerContext) -> Answer:
    return _answer_query("estimate", inp)


def _tool_diagnose(inp: DiagnoseInput, ctx: ServerContext) -> Answer:
    return _answer_query("diagnose", inp)


def _tool_ask(inp: AskInput, ctx: ServerContext) -> Answer:
    from advisor.api import ask

    answer, _context = ask(inp.text, context=None, lang=inp.lang)
    return answer


def _tool_audit(inp: AuditInput, ctx: ServerContext) -> Answer:
    if inp.code is not None:
        from advisor.protocols.audit import audit_code

        return audit_code(inp.code, filename=inp.filename or "<code>", gpu=inp.gpu)
    assert inp.path is not None
    # The guard runs before anything is read: a refused path never reaches the auditor.
    real = ctx.guard.resolve(inp.path)
    files, skipped = ctx.guard.source_files(real)
    from advisor.protocols.audit import audit_paths

    # Relative to the root when it is the working directory (`serve` makes it so): findings then
    # name files as the user sees them.
    relative = Path.cwd().resolve() == ctx.guard.root
    answer = audit_paths([ctx.guard.display(f) if relative else str(f) for f in files], gpu=inp.gpu)
    if skipped:
        answer = answer.model_copy(update={"warnings": [*answer.warnings, *skipped]})
    return answer


def _row_tier(kind: str) -> tuple[str, str, str]:
    """(tier, method, confidence) of a row kind, for the Answer's provenance."""
    if kind == "measured":
        return "measured", "measured", "high"
    if kind == "simulated":
        return "simulated", "simulated (kept for the record, never evidence)", "low"
    return "extrapolated", "derived from other rows (the row's notes name the method)", "low"


ROW_COLUMNS = ("id", "kind", "gpu", "model_id", "precision", "batch_size", "throughput_tok_s",
               "power_w", "energy_j_per_1k_tok", "source")


def rows_answer(rows: list[Any], total: int, query: dict[str, Any], title: str, headline: str) -> Answer:
    """An Answer listing measurement rows with their provenance (query_measurements, benchmark)."""
    table = Table(title=title, columns=list(ROW_COLUMNS), rows=[[getattr(r, c) for c in ROW_COLUMNS] for r in rows],
                  notes=[f"{len(rows)} of {total} matching rows"])
    provenance = []
    for kind in ("measured", "derived", "simulated"):
        ids = [r.id for r in rows if r.kind == kind]
        if ids:
            tier, method, confidence = _row_tier(kind)
            provenance.append(Provenance(subject=f"{len(ids)} {kind} row(s)", tier=tier, method=method,  # type: ignore[arg-type]
                                         confidence=confidence, row_ids=ids))  # type: ignore[arg-type]
    return Answer(
        protocol="data", title=title, query=query, mood="gray", headline=headline,
        tables=[table] if rows else [], provenance=provenance,
        citations=[Citation(kind="row", ref=r.id, detail=r.source) for r in rows],
        extra={"rows": [r.model_dump(mode="json") for r in rows], "total": total, "returned": len(rows)},
    )


def _tool_query_measurements(inp: QueryMeasurementsInput, ctx: ServerContext) -> Answer:
    import argparse

    from advisor.cli import UsageError
    from advisor.cmd_data import _filtered  # the CLI's filters, so both list the same rows

    ns = argparse.Namespace(gpu=inp.gpu, model=inp.model, precision=inp.precision, source=None,
                            kind=inp.kind, task=inp.task)
    try:
        rows = _filtered(ns)
    except UsageError as err:
        raise ToolError(str(err)) from None
    shown = rows[: inp.limit]
    counts = {k: sum(r.kind == k for r in rows) for k in ("measured", "derived", "simulated")}
    headline = (f"{len(rows)} row(s) match: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)) if rows \
        else "no rows match these filters"
    answer = rows_answer(shown, len(rows), {k: v for k, v in inp.model_dump().items() if v is not None and k != "limit"},
                         "Measurements", headline)
    if not rows:
        answer.warnings.append("no rows match; call query_measurements with fewer filters to see what the data covers")
    return answer


def plan_input_model() -> type[BaseModel] | None:
    """The fine-tuning planner's request model, strict about unknown fields; None where the
    planner is not part of this build."""
    import importlib.util

    if importlib.util.find_spec("advisor.protocols.plan") is None:
        return None
    from advisor.protocols.plan import PlanRequest

    return type("PlanFinetuneInput", (PlanRequest,), {"__doc__": PlanRequest.__doc__,
                                                      "model_config": ConfigDict(extra="forbid", strict=True)})


def _tool_plan_finetune(inp: BaseModel, ctx: ServerContext) -> Answer:
    from advisor.protocols.plan import PlanRequest, plan

    request = inp if type(inp) is PlanRequest else PlanRequest.model_validate(inp.model_dump(exclude_unset=True))
    return plan(request)


def benchmark_available() -> bool:
    """The engine and torch are installed and torch sees a CUDA GPU. The cheap checks come first, so
    a machine without an NVIDIA driver never imports torch."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("engine") is None or importlib.util.find_spec("torch") is None:
        return False
    if not (Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi")):
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch install means no benchmark, not a dead server
        return False


async def _tool_benchmark(inp: BenchmarkInput, ctx: ServerContext) -> Answer:
    import anyio

    if ctx.bench_running:
        raise ToolError("a benchmark is already running on this GPU; measurements must not overlap. Try again "
                        "when it has finished.")
    model = inp.model
    if not inp.synthetic and (Path(model).is_absolute() or model.startswith((".", "~"))
                              or (ctx.guard.root / model).exists()):
        model = str(ctx.guard.resolve(model))  # a local checkpoint must lie under the root; else a hub id
    argv = [sys.executable, "-m", "advisor.cli", "bench", "--model", model, "--format", "json",
            "--precision", *inp.precisions, "--batch-size", *map(str, inp.batch_sizes)]
    if inp.synthetic:
        argv.append("--synthetic")
    for flag, value in (("--prompt-tokens", inp.prompt_tokens), ("--gen-tokens", inp.gen_tokens),
                        ("--runs", inp.runs), ("--warmup", inp.warmup), ("--pause", inp.pause_s),
                        ("--idle", inp.idle_s)):
        if value is not None:
            argv += [flag, str(value)]
    ctx.bench_running = True
    try:
        # A child process: a crash or OOM in the engine cannot take the server down, and a
        # cancelled call (or a timeout) kills the measurement.
        with anyio.fail_after(inp.timeout_s):
            proc = await anyio.run_process(argv, check=False, cwd=str(ctx.guard.root))
    except TimeoutError:
        raise ToolError(f"the benchmark ran past timeout_s={inp.timeout_s} s and was stopped; configurations it "
                        "finished are in the local dataset (query_measurements shows them)") from None
    finally:
        ctx.bench_running = False
    err = proc.stderr.decode(errors="replace").strip()
    if proc.returncode == 2:
        raise ToolError(err.removeprefix("error: ") or "the benchmark refused these arguments")
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise ToolError(f"the benchmark failed (exit {proc.returncode}): {err[-2000:]}") from None
    from measurements.store import load_rows

    ids = set(report.get("row_ids") or [])
    rows = [r for r in load_rows() if r.id in ids]
    failed = [r for r in report.get("results", []) if r.get("status") != "ok"]
    answer = rows_answer(rows, len(rows), inp.model_dump(), "Benchmark on this GPU",
                         f"{len(rows)} configuration(s) measured and stored"
                         + (f"; {len(failed)} failed" if failed else ""))
    answer.extra.update({"results_file": report.get("results_file"), "results": report.get("results", [])})
    answer.warnings.extend(f"{r.get('key')}: {r.get('status')} {r.get('error') or ''}".strip() for r in failed)
    return answer


def tool_specs(include_benchmark: bool | None = False) -> list[ToolSpec]:
    """The tools this server offers. `benchmark` downloads and runs models, so it is opt-in:
    False (the default) leaves it out, True includes it, None includes it where the engine and a
    CUDA GPU are there (what `ecolobster mcp --allow-benchmark` asks for)."""
    specs = [
        ToolSpec("optimize", "Greenest configuration",
                 "The greenest (and cheapest) way to serve a model on a GPU for a use: ranked configurations "
                 "(precision, batch size) with energy per 1k tokens, monthly kWh, cost and CO2, the traps to avoid "
                 "and where every figure comes from.",
                 OptimizeInput, _tool_optimize),
        ToolSpec("compare", "Compare configurations",
                 "Compare precisions, GPUs or batch sizes for a model side by side: throughput, energy per 1k "
                 "tokens, change vs FP16, tokens per joule, memory, power, rank, and a recommendation.",
                 CompareInput, _tool_compare),
        ToolSpec("estimate", "Estimate energy, cost and CO2",
                 "Energy (kWh), cost ($) and CO2 (kg) of a workload (requests, tokens, characters or GB of text per "
                 "day/month or one-off), for the stated configuration and the optimized one, with the unit "
                 "conversions shown.",
                 EstimateInput, _tool_estimate),
        ToolSpec("diagnose", "Diagnose slow or costly inference",
                 "Why inference is slow, power-hungry or expensive: the matching known trap with its confidence, "
                 "expected vs reported figures, fixes in priority order and how to verify them.",
                 DiagnoseInput, _tool_diagnose),
        ToolSpec("ask", "Ask EcoLobster",
                 "Answer a free-text question (English or Chinese) about the energy, cost or CO2 of running or "
                 "fine-tuning an LLM on a GPU; routes to optimize/compare/estimate/diagnose/plan.",
                 AskInput, _tool_ask),
        ToolSpec("audit", "Audit code for energy traps",
                 "Statically audit code (never executed) for known LLM energy traps: a file or folder under the "
                 "server's root (Python, notebooks, requirements, configs, shell scripts, Dockerfiles), or Python "
                 "source text. Findings come with line, severity, fix and data-backed impact.",
                 AuditInput, _tool_audit),
        ToolSpec("query_measurements", "Query the measurements",
                 "List the measurement rows behind every answer, filtered by GPU, model, precision, kind and task; "
                 "each row carries its source, kind (measured/simulated/derived), software versions and spread.",
                 QueryMeasurementsInput, _tool_query_measurements),
    ]
    plan_model = plan_input_model()
    if plan_model is not None:
        specs.append(ToolSpec(
            "plan_finetune", "Plan a fine-tuning run",
            "Plan LoRA, QLoRA or full fine-tuning of a model: GPU memory breakdown per strategy, which GPUs it fits "
            "on, time, energy and cost per run, and the recommended configuration, with provenance.",
            plan_model, _tool_plan_finetune))
    if include_benchmark is None:
        include_benchmark = benchmark_available()
    if include_benchmark:
        specs.append(ToolSpec(
            "benchmark", "Measure on this GPU",
            "Measure throughput and energy of a model on this machine's GPU (NVML energy counter, warm-up, repeated "
            "runs, quality gates) and add the rows to the local dataset, for configurations the data lacks. With "
            "synthetic=false it DOWNLOADS the named Hugging Face hub model (any hub id) and RUNS it on this GPU, "
            "for up to timeout_s (at most 4 hours). Offered only when the server was started with "
            "`ecolobster mcp --allow-benchmark`. One at a time.",
            BenchmarkInput, _tool_benchmark, read_only=False, is_async=True))
    return specs


# --------------------------------------------------------------------------------------------
# Calling a tool (no MCP types here, so it is testable on its own)
# --------------------------------------------------------------------------------------------

def describe_validation_error(tool: str, model: type[BaseModel], err: ValidationError) -> str:
    accepted = ", ".join(model.model_fields)
    lines = [f"invalid arguments for tool '{tool}':"]
    for e in err.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"]) or "(arguments)"
        if e["type"] == "extra_forbidden":
            lines.append(f"- '{where}': unknown field (accepted: {accepted})")
        elif e["type"] == "missing":
            lines.append(f"- '{where}': required")
        else:
            lines.append(f"- '{where}': {e['msg']}")
    return "\n".join(lines)


@dataclass
class Outcome:
    answer: Answer
    is_error: bool


def error_answer(tool: str, message: str) -> Answer:
    return Answer(protocol="error", title=f"{tool}: error", mood="gray", headline=message.splitlines()[0],
                  errors=[message])


def _long_string(value: Any, limit: int, where: str = "") -> str | None:
    """The first string longer than `limit` anywhere in `value`, named by its path."""
    if isinstance(value, str):
        return where if len(value) > limit else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        hit = _long_string(v, limit, f"{where}.{k}" if where else str(k))
        if hit is not None:
            return hit
    return None


def prepare(specs: dict[str, ToolSpec], name: str, arguments: Any) -> tuple[ToolSpec, ToolInput] | Outcome:
    """Check and validate a call's arguments: the tool's input, or the error to answer with."""
    spec = specs.get(name)
    if spec is None:
        return Outcome(error_answer(name[:MAX_NAME_CHARS], f"unknown tool '{name[:MAX_NAME_CHARS]}'; tools: "
                                                           f"{', '.join(specs)}"), True)
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return Outcome(error_answer(name, f"arguments for '{name}' must be a JSON object"), True)
    try:
        size = len(json.dumps(arguments, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return Outcome(error_answer(name, f"arguments for '{name}' are not plain JSON"), True)
    if size > MAX_ARGUMENTS_BYTES:
        return Outcome(error_answer(name, f"arguments for '{name}' are {size:,} bytes; the limit is "
                                          f"{MAX_ARGUMENTS_BYTES:,}"), True)
    # Every string is capped, whatever the model says; only source code may be long.
    long = _long_string({k: v for k, v in arguments.items() if k != "code"}, MAX_TEXT_CHARS)
    if long is not None:
        return Outcome(error_answer(name, f"invalid arguments for tool '{name}':\n- '{long}': longer than "
                                          f"{MAX_TEXT_CHARS:,} characters"), True)
    try:
        return spec, spec.input_model.model_validate(arguments)
    except ValidationError as err:
        return Outcome(error_answer(name, describe_validation_error(name, spec.input_model, err)), True)


def _failure(name: str, err: Exception) -> Outcome:
    if isinstance(err, ToolError):
        return Outcome(error_answer(name, str(err)), True)
    known = _known_error(err)
    if known is not None:
        return Outcome(error_answer(name, known), True)
    log.error("tool %s failed:\n%s", name, traceback.format_exc())
    return Outcome(error_answer(name, f"internal error in '{name}': {err.__class__.__name__}: {err}"), True)


def call_tool(specs: dict[str, ToolSpec], name: str, arguments: Any, ctx: ServerContext) -> Outcome:
    """Validate `arguments` and run a synchronous tool; every failure becomes an error Outcome."""
    prepared = prepare(specs, name, arguments)
    if isinstance(prepared, Outcome):
        return prepared
    spec, inp = prepared
    try:
        answer = spec.run(inp, ctx)
    except Exception as err:  # noqa: BLE001 - one failing call must not take the server down
        return _failure(name, err)
    return Outcome(answer, unanswered(answer))


async def call_tool_async(specs: dict[str, ToolSpec], name: str, arguments: Any, ctx: ServerContext) -> Outcome:
    spec = specs.get(name)
    if spec is None or not spec.is_async:
        # Protocol code is synchronous: it runs in a worker process, so the server keeps answering
        # (pings, other calls) and a call the client cancels or that runs past the budget is
        # killed, not left burning CPU.
        return await run_in_worker(call_tool, (specs, name, arguments, ctx), name, ctx.call_budget_s)
    prepared = prepare(specs, name, arguments)
    if isinstance(prepared, Outcome):
        return prepared
    spec, inp = prepared
    try:
        answer = await spec.run(inp, ctx)
    except Exception as err:  # noqa: BLE001
        return _failure(name, err)
    return Outcome(answer, unanswered(answer))


def _worker_main(conn: Any, fn: Callable[..., Outcome], args: tuple[Any, ...], name: str) -> None:
    try:
        out = fn(*args)
    except BaseException as err:  # noqa: BLE001 - the parent must get an answer, whatever happened
        out = Outcome(error_answer(name, f"internal error in '{name}': {err.__class__.__name__}: {err}"), True)
    try:
        conn.send(out)
    except Exception as err:  # noqa: BLE001 - e.g. an answer that does not pickle
        conn.send(Outcome(error_answer(name, f"internal error in '{name}': the answer could not be returned "
                                             f"({err.__class__.__name__})"), True))
    finally:
        conn.close()


def _receive(conn: Any) -> Any:
    """Block until the worker sends its outcome or dies (EOFError). Closes its end itself, so a
    thread abandoned on cancellation never reads a descriptor that was closed and reused."""
    try:
        return conn.recv()
    finally:
        conn.close()


async def run_in_worker(fn: Callable[..., Outcome], args: tuple[Any, ...], name: str,
                        budget_s: float | None) -> Outcome:
    """Run `fn(*args)` in a forked child process and return its Outcome. Cancellation (the client's
    notifications/cancelled, a disconnect) and the time budget kill the child at once. Where fork
    is not available, a worker thread (abandoned, not killed, on cancellation)."""
    import multiprocessing

    import anyio

    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - non-POSIX
        return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
    mp = multiprocessing.get_context("fork")
    recv_end, send_end = mp.Pipe(duplex=False)
    proc = mp.Process(target=_worker_main, args=(send_end, fn, args, name), daemon=True)
    with warnings.catch_warnings():
        # Python 3.12+ warns on fork in a threaded process; the child only runs `fn` (pure Python,
        # no lock another thread may hold) and exits, so the warning is noise in the client's log.
        warnings.simplefilter("ignore", DeprecationWarning)
        proc.start()
    send_end.close()
    try:
        with anyio.fail_after(budget_s):
            return await anyio.to_thread.run_sync(_receive, recv_end, abandon_on_cancel=True)
    except TimeoutError:
        return Outcome(error_answer(name, f"'{name}' ran past the server's budget of {budget_s:g} s per call and "
                                          "was stopped; ask for less (a smaller folder, fewer options), or start "
                                          "the server with a larger `ecolobster mcp --call-timeout`"), True)
    except EOFError:
        proc.join(5)
        log.error("tool %s: worker process ended without an answer (exit code %s)", name, proc.exitcode)
        return Outcome(error_answer(name, f"internal error in '{name}': its worker process ended without an "
                                          f"answer (exit code {proc.exitcode})"), True)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)


def unanswered(answer: Answer) -> bool:
    """An Answer that carries errors did not answer the question (protocols put nothing else there)."""
    return answer.protocol == "error" or bool(answer.errors)


def _known_error(err: Exception) -> str | None:
    """Errors other modules raise for bad user input, which carry a message meant for the user."""
    names = {c.__name__ for c in type(err).__mro__}
    if "QueryError" in names:
        errors = getattr(err, "errors", None) or [str(err)]
        return "invalid parameters:\n" + "\n".join(f"- {e}" for e in errors)
    if names & {"UnknownName", "UsageError", "DataError", "SettingsError"}:
        return str(err)
    if isinstance(err, ValidationError):  # a value the tool's schema allows but the protocol's model refuses
        return "invalid parameters:\n" + "\n".join(
            f"- {'.'.join(str(x) for x in e['loc']) or 'value'}: {e['msg']}" for e in err.errors(include_url=False))
    if isinstance(err, OverflowError):
        return f"a figure in the arguments is too large to compute with ({err}); give a realistic value"
    return None


def render_markdown(answer: Answer) -> str:
    from advisor.render import to_markdown

    return to_markdown(answer)


# --------------------------------------------------------------------------------------------
# The MCP server
# --------------------------------------------------------------------------------------------

def answer_output_schema() -> dict[str, Any]:
    return Answer.model_json_schema(mode="serialization")


def build_server(root: Path | str, include_benchmark: bool | None = False,
                 call_budget_s: float | None = DEFAULT_CALL_BUDGET_S) -> Server:
    import mcp_types as types
    from mcp.server.lowlevel import Server

    ctx = ServerContext(guard=PathGuard(root), call_budget_s=call_budget_s)
    specs = {s.name: s for s in tool_specs(include_benchmark)}
    output_schema = answer_output_schema()
    tools = [
        types.Tool(
            name=s.name,
            title=s.title,
            description=s.description,
            input_schema=s.input_model.model_json_schema(),
            output_schema=output_schema,
            annotations=types.ToolAnnotations(title=s.title, read_only_hint=s.read_only,
                                              destructive_hint=False, open_world_hint=False),
        )
        for s in specs.values()
    ]

    async def on_list_tools(_ctx: Any, _params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        outcome = await call_tool_async(specs, params.name, params.arguments, ctx)
        data = outcome.answer.model_dump(mode="json")
        text = "\n".join(outcome.answer.errors) if outcome.is_error and outcome.answer.errors else None
        if text is None:
            try:
                text = render_markdown(outcome.answer)
            except Exception:  # noqa: BLE001 - the JSON still carries the whole answer
                log.error("Markdown rendering failed:\n%s", traceback.format_exc())
                text = outcome.answer.headline or outcome.answer.title
        content = [types.TextContent(type="text", text=text),
                   types.TextContent(type="text", text=json.dumps(data, ensure_ascii=False))]
        return types.CallToolResult(content=content, structured_content=data, is_error=outcome.is_error)

    return Server(
        SERVER_NAME,
        version=_version(),
        title="EcoLobster",
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ecolobster")
    except PackageNotFoundError:
        return "0"


# --------------------------------------------------------------------------------------------
# The wire: every line gets an answer
# --------------------------------------------------------------------------------------------

PARSE_ERROR, INVALID_REQUEST = -32700, -32600


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def screen_line(line: str) -> tuple[str | None, tuple[Any, int, str] | None]:
    """Check one JSON-RPC line before the SDK reads it: (the line, None) when it is fit to pass on,
    else (None, (id, code, message)) for the error response. The SDK drops a line it cannot parse
    without answering, so the client would wait for its timeout; a lone surrogate would break the
    reply's UTF-8 encoding."""
    import mcp_types as types

    if not line.strip():
        return None, None
    try:
        obj = json.loads(line)
    except RecursionError:
        return None, (None, PARSE_ERROR, f"Parse error: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    except ValueError as err:
        return None, (None, PARSE_ERROR, f"Parse error: {getattr(err, 'msg', None) or err.__class__.__name__}")
    rid = obj.get("id") if isinstance(obj, dict) else None
    rid = rid if (isinstance(rid, int) and not isinstance(rid, bool)) or isinstance(rid, str) else None
    if rid is not None:
        try:
            json.dumps(rid, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            rid = None
    if _depth(obj) > MAX_JSON_DEPTH:
        return None, (rid, INVALID_REQUEST, f"Invalid Request: JSON nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None, (rid, INVALID_REQUEST, "Invalid Request: a string holds a lone surrogate (\\ud800-\\udfff "
                                            "escape without its pair), which is not Unicode text")
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValueError as err:
        first = err.errors(include_url=False)[0]["msg"] if isinstance(err, ValidationError) else str(err)
        return None, (rid, INVALID_REQUEST, f"Invalid Request: not a JSON-RPC 2.0 message ({first})")
    return line, None


class ScreenedStdin:
    """The server's stdin as the SDK's stdio transport reads it (an async iterable of lines), with
    every line screened (screen_line): a bad line is answered with a JSON-RPC error through
    `write` and never reaches the SDK. Lines are read in bounded pieces, so one endless line
    cannot exhaust memory."""

    def __init__(self, raw: Any):
        import anyio

        self.raw = raw
        self.write: Any = None
        self.ready = anyio.Event()

    def attach(self, write: Any) -> None:
        self.write = write
        self.ready.set()

    def _readline(self) -> str | None:
        chunk = self.raw.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return None
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while True:  # drop the rest of the line unread
                more = self.raw.readline(MAX_LINE_BYTES)
                if not more or more.endswith(b"\n"):
                    break
            return "\x00too-long"
        return chunk.decode("utf-8", errors="replace")

    async def _reply(self, rid: Any, code: int, message: str) -> None:
        import anyio
        import mcp_types as types
        from mcp.shared.message import SessionMessage

        await self.ready.wait()
        err = types.JSONRPCError(jsonrpc="2.0", id=rid, error=types.ErrorData(code=code, message=message))
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):  # shutting down
            await self.write.send(SessionMessage(err))

    def __aiter__(self) -> Any:
        return self._lines()

    async def _lines(self) -> Any:
        import anyio

        while True:
            line = await anyio.to_thread.run_sync(self._readline, abandon_on_cancel=True)
            if line is None:
                return
            if line == "\x00too-long":
                await self._reply(None, INVALID_REQUEST, f"Invalid Request: line longer than {MAX_LINE_BYTES:,} bytes")
                continue
            ok, err = screen_line(line)
            if err is not None:
                await self._reply(*err)
            elif ok is not None:
                yield ok


def serve(root: Path | str, include_benchmark: bool | None = False,
          call_budget_s: float | None = DEFAULT_CALL_BUDGET_S) -> None:
    """Serve over stdio until the client closes the connection. The root becomes the working
    directory, so audit findings name files relative to it."""
    import anyio
    from mcp.server.stdio import stdio_server

    server = build_server(root, include_benchmark, call_budget_s)
    os.chdir(Path(root).expanduser().resolve())
    # The wire is a private duplicate of fd 0; fd 0 itself reads /dev/null, so no child process
    # (a benchmark) can swallow the client's messages.
    wire = os.fdopen(os.dup(0), "rb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    stdin = ScreenedStdin(wire)

    async def main() -> None:
        async with stdio_server(stdin=stdin) as (read, write):  # type: ignore[arg-type]
            stdin.attach(write)
            await server.run(read, write, server.create_initialization_options())

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="ecolobster-mcp: %(message)s")
    anyio.run(main)
