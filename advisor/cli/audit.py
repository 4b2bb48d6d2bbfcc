"""`ecolobster audit`: the static code auditor on files, folders or stdin.

Exit codes: 0 when no finding is at or above --fail-on (or with --exit-zero), 1 when some are,
2 for usage and I/O errors (unknown rule codes, an unknown GPU, a path that does not exist, bad
settings, a report that cannot be written, a bad baseline) and when nothing could be audited.
"""

from __future__ import annotations

import argparse
import os
import sys

from advisor.api import CONFIDENCES, SEVERITIES
from advisor.limits import UsageError

FORMATS = ("rich", "markdown", "json", "sarif", "concise", "github")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit", help="find energy traps in inference and fine-tuning code (never runs it)",
        description="Read Python files, notebooks, requirements/pyproject files, YAML/JSON training configs and "
                    "install commands, and report energy traps with line, fix and data-backed impact. "
                    "Folders honour .gitignore; '-' reads stdin. Suppress a line with '# eco: ignore[ECO101]'. "
                    "Defaults come from [tool.ecolobster] in pyproject.toml.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to audit; '-' reads stdin")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format (default rich): json (findings at top level), sarif (code scanning), "
                        "concise (path:line:col: CODE message), github (workflow annotations)")
    p.add_argument("--fail-on", choices=("yellow", "orange", "red"), default=None,
                   help="exit 1 when a finding is at or above this severity (default yellow)")
    p.add_argument("--exit-zero", action="store_true",
                   help="exit 0 even when findings are at or above --fail-on (usage errors still exit 2)")
    p.add_argument("--min-severity", choices=SEVERITIES, default=None,
                   help="report only findings at or above this severity (gray < green < yellow < orange < red)")
    p.add_argument("--min-confidence", choices=CONFIDENCES, default=None,
                   help="report only findings at or above this confidence (low < medium < high)")
    p.add_argument("--baseline", metavar="FILE",
                   help="a previous report (--format json or sarif): report only findings it does not hold")
    p.add_argument("--max-file-mb", type=float, default=None, metavar="MB",
                   help="skip files larger than this (default 5; notebooks have their own limit, 50)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="the time one file may take before it is reported as skipped (default 2)")
    p.add_argument("--jobs", "-j", type=_jobs, default=None, metavar="N",
                   help="worker processes (default: the number of CPU cores this process may use); "
                        "results and their order do not depend on it")
    p.add_argument("--no-cache", action="store_true",
                   help="audit every file again instead of reusing results cached for unchanged files")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="where cached results live (default $ECOLOBSTER_CACHE_DIR, else "
                        "$XDG_CACHE_HOME/ecolobster/audit, else ~/.cache/ecolobster/audit)")
    p.add_argument("--select", help="only these rule codes or prefixes, comma-separated (e.g. ECO101,ECO2)")
    p.add_argument("--ignore", help="skip these rule codes or prefixes, comma-separated")
    p.add_argument("--gpu", help="the GPU the code runs on (sharpens impact estimates), e.g. a800, 4090d, h100")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help=".gitignore-style pattern to skip when walking folders (repeatable)")
    p.add_argument("--stdin-filename", metavar="NAME",
                   help="the name of what stdin holds, to pick its reader (e.g. requirements.txt, train.yaml)")
    p.add_argument("--config", metavar="PYPROJECT", help="read [tool.ecolobster] from this file")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    p.add_argument("--lang", choices=("en", "zh"), default="en",
                   help="language of the rich, markdown and json report (default en); sarif, concise and github "
                        "stay English, the language of code-scanning tools and of baselines")
    p.add_argument("--list-rules", action="store_true", help="list the rules and exit")
    p.add_argument("--explain", metavar="CODE", help="print a rule's documentation and exit")
    p.set_defaults(handler=cmd_audit)


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes a whole number of worker processes, 1 or more (not {text!r})")
    return n


