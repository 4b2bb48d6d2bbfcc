"""The measurement protocol: warm-up, repeated runs, CV quality gates, statistics, Welch's t-test.

Defaults follow seed 001's protocol (3 warm-ups, n = 10, 30 s stabilisation between model
loads, CV < 2% on throughput and < 5% on power) and every one is a setting. Statistics are
plain Python: Student's t quantiles and p-values come from scipy when it is installed and
otherwise from the regularised incomplete beta function computed here, so the engine needs no
scipy.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class ProtocolSettings(BaseModel):
    """Every knob of the protocol; the defaults are the full protocol of DESIGN.md."""

    model_config = ConfigDict(extra="forbid")

    warmup: int = Field(default=3, ge=0, description="warm-up runs, discarded")
    runs: int = Field(default=10, ge=1, description="measured runs")
    pause_s: float = Field(default=30.0, ge=0, description="stabilisation pause after each model load")
    idle_s: float = Field(default=5.0, ge=0, description="idle baseline before each configuration (0: none)")
    sample_interval_s: float = Field(default=0.1, gt=0, description="power sampler period (10 Hz)")
    cv_max_throughput: float = Field(default=0.02, gt=0, description="CV gate on throughput")
    cv_max_power: float = Field(default=0.05, gt=0, description="CV gate on power")
    max_reruns: int = Field(default=2, ge=0, description="re-runs of the measured set when a gate fails")
    min_counter_window_s: float = Field(default=0.1, ge=0,
                                        description="shorter windows fall back from the energy counter")
    min_window_s: float = Field(default=0.0, ge=0,
                                description="repeat the measured call inside one window until it lasts this long "
                                            "(the counter steps every 100 ms: a short window reads it coarsely)")

    def describe(self) -> str:
        text = (f"warmup={self.warmup} runs={self.runs} pause_s={self.pause_s:g} idle_s={self.idle_s:g} "
                f"sampler={1 / self.sample_interval_s:g}Hz cv_gates=throughput<{self.cv_max_throughput:.0%}"
                f",power<{self.cv_max_power:.0%} max_reruns={self.max_reruns}")
        return text + (f" min_window_s={self.min_window_s:g}" if self.min_window_s > 0 else "")

    def is_full(self) -> bool:
        """True when nothing is below the full protocol's defaults."""
        d = ProtocolSettings()
        return (self.warmup >= d.warmup and self.runs >= d.runs and self.pause_s >= d.pause_s
                and self.idle_s >= d.idle_s)


# --- Student's t distribution ------------------------------------------------------------------

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must lie in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(t):
        return 0.0
    try:
        from scipy import stats  # optional: exact and fast where present

        return float(2.0 * stats.t.sf(abs(t), df))
    except ImportError:
        return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (p in (0, 1))."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    try:
        from scipy import stats

        return float(stats.t.ppf(p, df))
    except ImportError:
        pass
    if p == 0.5:
        return 0.0
    upper = p > 0.5
    tail = 2.0 * (1.0 - p if upper else p)  # two-sided tail mass beyond |t|
    lo, hi = 0.0, 1.0
    while betainc(df / 2.0, 0.5, df / (df + hi * hi)) > tail:
        hi *= 2.0
        if hi > 1e12:
            break
    for _ in range(200):  # bisection: the two-sided tail is monotone in |t|
        mid = (lo + hi) / 2.0
        if betainc(df / 2.0, 0.5, df / (df + mid * mid)) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    q = (lo + hi) / 2.0
    return q if upper else -q


# --- summaries and comparisons -----------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float
    ci95: float  # half-width of the 95% confidence interval of the mean

    @property
    def cv(self) -> float:
        return self.std / abs(self.mean) if self.mean else math.inf

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "ci95": self.ci95, "cv": self.cv}


