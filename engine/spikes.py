"""Find spikes in a power trace or in a series of step times, their period and what they cost.

Pure Python (no torch, no numpy), so the advisor and tests can use it on recorded traces.

Training loops often hide periodic work in the average: a checkpoint save every N steps, an
evaluation pass, a logging flush. Each shows up as a short rise of board power or as a step that
takes much longer than its neighbours. This module separates such events from the steady level:

1. baseline: a rolling median over `window_s` seconds (or `window` steps), which a short spike
   cannot move;
2. noise: the median absolute deviation of the residual around that baseline (x 1.4826, the
   normal-consistent scale);
3. a sample is "high" when it exceeds the baseline by more than `k` noise units and by more than
   `min_rel` of the baseline; neighbouring high samples (gaps up to `merge_gap_s`) form one spike;
4. cost: the area between the trace and the baseline over the spike (joules for power; seconds,
   and joules when a power is given, for step times);
5. period: spikes whose start-to-start intervals agree with the median interval within
   `period_tol` form a periodic series; the series' period is that median interval.

Example::

    from engine.spikes import detect_spikes, summarize
    spikes = detect_spikes(times_s, power_w)          # 10 Hz NVML samples
    report = summarize(spikes, total_energy_j=run_j)  # count, period, excess J, share of the run
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation for normal noise


class Spike(BaseModel):
    """One event above the baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_s: float
    end_s: float
    peak: float = Field(description="highest value in the spike (W, or s for step times)")
    baseline: float = Field(description="the rolling-median level under the spike")
    excess: float = Field(description="area above the baseline: J for power traces, s for step times")
    energy_j: float | None = Field(default=None, description="energy the spike cost, when known")
    unit: str = "W"
    first_step: int | None = None
    last_step: int | None = None
    periodic: bool = False
    period_s: float | None = None
    period_steps: float | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class SpikeSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int
    periodic_count: int
    period_s: float | None
    period_steps: float | None
    excess_energy_j: float | None
    excess_time_s: float | None
    share_of_energy_pct: float | None
    mean_spike_j: float | None


def _check(times: Sequence[float], values: Sequence[float], what: str) -> None:
    if len(times) != len(values):
        raise ValueError(f"times and {what} must have the same length (got {len(times)} and {len(values)})")
    if len(times) < 3:
        raise ValueError(f"need at least 3 samples to find spikes (got {len(times)})")
    for a, b in zip(times, times[1:], strict=False):
        if not b > a:
            raise ValueError(f"times must increase strictly (found {a} then {b})")
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"{what} contains a non-finite value ({v})")


