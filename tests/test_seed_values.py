"""The seed datasets hold exactly what the seeds publish.

The expected values below were typed from the seed documents independently of the CSV files, so a
typo in either one fails here. Seed 003 is the EcoCompute skill (measured tables), seed 000 the
QLoRA white paper (a simulation, kept for the record only).
"""

from __future__ import annotations

import pytest

from measurements.schema import MeasurementRow
from measurements.store import load_rows

SEED003 = "seed:003_d65d664912e8d40b.txt#"
SEED000 = "seed:000_19d212f2dc360787.txt#"

QWEN05, QWEN15, QWEN3, QWEN7 = "Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-1.5B", "Qwen/Qwen2.5-3B", "Qwen/Qwen2.5-7B-Instruct"
QWEN2 = "Qwen/Qwen2-1.5B"
PHI3 = "microsoft/Phi-3-mini-4k-instruct"
YI6 = "01-ai/Yi-1.5-6B"
MISTRAL = "mistralai/Mistral-7B-Instruct-v0.2"

PARAMS = {QWEN05: 0.5, QWEN15: 1.5, QWEN3: 3.0, QWEN7: 7.0, QWEN2: 1.5, PHI3: 3.8, YI6: 6.0, MISTRAL: 7.0}

# (gpu, model, precision, batch) -> (throughput, throughput_std, power W, J/1k tok, energy_std, GPU mem GB)
# None where the seed publishes nothing.
Key = tuple[str, str, str, int]
Values = tuple[float | None, float | None, float | None, float | None, float | None, float | None]

