"""SARIF 2.1.0 output for CI (GitHub code scanning accepts it): one run, the rules with their
ids, descriptions and help (the rule module's docstring), results with level, message, region
and a stable fingerprint, and per-file diagnostics as tool execution notifications."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

from advisor.audit.ci import fingerprint, nothing_audited_message, report_line
from advisor.audit.models import AuditReport, Finding
from advisor.audit.registry import all_rules

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"

# Mood -> SARIF level: red and orange waste 30% or more (errors), yellow is worth fixing
# (warning), green and gray are minor or informational (note).
LEVEL = {"red": "error", "orange": "error", "yellow": "warning", "green": "note", "gray": "note"}
DIAG_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def uri_for(path: str) -> str:
    if path.startswith("<") and path.endswith(">"):
        return quote(path.strip("<>"))
    p = path.replace(os.sep, "/")
    if os.path.isabs(path):
        return "file://" + quote(p)
    while p.startswith("./"):
        p = p[2:]
    return quote(p)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def to_sarif(report: AuditReport, tool_version: str = "0.1.0") -> dict[str, Any]:
    rules = all_rules()
    codes = [c for c in report.rules if c in rules] or list(rules)
    for f in [*report.findings, *report.suppressed_findings]:
        if f.code not in codes:
            codes.append(f.code)
    index = {c: i for i, c in enumerate(codes)}
    sarif_rules = []
    for c in codes:
        r = rules[c]
        sarif_rules.append({
            "id": c,
            "name": _camel(r.name),
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": r.summary},
            "help": {"text": r.doc or r.title, "markdown": f"**{c} {r.title}**\n\n```\n{r.doc}\n```\n\nFix: {r.fix}"},
            "defaultConfiguration": {"level": "warning"},
            "properties": {"tags": ["energy", "inference" if c.startswith("ECO1") else "fine-tuning"]},
        })
    results = [_result(f, index) for f in report.findings]
    results += [_result(f, index) for f in report.suppressed_findings]
    notes = []
    for d in report.diagnostics:
        n: dict[str, Any] = {"level": DIAG_LEVEL[d.level], "message": {"text": d.message},
                             "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri_for(d.path)}}}]}
        if d.line:
            n["locations"][0]["physicalLocation"]["region"] = {"startLine": d.line}
        notes.append(n)
    for d in report.unused_suppressions:
        notes.append({"level": "note", "message": {"text": d.message},
                      "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri_for(d.path)},
                                                          "region": {"startLine": d.line or 1}}}]})
    invocation: dict[str, Any] = {"executionSuccessful": not report.nothing_audited,
                                  "toolExecutionNotifications": notes}
    if report.nothing_audited:
        invocation["toolConfigurationNotifications"] = [{"level": "error",
                                                         "message": {"text": nothing_audited_message(report)}}]
    return {
        "$schema": SARIF_SCHEMA,
        "version": VERSION,
        "runs": [{
            "tool": {"driver": {"name": "ecolobster", "version": tool_version,
                                "semanticVersion": tool_version, "rules": sarif_rules}},
            "invocations": [invocation],
            "results": results,
            "columnKind": "unicodeCodePoints",
            "properties": {"filesScanned": report.files_scanned, "linesScanned": report.lines_scanned,
                           "suppressed": report.suppressed, "baselined": report.baselined, "gpu": report.gpu},
        }],
    }


def _result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": report_line(f), "startColumn": f.col}
    if f.snippet:
        region["snippet"] = {"text": f.snippet}
    props: dict[str, Any] = {"severity": f.severity, "confidence": f.confidence, "impact": f.impact.basis,
                             "rows": f.impact.row_ids}
    if f.impact.waste_pct is not None:
        props["wastePct"] = f.impact.waste_pct
    if f.cell is not None:  # the region points into the .ipynb file; the cell and its line say where in it
        props["notebookCell"] = f.cell
        props["cellLine"] = f.line
    where = f" (notebook cell {f.cell}, line {f.line})" if f.cell is not None else ""
    res: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": index[f.code],
        "level": LEVEL[f.severity],
        "message": {"text": f"{f.message}{where}. {f.impact.text}. Fix: {f.fix}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri_for(f.path)}, "region": region}}],
        "partialFingerprints": {"ecolobster/v1": fingerprint(f)},
        "properties": props,
    }
    if f.suppressed_by is not None:
        res["suppressions"] = [{"kind": "inSource", "justification": f"silenced by {f.suppressed_by}"}]
    return res


def dumps(report: AuditReport) -> str:
    return json.dumps(to_sarif(report), indent=2, ensure_ascii=False)
