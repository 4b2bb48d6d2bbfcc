"""`ecolobster data`: the export contract, filters, show, validate, and clear errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

from advisor.cli import main
from measurements.schema import MeasurementRow
from measurements.store import append_rows


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_json_lists_the_seed_configurations_with_published_values(capsys):
    code, out, _ = run(capsys, "data", "export", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    seed = [r for r in rows if r["id"].startswith("seed003-")]
    assert len(seed) == 49
    assert all(r["kind"] == "measured" and r["task"] == "inference" for r in seed)
    # The field names are a contract other tools rely on: every schema field, nothing else.
    assert all(set(r) == set(MeasurementRow.model_fields) for r in rows)
    by_id = {r["id"]: r for r in rows}
    r = by_id["seed003-rtx5090-qwen2.5-7b-fp8-bs1"]
    assert (r["throughput_tok_s"], r["power_w"], r["energy_j_per_1k_tok"], r["gpu_mem_gb"]) == (
        10.48, 448.3, 42711.0, 8.89)
    r = by_id["seed003-a800-mistral-7b-int8_pure-bs64"]
    assert (r["batch_size"], r["throughput_tok_s"], r["energy_j_per_1k_tok"]) == (64, 1003.5, 248.0)
    assert "energy per request 0.61 J contradicts" in r["notes"]  # the seed contradiction is recorded
    sim = [r for r in rows if r["kind"] == "simulated"]
    assert {r["id"] for r in sim} == {
        "seed000-rtx4090-phi-3-mini-fp16-full-sim", "seed000-rtx4090-phi-3-mini-nf4-qlora-sim"}
    assert {r["run_energy_wh"] for r in sim} == {2541.0, 1695.0}


def test_export_csv_has_the_schema_header_and_filters_apply(capsys):
    code, out, _ = run(capsys, "data", "export", "--format", "csv", "--gpu", "4090d", "--precision", "nf4")
    assert code == 0
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == list(MeasurementRow.model_fields)
    got = list(reader)
    # seed 003's four RTX 4090 D NF4 rows (superseded, still exported), the memo's four that replace
    # them and the seed author's 2026-03-06 ones (five)
    assert len([r for r in got if r["id"].startswith("seed003-")]) == 4 and len(got) == 13
    assert sum(bool(r["superseded_by"]) for r in got) == 4
    assert {r["gpu"] for r in got} == {"rtx4090d"} and {r["precision"] for r in got} == {"nf4"}


def test_list_filters_by_model_alias_kind_and_source(capsys):
    code, out, _ = run(capsys, "data", "list", "--model", "mistral 7b", "--gpu", "a800", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 13 and all(r["model_id"] == "mistralai/Mistral-7B-Instruct-v0.2" for r in rows)
    code, out, _ = run(capsys, "data", "list", "--kind", "simulated", "--format", "markdown")
    assert code == 0 and "2 rows" in out and "seed000-rtx4090-phi-3-mini-fp16-full-sim" in out
    code, out, _ = run(capsys, "data", "list", "--source", "Batch Size Data", "--format", "json")
    assert {r["batch_size"] for r in json.loads(out)} == {1, 2, 4, 8, 16, 32, 64}


def test_local_rows_are_listed_after_shipped_ones(capsys):
    append_rows([MeasurementRow(
        id="local-h100-test", source="ecolobster bench (test)", kind="measured", task="inference",
        gpu="h100_sxm", model_id="Qwen/Qwen2.5-0.5B", params_b=0.5, weights="synthetic",
        precision="bf16", batch_size=8, energy_j_per_1k_tok=120.0)])
    code, out, _ = run(capsys, "data", "list", "--gpu", "h100", "--source", "(test)", "--format", "json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["local-h100-test"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("data", "list", "--precision", "int4"), "unknown precision 'int4'"),
        (("data", "list", "--gpu", "gtx1080"), "Unknown GPU 'gtx1080'"),
        (("data", "show", "seed003-a800-mistral-7b-fp16-bs3"), "Did you mean"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "error:" in err


def test_show_prints_every_stored_field(capsys):
    code, out, _ = run(capsys, "data", "show", "seed003-rtx4090d-yi-1.5-6b-int8_mixed-bs1", "--format", "json")
    assert code == 0
    row = json.loads(out)
    assert (row["throughput_tok_s"], row["throughput_std"], row["energy_j_per_1k_tok"], row["energy_std"]) == (
        8.42, 0.03, 8316.0, 78.0)


def test_validate_passes_and_reports_corrupt_local_lines_without_losing_rows(capsys, _isolated_data_dir):
    code, out, _ = run(capsys, "data", "validate", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["counts"]["simulated"] == 2
    assert report["counts"]["measured"] >= 49
    before = report["counts"]["measured"]
    store = _isolated_data_dir / "measurements.jsonl"
    append_rows([MeasurementRow(
        id="local-ok", source="bench", kind="measured", task="inference", gpu="a800",
        model_id="x/y", params_b=7, precision="fp16", batch_size=1, energy_j_per_1k_tok=10.0)])
    with store.open("a") as fh:
        fh.write("garbage\n")
    code, out, _ = run(capsys, "data", "validate", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["counts"]["measured"] == before + 1
    assert len(report["warnings"]) == 1 and ":2:" in report["warnings"][0]
    code, out, _ = run(capsys, "data", "show", "local-ok", "--format", "json")
    assert code == 0 and json.loads(out)["id"] == "local-ok"


def test_validate_accepts_cpu_runs_and_warns_on_local_rows_of_unknown_gpus(capsys):
    base = dict(source="ecolobster bench", kind="measured", task="inference", model_id="x/y", params_b=0.5,
                precision="fp32", batch_size=1)
    append_rows([
        MeasurementRow(id="local-cpu", gpu="cpu", notes="CPU run: energy unavailable", **base),
        MeasurementRow(id="local-odd", gpu="nvidia_gtx_1080", energy_j_per_1k_tok=900.0, **base),
    ])
    code, out, _ = run(capsys, "data", "validate", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert [w for w in report["warnings"] if "local-odd" in w and "not in the GPU catalog" in w]
    assert not [w for w in report["warnings"] if "local-cpu" in w]
    code, out, _ = run(capsys, "data", "list", "--gpu", "cpu", "--format", "json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["local-cpu"]