FIVE_PRECISION: dict[Key, Values] = {
    ("rtx5090", QWEN05, "fp16", 1): (83.01, None, 122.5, 1472, None, 1.62),
    ("rtx5090", QWEN05, "fp8", 1): (44.14, None, 168.5, 3799, None, 1.14),
    ("rtx5090", QWEN05, "nf4", 1): (47.32, None, 108.2, 2283, None, 0.92),
    ("rtx5090", QWEN05, "int8_mixed", 1): (16.37, None, 109.4, 6680, None, 1.62),
    ("rtx5090", QWEN05, "int8_pure", 1): (29.68, None, 108.4, 3654, None, 1.62),
    ("rtx5090", QWEN15, "fp16", 1): (68.91, None, 160.5, 2310, None, 3.53),
    ("rtx5090", QWEN15, "fp8", 1): (35.43, None, 293.7, 8284, None, 2.32),
    ("rtx5090", QWEN15, "nf4", 1): (41.92, None, 130.5, 3121, None, 1.68),
    ("rtx5090", QWEN15, "int8_mixed", 1): (14.45, None, 121.5, 8409, None, 3.53),
    ("rtx5090", QWEN15, "int8_pure", 1): (25.35, None, 120.3, 4753, None, 3.53),
    ("rtx5090", QWEN3, "fp16", 1): (54.80, None, 193.6, 3504, None, 6.53),
    ("rtx5090", QWEN3, "fp8", 1): (23.35, None, 390.4, 16666, None, 4.08),
    ("rtx5090", QWEN3, "nf4", 1): (36.42, None, 153.2, 4204, None, 2.89),
    ("rtx5090", QWEN3, "int8_mixed", 1): (11.52, None, 125.8, 10921, None, 6.53),
    ("rtx5090", QWEN3, "int8_pure", 1): (20.95, None, 130.7, 6235, None, 6.53),
    ("rtx5090", QWEN7, "fp16", 1): (69.97, None, 374.9, 5331, None, 15.22),
    ("rtx5090", QWEN7, "fp8", 1): (10.48, None, 448.3, 42711, None, 8.89),
    ("rtx5090", QWEN7, "nf4", 1): (39.92, None, 189.0, 4718, None, 6.19),
    ("rtx5090", QWEN7, "int8_mixed", 1): (12.91, None, 120.0, 9280, None, 8.12),
    ("rtx5090", QWEN7, "int8_pure", 1): (23.56, None, 137.4, 5822, None, 8.12),
}
EARLIER_5090: dict[Key, Values] = {
    ("rtx5090", QWEN2, "fp16", 1): (71.45, 0.80, 172.30, 2411, None, None),
    ("rtx5090", QWEN2, "nf4", 1): (41.57, 0.29, 129.83, 3123, None, None),
    ("rtx5090", PHI3, "fp16", 1): (43.47, 0.11, 213.35, 4908, None, None),
    ("rtx5090", PHI3, "nf4", 1): (32.08, 0.13, 175.85, 5483, None, None),
}
RTX4090D: dict[Key, Values] = {
    ("rtx4090d", YI6, "fp16", 1): (34.72, 0.18, None, 4716, 119, None),
    ("rtx4090d", YI6, "nf4", 1): (36.42, 0.27, None, 3333, 25, None),
    ("rtx4090d", MISTRAL, "fp16", 1): (29.06, 0.10, None, 5661, 143, None),
    ("rtx4090d", MISTRAL, "nf4", 1): (32.29, 0.02, None, 3707, 15, None),
    ("rtx4090d", PHI3, "fp16", 1): (57.62, 0.48, None, 2775, 48, None),
    ("rtx4090d", PHI3, "nf4", 1): (42.16, 0.25, None, 3076, 20, None),
    ("rtx4090d", QWEN7, "fp16", 1): (28.37, 0.39, None, 5649, 83, None),
    ("rtx4090d", QWEN7, "nf4", 1): (34.29, 0.24, None, 5191, 37, None),
    ("rtx4090d", YI6, "int8_mixed", 1): (8.42, 0.03, None, 6258, 78, None),
    ("rtx4090d", YI6, "int8_pure", 1): (15.47, 0.08, None, 4568, None, None),
    ("rtx4090d", MISTRAL, "int8_mixed", 1): (7.88, 0.03, None, 7401, 115, None),
    ("rtx4090d", MISTRAL, "int8_pure", 1): (14.15, 0.23, None, 5212, None, None),
}
A800: dict[Key, Values] = {
    ("a800", MISTRAL, "fp16", 1): (36.18, None, None, 4334, None, None),
    ("a800", MISTRAL, "int8_mixed", 1): (9.87, None, None, 9608, None, None),
    ("a800", MISTRAL, "int8_pure", 1): (18.09, None, None, 5781, None, None),
    ("a800", MISTRAL, "fp16", 4): (145.35, None, None, 1100, None, None),
    ("a800", MISTRAL, "int8_mixed", 4): (35.91, None, None, 2718, None, None),
    ("a800", MISTRAL, "int8_pure", 4): (72.96, None, None, 1580, None, None),
    ("a800", MISTRAL, "fp16", 8): (290.59, None, None, 628, None, None),
    ("a800", MISTRAL, "int8_mixed", 8): (69.88, None, None, 1417, None, None),
    ("a800", MISTRAL, "int8_pure", 8): (144.32, None, None, 827, None, None),
    ("a800", MISTRAL, "int8_pure", 2): (36.48, None, None, 3091, None, None),
    ("a800", MISTRAL, "int8_pure", 16): (283.71, None, None, 452, None, None),
    ("a800", MISTRAL, "int8_pure", 32): (548.20, None, None, 295, None, None),
    ("a800", MISTRAL, "int8_pure", 64): (1003.50, None, None, 248, None, None),
}
EXPECTED: dict[Key, Values] = {**FIVE_PRECISION, **EARLIER_5090, **RTX4090D, **A800}

# The A800 batch sweep's energy-per-request column (J), which contradicts its J/1k tok column.
A800_J_PER_REQUEST = {1: "14.16", 2: "7.57", 4: "3.79", 8: "1.77", 16: "0.98", 32: "0.72", 64: "0.61"}

