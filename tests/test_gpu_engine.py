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
