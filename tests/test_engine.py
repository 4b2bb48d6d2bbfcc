"""The measurement engine without a GPU: energy integration and statistics replayed on a real H100
trace, window policies, NVML missing, OOM, resume, and `ecolobster bench --device cpu` end to end
into the store and back out through the advisor."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.power import (
    EnergyMonitor,
    NvmlReader,
    NvmlUnavailable,
    PowerSampler,
    Reading,
    ReplayClock,
    ReplayReader,
    TraceSample,
    integrate,
    read_trace_csv,
)
from engine.protocol import (
    ProtocolSettings,
    RunMeasurement,
    paired_ratio,
    run_protocol,
    summarize,
    t_quantile,
    t_sf_two_sided,
    welch_t_test,
)

DATA = Path(__file__).parent / "data"
TRACE = DATA / "h100_trace_qwen2.5-7b_fp16_bs1.csv"
WINDOWS = json.loads((DATA / "h100_trace_qwen2.5-7b_fp16_bs1.json").read_text())
TINY = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 512}
QUICK = ProtocolSettings(warmup=1, runs=2, pause_s=0, idle_s=0, max_reruns=0)


# --- the recorded H100 trace, replayed through the engine's own code path ----------------------

def _replay(trace: list, windows: list[dict[str, Any]]) -> tuple[list, EnergyMonitor]:
    """Tick the sampler at every recorded sample time and open/close the windows at their
    recorded times, in time order, as the live run did."""
    clock = ReplayClock(trace[0].t_s)
    reader = ReplayReader(trace, clock, ["NVIDIA H100 80GB HBM3"])
    sampler = PowerSampler(reader, 0.1, clock=clock)
    mon = EnergyMonitor(reader, sampler, sync=lambda: None, clock=clock, edge_ticks=False)
    events = [(t, 1, "tick", None) for t in reader.times()]
    for i, w in enumerate(windows):
        events += [(w["t0"], 0, "begin", i), (w["t1"], 2, "end", i)]
    done = []
    for t, _, kind, i in sorted(events, key=lambda e: (e[0], e[1])):
        clock.t = t
        if kind == "tick":
            sampler.tick()
        elif kind == "begin":
            mon.begin_window(f"run{i}", sync=False)
    # Close the windows after every sample is in, so the integral sees the samples either side.
    for i, w in enumerate(windows):
        clock.t = w["t1"]
        done.append(mon.end_window(f"run{i}", sync=False))
    return done, mon


def test_replayed_sampler_integral_matches_the_live_run_on_every_window():
    trace = read_trace_csv(TRACE)
    assert len(trace) >= 150 and trace[-1].t_s - trace[0].t_s > 15
    wins, _ = _replay(trace, WINDOWS["runs"])
    for w, rec in zip(wins, WINDOWS["runs"], strict=True):
        assert w.sampler_total_j == pytest.approx(rec["sampler_j"], rel=0.01)
        # Replayed, the counter is only known at the 10 Hz samples (its own 100 ms steps), while
        # the live run interpolated it to the exact edges: within one step of power either side.
        assert w.counter_total_j == pytest.approx(rec["counter_j"], rel=0.08)
        assert w.method == "nvml_counter"


def test_whole_trace_sampler_integral_agrees_with_the_hardware_counter():
    trace = read_trace_csv(TRACE)
    t = [s.t_s for s in trace]
    p = [s.reading.power_w for s in trace]
    counter_j = (trace[-1].reading.energy_mj - trace[0].reading.energy_mj) / 1000
    assert counter_j > 2000  # 16.6 s at 120-180 W
    assert integrate(t, p, t[0], t[-1]) == pytest.approx(counter_j, rel=0.01)


def test_statistics_on_the_recorded_runs_reproduce_the_row():
    rec = WINDOWS["recorded"]
    s = summarize([r["counter_j"] for r in WINDOWS["runs"]])
    assert s.n == 3
    assert s.mean == pytest.approx(rec["energy_per_run_j"], rel=1e-9)
    assert s.ci95 * 1000 / WINDOWS["tokens_per_run"] == pytest.approx(rec["energy_ci95"], rel=1e-9)
    assert s.mean * 1000 / WINDOWS["tokens_per_run"] == pytest.approx(rec["energy_j_per_1k_tok"], rel=1e-9)
    # The half-width is t(0.975, 2) = 4.303 standard errors.
    assert s.ci95 == pytest.approx(4.302653 * s.std / math.sqrt(3), rel=1e-6)


def test_replayed_idle_window_gives_the_recorded_idle_power():
    trace = read_trace_csv(TRACE)
    start = trace[0].t_s
    first_run = WINDOWS["runs"][0]["t0"]
    # The trace opens with the idle baseline: 1 s before warm-up began.
    wins, _ = _replay(trace, [{"t0": start + 0.05, "t1": start + 0.95}])
    assert first_run > 1.0
    assert wins[0].sampler_total_j / wins[0].elapsed_s == pytest.approx(WINDOWS["recorded"]["idle_power_w"], rel=0.03)


# --- integration, windows, statistics ----------------------------------------------------------

def test_integrate_is_exact_for_piecewise_linear_power_and_interpolates_edges():
    t, p = [0.0, 1.0, 2.0, 3.0], [100.0, 300.0, 300.0, 100.0]
    assert integrate(t, p, 0.0, 3.0) == pytest.approx(200 + 300 + 200)
    assert integrate(t, p, 0.5, 1.5) == pytest.approx(0.5 * (200 + 300) / 2 + 0.5 * 300)
    assert integrate(t, p, -1.0, 0.0) == pytest.approx(100.0)  # outside the span: held value
    with pytest.raises(ValueError, match="ends before"):
        integrate(t, p, 2.0, 1.0)


class _SteppedCounter:
    """A GPU whose energy counter steps every 100 ms (as the H100's does) on a fake clock."""

    def __init__(self, clock: Any):
        self.clock, self.E, self.last, self.step_t, self.step_v, self.power = clock, 0.0, clock.t, clock.t, 0.0, 100.0

    def _adv(self) -> None:
        t = self.clock.t
        self.E += self.power * (t - self.last)
        self.last = t
        if t - self.step_t >= 0.1:
            self.step_t = t - ((t - self.step_t) % 0.1)
            self.step_v = self.E

    def gpu_indices(self) -> list[int]:
        return [0]

    def names(self) -> list[str]:
        return ["NVIDIA H100 80GB HBM3"]

    def has_energy_counter(self, gpu: int) -> bool:
        return True

    def energy_mj(self, gpu: int) -> float:
        self._adv()
        return self.step_v * 1000

    def power_w(self, gpu: int) -> float:
        self._adv()
        return self.power

    def read(self, gpu: int) -> Reading:
        self._adv()
        return Reading(power_w=self.power, energy_mj=self.step_v * 1000)


class _TickingClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        self.t += 0.0003  # every reading takes a little time
        return self.t


def _window_errors(align: bool, monkeypatch) -> list[float]:
    clock = _TickingClock()
    gpu = _SteppedCounter(clock)
    monkeypatch.setattr("engine.power.time.sleep", lambda s: setattr(clock, "t", clock.t + s))
    mon = EnergyMonitor(gpu, None, sync=lambda: None, clock=clock, align_counter=align)
    errs = []
    for k in range(12):
        clock.t += 0.037 * k
        mon.begin_window("w")
        gpu._adv()
        gpu.power = 300.0
        clock.t += 1.3 + 0.011 * k
        gpu._adv()
        gpu.power = 100.0
        w = mon.end_window("w")
        errs.append(w.energy_j / (300.0 * w.elapsed_s) - 1)
    return errs


def test_aligning_windows_to_counter_steps_removes_the_step_error(monkeypatch):
    aligned = _window_errors(True, monkeypatch)
    stepped = _window_errors(False, monkeypatch)
    assert max(abs(e) for e in aligned) < 0.002
    assert max(abs(e) for e in stepped) > 0.004  # what alignment fixes


def test_short_windows_fall_back_from_the_counter_and_cpu_windows_have_no_energy():
    clock = ReplayClock(0.0)
    trace = [TraceSample(t, 0, Reading(power_w=200.0, energy_mj=1000.0 + 20000 * t)) for t in (0.0, 0.1, 0.2, 0.3)]
    reader = ReplayReader(trace, clock)
    sampler = PowerSampler(reader, 0.1, clock=clock)
    for t in (0.0, 0.1, 0.2, 0.3):
        clock.t = t
        sampler.tick()
    mon = EnergyMonitor(reader, sampler, sync=lambda: None, clock=clock, min_counter_window_s=0.1, edge_ticks=False)
    clock.t = 0.12
    mon.begin_window("short")
    clock.t = 0.17
    w = mon.end_window("short")
    assert w.method == "power_sampler" and w.energy_j == pytest.approx(200.0 * 0.05)
    cpu = EnergyMonitor.time_only()
    cpu.begin_window("x")
    w2 = cpu.end_window("x")
    assert w2.energy_j is None and w2.method == "unavailable"
    with pytest.raises(ValueError, match="never begun"):
        cpu.end_window("nope")


def test_t_quantiles_and_welch_match_tables_and_hand_computation():
    assert t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
    assert t_quantile(0.975, 9) == pytest.approx(2.26216, abs=1e-5)
    assert t_quantile(0.975, 30) == pytest.approx(2.04227, abs=1e-5)
    assert t_quantile(0.025, 9) == pytest.approx(-2.26216, abs=1e-5)
    assert t_sf_two_sided(2.262157, 9) == pytest.approx(0.05, abs=1e-6)
    w = welch_t_test([1, 2, 3, 4], [2, 3, 4, 5, 6])
    # var 5/3 and 5/2: se^2 = 5/12 + 1/2; t = -1.5 / sqrt(11/12); Welch-Satterthwaite df.
    assert w.t == pytest.approx(-1.5 / math.sqrt(11 / 12))
    assert w.df == pytest.approx((11 / 12) ** 2 / ((5 / 12) ** 2 / 3 + 0.5 ** 2 / 4))
    assert 0.1 < w.p_value < 0.2 and w.rel_diff == pytest.approx(-0.375)
    assert "lower" in w.sentence("nf4", "fp16")
    with pytest.raises(ValueError, match="at least 2"):
        welch_t_test([1.0], [1.0, 2.0])


def test_paired_ratio_cancels_drift_and_brackets_the_true_overhead():
    import random

    rng = random.Random(7)
    # A slow drift of +-30% (what pairing is for) and 1% noise; the "on" arm is truly 2% slower.
    drift = [1.0 + 0.3 * math.sin(i / 3) for i in range(40)]
    off = [d * (1 + rng.gauss(0, 0.01)) for d in drift]
    on = [d * 1.02 * (1 + rng.gauss(0, 0.01)) for d in drift]
    r = paired_ratio(on, off)
    assert r.n == 40 and r.ci_low < 1.02 < r.ci_high and r.ci_high - r.ci_low < 0.02
    assert abs(r.median - 1.02) < 0.01
    # Welch on the same numbers cannot see it: the drift swamps a 2% difference.
    assert welch_t_test(on, off).p_value > 0.5
    assert paired_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]).as_dict() == {"n": 3, "median": 2.0, "ci_low": 2.0,
                                                                       "ci_high": 2.0}
    with pytest.raises(ValueError, match="equal-length"):
        paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([1.0, 2.0], [1.0, 0.0])


