"""The external-data importers: rebuilt files match the committed ones, provenance on every row,
figures as published, physics respected, and serving rows kept apart from HF-generate evidence."""

from __future__ import annotations

import csv
import json

import pytest
from pydantic import ValidationError

from advisor import estimate as E
from advisor.cli import main
from measurements import catalog
from measurements.importers import DATA_DIR, DEFAULT_SOURCE_DIR, built_files, ecocompute, read_seed003
from measurements.importers import __main__ as importer_cli
from measurements.schema import MeasurementRow
from measurements.store import load_rows, read_csv

MLENERGY = DATA_DIR / "mlenergy_v3.csv"
ECO = DATA_DIR / "ecocompute_external.csv"


@pytest.fixture(scope="module")
def ml_rows() -> list[MeasurementRow]:
    return read_csv(MLENERGY)


@pytest.fixture(scope="module")
def eco_rows() -> list[MeasurementRow]:
    return read_csv(ECO)


def test_rebuilding_from_shared_external_gives_the_committed_files() -> None:
    # CI clones the repository with shared/ beside it: the sources are ../shared/external.
    assert DEFAULT_SOURCE_DIR.is_dir(), f"{DEFAULT_SOURCE_DIR} missing: the importers' sources sit beside the repo"
    for name, text in built_files(DEFAULT_SOURCE_DIR).items():
        assert (DATA_DIR / name).read_text(encoding="utf-8") == text, f"{name} is stale: python -m measurements.importers"
    assert importer_cli.main(["--check"]) == 0


