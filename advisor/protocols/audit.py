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
from advisor.audit.models import Finding, printable, shown
from advisor.audit.settings import resolve_gpu
from advisor.messages import For, has, t

SEVERITY_ORDER = {"red": 0, "orange": 1, "yellow": 2, "green": 3, "gray": 4}
FINDING_COLUMNS = ["severity", "code", "location", "finding", "fix", "impact", "confidence"]


def _settings(gpu: str | None, select: list[str] | None = None, ignore: list[str] | None = None,
              paths: list[str] | None = None) -> AuditSettings:
    return load_settings(paths or [], select=select, ignore=ignore, gpu=gpu)


def _error(msg: str, query: dict[str, Any], lang: str = "en") -> Answer:
    m = For(lang)
    return Answer(protocol="audit", title=m("audit.cannot_run"), lang=m.lang, mood="gray",  # type: ignore[arg-type]
                  errors=[msg], query=query)


def rule_text(code: str, part: str, english: str, lang: str | None) -> str:
    """A rule's title or fix in `lang`: the catalog's `rule.<code>.<part>` when the rule's English
    text is the one the catalog holds, else the English as the rule wrote it."""
    key = f"rule.{code}.{part}"
    return t(lang, key) if has(key) and t("en", key) == english else english


def audit_code(code: str, filename: str = "<stdin>", gpu: str | None = None, lang: str = "en") -> Answer:
    """Audit code given as text (pasted in the chat, sent by an agent). Nothing is executed."""
    query = {"filename": filename, "gpu": gpu, "chars": len(code)}
    try:
        settings = AuditSettings(gpu=resolve_gpu(gpu)) if gpu else AuditSettings()
    except SettingsError as err:
        return _error(str(err), query, lang)
    name = filename if not (filename.startswith("<") and filename.endswith(">")) else "<stdin>"
    report = Auditor(settings).audit_code(code, name)
    if name != filename:
        report = _rename(report, filename)
    return report_to_answer(report, query=query, subject=filename, lang=lang)


def audit_paths(paths: list[str], gpu: str | None = None, select: list[str] | None = None,
                ignore: list[str] | None = None, settings: AuditSettings | None = None, lang: str = "en") -> Answer:
    """Audit files and folders (folders honour .gitignore and [tool.ecolobster] excludes)."""
    query = {"paths": list(paths), "gpu": gpu, "select": select, "ignore": ignore}
    try:
        settings = settings or _settings(gpu, select, ignore, paths)
    except SettingsError as err:
        return _error(str(err), query, lang)
    report = Auditor(settings).audit_paths(paths)
    return report_to_answer(report, query={**query, "gpu": settings.gpu},
                            subject=", ".join(paths) if len(paths) <= 3 else f"{len(paths)} paths", lang=lang)


def run_audit(paths_or_code: list[str] | str, *, gpu: str | None = None, filename: str = "<stdin>",
              select: list[str] | None = None, ignore: list[str] | None = None) -> Answer:
    """A list means paths; a string means code."""
    if isinstance(paths_or_code, str):
        return audit_code(paths_or_code, filename=filename, gpu=gpu)
    return audit_paths(list(paths_or_code), gpu=gpu, select=select, ignore=ignore)


def run(query: Any) -> Answer:
    """A question that asks for an audit but carries no code: say how to give the code, and what
    the auditor looks for."""
    m = For(getattr(query, "lang", None))
    rules = all_rules()
    table = Table(title=m("audit.looks_for"), columns=[m("audit.col_code"), m("audit.col_trap")],
                  rows=[[r.code, rule_text(r.code, "title", r.title, m.lang)] for r in rules.values()])
    return Answer(protocol="audit", title=m("audit.send_title"), lang=m.lang,  # type: ignore[arg-type]
                  mood="gray", headline=m("audit.send_headline"), tables=[table],
                  query={"text": getattr(query, "text", "")})


def _rename(report: AuditReport, filename: str) -> AuditReport:
    fs = [f.model_copy(update={"path": filename}) for f in report.findings]
    ds = [d.model_copy(update={"path": filename}) for d in report.diagnostics]
    return report.model_copy(update={"findings": fs, "diagnostics": ds})