# Per study: (n_runs, prompt_tokens, gen_tokens, torch, transformers, bitsandbytes, cuda, driver, nightly)
STUDY_ENV = {
    "five": (3, 512, 128, "2.12.0.dev20260315+cu128", "4.50.0", "0.45.3", "12.8", "580.105.08", True),
    "earlier": (10, 512, 256, "2.6.0", "4.48.0", "0.45.3", "12.6", "570.86.15", False),
    "4090d": (10, 512, 256, "2.4.1", "4.47.0", "0.45.0", "12.1", "560.35.03", False),
    "a800": (10, 512, 256, "2.4.1", "4.47.0", "0.45.0", "12.1", "535.183.01", False),
}


def _study(key: Key) -> str:
    if key in FIVE_PRECISION:
        return "five"
    if key in EARLIER_5090:
        return "earlier"
    return "4090d" if key[0] == "rtx4090d" else "a800"


def _key(row: MeasurementRow) -> Key:
    return (row.gpu, row.model_id, row.precision, row.batch_size)


@pytest.fixture(scope="module")
def all_rows() -> list[MeasurementRow]:
    return load_rows(include_local=False)


@pytest.fixture(scope="module")
def seed003(all_rows: list[MeasurementRow]) -> dict[Key, MeasurementRow]:
    rows = [r for r in all_rows if r.id.startswith("seed003-") or SEED003 in r.source]
    assert len(rows) == 49
    assert len({r.id for r in rows}) == 49, "duplicate ids among seed 003 rows"
    by_key = {_key(r): r for r in rows}
    assert len(by_key) == 49, "two seed 003 rows describe the same configuration"
    return by_key


@pytest.fixture(scope="module")
def seed000(all_rows: list[MeasurementRow]) -> dict[str, MeasurementRow]:
    rows = [r for r in all_rows if r.id.startswith("seed000-") or SEED000 in r.source]
    assert len(rows) == 2
    return {r.method or "": r for r in rows}


def test_seed003_has_exactly_the_published_configurations(seed003):
    assert set(seed003) == set(EXPECTED)
    assert len(FIVE_PRECISION) == 20 and len(EARLIER_5090) == 4 and len(RTX4090D) == 12 and len(A800) == 13


def _published_j(row: MeasurementRow) -> float | None:
    """The J/1k tok the seed prints: net of idle for the RTX 4090D (kept in energy_net_j_per_1k_tok, the
    row's energy being gross), board energy for the other GPUs."""
    return row.energy_net_j_per_1k_tok if row.gpu == "rtx4090d" else row.energy_j_per_1k_tok


@pytest.mark.parametrize("key", sorted(EXPECTED, key=str), ids=lambda k: "-".join(map(str, k)))
def test_seed003_every_published_value(seed003, key):
    row = seed003[key]
    tput, tstd, power, energy, estd, mem = EXPECTED[key]
    got = (row.throughput_tok_s, row.throughput_std, None if row.gpu == "rtx4090d" else row.power_w,
           _published_j(row), row.energy_std, row.gpu_mem_gb)
    assert got == (tput, tstd, power, energy, estd, mem), row.id
    assert row.params_b == PARAMS[row.model_id]


# Board power the author's own files publish for the RTX 4090D session the seed's tables copy (same
# throughput and J/1k tok): metadata/COMPLETE_DATASET_MEMO.md and metadata/pure_int8_metadata.json
# of hongping-zh/ecocompute-ai, typed from ../shared/external/ecocompute_raw.csv.
RTX4090D_POWER = {(YI6, "fp16"): 180.74, (YI6, "int8_mixed"): 70.02, (YI6, "int8_pure"): 87.96,
                  (MISTRAL, "fp16"): 181.91, (MISTRAL, "int8_mixed"): 75.29, (MISTRAL, "int8_pure"): 91.29}


