"""The engine on a real NVIDIA GPU (marked `gpu`; skipped where CUDA or NVML is missing).

Run on the device machine: `python -m pytest -q -m gpu tests/test_gpu_engine.py`.
"""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

TINY = {"layers": 2, "hidden": 256, "heads": 4, "kv_heads": 2, "intermediate": 512, "vocab": 4096}


@pytest.fixture(scope="module")
def monitor():
    from engine.power import EnergyMonitor, NvmlUnavailable

    try:
        mon = EnergyMonitor.open(0.1)
    except NvmlUnavailable as err:
        pytest.skip(str(err))
    yield mon
    mon.close()


def _busy(seconds: float) -> None:
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(20):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()


def test_reader_sees_gpu_with_counter_and_sane_power(monitor):
    r = monitor.reader
    assert r.names() and all("NVIDIA" in n or "H100" in n or "H200" in n for n in r.names())
    for g in r.gpu_indices():
        assert r.has_energy_counter(g)
        reading = r.read(g)
        assert 10 < reading.power_w < 1500
        assert reading.mem_used_mb is not None and reading.mem_used_mb > 0


def test_sampler_runs_at_about_10_hz(monitor):
    n0 = len(monitor.sampler.samples())
    time.sleep(2.0)
    per_gpu = (len(monitor.sampler.samples()) - n0) / len(monitor.reader.gpu_indices())
    assert 15 <= per_gpu <= 25


def test_window_counter_and_sampler_agree_under_load(monitor):
    _busy(0.5)
    monitor.begin_window("load")
    _busy(3.0)
    w = monitor.end_window("load")
    assert w.method == "nvml_counter"
    assert w.energy_j > 0 and w.power_w > 50
    gap = abs(w.sampler_total_j - w.counter_total_j) / w.counter_total_j
    assert gap < 0.10, f"sampler {w.sampler_total_j:.1f} J vs counter {w.counter_total_j:.1f} J"


def test_idle_is_below_load(monitor):
    torch.cuda.synchronize()
    idle = monitor.measure_idle(1.0)
    monitor.begin_window("busy")
    _busy(1.5)
    busy = monitor.end_window("busy")
    assert 10 < idle.power_w < busy.power_w


def test_bnb_precisions_load_real_quantised_layers():
    import bitsandbytes as bnb

    from engine.models import load_model

    nf4 = load_model("qwen2.5-0.5b", "nf4", "cuda", overrides=TINY, double_quant=True)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in nf4.model.modules())
    for prec, thr in (("int8_mixed", 6.0), ("int8_pure", 0.0)):
        lm = load_model("qwen2.5-0.5b", prec, "cuda", overrides=TINY)
        layers = [m for m in lm.model.modules() if isinstance(m, bnb.nn.Linear8bitLt)]
        assert layers and all(m.state.threshold == thr for m in layers)


@pytest.mark.parametrize("precision", ["nf4", "int8_mixed", "int8_pure"])
def test_in_memory_quantisation_matches_the_checkpoint_path(precision, tmp_path, monkeypatch):
    import bitsandbytes as bnb

    from engine.models import load_model

    monkeypatch.setenv("ECOLOBSTER_SCRATCH", str(tmp_path))
    mem = load_model("qwen2.5-0.5b", precision, "cuda", overrides=TINY, double_quant=True, quant_build="memory")
    ckpt = load_model("qwen2.5-0.5b", precision, "cuda", overrides=TINY, double_quant=True, quant_build="checkpoint")
    kind = bnb.nn.Linear4bit if precision == "nf4" else bnb.nn.Linear8bitLt

    def layers(m):
        return {n: type(x).__name__ for n, x in m.named_modules() if isinstance(x, torch.nn.Linear)}

    assert layers(mem.model) == layers(ckpt.model)
    assert sum(isinstance(x, kind) for x in mem.model.modules()) == 2 * 7
    assert mem.params_b == pytest.approx(ckpt.params_b)
    assert "quantised in memory" in " ".join(mem.notes)
    ids = torch.randint(100, 4096, (2, 16), device="cuda")
    with torch.inference_mode():
        a, b = mem.model(ids).logits.float(), ckpt.model(ids).logits.float()
    assert torch.allclose(a, b, atol=1e-2, rtol=1e-2)  # same seed, same weights, same quantisation
    gen = mem.model.generate(input_ids=ids, max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=0)
    assert gen.shape == (2, 20)


