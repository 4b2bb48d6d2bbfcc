"""The CI controls of `ecolobster audit`: baseline, exit-zero, severity/confidence floors, concise
and GitHub formats, SARIF suppressions, notebook locations, unused and file/block suppressions,
--max-file-mb, exit 2 when nothing was audited, the JSON report and the GitHub Action."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from advisor.cli import main
from tests.test_audit_sarif_cli import validate

ROOT = Path(__file__).resolve().parents[1]
TRAP8 = "from transformers import BitsAndBytesConfig as B\nB(load_in_8bit=True)\n"
# A gray, low-confidence finding (the flag is read at run time) and a red one.
GRAY = "import os\nfrom transformers import BitsAndBytesConfig as B\nB(load_in_8bit=os.environ['Q'] == '8')\n"


def run(capsys, *argv):
    rc = main(["audit", *map(str, argv)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def as_json(capsys, *argv):
    rc, out, _ = run(capsys, *argv, "--format", "json")
    return rc, json.loads(out)


def test_json_report_lists_findings_at_top_level(tmp_path, capsys):
    (tmp_path / "a.py").write_text(TRAP8)
    rc, doc = as_json(capsys, tmp_path / "a.py")
    assert rc == 1
    (f,) = doc["findings"]
    assert {k: f[k] for k in ("line", "column", "code", "severity", "confidence")} == {
        "line": 2, "column": 1, "code": "ECO101", "severity": "red", "confidence": "high"}
    assert f["path"].endswith("a.py") and "llm_int8_threshold" in f["fix"] and f["impact"]
    assert f["row_ids"] and all(isinstance(r, str) for r in f["row_ids"]) and len(f["fingerprint"]) == 32
    assert doc["summary"]["findings"] == 1 and doc["summary"]["files_scanned"] == 1
    assert doc["answer"]["protocol"] == "audit" and doc["answer"]["extra"]["findings"]  # the Answer beside it


def test_baseline_reports_only_new_findings(tmp_path, capsys):
    src = tmp_path / "a.py"
    src.write_text(TRAP8)
    base = tmp_path / "base.json"
    assert run(capsys, src, "--format", "json", "-o", base)[0] == 1
    sarif = tmp_path / "base.sarif"
    run(capsys, src, "--format", "sarif", "-o", sarif)
    src.write_text("# a comment moves the known finding down a line\n" + TRAP8 + "B(load_in_8bit=True, x=1)\n")
    for b in (base, sarif):
        rc, doc = as_json(capsys, src, "--baseline", b)
        assert rc == 1 and [f["line"] for f in doc["findings"]] == [4]
        assert doc["summary"]["baselined"] == 1
    src.write_text(TRAP8)
    rc, doc = as_json(capsys, src, "--baseline", base)
    assert rc == 0 and doc["findings"] == [] and doc["summary"]["baselined"] == 1


@pytest.mark.parametrize("content, want", [("{not json", "is not JSON"), ('{"x": 1}', "neither"),
                                           (None, "cannot read the baseline")])
def test_a_bad_baseline_is_a_usage_error(tmp_path, capsys, content, want):
    (tmp_path / "a.py").write_text(TRAP8)
    b = tmp_path / "b.json"
    if content is not None:
        b.write_text(content)
    rc, _, err = run(capsys, tmp_path / "a.py", "--baseline", b)
    assert rc == 2 and want in err and "Traceback" not in err


def test_exit_zero_keeps_the_report_but_exits_0(tmp_path, capsys):
    (tmp_path / "a.py").write_text(TRAP8)
    rc, out, _ = run(capsys, tmp_path / "a.py", "--exit-zero", "--format", "concise")
    assert rc == 0 and ": ECO101 [red]" in out


def test_min_severity_and_min_confidence_floors(tmp_path, capsys):
    (tmp_path / "red.py").write_text(TRAP8)
    (tmp_path / "gray.py").write_text(GRAY)
    _, doc = as_json(capsys, tmp_path)
    assert sorted((Path(f["path"]).name, f["severity"], f["confidence"]) for f in doc["findings"]) == [
        ("gray.py", "gray", "low"), ("red.py", "red", "high")]
    for flag, value in (("--min-severity", "yellow"), ("--min-confidence", "medium")):
        rc, doc = as_json(capsys, tmp_path, flag, value)
        assert rc == 1 and [Path(f["path"]).name for f in doc["findings"]] == ["red.py"]
    rc, doc = as_json(capsys, tmp_path / "gray.py", "--min-severity", "green")
    assert rc == 0 and doc["findings"] == []


def test_concise_format_is_one_path_line_col_code_line_per_finding(tmp_path, capsys):
    (tmp_path / "a.py").write_text(TRAP8 + "\n\nB(load_in_8bit=True)\n")
    rc, out, _ = run(capsys, tmp_path / "a.py", "--format", "concise")
    lines = out.splitlines()
    pat = re.compile(r"^(?P<path>.+):(?P<line>\d+):(?P<col>\d+): (?P<code>ECO\d{3}) \[red\] .+$")
    hits = [pat.match(x) for x in lines[:-1]]
    assert all(hits) and [(h["line"], h["col"], h["code"]) for h in hits] == [("2", "1", "ECO101"),
                                                                              ("5", "1", "ECO101")]
    assert hits[0]["path"] == str(tmp_path / "a.py") and lines[-1].startswith("2 finding(s) in 1 file(s)")
    assert rc == 1


def test_github_format_writes_escaped_workflow_annotations(tmp_path, capsys):
    (tmp_path / "a,b.py").write_text(TRAP8)
    (tmp_path / "y.py").write_text("from transformers import TrainingArguments\n"
                                   "TrainingArguments(output_dir='o', max_steps=1000, save_steps=10, bf16=True)\n")
    rc, out, _ = run(capsys, tmp_path, "--format", "github")
    lines = out.splitlines()
    red = next(x for x in lines if "ECO101" in x)
    assert red.startswith("::error file=") and ",line=2,col=1,title=ECO101 " in red
    assert "a%2Cb.py" in red and "\n" not in red
    assert any(x.startswith("::warning ") and "ECO201" in x for x in lines)
    assert rc == 1


def test_sarif_marks_suppressed_results_instead_of_dropping_them(tmp_path, capsys):
    (tmp_path / "a.py").write_text(TRAP8.replace("True)", "True)  # eco: ignore[ECO101]") + "B(load_in_8bit=True)\n")
    rc, out, _ = run(capsys, tmp_path / "a.py", "--format", "sarif")
    doc = json.loads(out)
    validate(doc)
    res = doc["runs"][0]["results"]
    assert [(r["locations"][0]["physicalLocation"]["region"]["startLine"], "suppressions" in r) for r in res] == [
        (3, False), (2, True)]
    assert res[1]["suppressions"][0]["kind"] == "inSource" and "eco: ignore[ECO101]" in res[1]["suppressions"][0][
        "justification"]
    assert rc == 1  # the suppressed one does not count, the other does


def _notebook(path: Path) -> None:
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Title\n"]},
                    {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                     "source": ["from transformers import BitsAndBytesConfig as B\n", "cfg = 1\n",
                                "B(load_in_8bit=True)\n"]}],
          "metadata": {"kernelspec": {"language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1))


def test_notebook_results_point_at_the_cell_and_the_line_of_the_ipynb_file(tmp_path, capsys):
    nb = tmp_path / "n.ipynb"
    _notebook(nb)
    _, out, _ = run(capsys, nb, "--format", "sarif")
    (r,) = json.loads(out)["runs"][0]["results"]
    line = r["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert "B(load_in_8bit=True)" in nb.read_text().splitlines()[line - 1]
    assert r["properties"]["notebookCell"] == 2 and r["properties"]["cellLine"] == 3
    assert "(notebook cell 2, line 3)" in r["message"]["text"]
    _, doc = as_json(capsys, nb)
    assert (doc["findings"][0]["cell"], doc["findings"][0]["line"], doc["findings"][0]["file_line"]) == (2, 3, line)


def test_unused_suppressions_are_reported(tmp_path, capsys):
    (tmp_path / "a.py").write_text(TRAP8.replace("True)", "True)  # eco: ignore[ECO101, ECO205]")
                                   + "x = 1  # eco: ignore\n")
    rc, doc = as_json(capsys, tmp_path / "a.py")
    got = [(d["line"], d["message"]) for d in doc["unused_suppressions"]]
    assert [g[0] for g in got] == [2, 3]
    assert "ECO205 silenced nothing" in got[0][1] and "it silenced nothing" in got[1][1]
    assert rc == 0 and doc["findings"] == [] and doc["summary"]["suppressed"] == 1
    # A rule left out by --select did not run: its code is not "unused".
    _, doc = as_json(capsys, tmp_path / "a.py", "--select", "ECO101")
    assert [d["line"] for d in doc["unused_suppressions"]] == [3]


def test_file_and_block_suppressions(tmp_path, capsys):
    body = TRAP8 + "B(load_in_8bit=True)\n"
    (tmp_path / "f.py").write_text("# eco: ignore-file[ECO101]\n" + body)
    (tmp_path / "g.py").write_text("from transformers import BitsAndBytesConfig as B\n"
                                   "# eco: disable[ECO101]\nB(load_in_8bit=True)\nB(load_in_8bit=True)\n"
                                   "# eco: enable[ECO101]\nB(load_in_8bit=True)\n")
    rc, doc = as_json(capsys, tmp_path)
    assert [(Path(f["path"]).name, f["line"]) for f in doc["findings"]] == [("g.py", 6)]
    assert doc["summary"]["suppressed"] == 4 and rc == 1


def test_max_file_mb_on_the_command_line(tmp_path, capsys):
    (tmp_path / "a.py").write_text(TRAP8 + "# " + "x" * 3000 + "\n")
    rc, doc = as_json(capsys, tmp_path / "a.py", "--max-file-mb", "0.001")
    assert rc == 2 and doc["summary"]["nothing_audited"] and "MB limit" in doc["diagnostics"][0]["message"]
    rc, _, err = run(capsys, tmp_path / "a.py", "--max-file-mb", "-1")
    assert rc == 2 and "--max-file-mb" in err and "positive" in err


def test_nothing_audited_exits_2_and_never_looks_clean(tmp_path, capsys):
    (tmp_path / "a.py").write_bytes(b"\x00\x01binary")
    (tmp_path / "b.py").write_bytes(b"\x7fELF\x00")
    rc, out, err = run(capsys, tmp_path)
    assert rc == 2 and "nothing was audited" in err and "No energy traps" not in out
    rc, out, _ = run(capsys, tmp_path, "--format", "sarif")
    doc = json.loads(out)
    validate(doc)
    inv = doc["runs"][0]["invocations"][0]
    assert rc == 2 and inv["executionSuccessful"] is False
    assert "none of the 2 file(s)" in inv["toolConfigurationNotifications"][0]["message"]["text"]
    assert run(capsys, tmp_path, "--exit-zero")[0] == 2  # --exit-zero is about findings, not about auditing nothing


def test_action_runs_the_audit_and_uploads_sarif(tmp_path):
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = {s.get("name", s.get("uses")): s for s in action["runs"]["steps"]}
    upload = steps["Upload SARIF"]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    # Run the audit step's script as the runner would, with `ecolobster` this checkout.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "ecolobster"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m advisor.cli \"$@\"\n")
    shim.chmod(0o755)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "a.py").write_text(TRAP8)
    out = tmp_path / "gh_output"
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "ECO_PATHS": "code", "ECO_ARGS": "--fail-on orange", "ECO_SARIF": "eco.sarif", "GITHUB_OUTPUT": str(out)}
    proc = subprocess.run(["bash", "-c", steps["Audit"]["run"]], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().strip() == "exit-code=1"
    sarif = json.loads((tmp_path / "eco.sarif").read_text())
    validate(sarif)
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["ECO101"]
    assert "::error file=code/a.py,line=2" in proc.stdout  # the annotations step
    # Every flag the README's workflow passes exists.
    readme = (ROOT / "README.md").read_text()
    assert "uses: " in readme and "action.yml" in readme
