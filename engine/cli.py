"""`ecolobster bench`: measure inference (or fine-tuning steps) on this machine's GPU.

The engine's own command: the `ecolobster` command finds it through the `ecolobster.commands`
entry point (pyproject.toml), so the advisor never imports the engine. Nothing heavy is imported
until the handler runs (torch stays out of `ecolobster --help`); the protocol's flags show and use
the defaults of `engine.protocol.ProtocolSettings`. Results go to a JSON-lines file (``--out``; an
interrupted sweep resumes from it) and, as measurement rows, to the local store, where the advisor
prefers them over shipped rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine import bench_serve
from engine.usage import UsageError
from measurements.vocab import BENCH_PRECISIONS

if TYPE_CHECKING:
    from measurements.schema import MeasurementRow

PRECISION_CHOICES = BENCH_PRECISIONS  # the one vocabulary: what the engine measures
# Warm-up steps of a fine-tuning measurement (the first steps allocate optimizer state).
FINETUNE_WARMUP = 2


def register(sub: argparse._SubParsersAction) -> None:
    from engine.protocol import ProtocolSettings

    d = ProtocolSettings()  # the protocol's defaults, shown and used by the flags below
    p = sub.add_parser(
        "bench", help="measure energy and throughput of a model on this GPU (needs the engine extra)",
        description="Measure inference (or, with --finetune, training steps) on this machine and add the "
                    "results to the local dataset. NVML energy counter + 10 Hz power trace, idle baseline, "
                    "warm-up, repeated runs with CV gates. Without a GPU, --device cpu measures throughput only.")
    p.add_argument("--model", required=True, help="catalog key or alias (with --synthetic), else a hub id or local path")
    p.add_argument("--synthetic", action="store_true",
                   help="build the model from the architecture catalog with random weights (no download)")
    p.add_argument("--arch-override", action="append", default=[], metavar="KEY=INT",
                   help="change one shape of a synthetic model (layers, hidden, heads, kv_heads, head_dim, "
                        "intermediate, vocab); repeatable")
    p.add_argument("--precision", nargs="+", default=["fp16"], metavar="P",
                   help=f"one or more of {', '.join(PRECISION_CHOICES)} (default fp16)")
    p.add_argument("--batch-size", nargs="+", type=int, default=[1], metavar="N", help="one or more batch sizes")
    p.add_argument("--prompt-tokens", type=int, default=128, help="prompt length per sequence (default 128)")
    p.add_argument("--gen-tokens", type=int, default=256, help="generated tokens per sequence (default 256)")
    p.add_argument("--runs", type=int, default=None, help=f"measured runs (default {d.runs})")
    p.add_argument("--warmup", type=int, default=None,
                   help=f"warm-up runs (default {d.warmup}; fine-tuning: {FINETUNE_WARMUP} steps)")
    p.add_argument("--pause", type=float, default=d.pause_s, help="stabilisation pause after each model load, s")
    p.add_argument("--idle", type=float, default=d.idle_s, help="idle baseline before each configuration, s (0: none)")
    p.add_argument("--sample-hz", type=float, default=1.0 / d.sample_interval_s,
                   help=f"power sampler frequency (default {1.0 / d.sample_interval_s:g})")
    p.add_argument("--cv-throughput", type=float, default=d.cv_max_throughput,
                   help=f"CV gate on throughput (default {d.cv_max_throughput:g})")
    p.add_argument("--cv-power", type=float, default=d.cv_max_power, help=f"CV gate on power (default {d.cv_max_power:g})")
    p.add_argument("--max-reruns", type=int, default=d.max_reruns, help="re-runs of the measured set when a gate fails")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="where to run (default cuda)")
    p.add_argument("--compute-dtype", choices=["fp16", "bf16", "fp32"], default=None,
                   help="compute dtype of quantised models (default fp16; fine-tuning: bf16)")
    p.add_argument("--double-quant", action="store_true", help="NF4 with double quantisation")
    p.add_argument("--fp8-mode", choices=["dynamic", "weight_only"], default="dynamic",
                   help="torchao FP8 scheme (default dynamic activation + weight)")
    p.add_argument("--compile", action="store_true", help="torch.compile the forward pass")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow custom model code from the hub (off by default: it runs code you did not read)")
    p.add_argument("--region", default="us", help="region for CodeCarbon's CPU/RAM CO2 (catalog key; default us)")
    p.add_argument("--no-carbon", action="store_true", help="do not run CodeCarbon beside the GPU measurement")
    p.add_argument("--out", type=Path, default=None,
                   help="results file (JSON lines); an existing file resumes: finished configurations are skipped")
    p.add_argument("--no-store", action="store_true", help="do not add the rows to the local dataset")
    p.add_argument("--format", choices=["rich", "markdown", "json"], default="rich", dest="fmt")
    ft = p.add_argument_group("fine-tuning (with --finetune)")
    ft.add_argument("--finetune", action="store_true", help="measure training steps instead of inference")
    ft.add_argument("--method", nargs="+", default=["lora"], choices=["lora", "qlora", "full"])
    ft.add_argument("--rank", nargs="+", type=int, default=[16], help="LoRA ranks")
    ft.add_argument("--alpha", type=int, default=None, help="LoRA alpha (default 2 x rank)")
    ft.add_argument("--seq-len", nargs="+", type=int, default=[512], help="sequence lengths")
    ft.add_argument("--grad-checkpointing", nargs="+", choices=["on", "off"], default=["off"])
    ft.add_argument("--optimizer", nargs="+", default=["adamw"],
                    choices=["adamw", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd"])
    ft.add_argument("--quant", choices=["nf4", "int8"], default="nf4", help="QLoRA base weights")
    ft.add_argument("--steps", type=int, default=5, help="measured training steps (default 5)")
    ft.add_argument("--lr", type=float, default=2e-4)
    ft.add_argument("--save-every", type=int, default=None, help="save the adapter every N steps (spike study)")
    bench_serve.add_arguments(p)
    cl = p.add_argument_group("on a Ray cluster (needs the cluster extra)")
    cl.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                    help="run each configuration as a Ray task on an existing cluster (ADDRESS: HOST:PORT of "
                         "the head, ray://HOST:10001, or 'auto' = RAY_ADDRESS / the local head; default auto)")
    cl.add_argument("--gpu-type", default=None, metavar="TYPE",
                    help="with --ray: only on nodes of this accelerator type (Ray's accelerator_type:TYPE "
                         "resource, e.g. A100, H100, L4)")
    cl.add_argument("--plan", action="store_true",
                    help="with --ray: print which configuration would run where, and run nothing")
    p.set_defaults(handler=handle)


# --- validation (no engine imports) ------------------------------------------------------------

def _check_args(args: argparse.Namespace) -> None:
    bad = [x for x in args.precision if x.lower() not in PRECISION_CHOICES]
    if any(x.lower() == "int8" for x in args.precision):
        raise UsageError("'int8' is ambiguous: use int8_mixed (threshold 6.0) or int8_pure (threshold 0.0)")
    if bad:
        raise UsageError(f"unknown precision {', '.join(bad)}; accepted: {', '.join(PRECISION_CHOICES)}")
    for name in ("batch_size", "rank", "seq_len"):
        vals = getattr(args, name)
        if any(v < 1 for v in vals):
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1 (got {vals})")
    for name, least in (("prompt_tokens", 1), ("gen_tokens", 2), ("steps", 1)):
        if getattr(args, name) < least:
            raise UsageError(f"--{name.replace('_', '-')} must be >= {least} (got {getattr(args, name)})")
    if args.runs is not None and args.runs < 1:
        raise UsageError(f"--runs must be >= 1 (got {args.runs})")
    if args.warmup is not None and args.warmup < 0:
        raise UsageError(f"--warmup must be >= 0 (got {args.warmup})")
    if args.sample_hz <= 0:
        raise UsageError(f"--sample-hz must be > 0 (got {args.sample_hz})")
    # Ranges of the protocol's knobs (policy: beyond them a run is a mistake, not a measurement).
    # A negative pause or a NaN gate would otherwise reach the engine as a raw ValidationError.
    for flag, value, lo, hi in (("--pause", args.pause, 0, 3600), ("--idle", args.idle, 0, 600),
                                ("--sample-hz", args.sample_hz, 0.1, 1000),
                                ("--cv-throughput", args.cv_throughput, 1e-6, 1000),
                                ("--cv-power", args.cv_power, 1e-6, 1000), ("--max-reruns", args.max_reruns, 0, 20),
                                ("--runs", args.runs, 1, 10_000), ("--warmup", args.warmup, 0, 1000),
                                ("--lr", args.lr, 1e-12, 10), ("--save-every", args.save_every, 1, 1_000_000),
                                ("--alpha", args.alpha, 1, 1_000_000)):
        if value is not None and not lo <= value <= hi:  # NaN fails too
            raise UsageError(f"{flag} must be between {lo:g} and {hi:g} (got {value})")
    if args.arch_override and not args.synthetic:
        raise UsageError("--arch-override changes a synthetic model: add --synthetic")
    if args.device == "cpu" and any(x in ("nf4", "int8_mixed", "int8_pure", "fp8") for x in args.precision) \
            and not args.finetune:
        raise UsageError("quantised precisions need a CUDA GPU; on --device cpu use fp32, fp16 or bf16")
    if args.finetune and args.device == "cpu" and "qlora" in args.method:
        raise UsageError("QLoRA needs a CUDA GPU (bitsandbytes); on --device cpu use --method lora or full")
    if args.ray is None and (args.plan or args.gpu_type):
        raise UsageError(f"{'--plan' if args.plan else '--gpu-type'} is about a Ray cluster: add --ray [ADDRESS]")
    if args.gpu_type is not None and not args.gpu_type.strip():
        raise UsageError("--gpu-type needs an accelerator type, e.g. A100, H100, L4")
    if args.ray is not None:  # the driver measures nothing: the engine is needed on the nodes
        return
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if args.finetune and any(m != "full" for m in args.method):
        missing += [m for m in ("peft",) if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"measuring needs the engine extra ({', '.join(missing)} missing): "
                         "pip install \"ecolobster[engine]\"")


def _resolve_model(args: argparse.Namespace) -> str:
    if not args.synthetic:
        return args.model
    from measurements import catalog

    try:
        return catalog.resolve_model(args.model).key
    except catalog.UnknownName as err:
        raise UsageError(f"{err} (--synthetic builds a model from the architecture catalog)") from None


# --- the handler -------------------------------------------------------------------------------

def handle(args: argparse.Namespace) -> int:
    """The command's entry: bad arguments are said as `error: ...` with exit code 2, like every
    other command's (the advisor's CLI does that for its own UsageError, which the engine does not
    import)."""
    try:
        return cmd_bench(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def cmd_bench(args: argparse.Namespace) -> int:
    _check_args(args)
    bench_serve.check_args(args)
    model = _resolve_model(args)

    from rich.console import Console

    from engine.models import ModelLoadError, parse_overrides
    from engine.power import EnergyMonitor, NvmlUnavailable, open_nvml
    from engine.provenance import capture
    from measurements.store import WriteError

    err_console = Console(stderr=True)
    try:
        overrides = parse_overrides(args.arch_override)
    except ModelLoadError as err:
        raise UsageError(str(err)) from None
    if args.ray is not None:
        return _run_on_ray(args, model, overrides, _settings(args), err_console)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("no CUDA GPU is visible (or torch is a CPU build). To measure throughput on this "
                             "machine anyway, use --device cpu (energy is then marked unavailable). The advisor "
                             "keeps answering from the shipped measurements.")
    settings = _settings(args)
    monitor = EnergyMonitor.time_only()
    names: list[str] = []
    driver = None
    if args.device == "cuda" and not args.tp:  # under --tp, rank 0 of the workers reads NVML
        try:
            monitor, names, driver = open_nvml(settings.sample_interval_s, settings.min_counter_window_s)
        except NvmlUnavailable as err:
            err_console.print(f"[yellow]warning:[/] {err}. Measuring throughput only; energy is marked unavailable.")
    prov = capture(args.device, names, driver, settings.describe())
    out, trace_dir = _out_paths(args)
    _preflight_files(args, out)
    try:
        if args.serve:
            with _progress(err_console, monitor) as progress:
                results, rows = bench_serve.run(args, model, overrides, settings, monitor, prov, out, trace_dir,
                                                progress, _events(progress, settings.warmup + settings.runs))
        elif args.finetune:
            results, rows = _run_finetune(args, model, overrides, settings, monitor, prov, out, trace_dir, err_console)
        else:
            results, rows = _run_inference(args, model, overrides, settings, monitor, prov, out, trace_dir,
                                           err_console)
    except WriteError as err:  # the results file failed mid-sweep: what is in it stays valid
        raise UsageError(f"the results file could not be written: {err}. The configurations finished before "
                         f"this are in {out}; free space or fix the file and run the same command again "
                         "to measure the rest.") from None
    finally:
        monitor.close()
    stored, where, store_error = _store(args, rows, out)
    _show(args, results, rows, out, stored, where)
    if store_error:
        raise UsageError(store_error)
    if results and all(r.status == "error" for r in results):
        return 1
    return 0


def _settings(args: argparse.Namespace) -> Any:
    from engine.protocol import ProtocolSettings

    d = ProtocolSettings()
    return ProtocolSettings(
        warmup=args.warmup if args.warmup is not None else (
            FINETUNE_WARMUP if args.finetune else bench_serve.SERVE_WARMUP if args.serve else d.warmup),
        runs=args.runs if args.runs is not None else (bench_serve.SERVE_RUNS if args.serve else d.runs),
        pause_s=args.pause,
        idle_s=args.idle if args.device == "cuda" else 0.0, sample_interval_s=1.0 / args.sample_hz,
        cv_max_throughput=args.cv_throughput, cv_max_power=args.cv_power, max_reruns=args.max_reruns,
        min_window_s=bench_serve.min_window(args))


def _out_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    from measurements.store import data_home

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or (data_home() / "bench" / f"bench-{stamp}.jsonl")
    return out, out.with_name(out.stem + "-traces")


def _store(args: argparse.Namespace, rows: list[Any], out: Path) -> tuple[int, Path | None, str | None]:
    """Rows into the local dataset: (stored, where, the error to report once the results are shown)."""
    if not rows or args.no_store:
        return 0, None, None
    from measurements.store import WriteError, append_rows, local_store_path

    where = local_store_path()
    try:
        return append_rows(rows), where, None
    except WriteError as err:
        return 0, where, _keep_rows_aside(rows, out, where, err)


def _preflight_files(args: argparse.Namespace, out: Path) -> None:
    """Refuse to start hours of measuring when the results file or the store cannot be written."""
    from measurements.store import WriteError, check_writable, local_store_path

    try:
        check_writable(out)
    except WriteError as err:
        raise UsageError(f"--out: {err}") from None
    if not args.no_store:
        try:
            check_writable(local_store_path())
        except WriteError as err:
            raise UsageError(f"the local dataset cannot be written: {err}. Fix it (or set "
                             "ECOLOBSTER_DATA_DIR), or pass --no-store to keep results only in --out.") from None


def _keep_rows_aside(rows: list[Any], out: Path, store: Path, err: Exception) -> str:
    """The store refused the rows after the measurement: put them in a file beside --out and say
    how to add them, so no measured row is lost or reported stored."""
    from measurements.store import WriteError, append_rows

    aside = out.with_name(out.stem + "-rows.jsonl")
    try:
        append_rows(rows, aside)
    except WriteError as err2:
        return (f"{len(rows)} measured row(s) were NOT added to the local dataset ({err}), nor written beside "
                f"the results ({err2}). The measurements themselves are in {out}.")
    return (f"{len(rows)} measured row(s) were NOT added to the local dataset ({err}). They are kept in "
            f"{aside} (the raw results in {out}); once {store} is writable, add them with: "
            f"cat {aside} >> {store}")


def _progress(console: Any, monitor: Any):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class PowerColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            s = monitor.sampler
            w = s.latest_power_w() if s is not None else None
            return Text("power n/a" if w is None else f"{w:6.1f} W", style="green")

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), PowerColumn(),
                    TimeElapsedColumn(), console=console, transient=False, refresh_per_second=5)


def _events(progress: Any, per_config: int):
    state: dict[str, Any] = {"task": None}

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "config_start":
            c = payload["config"]
            if state["task"] is not None:
                progress.update(state["task"], visible=False)
            state["task"] = progress.add_task(f"[{payload['index']}/{payload['total']}] {c.key()}", total=per_config)
        elif kind == "run" and state["task"] is not None:
            progress.advance(state["task"])
        elif kind == "load":
            progress.console.print(f"loading {payload['config'].model} ({payload['config'].precision})")
        elif kind == "skip":
            progress.console.print(f"already measured in the results file, skipped: {payload['key']}")
        elif kind == "config_done":
            r = payload["result"]
            if r.status != "ok":
                progress.console.print(f"[red]{r.status.upper()}[/] {r.key}: {r.error}")

    return on_event


def _inference_configs(args, model, overrides) -> list[Any]:
    from engine.inference import InferenceConfig

    return [InferenceConfig(model=model, precision=p.lower(), batch_size=b, prompt_tokens=args.prompt_tokens,
                               gen_tokens=args.gen_tokens, synthetic=args.synthetic, overrides=overrides,
                               double_quant=args.double_quant, compute_dtype=args.compute_dtype or "fp16",
                               fp8_mode=args.fp8_mode, compile=args.compile,
                               trust_remote_code=args.trust_remote_code, cache=cache, tp=args.tp)
               for p in args.precision for b in args.batch_size for cache in bench_serve.caches(args)]


def _region(args) -> str | None:
    region = None if args.no_carbon else args.region
    if region:
        _check_region(region)
    return region


def _run_inference(args, model, overrides, settings, monitor, prov, out, trace_dir, console):
    from engine.inference import Sweep
    from engine.rows import inference_row

    configs = _inference_configs(args, model, overrides)
    if args.tp:
        results = bench_serve.run_tp(args, configs, settings, out, trace_dir, console)
        names = next((r.provenance.gpu_names for r in results if r.provenance), []) or [args.device]
        src = f"ecolobster bench --tp {args.tp} on {args.tp} x {names[0]} ({out.name})"
        return results, [inference_row(r, src, trace_prefix=str(trace_dir) + "/") for r in results if r.status == "ok"]
    region = _region(args)
    with _progress(console, monitor) as progress:
        sweep = Sweep(configs, settings, args.device, out, trace_dir, monitor=monitor, provenance=prov,
                      on_event=_events(progress, settings.warmup + settings.runs), carbon_region=region,
                      interleave=args.interleave)
        results = sweep.run()
    src = f"ecolobster bench on {prov.gpu_names[0] if prov.gpu_names else args.device} ({out.name})"
    rows = [inference_row(r, src, trace_prefix=str(trace_dir) + "/") for r in results if r.status == "ok"]
    return results, rows


def _finetune_configs(args, model, overrides, settings) -> list[Any]:
    from engine.finetune import FinetuneConfig

    dtype: Literal["bf16", "fp16", "fp32"] = args.compute_dtype or ("bf16" if args.device == "cuda" else "fp32")
    return [FinetuneConfig(model=model, method=m, rank=r, alpha=args.alpha, seq_len=s,
                              batch_size=b, grad_checkpointing=(g == "on"), optimizer=o, quant=args.quant,
                              double_quant=args.double_quant, dtype=dtype, steps=args.steps,
                              warmup_steps=settings.warmup, lr=args.lr, save_every=args.save_every,
                              synthetic=args.synthetic, overrides=overrides,
                              trust_remote_code=args.trust_remote_code)
               for m in args.method for r in (args.rank if m != "full" else args.rank[:1])
               for s in args.seq_len for b in args.batch_size for g in args.grad_checkpointing
               for o in args.optimizer]


def _run_finetune(args, model, overrides, settings, monitor, prov, out, trace_dir, console):
    from engine.finetune import FinetuneSweep
    from engine.rows import finetune_row

    configs = _finetune_configs(args, model, overrides, settings)
    with _progress(console, monitor) as progress:
        sweep = FinetuneSweep(configs, settings, args.device, out, trace_dir, monitor=monitor, provenance=prov,
                              on_event=_events(progress, settings.warmup + args.steps))
        results = sweep.run()
    src = f"ecolobster bench --finetune on {prov.gpu_names[0] if prov.gpu_names else args.device} ({out.name})"
    rows = [finetune_row(r, src, trace_prefix=str(trace_dir) + "/") for r in results if r.status == "ok"]
    return results, rows


def _check_region(region: str) -> None:
    from measurements import catalog

    try:
        catalog.resolve_region(region)
    except catalog.UnknownName as err:
        raise UsageError(f"--region: {err}") from None


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def _label(r: Any) -> str:
    c = r.config
    if hasattr(c, "method"):
        rank = "" if c.method == "full" else f" r{c.rank}"
        return (f"{c.model} {c.method}{rank} {c.precision} seq {c.seq_len} bs {c.batch_size} "
                f"gc {'on' if c.grad_checkpointing else 'off'} {c.optimizer}")
    cache = " static cache" if getattr(c, "cache", "dynamic") == "static" else ""
    return f"{c.model} {c.precision}{cache} bs {c.batch_size} ({c.prompt_tokens}->{c.gen_tokens} tok)"


def _table_rows(results: list[Any]) -> tuple[list[str], list[list[str]]]:
    if results and hasattr(results[0], "itl_ms"):
        return bench_serve.table_rows(results)
    if results and hasattr(results[0], "step_time_s"):
        head = ["configuration", "status", "step s", "tok/s", "W", "J/step", "J/1k tok", "peak GB"]
        body = [[_label(r), r.status, _fmt(r.step_time_s, ".3f"), _fmt(r.tokens_per_s, ".0f"), _fmt(r.power_w),
                 _fmt(r.energy_j_per_step), _fmt(r.energy_j_per_token * 1000 if r.energy_j_per_token else None),
                 _fmt(r.peak_mem_alloc_gb, ".2f")] for r in results]
        return head, body
    head = ["configuration", "status", "tok/s", "prefill ms", "decode tok/s", "W", "J/1k tok", "± CI95", "net J/1k"]
    body = [[_label(r), r.status, _fmt(r.throughput_tok_s), _fmt(r.prefill_ms), _fmt(r.decode_tok_s), _fmt(r.power_w),
             _fmt(r.energy_j_per_1k_tok), _fmt(r.energy_ci95), _fmt(r.energy_net_j_per_1k_tok)] for r in results]
    return head, body


def _show(args: argparse.Namespace, results: list[Any], rows: list[Any], out: Path, stored: int,
          where: Path | None) -> None:
    if args.fmt == "json":
        print(json.dumps({"results_file": str(out), "stored_rows": stored, "store": str(where) if where else None,
                          "row_ids": [r.id for r in rows],
                          "results": [r.model_dump(mode="json", exclude={"runs", "steps"}) for r in results]},
                         indent=2, default=str))
        return
    head, body = _table_rows(results)
    if args.fmt == "markdown":
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for b in body:
            print("| " + " | ".join(b) + " |")
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="ecolobster bench")
        for h in head:
            t.add_column(h, overflow="fold")
        for b in body:
            t.add_row(*b)
        Console().print(t)
    if not results:
        print(f"nothing to measure: every configuration is already in {out}")
    print(f"results: {out}")
    if stored:
        if args.device == "cpu":  # no energy figure: the rows record throughput, not J/1k tok
            print(f"{stored} row(s) added to the local dataset ({where}); they record throughput only "
                  "(`ecolobster data list --gpu cpu`), so energy answers still come from GPU rows.")
        else:
            print(f"{stored} row(s) added to the local dataset ({where}); the advisor now answers these "
                  "configurations from them (tier measured).")
    if any(r.status == "ok" and r.energy_method is None for r in results):
        print("energy unavailable on this device: throughput only.", file=sys.stderr)


# --- on a Ray cluster (--ray) ------------------------------------------------------------------

def _run_on_ray(args: argparse.Namespace, model: str, overrides: dict[str, int], settings: Any,
                console: Any) -> int:
    """The driver: connect, plan or dispatch (engine/cluster.py), then rows, store and report as a
    local run does; every row keeps the GPU, driver and node of the node that measured it."""
    from engine import cluster
    from engine.rows import finetune_row, inference_row
    from measurements.store import WriteError

    if args.serve or args.interleave:  # both measure several configurations on one loaded model
        raise UsageError(f"{'--serve' if args.serve else '--interleave'} is not dispatched over Ray: "
                         "each Ray task measures one configuration; run it on the node itself")
    if args.finetune:
        from engine.finetune import FinetuneSweep

        sweep_cls: type[Any] = FinetuneSweep
        configs = _finetune_configs(args, model, overrides, settings)
        kwargs: dict[str, Any] = {}
        make_row: Callable[..., MeasurementRow] = finetune_row
    else:
        from engine.inference import Sweep

        sweep_cls = Sweep
        configs = _inference_configs(args, model, overrides)
        kwargs = {"carbon_region": _region(args)}
        make_row = inference_row
    out, trace_dir = _out_paths(args)
    if not args.plan:
        _preflight_files(args, out)
    try:
        with cluster.connected(args.ray) as ray:
            nodes = cluster.nodes(ray)
            cluster.check_gpu_type(args.gpu_type, nodes)
            if args.plan:
                _show_plan(args, cluster.make_plan(configs, args.device, args.gpu_type, nodes, out), nodes)
                return 0
            console.print(f"{len(configs)} configuration(s) on a Ray cluster of {len(nodes)} node(s)")
            outcome = cluster.run(ray, sweep_cls, configs, settings, args.device, out, trace_dir,
                                  gpu_type=args.gpu_type, sweep_kwargs=kwargs, on_event=_ray_events(console),
                                  cluster=nodes)
    except cluster.ClusterError as err:
        raise UsageError(str(err)) from None
    except WriteError as err:  # the results file failed mid-sweep: what is in it stays valid
        raise UsageError(f"the results file could not be written: {err}. The configurations finished before "
                         f"this are in {out}; run the same command again to measure the rest.") from None
    results = outcome.results
    what = "ecolobster bench --finetune --ray" if args.finetune else "ecolobster bench --ray"
    rows = [make_row(r, f"{what} on {_measured_on(r, args.device)} ({out.name})",
                     trace_prefix=str(trace_dir) + "/") for r in results if r.status == "ok"]
    stored, where, store_error = _store(args, rows, out)
    _show(args, results, rows, out, stored, where)
    kinds = cluster.node_kinds([r for r in results if r.status == "ok"])
    if len(kinds) > 1:  # each row carries its own GPU and driver: say so rather than pool them
        print(f"the configurations ran on {len(kinds)} kinds of node; each row records its own: "
              + "; ".join(f"{gpu} (driver {drv}): {len(keys)}" for (gpu, drv), keys in kinds.items()),
              file=sys.stderr)
    if store_error:
        raise UsageError(store_error)
    if outcome.cancelled:
        print(f"interrupted: {len(outcome.cancelled)} configuration(s) cancelled, {len(results)} kept in {out}; "
              "run the same command again to measure the rest", file=sys.stderr)
        return 130
    if results and all(r.status == "error" for r in results):
        return 1
    return 0


def _measured_on(res: Any, device: str) -> str:
    p = res.provenance
    gpu = (p.gpu_names[0] if p is not None and p.gpu_names else device)
    node = p.node_name if p is not None and p.node_name else "?"
    return f"{gpu}, Ray node {node}"


def _ray_events(console: Any):
    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "skip":
            console.print(f"already measured in the results file, skipped: {payload['key']}")
        elif kind == "config_done":
            r = payload["result"]
            node = r.provenance.node_name if r.provenance is not None else None
            where = f" on {node} ({r.provenance.node_id[:12]})" if node and r.provenance.node_id else ""
            console.print(f"{r.status.upper()} {r.key}{where}" + (f": {r.error}" if r.error else ""))

    return on_event


def _show_plan(args: argparse.Namespace, plan: list[Any], nodes: list[Any]) -> None:
    if args.fmt == "json":
        print(json.dumps({"nodes": [n.model_dump() for n in nodes],
                          "plan": [{"key": p.key, "skipped": p.skipped, "num_gpus": p.request.num_gpus,
                                    "num_cpus": p.request.num_cpus, "accelerator_type": p.request.accelerator_type,
                                    "nodes": [n.node_id for n in p.nodes],
                                    "at_once": {n.node_id: p.request.at_once(n) for n in p.nodes}}
                                   for p in plan]}, indent=2))
        return
    print(f"Ray cluster: {len(nodes)} node(s)")
    for n in nodes:
        print(f"  {n.label()}")
    print("plan (Ray picks among the nodes listed when each task starts; xN = side by side):")
    for p in plan:
        print(f"  {p.text()}")
    if any(not p.nodes and not p.skipped for p in plan):
        print("configurations no node offers are recorded as errors when the sweep runs", file=sys.stderr)
