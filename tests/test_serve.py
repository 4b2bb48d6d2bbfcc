"""`ecolobster bench --serve`: the load generator, the steady-state window and its statistics on a
simulated server with a fake clock (exact values), energy over a window fixed after the fact, and
transformers' continuous batching end to end on CPU into the store."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import pytest

from engine.power import EnergyMonitor, PowerSampler, Reading, ReplayClock
from engine.protocol import ProtocolSettings
from engine.serve import (
    Finished,
    LengthDist,
    RequestRecord,
    ServeConfig,
    ServeError,
    ServeSweep,
    load_stats,
    percentile,
    plan_requests,
    run_load,
    steady_window,
)

TINY = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 512}
QUICK = ProtocolSettings(warmup=1, runs=2, pause_s=0, idle_s=0, max_reruns=0)


class SimServer:
    """A continuous-batching server in simulated time: every step (``step_s``) admits waiting
    requests up to ``max_batch`` (their first token comes out at the end of that step) and gives
    every running request one more token; finished requests leave at once."""

    def __init__(self, clock: ReplayClock, step_s: float = 0.01, max_batch: int = 1000):
        self.clock, self.step_s, self.max_batch = clock, step_s, max_batch
        self.waiting: list[tuple[str, int]] = []
        self.running: dict[str, tuple[int, list[float]]] = {}
        self.max_running = 0

    def submit(self, request_id: str, prompt: list[int], max_new_tokens: int) -> None:
        self.waiting.append((request_id, max_new_tokens))

    def poll(self, timeout_s: float) -> list[Finished]:
        self.clock.t += self.step_s
        now = self.clock.t
        for _n, times in self.running.values():
            times.append(now)
        while self.waiting and len(self.running) < self.max_batch:
            rid, n = self.waiting.pop(0)
            self.running[rid] = (n, [now])
        self.max_running = max(self.max_running, len(self.running))
        done = [Finished(rid, times) for rid, (n, times) in self.running.items() if len(times) >= n]
        for f in done:
            del self.running[f.request_id]
        return done


def _cfg(**kw: Any) -> ServeConfig:
    base: dict[str, Any] = dict(model="qwen2.5-0.5b", precision="fp32", overrides=TINY, prompt=LengthDist(a=8),
                                output=LengthDist(a=10))
    return ServeConfig(**(base | kw))


# --- lengths, plans, percentiles ---------------------------------------------------------------

def test_length_specs_parse_sample_within_bounds_and_reject_bad_ones():
    assert LengthDist.parse("128") == LengthDist(kind="fixed", a=128)
    u = LengthDist.parse("uniform:64:256")
    rng = random.Random(3)
    xs = [u.sample(rng) for _ in range(2000)]
    assert min(xs) >= 64 and max(xs) <= 256 and abs(sum(xs) / len(xs) - 160) < 5 and u.mean() == 160
    n = LengthDist.parse("normal:100:20")
    ys = [n.sample(rng) for _ in range(2000)]
    assert min(ys) >= 1 and max(ys) <= 180 and abs(sum(ys) / len(ys) - 100) < 3
    for bad, why in (("uniform:10", "not N"), ("0", "greater than or equal to 1"), ("uniform:9:3", "upper bound"),
                     ("poisson:3:4", "not N"), ("abc", "not N")):
        with pytest.raises(ValueError, match=why):
            LengthDist.parse(bad)


def test_plans_are_seeded_poisson_gaps_have_the_asked_rate_and_lengths_vary():
    cfg = _cfg(arrival="poisson", rate_rps=20.0, num_requests=2000, output=LengthDist(kind="uniform", a=4, b=12))
    a, b = plan_requests(cfg, 512), plan_requests(cfg, 512)
    assert a == b  # same seed, same plan
    assert plan_requests(cfg.model_copy(update={"seed": 1}), 512) != a
    gaps = [y.offset_s - x.offset_s for x, y in zip(a, a[1:], strict=False)]
    assert a[0].offset_s == 0 and min(gaps) >= 0
    assert sum(gaps) / len(gaps) == pytest.approx(1 / 20, rel=0.06)
    assert {p.max_new_tokens for p in a} == set(range(4, 13))
    assert all(100 <= t < 512 and len(p.prompt) == 8 for p in a[:50] for t in p.prompt)


def test_percentiles_interpolate_and_are_ordered():
    xs = [float(x) for x in range(1, 101)]
    assert percentile(xs, 50) == pytest.approx(50.5) and percentile(xs, 99) == pytest.approx(99.01)
    assert percentile([3.0], 90) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_bad_loads_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="no steady state"):
        _cfg(arrival="concurrency", concurrency=8, num_requests=8)
    with pytest.raises(ValueError, match="take a rate"):
        _cfg(arrival="poisson", concurrency=4)


# --- the load generator and the window on the simulated server --------------------------------

def test_closed_loop_keeps_the_concurrency_and_the_window_excludes_ramp_up_and_drain():
    clock = ReplayClock(100.0)
    srv = SimServer(clock, step_s=0.01)
    cfg = _cfg(arrival="concurrency", concurrency=4, num_requests=20, output=LengthDist(kind="uniform", a=6, b=14))
    plan = plan_requests(cfg, 512)
    recs = run_load(srv, plan, "concurrency", 4, clock=clock)
    assert len(recs) == 20 and all(r.n_tokens == p.max_new_tokens and r.error is None for r, p in zip(recs, plan, strict=True))
    assert srv.max_running == 4  # never more in flight than asked
    w = steady_window(recs, "concurrency", 4)
    # The four first requests are sent at 100.00 and decode from the first step on.
    assert w.t0 == pytest.approx(100.01) and w.reached == 4
    # The 17th of 20 completions is the first that no new request replaces.
    assert w.t1 == sorted(r.finish for r in recs)[16] == max(r.sent for r in recs)
    assert w.t1 < max(r.finish for r in recs)  # the drain is outside
    s = load_stats(recs, w)
    # A replacement is admitted one step after its predecessor left, so the batch is full but for
    # those gaps; every step inside the window yields one token per slot: 4 per 10 ms.
    assert 3.0 < s.mean_batch_size <= 4.0
    assert s.throughput_tok_s == pytest.approx(400.0, rel=0.02)
    # Each request: first token one step after it is sent, then one per step.
    assert s.ttft_ms["p50"] == pytest.approx(10.0) and s.itl_ms["p99"] == pytest.approx(10.0)
    inside = [r for r in recs if w.t0 <= r.arrival <= w.t1]
    assert s.e2e_s["mean"] == pytest.approx(sum(r.n_tokens for r in inside) / len(inside) * 0.01)
    assert s.requests_in_window < 20 and s.latency_sample.startswith("requests that arrived inside")


def test_open_loop_latency_counts_from_the_scheduled_arrival_and_grows_with_queueing():
    def run(rate: float, max_batch: int) -> Any:
        clock = ReplayClock(0.0)
        srv = SimServer(clock, step_s=0.01, max_batch=max_batch)
        cfg = _cfg(arrival="poisson", rate_rps=rate, num_requests=120, seed=5)
        recs = run_load(srv, plan_requests(cfg, 512), "poisson", None, clock=clock)
        w = steady_window(recs, "poisson", None)
        assert w.t0 == min(r.finish for r in recs)  # ramp-up ends with the first completion
        return recs, load_stats(recs, w)

    recs, light = run(20.0, 1000)
    assert all(r.arrival <= r.sent <= r.arrival + 0.0100001 for r in recs)  # sent on time (one poll step)
    _, queued = run(20.0, 1)  # one request at a time: at 20 req/s x 0.1 s each, a queue builds up
    for s in (light, queued):
        for d in (s.ttft_ms, s.itl_ms, s.e2e_s):
            assert d["p50"] <= d["p90"] <= d["p95"] <= d["p99"]
    assert queued.ttft_ms["p90"] > 5 * light.ttft_ms["p90"]
    assert light.request_rate_rps == pytest.approx(20.0, rel=0.3)


def test_a_window_that_cannot_exist_is_an_error_not_a_number():
    def rec(i: int, sent: float, first: float, fin: float) -> RequestRecord:
        return RequestRecord(request_id=f"r{i}", prompt_tokens=1, max_new_tokens=2, arrival=sent, sent=sent,
                             first_token=first, finish=fin, token_times=[first, fin])

    # Poisson: the only completion after the last arrival is the first completion itself.
    with pytest.raises(ServeError, match="window is empty"):
        steady_window([rec(0, 0.0, 0.1, 0.5), rec(1, 0.2, 0.3, 0.4)], "poisson", None)
    # A concurrency the server never reached starts at its peak, and says so.
    w = steady_window([rec(0, 0.0, 0.1, 0.5), rec(1, 0.0, 0.2, 0.6), rec(2, 0.55, 0.7, 0.9)], "concurrency", 3)
    assert w.reached == 2 and w.t0 == 0.2 and "never reached" in w.start_rule


# --- energy over the window --------------------------------------------------------------------

class _ConstantGPU:
    """A GPU drawing ``watts`` when busy and ``idle`` otherwise, its counter exact, on a fake clock."""

    def __init__(self, clock: ReplayClock, watts: float):
        self.clock, self.watts, self.e, self.last = clock, watts, 0.0, clock.t

    def _adv(self) -> None:
        self.e += self.watts * (self.clock.t - self.last)
        self.last = self.clock.t

    def gpu_indices(self) -> list[int]:
        return [0]

    def names(self) -> list[str]:
        return ["NVIDIA H200"]

    def has_energy_counter(self, gpu: int) -> bool:
        return True

    def energy_mj(self, gpu: int) -> float:
        self._adv()
        return self.e * 1000

    def read(self, gpu: int) -> Reading:
        self._adv()
        return Reading(power_w=self.watts, energy_mj=self.e * 1000)


def test_span_energy_interpolates_the_recorded_counter_at_edges_fixed_afterwards():
    clock = ReplayClock(0.0)
    gpu = _ConstantGPU(clock, 300.0)
    sampler = PowerSampler(gpu, 0.1, clock=clock)
    for k in range(11):
        clock.t = k * 0.1
        sampler.tick()
    mon = EnergyMonitor(gpu, sampler, sync=lambda: None, clock=clock)
    e, method, counter, samp = mon.span_energy(0.25, 0.75)
    assert method == "nvml_counter_trace" and e == pytest.approx(150.0) and samp == pytest.approx(150.0)
    assert mon.span_energy(0.5, 2.0)[1] == "power_sampler"  # the trace does not cover the end: no extrapolation
    assert EnergyMonitor.time_only().span_energy(0.0, 1.0) == (None, "unavailable", None, None)


class _Emb:
    num_embeddings = 512


class _Model:
    def get_input_embeddings(self) -> _Emb:
        return _Emb()


class _LM:
    model, model_id, arch_key, params_b = _Model(), "Qwen/Qwen2.5-0.5B", "qwen2.5-0.5b", 0.494
    weights, load_s, notes = "synthetic", 0.0, []


def test_sweep_reports_energy_of_the_steady_state_only_and_rows_carry_the_serving_fields(tmp_path):
    from engine.provenance import capture
    from engine.rows import serve_row

    clock = ReplayClock(10.0)
    gpu = _ConstantGPU(clock, 500.0)
    mon = EnergyMonitor(gpu, PowerSampler(gpu, 0.1, clock=clock), sync=lambda: None, clock=clock)
    servers: list[SimServer] = []

    def factory(model: Any, cfg: ServeConfig, device: str) -> SimServer:
        servers.append(SimServer(clock, step_s=0.02))
        return servers[-1]

    cfg = _cfg(arrival="concurrency", concurrency=8, num_requests=40, max_num_seqs=8)
    prov = capture("cuda", gpu.names(), "fake", QUICK.describe())
    res = ServeSweep([cfg], QUICK, "cpu", tmp_path / "s.jsonl", tmp_path / "tr", monitor=mon, provenance=prov,
                     loader=lambda *a, **k: _LM(), backend_factory=factory).run()
    [r] = res
    assert r.status == "ok", r.error
    assert len(servers) == 1 and r.n_runs == 2 and len(r.runs) == 2  # one manager for warm-up and both tests
    for run in r.runs:
        s = run.stats
        # 500 W over the window only: the ramp-up and drain steps are not in it
        assert run.energy_j == pytest.approx(500.0 * s.window_s, rel=1e-6) and run.method == "nvml_counter_trace"
        assert s.window_s < max(0.0, 40 / 8 * 10 * 0.02)  # shorter than the whole test
    tok = sum(x.stats.tokens_in_window for x in r.runs) / 2
    assert r.energy_j_per_token == pytest.approx(500.0 * r.window_s / tok, rel=0.01)
    assert r.energy_j_per_request == pytest.approx(r.energy_j_per_token * 10)
    assert r.power_w == pytest.approx(500.0)
    lines = list(csv.DictReader((tmp_path / "tr" / r.requests_file).open()))
    assert len(lines) == 80 and {x["run"] for x in lines} == {"0", "1"}
    row = serve_row(r, "test", trace_prefix="tr/")
    assert row.framework == "hf-continuous-batching" and row.batch_size == 8 and row.max_num_seqs == 8
    assert row.gpu == "h200" and row.energy_method == "nvml_counter_trace"
    assert row.ttft_p50_ms <= row.ttft_p90_ms <= row.ttft_p99_ms
    assert row.itl_p50_ms <= row.itl_p90_ms <= row.itl_p95_ms <= row.itl_p99_ms
    assert row.e2e_p50_s <= row.e2e_p90_s <= row.e2e_p99_s
    assert row.itl_p50_ms == pytest.approx(20.0) and row.mean_output_tokens == 10
    assert row.energy_j_per_1k_tok == pytest.approx(r.energy_j_per_token * 1000)
    assert "steady-state window" in row.notes and "ramp-up and drain excluded" in row.notes


# --- transformers' continuous batching on CPU, through the CLI -----------------------------------

def test_cli_serve_on_cpu_runs_real_continuous_batching_into_the_store(capsys, tmp_path):
    from advisor.cli import main
    from measurements.store import load_rows

    ov = [x for k, v in TINY.items() for x in ("--arch-override", f"{k}={v}")]
    out = tmp_path / "serve.jsonl"
    rc = main(["bench", "--serve", "--model", "qwen2.5-0.5b", "--synthetic", *ov, "--precision", "fp32",
               "--concurrency", "4", "--rate", "60", "--num-requests", "16", "--prompt-dist", "uniform:8:16",
               "--gen-dist", "8", "--runs", "2", "--warmup", "1", "--pause", "0", "--device", "cpu",
               "--no-carbon", "--out", str(out), "--format", "json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stored_rows"] == 2
    results = {r["config"]["arrival"]: r for r in report["results"]}
    rows = {r.id: r for r in load_rows() if r.id in report["row_ids"]}
    assert len(rows) == 2
    for r in rows.values():
        assert r.framework == "hf-continuous-batching" and r.gpu == "cpu" and r.n_runs == 2
        assert "energy unavailable" in r.notes and r.energy_j_per_1k_tok is None and r.energy_j_per_request is None
        assert r.throughput_tok_s > 0 and r.mean_output_tokens == 8
        assert 0 < r.ttft_p50_ms <= r.ttft_p90_ms <= r.ttft_p99_ms
        assert 0 < r.itl_p50_ms <= r.itl_p90_ms <= r.itl_p99_ms and r.e2e_p50_s <= r.e2e_p99_s
    conc = results["concurrency"]
    assert conc["reached_concurrency"] == 4 and conc["framework"] == "hf-continuous-batching"
    traces = out.with_name(out.stem + "-traces")
    lines = list(csv.DictReader((traces / conc["requests_file"]).open()))
    assert len(lines) == 2 * 16 and all(int(x["tokens"]) == 8 for x in lines)
    for run in ("0", "1"):
        test = [x for x in lines if x["run"] == run]
        t0, t1 = float(test[0]["window_t0_s"]), float(test[0]["window_t1_s"])
        first_wave = sorted(float(x["first_token_s"]) for x in test)[:4]
        assert t0 >= first_wave[-1] > min(float(x["sent_s"]) for x in test)  # ramp-up excluded
        assert t1 == pytest.approx(sorted(float(x["finish_s"]) for x in test)[16 - 4], abs=2e-6)
        assert t1 < max(float(x["finish_s"]) for x in test)  # the drain excluded
    assert Path(out).exists()


def test_cli_serve_rejects_bad_loads_with_what_is_accepted(capsys):
    from advisor.cli import main

    base = ["bench", "--model", "qwen2.5-0.5b", "--synthetic", "--device", "cpu", "--precision", "fp32"]
    cases = [
        (["--concurrency", "4"], "add --serve"),
        (["--serve"], "--concurrency N"),
        (["--serve", "--concurrency", "0"], "--concurrency must be >= 1"),
        (["--serve", "--rate", "-1"], "--rate must be > 0"),
        (["--serve", "--concurrency", "8", "--num-requests", "8"], "must exceed the largest --concurrency"),
        (["--serve", "--concurrency", "2", "--prompt-dist", "uniform:9"], "--prompt-dist: length 'uniform:9'"),
        (["--serve", "--concurrency", "2", "--batch-size", "4"], "not --batch-size"),
        (["--serve", "--concurrency", "2", "--finetune"], "does not combine with --finetune"),
    ]
    for extra, msg in cases:
        assert main(base + extra) == 2, extra
        assert msg in capsys.readouterr().err, extra


def test_default_request_counts_scale_with_the_concurrency():
    from advisor.cli import build_parser
    from engine import bench_serve

    args = build_parser().parse_args(["bench", "--serve", "--model", "qwen2.5-0.5b", "--synthetic", "--precision",
                                      "bf16", "--concurrency", "1", "8", "64", "--rate", "2"])
    bench_serve.check_args(args)
    cfgs = bench_serve.configs(args, "qwen2.5-0.5b", {})
    assert [(c.arrival, c.num_requests) for c in cfgs] == [("concurrency", 16), ("concurrency", 32),
                                                           ("concurrency", 256), ("poisson", 64)]
    assert all(c.output.a == 256 and c.prompt.a == 128 for c in cfgs)  # --gen-tokens / --prompt-tokens defaults