@pytest.mark.parametrize("key", sorted(RTX4090D, key=str), ids=lambda k: "-".join(map(str, k)))
def test_rtx4090d_energy_is_gross_with_the_net_figure_kept(seed003, key):
    """The seed's RTX 4090D J/1k tok are net of ~17 W idle (the author's memo says so for the same
    session); the row's energy is gross: the published board power / throughput where a file gives
    the power, else net + 17 W / throughput."""
    row = seed003[key]
    assert row.idle_power_w == 17.0
    power = RTX4090D_POWER.get((row.model_id, row.precision))
    gross = power / row.throughput_tok_s * 1000 if power else row.energy_net_j_per_1k_tok + 17.0 / row.throughput_tok_s * 1000
    assert row.energy_j_per_1k_tok == pytest.approx(gross, abs=1.0), row.id
    assert row.energy_j_per_1k_tok > row.energy_net_j_per_1k_tok
    assert "Net of idle" in row.notes and "Gross vs net unclear" not in row.notes


@pytest.mark.parametrize("key", sorted(EXPECTED, key=str), ids=lambda k: "-".join(map(str, k)))
def test_seed003_provenance_columns(seed003, key):
    row = seed003[key]
    n, prompt, gen, torch_v, tf_v, bnb_v, cuda_v, driver_v, nightly = STUDY_ENV[_study(key)]
    assert (row.kind, row.task, row.weights, row.gpu_count, row.energy_method) == (
        "measured", "inference", "real", 1, "reported")
    # evidence, except the six RTX 4090 D rows the session's memo contradicts (kept, superseded)
    assert row.is_evidence is (row.superseded_by is None)
    assert row.superseded_by is None or row.superseded_by.startswith("eco-rtx4090d-")
    assert (row.n_runs, row.prompt_tokens, row.gen_tokens) == (n, prompt, gen)
    assert (row.torch_version, row.transformers_version, row.bitsandbytes_version) == (torch_v, tf_v, bnb_v)
    assert (row.cuda_version, row.driver_version, row.nightly_build) == (cuda_v, driver_v, nightly)
    assert row.torchao_version == ("0.17.0.dev20260316+cu128" if row.precision == "fp8" else None)
    # The seed gives no measurement date and only GPU-level idle power (the RTX 4090D's ~17 W, which
    # its J/1k tok are net of, is the author's memo's)
    assert row.measured_on is None and row.idle_power_w == (17.0 if row.gpu == "rtx4090d" else None)
    assert "v2.5.0" in row.notes and "2026-03-18" in row.notes
    assert row.source.startswith(SEED003)
    if row.precision == "fp8":
        assert "fallback" in row.notes and "eager" in row.notes


def test_merged_rows_name_every_table(seed003):
    nf4_table = "RTX 4090D — NF4 Saves Energy for Larger Models"
    int8_table = "RTX 4090D — Default INT8 vs FP16 vs Pure INT8"
    overhead = "A800 — INT8 Overhead Is Even Worse on Datacenter GPUs"
    sweep = "Complete Batch Size Data (A800 + Mistral-7B Pure INT8)"
    for model in (YI6, MISTRAL):
        src = seed003[("rtx4090d", model, "fp16", 1)].source
        assert nf4_table in src and int8_table in src
    assert int8_table not in seed003[("rtx4090d", QWEN7, "fp16", 1)].source
    for bs in (1, 4, 8):
        src = seed003[("a800", MISTRAL, "int8_pure", bs)].source
        assert overhead in src and sweep in src
    for bs in (2, 16, 32, 64):
        src = seed003[("a800", MISTRAL, "int8_pure", bs)].source
        assert sweep in src and overhead not in src
    for model in (QWEN05, QWEN15, QWEN3, QWEN7):
        assert "FP8 Energy Penalty Escalation" in seed003[("rtx5090", model, "fp8", 1)].source


def _delta_pct(seed003, key: Key, base: Key) -> float:
    """A delta as the seed computes it: from the J/1k tok it prints (net of idle on the RTX 4090D)."""
    return (_published_j(seed003[key]) / _published_j(seed003[base]) - 1) * 100