def rolling_median(values: Sequence[float], window: int) -> list[float]:
    """Centred rolling median over `window` samples (shrinking at the edges)."""
    n = len(values)
    half = max(1, window) // 2
    out: list[float] = []
    win: list[float] = []
    lo = hi = 0  # current window is values[lo:hi]
    for i in range(n):
        new_lo, new_hi = max(0, i - half), min(n, i + half + 1)
        while hi < new_hi:
            bisect.insort(win, values[hi])
            hi += 1
        while lo < new_lo:
            del win[bisect.bisect_left(win, values[lo])]
            lo += 1
        m = len(win)
        out.append(win[m // 2] if m % 2 else 0.5 * (win[m // 2 - 1] + win[m // 2]))
    return out


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    m = len(s)
    return s[m // 2] if m % 2 else 0.5 * (s[m // 2 - 1] + s[m // 2])


def _sample_widths(times: Sequence[float]) -> list[float]:
    """Time each sample stands for: half the gap to each neighbour."""
    n = len(times)
    w = []
    for i in range(n):
        left = times[i] - times[i - 1] if i > 0 else times[1] - times[0]
        right = times[i + 1] - times[i] if i < n - 1 else times[-1] - times[-2]
        w.append(0.5 * (left + right))
    return w


def _events(times: Sequence[float], values: Sequence[float], base: Sequence[float], k: float, min_rel: float,
            min_abs: float, merge_gap_s: float) -> list[tuple[int, int]]:
    resid = [v - b for v, b in zip(values, base, strict=True)]
    sigma = MAD_TO_SIGMA * _median([abs(r - _median(resid)) for r in resid])
    high = [r > max(k * sigma, min_rel * abs(b), min_abs) for r, b in zip(resid, base, strict=True)]
    spans: list[tuple[int, int]] = []
    i, n = 0, len(values)
    while i < n:
        if not high[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and high[j + 1]:
            j += 1
        if spans and times[i] - times[spans[-1][1]] <= merge_gap_s:
            spans[-1] = (spans[-1][0], j)
        else:
            spans.append((i, j))
        i = j + 1
    return spans


def _periodicity(starts: list[float], tol: float) -> tuple[float | None, list[bool]]:
    """The median start-to-start interval and which spikes belong to the periodic series."""
    if len(starts) < 3:
        return None, [False] * len(starts)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    period = _median(gaps)
    if period <= 0:
        return None, [False] * len(starts)
    member = [False] * len(starts)
    good = 0
    for idx, g in enumerate(gaps):
        if abs(g - period) <= tol * period:
            member[idx] = member[idx + 1] = True
            good += 1
    # A series needs most of its gaps to agree; a glitch between two saves splits one gap in two.
    if good < 2 or good < 0.6 * len(gaps):
        return None, [False] * len(starts)
    return period, member


def detect_spikes(
    times_s: Sequence[float],
    power_w: Sequence[float],
    *,
    window_s: float = 30.0,
    k: float = 5.0,
    min_rel: float = 0.02,
    min_abs_w: float = 0.0,
    merge_gap_s: float | None = None,
    period_tol: float = 0.2,
) -> list[Spike]:
    """Spikes of board power above its rolling-median baseline, each with its excess energy (J).

    `times_s` are sample times in seconds (strictly increasing), `power_w` the power at each.
    Spikes that recur at a steady interval carry `periodic=True` and the series' `period_s`.
    """
    _check(times_s, power_w, "power_w")
    dt = _median([b - a for a, b in zip(times_s, times_s[1:], strict=False)])
    window = max(3, int(round(window_s / dt)))
    base = rolling_median(power_w, window)
    gap = 2.5 * dt if merge_gap_s is None else merge_gap_s
    widths = _sample_widths(times_s)
    spans = _events(times_s, power_w, base, k, min_rel, min_abs_w, gap)
    spikes: list[dict] = []
    for a, b in spans:
        excess = sum(max(0.0, power_w[i] - base[i]) * widths[i] for i in range(a, b + 1))
        spikes.append(dict(start_s=times_s[a], end_s=times_s[b] + widths[b] / 2 if b == a else times_s[b],
                           peak=max(power_w[a:b + 1]), baseline=_median(base[a:b + 1]), excess=excess,
                           energy_j=excess, unit="W"))
    period, member = _periodicity([s["start_s"] for s in spikes], period_tol)
    return [Spike(**s, periodic=m, period_s=period if m else None) for s, m in zip(spikes, member, strict=True)]


def detect_step_spikes(
    step_times_s: Sequence[float],
    *,
    power_w: float | Sequence[float] | None = None,
    window: int = 21,
    k: float = 3.0,
    min_rel: float = 0.05,
    period_tol: float = 0.2,
) -> list[Spike]:
    """Steps that take much longer than their neighbours (checkpoint saves, evaluation, logging).

    `step_times_s[i]` is the duration of step i. With `power_w` (one mean power, or one per step)
    each spike's extra time is priced in joules. Times are placed on the run's clock (cumulative
    step times), so `period_s` is in seconds and `period_steps` in steps. Step times are far less
    noisy than power samples, so the default threshold is the usual 3 noise units.
    """
    n = len(step_times_s)
    ends: list[float] = []
    t = 0.0
    for d in step_times_s:
        if not (math.isfinite(d) and d > 0):
            raise ValueError(f"step times must be positive finite seconds (found {d})")
        t += d
        ends.append(t)
    _check(ends, step_times_s, "step_times_s")
    if power_w is not None and not isinstance(power_w, (int, float)) and len(power_w) != n:
        raise ValueError(f"power_w must be one value or one per step (got {len(power_w)} for {n} steps)")
    base = rolling_median(step_times_s, window)
    starts = [e - d for e, d in zip(ends, step_times_s, strict=True)]
    spans = _events(starts, step_times_s, base, k, min_rel, 0.0, merge_gap_s=0.0)
    spikes: list[dict] = []
    for a, b in spans:
        extra = sum(max(0.0, step_times_s[i] - base[i]) for i in range(a, b + 1))
        if power_w is None:
            energy = None
        elif isinstance(power_w, (int, float)):
            energy = extra * float(power_w)
        else:
            energy = sum(max(0.0, step_times_s[i] - base[i]) * power_w[i] for i in range(a, b + 1))
        spikes.append(dict(start_s=starts[a], end_s=ends[b], peak=max(step_times_s[a:b + 1]),
                           baseline=_median(base[a:b + 1]), excess=extra, energy_j=energy, unit="s",
                           first_step=a, last_step=b))
    period, member = _periodicity([s["start_s"] for s in spikes], period_tol)
    step_period, _ = _periodicity([float(s["first_step"]) for s in spikes], period_tol)
    return [Spike(**s, periodic=m, period_s=period if m else None, period_steps=step_period if m else None)
            for s, m in zip(spikes, member, strict=True)]


def summarize(spikes: Sequence[Spike], total_energy_j: float | None = None) -> SpikeSummary:
    """Count, period and total cost of the spikes; their share of the run's energy when given."""
    periodic = [s for s in spikes if s.periodic]
    energies = [s.energy_j for s in spikes if s.energy_j is not None]
    excess_j = sum(energies) if energies and len(energies) == len(spikes) else None
    excess_t = sum(s.excess for s in spikes) if spikes and all(s.unit == "s" for s in spikes) else None
    share = None
    if excess_j is not None and total_energy_j:
        share = 100.0 * excess_j / total_energy_j
    return SpikeSummary(
        count=len(spikes),
        periodic_count=len(periodic),
        period_s=periodic[0].period_s if periodic else None,
        period_steps=periodic[0].period_steps if periodic else None,
        excess_energy_j=excess_j,
        excess_time_s=excess_t,
        share_of_energy_pct=share,
        mean_spike_j=(excess_j / len(spikes)) if excess_j is not None and spikes else None,
    )
