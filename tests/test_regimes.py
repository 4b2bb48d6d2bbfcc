"""The per-request path's regimes and stability measures: static KV cache (hf-static-cache) with
its warm-up reported apart, windows repeated to a minimum length, and compared configurations
measured interleaved (A B A B)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.protocol import ProtocolSettings, RunMeasurement, run_interleaved

TINY = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 512}


@pytest.fixture
def one_thread():
    """One intra-op thread for the window tests: on a loaded 2-core machine torch's spinning
    threads stretch a 2-layer call past the 0.3 s window, which would hide what is tested."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
OV = [x for k, v in TINY.items() for x in ("--arch-override", f"{k}={v}")]


def test_interleaved_protocol_runs_abab_after_every_warm_up_and_reruns_the_whole_set():
    order: list[str] = []
    b_values = iter([100.0, 50.0, 150.0] + [100.0] * 10)  # B's first set fails the CV gate

    def fn(name: str) -> Any:
        def once(i: int) -> RunMeasurement:
            order.append(f"{name}{'w' if i < 0 else i}")
            v = next(b_values) if name == "B" and i >= 0 else 100.0
            return RunMeasurement(v, 1.0, 200.0)
        return once

    s = ProtocolSettings(warmup=2, runs=3, pause_s=0, idle_s=0, max_reruns=1)
    a, b = run_interleaved([fn("A"), fn("B")], s)
    assert order[:4] == ["Aw", "Aw", "Bw", "Bw"]
    assert order[4:10] == ["A0", "B0", "A1", "B1", "A2", "B2"]
    assert order[10:] == ["A0", "B0", "A1", "B1", "A2", "B2"]  # B failed: both re-measured, still ABAB
    assert a.attempts == b.attempts == 2 and not a.gate_failed and not b.gate_failed
    assert "throughput CV" in b.gate_notes[0] and "re-measured with the set" in a.gate_notes[0]


def _bench(capsys: Any, tmp_path: Any, *extra: str) -> tuple[int, dict[str, Any]]:
    from advisor.cli import main

    rc = main(["bench", "--model", "qwen2.5-0.5b", "--synthetic", *OV, "--precision", "fp32",
               "--prompt-tokens", "8", "--gen-tokens", "6", "--runs", "2", "--pause", "0", "--device", "cpu",
               "--no-carbon", "--out", str(tmp_path / "b.jsonl"), "--format", "json", *extra])
    out = capsys.readouterr().out
    return rc, json.loads(out) if rc == 0 else {}


def test_static_cache_on_cpu_gives_hf_static_cache_rows_with_the_warm_up_apart(capsys, tmp_path):
    from measurements.store import load_rows

    rc, rep = _bench(capsys, tmp_path, "--static-cache", "--warmup", "2", "--batch-size", "2")
    assert rc == 0
    [res] = rep["results"]
    assert res["status"] == "ok" and res["framework"] == "hf-static-cache" and res["key"].endswith("-static-bs2-p8-g6")
    assert len(res["warmup_s"]) == 2 and res["decode_compiled"] is False  # transformers compiles only on a GPU
    assert res["first_call_overhead_s"] == pytest.approx(res["warmup_s"][0] - 2 * 6 / res["throughput_tok_s"],
                                                         abs=0.05)
    [row] = [r for r in load_rows() if r.id in rep["row_ids"]]
    assert row.framework == "hf-static-cache" and row.batch_size == 2 and row.n_runs == 2
    assert "static KV cache" in row.notes and "NOT compiled" in row.notes and "2 warm-up run(s)" in row.notes


def test_dynamic_and_static_cache_measured_interleaved_on_one_model(capsys, tmp_path):
    rc, rep = _bench(capsys, tmp_path, "--cache", "dynamic", "static", "--interleave", "--warmup", "1",
                     "--runs", "3")
    assert rc == 0
    res = {r["framework"]: r for r in rep["results"]}
    assert set(res) == {"hf-eager", "hf-static-cache"} and len(rep["row_ids"]) == 2
    eager, static = res["hf-eager"], res["hf-static-cache"]
    assert eager["interleaved_with"] == [static["key"]] and static["interleaved_with"] == [eager["key"]]
    lines = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    runs = {r["framework"]: r["runs"] for r in lines}
    ta = [r["t0"] for r in runs["hf-eager"]]
    tb = [r["t0"] for r in runs["hf-static-cache"]]
    assert len(ta) == len(tb) == 3
    assert ta[0] < tb[0] < ta[1] < tb[1] < ta[2] < tb[2]  # A B A B A B on the shared clock