# Deltas vs FP16 (same GPU, model, batch) as the seed prints them, in percent.
PUBLISHED_DELTA_VS_FP16 = {
    ("rtx5090", QWEN05, "fp8", 1): 158, ("rtx5090", QWEN05, "nf4", 1): 55,
    ("rtx5090", QWEN05, "int8_mixed", 1): 354, ("rtx5090", QWEN05, "int8_pure", 1): 148,
    ("rtx5090", QWEN15, "fp8", 1): 259, ("rtx5090", QWEN15, "nf4", 1): 35,
    ("rtx5090", QWEN15, "int8_mixed", 1): 264, ("rtx5090", QWEN15, "int8_pure", 1): 106,
    ("rtx5090", QWEN3, "fp8", 1): 376, ("rtx5090", QWEN3, "nf4", 1): 20,
    ("rtx5090", QWEN3, "int8_mixed", 1): 212, ("rtx5090", QWEN3, "int8_pure", 1): 78,
    ("rtx5090", QWEN7, "fp8", 1): 701, ("rtx5090", QWEN7, "nf4", 1): -11.5,
    ("rtx5090", QWEN7, "int8_mixed", 1): 74, ("rtx5090", QWEN7, "int8_pure", 1): 9.2,
    ("rtx5090", QWEN2, "nf4", 1): 29.4, ("rtx5090", PHI3, "nf4", 1): 11.7,
    ("rtx4090d", YI6, "nf4", 1): -29.3, ("rtx4090d", MISTRAL, "nf4", 1): -34.5,
    ("rtx4090d", PHI3, "nf4", 1): 10.8, ("rtx4090d", QWEN7, "nf4", 1): -8.1,
    ("rtx4090d", YI6, "int8_mixed", 1): 32.7, ("rtx4090d", YI6, "int8_pure", 1): -3.1,
    ("rtx4090d", MISTRAL, "int8_mixed", 1): 30.7, ("rtx4090d", MISTRAL, "int8_pure", 1): -7.9,
    ("a800", MISTRAL, "int8_mixed", 1): 122, ("a800", MISTRAL, "int8_pure", 1): 33,
    ("a800", MISTRAL, "int8_mixed", 4): 147, ("a800", MISTRAL, "int8_pure", 4): 44,
    ("a800", MISTRAL, "int8_mixed", 8): 126, ("a800", MISTRAL, "int8_pure", 8): 32,
}


@pytest.mark.parametrize("key", sorted(PUBLISHED_DELTA_VS_FP16, key=str), ids=lambda k: "-".join(map(str, k)))
def test_published_deltas_vs_fp16_reproduce(seed003, key):
    base = (key[0], key[1], "fp16", key[3])
    assert _delta_pct(seed003, key, base) == pytest.approx(PUBLISHED_DELTA_VS_FP16[key], abs=1.0)


def test_published_int8_averages_on_rtx4090d_reproduce(seed003):
    deltas = {
        prec: [_delta_pct(seed003, ("rtx4090d", m, prec, 1), ("rtx4090d", m, "fp16", 1)) for m in (YI6, MISTRAL)]
        for prec in ("int8_mixed", "int8_pure")
    }
    assert sum(deltas["int8_mixed"]) / 2 == pytest.approx(31.7, abs=1.0)
    assert sum(deltas["int8_pure"]) / 2 == pytest.approx(-5.5, abs=1.0)


def test_rtx4090d_pure_vs_default_int8_deltas_do_not_reproduce(seed003):
    """The seed prints -34.2% (Yi) and -36.9% (Mistral) for pure vs default INT8, but its own J/1k tok
    give about -27% and -30%. The rows keep the J/1k tok values and say so in their notes."""
    for model, published in ((YI6, -34.2), (MISTRAL, -36.9)):
        pure = ("rtx4090d", model, "int8_pure", 1)
        got = _delta_pct(seed003, pure, ("rtx4090d", model, "int8_mixed", 1))
        assert abs(got - published) > 5
        assert f"{published}%" in seed003[pure].notes


