"""GPU energy: NVML's total-energy counter, a background power sampler, idle baselines, windows.

The measuring model follows Zeus's windows (``begin_window(name)`` / ``end_window(name)``): a
window records elapsed time and joules per GPU, CUDA is synchronised at both ends so queued
kernels are inside the window they belong to, and every GPU the run uses is summed.

Where the energy of a window comes from (``Window.method``):

- ``nvml_counter``: the difference of ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver
  load; Volta and newer). This is the default whenever the GPU has the counter.
- ``power_sampler``: the trapezoidal integral of the background sampler's power trace, clipped
  to the window with interpolated edges. Used for GPUs without the counter, and always computed
  beside the counter so the two can be compared (``Window.sampler_j``).
- ``power_x_time``: one power reading times the elapsed time. Only for windows shorter than
  ``min_counter_window_s`` when no sampler runs: the counter updates in steps, so a very short
  window can read a zero or a single step (Zeus applies the same policy).

On Ampere (except GA100) and newer GPUs ``nvmlDeviceGetPowerUsage`` returns power averaged over
about one second; the sampler therefore prefers the instantaneous field
``NVML_FI_DEV_POWER_INSTANT`` where the driver offers it and records both in the trace.

Integration example (needs an NVIDIA GPU, torch and nvidia-ml-py)::

    import torch
    from engine.power import EnergyMonitor

    monitor = EnergyMonitor.open(sample_interval_s=0.1)   # starts the 10 Hz sampler
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    monitor.begin_window("matmul")
    for _ in range(50):
        a @ a
    w = monitor.end_window("matmul")
    print(f"{w.elapsed_s:.3f} s, {w.energy_j:.1f} J ({w.method}), sampler says {w.sampler_total_j:.1f} J")
    monitor.sampler.to_csv("trace.csv")
    monitor.close()
"""

from __future__ import annotations

import csv
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


TRACE_COLUMNS = ("t_s", "gpu", "power_w", "power_avg_w", "energy_mj", "util_gpu_pct", "util_mem_pct",
                 "sm_clock_mhz", "mem_clock_mhz", "temp_c", "mem_used_mb")


class NvmlUnavailable(RuntimeError):
    """NVML (the NVIDIA driver's management library) cannot be used on this machine."""


@dataclass(frozen=True)
class Reading:
    """One GPU's state at one instant. Power in W; energy_mj is the cumulative hardware counter."""

    power_w: float
    power_avg_w: float | None = None
    energy_mj: float | None = None
    util_gpu_pct: float | None = None
    util_mem_pct: float | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    temp_c: float | None = None
    mem_used_mb: float | None = None


@dataclass(frozen=True)
class TraceSample:
    t_s: float
    gpu: int
    reading: Reading

    def as_record(self, t_origin: float = 0.0) -> dict[str, object]:
        r = self.reading
        return {"t_s": round(self.t_s - t_origin, 4), "gpu": self.gpu, "power_w": r.power_w,
                "power_avg_w": r.power_avg_w, "energy_mj": r.energy_mj, "util_gpu_pct": r.util_gpu_pct,
                "util_mem_pct": r.util_mem_pct, "sm_clock_mhz": r.sm_clock_mhz,
                "mem_clock_mhz": r.mem_clock_mhz, "temp_c": r.temp_c, "mem_used_mb": r.mem_used_mb}


class PowerReader(Protocol):
    """The slice of NVML the engine needs; a fake or a recorded trace stands in for it in tests."""

    def gpu_indices(self) -> list[int]: ...

    def names(self) -> list[str]: ...

    def has_energy_counter(self, gpu: int) -> bool: ...

    def energy_mj(self, gpu: int) -> float | None: ...

    def read(self, gpu: int) -> Reading: ...


