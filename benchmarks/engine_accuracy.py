"""Accuracy and overhead of the engine's energy measurement (issue 6).

    python benchmarks/engine_accuracy.py                     # analyse the committed H100 and H200 results
    python benchmarks/engine_accuracy.py analyze FILE...     # analyse results JSON lines / tarballs
    python benchmarks/engine_accuracy.py measure --out DIR   # on a CUDA GPU: overhead + CodeCarbon

Three figures:

1. Sampler vs counter: for every measured window (inference runs, training steps) the engine
   records both the NVML energy counter's difference and the 10 Hz sampler's trapezoidal
   integral; the disagreement is |sampler - counter| / counter (aim: within 3%).
2. Sampler overhead on throughput: three workloads (a launch-bound loop of tiny kernels, a
   GPU-bound matmul loop, batch-1 generation) run with no sampler, the 10 Hz sampler and a
   100 Hz stress sampler, interleaved block by block; the overhead is the median of paired time
   ratios with a bootstrap CI (aim: under 1%). The H100 session (2026-11-23) compared generation
   only, with Welch's t-test, and could not resolve it.
3. CodeCarbon's own GPU energy vs the engine's counter over the same span (ratio).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "measurements" / "data"
# GPU key -> the figures measured on it (written from a measure run's accuracy.json).
MEASURED = {k: Path(__file__).with_name(f"engine_accuracy_{k}.json") for k in ("h100", "h200")}


# --- 1. sampler vs counter, from results ------------------------------------------------------

def _lines(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if path.suffixes[-2:] == [".tar", ".gz"] or path.suffix == ".tgz":
        with tarfile.open(path) as tf:
            for m in tf.getmembers():
                if m.name.endswith(".jsonl"):
                    f = tf.extractfile(m)
                    if f is not None:
                        out += [json.loads(x) for x in io.TextIOWrapper(f, encoding="utf-8") if x.strip()]
        return out
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def window_gaps(records: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    """(signed gap (sampler - counter) / counter, window seconds, kind) for every measured window."""
    gaps = []
    for r in records:
        if r.get("status") != "ok":
            continue
        for w in (r.get("runs") or []) + (r.get("steps") or []):
            c, s = w.get("counter_j"), w.get("sampler_j")
            if c and s is not None and c > 0:
                secs = w.get("elapsed_s") or w.get("step_time_s") or 0.0
                gaps.append(((s - c) / c, secs, "step" if "step_time_s" in w else "generate"))
    return gaps


def summarize_gaps(gaps: list[tuple[float, float, str]]) -> dict[str, Any]:
    if not gaps:
        return {"windows": 0}
    absg = sorted(abs(g) for g, _, _ in gaps)

    def pct(q: float) -> float:
        return absg[min(len(absg) - 1, int(q * len(absg)))]

    out: dict[str, Any] = {
        "windows": len(gaps), "mean_abs": statistics.fmean(absg), "median_abs": statistics.median(absg),
        "p95_abs": pct(0.95), "max_abs": absg[-1], "mean_signed": statistics.fmean(g for g, _, _ in gaps),
        "within_3pct": sum(1 for a in absg if a <= 0.03) / len(absg)}
    for lo, hi in ((0, 1), (1, 3), (3, 10), (10, 1e9)):
        sel = [abs(g) for g, s, _ in gaps if lo <= s < hi]
        if sel:
            out[f"mean_abs_{lo}-{hi if hi < 1e9 else 'inf'}s"] = statistics.fmean(sel)
            out[f"n_{lo}-{hi if hi < 1e9 else 'inf'}s"] = len(sel)
    return out


def analyze(paths: list[Path]) -> dict[str, Any]:
    records: list[dict[str, Any]] = []
    for p in paths:
        records += _lines(p)
    return summarize_gaps(window_gaps(records))


# --- 2 and 3: measured on the GPU ---------------------------------------------------------------

OVERHEAD_MODES = {"off": None, "10hz": 0.1, "100hz": 0.01}


def overhead_workloads(lm: Any, vocab: int) -> dict[str, Any]:
    """Three workloads of about 0.3-1 s each: a Python loop of tiny kernels (the launch-bound
    shape of batch-1 decoding, where a thread competing for the GIL would show first), a
    GPU-bound bf16 matmul loop, and the real thing, batch-1 greedy generation."""
    import torch

    from engine.inference import make_prompt

    x = torch.zeros(256, device="cuda")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    c = torch.empty_like(a)
    ids, mask = make_prompt(1, 128, vocab, "cuda")

    def launch() -> None:
        for _ in range(20_000):
            x.add_(1.0)
        torch.cuda.synchronize()

    def matmul() -> None:
        for _ in range(300):
            torch.mm(a, a, out=c)
        torch.cuda.synchronize()

    def generate() -> None:
        with torch.inference_mode():
            lm.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=32, min_new_tokens=32,
                              do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()

    return {"launch_loop": launch, "matmul_bf16": matmul, "generate_bs1": generate}


def measure_overhead(reader: Any, workloads: dict[str, Any], blocks: int) -> dict[str, Any]:
    """Each block runs every mode once (sampler off, 10 Hz, 100 Hz), the order rotated block by
    block; the overhead of a mode is the median over blocks of its time / the off time, with a
    bootstrap 95% CI. 100 Hz is a stress case: ten times the reads of the default."""
    from engine.power import PowerSampler
    from engine.protocol import paired_ratio, summarize

    modes = list(OVERHEAD_MODES)
    out: dict[str, Any] = {}
    for name, fn in workloads.items():
        fn()  # warm-up (allocator, kernels, generate's caches)
        times: dict[str, list[float]] = {m: [] for m in modes}
        rates: dict[str, list[float]] = {m: [] for m in modes if OVERHEAD_MODES[m]}
        for b in range(blocks):
            for m in modes[b % 3:] + modes[:b % 3]:
                interval = OVERHEAD_MODES[m]
                sampler = PowerSampler(reader, interval).start() if interval else None
                time.sleep(0.05)  # the thread is up and sampling before the clock starts (both arms)
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                if sampler is not None:
                    sampler.stop()
                    n = len(sampler.samples()) / max(1, len(reader.gpu_indices()))
                    rates[m].append(n / (dt + 0.05))
                times[m].append(dt)
        res: dict[str, Any] = {"blocks": blocks, "off_s": summarize(times["off"]).as_dict()}
        for m in modes[1:]:
            r = paired_ratio(times[m], times["off"])
            res[m] = {"time_ratio": r.as_dict(), "overhead": r.median - 1.0,
                      "overhead_ci95": [r.ci_low - 1.0, r.ci_high - 1.0],
                      "achieved_hz": statistics.median(rates[m])}
        out[name] = res
        print(json.dumps({"overhead": {name: res}}), flush=True)
    return out


def measure(out: Path, model: str = "qwen2.5-0.5b", blocks: int = 25, cc_seconds: float = 12.0) -> dict[str, Any]:
    import torch

    from engine.carbon import CarbonTracker
    from engine.inference import make_prompt
    from engine.models import load_model
    from engine.power import EnergyMonitor, PowerSampler

    out.mkdir(parents=True, exist_ok=True)
    on = EnergyMonitor.open(0.1)
    reader = on.reader
    assert reader is not None and on.sampler is not None
    lm = load_model(model, "fp16", "cuda")
    result: dict[str, Any] = {"model": lm.model_id, "precision": "fp16", "gpu": reader.names()}

    # Sampler cost per tick (one read of every field of every GPU), timed synchronously.
    probe = PowerSampler(reader, 0.1)
    t0 = time.perf_counter()
    for _ in range(200):
        probe.tick()
    result["sampler_tick_ms"] = (time.perf_counter() - t0) / 200 * 1000

    on.sampler.stop()  # the overhead study starts and stops its own samplers
    result["overhead"] = measure_overhead(reader, overhead_workloads(lm, lm.model.config.vocab_size), blocks)
    on.sampler.start()

    # CodeCarbon's GPU figure vs the counter, over cc_seconds of batch-8 generation.
    ids, mask = make_prompt(8, 128, lm.model.config.vocab_size, "cuda")
    tracker = CarbonTracker("us", measure_power_secs=1.0).start()
    on.begin_window("codecarbon")
    t_end = time.monotonic() + cc_seconds
    n = 0
    with torch.inference_mode():
        while time.monotonic() < t_end:
            lm.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=64, min_new_tokens=64,
                              do_sample=False, pad_token_id=0)
            n += 1
    w = on.end_window("codecarbon")
    rep = tracker.stop()
    cc_j = rep.gpu_energy_kwh * 3.6e6
    result["codecarbon"] = {
        "window_s": w.elapsed_s, "generate_calls": n, "engine_counter_j": w.counter_total_j,
        "engine_sampler_j": w.sampler_total_j, "codecarbon_gpu_j": cc_j,
        "ratio_codecarbon_to_counter": cc_j / w.counter_total_j if w.counter_total_j else None,
        "codecarbon_cpu_j": rep.cpu_energy_kwh * 3.6e6, "codecarbon_ram_j": rep.ram_energy_kwh * 3.6e6,
        "codecarbon_duration_s": rep.duration_s, "cpu_model": rep.cpu_model}
    print(json.dumps({"codecarbon": result["codecarbon"]}), flush=True)
    on.close()
    (out / "accuracy.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", nargs="?", default="analyze", choices=["analyze", "measure"])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=Path("out"))
    ap.add_argument("--model", default="qwen2.5-0.5b")
    ap.add_argument("--blocks", type=int, default=25, help="overhead: blocks of (off, 10 Hz, 100 Hz) runs")
    ap.add_argument("--cc-seconds", type=float, default=12.0)
    args = ap.parse_args(argv)
    if args.action == "measure":
        import torch

        if not torch.cuda.is_available():
            print("engine_accuracy measure: needs a CUDA GPU; nothing measured")
            return 0
        measure(args.out, args.model, args.blocks, args.cc_seconds)
        return 0
    if args.paths:
        missing = [str(p) for p in args.paths if not p.is_file()]
        if missing:
            ap.error(f"no such results file: {', '.join(missing)} (give *.jsonl result lines or a raw *.tar.gz)")
        print(json.dumps(analyze(args.paths), indent=2))
        return 0
    for key, path in MEASURED.items():
        raw = DATA / f"{key}_raw.tar.gz"
        if raw.exists():
            g = analyze([raw])
            print(f"{key}: sampler vs NVML counter over {g['windows']} windows: median {g['median_abs']:.2%}, "
                  f"mean {g['mean_abs']:.2%}, within 3%: {g['within_3pct']:.0%}")
        if path.exists():
            for line in measured_lines(json.loads(path.read_text())):
                print(f"{key}: {line}")
    return 0


def measured_lines(m: dict[str, Any]) -> list[str]:
    """One line per figure of an engine_accuracy_<gpu>.json file (either session's format)."""
    lines = []
    for name, res in (m.get("overhead") or {}).items():
        for mode in ("10hz", "100hz"):
            o = res[mode]
            lo, hi = o["overhead_ci95"]
            lines.append(f"sampler overhead, {name}, {mode}: {o['overhead']:+.2%} (95% CI {lo:+.2%} to {hi:+.2%}, "
                         f"{res['blocks']} blocks, no-sampler CV {res['off_s']['cv']:.1%})")
    for bs in (1, 2, 4, 8, 16, 32, 64):
        o = m.get(f"overhead_bs{bs}")
        if o:
            lines.append(f"sampler overhead, generation batch {bs}: {o['overhead']:+.2%} (Welch p={o['p_value']:.3g})")
    cc = m.get("codecarbon") or {}
    if cc.get("ratio_codecarbon_to_counter"):
        lines.append(f"CodeCarbon GPU energy / NVML counter: {cc['ratio_codecarbon_to_counter']:.3f}")
    return lines
    return 0


if __name__ == "__main__":
    sys.exit(main())