# The batch sweep's "delta energy vs BS=1" column.
PUBLISHED_DELTA_VS_BS1 = {2: -46.5, 4: -73.3, 8: -87.5, 16: -93.1, 32: -94.9, 64: -95.7}


@pytest.mark.parametrize("bs", sorted(PUBLISHED_DELTA_VS_BS1))
def test_a800_batch_sweep_deltas(seed003, bs):
    key, base = ("a800", MISTRAL, "int8_pure", bs), ("a800", MISTRAL, "int8_pure", 1)
    got = _delta_pct(seed003, key, base)
    published = PUBLISHED_DELTA_VS_BS1[bs]
    if bs == 8:
        # Printed from the J/request column (1.77 / 14.16); J/1k tok gives -85.7%. Recorded in notes.
        assert got == pytest.approx(-85.7, abs=0.1)
        assert (float(A800_J_PER_REQUEST[8]) / float(A800_J_PER_REQUEST[1]) - 1) * 100 == pytest.approx(published, abs=0.1)
        assert "-85.7%" in seed003[key].notes
    else:
        assert got == pytest.approx(published, abs=1.0)


@pytest.mark.parametrize("bs", sorted(A800_J_PER_REQUEST))
def test_a800_sweep_notes_keep_j_per_request_and_util(seed003, bs):
    notes = seed003[("a800", MISTRAL, "int8_pure", bs)].notes
    assert f"{A800_J_PER_REQUEST[bs]} J" in notes and "contradicts" in notes
    assert "published estimate" in notes
    # J/1k tok is primary: at 256 generated tokens per request it is ~100x the published J/request.
    per_request = seed003[("a800", MISTRAL, "int8_pure", bs)].energy_j_per_1k_tok * 256 / 1000
    assert 90 < per_request / float(A800_J_PER_REQUEST[bs]) < 130


def test_a800_cost_example_inconsistency_is_recorded(seed003):
    assert "3,933 kWh" in seed003[("a800", MISTRAL, "int8_pure", 1)].notes


def test_energy_matches_power_over_throughput_where_power_is_published(seed003):
    for row in seed003.values():
        if row.power_w is None:
            continue
        implied = row.power_w / row.throughput_tok_s * 1000
        assert row.energy_j_per_1k_tok == pytest.approx(implied, rel=0.01), row.id


def test_simulated_rows_are_flagged_and_never_evidence(seed000):
    for row in seed000.values():
        assert row.kind == "simulated"
        assert row.is_evidence is False
        assert row.task == "finetune"
        assert row.source.startswith(SEED000)
        assert "simulat" in row.notes.lower()


def test_simulated_rows_hold_the_white_paper_figures(seed000):
    full, qlora = seed000["full"], seed000["qlora"]
    for row in (full, qlora):
        assert (row.gpu, row.model_id, row.params_b) == ("rtx4090", PHI3, 3.8)
        assert (row.batch_size, row.seq_len, row.tokens_processed) == (4, 2048, 2_300_000 * 3)
    assert (full.precision, full.lora_rank) == ("fp16", None)
    assert (qlora.precision, qlora.lora_rank) == ("nf4", 64)
    assert (full.run_energy_wh, full.run_duration_h, full.gpu_mem_gb) == (2541, 4.2, 20.4)
    assert (qlora.run_energy_wh, qlora.run_duration_h, qlora.gpu_mem_gb) == (1695, 4.8, 14.2)
    assert "445 W" in full.notes and "298 W" in qlora.notes
    # The paper's headline percentages, from its own totals.
    assert (1 - qlora.run_energy_wh / full.run_energy_wh) * 100 == pytest.approx(33.2, abs=1.0)
    assert (qlora.run_duration_h / full.run_duration_h - 1) * 100 == pytest.approx(14.3, abs=0.1)
    assert (1 - qlora.gpu_mem_gb / full.gpu_mem_gb) * 100 == pytest.approx(30.4, abs=0.1)
