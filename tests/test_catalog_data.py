"""Integrity of the shipped catalogs (measurements/catalog/*.csv).

The engine builds synthetic models from models.csv and the advisor prices and weighs every answer
with gpus.csv, regions.csv, factors.csv and gpu_prices.csv, so a wrong shape or a sparse TFLOPS
figure here would silently skew everything downstream. The expected figures in this file were
typed from the seeds and from published model cards, independently of the CSV files.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import pytest

from measurements import catalog
from measurements.catalog import UnknownName, norm, resolve_gpu, resolve_model, resolve_region
from measurements.schema import GPU, Factor, GPUPrice, GPUPurchasePrice, ModelArch, Region
from measurements.store import DATA_DIR

CATALOG_DIR = Path(catalog.__file__).parent / "catalog"
FILES = {
    "gpus.csv": GPU,
    "models.csv": ModelArch,
    "regions.csv": Region,
    "factors.csv": Factor,
    "gpu_prices.csv": GPUPrice,
    "gpu_purchase_prices.csv": GPUPurchasePrice,
}


# ---------------------------------------------------------------------------------------------
# Files and columns


@pytest.mark.parametrize("name", sorted(FILES))
def test_csv_columns_are_the_model_fields(name: str) -> None:
    with (CATALOG_DIR / name).open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    model = FILES[name]
    assert len(header) == len(set(header)), f"{name}: duplicate columns"
    assert set(header) <= set(model.model_fields), f"{name}: unknown columns {set(header) - set(model.model_fields)}"
    required = {k for k, f in model.model_fields.items() if f.is_required()}
    assert required <= set(header), f"{name}: missing required columns {required - set(header)}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_rows_have_the_header_width(name: str) -> None:
    with (CATALOG_DIR / name).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    width = len(rows[0])
    bad = [i + 1 for i, r in enumerate(rows) if len(r) != width]
    assert not bad, f"{name}: lines {bad} do not have {width} cells"
    assert len(rows) > 1, f"{name} has no data rows"


def _entries() -> dict[str, tuple]:
    return {"gpu": catalog.gpus(), "model": catalog.models(), "region": catalog.regions()}


@pytest.mark.parametrize("what", ["gpu", "model", "region"])
def test_keys_are_unique(what: str) -> None:
    keys = [e.key for e in _entries()[what]]
    assert len(keys) == len(set(keys)), f"duplicate {what} keys: {sorted(k for k in keys if keys.count(k) > 1)}"


def test_factor_keys_are_unique() -> None:
    with (CATALOG_DIR / "factors.csv").open(newline="", encoding="utf-8") as fh:
        keys = [r["key"] for r in csv.DictReader(fh)]
    assert len(keys) == len(set(keys))


# ---------------------------------------------------------------------------------------------
# Aliases and resolution


def _names(entry) -> list[str]:
    """Every name the resolver indexes for an entry (see measurements.catalog._index)."""
    names = [entry.key, entry.name, *entry.aliases]
    if isinstance(entry, ModelArch):
        names += [entry.hub_id, entry.hub_id.split("/", 1)[1]]
    return names


@pytest.mark.parametrize("what", ["gpu", "model", "region"])
def test_aliases_are_clean_lowercase_and_unique(what: str) -> None:
    seen: dict[str, str] = {}
    for e in _entries()[what]:
        for a in e.aliases:
            assert a == a.strip().lower() and a, f"{what} {e.key}: alias {a!r} must be lowercase and trimmed"
            assert a not in seen, f"alias {a!r} is on both {seen[a]} and {e.key}"
            seen[a] = e.key


@pytest.mark.parametrize("what", ["gpu", "model", "region"])
def test_no_name_collides_with_another_entry_after_normalisation(what: str) -> None:
    owner: dict[str, str] = {}
    for e in _entries()[what]:
        for n in _names(e):
            k = norm(n)
            assert k, f"{what} {e.key}: name {n!r} normalises to nothing"
            assert owner.setdefault(k, e.key) == e.key, (
                f"{what} name {n!r} of {e.key} normalises to {k!r}, already taken by {owner[k]}")


def test_every_gpu_name_resolves_to_its_entry() -> None:
    for g in catalog.gpus():
        for n in _names(g):
            assert resolve_gpu(n).key == g.key, n


def test_every_model_name_resolves_to_its_entry() -> None:
    for m in catalog.models():
        for n in _names(m):
            assert resolve_model(n).key == m.key, n


def test_every_region_name_resolves_to_its_entry() -> None:
    for r in catalog.regions():
        for n in _names(r):
            assert resolve_region(n).key == r.key, n


@pytest.mark.parametrize(("typed", "key"), [
    ("h100", "h100_sxm"), ("nvidia h100", "h100_sxm"), ("NVIDIA H100 PCIe", "h100_pcie"), ("H200", "h200"),
    ("4090d", "rtx4090d"), ("RTX 4090 D", "rtx4090d"), ("5090", "rtx5090"), ("GeForce RTX 5090", "rtx5090"),
    ("rtx 4090", "rtx4090"), ("3090", "rtx3090"), ("a100-80g", "a100_80gb"), ("a100 80gb", "a100_80gb"),
    ("A100", "a100_80gb"), ("a100 40gb", "a100_40gb"), ("A800 80GB", "a800"), ("a800", "a800"),
    ("L40S", "l40s"), ("a10g", "a10g"), ("L4", "l4"), ("V100", "v100"), ("Tesla T4", "t4"),
])
def test_typed_gpu_names(typed: str, key: str) -> None:
    assert resolve_gpu(typed).key == key


@pytest.mark.parametrize(("typed", "key"), [
    ("qwen2.5 7b", "qwen2.5-7b"), ("qwen 7b", "qwen2.5-7b"), ("Qwen/Qwen2.5-7B-Instruct", "qwen2.5-7b"),
    ("Qwen2.5-0.5B", "qwen2.5-0.5b"), ("Qwen/Qwen2-1.5B", "qwen2-1.5b"), ("Qwen/Qwen2-7B", "qwen2-7b"),
    ("mistral 7b", "mistral-7b-v0.2"), ("mistral-7b", "mistral-7b-v0.2"), ("phi3 mini", "phi-3-mini"),
    ("microsoft/Phi-3-mini-4k-instruct", "phi-3-mini"), ("yi-6b", "yi-1.5-6b"), ("01-ai/Yi-1.5-6B-Chat", "yi-1.5-6b"),
    ("tinyllama", "tinyllama-1.1b"), ("olmo 7b", "olmo-7b"), ("allenai/OLMo-7B-Instruct", "olmo-7b"),
    ("llama 3.1 8b", "llama-3.1-8b"), ("llama 3 8b", "llama-3-8b"), ("meta-llama/Llama-3-8B", "llama-3-8b"),
    ("mixtral", "mixtral-8x7b"), ("gemma 2 9b", "gemma-2-9b"), ("qwen 72b", "qwen2.5-72b"),
])
def test_typed_model_names(typed: str, key: str) -> None:
    assert resolve_model(typed).key == key


@pytest.mark.parametrize(("typed", "key"), [
    ("usa", "us"), ("United States", "us"), ("中国", "china"), ("cn", "china"), ("Europe", "eu"),
    ("欧盟", "eu"), ("France", "france"), ("norway", "norway"), ("India", "india"), ("Deutschland", "germany"),
    ("UK", "uk"), ("united kingdom", "uk"), ("autodl", "autodl_china"), ("us cloud", "us_cloud"),
])
def test_typed_region_names(typed: str, key: str) -> None:
    assert resolve_region(typed).key == key


def test_a_near_miss_is_refused_with_suggestions() -> None:
    with pytest.raises(UnknownName) as err:
        resolve_gpu("rtx 4080")
    assert "rtx4090" in err.value.nearest
    assert "Accepted:" in str(err.value)


# ---------------------------------------------------------------------------------------------
# GPUs: units and physics

CC_BY_ARCH = {
    "Volta": {"7.0"},
    "Turing": {"7.5"},
    "Ampere": {"8.0", "8.6", "8.7"},
    "Ada Lovelace": {"8.9"},
    "Hopper": {"9.0"},
    "Blackwell": {"10.0", "10.3", "12.0", "12.1"},
}
REQUIRED_GPUS = {"h100_sxm", "h100_pcie", "h200", "a100_40gb", "a100_80gb", "a800", "l40s", "a10g", "l4",
                 "rtx3090", "rtx4090", "rtx4090d", "rtx5090", "v100"}


def _cc(g: GPU) -> float:
    return float(g.compute_capability)


def test_required_gpus_are_present() -> None:
    assert {g.key for g in catalog.gpus()} >= REQUIRED_GPUS


@pytest.mark.parametrize("g", catalog.gpus(), ids=lambda g: g.key)
def test_gpu_units_are_sane(g: GPU) -> None:
    assert g.compute_capability in CC_BY_ARCH[g.architecture], f"{g.key}: cc {g.compute_capability} is not {g.architecture}"
    assert g.idle_power_w < 0.25 * g.tdp_w, "idle must be well below TDP"
    # GB/s per GB of memory: from ~12 (L4) to ~56 (RTX 5090); far outside means a unit slip (TB/s, MB/s).
    assert 8 <= g.mem_bandwidth_gbs / g.vram_gb <= 70
    # Dense tensor TFLOPS per board watt stays under ~2.2 for every GPU listed (H100 PCIe is the
    # highest); the 2:4-sparse headline doubles it.
    assert g.fp16_tflops / g.tdp_w < 2.5, f"{g.key}: fp16_tflops looks like a sparse figure"
    if g.int8_tops is not None:
        assert g.int8_tops >= g.fp16_tflops


@pytest.mark.parametrize("g", catalog.gpus(), ids=lambda g: g.key)
def test_gpu_precision_support_follows_the_architecture(g: GPU) -> None:
    assert g.bf16_support == (_cc(g) >= 8.0), "BF16 tensor cores arrived with Ampere (sm_80)"
    assert g.fp8_support == (_cc(g) >= 8.9), "FP8 tensor cores arrived with Ada (sm_89) and Hopper"
    if g.bf16_support:
        assert g.bf16_tflops is not None and math.isclose(g.bf16_tflops, g.fp16_tflops, rel_tol=0.01)
    else:
        assert g.bf16_tflops is None


# Datasheet headline FP16 tensor figures *with 2:4 sparsity*; the catalog must hold half of them.
SPARSE_FP16_HEADLINE = {
    "h100_sxm": 1979, "h100_pcie": 1513, "h200": 1979, "a100_40gb": 624, "a100_80gb": 624,
    "a800": 624, "l4": 242, "rtx_a6000": 309.7,
}


@pytest.mark.parametrize(("key", "sparse"), sorted(SPARSE_FP16_HEADLINE.items()))
def test_fp16_is_the_dense_half_of_the_sparse_headline(key: str, sparse: float) -> None:
    assert resolve_gpu(key).fp16_tflops == pytest.approx(sparse / 2, rel=0.01)


def test_l40s_uses_the_datasheet_dense_column() -> None:
    # The L40S datasheet prints both columns: 362.05 dense | 733 sparse (its rounding, not 2x).
    assert resolve_gpu("l40s").fp16_tflops == 362.05


# GeForce datasheets' FP16 tensor figures with FP16 accumulation (dense); PyTorch accumulates in
# FP32, which GeForce runs at half that rate, and that is the figure the catalog keeps.
GEFORCE_FP16_ACC_DENSE = {"rtx3090": 142, "rtx4090": 330.3, "rtx4090d": 294.2, "rtx5090": 419}


@pytest.mark.parametrize(("key", "fp16_acc"), sorted(GEFORCE_FP16_ACC_DENSE.items()))
def test_geforce_fp16_uses_fp32_accumulation(key: str, fp16_acc: float) -> None:
    g = resolve_gpu(key)
    assert g.segment == "consumer"
    assert g.fp16_tflops == pytest.approx(fp16_acc / 2, rel=0.01)


# (VRAM GB, bandwidth GB/s, TDP W, idle W) typed from seed 003's hardware profiles.
SEED003_PROFILES = {
    "rtx5090": (32, 1792, 575, 22),
    "rtx4090d": (24, 1008, 425, 17),
    "a800": (80, 2039, 400, 65),
}


@pytest.mark.parametrize("key", sorted(SEED003_PROFILES))
def test_seed_hardware_profiles_are_carried_over(key: str) -> None:
    g = resolve_gpu(key)
    assert (g.vram_gb, g.mem_bandwidth_gbs, g.tdp_w, g.idle_power_w) == SEED003_PROFILES[key]
    assert "seed:003 hardware_profiles" in g.source


@pytest.mark.parametrize(("key", "idle"), [("h100_sxm", 70), ("h200", 81)])
def test_measured_idle_figures_say_so(key: str, idle: float) -> None:
    g = resolve_gpu(key)
    assert g.idle_power_w == idle and "measured" in g.source


@pytest.mark.parametrize("g", catalog.gpus(), ids=lambda g: g.key)
def test_typical_idle_figures_are_labelled(g: GPU) -> None:
    if "measured" in g.source or "seed:003" in g.source:
        return
    assert "typical" in g.source and "typical" in g.notes.lower()


# ---------------------------------------------------------------------------------------------
# Models: shapes and parameter counts

NORMS_PER_LAYER = {"gemma2": 4, "olmo": 0}  # everyone else: input + post-attention RMSNorm
QKV_BIAS = {"qwen2"}
NO_FINAL_NORM_WEIGHTS = {"olmo"}  # OLMo's layer norms are non-parametric


def param_count(m: ModelArch, active: bool = False) -> int:
    """Parameters of a llama-style decoder from its shapes: embeddings, per-layer attention
    (q, k, v, o, plus q/k/v bias for qwen2), a 3-matrix gated MLP (times the experts, plus a
    router, for MoE), RMSNorm weights, the final norm and an lm_head unless tied."""
    h, q, kv = m.hidden, m.heads * m.head_dim, m.kv_heads * m.head_dim
    attn = h * q + 2 * h * kv + q * h
    if m.model_type in QKV_BIAS:
        attn += q + 2 * kv
    mlp = 3 * h * m.intermediate
    if m.num_experts:
        used = m.experts_per_token if active else m.num_experts
        mlp = used * mlp + h * m.num_experts  # experts plus the router
    norms = NORMS_PER_LAYER.get(m.model_type, 2) * h
    final = 0 if m.model_type in NO_FINAL_NORM_WEIGHTS else h
    embed = m.vocab * h
    head = 0 if m.tied_embeddings else m.vocab * h
    return embed + m.layers * (attn + mlp + norms) + final + head


# Architectures the llama-style formula does not describe (multimodal towers, latent attention,
# shared experts, Mamba layers, attention sinks and biases): their sizes are checked against the
# published figures instead (PUBLISHED_B).
NOT_BY_FORMULA = {"gemma3", "deepseek_v3", "llama4", "nemotron_h", "gpt_oss"}
FORMULA_MODELS = [m for m in catalog.models() if m.model_type not in NOT_BY_FORMULA]


def test_models_outside_the_formula_have_a_published_size() -> None:
    missing = [m.key for m in catalog.models() if m.model_type in NOT_BY_FORMULA and m.key not in PUBLISHED_B]
    assert not missing


@pytest.mark.parametrize("m", FORMULA_MODELS, ids=lambda m: m.key)
def test_params_b_matches_the_shapes(m: ModelArch) -> None:
    assert param_count(m) / 1e9 == pytest.approx(m.params_b, rel=0.03)
    assert param_count(m, active=True) / 1e9 == pytest.approx(m.active_params_b, rel=0.03)


def test_param_count_helper_on_a_hand_computed_toy() -> None:
    toy = ModelArch(key="toy", hub_id="x/toy", name="toy", model_type="qwen2", params_b=1, active_params_b=1,
                    layers=2, hidden=8, heads=4, kv_heads=2, head_dim=2, intermediate=16, vocab=10,
                    tied_embeddings=True, context_length=32, source="hand-made")
    # embed 80; per layer: q 64 + k,v 2*32 + o 64 + bias 8+4+4 = 208, mlp 384, norms 16 -> 608; final 8
    assert param_count(toy) == 80 + 2 * 608 + 8


# Sizes published on the model cards / Hub pages (billions), an independent check of the shapes.
PUBLISHED_B = {
    "qwen2.5-0.5b": 0.49, "qwen2.5-1.5b": 1.54, "qwen2.5-3b": 3.09, "qwen2.5-7b": 7.61, "qwen2.5-14b": 14.7,
    "qwen2.5-32b": 32.5, "qwen2.5-72b": 72.7, "phi-3-mini": 3.8, "yi-1.5-6b": 6.06, "mistral-7b-v0.2": 7.24,
    "tinyllama-1.1b": 1.1, "olmo-7b": 6.89, "llama-3.1-8b": 8.03, "llama-3.1-70b": 70.6,
    "mixtral-8x7b": 46.7, "gemma-2-9b": 9.24,
    "qwen2-0.5b": 0.49, "mistral-7b-v0.1": 7.24, "yi-1.5-9b": 8.83, "qwen3-8b": 8.2, "qwen3-32b": 32.8,
    "qwen3-30b-a3b": 30.5, "qwen3-coder-30b-a3b": 30.5, "qwen3-235b-a22b": 235, "qwen3-coder-480b-a35b": 480,
    "deepseek-v3.1": 671, "deepseek-r1-0528": 671, "gemma-3-12b": 12, "llama-3.1-405b": 405, "llama-4-scout": 109,
    "llama-4-maverick": 400, "nemotron-nano-9b-v2": 8.89, "nemotron-nano-12b-v2": 12.31, "gpt-oss-120b": 116.8,
    "gpt-oss-20b": 20.9,
}
# Published active parameters of the mixtures of experts (billions).
PUBLISHED_ACTIVE_B = {"qwen3-30b-a3b": 3.3, "qwen3-235b-a22b": 22, "qwen3-coder-480b-a35b": 35, "deepseek-v3.1": 37,
                      "llama-4-scout": 17, "llama-4-maverick": 17, "gpt-oss-120b": 5.1, "gpt-oss-20b": 3.6}


@pytest.mark.parametrize(("key", "size"), sorted(PUBLISHED_ACTIVE_B.items()))
def test_active_params_match_the_published_figure(key: str, size: float) -> None:
    assert resolve_model(key).active_params_b == pytest.approx(size, rel=0.03)


@pytest.mark.parametrize(("key", "size"), sorted(PUBLISHED_B.items()))
def test_params_b_matches_the_published_size(key: str, size: float) -> None:
    assert resolve_model(key).params_b == pytest.approx(size, rel=0.03)


def test_mixtral_is_a_mixture_of_experts() -> None:
    m = resolve_model("mixtral")
    assert (m.num_experts, m.experts_per_token) == (8, 2)
    assert m.params_b == pytest.approx(46.7, rel=0.01)
    assert m.active_params_b == pytest.approx(12.9, rel=0.01)


EXPLICIT_HEAD_DIM = {"gemma2", "gemma3", "qwen3", "qwen3_moe", "gpt_oss", "nemotron_h", "deepseek_v3"}


def test_kv_cache_of_hybrids_and_latent_attention() -> None:
    # A hybrid keeps a cache only on its attention layers; MLA caches one 576-wide latent per layer.
    nano = resolve_model("nemotron-nano-9b-v2")
    assert nano.kv_elems_per_token() == 4 * 2 * 8 * 128
    assert resolve_model("deepseek-v3.1").kv_elems_per_token() == 61 * 576
    llama = resolve_model("llama-3.1-8b")
    assert llama.kv_elems_per_token() == 32 * 2 * 8 * 128


@pytest.mark.parametrize("m", catalog.models(), ids=lambda m: m.key)
def test_model_shapes_are_plausible(m: ModelArch) -> None:
    assert m.heads % m.kv_heads == 0
    assert m.head_dim in {64, 80, 96, 128, 256}
    if m.model_type not in EXPLICIT_HEAD_DIM:  # these set head_dim explicitly, so heads*head_dim != hidden
        assert m.heads * m.head_dim == m.hidden, "head_dim should be hidden/heads"
    if m.num_experts is None:
        assert m.hidden < m.intermediate <= 8 * m.hidden
    else:  # intermediate is the per-expert width, often narrower than hidden
        assert m.hidden / 8 <= m.intermediate <= 8 * m.hidden
    assert (m.num_experts is None) == (m.experts_per_token is None)
    if m.num_experts is None:
        assert m.active_params_b == m.params_b
    else:
        assert m.experts_per_token < m.num_experts and m.active_params_b < m.params_b
    assert m.context_length >= 2048
    assert m.source.startswith(f"config.json of {m.hub_id} on the Hugging Face Hub")


def test_gqa_models_have_fewer_kv_heads() -> None:
    # Spot values from the configs: MHA for Phi-3-mini and OLMo, GQA for the rest.
    assert resolve_model("phi-3-mini").kv_heads == resolve_model("phi-3-mini").heads == 32
    assert resolve_model("olmo-7b").kv_heads == 32
    assert resolve_model("qwen2.5-7b").kv_heads == 4
    assert resolve_model("llama-3.1-8b").kv_heads == 8


# ---------------------------------------------------------------------------------------------
# The measurement data refer only to catalog entries


def _data_rows() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(DATA_DIR.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def test_every_gpu_key_in_the_data_is_in_the_catalog() -> None:
    rows = _data_rows()
    assert rows, "no shipped measurement data to check"
    used = {r["gpu"] for r in rows}
    assert used >= {"rtx5090", "rtx4090d", "a800", "rtx4090"}, "the seed GPUs should appear in the shipped data"
    missing = used - {g.key for g in catalog.gpus()}
    assert not missing, f"GPU keys used in measurements/data but not in gpus.csv: {sorted(missing)}"


def test_every_model_in_the_data_resolves_with_a_consistent_size() -> None:
    for r in _data_rows():
        m = resolve_model(r["model_id"])
        # Rows carry the seeds' rounded sizes ("7B" for 7.6B), so only a gross mismatch fails.
        assert float(r["params_b"]) == pytest.approx(m.params_b, rel=0.15), (r["id"], m.key)


# ---------------------------------------------------------------------------------------------
# Regions

SEED003_REGIONS = {  # key -> (price $/kWh or None, gCO2/kWh), typed from seed 003
    "us": (0.12, 390), "china": (0.085, 555), "eu": (0.22, 230), "france": (None, 56),
    "norway": (None, 8), "india": (None, 632), "autodl_china": (0.04, 555),
}


def test_required_regions_and_kinds() -> None:
    kinds = {r.key: r.kind for r in catalog.regions()}
    for k in ("us", "china", "eu", "france", "norway", "india", "germany", "uk"):
        assert kinds.get(k) == "grid", k
    for k in ("us_cloud", "autodl_china"):
        assert kinds.get(k) == "cloud", k


@pytest.mark.parametrize(("key", "expected"), sorted(SEED003_REGIONS.items()))
def test_seed_region_figures_are_carried_over(key: str, expected: tuple[float | None, float]) -> None:
    r = resolve_region(key)
    price, co2 = expected
    assert r.grid_gco2_kwh == co2 and "seed:003" in r.carbon_source
    if price is not None:
        assert r.price_usd_kwh == price and "seed:003" in r.price_source


def test_us_cloud_rate_is_the_seed_range_midpoint() -> None:
    r = resolve_region("us_cloud")
    assert r.price_usd_kwh == pytest.approx((0.03 + 0.06) / 2)


@pytest.mark.parametrize("r", catalog.regions(), ids=lambda r: r.key)
def test_region_figures_are_plausible(r: Region) -> None:
    assert 0.02 <= r.price_usd_kwh <= 0.6
    assert 0 < r.grid_gco2_kwh <= 1100
    if "seed:003" not in r.price_source:
        assert any(str(y) in r.price_source for y in range(2020, 2031)), "non-seed prices must name their year"
    if "seed:003" not in r.carbon_source:
        assert any(str(y) in r.carbon_source for y in range(2020, 2031)), "non-seed intensities must name their year"


# ---------------------------------------------------------------------------------------------
# Factors

EXPECTED_FACTORS = {
    "pue_cloud": 1.1, "pue_local": 1.0, "chinese_chars_per_token": 2.0, "english_chars_per_token": 4.0,
    "english_tokens_per_gb": 250e6, "requests_per_user_day": 5.0, "default_prompt_tokens": 512.0,
    "default_gen_tokens": 256.0, "default_batch_size": 1.0, "max_batch_size": 64.0,
}


@pytest.mark.parametrize(("key", "value"), sorted(EXPECTED_FACTORS.items()))
def test_seed_factors(key: str, value: float) -> None:
    assert catalog.factor(key) == value


def test_km_per_kg_follows_from_epa_400_g_per_mile() -> None:
    assert catalog.factor("km_driven_per_kgco2") == pytest.approx(1.609344 / 0.400, rel=1e-6)


def test_smartphone_charge_is_a_phone_sized_amount() -> None:
    assert 0.005 <= catalog.factor("smartphone_charge_kwh") <= 0.03


def test_factors_used_by_the_advisor_exist() -> None:
    for key in ("pue_cloud", "pue_local", "km_driven_per_kgco2", "smartphone_charge_kwh"):
        assert catalog.factor(key) > 0


@pytest.mark.parametrize("f", list(catalog.factors().values()), ids=lambda f: f.key)
def test_factor_rows_are_complete(f: Factor) -> None:
    assert math.isfinite(f.value) and f.value > 0
    assert f.unit and f.description


# ---------------------------------------------------------------------------------------------
# GPU prices


def test_price_gpus_are_catalog_keys() -> None:
    keys = {g.key for g in catalog.gpus()}
    assert {p.gpu for p in catalog.gpu_prices()} <= keys


def test_common_gpus_have_a_price() -> None:
    priced = {p.gpu for p in catalog.gpu_prices()}
    wanted = {"h100_sxm", "a100_80gb", "a100_40gb", "l40s", "a10g", "l4", "rtx4090", "rtx3090", "v100", "h200", "rtx5090"}
    assert wanted <= priced, f"no price for {sorted(wanted - priced)}"


@pytest.mark.parametrize("p", catalog.gpu_prices(), ids=lambda p: f"{p.gpu}-{p.provider}-{p.as_of}")
def test_price_rows_are_plausible(p: GPUPrice) -> None:
    assert 0.05 <= p.usd_per_hour <= 15
    assert dt.date(2024, 1, 1) <= p.as_of <= dt.date.today()
    assert p.provider.strip()


@pytest.mark.parametrize("p", catalog.gpu_purchase_prices(), ids=lambda p: p.gpu)
def test_purchase_prices_are_catalog_gpus_with_a_source(p: GPUPurchasePrice) -> None:
    assert p.gpu in {g.key for g in catalog.gpus()}
    assert 300 <= p.usd <= 100_000 and p.source.strip()
    rent = [r.usd_per_hour for r in catalog.gpu_prices() if r.gpu == p.gpu]
    if rent:  # buying costs months to years of renting, never hours
        assert 500 <= p.usd / min(rent) <= 50_000


def test_datacenter_flagships_cost_more_than_consumer_cards_per_hour() -> None:
    cheapest = {}
    for p in catalog.gpu_prices():
        cheapest[p.gpu] = min(cheapest.get(p.gpu, math.inf), p.usd_per_hour)
    assert cheapest["h100_sxm"] > cheapest["rtx4090"]
    assert cheapest["h200"] > cheapest["rtx3090"]
