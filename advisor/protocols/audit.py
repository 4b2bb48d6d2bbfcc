"""The AUDIT protocol: review code for energy traps and answer with findings by severity, each
with its line, a one-line fix and its impact from the measurements dataset (row ids cited) or
labelled "best practice".

The chat (pasted code, `/audit PATH`), the MCP server and `ecolobster audit` all come through
here, so they share one engine and one Answer rendering.

    audit_code(code, filename="<stdin>", gpu=None) -> Answer
    audit_paths(paths, gpu=None, ...) -> Answer
"""

from __future__ import annotations

from typing import Any

from advisor.answer import Alert, Answer, Citation, Provenance, Recommendation, Table
from advisor.audit import Auditor, AuditReport, AuditSettings, SettingsError, all_rules, load_settings
from advisor.audit.models import Finding, printable
from advisor.audit.settings import resolve_gpu

SEVERITY_ORDER = {"red": 0, "orange": 1, "yellow": 2, "green": 3, "gray": 4}
FINDING_COLUMNS = ["severity", "code", "location", "finding", "fix", "impact", "confidence"]


def _settings(gpu: str | None, select: list[str] | None = None, ignore: list[str] | None = None,
              paths: list[str] | None = None) -> AuditSettings:
    return load_settings(paths or [], select=select, ignore=ignore, gpu=gpu)


def _error(msg: str, query: dict[str, Any]) -> Answer:
    return Answer(protocol="audit", title="Audit: cannot run", mood="gray", errors=[msg], query=query)


def audit_code(code: str, filename: str = "<stdin>", gpu: str | None = None) -> Answer:
    """Audit code given as text (pasted in the chat, sent by an agent). Nothing is executed."""
    query = {"filename": filename, "gpu": gpu, "chars": len(code)}
    try:
        settings = AuditSettings(gpu=resolve_gpu(gpu)) if gpu else AuditSettings()
    except SettingsError as err:
        return _error(str(err), query)
    name = filename if not (filename.startswith("<") and filename.endswith(">")) else "<stdin>"
    report = Auditor(settings).audit_code(code, name)
    if name != filename:
        report = _rename(report, filename)
    return report_to_answer(report, query=query, subject=filename)


def audit_paths(paths: list[str], gpu: str | None = None, select: list[str] | None = None,
                ignore: list[str] | None = None, settings: AuditSettings | None = None) -> Answer:
    """Audit files and folders (folders honour .gitignore and [tool.ecolobster] excludes)."""
    query = {"paths": list(paths), "gpu": gpu, "select": select, "ignore": ignore}
    try:
        settings = settings or _settings(gpu, select, ignore, paths)
    except SettingsError as err:
        return _error(str(err), query)
    report = Auditor(settings).audit_paths(paths)
    return report_to_answer(report, query={**query, "gpu": settings.gpu},
                            subject=", ".join(paths) if len(paths) <= 3 else f"{len(paths)} paths")


def run_audit(paths_or_code: list[str] | str, *, gpu: str | None = None, filename: str = "<stdin>",
              select: list[str] | None = None, ignore: list[str] | None = None) -> Answer:
    """A list means paths; a string means code."""
    if isinstance(paths_or_code, str):
        return audit_code(paths_or_code, filename=filename, gpu=gpu)
    return audit_paths(list(paths_or_code), gpu=gpu, select=select, ignore=ignore)


def run(query: Any) -> Answer:
    """A question that asks for an audit but carries no code: say how to give the code, and what
    the auditor looks for."""
    rules = all_rules()
    table = Table(title="What the auditor looks for", columns=["code", "trap"],
                  rows=[[r.code, r.title] for r in rules.values()])
    return Answer(protocol="audit", title="Audit: send me the code", lang=getattr(query, "lang", None) or "en",
                  mood="gray", headline="Paste the code (inside ``` fences) or run `/audit PATH` in the chat, or "
                                        "`ecolobster audit PATH` in a terminal; I read it, never run it.",
                  tables=[table], query={"text": getattr(query, "text", "")})


def _rename(report: AuditReport, filename: str) -> AuditReport:
    fs = [f.model_copy(update={"path": filename}) for f in report.findings]
    ds = [d.model_copy(update={"path": filename}) for d in report.diagnostics]
    return report.model_copy(update={"findings": fs, "diagnostics": ds})


def _impact_cell(f: Finding) -> str:
    return f.impact.text


