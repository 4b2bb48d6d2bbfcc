"""The MCP tools: what each one runs (always through the advisor's API) and the list the server
offers. Nothing here imports `mcp`, so `ecolobster schema` can list the tools without the extra."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from advisor.api import Answer, Citation, Provenance, Table
from advisor.mcp.guard import PathGuard
from advisor.mcp.inputs import (
    AskInput,
    AuditInput,
    BenchmarkInput,
    CompareInput,
    DiagnoseInput,
    EstimateInput,
    OptimizeInput,
    QueryMeasurementsInput,
    ToolError,
    ToolInput,
)

# Time budget of one synchronous call (policy): answers take well under a second and an audit of a
# 500-file folder seconds; past this the worker is killed and the call answered with an error.
DEFAULT_CALL_BUDGET_S = 120.0



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


def _answer_query(protocol: str, inp: ToolInput) -> Answer:
    from advisor.api import answer_query, from_fields

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
    from advisor.api import ask, detect_lang, flags_context

    ctx_in = flags_context(inp.framework, inp.gpu_count, inp.latency_target_ms, inp.latency_percentile,
                           lang=inp.lang or detect_lang(inp.text))
    answer, _context = ask(inp.text, context=ctx_in, lang=inp.lang)
    return answer


def _tool_audit(inp: AuditInput, ctx: ServerContext) -> Answer:
    if inp.code is not None:
        from advisor.api import audit_code

        return audit_code(inp.code, filename=inp.filename or "<code>", gpu=inp.gpu)
    assert inp.path is not None
    # The guard runs before anything is read: a refused path never reaches the auditor.
    real = ctx.guard.resolve(inp.path)
    files, skipped = ctx.guard.source_files(real)
    from advisor.api import audit_paths

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

    from advisor.api import filter_rows
    from advisor.limits import UsageError

    ns = argparse.Namespace(gpu=inp.gpu, model=inp.model, precision=inp.precision, source=None,
                            kind=inp.kind, task=inp.task)
    try:
        rows = filter_rows(ns)
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
    from advisor.api import PlanRequest

    return type("PlanFinetuneInput", (PlanRequest,), {"__doc__": PlanRequest.__doc__,
                                                      "model_config": ConfigDict(extra="forbid", strict=True)})


def _tool_plan_finetune(inp: BaseModel, ctx: ServerContext) -> Answer:
    from advisor.api import PlanRequest, plan

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
    from advisor.api import load_rows

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