def test_the_cli_refuses_a_missing_source_folder(tmp_path, capsys) -> None:
    assert importer_cli.main(["--source", str(tmp_path / "nope"), "--check"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_every_published_row_is_imported_once(ml_rows) -> None:
    with (DEFAULT_SOURCE_DIR / "mlenergy_v3_llm.csv").open(newline="") as fh:
        src = list(csv.DictReader(fh))
    assert len(ml_rows) == len(src) == 504
    assert len({r.id for r in ml_rows}) == 504
    assert {r.model_id for r in ml_rows} == {s["model_id"] for s in src}


def test_provenance_on_every_imported_row(ml_rows, eco_rows) -> None:
    for r in ml_rows + eco_rows:
        assert r.source_repo and r.source_path and r.source_commit, r.id
        assert r.kind == "measured" and r.source_commit[:12] in r.source
    assert {r.framework for r in ml_rows} == {"vllm"}
    assert {r.framework for r in eco_rows} == {"hf-eager"}
    assert {r.source_repo for r in ml_rows} == {"ml-energy/leaderboard"}


def test_the_issue_figures_for_llama_8b_on_one_h100(ml_rows) -> None:
    got = {r.batch_size: r for r in ml_rows if r.model_id == "meta-llama/Llama-3.1-8B-Instruct"
           and r.gpu == "h100_sxm" and r.gpu_count == 1 and r.workload == "chat"}
    assert got[8].energy_j_per_1k_tok == pytest.approx(454.8, abs=0.1)
    assert got[64].energy_j_per_1k_tok == pytest.approx(118.6, abs=0.1)
    assert got[512].energy_j_per_1k_tok == pytest.approx(70.2, abs=0.1)
    assert got[64].max_num_seqs == 64 and got[64].mean_batch_size == pytest.approx(63.9, abs=0.1)
    assert got[64].itl_p50_ms == pytest.approx(11.5, abs=0.01) and got[64].itl_p99_ms > got[64].itl_p90_ms


def test_serving_rows_respect_physics(ml_rows) -> None:
    for r in ml_rows:
        g = catalog.resolve_gpu(r.gpu)
        assert r.power_w <= g.tdp_w * r.gpu_count, r.id
        # J/token is power over throughput (steady state): the published figures agree
        assert r.energy_j_per_1k_tok == pytest.approx(r.power_w / r.throughput_tok_s * 1000, rel=0.05), r.id
        assert r.mean_batch_size <= r.max_num_seqs + 1e-6
        assert catalog.resolve_model(r.model_id) is not None
        assert r.tensor_parallel * r.data_parallel <= r.gpu_count


def test_workloads_and_parallelism(ml_rows) -> None:
    assert {r.workload for r in ml_rows} == {"chat", "reasoning", "code-completion"}
    assert {r.gpu for r in ml_rows} == {"h100_sxm", "b200"}
    assert max(r.gpu_count for r in ml_rows) == 8 and max(r.batch_size for r in ml_rows) == 4096
    assert any((r.expert_parallel or 1) > 1 for r in ml_rows) and any((r.tensor_parallel or 1) > 1 for r in ml_rows)
    assert {r.precision for r in ml_rows} == {"bf16", "fp8", "mxfp4"}


def test_repeated_published_configurations_stay_as_separate_rows(ml_rows) -> None:
    twice = [r for r in ml_rows if r.id.endswith("-r2")]
    assert len(twice) == 3
    for r in twice:
        first = next(x for x in ml_rows if x.id == r.id[:-3])
        assert first.energy_j_per_1k_tok != r.energy_j_per_1k_tok and "2 times" in first.notes


def test_data_list_vllm_on_b200_lists_the_rows_with_their_sources(capsys, ml_rows) -> None:
    assert main(["data", "list", "--framework", "vllm", "--gpu", "b200", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == sum(r.gpu == "b200" for r in ml_rows) == 263
    assert all(r["framework"] == "vllm" and r["gpu"] == "b200" and r["source_repo"] == "ml-energy/leaderboard"
               for r in rows)
    assert main(["data", "list", "--framework", "vllm", "--gpu", "b200", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "ml-energy/leaderboard@0cd52dab897c public/data/models/" in out and "263 rows" in out


def test_data_list_rejects_an_unknown_framework(capsys) -> None:
    assert main(["data", "list", "--framework", "vlm"]) == 2
    assert "Accepted: hf-eager" in capsys.readouterr().err
    assert main(["data", "list", "--workload", "poetry"]) == 2
    assert main(["data", "list", "--gpu-count", "0"]) == 2


def test_data_validate_passes(capsys) -> None:
    assert main(["data", "validate", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["counts"]["rows"] >= 504 + 35


def test_vllm_rows_never_stand_in_for_hf_generate_rows() -> None:
    rows = load_rows(include_local=False)
    points = E.Dataset(E.points_from_rows(rows)).points
    assert points and not any(p.id.startswith("mlenergy-") for p in points)
    assert {p.id for p in E.points_from_rows(rows, framework="vllm")} == {
        r.id for r in rows if r.framework == "vllm"}
    e = E.estimate(E.Config(gpu="h100_sxm", model="llama-3.1-8b", params_b=8.03, precision="bf16", batch_size=8))
    assert e is not None and not any(i.startswith("mlenergy-") for i in e.row_ids)
    # NF4 with double quantisation is a variant of its own, not plain NF4 evidence
    assert not any(p.id.endswith("-dq-bs1-20260226") for p in points)


def test_idle_subtracted_figures_are_kept_net_and_rebuilt_gross(eco_rows) -> None:
    memo = next(r for r in eco_rows if r.id == "eco-rtx4090d-phi-3-mini-4k-instruct-int8_mixed-bs1")
    assert memo.energy_net_j_per_1k_tok == 3940
    assert memo.energy_j_per_1k_tok == pytest.approx(69.17 / 13.15 * 1000, abs=0.05)  # kept to 0.1 J
    later = next(r for r in eco_rows if r.id == "eco-rtx4090d-qwen2-0.5b-fp16-bs1-20260306-trials")
    assert later.energy_j_per_1k_tok == pytest.approx(1474.16 + 17.69 * 1000 / 47.39, rel=1e-6)
    for r in eco_rows:
        if r.energy_net_j_per_1k_tok is not None:
            assert r.energy_j_per_1k_tok > r.energy_net_j_per_1k_tok and r.gpu == "rtx4090d"


def test_perplexity_rows_name_their_dataset(eco_rows) -> None:
    ppl = [r for r in eco_rows if r.perplexity is not None]
    assert len(ppl) == 18 and all("WikiText-2" in (r.perplexity_dataset or "") for r in ppl)
    mistral = {(r.precision, bool(r.double_quant)): r.perplexity for r in ppl if r.model_id == "mistralai/Mistral-7B-v0.1"}
    assert mistral[("fp16", False)] == 4.668 and mistral[("int8_pure", False)] == 4.729
    yi = [r for r in ppl if r.gpu == "rtx4090d"]
    assert len(yi) == 3 and all(r.energy_j_per_1k_tok is None and "energy unavailable" in r.notes for r in yi)


def test_a800_session_is_averaged_from_its_runs(eco_rows) -> None:
    r = next(x for x in eco_rows if x.id == "eco-a800-mistral-7b-v0.1-fp16-bs1-20260226")
    with (DEFAULT_SOURCE_DIR / "ecocompute_runs.csv").open(newline="") as fh:
        runs = [float(x["energy_j_per_1k_tok"]) for x in csv.DictReader(fh)
                if x["source_path"] == "data/a800_results/energy_mistral_7b_fp16.json"]
    assert r.n_runs == len(runs) == 10 and r.energy_j_per_1k_tok == pytest.approx(sum(runs) / 10)
    assert "a800_summary.csv" in r.notes and r.measured_on.isoformat() == "2026-02-26"


def test_one_row_per_configuration_seed003_stays(eco_rows) -> None:
    seed = read_seed003()
    shipped = {(r.gpu, r.model_id, r.precision, r.batch_size) for r in seed
               if r.energy_j_per_1k_tok and r.superseded_by is None}
    for r in eco_rows:
        if r.energy_j_per_1k_tok is not None and not r.double_quant:
            assert (r.gpu, r.model_id, r.precision, r.batch_size) not in shipped, r.id
    left = ecocompute.build_all(DEFAULT_SOURCE_DIR, seed)[1]
    assert len(left) == 9 and sum("bs64-20260215" in x for x in left) == 1
    assert not any(r.precision == "int8_mixed" and "TESLA_T4" in (r.source_path or "") for r in eco_rows)


def test_seed003_rows_the_memo_contradicts_are_kept_and_superseded(eco_rows) -> None:
    seed = {r.id: r for r in read_seed003()}
    eco = {r.id: r for r in eco_rows}
    superseded = {i: r for i, r in seed.items() if r.superseded_by}
    assert sorted(i.removeprefix("seed003-rtx4090d-") for i in superseded) == [
        "mistral-7b-nf4-bs1", "phi-3-mini-fp16-bs1", "phi-3-mini-nf4-bs1", "qwen2.5-7b-fp16-bs1",
        "qwen2.5-7b-nf4-bs1", "yi-1.5-6b-nf4-bs1"]
    for r in superseded.values():
        new = eco[r.superseded_by]  # type: ignore[index]
        assert (new.gpu, new.model_id, new.precision, new.batch_size) == (r.gpu, r.model_id, r.precision, r.batch_size)
        assert not r.is_evidence and new.is_evidence and r.id in new.notes and new.id in r.notes
        # the memo's power reproduces its own net energy: (P - 17 W) / throughput within 1%
        assert (new.power_w - 17) / new.throughput_tok_s * 1000 == pytest.approx(new.energy_net_j_per_1k_tok, rel=0.01)
    yi = eco["eco-rtx4090d-yi-1.5-6b-nf4-bs1"]
    assert (yi.throughput_tok_s, yi.power_w, yi.energy_net_j_per_1k_tok) == (19.23, 80.87, 3292)
    assert seed["seed003-rtx4090d-yi-1.5-6b-nf4-bs1"].throughput_tok_s == 36.42  # nothing stored is lost


def test_one_session_one_measuring_host(eco_rows) -> None:
    """The memo's RTX 4090 D rows are the session seed 003's tables copy: same stack, same host key."""
    memo = [r for r in E.points_from_rows(read_seed003() + eco_rows) if r.gpu == "rtx4090d"
            and (r.id.startswith("seed003-") or r.id.endswith("-bs1"))]
    assert len(memo) == 14 and len({p.host for p in memo}) == 1
    # the host key names the stack without the quantisation libraries (each serves its own formats)
    assert "torch 2.4.1" in memo[0].host and "bitsandbytes" not in memo[0].host
    assert all(p.prompt_tokens == 512 for p in memo)
    later = {p.host for p in E.points_from_rows(eco_rows) if p.id.endswith(("-20260306-trials", "-20260306-n10"))}
    assert len(later) == 1 and later != {memo[0].host}  # the 2026-03-06 session states no stack


def test_serving_schema_fields_are_checked() -> None:
    base = dict(id="x-test", source="test", kind="measured", task="inference", gpu="h100_sxm", model_id="m/x",
                params_b=1, precision="bf16", batch_size=8, energy_j_per_1k_tok=100)
    assert MeasurementRow(**base).framework == "hf-eager"  # existing rows are HF generate
    with pytest.raises(ValidationError, match="perplexity_dataset"):
        MeasurementRow(**base, perplexity=5.0)
    with pytest.raises(ValidationError, match="exceeds gpu_count"):
        MeasurementRow(**base, gpu_count=2, tensor_parallel=2, data_parallel=2)
    with pytest.raises(ValidationError):
        MeasurementRow(**base, framework="vllm2")