def _benchmark(name: str) -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_gpu_csvs_are_what_their_raw_archives_convert_to(capsys):
    rows = _benchmark("engine_rows")
    assert rows.main([]) == 0
    out = capsys.readouterr().out
    assert "h100_inference.csv: 27 rows, matches" in out and "h200_inference.csv: 66 rows, matches" in out
    assert "h200_finetune.csv: 68 rows, matches" in out
    assert "DIFFERS" not in out


def test_each_h200_finetune_row_names_the_session_and_command_that_measured_it():
    """Three sessions of 2026-12-02 measured the H200 fine-tuning rows: `ecolobster bench --finetune`
    (12 rows, micro-batch 1, 2 and 4 at 512 tokens), `gpu_session.sh finetune` (31 rows, micro-batch
    2 and 4) and `ft_remeasure.sh` (25 rows of 20 steps); the record's start time decides which one a row names."""
    from measurements.store import load_rows

    rows = [r for r in load_rows(include_local=False) if r.gpu == "h200" and r.task == "finetune"]
    late = [r for r in rows if "gpu_session.sh finetune" in r.source]
    early = [r for r in rows if "ecolobster bench --finetune, micro-batch 1, 2 and 4;" in r.source]
    redo = [r for r in rows if "ft_remeasure.sh" in r.source]
    assert (len(early), len(late), len(redo), len(rows)) == (12, 31, 25, 68)
    assert all(r.id.endswith("-n20") for r in redo) and {r.batch_size for r in redo} == {1, 2, 4}
    assert {r.batch_size for r in late} == {2, 4} and {r.seq_len for r in late} == {512, 2048}
    assert {r.grad_checkpointing for r in late} == {True, False}
    assert all(r.seq_len == 512 and not r.grad_checkpointing for r in early)


