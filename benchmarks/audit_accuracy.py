"""Precision and recall of the auditor on real public code, from hand judgments.

benchmarks/audit_realworld.csv holds the judged sample: one row per finding the auditor gave on
a sampled file (verdict tp or fp), per trap it missed that a reader found in a sampled file (fn),
and per sampled file with nothing to report (clean). Each row names the repository, the commit,
the file and the line, with the reason in our own words. No file of those repositories is in this
project: the script reads them from local mirrors (the `fetch` tool's git directories under
/work/.mirror/OWNER+NAME/repo, or --mirror DIR), extracts the sampled files with the context the
auditor reads beside them (the repository's requirement files, the READMEs, configs and launch
scripts of each sampled file's folder) to a scratch folder outside the repository, audits them as
one tree per repository, and scores the current output against the judgments:

    precision = judged-true findings / judged findings reported now
    recall    = judged-true traps reported now / all judged-true traps (tp and fn rows)

A finding the judgments do not cover is listed as unjudged (judge it and add a row). ECO206
(no energy telemetry) is advisory, not an energy trap, and is left out of both figures.

The sample has four parts: "tuning" (18 repositories the rules were improved on while judging),
then "heldout", "heldout2" and "heldout3" (4, 3 and 3 further repositories, each audited and
judged once the rules of the round before were written; what a first pass there got wrong then
led to further fixes, so the README gives both passes).

    python benchmarks/audit_accuracy.py [--mirror DIR] [--set tuning|heldout|all] [--json]
                                        [--show fp|fn|unjudged]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from advisor.audit import Auditor, AuditSettings  # noqa: E402

JUDGED = Path(__file__).with_name("audit_realworld.csv")
MIRROR = Path("/work/.mirror")
ADVISORY = frozenset({"ECO206"})
VERDICTS = ("tp", "fp", "fn", "clean")
SETS = ("tuning", "heldout", "heldout2", "heldout3")
CONTEXT_BESIDE = (".md", ".yaml", ".yml", ".sh")
ROOT_CONTEXT = ("requirements.txt", "pyproject.toml")


@dataclass(frozen=True)
class Row:
    set: str  # "tuning": the repositories the rules were improved on; "heldout": judged after that
    repo: str
    commit: str
    path: str
    line: int
    code: str
    verdict: str
    reason: str


def load_rows(path: Path = JUDGED) -> list[Row]:
    rows: list[Row] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for n, rec in enumerate(csv.DictReader(fh), start=2):
            if rec["verdict"] not in VERDICTS:
                raise SystemExit(f"{path}:{n}: verdict {rec['verdict']!r} is not one of {', '.join(VERDICTS)}")
            if rec["set"] not in SETS:
                raise SystemExit(f"{path}:{n}: set {rec['set']!r} is not one of {', '.join(SETS)}")
            rows.append(Row(rec["set"], rec["repo"], rec["commit"], rec["path"], int(rec["line"] or 0), rec["code"],
                            rec["verdict"], rec["reason"]))
    return rows


def _git(gitdir: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(gitdir), *args], check=True, capture_output=True).stdout


def _context(gitdir: Path, commit: str, files: set[str]) -> set[str]:
    """The files beside the sampled ones that the auditor reads as context."""
    names = _git(gitdir, "ls-tree", "-r", "--name-only", commit).decode("utf-8", "replace").splitlines()
    folders = {os.path.dirname(f) for f in files}
    out = set()
    for n in names:
        base = os.path.basename(n).lower()
        if os.path.dirname(n) in folders and (base.endswith(CONTEXT_BESIDE) and (
                base.startswith("readme") or not base.endswith(".md"))):
            out.add(n)
        if "/" not in n and (base.startswith("requirements") and base.endswith(".txt") or base in ROOT_CONTEXT):
            out.add(n)
    return out - files


def audit_repo(gitdir: Path, commit: str, files: set[str], scratch: Path) -> dict[tuple[str, int, str], str]:
    """(path, line, code) -> message of the current findings on the sampled files."""
    for f in sorted(files | _context(gitdir, commit, files)):
        dest = scratch / f
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            dest.write_bytes(_git(gitdir, "show", f"{commit}:{f}"))
        except subprocess.CalledProcessError:
            print(f"  {f}: not in {commit[:10]}; skipped", file=sys.stderr)
    report = Auditor(AuditSettings()).audit_paths([str(scratch)])
    out = {}
    for f in report.findings:
        rel = Path(f.path).relative_to(scratch).as_posix()
        if rel in files and f.code not in ADVISORY:
            out[(rel, f.file_line or f.line, f.code)] = f.message
    return out


def score(rows: list[Row], mirror: Path) -> dict:
    by_repo: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        by_repo[(r.repo, r.commit)].append(r)
    counts: Counter = Counter()
    per_code: dict[str, Counter] = defaultdict(Counter)
    listed: dict[str, list[str]] = {"fp": [], "fn": [], "unjudged": []}
    repos_done, files_done, missing = 0, 0, []
    for (repo, commit), rs in sorted(by_repo.items()):
        gitdir = mirror / repo.replace("/", "+") / "repo"
        if not gitdir.is_dir():
            missing.append(repo)
            continue
        files = {r.path for r in rs}
        with tempfile.TemporaryDirectory(prefix="eco-realworld-") as tmp:
            got = audit_repo(gitdir, commit, files, Path(tmp))
        repos_done += 1
        files_done += len(files)
        judged = {(r.path, r.line, r.code): r for r in rs if r.verdict != "clean"}
        for key, msg in got.items():
            r = judged.get(key)
            where = f"{repo}/{key[0]}:{key[1]} {key[2]}"
            if r is None:
                counts["unjudged"] += 1
                listed["unjudged"].append(f"{where} {msg}")
            elif r.verdict == "fp":
                counts["fp"] += 1
                per_code[key[2]]["fp"] += 1
                listed["fp"].append(f"{where}: {r.reason}")
            else:  # tp, or a judged miss that is caught now
                counts["tp"] += 1
                per_code[key[2]]["tp"] += 1
        for key, r in judged.items():
            if r.verdict in ("tp", "fn") and key not in got:
                counts["fn"] += 1
                per_code[key[2]]["fn"] += 1
                listed["fn"].append(f"{repo}/{key[0]}:{key[1]} {key[2]}: {r.reason}")
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {
        "repos": repos_done, "files": files_done, "missing_mirrors": missing,
        "tp": tp, "fp": fp, "fn": fn, "unjudged": counts["unjudged"],
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "per_code": {c: dict(v) for c, v in sorted(per_code.items())},
        "lists": listed,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=MIRROR, help="folder of OWNER+NAME/repo git mirrors")
    ap.add_argument("--judged", type=Path, default=JUDGED)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--show", choices=("fp", "fn", "unjudged"), action="append", default=[])
    ap.add_argument("--set", choices=(*SETS, "all"), default="all",
                    help="score one part of the sample (default: each part, then all)")
    args = ap.parse_args(argv)
    rows = load_rows(args.judged)
    parts = [args.set] if args.set != "all" else [*SETS, "all"]
    results = {part: score([r for r in rows if part == "all" or r.set == part], args.mirror) for part in parts}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for part, res in results.items():
        print(f"== {part} ==")
        _print(res, args.show if part == parts[-1] else [])
    return 0


def _print(res: dict, show: list[str]) -> None:
    if res["missing_mirrors"]:
        print(f"no mirror for {len(res['missing_mirrors'])} repositories (skipped): {', '.join(res['missing_mirrors'])}")
    print(f"{res['files']} files from {res['repos']} repositories: {res['tp']} true, {res['fp']} false, "
          f"{res['fn']} missed, {res['unjudged']} unjudged")
    print(f"precision {res['precision']}  recall {res['recall']}")
    print(f"{'code':8} {'tp':>4} {'fp':>4} {'fn':>4}")
    for code, c in res["per_code"].items():
        print(f"{code:8} {c.get('tp', 0):>4} {c.get('fp', 0):>4} {c.get('fn', 0):>4}")
    for what in show:
        print(f"\n{what}:")
        for line in res["lists"][what]:
            print(f"  {line}")


if __name__ == "__main__":
    raise SystemExit(main())