def report_to_answer(report: AuditReport, *, query: dict[str, Any], subject: str = "") -> Answer:
    findings = sorted(report.findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.path, f.cell or 0, f.line))
    n = len(findings)
    mood = report.worst()
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    summary = ", ".join(f"{counts[m]} {m}" for m in ("red", "orange", "yellow", "green", "gray") if m in counts)
    files = f"{report.files_scanned} file{'s' if report.files_scanned != 1 else ''}"
    if report.nothing_audited:
        from advisor.audit.ci import nothing_audited_message

        mood = "gray"  # a run that read nothing is not a clean result
        m = nothing_audited_message(report)
        headline = m[0].upper() + m[1:] + "."
    elif n:
        headline = f"{n} finding{'s' if n != 1 else ''} in {files} ({summary})."
    else:
        headline = f"No energy traps found in {files} ({report.lines_scanned:,} lines)."
    rows = [[f.severity, f.code, f.location, printable(f.message), f.fix, _impact_cell(f), f.confidence]
            for f in findings]
    tables = [Table(title="Findings", columns=FINDING_COLUMNS, rows=rows,
                    notes=["impact: 'measured' figures pair rows of the measurements dataset (ids cited); "
                           "'best practice' where the dataset has no evidence yet",
                           "gray: informational, or a value the code does not state (low confidence)"])] if n else []
    diags = report.diagnostics
    if diags:
        tables.append(Table(title="Files not fully audited", columns=["level", "file", "line", "problem"],
                            rows=[[d.level, printable(d.path), d.line, printable(d.message)] for d in diags]))
    alerts = [Alert(code=f.code, title=f.title, mood=f.severity, message=f"{f.location}: {printable(f.message)}", fix=f.fix,
                    impact_pct=f.impact.waste_pct,
                    citations=[Citation(kind="rule", ref=f.code, detail=f.name)]
                    + [Citation(kind="row", ref=r) for r in f.impact.row_ids])
              for f in findings]
    recs: list[Recommendation] = []
    seen: set[str] = set()
    for f in findings:
        if f.code in seen or f.severity == "gray":
            continue
        seen.add(f.code)
        impact = f"{f.impact.waste_pct:+.0f}% energy vs the fix (measured)" if f.impact.waste_pct is not None \
            else f.impact.basis
        recs.append(Recommendation(title=f"{f.code}: {f.fix}", detail=f.title, impact=impact))
    prov: list[Provenance] = []
    cites: list[Citation] = []
    for code in dict.fromkeys(f.code for f in findings):
        fs = [f for f in findings if f.code == code and f.impact.basis == "measured"]
        if fs:
            ids = list(dict.fromkeys(i for f in fs for i in f.impact.row_ids))
            prov.append(Provenance(subject=f"{code} impact", tier="measured",
                                   method="paired rows: same GPU, model, batch and token lengths, differing only in "
                                          "the trapped setting", confidence="high", row_ids=ids,
                                   note=fs[0].impact.scope))
            cites.extend(Citation(kind="row", ref=i) for i in ids if all(c.ref != i for c in cites))
    caveats = ["Static analysis: the code was read as text and AST, never executed; values the code does not "
               "state are reported at low confidence."]
    if report.suppressed:
        caveats.append(f"{report.suppressed} finding(s) silenced by '# eco: ignore' comments.")
    if report.baselined:
        caveats.append(f"{report.baselined} finding(s) left out: the baseline already holds them.")
    if report.unused_suppressions:
        caveats.append(f"{len(report.unused_suppressions)} suppression comment(s) silenced nothing: "
                       + "; ".join(printable(f"{d.path}:{d.line}") for d in report.unused_suppressions[:5])
                       + (" ..." if len(report.unused_suppressions) > 5 else ""))
    warnings = [printable(f"{d.path}: {d.message}") for d in diags if d.level != "info"]
    return Answer(
        protocol="audit",
        title=f"Audit of {printable(subject)}" if subject else "Audit",
        query=query,
        mood=mood,
        headline=headline,
        alerts=alerts,
        warnings=warnings,
        tables=tables,
        recommendations=recs,
        provenance=prov,
        citations=cites,
        caveats=caveats,
        extra={"findings": [f.model_dump(mode="json") for f in findings],
               "diagnostics": [d.model_dump(mode="json") for d in diags],
               "files_scanned": report.files_scanned, "lines_scanned": report.lines_scanned,
               "suppressed": report.suppressed, "rules": report.rules, "gpu": report.gpu},
    )