def _impact_cell(f: Finding, lang: str) -> str:
    return shown(f.impact.msg, f.impact.text, lang)


def report_to_answer(report: AuditReport, *, query: dict[str, Any], subject: str = "", lang: str = "en") -> Answer:
    m = For(lang)
    findings = sorted(report.findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.path, f.cell or 0, f.line))
    n = len(findings)
    mood = report.worst()
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    summary = m.join([m("audit.count_one", n=counts[s], severity=m.word("mood", s))
                      for s in ("red", "orange", "yellow", "green", "gray") if s in counts])
    files = m("audit.file_one" if report.files_scanned == 1 else "audit.file_many", n=report.files_scanned)
    if report.nothing_audited:
        from advisor.audit.ci import nothing_audited_message

        mood = "gray"  # a run that read nothing is not a clean result
        why = nothing_audited_message(report, m.lang)
        headline = m("audit.nothing_audited", why=why[0].upper() + why[1:])
    elif n:
        headline = m("audit.findings_one" if n == 1 else "audit.findings_many", n=n, files=files, summary=summary)
    else:
        headline = m("audit.none_found", files=files, lines=f"{report.lines_scanned:,}")

    def fix(f: Finding) -> str:
        if f.fix_text is not None:  # a fix of this finding's own
            return shown(f.fix_text, f.fix, m.lang)
        return rule_text(f.code, "fix", f.fix, m.lang)

    def message(f: Finding) -> str:
        return shown(f.text, f.message, m.lang)

    def title(f: Finding) -> str:
        return rule_text(f.code, "title", f.title, m.lang)

    rows = [[m.word("mood", f.severity), f.code, f.location, message(f), fix(f), _impact_cell(f, m.lang),
             m.word("confidence", f.confidence)] for f in findings]
    tables = [Table(title=m("audit.findings_title"), columns=[m(f"audit.col_{c}") for c in FINDING_COLUMNS], rows=rows,
                    notes=[m("audit.note_impact"), m("audit.note_gray")])] if n else []
    diags = report.diagnostics
    if diags:
        tables.append(Table(title=m("audit.diag_title"),
                            columns=[m("audit.col_level"), m("audit.col_file"), m("audit.col_line"), m("audit.col_problem")],
                            rows=[[m.word("label", d.level), printable(d.path), d.line, shown(d.text, d.message, m.lang)]
                                  for d in diags]))
    alerts = [Alert(code=f.code, title=title(f), mood=f.severity, message=f"{f.location}: {message(f)}", fix=fix(f),
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
        impact = m("audit.impact_measured", pct=f.impact.waste_pct) if f.impact.waste_pct is not None \
            else m.word("basis", f.impact.basis)
        recs.append(Recommendation(title=f"{f.code}: {fix(f)}", detail=title(f), impact=impact))
    prov: list[Provenance] = []
    cites: list[Citation] = []
    for code in dict.fromkeys(f.code for f in findings):
        fs = [f for f in findings if f.code == code and f.impact.basis == "measured"]
        if fs:
            ids = list(dict.fromkeys(i for f in fs for i in f.impact.row_ids))
            prov.append(Provenance(subject=m("audit.impact_subject", code=code), tier="measured",
                                   method=m("audit.impact_method"), confidence="high", row_ids=ids,
                                   note=fs[0].impact.scope))
            cites.extend(Citation(kind="row", ref=i) for i in ids if all(c.ref != i for c in cites))
    caveats = [m("audit.static")]
    if report.suppressed:
        caveats.append(m("audit.suppressed", n=report.suppressed))
    if report.baselined:
        caveats.append(m("audit.baselined", n=report.baselined))
    if report.unused_suppressions:
        where = "; ".join(printable(f"{d.path}:{d.line}") for d in report.unused_suppressions[:5])
        caveats.append(m("audit.unused", n=len(report.unused_suppressions), where=where)
                       + (" ..." if len(report.unused_suppressions) > 5 else ""))
    warnings = [f"{printable(d.path)}: {shown(d.text, d.message, m.lang)}" for d in diags if d.level != "info"]
    return Answer(
        protocol="audit",
        title=m("audit.title", subject=printable(subject)) if subject else m("audit.title_plain"),
        lang=m.lang,  # type: ignore[arg-type]
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
