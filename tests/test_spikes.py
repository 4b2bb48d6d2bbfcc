"""Spike detection on a recorded-style power trace with known spikes, and on the step times of a
real H100 fine-tuning run that saved its adapter every third step."""

from __future__ import annotations

import csv
import io
import json
import math
import tarfile
from pathlib import Path

import pytest

from engine.spikes import Spike, detect_spikes, detect_step_spikes, rolling_median, summarize

DATA = Path(__file__).parent / "data"
TRACE = DATA / "spike_trace.csv"
RAW = Path(__file__).parent.parent / "measurements" / "data" / "h100_raw.tar.gz"

# How tests/data/spike_trace.csv was made (synthetic, written by `synthetic_trace()` below): a 10 Hz
# board-power trace of a 600 s training run. The level ramps from 150 W to 280 W over the first
# 10 s, then drifts by 6 W (sine, period 97 s); every sample gets deterministic uniform noise of
# +-4 W (a linear congruential generator). Checkpoint saves add +60 W for 3.0 s every 45 s from
# t = 40 s (13 saves: 40, 85, ..., 580 s), 180 J each; one isolated one-sample glitch of +50 W at
# t = 333.3 s is not part of the series.
SAVES = [40.0 + 45.0 * i for i in range(13)]
SAVE_W, SAVE_S, GLITCH_T, GLITCH_W = 60.0, 3.0, 333.3, 50.0


def synthetic_trace() -> list[tuple[float, float]]:
    seed = 12345
    out = []
    for i in range(6000):
        t = round(i * 0.1, 1)
        seed = (1103515245 * seed + 12345) % 2**31
        noise = (seed / 2**31 - 0.5) * 8.0
        level = 150.0 + 13.0 * t if t < 10 else 280.0 + 6.0 * math.sin(2 * math.pi * t / 97.0)
        p = level + noise
        if any(s <= t < s + SAVE_S - 1e-9 for s in SAVES):
            p += SAVE_W
        if t == GLITCH_T:
            p += GLITCH_W
        out.append((t, round(p, 3)))
    return out


def read_trace() -> tuple[list[float], list[float]]:
    with TRACE.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [float(r["time_s"]) for r in rows], [float(r["power_w"]) for r in rows]


def test_the_trace_file_is_the_documented_one():
    times, power = read_trace()
    assert list(zip(times, power, strict=True)) == synthetic_trace()


def test_finds_every_checkpoint_save_and_its_period():
    times, power = read_trace()
    spikes = detect_spikes(times, power)
    periodic = [s for s in spikes if s.periodic]
    assert [s.start_s for s in periodic] == pytest.approx(SAVES, abs=0.05)
    assert all(s.period_s == pytest.approx(45.0, abs=0.1) for s in periodic)
    for s in periodic:  # 60 W for 3 s, give or take the noise at the edges
        assert s.energy_j == pytest.approx(SAVE_W * SAVE_S, rel=0.08)
        assert s.duration_s == pytest.approx(SAVE_S, abs=0.25)
        assert s.baseline == pytest.approx(280, abs=8)
    (glitch,) = [s for s in spikes if not s.periodic]
    assert glitch.start_s == pytest.approx(GLITCH_T) and glitch.period_s is None
    assert glitch.energy_j == pytest.approx(GLITCH_W * 0.1, rel=0.3)
    report = summarize(spikes, total_energy_j=sum(p * 0.1 for p in power))
    assert report.count == 14 and report.periodic_count == 13 and report.period_s == pytest.approx(45, abs=0.1)
    assert report.excess_energy_j == pytest.approx(13 * SAVE_W * SAVE_S + GLITCH_W * 0.1, rel=0.08)
    assert report.share_of_energy_pct == pytest.approx(100 * 2345 / (280 * 600), rel=0.1)


def test_a_steady_trace_has_no_spikes():
    times = [i * 0.1 for i in range(3000)]
    power = [300 + 3 * math.sin(i / 7) for i in range(3000)]
    assert detect_spikes(times, power) == []


def test_real_h100_run_saving_every_third_step():
    """The engine's QLoRA run that saved the adapter every 3 steps: the saving steps are the spikes."""
    with tarfile.open(RAW) as tar:
        member = tar.extractfile("finetune.jsonl")
        assert member is not None
        results = [json.loads(line) for line in io.TextIOWrapper(member, encoding="utf-8") if line.strip()]
    (run,) = [r for r in results if r["config"].get("save_every") == 3]
    steps = run["steps"]
    times = [s["step_time_s"] for s in steps]
    spikes = detect_step_spikes(times, power_w=run["power_w"])
    assert [s.first_step for s in spikes] == [i for i, s in enumerate(steps) if s["saved"]]
    base = sorted(times)[len(times) // 2 - 1: len(times) // 2 + 1]
    for s in spikes:
        assert s.unit == "s" and s.excess == pytest.approx(times[s.first_step] - sum(base) / 2, abs=0.03)
        assert s.energy_j == pytest.approx(s.excess * run["power_w"])


def test_periodic_step_spikes_carry_their_period_in_steps():
    times = [0.40 + 0.01 * ((i * 7) % 3) for i in range(60)]
    for i in range(9, 60, 10):  # a save every 10 steps
        times[i] += 0.6
    spikes = detect_step_spikes(times, power_w=250.0)
    assert [s.first_step for s in spikes] == list(range(9, 60, 10))
    assert all(s.periodic and s.period_steps == 10 for s in spikes)
    assert summarize(spikes).excess_time_s == pytest.approx(6 * 0.6, rel=0.05)


def test_rolling_median_and_bad_input():
    assert rolling_median([1, 9, 2, 8, 3], 3) == [5.0, 2, 8, 3, 5.5]
    with pytest.raises(ValueError, match="same length"):
        detect_spikes([0, 1, 2], [1, 2])
    with pytest.raises(ValueError, match="increase strictly"):
        detect_spikes([0, 2, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="non-finite"):
        detect_spikes([0, 1, 2], [1, float("nan"), 3])
    with pytest.raises(ValueError, match="positive finite"):
        detect_step_spikes([0.4, -1, 0.4])
    assert isinstance(Spike(start_s=0, end_s=1, peak=2, baseline=1, excess=1), Spike)