def test_short_calls_are_repeated_to_fill_the_minimum_window(tmp_path, one_thread):
    from engine.inference import InferenceConfig, Sweep
    from engine.rows import inference_row

    s = ProtocolSettings(warmup=1, runs=2, pause_s=0, idle_s=0, max_reruns=0, min_window_s=0.3)
    cfg = InferenceConfig(model="qwen2.5-0.5b", precision="fp32", batch_size=1, prompt_tokens=8, gen_tokens=4,
                          overrides=TINY)
    [r] = Sweep([cfg], s, "cpu", tmp_path / "r.jsonl").run()
    assert r.status == "ok", r.error
    assert r.repeats > 1 and all(x.repeats == r.repeats for x in r.runs)
    # The first measured window calls generate until it lasts 0.3 s and fixes that count; later
    # windows make as many calls (their length varies with the machine's load, not their work, so
    # only the first window's length is asserted: a shared CI machine can run later ones faster).
    assert r.runs[0].elapsed_s >= 0.3 and all(x.elapsed_s > 0 for x in r.runs)
    # Figures stay per call: tokens per window = repeats x batch x gen.
    for x in r.runs:
        assert x.throughput_tok_s == pytest.approx(r.repeats * 4 / x.elapsed_s)
    row = inference_row(r, "test")
    assert row.framework == "hf-eager" and f"holds {r.repeats} generate calls" in row.notes
    assert "min_window_s=0.3" in row.notes



def test_a_slow_first_measured_call_does_not_leave_later_windows_short(tmp_path, monkeypatch, one_thread):
    """A first measured call still slowed (by compilation or graph capture on a GPU) must not fix a
    count of calls that leaves the later, faster windows under the minimum: the calibration goes on
    until that many calls at the last call's pace would fill it."""
    import time

    from engine import inference
    from engine.inference import InferenceConfig, Sweep

    real = inference.PreparedRuns._generate
    calls = {"n": 0}

    def slow_first_measured(self, proc):
        calls["n"] += 1
        if calls["n"] == 2:  # call 1 is the warm-up; call 2 opens the first measured window
            time.sleep(0.5)
        return real(self, proc)

    monkeypatch.setattr(inference.PreparedRuns, "_generate", slow_first_measured)
    s = ProtocolSettings(warmup=1, runs=3, pause_s=0, idle_s=0, max_reruns=0, min_window_s=0.3)
    cfg = InferenceConfig(model="qwen2.5-0.5b", precision="fp32", batch_size=1, prompt_tokens=8, gen_tokens=4,
                          overrides=TINY)
    [r] = Sweep([cfg], s, "cpu", tmp_path / "r.jsonl").run()
    assert r.status == "ok", r.error
    # with the slow call alone the count would be 1 (0.5 s >= 0.3 s); the later calls' pace sets it
    assert r.repeats > 1
    per_call = min(x.elapsed_s / x.repeats for x in r.runs[1:])
    assert r.repeats * per_call >= 0.3 * 0.5  # later windows near the minimum (CI load varies the pace)

def test_regime_flags_are_refused_where_they_do_not_apply(capsys):
    from advisor.cli import main

    base = ["bench", "--model", "qwen2.5-0.5b", "--synthetic", "--device", "cpu", "--precision", "fp32"]
    for extra, msg in (
        (["--static-cache", "--serve", "--concurrency", "2"], "not to --serve"),
        (["--static-cache", "--warmup", "0"], "at least one warm-up run"),
        (["--static-cache", "--cache", "dynamic"], "--cache dynamic static"),
        (["--min-window", "-1"], "--min-window must be >= 0"),
        (["--interleave", "--finetune"], "not to --finetune"),
    ):
        assert main(base + extra) == 2, extra
        assert msg in capsys.readouterr().err, extra