def test_static_cache_compiles_the_decode_step_outside_the_window(monitor, tmp_path):
    from engine.inference import InferenceConfig, Sweep
    from engine.protocol import ProtocolSettings
    from engine.rows import inference_row

    s = ProtocolSettings(warmup=2, runs=3, pause_s=0, idle_s=0, max_reruns=0, min_window_s=1.0)
    cfgs = [InferenceConfig(model="qwen2.5-0.5b", precision="bf16", batch_size=1, prompt_tokens=64, gen_tokens=64,
                            overrides=TINY, cache=c) for c in ("dynamic", "static")]
    res = Sweep(cfgs, s, "cuda", tmp_path / "r.jsonl", tmp_path / "tr", monitor=monitor, interleave=True).run()
    eager, static = res
    assert [r.status for r in res] == ["ok", "ok"], [r.error for r in res]
    assert static.decode_compiled is True and static.first_call_overhead_s > 1.0  # compilation in the warm-up
    assert all(r.elapsed_s >= 0.9 for r in static.runs if r.phase == "measure") and static.repeats >= 1
    assert static.throughput_tok_s > eager.throughput_tok_s  # CUDA graphs remove the launch overhead
    row = inference_row(static, "gpu test")
    assert row.framework == "hf-static-cache" and "compiled by transformers" in row.notes


def test_serving_load_test_measures_the_steady_state_energy(monitor, tmp_path):
    from engine.protocol import ProtocolSettings
    from engine.provenance import capture
    from engine.rows import serve_row
    from engine.serve import LengthDist, ServeConfig, ServeSweep

    s = ProtocolSettings(warmup=1, runs=2, pause_s=0, idle_s=0.5, max_reruns=0)
    cfg = ServeConfig(model="qwen2.5-0.5b", precision="bf16", arrival="concurrency", concurrency=16,
                      num_requests=96, prompt=LengthDist(kind="uniform", a=32, b=128), output=LengthDist(a=64),
                      overrides=TINY)
    prov = capture("cuda", monitor.reader.names(), monitor.reader.driver_version(), s.describe())
    [r] = ServeSweep([cfg], s, "cuda", tmp_path / "s.jsonl", tmp_path / "tr", monitor=monitor, provenance=prov).run()
    assert r.status == "ok", r.error
    assert r.energy_method == "nvml_counter_trace" and r.energy_j_per_1k_tok > 0 and r.energy_j_per_request > 0
    assert r.reached_concurrency == 16 and 8 < r.mean_batch_size <= 16
    assert (tmp_path / "tr" / r.trace_file).exists() and (tmp_path / "tr" / r.requests_file).exists()
    row = serve_row(r, "gpu test")
    assert row.framework == "hf-continuous-batching" and row.ttft_p50_ms <= row.ttft_p99_ms