def test_the_h200_fp8_rows_hold_both_torchao_schemes_and_name_their_session():
    """The 2026-12-02 FP8 session (gpu_session.sh fp8) measured weight-only for the four Qwen2.5
    sizes and dynamic for 1.5B and 3B; with the first session's dynamic 0.5B and 7B rows, both
    schemes cover every size at batch 1 and 8 on one GPU."""
    from measurements.store import load_rows

    rows = [r for r in load_rows(include_local=False) if r.gpu == "h200" and r.precision == "fp8"]
    wo = [r for r in rows if "Float8WeightOnlyConfig" in r.notes]
    dyn = [r for r in rows if "Float8DynamicActivationFloat8WeightConfig" in r.notes]
    assert (len(wo), len(dyn), len(rows)) == (8, 8, 16)
    assert all("gpu_session.sh fp8" in r.source for r in wo)
    assert {(r.model_id, r.batch_size) for r in wo} == {(r.model_id, r.batch_size) for r in dyn}
    # weight-only dequantises every weight to bf16 each step: the GPU works (far above the ~125 W
    # idle), while the dynamic path's per-step activation quantisation leaves it waiting on the host
    seven = {("wo" if r in wo else "dyn"): r for r in rows if r.model_id == "Qwen/Qwen2.5-7B" and r.batch_size == 1}
    assert seven["wo"].power_w > 2 * seven["dyn"].power_w


