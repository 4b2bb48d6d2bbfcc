"""`ecolobster bench --serve`: the serving load test's flags, checks and run (engine.serve).

Kept apart from engine/cli.py so the bench command's own module stays about the per-request path;
like it, nothing here imports the engine or torch until the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any, Literal

from engine.usage import UsageError

SERVE_RUNS, SERVE_WARMUP = 3, 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    sv = p.add_argument_group("serving load test (with --serve: transformers continuous batching)")
    sv.add_argument("--serve", action="store_true",
                    help="load-test transformers' continuous batching (paged KV cache) instead of one generate "
                         "call: a fixed concurrency or Poisson arrivals; energy over the steady state only")
    sv.add_argument("--concurrency", nargs="+", type=int, default=None, metavar="N",
                    help="requests kept in flight (closed loop); one load test per value")
    sv.add_argument("--rate", nargs="+", type=float, default=None, metavar="RPS",
                    help="Poisson arrival rates in requests/s (open loop, seeded); one load test per value")
    sv.add_argument("--num-requests", type=int, default=None, metavar="N",
                    help="requests per load test (default 4 x the concurrency, at least 16; Poisson: 64)")
    sv.add_argument("--prompt-dist", default=None, metavar="SPEC",
                    help="prompt lengths: N, uniform:LO:HI or normal:MEAN:STD (default: --prompt-tokens, fixed)")
    sv.add_argument("--gen-dist", default=None, metavar="SPEC",
                    help="output lengths: N, uniform:LO:HI or normal:MEAN:STD (default: --gen-tokens, fixed)")
    sv.add_argument("--max-num-seqs", type=int, default=None, metavar="N",
                    help="cap on requests per batch in the manager (default: transformers' own sizing)")
    sv.add_argument("--seed", type=int, default=0, help="seed of arrivals, lengths and prompt ids (default 0)")
    rg = p.add_argument_group("decoding regime and stable figures (one generate call per run)")
    rg.add_argument("--static-cache", action="store_true",
                    help="static KV cache: transformers compiles the decode step into CUDA graphs on a GPU "
                         "(framework hf-static-cache); the warm-up covers compilation, reported apart")
    rg.add_argument("--cache", nargs="+", choices=["dynamic", "static"], default=None,
                    help="KV caches to measure (dynamic: hf-eager, static: hf-static-cache); --cache dynamic "
                         "static compares both on one loaded model")
    rg.add_argument("--interleave", action="store_true",
                    help="measure the configurations of one loaded model in rounds (A B A B) rather than one "
                         "block after another, so clock and temperature drift falls on all alike")
    pg = p.add_argument_group("several GPUs (tensor parallel through transformers' tp_plan='auto')")
    pg.add_argument("--tp", type=int, default=None, metavar="N",
                    help="tensor-parallel size: N processes under torch.distributed.run, one GPU each, energy of "
                         "all N GPUs summed and every GPU's trace kept (on --device cpu: N gloo processes)")
    pg.add_argument("--gpus", type=int, default=None, metavar="N",
                    help="GPUs to use; the model is split over all of them (--tp N); data parallelism is not "
                         "measured")
    rg.add_argument("--min-window", type=float, default=None, metavar="S",
                    help="repeat the generate call inside each measured window until it lasts S seconds "
                         "(default 1 on a GPU: 10 steps of the energy counter; 0 on CPU)")


def caches(args: argparse.Namespace) -> list[Literal["dynamic", "static"]]:
    """The KV caches to measure: --cache, or static with --static-cache, else dynamic."""
    if args.cache:
        return list(dict.fromkeys(args.cache))
    return ["static"] if args.static_cache else ["dynamic"]


def min_window(args: argparse.Namespace) -> float:
    if args.min_window is not None:
        return args.min_window
    return 1.0 if args.device == "cuda" and not args.serve and not args.finetune else 0.0


def check_args(args: argparse.Namespace) -> None:
    """Serving flags without --serve, --serve with flags it cannot honour, and the regime flags
    where they do not apply: a clear error."""
    regime = [f for f, v in (("--static-cache", args.static_cache), ("--cache", args.cache),
                             ("--interleave", args.interleave)) if v]
    if regime and (args.serve or args.finetune):
        raise UsageError(f"{', '.join(regime)} apply to the one-generate-call inference path, not to "
                         f"{'--serve' if args.serve else '--finetune'}")
    if args.static_cache and args.cache and args.cache != ["static"]:
        raise UsageError("--static-cache means --cache static; to compare both use --cache dynamic static")
    if args.min_window is not None and not args.min_window >= 0:
        raise UsageError(f"--min-window must be >= 0 seconds (got {args.min_window})")
    if getattr(args, "ray", None) is not None:
        mine = [f for f, v in (("--serve", args.serve), ("--tp", args.tp), ("--gpus", args.gpus),
                               ("--interleave", args.interleave)) if v]
        if mine:
            raise UsageError(f"{', '.join(mine)} measure on this machine; with --ray they are not built yet")
    _check_parallel(args)
    if "static" in caches(args) and args.warmup == 0:
        raise UsageError("the static cache needs at least one warm-up run (--warmup >= 1): compilation and graph "
                         "capture happen in the first call and must stay outside the measured windows")
    serve_only = [f for f, v in (("--concurrency", args.concurrency), ("--rate", args.rate),
                                 ("--num-requests", args.num_requests), ("--prompt-dist", args.prompt_dist),
                                 ("--gen-dist", args.gen_dist), ("--max-num-seqs", args.max_num_seqs))
                  if v is not None]
    if not args.serve:
        if serve_only:
            raise UsageError(f"{', '.join(serve_only)} belong to the serving load test: add --serve")
        return
    if args.finetune:
        raise UsageError("--serve measures inference serving; it does not combine with --finetune")
    if args.concurrency is None and args.rate is None:
        raise UsageError("--serve needs a load: --concurrency N (requests kept in flight) or --rate RPS "
                         "(Poisson arrivals)")
    if args.batch_size != [1]:
        raise UsageError("--serve sets the batch by load: use --concurrency (or --rate), not --batch-size")
    if any(c < 1 for c in args.concurrency or []):
        raise UsageError(f"--concurrency must be >= 1 (got {args.concurrency})")
    if any(not r > 0 for r in args.rate or []):
        raise UsageError(f"--rate must be > 0 requests/s (got {args.rate})")
    if args.num_requests is not None:
        if args.num_requests < 2:
            raise UsageError(f"--num-requests must be >= 2 (got {args.num_requests})")
        top = max(args.concurrency or [0])
        if top and args.num_requests <= top:
            raise UsageError(f"--num-requests ({args.num_requests}) must exceed the largest --concurrency ({top}), "
                             "else no request is sent after the first wave and there is no steady state")
    if args.max_num_seqs is not None and args.max_num_seqs < 1:
        raise UsageError(f"--max-num-seqs must be >= 1 (got {args.max_num_seqs})")
    for flag in ("prompt_dist", "gen_dist"):
        _dist(getattr(args, flag), f"--{flag.replace('_', '-')}")
    if args.gen_dist is None and args.gen_tokens < 2:
        raise UsageError("--gen-tokens must be >= 2 with --serve (inter-token latency needs two tokens)")


def _check_parallel(args: argparse.Namespace) -> None:
    """--gpus / --tp: folded into args.tp, or a clear error."""
    for flag, v in (("--tp", args.tp), ("--gpus", args.gpus)):
        if v is not None and v < 1:
            raise UsageError(f"{flag} must be >= 1 (got {v})")
    if args.gpus is not None and args.tp is not None and args.gpus != args.tp:
        raise UsageError(f"--gpus {args.gpus} with --tp {args.tp}: only tensor parallelism over every GPU is "
                         "measured (data parallelism is not); give one of them")
    args.tp = args.tp if args.tp is not None else args.gpus
    if args.tp is None:
        return
    where = "--serve" if args.serve else "--finetune" if args.finetune else None
    if where:
        raise UsageError(f"--tp/--gpus measure generate calls; tensor-parallel {where[2:]} is not built yet")
    bad = [p for p in args.precision if p.lower() not in ("fp32", "fp16", "bf16")]
    if bad:
        raise UsageError(f"--tp measures fp32, fp16 or bf16 (transformers' tensor parallelism); not {', '.join(bad)}")
    if args.interleave:
        raise UsageError("--interleave is not available with --tp yet")
    if args.device == "cuda":
        import importlib.util

        if importlib.util.find_spec("torch") is not None:
            import torch

            n = torch.cuda.device_count()
            if n and args.tp > n:
                raise UsageError(f"--tp {args.tp} needs {args.tp} GPUs; {n} are visible")


def run_tp(args: argparse.Namespace, configs: list[Any], settings: Any, out: Any, trace_dir: Any,
           console: Any) -> list[Any]:
    """Start the tensor-parallel ranks (engine.parallel) on the configurations not yet in ``out``
    and read back what rank 0 wrote."""
    import os
    import subprocess

    from engine.inference import InferenceResult
    from engine.parallel import TPJob, launch_command, write_job
    from engine.results import done_keys, read_jsonl

    done = done_keys(out)
    todo = [c for c in configs if c.key() not in done]
    for c in configs:
        if c.key() in done:
            console.print(f"already measured in the results file, skipped: {c.key()}")
    if not todo:
        return []
    job = TPJob(configs=[c.model_dump(mode="json") for c in todo], settings=settings, device=args.device,
                tp=args.tp, out=str(out), trace_dir=str(trace_dir), sample_interval_s=settings.sample_interval_s)
    path = write_job(job, out.with_name(out.stem + "-tpjob.json"))
    console.print(f"starting {args.tp} tensor-parallel rank(s): {' '.join(launch_command(path, args.tp))}")
    rc = subprocess.run(launch_command(path, args.tp), env=dict(os.environ), check=False).returncode
    keys = {c.key() for c in todo}
    results = [InferenceResult.model_validate(r) for r in read_jsonl(out) if r.get("key") in keys]
    if rc != 0:
        console.print(f"[red]the tensor-parallel ranks exited with status {rc}[/]; "
                      f"{len(results)} of {len(todo)} configuration(s) finished (run again to resume)")
        if not results:
            raise UsageError(f"tensor-parallel run failed (exit {rc}) before any configuration finished; "
                             "its output is above")
    return results


def _dist(spec: str | None, flag: str, default: int | None = None) -> Any:
    from engine.serve import LengthDist

    if spec is None:
        return None if default is None else LengthDist(a=default)
    try:
        return LengthDist.parse(spec)
    except ValueError as err:
        raise UsageError(f"{flag}: {err}") from None


def configs(args: argparse.Namespace, model: str, overrides: dict[str, int]) -> list[Any]:
    from engine.serve import ServeConfig

    prompt = _dist(args.prompt_dist, "--prompt-dist", args.prompt_tokens)
    output = _dist(args.gen_dist, "--gen-dist", args.gen_tokens)
    loads: list[dict[str, Any]] = [{"arrival": "concurrency", "concurrency": c} for c in args.concurrency or []]
    loads += [{"arrival": "poisson", "rate_rps": r} for r in args.rate or []]
    out = []
    for p in args.precision:
        for load in loads:
            c = load.get("concurrency")
            n = args.num_requests or (max(16, 4 * c) if c else 64)
            try:
                out.append(ServeConfig(model=model, precision=p.lower(), num_requests=n, prompt=prompt, output=output,
                                       seed=args.seed, max_num_seqs=args.max_num_seqs, synthetic=args.synthetic,
                                       overrides=overrides, compute_dtype=args.compute_dtype or "fp16",
                                       double_quant=args.double_quant, fp8_mode=args.fp8_mode, compile=args.compile,
                                       trust_remote_code=args.trust_remote_code, **load))
            except ValueError as err:
                raise UsageError(f"--serve: {_msg(err)}") from None
    return out


def _msg(err: Exception) -> str:
    from engine.serve import _first_error

    return _first_error(err).removeprefix("Value error, ")


def run(args: argparse.Namespace, model: str, overrides: dict[str, int], settings: Any, monitor: Any, prov: Any,
        out: Any, trace_dir: Any, progress: Any, on_event: Any) -> tuple[list[Any], list[Any]]:
    from engine.rows import serve_row
    from engine.serve import ServeError, ServeSweep, cb_config_class

    try:
        cb_config_class()
    except ServeError as err:
        raise UsageError(str(err)) from None
    sweep = ServeSweep(configs(args, model, overrides), settings, args.device, out, trace_dir, monitor=monitor,
                       provenance=prov, on_event=on_event)
    results = sweep.run()
    src = f"ecolobster bench --serve on {prov.gpu_names[0] if prov.gpu_names else args.device} ({out.name})"
    rows = [serve_row(r, src, trace_prefix=str(trace_dir) + "/") for r in results if r.status == "ok"]
    return results, rows


def _f(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def table_rows(results: list[Any]) -> tuple[list[str], list[list[str]]]:
    head = ["configuration", "status", "tok/s", "req/s", "batch", "TTFT p50/p99 ms", "ITL p50/p99 ms",
            "e2e p50 s", "W", "J/1k tok", "J/req"]
    body = []
    for r in results:
        c = r.config
        label = (f"{c.model} {c.precision} {c.load_label()} x{c.num_requests} "
                 f"({c.prompt.label()}->{c.output.label()} tok)")
        t, i = r.ttft_ms or {}, r.itl_ms or {}
        body.append([label, r.status, _f(r.throughput_tok_s), _f(r.request_rate_rps, ".2f"),
                     _f(r.mean_batch_size, ".1f"), f"{_f(t.get('p50'))}/{_f(t.get('p99'))}",
                     f"{_f(i.get('p50'), '.2f')}/{_f(i.get('p99'), '.2f')}", _f((r.e2e_s or {}).get("p50"), ".3f"),
                     _f(r.power_w), _f(r.energy_j_per_1k_tok), _f(r.energy_j_per_request, ".2f")])
    return head, body
