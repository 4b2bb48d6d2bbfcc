"""Time to answer: a warm `ask()` in-process and a cold `ecolobster ask` process.

Warm: the seven "Try It Now" prompts of seed 003 (English and Chinese) are each asked once to
warm the caches, then asked again `--rounds` times; the median over all timed calls is reported.
Cold: a fresh `ecolobster ask "..." --format json` process per prompt (interpreter start-up,
imports, data load, answer, JSON), median wall time. First answer: in a fresh interpreter, the time
from `import advisor.api` to the first answer. Parse: every question of tests/data/questions.yaml and
pathological questions at the length limit, parsed warm. Targets: < 20 ms warm, < 0.5 s cold, < 0.3 s
first answer, < 100 ms per parse.

    python benchmarks/answer_speed.py [--rounds 20] [--cold-runs 14] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPTS = [
    "Lobster, I want to deploy Qwen2.5-3B on an RTX 5090. What's the greenest config?",
    "How much will Mistral-7B on A800 cost me for 1 million requests per month?",
    "Compare all 5 precisions for Qwen2.5-7B on RTX 5090.",
    "I'm running load_in_8bit=True and my GPU bill is crazy high. Help!",
    "Should I use FP8 on my Blackwell GPU? I heard it's faster.",
    "Lobster, tell me why 4-bit quantization is sometimes WORSE for energy.",
    "I want to run 100 wan zi through Yi-6B. How much does that cost?",
    "我想在RTX 5090上部署Qwen2.5-3B，最省电的配置是什么？",
    "Mistral-7B 在 A800 上每月100万次请求要花多少钱？",
    "对比Qwen2.5-7B在RTX 5090上的全部5种精度",
    "我用了load_in_8bit=True，GPU电费高得离谱，怎么办？",
    "我的Blackwell显卡应该用FP8吗？听说更快。",
    "为什么4位量化有时候反而更费电？",
    "我想用Yi-6B跑100万字，要花多少钱？",
]


def warm(rounds: int) -> dict:
    t0 = time.perf_counter()
    from advisor.api import ask

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in PROMPTS:  # first calls: data load, catalog parse, fits
        ask(p)
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(rounds):
        for p in PROMPTS:
            t = time.perf_counter()
            ask(p)
            times.append(time.perf_counter() - t)
    return {"import_s": import_s, "first_pass_s": first_s, "calls": len(times),
            "median_ms": statistics.median(times) * 1000, "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))] * 1000,
            "max_ms": max(times) * 1000}


def cold(runs: int) -> dict:
    exe = shutil.which("ecolobster", path=str(Path(sys.executable).parent)) or shutil.which("ecolobster")
    cmd = [exe] if exe else [sys.executable, "-m", "advisor.cli"]
    env = {**os.environ, "NO_COLOR": "1"}
    times, cpu = [], []
    for i in range(runs):
        p = PROMPTS[i % len(PROMPTS)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run([*cmd, "ask", p, "--format", "json"], capture_output=True, env=env, timeout=60)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time is what the process itself costs; wall time also counts waiting for a busy machine
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if r.returncode != 0:
            raise SystemExit(f"ecolobster ask failed ({r.returncode}): {r.stderr.decode()[-500:]}")
    return {"command": " ".join(cmd) + " ask ... --format json", "runs": runs, "median_s": statistics.median(times),
            "min_s": min(times), "max_s": max(times), "median_cpu_s": statistics.median(cpu)}


FIRST = ("import time, sys; t = time.perf_counter(); from advisor.api import ask; ask(sys.argv[1]); "
         "print(time.perf_counter() - t)")


def first_answer(runs: int) -> dict:
    """Import to first answer inside a fresh interpreter (its start-up not counted)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    times = []
    for i in range(runs):
        r = subprocess.run([sys.executable, "-c", FIRST, PROMPTS[i % len(PROMPTS)]], capture_output=True, env=env,
                           timeout=60, text=True)
        if r.returncode != 0:
            raise SystemExit(f"first answer failed: {r.stderr[-500:]}")
        times.append(float(r.stdout.strip().splitlines()[-1]))
    return {"runs": runs, "median_s": statistics.median(times), "max_s": max(times)}


def parse_times() -> dict:
    """Every corpus question, and pathological ones at the length limit, parsed warm."""
    import random

    import yaml

    from advisor.limits import MAX_QUESTION_CHARS
    from advisor.query import QueryError, parse

    corpus = Path(__file__).resolve().parents[1] / "tests" / "data" / "questions.yaml"
    texts = [i["q"] for i in yaml.safe_load(corpus.read_text(encoding="utf-8"))]
    pieces = ["a-", "x/", "$1 ", "batch ", "per ", "1e5 ", "p90 ", "ms ", "gpu ", "9 s ", "1,000 ", "input ", "tokens ",
              "users each ", "2x ", "h100 ", "lora ", "~", "k ", "- ", ". ", "1.5", "mistral-", "qwen2.5-7b ", "us ",
              "每天", "1万", "次", "50 ms per token ", "requests ", "daily ", "the ", "1." * 10, "1," * 10]
    rng = random.Random(7)
    odd = [(p * MAX_QUESTION_CHARS)[:MAX_QUESTION_CHARS] for p in pieces]
    odd += ["".join(rng.choice(pieces) for _ in range(2000))[:MAX_QUESTION_CHARS] for _ in range(30)]
    out = {}
    for name, group in (("corpus", texts), ("at_limit", odd)):
        times = []
        for t in group:
            t0 = time.perf_counter()
            with contextlib.suppress(QueryError):
                parse(t)
            times.append(time.perf_counter() - t0)
        times.sort()
        out[name] = {"n": len(times), "median_ms": statistics.median(times) * 1000, "max_ms": times[-1] * 1000}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--cold-runs", type=int, default=14)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    w = warm(args.rounds)
    c = cold(args.cold_runs)
    f = first_answer(args.cold_runs)
    pt = parse_times()
    res = {"warm": w, "cold": c, "first_answer": f, "parse": pt, "cpus": os.cpu_count(),
           "targets": {"warm_ms": 20, "cold_s": 0.5, "first_answer_s": 0.3, "parse_ms": 100}}
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"Answer speed ({os.cpu_count()} CPUs, {len(PROMPTS)} prompts, en + zh)")
    print(f"  import advisor.api          {w['import_s'] * 1000:7.1f} ms")
    print(f"  first pass (cold caches)    {w['first_pass_s'] * 1000:7.1f} ms for {len(PROMPTS)} questions")
    print(f"  warm ask, median            {w['median_ms']:7.2f} ms   (p90 {w['p90_ms']:.2f} ms, max {w['max_ms']:.2f} ms, "
          f"{w['calls']} calls; target < 20 ms)")
    print(f"  cold `ecolobster ask`, median {c['median_s']:6.3f} s wall, {c['median_cpu_s']:.3f} s CPU   "
          f"(min {c['min_s']:.3f} s, max {c['max_s']:.3f} s, {c['runs']} runs; target < 0.5 s)")
    print(f"  first answer, fresh process {f['median_s']:6.3f} s median (max {f['max_s']:.3f} s, {f['runs']} runs; "
          "import to answer; target < 0.3 s)")
    for name, v in pt.items():
        print(f"  parse, {name:<9} {v['n']:4d} questions: median {v['median_ms']:.2f} ms, max {v['max_ms']:.1f} ms "
              "(target < 100 ms)")
    print(f"  load average during the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