def test_h200_session_order_runs_the_missing_groups_first_and_keeps_every_configuration():
    ds = _benchmark("engine_dataset")
    grid, h200 = ds.inference_configs(), ds.inference_configs(order="h200")
    assert sorted(c.key() for c in grid) == sorted(c.key() for c in h200) and len(h200) == 54
    groups: list[tuple[str, str]] = []
    for c in h200:
        if (c.model, c.precision) not in groups:
            groups.append((c.model, c.precision))
    assert groups[:len(ds.H200_ORDER)] == list(ds.H200_ORDER)
    assert [c.batch_size for c in h200[:7]] == [1, 8, 2, 4, 16, 32, 64]  # 7B fp16: grid pair, then the sweep


def test_protocol_reruns_until_gates_pass_and_flags_when_they_never_do():
    noisy = iter([100, 50, 150, 100, 101, 100, 99])  # first set fails the 2% gate, second passes

    def once(i: int) -> RunMeasurement:
        return RunMeasurement(float(next(noisy)) if i >= 0 else 1.0, 1.0, 200.0)

    s = ProtocolSettings(warmup=1, runs=3, pause_s=0, idle_s=0, max_reruns=2)
    r = run_protocol(once, s)
    assert r.attempts == 2 and not r.gate_failed and r.throughput.mean == pytest.approx(301 / 3)
    flip = iter([1.0, 100.0, 50.0] * 10)

    def bad(i: int) -> RunMeasurement:
        return RunMeasurement(next(flip), 1.0, 200.0)

    r2 = run_protocol(bad, s.model_copy(update={"warmup": 0, "max_reruns": 1}))
    assert r2.attempts == 2 and r2.gate_failed and "throughput CV" in r2.gate_notes[-1]


# --- NVML missing, OOM, resume -----------------------------------------------------------------

def test_nvml_missing_gives_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(NvmlUnavailable, match="--device cpu"):
        NvmlReader()