def _visible_nvml_indices(count: int, uuids: Sequence[str]) -> list[int]:
    """NVML numbers GPUs regardless of CUDA_VISIBLE_DEVICES; map the visible ones back."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None or not env.strip():
        return list(range(count))
    out: list[int] = []
    for tok in (t.strip() for t in env.split(",")):
        if not tok:
            continue
        if tok.isdigit() and int(tok) < count:
            out.append(int(tok))
            continue
        hits = [i for i, u in enumerate(uuids) if u.startswith(tok) or u.endswith(tok)]
        if hits:
            out.append(hits[0])
    return out or list(range(count))


class NvmlReader:
    """PowerReader over pynvml (the ``nvidia-ml-py`` package)."""

    def __init__(self, gpus: Sequence[int] | None = None):
        try:
            import pynvml
        except ImportError as err:
            raise NvmlUnavailable(
                "nvidia-ml-py is not installed, so GPU energy cannot be read: install the engine extra "
                "(pip install 'ecolobster[engine]'), or run `ecolobster bench --device cpu` to measure "
                "throughput only") from err
        try:
            pynvml.nvmlInit()
        except Exception as err:  # pynvml raises NVMLError subclasses, or OSError without a driver
            raise NvmlUnavailable(
                f"NVML could not start ({err}): no NVIDIA driver or GPU is visible. Energy cannot be "
                "measured here; `ecolobster bench --device cpu` still measures throughput") from err
        self._nv = pynvml
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            raise NvmlUnavailable("NVML sees no GPU; `ecolobster bench --device cpu` measures throughput only")
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        uuids = [_text(pynvml.nvmlDeviceGetUUID(h)) for h in handles]
        chosen = list(gpus) if gpus is not None else _visible_nvml_indices(count, uuids)
        bad = [g for g in chosen if not 0 <= g < count]
        if bad:
            raise NvmlUnavailable(f"GPU index {bad} does not exist; NVML sees {count} GPU(s): 0..{count - 1}")
        self._handles = {g: handles[g] for g in chosen}
        self._counter: dict[int, bool] = {}
        self._instant: dict[int, bool] = {}
        for g, h in self._handles.items():
            try:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
                self._counter[g] = True
            except Exception:  # NVMLError_NotSupported on pre-Volta GPUs
                self._counter[g] = False
            self._instant[g] = self._instant_power_mw(h) is not None

    def _instant_power_mw(self, handle: object) -> float | None:
        fid = getattr(self._nv, "NVML_FI_DEV_POWER_INSTANT", None)
        if fid is None:
            return None
        try:
            v = self._nv.nvmlDeviceGetFieldValues(handle, [fid])[0]
            if v.nvmlReturn != 0:
                return None
            return float(v.value.uiVal)
        except Exception:  # the field is optional: NVML's average power stands in
            log.debug("NVML instantaneous power field unreadable", exc_info=True)
            return None

    def gpu_indices(self) -> list[int]:
        return list(self._handles)

    def names(self) -> list[str]:
        return [_text(self._nv.nvmlDeviceGetName(h)) for h in self._handles.values()]

    def driver_version(self) -> str:
        return _text(self._nv.nvmlSystemGetDriverVersion())

    def instant_power(self, gpu: int) -> bool:
        return self._instant[gpu]

    def has_energy_counter(self, gpu: int) -> bool:
        return self._counter[gpu]

    def energy_mj(self, gpu: int) -> float | None:
        if not self._counter[gpu]:
            return None
        return float(self._nv.nvmlDeviceGetTotalEnergyConsumption(self._handles[gpu]))

    def power_w(self, gpu: int) -> float:
        """Power now, W: the instantaneous field where the driver has it, else NVML's average."""
        h = self._handles[gpu]
        inst = self._instant_power_mw(h) if self._instant[gpu] else None
        return inst / 1000.0 if inst is not None else self._nv.nvmlDeviceGetPowerUsage(h) / 1000.0

    def read(self, gpu: int) -> Reading:
        nv, h = self._nv, self._handles[gpu]
        avg = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
        inst = self._instant_power_mw(h) if self._instant[gpu] else None
        power = inst / 1000.0 if inst is not None else avg

        def opt(fn: Callable[[], float]) -> float | None:
            try:
                return float(fn())
            except Exception:  # a field the GPU does not report stays empty in the trace
                log.debug("NVML field unreadable on GPU %s", gpu, exc_info=True)
                return None

        util = None
        try:
            util = nv.nvmlDeviceGetUtilizationRates(h)
        except Exception:  # not every GPU reports utilisation: the trace leaves it empty
            log.debug("NVML utilisation unreadable on GPU %s", gpu, exc_info=True)
        return Reading(
            power_w=power, power_avg_w=avg, energy_mj=self.energy_mj(gpu),
            util_gpu_pct=float(util.gpu) if util is not None else None,
            util_mem_pct=float(util.memory) if util is not None else None,
            sm_clock_mhz=opt(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
            mem_clock_mhz=opt(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM)),
            temp_c=opt(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            mem_used_mb=opt(lambda: nv.nvmlDeviceGetMemoryInfo(h).used / 2**20),
        )

    def close(self) -> None:
        try:
            self._nv.nvmlShutdown()
        except Exception:  # shutting down: nothing left to measure
            log.debug("nvmlShutdown failed", exc_info=True)


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def integrate(times: Sequence[float], powers: Sequence[float], t0: float, t1: float) -> float:
    """Energy in J over [t0, t1] from power samples (W) by the trapezoidal rule.

    The window's edges take linearly interpolated values; outside the sampled span the nearest
    sample is held. Samples must be in time order.
    """
    if t1 < t0:
        raise ValueError(f"window ends before it starts ({t0} > {t1})")
    if len(times) != len(powers):
        raise ValueError("times and powers must have the same length")
    if not times:
        raise ValueError("no power samples to integrate")
    if t1 == t0:
        return 0.0

    def at(t: float) -> float:
        if t <= times[0]:
            return powers[0]
        if t >= times[-1]:
            return powers[-1]
        lo, hi = 0, len(times) - 1
        while hi - lo > 1:  # binary search: traces hold thousands of samples
            mid = (lo + hi) // 2
            if times[mid] <= t:
                lo = mid
            else:
                hi = mid
        span = times[hi] - times[lo]
        if span <= 0:
            return powers[hi]
        return powers[lo] + (powers[hi] - powers[lo]) * (t - times[lo]) / span

    pts = [(t0, at(t0))]
    pts += [(t, p) for t, p in zip(times, powers, strict=True) if t0 < t < t1]
    pts.append((t1, at(t1)))
    return sum((b[0] - a[0]) * (a[1] + b[1]) / 2.0 for a, b in zip(pts, pts[1:], strict=False))


class PowerSampler:
    """Samples every GPU of a reader at a fixed interval on a background thread.

    ``tick()`` takes one sample synchronously (windows call it at their edges, and a replay
    drives it by hand); ``start()`` runs it every ``interval_s`` until ``stop()``.
    """

    def __init__(self, reader: PowerReader, interval_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic):
        if not interval_s > 0:
            raise ValueError(f"sample interval must be > 0 s, got {interval_s}")
        self.reader, self.interval_s, self.clock = reader, interval_s, clock
        self._samples: list[TraceSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def tick(self) -> None:
        with self._lock:
            for g in self.reader.gpu_indices():
                try:
                    r = self.reader.read(g)
                except Exception:  # a failed NVML read loses one sample, not the run
                    self.errors += 1
                    log.debug("NVML read failed on GPU %s (%d so far)", g, self.errors, exc_info=True)
                    continue
                self._samples.append(TraceSample(self.clock(), g, r))

    def _loop(self) -> None:
        nxt = self.clock()
        while not self._stop.is_set():
            self.tick()
            nxt += self.interval_s
            delay = nxt - self.clock()
            if delay < 0:  # fell behind (slow NVML): skip ahead rather than burst
                nxt = self.clock()
                delay = 0.0
            self._stop.wait(delay)

    def start(self) -> PowerSampler:
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ecolobster-power-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * self.interval_s + 1)
        self._thread = None

    def samples(self, t0: float | None = None, t1: float | None = None,
                gpu: int | None = None) -> list[TraceSample]:
        with self._lock:
            snap = list(self._samples)
        return [s for s in snap if (t0 is None or s.t_s >= t0) and (t1 is None or s.t_s <= t1)
                and (gpu is None or s.gpu == gpu)]

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()

    def series(self, gpu: int, t0: float | None = None, t1: float | None = None,
               pad: float = 0.0) -> tuple[list[float], list[float]]:
        """(times, power) of one GPU; ``pad`` seconds either side keep the edges interpolable."""
        lo = None if t0 is None else t0 - pad
        hi = None if t1 is None else t1 + pad
        ss = self.samples(lo, hi, gpu)
        return [s.t_s for s in ss], [s.reading.power_w for s in ss]

    def energy_j(self, t0: float, t1: float, gpu: int) -> float | None:
        times, powers = self.series(gpu, t0, t1, pad=2 * self.interval_s)
        if not times:
            return None
        return integrate(times, powers, t0, t1)

    def latest_power_w(self) -> float | None:
        """Sum over GPUs of each GPU's latest sample (for a live display)."""
        with self._lock:
            tail = self._samples[-4 * max(1, len(self.reader.gpu_indices())):]
        last: dict[int, float] = {}
        for s in tail:
            last[s.gpu] = s.reading.power_w
        return sum(last.values()) if last else None

    def max_mem_used_mb(self, t0: float, t1: float) -> float | None:
        """Sum over GPUs of each GPU's peak memory in use (as NVML sees it) over a span."""
        per_gpu: dict[int, float] = {}
        for s in self.samples(t0, t1):
            if s.reading.mem_used_mb is not None:
                per_gpu[s.gpu] = max(per_gpu.get(s.gpu, 0.0), s.reading.mem_used_mb)
        return sum(per_gpu.values()) if per_gpu else None

    def to_csv(self, path: str | Path, t0: float | None = None, t1: float | None = None,
               t_origin: float | None = None, extra: dict[str, object] | None = None) -> Path:
        """Write the trace (optionally a time span of it) as CSV; times relative to ``t_origin``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ss = self.samples(t0, t1)
        origin = t_origin if t_origin is not None else (ss[0].t_s if ss else 0.0)
        cols = list(TRACE_COLUMNS) + list(extra or {})
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            for s in ss:
                rec = s.as_record(origin)
                rec.update(extra or {})
                w.writerow({k: ("" if v is None else v) for k, v in rec.items()})
        return path


def read_trace_csv(path: str | Path) -> list[TraceSample]:
    """Load a trace written by ``PowerSampler.to_csv``."""
    out: list[TraceSample] = []
    with Path(path).open(newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            def f(k: str, rec: dict[str, str] = rec) -> float | None:
                v = (rec.get(k) or "").strip()
                return float(v) if v else None
            power = f("power_w")
            if power is None:
                raise ValueError(f"{path}: a trace sample without power_w")
            out.append(TraceSample(float(rec["t_s"]), int(rec["gpu"]), Reading(
                power_w=power, power_avg_w=f("power_avg_w"), energy_mj=f("energy_mj"),
                util_gpu_pct=f("util_gpu_pct"), util_mem_pct=f("util_mem_pct"),
                sm_clock_mhz=f("sm_clock_mhz"), mem_clock_mhz=f("mem_clock_mhz"),
                temp_c=f("temp_c"), mem_used_mb=f("mem_used_mb"))))
    return out


class ReplayClock:
    """A clock a test or a re-analysis moves by hand."""

    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class ReplayReader:
    """A PowerReader that plays back a recorded trace: at clock time t each GPU reads as its
    latest recorded sample at or before t (as NVML would have answered then)."""

    def __init__(self, samples: Iterable[TraceSample], clock: ReplayClock, names: Sequence[str] = ()):
        self.clock = clock
        self._by_gpu: dict[int, list[TraceSample]] = {}
        for s in sorted(samples, key=lambda s: (s.gpu, s.t_s)):
            self._by_gpu.setdefault(s.gpu, []).append(s)
        if not self._by_gpu:
            raise ValueError("a replay needs at least one trace sample")
        self._names = list(names) or [f"replayed GPU {g}" for g in self._by_gpu]

    def gpu_indices(self) -> list[int]:
        return sorted(self._by_gpu)

    def names(self) -> list[str]:
        return list(self._names)

    def times(self) -> list[float]:
        return sorted({s.t_s for ss in self._by_gpu.values() for s in ss})

    def _at(self, gpu: int) -> TraceSample:
        ss = self._by_gpu[gpu]
        t = self.clock()
        lo, hi = 0, len(ss)
        while lo < hi:
            mid = (lo + hi) // 2
            if ss[mid].t_s <= t + 1e-9:
                lo = mid + 1
            else:
                hi = mid
        return ss[max(lo - 1, 0)]

    def has_energy_counter(self, gpu: int) -> bool:
        return self._by_gpu[gpu][0].reading.energy_mj is not None

    def energy_mj(self, gpu: int) -> float | None:
        return self._at(gpu).reading.energy_mj

    def read(self, gpu: int) -> Reading:
        return self._at(gpu).reading


def cuda_sync() -> None:
    """Wait for every queued kernel on every visible GPU; a no-op when torch or CUDA is absent.

    Torch is not imported here: if the caller never imported it, nothing can be queued.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for d in range(torch.cuda.device_count()):
                torch.cuda.synchronize(d)
    except Exception:  # a broken CUDA context surfaces in the run itself, not here
        log.debug("CUDA synchronize failed", exc_info=True)


@dataclass
class Window:
    """One measured span: elapsed seconds and joules per GPU (keyed by NVML index)."""

    name: str
    t0: float
    t1: float
    energy_per_gpu_j: dict[int, float] | None
    method: str
    counter_per_gpu_j: dict[int, float] | None = None
    sampler_per_gpu_j: dict[int, float] | None = None
    marks: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    counter_start_mj: float | None = None  # summed counter at t0, to difference against marks
    aligned: bool = False  # the counter was interpolated to the edges from its steps

    @property
    def elapsed_s(self) -> float:
        return self.t1 - self.t0

    @property
    def energy_j(self) -> float | None:
        return None if self.energy_per_gpu_j is None else sum(self.energy_per_gpu_j.values())

    @property
    def counter_total_j(self) -> float | None:
        return None if self.counter_per_gpu_j is None else sum(self.counter_per_gpu_j.values())

    @property
    def sampler_total_j(self) -> float | None:
        return None if self.sampler_per_gpu_j is None else sum(self.sampler_per_gpu_j.values())

    @property
    def power_w(self) -> float | None:
        e = self.energy_j
        return None if e is None or self.elapsed_s <= 0 else e / self.elapsed_s

    def as_record(self) -> dict[str, object]:
        return {"name": self.name, "t0": self.t0, "t1": self.t1, "elapsed_s": self.elapsed_s,
                "energy_j": self.energy_j, "method": self.method, "counter_j": self.counter_total_j,
                "sampler_j": self.sampler_total_j}


@dataclass
class _Open:
    t0: float
    counters: dict[int, float | None]
    marks: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    aligned: bool = False


class EnergyMonitor:
    """Zeus-like measurement windows over a PowerReader (or none: time only, energy unavailable)."""

    def __init__(self, reader: PowerReader | None, sampler: PowerSampler | None = None,
                 sync: Callable[[], None] = cuda_sync, clock: Callable[[], float] = time.monotonic,
                 min_counter_window_s: float = 0.1, align_counter: bool = False,
                 align_timeout_s: float = 0.25, edge_ticks: bool = True):
        self.reader, self.sampler, self.sync, self.clock = reader, sampler, sync, clock
        # A sample at each window edge keeps the integral exact there; a replay turns this off
        # because the recorded trace already holds those samples.
        self.edge_ticks = edge_ticks
        self.min_counter_window_s = min_counter_window_s
        # The counter steps at a fixed period (100 ms on the H100 measured here): aligning window
        # edges to its steps removes up to one period of energy error at each edge.
        self.align_counter = align_counter
        self.align_timeout_s = align_timeout_s
        self._open: dict[str, _Open] = {}

    @classmethod
    def open(cls, sample_interval_s: float = 0.1, gpus: Sequence[int] | None = None,
             sample: bool = True, min_counter_window_s: float = 0.1,
             align_counter: bool = True) -> EnergyMonitor:
        """A monitor on the real NVML, its sampler started (raises NvmlUnavailable without it)."""
        reader = NvmlReader(gpus)
        sampler = PowerSampler(reader, sample_interval_s).start() if sample else None
        return cls(reader, sampler, min_counter_window_s=min_counter_window_s, align_counter=align_counter)

    @classmethod
    def time_only(cls) -> EnergyMonitor:
        """For CPU runs: windows measure time; energy is reported as unavailable."""
        return cls(None, None)

    @property
    def energy_available(self) -> bool:
        return self.reader is not None

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()

    def _counters(self) -> dict[int, float | None]:
        if self.reader is None:
            return {}
        return {g: self.reader.energy_mj(g) for g in self.reader.gpu_indices()}

    def _power(self, gpu: int) -> float:
        assert self.reader is not None
        fast = getattr(self.reader, "power_w", None)
        return float(fast(gpu)) if fast is not None else self.reader.read(gpu).power_w

    def _next_steps(self) -> dict[int, tuple[float, float]]:
        """Poll each GPU's counter until it steps: {gpu: (time of the step, value after it)}."""
        assert self.reader is not None
        gpus = self.reader.gpu_indices()
        start = {g: self.reader.energy_mj(g) for g in gpus}
        stepped: dict[int, tuple[float, float]] = {}
        deadline = self.clock() + self.align_timeout_s
        while len(stepped) < len(gpus) and self.clock() < deadline:
            time.sleep(0.0005)
            for g in gpus:
                if g in stepped:
                    continue
                v = self.reader.energy_mj(g)
                if v is not None and v != start[g]:
                    stepped[g] = (self.clock(), v)
        return stepped

    def _aligned_begin(self) -> tuple[float, dict[int, float | None], bool]:
        """Wait for every counter's next step, then start: each GPU's counter is carried from its
        step to the start time at the power read then (the GPU is idle in between)."""
        assert self.reader is not None
        steps = self._next_steps()
        if self.sampler is not None and self.edge_ticks:
            self.sampler.tick()  # a sample at the edge keeps the integral exact there
        t0 = self.clock()
        out: dict[int, float | None] = {}
        for g in self.reader.gpu_indices():
            if g not in steps:
                return t0, self._counters(), False
            ts, v = steps[g]
            out[g] = v + self._power(g) * 1000.0 * (t0 - ts)
        return t0, out, True

    def _aligned_end(self, t1: float, p_end: dict[int, float]) -> tuple[dict[int, float | None], bool]:
        """After the end, wait for every counter's next step and take back the energy spent
        between the end and the step, at the mean of the power read at both instants."""
        assert self.reader is not None
        steps = self._next_steps()
        out: dict[int, float | None] = {}
        for g in self.reader.gpu_indices():
            if g not in steps:
                return self._counters(), False
            ts, v = steps[g]
            out[g] = v - (p_end[g] + self._power(g)) / 2.0 * 1000.0 * (ts - t1)
        return out, True

    def begin_window(self, name: str, sync: bool = True) -> None:
        if name in self._open:
            raise ValueError(f"window '{name}' is already open")
        if sync:
            self.sync()
        if self.reader is not None and self.align_counter:
            t0, counters, aligned = self._aligned_begin()
        else:
            counters, aligned = self._counters(), False
            if self.sampler is not None and self.edge_ticks:
                self.sampler.tick()
            t0 = self.clock()
        self._open[name] = _Open(t0, counters, aligned=aligned)

    def mark(self, window: str, label: str, sync: bool = True) -> None:
        """Note a time (and the summed energy counter) inside an open window, e.g. first token."""
        if window not in self._open:
            raise ValueError(f"window '{window}' is not open")
        if sync:
            self.sync()
        t = self.clock()
        c = self._counters()
        total = None if not c or any(v is None for v in c.values()) else sum(c.values())  # type: ignore[arg-type]
        if self.sampler is not None and self.edge_ticks:
            self.sampler.tick()
        self._open[window].marks[label] = (t, total)

    def cancel_window(self, name: str) -> None:
        self._open.pop(name, None)

    def end_window(self, name: str, sync: bool = True) -> Window:
        if name not in self._open:
            raise ValueError(f"window '{name}' was never begun (open: {sorted(self._open) or 'none'})")
        if sync:
            self.sync()
        t1 = self.clock()
        w = self._open.pop(name)
        if self.reader is not None and w.aligned:
            p_end = {g: self._power(g) for g in self.reader.gpu_indices()}
            if self.sampler is not None and self.edge_ticks:
                self.sampler.tick()
            c1, w.aligned = self._aligned_end(t1, p_end)
        else:
            c1 = self._counters()
            if self.sampler is not None and self.edge_ticks:
                self.sampler.tick()
        c0 = None if not w.counters or any(v is None for v in w.counters.values()) else sum(
            v for v in w.counters.values() if v is not None)
        if self.reader is None:
            return Window(name, w.t0, t1, None, "unavailable", marks=w.marks)
        elapsed = t1 - w.t0
        parts: dict[int, float] = {}
        for g, v1 in c1.items():
            v0 = w.counters.get(g)
            if v0 is None or v1 is None:
                break
            parts[g] = (v1 - v0) / 1000.0
        counter = parts if len(parts) == len(c1) else None  # every GPU's counter read at both ends, or none
        sampler: dict[int, float] | None = None
        if self.sampler is not None:
            sampler = {}
            for g in self.reader.gpu_indices():
                e = self.sampler.energy_j(w.t0, t1, g)
                if e is None:
                    sampler = None
                    break
                sampler[g] = e
        counter_usable = counter is not None and (w.aligned or elapsed >= self.min_counter_window_s) and all(
            v > 0 for v in counter.values())
        if counter_usable:
            energy, method = counter, "nvml_counter"
        elif sampler is not None:
            energy, method = sampler, "power_sampler"
        else:
            energy = {g: self.reader.read(g).power_w * elapsed for g in self.reader.gpu_indices()}
            method = "power_x_time"
        return Window(name, w.t0, t1, energy, method, counter, sampler, w.marks, c0, w.aligned)

    def sampler_energy_j(self, t0: float, t1: float) -> float | None:
        """The sampler's integral over [t0, t1], summed over GPUs (for sub-windows such as the
        prefill, far shorter than the counter's step)."""
        if self.sampler is None or self.reader is None:
            return None
        total = 0.0
        for g in self.reader.gpu_indices():
            e = self.sampler.energy_j(t0, t1, g)
            if e is None:
                return None
            total += e
        return total

    def span_energy(self, t0: float, t1: float) -> tuple[float | None, str, float | None, float | None]:
        """Energy over a span fixed only after it happened (a serving run's steady state), from the
        trace: (energy J, method, counter J, sampler J), summed over GPUs.

        The counter is read at the span's edges by interpolating each GPU's recorded counter
        between the trace samples either side (error at most one counter step of power per edge);
        without a counter, or if the trace does not cover both edges, the sampler's integral."""
        if self.reader is None or self.sampler is None:
            return None, "unavailable", None, None
        sampler_j = self.sampler_energy_j(t0, t1)
        counter_j: float | None = 0.0
        for g in self.reader.gpu_indices():
            pts = [(s.t_s, s.reading.energy_mj) for s in self.sampler.samples(gpu=g)
                   if s.reading.energy_mj is not None]
            e0, e1 = _interp_counter(pts, t0), _interp_counter(pts, t1)
            if e0 is None or e1 is None or e1 < e0:
                counter_j = None
                break
            counter_j += (e1 - e0) / 1000.0  # type: ignore[operator]
        if counter_j is not None and counter_j > 0:
            return counter_j, "nvml_counter_trace", counter_j, sampler_j
        if sampler_j is not None:
            return sampler_j, "power_sampler", counter_j, sampler_j
        return None, "unavailable", counter_j, sampler_j

    def measure_idle(self, seconds: float, sleep: Callable[[float], None] = time.sleep) -> Window:
        """Idle baseline: a quiet window of ``seconds`` with nothing queued on the GPU."""
        if seconds <= 0:
            raise ValueError(f"idle measurement needs a positive duration, got {seconds}")
        self.begin_window("__idle__")
        sleep(seconds)
        return self.end_window("__idle__")


def open_nvml(sample_interval_s: float, min_counter_window_s: float) -> tuple[EnergyMonitor, list[str], str]:
    """A monitor on NVML with the GPUs' names and the driver version, for a bench run's provenance
    (raises NvmlUnavailable without NVML): the one opening the bench command and a cluster node share."""
    monitor = EnergyMonitor.open(sample_interval_s, min_counter_window_s=min_counter_window_s)
    reader = monitor.reader
    assert isinstance(reader, NvmlReader)  # open() always reads NVML
    return monitor, reader.names(), reader.driver_version()


def _interp_counter(pts: Sequence[tuple[float, float | None]], t: float) -> float | None:
    """A cumulative counter at time t from time-ordered (time, mJ) samples bracketing t; None when
    t lies outside them (a counter is never extrapolated)."""
    before = [(ts, v) for ts, v in pts if ts <= t and v is not None]
    after = [(ts, v) for ts, v in pts if ts >= t and v is not None]
    if not before or not after:
        return None
    (ta, va), (tb, vb) = before[-1], after[0]
    if tb == ta:
        return va
    return va + (vb - va) * (t - ta) / (tb - ta)


def relative_gap(a: float | None, b: float | None) -> float | None:
    """|a - b| / b, or None when either is missing or b is zero."""
    if a is None or b is None or b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return abs(a - b) / abs(b)
