"""The performance model and the memory fit: no estimate outside physics, for every catalog GPU,
model, format and batch size; configurations that do not fit are never ranked or recommended."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor import estimate as E
from advisor.estimate import calibrate, physics
from measurements import catalog, store

GPUS = [g.key for g in catalog.gpus()]
MODELS = [m.key for m in catalog.models()]
FORMATS = ["fp16", "bf16", "fp8", "int8_mixed", "int8_pure", "nf4", "fp32"]


def cfg(gpu: str, model: str, prec: str, bs: int, n: int = 1, prompt: int | None = None, gen: int | None = None) -> E.Config:
    m = catalog.resolve_model(model)
    return E.Config(gpu=gpu, model=m.key, params_b=m.active_params_b, precision=prec, batch_size=bs, gpu_count=n,
                    prompt_tokens=prompt, gen_tokens=gen)


def assert_physical(e: E.Estimate) -> None:
    g = catalog.resolve_gpu(e.config.gpu)
    n = e.config.gpu_count
    w = E.work_of(e.config)
    b = physics.bounds(w)
    if e.tier == "measured":
        return  # a measurement is what it is
    assert e.throughput_tok_s is not None and e.throughput_tok_s <= b.max_tok_s * (1 + 1e-9), e.config
    assert e.power_w is not None and g.idle_power_w * n * (1 - 1e-9) <= e.power_w <= g.tdp_w * n * (1 + 1e-9), e.config
    assert e.j_per_1k_tok >= b.min_j_per_1k * (1 - 1e-9), e.config
    # energy, power and throughput agree with each other
    assert e.j_per_1k_tok == pytest.approx(e.power_w * 1000 / e.throughput_tok_s, rel=1e-6)


@settings(max_examples=400, deadline=None)
@given(gpu=st.sampled_from(GPUS), model=st.sampled_from(MODELS), prec=st.sampled_from(FORMATS),
       bs=st.integers(min_value=1, max_value=256), n=st.sampled_from([1, 1, 1, 2, 4, 8]),
       prompt=st.sampled_from([None, 32, 128, 512, 2048]), gen=st.sampled_from([None, 16, 64, 256, 1024]))
def test_no_estimate_outside_physics(gpu, model, prec, bs, n, prompt, gen):
    e = E.estimate(cfg(gpu, model, prec, bs, n, prompt, gen))
    if e is None:
        return
    assert_physical(e)
    need = E.memory_need(e.config)
    assert e.fits == need.fits
    if not e.fits and e.min_gpu_count:
        assert E.memory_need(e.config.model_copy(update={"gpu_count": e.min_gpu_count})).fits


@pytest.mark.parametrize("gpu", GPUS)
def test_every_gpu_every_model_every_format_batch_1_to_256(gpu):
    """The exhaustive walk, on a grid of batch sizes (the hypothesis test samples between them)."""
    n = 0
    for model in MODELS:
        for prec in FORMATS:
            for bs in (1, 2, 8, 32, 64, 256):
                e = E.estimate(cfg(gpu, model, prec, bs))
                if e is not None:
                    assert_physical(e)
                    n += 1
    assert n >= len(MODELS) * 5 * 6  # every format the data covers is estimated everywhere


def test_decode_at_batch_1_moves_every_weight_once():
    """tokens/s <= bandwidth / weight bytes: Llama-3.1-8B FP16 on a T4 is bounded near 20 tok/s at 70 W."""
    e = E.estimate(cfg("t4", "llama-3.1-8b", "fp16", 1))
    assert e.throughput_tok_s <= 320e9 / 16.06e9 and e.power_w <= 70
    assert not e.fits and e.min_gpu_count == 2 and "nf4" in e.formats_that_fit


def test_the_70b_does_not_fit_where_it_cannot():
    for gpu, fits in (("l4", False), ("a100_80gb", False), ("h200", False), ("b200", True)):
        e = E.estimate(cfg(gpu, "llama-3.1-70b", "fp16", 1))
        assert e.fits is fits, gpu
    assert E.estimate(cfg("a100_80gb", "llama-3.1-70b", "nf4", 1)).fits
    assert E.estimate(cfg("l4", "llama-3.1-70b", "fp16", 1)).min_gpu_count == 8


def test_memory_model_matches_the_measured_peaks():
    """Weights + KV + activations + reserve against NVML's peak on every measured row that has it."""
    errs, weight_only = [], []
    for r in store.load_rows():
        if r.kind != "measured" or r.task != "inference" or not r.peak_mem_nvml_gb:
            continue
        m = catalog.model_by_hub_id(r.model_id)
        need = E.memory_need(E.Config(gpu=r.gpu, model=m.key, params_b=m.params_b, precision=r.precision,
                                      fp8_mode=r.fp8_mode, batch_size=r.batch_size, prompt_tokens=r.prompt_tokens,
                                      gen_tokens=r.gen_tokens))
        (weight_only if r.fp8_mode == "weight_only" else errs).append(need.per_gpu_gb / r.peak_mem_nvml_gb - 1)
    assert len(errs) >= 50
    # worst: the H200's dynamic FP8 Qwen2.5-3B rows of 2026-12-02, 21-22% under their NVML peak (20% before them)
    assert max(map(abs, errs)) < 0.23 and sorted(map(abs, errs))[len(errs) // 2] < 0.05
    # a known gap, not modelled yet: eager weight-only FP8 holds its dequantised fp32/bf16 copies while it
    # generates (the H200 rows of 2026-12-02 peak 1.4-5.5 GB above their dynamic twins), so the model
    # stays 30-50% under their NVML peak
    assert len(weight_only) == 8 and all(-0.5 < e < -0.3 for e in weight_only)


def test_shipped_calibration_is_the_fit_of_the_shipped_rows():
    params, report = calibrate.fit(E.points_from_rows(store.load_rows(include_local=False)))
    shipped = physics.shipped_params()
    assert set(params) == set(shipped)
    for k, v in params.items():
        assert shipped[k] == pytest.approx(v, rel=0.05), k
    assert report[("hf-eager", "*")]["j_median_pct"] < 15


def test_hf_eager_is_launch_bound_at_batch_1_on_hopper():
    """Why an H100 and an H200 measure alike at batch size 1: the framework overhead binds."""
    for gpu in ("h100_sxm", "h200"):
        w = physics.work_for(gpu, "qwen2.5-7b", 7.616, "fp16", 1, 128, 64)
        assert physics.predict(w, physics.shipped_params()).binding == "framework overhead"


def test_an_uncalibrated_framework_is_never_answered_from_another_frameworks_rows():
    e = E.estimate(cfg("h100_sxm", "qwen2.5-7b", "fp16", 8).model_copy(update={"framework": "sglang"}))
    assert e is None


def test_measured_rows_are_answered_as_measured():
    e = E.estimate(cfg("h200", "qwen2.5-7b", "fp16", 8))
    assert e.tier == "measured" and e.row_ids == ["h200-syn-qwen2.5-7b-fp16-bs8-p128-g64"]


def test_compare_never_ranks_a_gpu_that_cannot_hold_the_model_first():
    from advisor import api

    ans, _ = api.ask("compare llama-3.1-70b on a100_80gb, h100_sxm, h200 and l4 in fp16")
    ranking = ans.extra.get("ranking", [])
    assert ranking and ranking[0] != "L4"
    for t in ans.tables[:1]:
        for row in t.rows:
            label = str(row[0])
            assert "x " in label  # every GPU here needs a replica of several GPUs at FP16


@pytest.mark.parametrize("model,prec,bs", [("llama-3.1-70b", "fp16", 1), ("qwen2.5-7b", "fp16", 8),
                                           ("qwen2.5-7b", "nf4", 1), ("mistral-7b-v0.2", "int8_mixed", 1)])
def test_compare_over_every_catalog_gpu_stays_inside_physics(model, prec, bs):
    """`ecolobster compare` over all catalog GPUs: the first-ranked GPU (replica) holds the model, and
    no estimate shown has throughput above the bound or power above the limit x GPU count."""
    from advisor.api import answer_query
    from advisor.protocols import common as c
    from advisor.query import from_fields

    m = catalog.resolve_model(model)
    q = from_fields("compare", model_id=m.hub_id, quantization=prec, batch_size=bs, compare_gpus=GPUS)
    ans = answer_query(q)
    assert ans.extra["ranking"], ans.headline
    for g in GPUS:
        e = c.est_fitting(q, gpu=g)
        if e is None:
            continue
        assert_physical(e)
        label = c.replica_label(e, c.gpu_short(g))
        if label == ans.extra["ranking"][0]:
            assert e.fits, label
        if not e.fits:
            assert label not in ans.extra["ranking"]


def test_nf4_has_two_kernel_paths():
    """bitsandbytes' 4-bit GEMV serves one token: it reads each stored byte once (its traffic is the
    stored bytes, however slow it runs); from two tokens on, a 16-bit copy and a 16-bit matmul stream
    at FP16's bandwidth efficiency, and the copy's bytes count."""
    params = physics.shipped_params()
    fp16_eff = params[("hf-eager", "fp16", "eff_bw")]
    nf4_eff = params[("hf-eager", "nf4", "eff_bw")]
    one = physics.work_for("rtx4090d", "yi-1.5-6b", 6.061, "nf4", 1, 512, 256)
    eight = physics.work_for("rtx4090d", "yi-1.5-6b", 6.061, "nf4", 8, 512, 256)
    assert physics._kernel_path(one, params, 1, nf4_eff) == (nf4_eff, True)
    assert physics._kernel_path(eight, params, 8, nf4_eff) == (pytest.approx(fp16_eff), False)
    gemv = physics._phase(one, one.step_bytes(one.mid_ctx), 1.0, 0.0, nf4_eff, 0.5, fused=True)
    assert gemv.traffic == one.step_bytes(one.mid_ctx)
    assert gemv.t_mem == pytest.approx(one.step_bytes(one.mid_ctx) / (1008e9 * nf4_eff))
    # the copy path moves a 16-bit copy of every quantised weight, written and read: 32 bits per weight
    assert eight.dequant_bytes(8) == pytest.approx(eight.shape.linear_read(8) * 4)
    # a format without a dequantising path keeps one efficiency for every step
    fp16 = physics.work_for("rtx4090d", "yi-1.5-6b", 6.061, "fp16", 8, 512, 256)
    assert physics._kernel_path(fp16, params, 8, fp16_eff) == (fp16_eff, False)
