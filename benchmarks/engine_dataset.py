"""Measure a GPU dataset on a CUDA machine: the inference grid of issue 6 and the fine-tuning
grid of issue 7 (run on an H100 on 2026-11-23 and on an H200 on 2026-12-01).

    python benchmarks/engine_dataset.py inference --out DIR [--budget-s 540] [--resume FILE] [--order h200]
    python benchmarks/engine_dataset.py finetune  --out DIR [--budget-s 540] [--resume FILE]
    python benchmarks/engine_dataset.py inference --fp8 --out DIR     # both torchao FP8 schemes only

Results are JSON lines (one per configuration, written as each finishes) in DIR; the power
traces are kept in DIR/<phase>_traces.tar.gz, refreshed after every configuration, so a run
killed at its time limit keeps what it measured. ``--resume`` seeds the results file with an
earlier run's lines: finished configurations are skipped. ``--budget-s`` stops starting new
configurations after that many seconds. ``--order h200`` runs the groups in the H200 session's
priority (H200_ORDER). Without CUDA this prints a note and exits 0 (so
``make bench`` passes on machines without a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QWEN = ("qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b")
GRID_PRECISIONS = ("fp16", "bf16", "nf4", "int8_pure", "int8_mixed")
PROMPT, GEN, GEN_INT8_MIXED = 128, 64, 32
SWEEP_BS = (1, 2, 4, 8, 16, 32, 64)
FT_MODELS = ("qwen2.5-7b", "qwen2.5-1.5b", "phi-3-mini")  # in order of priority
# The H200 session: first the (model, precision) groups the H100 sessions did not reach, with
# the 7B fp16 sweep and the 0.5B fp16 pair early as anchors (same configurations as H100 rows, so
# the two GPUs are compared on equal terms); the slow LLM.int8() groups and the rest last.
H200_ORDER = (("qwen2.5-7b", "fp16"), ("qwen2.5-7b", "int8_pure"), ("qwen2.5-7b", "nf4"), ("qwen2.5-7b", "bf16"),
              ("qwen2.5-0.5b", "fp16"), ("qwen2.5-3b", "fp16"), ("qwen2.5-3b", "bf16"), ("qwen2.5-3b", "nf4"),
              ("qwen2.5-3b", "int8_pure"), ("qwen2.5-7b", "fp8"), ("qwen2.5-0.5b", "fp8"),
              ("qwen2.5-7b", "int8_mixed"), ("qwen2.5-3b", "int8_mixed"))


def fp8_configs() -> list[Any]:
    """Both torchao FP8 schemes on one GPU (2026-12-02): weight-only (the path the RTX 5090 rows of
    seed 003 ran) for every Qwen size, first; then dynamic activation + weight for the sizes the grid
    lacks, so the two implementations are compared on the same GPU, models and batches."""
    from engine.inference import InferenceConfig

    out = [InferenceConfig(model=m, precision="fp8", batch_size=bs, prompt_tokens=PROMPT, gen_tokens=GEN,
                           compute_dtype="bf16", fp8_mode="weight_only") for m in QWEN for bs in (1, 8)]
    out += [InferenceConfig(model=m, precision="fp8", batch_size=bs, prompt_tokens=PROMPT, gen_tokens=GEN,
                            compute_dtype="bf16", fp8_mode="dynamic") for m in ("qwen2.5-1.5b", "qwen2.5-3b")
            for bs in (1, 8)]
    return out


def inference_configs(only: str | None = None, order: str = "grid") -> list[Any]:
    from engine.inference import InferenceConfig

    cap = (f"int8_mixed generation capped at {GEN_INT8_MIXED} new tokens (LLM.int8() decomposition is slow at "
           f"batch 1; the other precisions generate {GEN})")
    out = []
    for m in QWEN:
        for p in GRID_PRECISIONS:
            for bs in (1, 8):
                g = GEN_INT8_MIXED if p == "int8_mixed" else GEN
                out.append(InferenceConfig(model=m, precision=p, batch_size=bs, prompt_tokens=PROMPT, gen_tokens=g,
                                           note=cap if p == "int8_mixed" else ""))
    for p in ("fp16", "int8_pure"):  # the 7B batch sweep; bs 1 and 8 are already in the grid
        for bs in SWEEP_BS:
            if bs not in (1, 8):
                out.append(InferenceConfig(model="qwen2.5-7b", precision=p, batch_size=bs, prompt_tokens=PROMPT,
                                           gen_tokens=GEN))
    for m in ("qwen2.5-0.5b", "qwen2.5-7b"):  # FP8 through torchao, when it imports
        for bs in (1, 8):
            out.append(InferenceConfig(model=m, precision="fp8", batch_size=bs, prompt_tokens=PROMPT, gen_tokens=GEN,
                                       compute_dtype="bf16", fp8_mode="dynamic"))
    if order == "h200":
        rank = {g: i for i, g in enumerate(H200_ORDER)}
        out.sort(key=lambda c: rank.get((c.model, c.precision), len(rank)))  # stable: grid order inside
    if only:
        # Priority order for a short run: the 7B sweeps first, then the rest of its grid.
        order = {"fp16": 0, "int8_pure": 1, "nf4": 2, "bf16": 3, "int8_mixed": 4, "fp8": 5}
        out = sorted((c for c in out if c.model == only), key=lambda c: order[c.precision])
    return out


def finetune_configs(steps: int = 5, warmup: int = 2) -> list[Any]:
    from engine.finetune import FinetuneConfig

    out = []
    for m in FT_MODELS:
        for method in ("lora", "qlora"):
            for s in (512, 2048):
                for r in (16, 64):
                    for gc in (False, True):
                        out.append(FinetuneConfig(model=m, method=method, rank=r, alpha=16, seq_len=s,
                                                  grad_checkpointing=gc, steps=steps, warmup_steps=warmup))
    # Extras, in order of interest, if time is left: issue 7's other axes.
    out += [
        FinetuneConfig(model="qwen2.5-7b", method="qlora", rank=16, alpha=16, seq_len=512, steps=8, warmup_steps=2,
                       save_every=3, note="adapter saved every 3 steps: the checkpoint-spike study (seed 000)"),
        FinetuneConfig(model="qwen2.5-1.5b", method="full", seq_len=512, steps=steps, warmup_steps=warmup),
        FinetuneConfig(model="qwen2.5-7b", method="qlora", double_quant=True, rank=16, alpha=16, seq_len=512,
                       steps=steps, warmup_steps=warmup),
        FinetuneConfig(model="qwen2.5-7b", method="qlora", rank=16, alpha=16, seq_len=512, optimizer="paged_adamw_8bit",
                       steps=steps, warmup_steps=warmup),
        FinetuneConfig(model="qwen2.5-7b", method="qlora", quant="int8", rank=16, alpha=16, seq_len=512,
                       steps=steps, warmup_steps=warmup),
        FinetuneConfig(model="qwen2.5-1.5b", method="full", seq_len=512, grad_checkpointing=True, steps=steps,
                       warmup_steps=warmup),
        FinetuneConfig(model="qwen2.5-7b", method="qlora", rank=8, alpha=16, seq_len=512, steps=steps,
                       warmup_steps=warmup),
        FinetuneConfig(model="qwen2.5-7b", method="qlora", rank=32, alpha=16, seq_len=512, steps=steps,
                       warmup_steps=warmup),
    ]
    return out


def _tar(src: Path, dst: Path) -> None:
    tmp = dst.with_suffix(".partial")
    with tarfile.open(tmp, "w:gz") as tf:
        for f in sorted(src.glob("*.csv")):
            tf.add(f, arcname=f.name)
    tmp.replace(dst)


def _setup(out: Path, phase: str, resume: Path | None) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    results = out / f"{phase}.jsonl"
    if resume is not None and resume.exists() and not results.exists():
        shutil.copy(resume, results)
    traces = Path(os.environ.get("TMPDIR", "/tmp")) / f"ecolobster-traces-{phase}"
    traces.mkdir(parents=True, exist_ok=True)
    return results, traces


def _logger(phase: str, traces: Path, tar_to: Path):
    t0 = time.monotonic()

    def on_event(kind: str, p: dict[str, Any]) -> None:
        el = time.monotonic() - t0
        if kind == "load":
            print(f"[{el:6.1f}s] load {p['config'].model} {p['config'].precision}", flush=True)
        elif kind == "config_done":
            r = p["result"]
            d = r.model_dump(mode="json", exclude={"runs", "steps", "provenance", "settings", "config", "notes"})
            keep = {k: v for k, v in d.items() if v not in (None, [], "") and not isinstance(v, dict)}
            print(f"[{el:6.1f}s] {json.dumps(keep, default=str)}", flush=True)
            _tar(traces, tar_to)
        elif kind in ("skip", "deadline"):
            print(f"[{el:6.1f}s] {kind} {p}", flush=True)

    return on_event


def _monitor_and_provenance(settings: Any) -> tuple[Any, Any]:
    from engine.power import EnergyMonitor
    from engine.provenance import capture

    mon = EnergyMonitor.open(settings.sample_interval_s, min_counter_window_s=settings.min_counter_window_s)
    names = mon.reader.names()
    prov = capture("cuda", names, mon.reader.driver_version(), settings.describe())
    print(f"GPUs {names}, driver {prov.driver_version}, catalog key {prov.gpu_key}, instant power field: "
          f"{[mon.reader.instant_power(g) for g in mon.reader.gpu_indices()]}", flush=True)
    print(f"versions {prov.versions} cuda {prov.cuda_version}", flush=True)
    return mon, prov


def _cold_idle(mon: Any, out: Path, phase: str, prov: Any) -> None:
    """Idle power before anything ran in this process (the GPU may still be clocked up)."""
    w = mon.measure_idle(3.0)
    rec = {"phase": phase, "cold_idle_w": w.power_w, "method": w.method, "provenance": prov.model_dump(mode="json")}
    print("ENV " + json.dumps(rec, default=str), flush=True)


def run_inference(out: Path, budget_s: float, resume: Path | None, only: str | None = None,
                  order: str = "grid", reruns: int | None = None, fp8: bool = False) -> None:
    from engine.inference import Sweep
    from engine.protocol import ProtocolSettings

    # The second H100 session (only=7B) had less device time left: no re-runs, gates flagged.
    # The H200 session (order=h200) used the same settings as that second H100 session.
    settings = ProtocolSettings(warmup=1, runs=3, pause_s=1.0, idle_s=1.0,
                                max_reruns=reruns if reruns is not None else (0 if only else 1))
    results, traces = _setup(out, "inference", resume)
    mon, prov = _monitor_and_provenance(settings)
    _cold_idle(mon, out, "inference", prov)
    try:
        Sweep(fp8_configs() if fp8 else inference_configs(only, order), settings, "cuda", results, traces, monitor=mon, provenance=prov,
              on_event=_logger("inference", traces, out / "inference_traces.tar.gz"),
              deadline=time.monotonic() + budget_s).run()
    finally:
        mon.close()
        _tar(traces, out / "inference_traces.tar.gz")


def run_finetune(out: Path, budget_s: float, resume: Path | None, fast: bool = False) -> None:
    from engine.finetune import FinetuneSweep
    from engine.protocol import ProtocolSettings

    settings = ProtocolSettings(pause_s=0.5 if fast else 1.0, idle_s=0.5 if fast else 1.0, max_reruns=0)
    results, traces = _setup(out, "finetune", resume)
    mon, prov = _monitor_and_provenance(settings)
    _cold_idle(mon, out, "finetune", prov)
    try:
        FinetuneSweep(finetune_configs(*((4, 1) if fast else (5, 2))), settings, "cuda", results, traces, monitor=mon, provenance=prov,
                      on_event=_logger("finetune", traces, out / "finetune_traces.tar.gz"),
                      deadline=time.monotonic() + budget_s).run()
    finally:
        mon.close()
        _tar(traces, out / "finetune_traces.tar.gz")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("phase", nargs="?", choices=["inference", "finetune"])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "out")))
    ap.add_argument("--budget-s", type=float, default=540.0)
    ap.add_argument("--resume", type=Path, default=None)
    ap.add_argument("--only", default=None, help="inference: one model key (its configurations, priority order)")
    ap.add_argument("--order", choices=["grid", "h200"], default="grid",
                    help="inference: the order of the (model, precision) groups")
    ap.add_argument("--reruns", type=int, default=None, help="inference: re-runs when a CV gate fails")
    ap.add_argument("--fast", action="store_true", help="finetune: 1 warm-up + 4 measured steps, 0.5 s idle")
    ap.add_argument("--fp8", action="store_true", help="inference: both torchao FP8 schemes (fp8_configs) only")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("engine_dataset: torch is not installed; nothing measured")
        return 0
    if not torch.cuda.is_available() or args.phase is None:
        print("engine_dataset: needs a CUDA GPU and a phase (inference or finetune); "
              "nothing measured here")
        return 0
    if args.phase == "inference":
        run_inference(args.out, args.budget_s, args.resume, args.only, args.order, args.reruns, args.fp8)
    else:
        run_finetune(args.out, args.budget_s, args.resume, args.fast)
    return 0


if __name__ == "__main__":
    sys.exit(main())
