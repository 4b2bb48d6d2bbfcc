"""What CI needs around a report: a baseline of known findings, severity and confidence floors,
and the machine formats linters share: `concise` (one `path:line:col: CODE message` line per
finding), `github` (workflow commands that GitHub shows as annotations) and the JSON report with
findings at top level. SARIF lives in advisor.audit.sarif.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from advisor.answer import MOOD_ORDER
from advisor.audit.models import AuditReport, Finding

SEVERITIES = ("gray", "green", "yellow", "orange", "red")
CONFIDENCES = ("low", "medium", "high")
CONF_ORDER = {c: i for i, c in enumerate(CONFIDENCES)}
GITHUB_LEVEL = {"red": "error", "orange": "error", "yellow": "warning", "green": "notice", "gray": "notice"}


class BaselineError(ValueError):
    """The baseline file cannot be used; the message says why and what is accepted."""


def fingerprint(f: Finding) -> str:
    """Stable across line moves: the rule, the file, the notebook cell and the code on the line."""
    basis = f"{f.code}|{f.path}|{f.cell}|{' '.join(f.snippet.split())}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def report_line(f: Finding) -> int:
    """The line CI tools point at: in a notebook, the line of the .ipynb file when known."""
    return f.file_line or f.line


def load_baseline(path: str) -> Counter[str]:
    """Fingerprints of a previous report: this tool's JSON report (`--format json`) or its SARIF."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise BaselineError(f"cannot read the baseline '{path}': {reason}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise BaselineError(f"the baseline '{path}' is not JSON ({err.msg} at line {err.lineno}); give a report "
                            "written with `ecolobster audit --format json` or `--format sarif`") from None
    prints: Counter[str] = Counter()
    if isinstance(doc, dict) and isinstance(doc.get("findings"), list):
        for f in doc["findings"]:
            if isinstance(f, dict) and isinstance(f.get("fingerprint"), str):
                prints[f["fingerprint"]] += 1
        return prints
    if isinstance(doc, dict) and isinstance(doc.get("runs"), list):
        for run in doc["runs"]:
            for r in (run.get("results") or []) if isinstance(run, dict) else []:
                fp = (r.get("partialFingerprints") or {}).get("ecolobster/v1") if isinstance(r, dict) else None
                if isinstance(fp, str) and not r.get("suppressions"):
                    prints[fp] += 1
        return prints
    raise BaselineError(f"the baseline '{path}' is neither an ecolobster JSON report (with 'findings') nor SARIF "
                        "(with 'runs')")


def apply_filters(report: AuditReport, *, min_severity: str | None = None, min_confidence: str | None = None,
                  baseline: Counter[str] | None = None) -> AuditReport:
    """The report with findings below the floors left out, and those the baseline already holds
    (each baseline entry absorbs one finding, so a second copy of a known trap is still new)."""
    keep: list[Finding] = []
    left = Counter(baseline) if baseline else Counter()
    baselined = 0
    for f in report.findings:
        if min_severity and MOOD_ORDER[f.severity] < MOOD_ORDER[min_severity]:
            continue
        if min_confidence and CONF_ORDER[f.confidence] < CONF_ORDER[min_confidence]:
            continue
        fp = fingerprint(f)
        if left[fp] > 0:
            left[fp] -= 1
            baselined += 1
            continue
        keep.append(f)
    return report.model_copy(update={"findings": keep, "baselined": report.baselined + baselined})


def finding_record(f: Finding) -> dict[str, Any]:
    return {"path": f.path, "line": f.line, "column": f.col, "cell": f.cell, "file_line": f.file_line,
            "code": f.code, "name": f.name, "severity": f.severity, "confidence": f.confidence,
            "message": f.message, "fix": f.fix, "impact": f.impact.text, "impact_basis": f.impact.basis,
            "waste_pct": f.impact.waste_pct, "row_ids": list(f.impact.row_ids), "snippet": f.snippet,
            "fingerprint": fingerprint(f), "suppressed_by": f.suppressed_by}


def summary(report: AuditReport) -> dict[str, Any]:
    counts = Counter(f.severity for f in report.findings)
    return {"files_scanned": report.files_scanned, "files_given": report.files_given,
            "lines_scanned": report.lines_scanned, "findings": len(report.findings),
            "by_severity": {s: counts[s] for s in reversed(SEVERITIES) if counts[s]},
            "suppressed": report.suppressed, "baselined": report.baselined,
            "unused_suppressions": len(report.unused_suppressions), "nothing_audited": report.nothing_audited,
            "elapsed_s": round(report.elapsed_s, 3)}


def json_report(report: AuditReport, answer: dict[str, Any]) -> str:
    """Findings at top level for CI scripts; the Answer the other formats render sits under
    "answer" (it validates against the Answer schema there)."""
    doc = {"findings": [finding_record(f) for f in report.findings],
           "suppressed_findings": [finding_record(f) for f in report.suppressed_findings],
           "unused_suppressions": [d.model_dump(mode="json") for d in report.unused_suppressions],
           "diagnostics": [d.model_dump(mode="json") for d in report.diagnostics],
           "summary": summary(report), "answer": answer}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _where(f: Finding) -> str:
    return f" (notebook cell {f.cell}, line {f.line})" if f.cell is not None else ""


def concise(report: AuditReport) -> str:
    from advisor.audit.models import printable

    out = [f"{printable(f.path)}:{report_line(f)}:{f.col}: {f.code} [{f.severity}] {printable(f.message)}{_where(f)}"
           for f in report.findings]
    out += [f"{printable(d.path)}:{d.line or 1}:1: {d.level}: {printable(d.message)}"
            for d in [*report.diagnostics, *report.unused_suppressions]]
    if report.nothing_audited:
        out.append(nothing_audited_message(report))
    else:
        out.append(f"{len(report.findings)} finding(s) in {report.files_scanned} file(s)"
                   + (f", {report.baselined} in the baseline" if report.baselined else "")
                   + (f", {report.suppressed} suppressed" if report.suppressed else ""))
    return "\n".join(out)


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def github(report: AuditReport) -> str:
    """GitHub Actions workflow commands: `::warning file=...,line=...::message` per finding."""
    out = []
    for f in report.findings:
        props = (f"file={_gh_prop(f.path)},line={report_line(f)},col={f.col},"
                 f"title={_gh_prop(f'{f.code} {f.title}')}")
        msg = f"{f.message}{_where(f)}. {f.impact.text}. Fix: {f.fix}"
        out.append(f"::{GITHUB_LEVEL[f.severity]} {props}::{_gh_data(msg)}")
    for d in [*report.diagnostics, *report.unused_suppressions]:
        level = {"error": "error", "warning": "warning", "info": "notice"}[d.level]
        line = f",line={d.line}" if d.line else ""
        out.append(f"::{level} file={_gh_prop(d.path)}{line},title=ecolobster::{_gh_data(d.message)}")
    if report.nothing_audited:
        out.append(f"::error title=ecolobster::{_gh_data(nothing_audited_message(report))}")
    return "\n".join(out)


def nothing_audited_message(report: AuditReport, lang: str = "en") -> str:
    from advisor.messages import t

    n = report.files_given
    return t(lang, "diag.nothing_given", n=n) if n else t(lang, "diag.nothing_found")
