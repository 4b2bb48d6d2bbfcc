"""Audit speed: lines per second of `ecolobster audit` on a large generated corpus, and Bandit on
the same files in the same run (both as command-line processes, as a user or CI runs them, and
both single-process), with the ratio.

    python benchmarks/audit_speed.py                 # ~120k lines, 3 repetitions each
    python benchmarks/audit_speed.py --files 200 --repeat 1 --json

The corpus is generated into a temporary folder: the Python files of tests/corpus/audit (those
that parse) plus synthetic modules shaped like real inference and training code (imports,
constants, classes, functions with loops, dict configs), so both tools walk realistic ASTs.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus" / "audit"

TEMPLATE = '''"""Synthetic module {n}: a loader, a batch generator and a small training step."""
import json
import os

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, TrainingArguments

MODEL_ID_{n} = os.environ.get("MODEL_{n}", "Qwen/Qwen2.5-{size}B-Instruct")
SETTINGS_{n} = {{"max_new_tokens": {tokens}, "do_sample": False, "temperature": 0.{n}}}


class Worker{n}:
    def __init__(self, path: str) -> None:
        self.path = path
        self.cache = {{}}

    def load(self):
        quant = BitsAndBytesConfig(load_in_{bits}bit=True)
        model = AutoModelForCausalLM.from_pretrained(MODEL_ID_{n}, quantization_config=quant, device_map="auto")
        tok = AutoTokenizer.from_pretrained(MODEL_ID_{n})
        return model, tok

    def run(self, prompts: list[str]) -> list[str]:
        model, tok = self.load()
        out = []
        for i in range(0, len(prompts), {batch}):
            chunk = prompts[i:i + {batch}]
            enc = tok(chunk, return_tensors="pt", padding=True).to("cuda")
            with torch.inference_mode():
                ids = model.generate(**enc, **SETTINGS_{n})
            out.extend(tok.batch_decode(ids, skip_special_tokens=True))
        return out


def score_{n}(rows: list[dict]) -> float:
    total = 0.0
    for row in rows:
        if row.get("label") == row.get("pred"):
            total += 1.0
        elif row.get("label") is None:
            continue
        else:
            total -= 0.{n}
    return total / max(1, len(rows))


def train_args_{n}(out: str) -> TrainingArguments:
    return TrainingArguments(output_dir=out, per_device_train_batch_size={bs}, gradient_accumulation_steps={ga},
                             save_steps={save}, logging_steps={log}, bf16=True, max_steps={steps})


def main_{n}() -> None:
    w = Worker{n}(os.path.join("data", "part-{n}.jsonl"))
    with open(w.path) as fh:
        prompts = [json.loads(line)["prompt"] for line in fh]
    print(json.dumps(w.run(prompts))[:200])
'''


def build_corpus(dest: Path, files: int, seed: int = 7) -> tuple[list[Path], int]:
    rng = random.Random(seed)
    paths: list[Path] = []
    for p in sorted(CORPUS.rglob("*.py")):
        try:
            ast.parse(p.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        target = dest / "real" / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
        paths.append(target)
    for n in range(files):
        parts = [TEMPLATE.format(n=n * 10 + k, size=rng.choice(["0.5", "1.5", "3", "7", "14"]),
                                 tokens=rng.choice([64, 128, 256]), bits=rng.choice([4, 8]),
                                 batch=rng.choice([8, 16, 32]), bs=rng.choice([1, 2, 4, 8]), ga=rng.choice([1, 4]),
                                 save=rng.choice([10, 100, 500]), log=rng.choice([1, 10, 50]),
                                 steps=rng.choice([200, 2000, 20000]))
                 for k in range(rng.randint(2, 4))]
        target = dest / f"pkg{n % 20}" / f"mod_{n}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n\n".join(parts))
        paths.append(target)
    lines = sum(p.read_text(encoding="utf-8").count("\n") for p in paths)
    return paths, lines


def timed(cmd: list[str], repeat: int) -> tuple[float, subprocess.CompletedProcess]:
    times = []
    proc = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t0)
    assert proc is not None
    return statistics.median(times), proc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=400, help="synthetic files to generate (default 400)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the median is reported")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)
    bindir = Path(sys.executable).parent
    ecolobster = [sys.executable, "-m", "advisor.cli", "audit"]
    bandit = shutil.which("bandit", path=str(bindir)) or shutil.which("bandit")
    if bandit is None:
        print("bandit is not installed (pip install bandit): it is the reference this benchmark compares with",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="audit-speed-") as tmp:
        dest = Path(tmp) / "corpus"
        paths, lines = build_corpus(dest, args.files)
        env_cwd = str(ROOT)
        os.chdir(env_cwd)
        # Same files for both: the Python files of the generated tree.
        eco_t, eco_p = timed([*ecolobster, str(dest), "--format", "json", "--fail-on", "red"], args.repeat)
        if eco_p.returncode not in (0, 1):
            print(eco_p.stderr, file=sys.stderr)
            return 1
        eco = json.loads(eco_p.stdout)
        ban_t, ban_p = timed([bandit, "-r", str(dest), "-f", "json", "-q"], args.repeat)
        ban = json.loads(ban_p.stdout or "{}")
        # In-process: the engine alone, without interpreter start-up and imports.
        from advisor.audit import Auditor, AuditSettings

        inproc = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = Auditor(AuditSettings()).audit_paths([str(dest)])
            inproc.append(time.perf_counter() - t0)
        in_t = statistics.median(inproc)
    result = {
        "files": len(paths), "lines": lines, "repeat": args.repeat,
        "ecolobster_s": round(eco_t, 3), "ecolobster_lines_per_s": round(lines / eco_t),
        "ecolobster_engine_s": round(in_t, 3), "ecolobster_engine_lines_per_s": round(lines / in_t),
        "bandit_s": round(ban_t, 3), "bandit_lines_per_s": round(lines / ban_t),
        "speedup_vs_bandit": round(ban_t / eco_t, 2),
        "ecolobster_findings": len(eco["findings"]), "ecolobster_files": eco["summary"]["files_scanned"],
        "bandit_findings": len(ban.get("results", [])),
        "bandit_lines_counted": ban.get("metrics", {}).get("_totals", {}).get("loc"),
        "engine_findings": len(report.findings),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"corpus: {result['files']} Python files, {lines:,} lines (median of {args.repeat} runs each)")
    print(f"{'tool':<28}{'seconds':>10}{'lines/s':>12}{'findings':>10}")
    print(f"{'ecolobster audit (CLI)':<28}{eco_t:>10.2f}{lines / eco_t:>12,.0f}{result['ecolobster_findings']:>10}")
    print(f"{'ecolobster engine (in-proc)':<28}{in_t:>10.2f}{lines / in_t:>12,.0f}{result['engine_findings']:>10}")
    print(f"{'bandit -r (CLI)':<28}{ban_t:>10.2f}{lines / ban_t:>12,.0f}{result['bandit_findings']:>10}")
    print(f"ecolobster audit is {result['speedup_vs_bandit']:.2f}x the speed of Bandit on the same files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
