"""Audit speed: `ecolobster audit` against Bandit on the same files, both as command-line
processes as a user or CI runs them, interleaved in one run (each repetition runs every
configuration once, so a load change on a shared machine hits all of them alike), with medians
and the ratio.

    python benchmarks/audit_speed.py --fetch-wheels /tmp/wheels     # transformers + peft from PyPI, unpacked
    python benchmarks/audit_speed.py --corpus /tmp/wheels --repeat 3
    python benchmarks/audit_speed.py                                # a generated corpus (~120k lines)

Configurations: Bandit (`bandit -r DIR -q`, single process), ecolobster with one process
(`--jobs 1 --no-cache`: the per-core figure), with its default workers (`--no-cache`: one per
core), and a cached re-run of the unchanged tree (the same command a second time, cache warm).
Without --corpus the corpus is generated into a temporary folder: the Python files of
tests/corpus/audit (those that parse) plus synthetic modules shaped like inference and training
code (imports, constants, classes, loops, dict configs).
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
import zipfile
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


def fetch_wheels(dest: Path, packages: tuple[str, ...] = ("transformers", "peft")) -> None:
    """The wheels from PyPI (pip download, no dependencies), unpacked into `dest`."""
    wheels = dest / "_wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *packages, "-d", str(wheels), "-q"],
                   check=True)
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            z.extractall(dest)
        print(f"unpacked {whl.name}")
    shutil.rmtree(wheels)


def count_lines(root: Path) -> tuple[int, int]:
    files = lines = 0
    for p in root.rglob("*.py"):
        files += 1
        with open(p, "rb") as fh:
            lines += fh.read().count(b"\n")
    return files, lines


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    return time.perf_counter() - t0, proc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, help="a folder to audit (e.g. unpacked wheels); default: generated")
    ap.add_argument("--fetch-wheels", type=Path, metavar="DIR",
                    help="download the transformers and peft wheels from PyPI into DIR, unpack them, and exit")
    ap.add_argument("--files", type=int, default=400, help="synthetic files to generate (default 400)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration; the median is reported")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)
    if args.fetch_wheels:
        fetch_wheels(args.fetch_wheels)
        return 0
    bindir = Path(sys.executable).parent
    bandit = shutil.which("bandit", path=str(bindir)) or shutil.which("bandit")
    if bandit is None:
        print("bandit is not installed (pip install bandit): it is the reference this benchmark compares with",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="audit-speed-") as tmp:
        if args.corpus:
            if not args.corpus.is_dir():
                print(f"--corpus {args.corpus}: not a folder", file=sys.stderr)
                return 2
            dest = args.corpus.resolve()
            files, lines = count_lines(dest)
        else:
            dest = Path(tmp) / "corpus"
            paths, lines = build_corpus(dest, args.files)
            files = len(paths)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ECOLOBSTER_CACHE_DIR": str(Path(tmp) / "cache")}
        eco = [sys.executable, "-m", "advisor.cli", "audit", str(dest), "--format", "json", "--exit-zero"]
        configs = {
            "bandit": [bandit, "-r", str(dest), "-f", "json", "-q"],
            "ecolobster_jobs1": [*eco, "--jobs", "1", "--no-cache"],
            "ecolobster": [*eco, "--no-cache"],
            "ecolobster_cached": eco,
        }
        warm, proc = run_once(eco, env)  # fills the cache for the cached configuration
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        times: dict[str, list[float]] = {k: [] for k in configs}
        outputs: dict[str, subprocess.CompletedProcess] = {}
        for _ in range(args.repeat):
            for name, cmd in configs.items():
                t, proc = run_once(cmd, env)
                times[name].append(t)
                outputs[name] = proc
        reports = {k: json.loads(outputs[k].stdout or "{}") for k in configs}
    med = {k: statistics.median(v) for k, v in times.items()}
    eco_findings = {k: len(reports[k].get("findings", [])) for k in configs if k != "bandit"}
    same = len({json.dumps(reports[k].get("findings"), sort_keys=True) for k in eco_findings}) == 1
    result = {
        "corpus": str(args.corpus) if args.corpus else f"generated ({args.files} synthetic files)",
        "python_files": files, "lines": lines, "repeat": args.repeat, "cores": os.cpu_count(),
        "seconds_median": {k: round(v, 3) for k, v in med.items()},
        "seconds_all": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "lines_per_s": {k: round(lines / v) for k, v in med.items()},
        "speedup_vs_bandit": round(med["bandit"] / med["ecolobster"], 2),
        "speedup_vs_bandit_one_process": round(med["bandit"] / med["ecolobster_jobs1"], 2),
        "cached_rerun_s": round(med["ecolobster_cached"], 3), "first_cached_run_s": round(warm, 3),
        "ecolobster_findings": eco_findings["ecolobster"], "same_findings_every_configuration": same,
        "ecolobster_files_scanned": reports["ecolobster"].get("summary", {}).get("files_scanned"),
        "bandit_findings": len(reports["bandit"].get("results", [])),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"corpus: {result['corpus']}: {files:,} Python files, {lines:,} lines "
          f"(median of {args.repeat} interleaved runs each, {result['cores']} cores)")
    print(f"{'configuration':<34}{'median s':>10}{'lines/s':>12}  runs")
    labels = {"bandit": "bandit -r (1 process)", "ecolobster_jobs1": "ecolobster --jobs 1 --no-cache",
              "ecolobster": "ecolobster --no-cache (all cores)", "ecolobster_cached": "ecolobster, cached re-run"}
    for k, label in labels.items():
        print(f"{label:<34}{med[k]:>10.2f}{lines / med[k]:>12,.0f}  {', '.join(f'{x:.2f}' for x in times[k])}")
    print(f"ecolobster is {result['speedup_vs_bandit']:.1f}x Bandit's speed ({result['speedup_vs_bandit_one_process']:.1f}x "
          f"with one process); a cached re-run takes {med['ecolobster_cached']:.2f} s; findings: "
          f"{result['ecolobster_findings']} (the same in every configuration: {same}), Bandit {result['bandit_findings']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