def summarize(values: Sequence[float]) -> Summary:
    """Mean, sample standard deviation and the t-based 95% CI half-width."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("cannot summarise an empty list of values")
    n = len(xs)
    mean = statistics.fmean(xs)
    if n == 1:
        return Summary(1, mean, 0.0, math.nan)
    std = statistics.stdev(xs)
    return Summary(n, mean, std, t_quantile(0.975, n - 1) * std / math.sqrt(n))


@dataclass(frozen=True)
class Welch:
    t: float
    df: float
    p_value: float
    mean_a: float
    mean_b: float

    @property
    def rel_diff(self) -> float:
        """(mean_a - mean_b) / mean_b: "a is 8% worse than b" reads +0.08."""
        return (self.mean_a - self.mean_b) / self.mean_b

    def sentence(self, label_a: str, label_b: str, what: str = "energy") -> str:
        direction = "higher" if self.rel_diff > 0 else "lower"
        return (f"{label_a} {what} is {abs(self.rel_diff):.1%} {direction} than {label_b} "
                f"(Welch t={self.t:.2f}, df={self.df:.1f}, p={self.p_value:.3g})")


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's unequal-variance t-test of the means of two samples (two-sided)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's t-test needs at least 2 values per sample (got {len(a)} and {len(b)})")
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a), statistics.variance(b)
    sa, sb = va / len(a), vb / len(b)
    se2 = sa + sb
    if se2 == 0:
        t = 0.0 if ma == mb else math.copysign(math.inf, ma - mb)
        return Welch(t, float(len(a) + len(b) - 2), 1.0 if ma == mb else 0.0, ma, mb)
    t = (ma - mb) / math.sqrt(se2)
    df = se2 ** 2 / (sa ** 2 / (len(a) - 1) + sb ** 2 / (len(b) - 1))
    return Welch(t, df, t_sf_two_sided(t, df), ma, mb)


# --- the repeated-run protocol -----------------------------------------------------------------

@dataclass
class RunMeasurement:
    """One measured run: tokens per second, joules (None on CPU) and seconds, plus extras."""

    throughput_tok_s: float
    elapsed_s: float
    energy_j: float | None = None
    extras: dict[str, float | None] = field(default_factory=dict)

    @property
    def power_w(self) -> float | None:
        return None if self.energy_j is None or self.elapsed_s <= 0 else self.energy_j / self.elapsed_s


@dataclass
class ProtocolResult:
    runs: list[RunMeasurement]
    attempts: int
    gate_failed: bool
    throughput: Summary
    power: Summary | None
    energy: Summary | None
    gate_notes: list[str]

    def extra(self, key: str) -> Summary | None:
        vals = [r.extras.get(key) for r in self.runs]
        if not vals or any(v is None for v in vals):
            return None
        return summarize([v for v in vals if v is not None])


def _gates(runs: list[RunMeasurement], s: ProtocolSettings) -> list[str]:
    notes: list[str] = []
    if len(runs) < 2:
        return notes
    tp = summarize([r.throughput_tok_s for r in runs])
    if tp.cv > s.cv_max_throughput:
        notes.append(f"throughput CV {tp.cv:.2%} > {s.cv_max_throughput:.0%}")
    pw = [r.power_w for r in runs]
    if all(p is not None for p in pw):
        ps = summarize([p for p in pw if p is not None])
        if ps.cv > s.cv_max_power:
            notes.append(f"power CV {ps.cv:.2%} > {s.cv_max_power:.0%}")
    return notes


def _result(runs: list[RunMeasurement], attempts: int, failed: list[str], history: list[str]) -> ProtocolResult:
    energies = [r.energy_j for r in runs]
    powers = [r.power_w for r in runs]
    have_energy = all(e is not None for e in energies)
    return ProtocolResult(
        runs=runs, attempts=attempts, gate_failed=bool(failed),
        throughput=summarize([r.throughput_tok_s for r in runs]),
        power=summarize([p for p in powers if p is not None]) if have_energy else None,
        energy=summarize([e for e in energies if e is not None]) if have_energy else None,
        gate_notes=history + ([f"final: {'; '.join(failed)}"] if failed else []),
    )


def run_protocol(run_once: Callable[[int], RunMeasurement], settings: ProtocolSettings,
                 on_run: Callable[[str, int, RunMeasurement], None] | None = None,
                 agree: Callable[[bool], bool] | None = None) -> ProtocolResult:
    """Warm up, measure ``settings.runs`` runs, and re-measure the whole set (at most
    ``max_reruns`` times) while a CV gate fails; the last set is kept and flagged if it still
    fails. ``run_once(i)`` performs one run; ``on_run(phase, i, m)`` reports progress."""
    return run_interleaved([run_once], settings, None if on_run is None else lambda k, *a: on_run(*a), agree)[0]


def run_interleaved(run_fns: Sequence[Callable[[int], RunMeasurement]], settings: ProtocolSettings,
                    on_run: Callable[[int, str, int, RunMeasurement], None] | None = None,
                    agree: Callable[[bool], bool] | None = None) -> list[ProtocolResult]:
    """The protocol for configurations that are compared: each warms up, then they are measured in
    rounds (A B A B ...), run i of every configuration before run i + 1 of any, so slow drift of
    clocks and temperature falls on all of them alike instead of on whichever ran last. A gate that
    fails on any of them re-measures the whole interleaved set. ``on_run(k, phase, i, m)``;
    ``agree(failed)`` turns this process's gate verdict into the one every process acts on (the
    ranks of a tensor-parallel run must re-measure together)."""
    for k, fn in enumerate(run_fns):
        for i in range(settings.warmup):
            m = fn(-1 - i)
            if on_run:
                on_run(k, "warmup", i, m)
    attempts = 0
    history: list[list[str]] = [[] for _ in run_fns]
    while True:
        attempts += 1
        sets: list[list[RunMeasurement]] = [[] for _ in run_fns]
        for i in range(settings.runs):
            for k, fn in enumerate(run_fns):
                m = fn(i)
                sets[k].append(m)
                if on_run:
                    on_run(k, "measure", i, m)
        failed = [_gates(runs, settings) for runs in sets]
        again = any(failed) and attempts <= settings.max_reruns
        if not (agree(again) if agree is not None else again):
            break
        for k, f in enumerate(failed):
            history[k].append(f"attempt {attempts}: " + ("; ".join(f) if f else "passed (re-measured with the set)"))
    return [_result(sets[k], attempts, failed[k], history[k]) for k in range(len(run_fns))]


def pause(seconds: float, sleep: Callable[[float], None] = time.sleep) -> None:
    """The stabilisation pause between model loads (clocks and temperature settle)."""
    if seconds > 0:
        sleep(seconds)


@dataclass(frozen=True)
class PairedRatio:
    """Median of per-pair ratios a_i / b_i with a bootstrap 95% CI: for A/B runs interleaved in
    time, where pairing cancels the slow drift that dominates run-to-run noise on a shared VM."""

    n: int
    median: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "median": self.median, "ci_low": self.ci_low, "ci_high": self.ci_high}


def paired_ratio(a: Sequence[float], b: Sequence[float], resamples: int = 2000, seed: int = 0) -> PairedRatio:
    """Median of a_i / b_i over pairs, with a percentile bootstrap 95% CI of that median."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"paired_ratio needs two equal-length samples of at least 2 (got {len(a)} and {len(b)})")
    if any(v <= 0 for v in b):
        raise ValueError("paired_ratio needs positive denominators")
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(resamples))
    lo, hi = meds[int(0.025 * resamples)], meds[min(resamples - 1, int(0.975 * resamples))]
    return PairedRatio(len(ratios), statistics.median(ratios), lo, hi)