def default_jobs() -> int:
    """The CPU cores this process may run on (a container's or taskset's limit, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _split(v: str | None) -> list[str] | None:
    return [c for c in v.replace(",", " ").split() if c] if v else None


def _list_rules(fmt: str) -> str:
    from advisor.api import all_rules

    rules = all_rules()
    if fmt == "json":
        import json

        return json.dumps([{"code": r.code, "name": r.name, "title": r.title, "fix": r.fix} for r in rules.values()],
                          indent=2)
    width = max(len(r.name) for r in rules.values())
    return "\n".join(f"{r.code}  {r.name:<{width}}  {r.title}" for r in rules.values())


def _explain(code: str) -> str:
    import difflib

    from advisor.api import all_rules

    rules = all_rules()
    r = rules.get(code.upper())
    if r is None:
        near = difflib.get_close_matches(code.upper(), list(rules), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise UsageError(f"unknown rule code '{code}'.{hint} Accepted: {', '.join(rules)}.")
    return f"{r.code} {r.name}: {r.title}\n\n{r.doc}\n\nFix: {r.fix}"


def cmd_audit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from advisor.api import Auditor, SettingsError, audit_cache_dir, load_settings

    fmt = args.format or "rich"
    if args.list_rules:
        return _emit(_list_rules("json" if fmt == "json" else "text"), args.output)
    if args.explain:
        return _emit(_explain(args.explain), args.output)
    if not args.paths:
        raise UsageError("give at least one PATH to audit (a file, a folder, or '-' for stdin); "
                         "`ecolobster audit --list-rules` lists the rules")
    if args.output:
        check_output(args.output)
    if args.paths.count("-") > 1:
        raise UsageError("'-' (stdin) can be given only once")
    for p in args.paths:
        if p != "-" and not os.path.lexists(p):
            raise UsageError(f"no such file or folder: {p}")
    try:
        settings = load_settings(args.paths, select=_split(args.select), ignore=_split(args.ignore),
                                 fail_on=args.fail_on, gpu=args.gpu, exclude=args.exclude,
                                 config=Path(args.config) if args.config else None)
    except SettingsError as err:
        raise UsageError(str(err)) from None
    settings = _policy_overrides(settings, args)
    baseline = None
    if args.baseline:
        from advisor.api import BaselineError, load_baseline

        try:
            baseline = load_baseline(args.baseline)
        except BaselineError as err:
            raise UsageError(str(err)) from None
    from advisor.api import apply_filters

    cache = None if args.no_cache else (Path(args.cache_dir) if args.cache_dir else audit_cache_dir())
    auditor = Auditor(settings, jobs=args.jobs or default_jobs(), cache=cache)
    report = auditor.audit_paths(args.paths, stdin_name=args.stdin_filename)
    report = apply_filters(report, min_severity=args.min_severity, min_confidence=args.min_confidence,
                           baseline=baseline)
    _emit(_format(report, fmt, args, settings), args.output)
    if report.nothing_audited:
        from advisor.api import nothing_audited_message

        print(f"error: {nothing_audited_message(report, args.lang)}", file=sys.stderr)
        return 2
    if args.exit_zero:
        return 0
    return 1 if report.failing(settings.fail_on) else 0


def _policy_overrides(settings, args: argparse.Namespace):  # noqa: ANN001, ANN202 - AuditSettings in and out
    from pydantic import ValidationError

    from advisor.api import Policy

    update = {k: v for k, v in (("max_file_mb", args.max_file_mb), ("time_budget_s", args.time_budget))
              if v is not None}
    if not update:
        return settings
    try:
        policy = Policy(**{**settings.policy.model_dump(), **update})
    except ValidationError as err:
        from advisor.api import field_errors

        first = field_errors(err)[0]
        flag = {"max_file_mb": "--max-file-mb", "time_budget_s": "--time-budget"}[str(first.loc[0])]
        raise UsageError(f"{flag}: {first.msg} (give a positive number{', at most 3600' if 'time' in flag else ''})"
                         ) from None
    return settings.model_copy(update={"policy": policy})


def _format(report, fmt: str, args: argparse.Namespace, settings) -> str:  # noqa: ANN001
    if fmt == "sarif":
        from advisor.api import sarif_report

        return sarif_report(report)
    if fmt in ("concise", "github"):
        from advisor.api import concise_report, github_report

        return concise_report(report) if fmt == "concise" else github_report(report)
    from advisor.api import report_to_answer
    from advisor.render import render

    subject = ", ".join(args.paths) if len(args.paths) <= 3 else f"{len(args.paths)} paths"
    answer = report_to_answer(report, query={"paths": args.paths, "gpu": settings.gpu,
                                             "fail_on": settings.fail_on}, subject=subject, lang=args.lang)
    if fmt == "json":
        from advisor.api import json_report

        return json_report(report, answer.model_dump(mode="json"))
    return render(answer, fmt)  # type: ignore[arg-type]


def check_output(output: str) -> None:
    """Refuse an -o path that cannot be written before any work is done (exit 2, not a traceback
    after the scan)."""
    parent = os.path.dirname(os.path.abspath(output)) or "."
    if os.path.isdir(output):
        raise UsageError(f"cannot write the report to '{output}': it is a folder; give a file path such as "
                         f"{os.path.join(output, 'eco.sarif')}")
    if not os.path.isdir(parent):
        raise UsageError(f"cannot write the report to '{output}': the folder '{parent}' does not exist")
    if os.path.exists(output) and not os.access(output, os.W_OK):
        raise UsageError(f"cannot write the report to '{output}': permission denied")


def _emit(text: str, output: str | None) -> int:
    if output:
        check_output(output)
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")
        except OSError as err:  # permission, a full disk, a read-only file system
            raise UsageError(f"cannot write the report to '{output}': {err.strerror or err}") from None
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