def test_inference_sweep_measures_energy_records_oom_and_resumes(monitor, tmp_path):
    from engine.inference import InferenceConfig, Sweep
    from engine.protocol import ProtocolSettings
    from engine.provenance import capture
    from engine.rows import inference_row

    s = ProtocolSettings(warmup=1, runs=3, pause_s=0, idle_s=0.5, max_reruns=0)
    huge = dict(TINY, intermediate=2_000_000)  # MLP activations of ~TB at this batch: a real OOM
    cfgs = [InferenceConfig(model="qwen2.5-0.5b", precision="fp16", batch_size=b, prompt_tokens=64, gen_tokens=64,
                            overrides=TINY) for b in (1, 4)]
    cfgs.insert(1, InferenceConfig(model="qwen2.5-0.5b", precision="fp16", batch_size=256, prompt_tokens=4096,
                                   gen_tokens=2, overrides=huge))
    prov = capture("cuda", monitor.reader.names(), monitor.reader.driver_version(), s.describe())
    out = tmp_path / "r.jsonl"
    res = Sweep(cfgs, s, "cuda", out, tmp_path / "tr", monitor=monitor, provenance=prov).run()
    by_bs = {r.config.batch_size: r for r in res}
    assert {b: r.status for b, r in by_bs.items()} == {1: "ok", 4: "ok", 256: "oom"}
    assert "memory" in by_bs[256].error.lower()
    ok = by_bs[1]
    assert ok.energy_method == "nvml_counter" and ok.energy_j_per_1k_tok > 0
    assert all(r.aligned for r in ok.runs) and ok.prefill_energy_j > 0
    assert ok.prefill_ms > 0 and ok.decode_tok_s > 0 and ok.idle_power_w > 0
    assert ok.peak_mem_alloc_gb > 0 and ok.peak_mem_nvml_gb > ok.peak_mem_alloc_gb
    assert (tmp_path / "tr" / ok.trace_file).exists()
    row = inference_row(ok, "gpu test")
    assert row.gpu == prov.gpu_key or row.gpu.startswith("nvidia")
    again = Sweep(cfgs, s, "cuda", out, monitor=monitor, provenance=prov).run()
    assert again == []  # all done (ok or oom): nothing re-measured


def test_finetune_lora_and_qlora_with_checkpointing(monitor, tmp_path):
    from engine.finetune import FinetuneConfig, FinetuneSweep
    from engine.protocol import ProtocolSettings
    from engine.rows import finetune_row

    s = ProtocolSettings(pause_s=0, idle_s=0.5, max_reruns=0)
    cfgs = [FinetuneConfig(model="qwen2.5-0.5b", method=m, rank=8, seq_len=256, steps=3, warmup_steps=1,
                           grad_checkpointing=gc, overrides=TINY, save_every=2 if m == "qlora" else None)
            for m in ("lora", "qlora") for gc in (False, True)]
    res = FinetuneSweep(cfgs, s, "cuda", tmp_path / "ft.jsonl", tmp_path / "tr", monitor=monitor).run()
    assert [r.status for r in res] == ["ok"] * 4, [r.error for r in res]
    for r in res:
        assert r.gc_verified is True
        assert r.energy_j_per_step > 0 and r.peak_mem_alloc_gb > 0 and r.trainable_params > 0
        assert r.loss_last == r.loss_last  # not NaN
        finetune_row(r, "gpu test")
    # Checkpointing trades memory for time: less peak activation memory with it on.
    lora_off, lora_on = res[0], res[1]
    assert lora_on.peak_mem_alloc_gb <= lora_off.peak_mem_alloc_gb
    assert any(st.saved for st in res[2].steps)


@pytest.mark.parametrize("mode, config", [("weight_only", "Float8WeightOnlyConfig"),
                                          ("dynamic", "Float8DynamicActivationFloat8WeightConfig")])
def test_fp8_runs_either_torchao_scheme_and_the_row_says_which(monitor, tmp_path, mode, config):
    """The two FP8 implementations cost very differently (weight-only dequantises every call; dynamic
    runs FP8 matmuls): the measured row records which one ran, and its notes name the torchao config."""
    pytest.importorskip("torchao")
    from engine.inference import InferenceConfig, Sweep
    from engine.protocol import ProtocolSettings
    from engine.provenance import capture
    from engine.rows import inference_row

    s = ProtocolSettings(warmup=1, runs=2, pause_s=0, idle_s=0.5, max_reruns=0)
    cfg = InferenceConfig(model="qwen2.5-0.5b", precision="fp8", fp8_mode=mode, batch_size=2, prompt_tokens=64,
                          gen_tokens=32, overrides=TINY)
    prov = capture("cuda", monitor.reader.names(), monitor.reader.driver_version(), s.describe())
    res = Sweep([cfg], s, "cuda", tmp_path / "r.jsonl", tmp_path / "tr", monitor=monitor, provenance=prov).run()
    assert [r.status for r in res] == ["ok"], [r.error for r in res]
    row = inference_row(res[0], "gpu test")
    assert row.precision == "fp8" and row.fp8_mode == mode and row.fp8_implementation == mode
    assert config in row.notes and row.torchao_version
    assert row.energy_j_per_1k_tok and row.energy_j_per_1k_tok > 0
