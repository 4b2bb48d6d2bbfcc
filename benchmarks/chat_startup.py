"""Start-up of `ecolobster chat`: from launching the command to the first prompt on screen.

Runs the installed console script in a real pseudo-terminal (pexpect) with a fresh history
folder, waits for the `ecolobster>` prompt, leaves with Ctrl-D, and repeats. Prints the
minimum, median and 90th percentile, next to a bare `python -c pass` for scale.

    .venv/bin/python benchmarks/chat_startup.py [--runs 15] [--json]

Target (issue 5): under 0.5 s on the development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect

TARGET_S = 0.5
PROMPT = re.compile(rb"ecolobster(?:\x1b\[[0-9;]*m)*> ")


def ecolobster_command() -> list[str]:
    script = Path(sys.executable).with_name("ecolobster")
    return [str(script), "chat"] if script.exists() else [sys.executable, "-m", "advisor.cli", "chat"]


def time_to_prompt(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    child = pexpect.spawn(cmd[0], cmd[1:], env=env, dimensions=(24, 80), timeout=30)
    try:
        child.expect(PROMPT)
        elapsed = time.perf_counter() - start
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    return elapsed


def time_bare_python(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    cmd = ecolobster_command()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_STATE_HOME=str(Path(tmp) / "state"), TERM="xterm-256color",
                   ECOLOBSTER_DATA_DIR=str(Path(tmp) / "data"), LANG="en_US.UTF-8")
        time_to_prompt(cmd, env)  # warm the OS file cache and the .pyc files once
        runs = [time_to_prompt(cmd, env) for _ in range(args.runs)]
        bare = statistics.median(time_bare_python(env) for _ in range(5))

    result = {
        "benchmark": "chat_startup",
        "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
        "runs": len(runs),
        "min_s": round(min(runs), 3),
        "median_s": round(statistics.median(runs), 3),
        "p90_s": round(percentile(runs, 0.9), 3),
        "bare_python_s": round(bare, 3),
        "target_s": TARGET_S,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        ok = "meets" if result["median_s"] < TARGET_S else "MISSES"
        print(f"ecolobster chat, start to first prompt over {result['runs']} runs: "
              f"min {result['min_s']:.3f} s, median {result['median_s']:.3f} s, p90 {result['p90_s']:.3f} s "
              f"(bare python {result['bare_python_s']:.3f} s; {ok} the {TARGET_S} s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