def test_bench_without_gpu_says_so_and_the_advisor_keeps_working(capsys):
    from advisor.cli import main

    rc = main(["bench", "--model", "qwen2.5-0.5b", "--synthetic", "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == 2 and "--device cpu" in err and "no CUDA GPU" in err
    assert main(["data", "list", "--gpu", "h100", "--format", "json"]) == 0
    assert "h100_sxm" in capsys.readouterr().out


def test_bench_rejects_bad_input_with_what_is_accepted(capsys):
    from advisor.cli import main

    assert main(["bench", "--model", "qwen2.5-0.5b", "--synthetic", "--precision", "int8", "--device", "cpu"]) == 2
    assert "int8_mixed" in capsys.readouterr().err
    assert main(["bench", "--model", "qwen9", "--synthetic", "--device", "cpu"]) == 2
    assert "Unknown model 'qwen9'" in capsys.readouterr().err
    assert main(["bench", "--model", "qwen2.5-0.5b", "--synthetic", "--precision", "nf4", "--device", "cpu"]) == 2
    assert "CUDA" in capsys.readouterr().err


class _FakeLM:
    def __init__(self, model: Any):
        self.model, self.model_id, self.arch_key, self.params_b = model, "Qwen/Qwen2.5-0.5B", "qwen2.5-0.5b", 0.1
        self.weights, self.load_s, self.notes, self.precision, self.device = "synthetic", 0.0, [], "fp32", "cpu"


def _tiny_loader(fail_batch: int | None = None, interrupt_on: int | None = None, calls: list | None = None):
    import torch

    from engine.models import load_model

    def loader(model: str, precision: str, device: str, **kw: Any) -> Any:
        lm = load_model(model, precision, device, overrides=TINY)
        real = lm.model.generate

        def generate(*a: Any, **k: Any) -> Any:
            bs = k["input_ids"].shape[0]
            if calls is not None:
                calls.append(bs)
            if bs == fail_batch:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
            if bs == interrupt_on:
                raise KeyboardInterrupt
            return real(*a, **k)

        lm.model.generate = generate
        return lm

    return loader


def _configs(batches: list[int]) -> list:
    from engine.inference import InferenceConfig

    return [InferenceConfig(model="qwen2.5-0.5b", precision="fp32", batch_size=b, prompt_tokens=8, gen_tokens=4,
                            overrides=TINY) for b in batches]


def test_oom_is_recorded_and_the_sweep_goes_on(tmp_path):
    from engine.inference import Sweep

    out = tmp_path / "r.jsonl"
    res = Sweep(_configs([1, 8, 2]), QUICK, "cpu", out, loader=_tiny_loader(fail_batch=8)).run()
    assert [(r.config.batch_size, r.status) for r in res] == [(1, "ok"), (8, "oom"), (2, "ok")]
    assert "out of memory" in res[1].error
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["status"] for x in lines] == ["ok", "oom", "ok"]


def test_oom_at_load_marks_the_whole_group(tmp_path):
    import torch

    from engine.inference import Sweep

    def loader(*a: Any, **k: Any) -> Any:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory while loading")

    res = Sweep(_configs([1, 2]), QUICK, "cpu", tmp_path / "r.jsonl", loader=loader).run()
    assert [r.status for r in res] == ["oom", "oom"] and res[0].error.startswith("load:")


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    from engine.inference import Sweep

    out = tmp_path / "r.jsonl"
    calls: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        Sweep(_configs([1, 2, 4]), QUICK, "cpu", out, loader=_tiny_loader(interrupt_on=2, calls=calls)).run()
    assert [json.loads(x)["config"]["batch_size"] for x in out.read_text().splitlines()] == [1]
    with out.open("a") as fh:
        fh.write('{"key": "torn')  # a writer killed mid-line
    calls.clear()
    res = Sweep(_configs([1, 2, 4]), QUICK, "cpu", out, loader=_tiny_loader(calls=calls)).run()
    assert [r.config.batch_size for r in res] == [2, 4] and 1 not in calls
    keys = [json.loads(x)["config"]["batch_size"] for x in out.read_text().splitlines() if x.startswith('{"key": "syn')]
    assert sorted(keys) == [1, 2, 4]


# --- end to end --------------------------------------------------------------------------------

def test_cli_bench_on_cpu_into_the_store_and_back(capsys, tmp_path):
    from advisor.cli import main
    from measurements.store import load_rows

    ov = [x for k, v in TINY.items() for x in ("--arch-override", f"{k}={v}")]
    out = tmp_path / "bench.jsonl"
    rc = main(["bench", "--model", "Qwen2.5-0.5B", "--synthetic", *ov, "--precision", "fp32", "--batch-size", "1", "2",
               "--prompt-tokens", "8", "--gen-tokens", "4", "--runs", "2", "--warmup", "1", "--pause", "0",
               "--device", "cpu", "--no-carbon", "--out", str(out), "--format", "json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stored_rows"] == 2 and len(report["row_ids"]) == 2
    rows = {r.id: r for r in load_rows() if r.id in report["row_ids"]}
    assert len(rows) == 2
    for r in rows.values():
        assert r.id.startswith("local-") and r.kind == "measured" and r.gpu == "cpu"
        assert "energy unavailable" in r.notes and r.energy_j_per_1k_tok is None
        assert r.throughput_tok_s > 0 and r.prefill_ms > 0 and r.weights == "synthetic" and r.n_runs == 2
        assert r.batch_size in (1, 2) and r.gen_tokens == 4 and "architecture overridden" in r.notes
    # Run again: everything is in the results file, nothing is re-measured or re-stored.
    assert main(["bench", "--model", "qwen2.5-0.5b", "--synthetic", *ov, "--precision", "fp32", "--batch-size", "1",
                 "2", "--prompt-tokens", "8", "--gen-tokens", "4", "--runs", "2", "--warmup", "1", "--pause", "0",
                 "--device", "cpu", "--no-carbon", "--out", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["stored_rows"] == 0


class _LiveTrace:
    """The recorded H100 trace played back in real time, looping: a stand-in for NVML."""

    def __init__(self) -> None:
        self.trace = read_trace_csv(TRACE)
        self.t0 = time.monotonic()
        self.span = self.trace[-1].t_s - self.trace[0].t_s
        self.e_span = self.trace[-1].reading.energy_mj - self.trace[0].reading.energy_mj

    def _at(self) -> tuple[Reading, float]:
        el = time.monotonic() - self.t0
        loops, rem = divmod(el, self.span)
        i = next((k for k, s in enumerate(self.trace) if s.t_s - self.trace[0].t_s > rem), len(self.trace)) - 1
        s = self.trace[max(i, 0)]
        return s.reading, loops * self.e_span + (s.reading.energy_mj or 0)

    def gpu_indices(self) -> list[int]:
        return [0]

    def names(self) -> list[str]:
        return ["NVIDIA H100 80GB HBM3"]

    def has_energy_counter(self, gpu: int) -> bool:
        return True

    def energy_mj(self, gpu: int) -> float:
        return self._at()[1]

    def read(self, gpu: int) -> Reading:
        r, e = self._at()
        return Reading(power_w=r.power_w, energy_mj=e, mem_used_mb=r.mem_used_mb)


def test_engine_rows_reach_the_advisor_as_measured_local_evidence(tmp_path):
    from advisor.estimate import Config, estimate
    from engine.inference import Sweep
    from engine.provenance import capture
    from engine.rows import inference_row
    from measurements.store import append_rows

    reader = _LiveTrace()
    mon = EnergyMonitor(reader, PowerSampler(reader, 0.05).start(), sync=lambda: None)
    prov = capture("cpu", reader.names(), "replay", QUICK.describe())
    try:
        res = Sweep(_configs([1]), QUICK.model_copy(update={"runs": 3}), "cpu", tmp_path / "r.jsonl",
                    tmp_path / "tr", monitor=mon, provenance=prov).run()
    finally:
        mon.close()
    assert res[0].status == "ok" and res[0].energy_j_per_1k_tok > 0 and res[0].trace_file
    row = inference_row(res[0], "test: a CPU run with the H100 trace standing in for NVML")
    assert row.gpu == "h100_sxm" and row.energy_method
    assert append_rows([row]) == 1
    est = estimate(Config(gpu="h100_sxm", model="qwen2.5-0.5b", params_b=0.494, precision="fp32", batch_size=1))
    assert est is not None and est.tier == "measured" and est.local and est.row_ids == [row.id]
    assert est.j_per_1k_tok == pytest.approx(row.energy_j_per_1k_tok)
    # The host CPU paces batch-1 decoding, so the row says which CPU it ran on.
    assert prov.cpu_model and f"CPU: {prov.cpu_model}" in row.notes


def test_finetune_on_cpu_with_checkpointing_verified(tmp_path):
    from engine.finetune import FinetuneConfig, FinetuneSweep
    from engine.rows import finetune_row

    cfg = FinetuneConfig(model="qwen2.5-0.5b", method="lora", rank=4, dtype="fp32", seq_len=16, steps=2,
                         warmup_steps=1, grad_checkpointing=True, overrides=TINY)
    [r] = FinetuneSweep([cfg], QUICK, "cpu", tmp_path / "ft.jsonl").run()
    assert r.status == "ok", r.error
    # r x (d_in + d_out) for q 64->64, k and v 64->32, o 64->64, gate and up 64->128, down 128->64; 2 layers
    assert r.gc_verified is True and r.trainable_params == 2 * 4 * (128 + 96 + 96 + 128 + 192 + 192 + 192)
    assert r.step_time_s > 0 and r.tokens_per_s == pytest.approx(16 / r.step_time_s)
    row = finetune_row(r, "test")
    assert row.task == "finetune" and row.method == "lora" and row.lora_rank == 4 and row.grad_checkpointing is True
    assert "verified in train mode: True" in row.notes and "energy unavailable" in row.notes


def test_importing_the_advisor_and_bench_command_loads_no_engine_or_torch():
    code = ("import sys, advisor, advisor.cli, engine.cli; advisor.cli.build_parser(); "
            "print([m for m in ('torch', 'transformers', 'bitsandbytes', 'engine.power') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sampler_overhead_study_runs_every_mode_in_rotated_blocks():
    acc = _benchmark("engine_accuracy")
    calls: list[int] = []

    class Reader:
        def gpu_indices(self) -> list[int]:
            return [0]

        def read(self, gpu: int) -> Reading:
            return Reading(power_w=100.0)

    def work() -> None:
        calls.append(1)
        time.sleep(0.03)

    res = acc.measure_overhead(Reader(), {"sleep": work}, blocks=3)["sleep"]
    assert len(calls) == 1 + 3 * 3  # one warm-up, then every mode once per block
    assert res["blocks"] == 3 and res["off_s"]["n"] == 3
    for mode in ("10hz", "100hz"):
        lo, hi = res[mode]["overhead_ci95"]
        assert lo <= res[mode]["overhead"] <= hi and abs(res[mode]["overhead"]) < 0.5
    assert res["100hz"]["achieved_hz"] > 3 * res["10hz"]["achieved_hz"]  # the stress arm really samples faster


def test_rebuilding_a_gpu_archive_from_new_results_keeps_what_it_held(tmp_path, monkeypatch, capsys):
    import io
    import tarfile

    rows_mod = _benchmark("engine_rows")
    recs, _ = rows_mod.from_raw(rows_mod.raw_path("h200"))
    # As the engine writes them: without the session note the conversion adds.
    inference = [{**r, "notes": [n for n in r["notes"] if "before anything ran" not in n]}
                 for r in recs["inference"].values()]
    monkeypatch.setattr(rows_mod, "DATA", tmp_path)

    def session(name: str, lines: list[dict[str, Any]], cold: float) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "inference.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
        (d / "inference.log").write_text("ENV " + json.dumps({"cold_idle_w": cold}) + "\n")
        with tarfile.open(d / "inference_traces.tar.gz", "w:gz") as tf:
            payload = f"trace of {name}\n".encode()
            info = tarfile.TarInfo(f"{name}.csv")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
        return d

    assert rows_mod.main(["--gpu", "h200", str(session("first", inference[:30], 80.0))]) == 0
    first_csv = (tmp_path / "h200_inference.csv").read_text()
    assert rows_mod.main(["--gpu", "h200", str(session("second", inference[30:], 77.0))]) == 0
    merged = (tmp_path / "h200_inference.csv").read_text()
    assert merged.count("\nh200-syn-") == 66  # 30 kept + 36 new, nothing lost
    kept = [line for line in first_csv.splitlines()[1:]]
    assert all(line in merged for line in kept)  # the first session's rows are unchanged, notes included
    assert "read 77.0 W before anything ran" in merged and "read 80.0 W before anything ran" in merged
    with tarfile.open(tmp_path / "h200_raw.tar.gz") as tf:
        names = set(tf.getnames())
    assert {"traces/first.csv", "traces/second.csv", "logs/first-inference.log", "logs/second-inference.log"} <= names
    assert rows_mod.check("h200")
    capsys.readouterr()


def test_benchmark_scripts_reject_missing_inputs_and_write_nothing(tmp_path, capsys):
    rows_mod, acc = _benchmark("engine_rows"), _benchmark("engine_accuracy")
    archive = rows_mod.raw_path("h200")
    before = archive.read_bytes()
    (tmp_path / "empty").mkdir()
    for argv in (["--gpu", "h200", str(tmp_path / "missing")], ["--gpu", "h200", str(tmp_path / "empty")],
                 [str(tmp_path / "empty")]):
        with pytest.raises(SystemExit) as err:
            rows_mod.main(argv)
        assert err.value.code == 2
    assert archive.read_bytes() == before
    err_text = capsys.readouterr().err
    assert "not a results directory" in err_text and "--gpu is required" in err_text
    with pytest.raises(SystemExit):
        acc.main(["analyze", str(tmp_path / "none.jsonl")])
    assert "no such results file" in capsys.readouterr().err
