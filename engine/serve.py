"""The serving benchmark (`ecolobster bench --serve`): a load test of transformers' continuous
batching (the paged-attention ``ContinuousBatchingManager`` behind ``generate_batch``).

A client in this process sends requests to the manager's background generation loop, which
admits new requests into the running batch and retires finished ones at every step:

- ``poisson`` arrivals: an open loop at ``rate_rps`` requests per second, exponential gaps drawn
  from a seeded generator; a request's latency counts from its scheduled arrival, so a client
  that falls behind shows up as latency, not as a lighter load;
- ``concurrency``: a closed loop that keeps ``concurrency`` requests in flight (a new one is sent
  as each finishes) until ``num_requests`` have been sent.

Prompt and output lengths are fixed or drawn (``LengthDist``). Every generated token carries the
manager's timestamp, which gives each request's TTFT, inter-token latencies and end-to-end
latency.

The steady-state window (``steady_window``), over which energy and throughput are reported:

- start, ``concurrency``: the first instant at which ``concurrency`` requests are decoding
  (first token out, not finished): the initial prefill wave is excluded;
  start, ``poisson``: the first completion (until then the server only fills up);
- end, ``concurrency``: the first completion that is not replaced by a new request (the
  (N - C + 1)-th of N requests at concurrency C); ``poisson``: the first completion after the
  last arrival. From there on nothing arrives and the batch only drains.

Energy over that window comes from the power trace (``EnergyMonitor.span_energy``), since its
edges are known only afterwards. Latency percentiles are over the requests that arrived inside
the window. One load test is one protocol run: warm-up load tests first, then the measured ones,
all on the same loaded model and the same running manager.
"""

from __future__ import annotations

import csv
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.power import EnergyMonitor, relative_gap
from engine.protocol import ProtocolSettings, RunMeasurement, run_protocol
from engine.provenance import Provenance
from engine.results import ResultBase, SweepBase, WindowEnergy, gb, slug

log = logging.getLogger(__name__)


Event = Callable[[str, dict[str, Any]], None]
Arrival = Literal["poisson", "concurrency"]
FRAMEWORK = "hf-continuous-batching"


class ServeError(RuntimeError):
    """The load test could not produce a measurement; the message says what to change."""


# --- lengths -----------------------------------------------------------------------------------

class LengthDist(BaseModel):
    """A token-length distribution: ``fixed`` (a), ``uniform`` integers in [a, b], or ``normal``
    with mean a and standard deviation b, rounded and clipped to [1, a + 4b]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fixed", "uniform", "normal"] = "fixed"
    a: int = Field(ge=1)
    b: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> LengthDist:
        if self.kind == "fixed" and self.b is not None:
            raise ValueError("a fixed length takes one number")
        if self.kind != "fixed" and self.b is None:
            raise ValueError(f"a {self.kind} length needs two numbers")
        if self.kind == "uniform" and self.b is not None and self.b < self.a:
            raise ValueError(f"uniform:{self.a}:{self.b}: the upper bound is below the lower one")
        return self

    @classmethod
    def parse(cls, spec: str | int) -> LengthDist:
        """``"128"`` (fixed), ``"uniform:64:256"`` or ``"normal:128:32"``; ValueError otherwise."""
        text = str(spec).strip().lower()
        parts = text.split(":")
        try:
            if len(parts) == 1:
                return cls(kind="fixed", a=int(parts[0]))
            if len(parts) == 3 and parts[0] in ("uniform", "normal"):
                return cls(kind=parts[0], a=int(parts[1]), b=int(parts[2]))  # type: ignore[arg-type]
        except ValueError as err:
            if "invalid literal" not in str(err):
                raise ValueError(f"length '{spec}': {_first_error(err)}") from None
        raise ValueError(f"length '{spec}' is not N, uniform:LO:HI or normal:MEAN:STD (positive integers)")

    def sample(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            return self.a
        assert self.b is not None
        if self.kind == "uniform":
            return rng.randint(self.a, self.b)
        return max(1, min(self.max_value(), round(rng.gauss(self.a, self.b))))

    def max_value(self) -> int:
        if self.kind == "fixed":
            return self.a
        assert self.b is not None
        return self.b if self.kind == "uniform" else self.a + 4 * self.b

    def mean(self) -> float:
        if self.kind == "fixed":
            return float(self.a)
        assert self.b is not None
        return (self.a + self.b) / 2 if self.kind == "uniform" else float(self.a)

    def label(self) -> str:
        return str(self.a) if self.kind == "fixed" else f"{self.kind}:{self.a}:{self.b}"


def _first_error(err: Exception) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):
        try:
            return str(errors()[0]["msg"])
        except Exception:  # not a pydantic-style error after all: its text stands
            log.debug("unreadable errors() on %s", type(err).__name__, exc_info=True)
    return str(err).splitlines()[-1]


# --- configuration -----------------------------------------------------------------------------

class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    precision: str
    arrival: Arrival
    rate_rps: float | None = Field(default=None, gt=0, description="poisson: requests per second")
    concurrency: int | None = Field(default=None, ge=1, description="concurrency: requests kept in flight")
    num_requests: int = Field(default=64, ge=2, description="requests per load test")
    prompt: LengthDist = LengthDist(a=128)
    output: LengthDist = LengthDist(a=128)
    seed: int = 0
    max_num_seqs: int | None = Field(default=None, ge=1, description="the manager's requests-per-batch cap")
    synthetic: bool = True
    overrides: dict[str, int] = {}
    compute_dtype: Literal["fp16", "bf16", "fp32"] = "fp16"
    double_quant: bool = False
    fp8_mode: Literal["weight_only", "dynamic"] = "dynamic"
    compile: bool = False
    trust_remote_code: bool = False
    note: str = ""

    @model_validator(mode="after")
    def _load(self) -> ServeConfig:
        if self.arrival == "poisson" and (self.rate_rps is None or self.concurrency is not None):
            raise ValueError("poisson arrivals take a rate (requests/s) and no concurrency")
        if self.arrival == "concurrency":
            if self.concurrency is None or self.rate_rps is not None:
                raise ValueError("a fixed concurrency takes a concurrency and no rate")
            if self.num_requests <= self.concurrency:
                raise ValueError(f"{self.num_requests} requests at concurrency {self.concurrency} never leave the "
                                 "initial wave, so there is no steady state: send more requests than the "
                                 "concurrency (2x or more)")
        return self

    # The Sweep and the rows read these names on every configuration.
    @property
    def batch_size(self) -> int:
        return self.concurrency or self.max_num_seqs or 1

    @property
    def prompt_tokens(self) -> int:
        return max(1, round(self.prompt.mean()))

    @property
    def gen_tokens(self) -> int:
        return max(1, round(self.output.mean()))

    def load_key(self) -> tuple[Any, ...]:
        return (self.model, self.precision, self.synthetic, tuple(sorted(self.overrides.items())),
                self.double_quant, self.compute_dtype, self.fp8_mode, self.compile)

    def load_label(self) -> str:
        return f"rate {self.rate_rps:g}/s" if self.arrival == "poisson" else f"concurrency {self.concurrency}"

    def key(self) -> str:
        ov = "".join(f"-{k}{v}" for k, v in sorted(self.overrides.items()))
        load = f"rate{self.rate_rps:g}" if self.arrival == "poisson" else f"c{self.concurrency}"
        extra = f"-seqs{self.max_num_seqs}" if self.max_num_seqs else ""
        extra += "-compiled" if self.compile else ""
        return slug(f"serve-{'syn' if self.synthetic else 'real'}-{self.model}{ov}-{self.precision}-{load}"
                    f"-n{self.num_requests}-p{self.prompt.label()}-g{self.output.label()}-s{self.seed}{extra}")


# --- the load ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedRequest:
    request_id: str
    prompt: list[int]
    max_new_tokens: int
    offset_s: float  # poisson: scheduled arrival after the test's start; concurrency: 0


def plan_requests(cfg: ServeConfig, vocab: int, tag: str = "r") -> list[PlannedRequest]:
    """The requests of one load test: lengths, prompt ids and arrival offsets from ``cfg.seed``
    (the same plan every run, so runs differ only in what the server did)."""
    rng = random.Random(cfg.seed)
    low = min(100, max(vocab - 1, 1) // 2)  # skip the low ids where vocabularies keep special tokens
    t = 0.0
    out = []
    for i in range(cfg.num_requests):
        n_prompt, n_out = cfg.prompt.sample(rng), cfg.output.sample(rng)
        ids = [rng.randrange(low, vocab) for _ in range(n_prompt)]
        if cfg.arrival == "poisson":
            assert cfg.rate_rps is not None
            t = 0.0 if i == 0 else t + rng.expovariate(cfg.rate_rps)
        out.append(PlannedRequest(f"{tag}{i}", ids, n_out, t if cfg.arrival == "poisson" else 0.0))
    return out


@dataclass
class Finished:
    """A request the server finished: the clock time of each generated token."""

    request_id: str
    token_times: list[float]
    error: str | None = None


class Backend(Protocol):
    """A serving loop running beside the client: requests go in, finished ones come out."""

    def submit(self, request_id: str, prompt: list[int], max_new_tokens: int) -> None: ...

    def poll(self, timeout_s: float) -> list[Finished]: ...


class RequestRecord(BaseModel):
    """One request of one load test, times on the monitor's clock (relative on disk)."""

    request_id: str
    prompt_tokens: int
    max_new_tokens: int
    arrival: float  # scheduled arrival (poisson) or send time (concurrency)
    sent: float
    first_token: float | None = None
    finish: float | None = None
    token_times: list[float] = []
    error: str | None = None

    @property
    def n_tokens(self) -> int:
        return len(self.token_times)


def run_load(backend: Backend, plan: Sequence[PlannedRequest], arrival: Arrival, concurrency: int | None,
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
             stall_s: float = 120.0) -> list[RequestRecord]:
    """Send ``plan`` to ``backend`` as the arrival mode says and collect every request's tokens.

    Raises ServeError when the server returns nothing for ``stall_s`` seconds."""
    recs: dict[str, RequestRecord] = {}
    t_base = clock()
    nxt = 0
    last_progress = t_base

    def send(p: PlannedRequest, at: float) -> None:
        now = clock()
        backend.submit(p.request_id, p.prompt, p.max_new_tokens)
        recs[p.request_id] = RequestRecord(request_id=p.request_id, prompt_tokens=len(p.prompt),
                                           max_new_tokens=p.max_new_tokens, arrival=at, sent=now)

    if arrival == "concurrency":
        assert concurrency is not None
        while nxt < min(concurrency, len(plan)):
            send(plan[nxt], clock())
            nxt += 1
    done = 0
    while done < len(plan):
        now = clock()
        if arrival == "poisson":
            while nxt < len(plan) and t_base + plan[nxt].offset_s <= now:
                send(plan[nxt], t_base + plan[nxt].offset_s)
                nxt += 1
            wait = 0.05 if nxt >= len(plan) else min(0.05, max(0.0, t_base + plan[nxt].offset_s - clock()))
        else:
            wait = 0.05
        got = backend.poll(wait)
        for f in got:
            r = recs.get(f.request_id)
            if r is None or r.finish is not None:
                continue
            r.token_times = list(f.token_times)
            r.first_token = f.token_times[0] if f.token_times else None
            r.finish = f.token_times[-1] if f.token_times else clock()
            r.error = f.error
            done += 1
            if arrival == "concurrency" and nxt < len(plan):
                send(plan[nxt], clock())
                nxt += 1
        if got:
            last_progress = clock()
        elif clock() - last_progress > stall_s:
            raise ServeError(f"the server returned nothing for {stall_s:g} s with {len(plan) - done} request(s) "
                             "outstanding")
    failed = [r for r in recs.values() if r.error]
    if failed:
        raise ServeError(f"{len(failed)} request(s) failed in the server, e.g. {failed[0].request_id}: "
                         f"{failed[0].error}")
    return [recs[p.request_id] for p in plan]


# --- the steady state and its statistics -------------------------------------------------------

@dataclass(frozen=True)
class SteadyWindow:
    t0: float
    t1: float
    start_rule: str
    end_rule: str
    reached: int  # concurrency reached at the start (concurrency mode), or the target

    @property
    def duration_s(self) -> float:
        return self.t1 - self.t0


def steady_window(recs: Sequence[RequestRecord], arrival: Arrival, concurrency: int | None) -> SteadyWindow:
    """The steady-state window of one load test (module docstring); ServeError when it is empty."""
    ok = [r for r in recs if r.first_token is not None and r.finish is not None]
    if len(ok) < 2:
        raise ServeError("fewer than two requests produced tokens: no steady state to measure")
    finishes = sorted(r.finish for r in ok if r.finish is not None)
    if arrival == "concurrency":
        assert concurrency is not None
        # Each of the first N - C completions is replaced by a new request; the next one is not.
        t1 = finishes[min(len(finishes) - 1, max(0, len(recs) - concurrency))]
        end_rule = "the first completion not replaced by a new request (start of the drain)"
        events = sorted([(r.first_token, 1) for r in ok] + [(r.finish, -1) for r in ok],  # type: ignore[misc]
                        key=lambda e: (e[0], e[1]))
        n, peak, t_peak, t0 = 0, 0, None, None
        for t, d in events:
            n += d
            if n > peak:
                peak, t_peak = n, t
            if n >= concurrency and t0 is None:
                t0 = t
        reached = concurrency
        start_rule = f"first instant {concurrency} requests were decoding (initial prefill wave excluded)"
        if t0 is None:  # the server never ran the target batch (cache or batch cap): start at its peak
            t0, reached = t_peak, peak
            start_rule = (f"concurrency {concurrency} was never reached (peak {peak} decoding): the window starts "
                          f"when {peak} were first decoding")
    else:
        last_sent = max(r.sent for r in recs)
        after = [t for t in finishes if t > last_sent]
        if not after:  # cannot happen in a real run: the last request sent finishes after it was sent
            raise ServeError("no request finished after the last one was sent")
        t1 = after[0]
        end_rule = "the first completion after the last arrival (start of the drain)"
        t0 = finishes[0]
        reached = 0
        start_rule = "first completion (the server has filled up: requests leave as others arrive)"
    assert t0 is not None
    if t1 <= t0:
        raise ServeError(f"the steady-state window is empty (starts {t0 - min(r.sent for r in recs):.2f} s in, the "
                         "drain starts before it): send more requests (--num-requests) or a higher rate")
    return SteadyWindow(t0, t1, start_rule, end_rule, reached)


def percentile(xs: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between order statistics."""
    if not xs:
        raise ValueError("percentile of an empty list")
    s = sorted(xs)
    k = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class LoadStats(BaseModel):
    """What one load test measured inside its steady-state window."""

    window_t0: float
    window_t1: float
    window_s: float
    start_rule: str
    end_rule: str
    reached_concurrency: int
    requests: int
    requests_in_window: int  # arrived inside the window: the latency sample
    completed_in_window: int
    tokens_in_window: int
    throughput_tok_s: float
    request_rate_rps: float
    mean_batch_size: float
    mean_output_tokens: float
    latency_sample: str
    ttft_ms: dict[str, float]
    itl_ms: dict[str, float]
    e2e_s: dict[str, float]


PCTS = (50, 90, 95, 99)


def _pcts(xs: Sequence[float], scale: float) -> dict[str, float]:
    out = {f"p{q}": percentile(xs, q) * scale for q in PCTS}
    out["mean"] = sum(xs) / len(xs) * scale
    return out


def load_stats(recs: Sequence[RequestRecord], w: SteadyWindow) -> LoadStats:
    tokens = sum(1 for r in recs for t in r.token_times if w.t0 < t <= w.t1)
    decoding = sum(max(0.0, min(r.finish, w.t1) - max(r.first_token, w.t0)) for r in recs
                   if r.first_token is not None and r.finish is not None)
    inside = [r for r in recs if w.t0 <= r.arrival <= w.t1 and r.first_token is not None]
    sample = "requests that arrived inside the steady-state window"
    if not inside:
        inside = [r for r in recs if r.first_token is not None]
        sample = "all requests (none arrived inside the steady-state window)"
    itl = [b - a for r in inside for a, b in zip(r.token_times, r.token_times[1:], strict=False)]
    if not itl:
        raise ServeError("no request produced two tokens: inter-token latency needs output lengths of 2 or more")
    completed = sum(1 for r in recs if r.finish is not None and w.t0 < r.finish <= w.t1)
    return LoadStats(
        window_t0=w.t0, window_t1=w.t1, window_s=w.duration_s, start_rule=w.start_rule, end_rule=w.end_rule,
        reached_concurrency=w.reached, requests=len(recs), requests_in_window=len(inside),
        completed_in_window=completed, tokens_in_window=tokens, throughput_tok_s=tokens / w.duration_s,
        request_rate_rps=completed / w.duration_s, mean_batch_size=decoding / w.duration_s,
        mean_output_tokens=sum(r.n_tokens for r in recs) / len(recs), latency_sample=sample,
        ttft_ms=_pcts([r.first_token - r.arrival for r in inside], 1000.0),  # type: ignore[operator]
        itl_ms=_pcts(itl, 1000.0),
        e2e_s=_pcts([r.finish - r.arrival for r in inside], 1.0))  # type: ignore[operator]


# --- transformers' continuous batching as a Backend ---------------------------------------------

def cb_config_class() -> Any:
    """transformers' ContinuousBatchingConfig, or ServeError naming the version that lacks it."""
    try:
        from transformers.generation.configuration_utils import ContinuousBatchingConfig
    except ImportError:
        import transformers

        raise ServeError(f"transformers {transformers.__version__} has no continuous batching "
                         "(ContinuousBatchingConfig): --serve needs transformers >= 5.17") from None
    return ContinuousBatchingConfig


def cache_sizing(cfg: ServeConfig, device: str) -> dict[str, int]:
    """The paged cache's size where transformers would otherwise take most free memory: on CPU,
    exactly what the load needs (it would zero gigabytes of RAM); on a GPU, its own sizing."""
    if device.startswith("cuda"):
        return {"max_requests_per_batch": cfg.max_num_seqs} if cfg.max_num_seqs else {}
    page = 32
    seqs = cfg.max_num_seqs or cfg.concurrency or min(cfg.num_requests, 64)
    per_req = math.ceil((cfg.prompt.max_value() + cfg.output.max_value()) / page) + 1
    return {"page_size": page, "num_blocks": seqs * per_req + 8,
            "max_batch_tokens": max(256, min(seqs, 16) * (cfg.prompt.max_value() + 1)),
            "max_requests_per_batch": seqs}


class HFContinuousBatching:
    """transformers' ContinuousBatchingManager (present with the same API in 5.17 and 5.24):
    ``init_continuous_batching`` + ``warmup`` (CUDA graphs / compile, outside any window) +
    ``start``, requests added with per-token timestamps, results polled."""

    def __init__(self, model: Any, cfg: ServeConfig, device: str, clock: Callable[[], float] = time.monotonic):
        import dataclasses

        from transformers import GenerationConfig

        cls = cb_config_class()
        fields = {f.name for f in dataclasses.fields(cls)}
        sizing = cache_sizing(cfg, device)
        if "page_size" in sizing and "page_size" not in fields:  # 5.17 calls it block_size
            sizing["block_size"] = sizing.pop("page_size")
        kwargs: dict[str, Any] = {k: v for k, v in sizing.items() if k in fields}
        if "seed" in fields:
            kwargs["seed"] = cfg.seed
        self.sizing = kwargs
        gen = GenerationConfig(max_new_tokens=cfg.output.max_value(), do_sample=False, eos_token_id=-1,
                               pad_token_id=0)
        self.manager = model.init_continuous_batching(generation_config=gen,
                                                      continuous_batching_config=cls(**kwargs))
        self.clock = clock
        # Token timestamps are time.perf_counter(); the monitor's clock may be another one.
        self.offset = clock() - time.perf_counter()
        t = time.perf_counter()
        self.manager.warmup()
        self.manager.start()
        self.warmup_s = time.perf_counter() - t
        self.attn = getattr(model.config, "_attn_implementation", None)

    def submit(self, request_id: str, prompt: list[int], max_new_tokens: int) -> None:
        rid = self.manager.add_request(prompt, request_id=request_id, max_new_tokens=max_new_tokens,
                                       record_timestamps=True)
        if rid is None:
            raise ServeError(f"the continuous-batching manager refused request {request_id}")

    def poll(self, timeout_s: float) -> list[Finished]:
        out: list[Finished] = []
        res = self.manager.get_result(timeout=timeout_s)
        while res is not None:
            if res.is_finished():
                times = [t + self.offset for t in (res.timestamps or [])]
                err = res.error
                if err is None and len(times) != len(res.generated_tokens):
                    err = (f"{len(res.generated_tokens)} tokens but {len(times)} timestamps: this transformers "
                           "does not record per-token times")
                out.append(Finished(res.request_id, times, err))
            res = self.manager.get_result(timeout=0)
        if not out and not self.manager.is_running():
            raise ServeError("the continuous-batching generation loop stopped (see the log above for its error)")
        return out

    def close(self) -> None:
        self.manager.stop(block=True, timeout=30)
        destroy = getattr(self.manager, "destroy", None)
        if destroy is not None:
            destroy()


# --- measuring one configuration ---------------------------------------------------------------

class ServeRun(WindowEnergy):
    phase: Literal["warmup", "measure"]
    index: int
    stats: LoadStats


class ServeResult(ResultBase):
    config: ServeConfig
    framework: str = FRAMEWORK
    n_runs: int = 0
    warmup_s: float | None = None  # manager warm-up (CUDA graphs / compile), outside every window
    cache_sizing: dict[str, int] = {}
    throughput_tok_s: float | None = None
    throughput_std: float | None = None
    request_rate_rps: float | None = None
    window_s: float | None = None
    mean_batch_size: float | None = None
    mean_output_tokens: float | None = None
    reached_concurrency: int | None = None
    window_rule: str | None = None
    latency_sample: str | None = None
    ttft_ms: dict[str, float] = {}
    itl_ms: dict[str, float] = {}
    e2e_s: dict[str, float] = {}
    energy_j_per_token: float | None = None
    energy_j_per_1k_tok: float | None = None
    energy_net_j_per_1k_tok: float | None = None
    energy_j_per_request: float | None = None
    requests_file: str | None = None
    runs: list[ServeRun] = []


def _pooled(runs: Sequence[ServeRun], recs: Sequence[Sequence[RequestRecord]]) -> dict[str, dict[str, float]]:
    """Latency percentiles over the latency samples of every measured run together."""
    inside: list[RequestRecord] = []
    for run, rr in zip(runs, recs, strict=True):
        s = run.stats
        sel = [r for r in rr if s.window_t0 <= r.arrival <= s.window_t1 and r.first_token is not None]
        inside += sel or [r for r in rr if r.first_token is not None]
    itl = [b - a for r in inside for a, b in zip(r.token_times, r.token_times[1:], strict=False)]
    return {"ttft_ms": _pcts([r.first_token - r.arrival for r in inside], 1000.0),  # type: ignore[operator]
            "itl_ms": _pcts(itl, 1000.0),
            "e2e_s": _pcts([r.finish - r.arrival for r in inside], 1.0)}  # type: ignore[operator]


def measure_serving(backend: Backend, cfg: ServeConfig, vocab: int, monitor: EnergyMonitor,
                    settings: ProtocolSettings, on_event: Event | None = None
                    ) -> tuple[Any, list[ServeRun], list[list[RequestRecord]], dict[str, Any]]:
    """Idle baseline, warm-up load tests and measured load tests against a running backend."""
    info: dict[str, Any] = {}
    if settings.idle_s > 0 and monitor.energy_available:
        info["idle_power_w"] = monitor.measure_idle(settings.idle_s).power_w
    runs: list[ServeRun] = []
    all_recs: list[list[RequestRecord]] = []
    counter = {"n": 0}

    def once(i: int) -> RunMeasurement:
        counter["n"] += 1
        plan = plan_requests(cfg, vocab, tag=f"t{counter['n']}-")
        monitor.begin_window("serve")  # the whole test, so the sampler ticks at its edges
        try:
            recs = run_load(backend, plan, cfg.arrival, cfg.concurrency, clock=monitor.clock)
        except BaseException:
            monitor.cancel_window("serve")
            raise
        monitor.end_window("serve")
        w = steady_window(recs, cfg.arrival, cfg.concurrency)
        stats = load_stats(recs, w)
        energy, method, counter_j, sampler_j = monitor.span_energy(w.t0, w.t1)
        run = ServeRun(phase="warmup" if i < 0 else "measure", index=i, stats=stats, energy_j=energy,
                       counter_j=counter_j, sampler_j=sampler_j, method=method)
        runs.append(run)
        all_recs.append(recs)
        return RunMeasurement(stats.throughput_tok_s, w.duration_s, energy,
                              {"tokens": float(stats.tokens_in_window), "rps": stats.request_rate_rps})

    def report(phase: str, i: int, m: RunMeasurement) -> None:
        if on_event:
            on_event("run", {"phase": phase, "index": i, "throughput_tok_s": m.throughput_tok_s,
                             "power_w": m.power_w, "energy_j": m.energy_j})

    proto = run_protocol(once, settings, report)
    n = len(proto.runs)
    return proto, runs[-n:], all_recs[-n:], info


def summarise_serving(res: ServeResult, proto: Any, runs: list[ServeRun], recs: list[list[RequestRecord]],
                      info: dict[str, Any]) -> ServeResult:
    stats = [r.stats for r in runs]
    pooled = _pooled(runs, recs)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    upd: dict[str, Any] = dict(
        n_runs=len(runs), attempts=proto.attempts, gate_failed=proto.gate_failed, gate_notes=proto.gate_notes,
        throughput_tok_s=proto.throughput.mean, throughput_std=proto.throughput.std,
        request_rate_rps=mean([s.request_rate_rps for s in stats]), window_s=mean([s.window_s for s in stats]),
        mean_batch_size=mean([s.mean_batch_size for s in stats]),
        mean_output_tokens=mean([s.mean_output_tokens for s in stats]),
        reached_concurrency=min(s.reached_concurrency for s in stats),
        window_rule=f"start: {stats[0].start_rule}; end: {stats[0].end_rule}",
        latency_sample=stats[0].latency_sample, runs=runs, idle_power_w=info.get("idle_power_w"), **pooled)
    energies = [r.energy_j for r in runs]
    if all(e is not None for e in energies) and proto.energy is not None:
        per_tok = [e / s.tokens_in_window for e, s in zip(energies, stats, strict=True)]  # type: ignore[operator]
        jt = mean(per_tok)
        upd.update(energy_j_per_token=jt, energy_j_per_1k_tok=jt * 1000,
                   energy_std=(proto.energy.std / mean([s.tokens_in_window for s in stats])) * 1000,
                   energy_j_per_request=jt * upd["mean_output_tokens"], power_w=proto.power.mean,
                   power_std=proto.power.std, energy_method="+".join(sorted({r.method for r in runs})))
        idle = info.get("idle_power_w")
        if idle is not None:
            nets = [max(0.0, e - idle * s.window_s) / s.tokens_in_window  # type: ignore[operator]
                    for e, s in zip(energies, stats, strict=True)]
            upd["energy_net_j_per_1k_tok"] = mean(nets) * 1000
        gaps = [g for g in (relative_gap(r.sampler_j, r.counter_j) for r in runs) if g is not None]
        if gaps:
            upd["counter_vs_sampler"] = mean(gaps)
    return res.model_copy(update=upd)


def write_requests_csv(path: Path, runs: Sequence[ServeRun], recs: Sequence[Sequence[RequestRecord]],
                       t_origin: float) -> Path:
    """The request trace: one line per request of every measured run (times relative to the
    power trace's origin), with the run's window, so every figure can be recomputed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["run", "request_id", "prompt_tokens", "max_new_tokens", "tokens", "arrival_s", "sent_s",
            "first_token_s", "finish_s", "window_t0_s", "window_t1_s", "in_window", "token_times_s"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for run, rr in zip(runs, recs, strict=True):
            s = run.stats
            for r in rr:
                def rel(t: float | None) -> str:
                    return "" if t is None else f"{t - t_origin:.6f}"
                w.writerow([run.index, r.request_id, r.prompt_tokens, r.max_new_tokens, r.n_tokens, rel(r.arrival),
                            rel(r.sent), rel(r.first_token), rel(r.finish), rel(s.window_t0), rel(s.window_t1),
                            int(s.window_t0 <= r.arrival <= s.window_t1),
                            " ".join(f"{t - t_origin:.6f}" for t in r.token_times)])
    return path


class ServeSweep(SweepBase):
    """Load tests of each configuration, one model load (and one running manager) per model."""

    result_cls = ServeResult

    def __init__(self, configs: Iterable[ServeConfig], settings: ProtocolSettings, device: str,
                 out_path: str | Path, trace_dir: str | Path | None = None, monitor: EnergyMonitor | None = None,
                 loader: Callable[..., Any] | None = None, provenance: Provenance | None = None,
                 on_event: Event | None = None, deadline: float | None = None,
                 backend_factory: Callable[[Any, ServeConfig, str], Any] | None = None):
        super().__init__(configs, settings, device, out_path, trace_dir, monitor, loader, provenance, on_event,
                         deadline)
        self.backend_factory = backend_factory or (lambda model, cfg, dev: HFContinuousBatching(
            model, cfg, dev, clock=self.monitor.clock))

    def _load(self, cfg: ServeConfig) -> Any:
        return self.loader(cfg.model, cfg.precision, self.device, synthetic=cfg.synthetic,
                           overrides=cfg.overrides or None, compute_dtype=cfg.compute_dtype,
                           double_quant=cfg.double_quant, fp8_mode=cfg.fp8_mode, compile_model=cfg.compile,
                           trust_remote_code=cfg.trust_remote_code)

    def _one(self, lm: Any, cfg: ServeConfig) -> ServeResult:

        from engine.inference import _vocab, is_oom
        from engine.models import free_memory

        base = self._base(cfg, "ok", model_id=lm.model_id, arch_key=lm.arch_key, params_b=lm.params_b,
                          weights=lm.weights, load_s=lm.load_s, notes=list(lm.notes))
        cuda = self.device.startswith("cuda")
        t_start = self.monitor.clock()
        backend = None
        try:
            if cuda:
                import torch

                torch.cuda.reset_peak_memory_stats()
            # A manager per configuration: its paged cache is sized for this load.
            backend = self.backend_factory(lm.model, cfg, self.device)
            proto, runs, recs, info = measure_serving(backend, cfg, _vocab(lm.model), self.monitor, self.settings,
                                                      self.on_event)
        except Exception as err:
            free_memory()
            status = "oom" if is_oom(err) else "error"
            return base.model_copy(update={"status": status, "error": f"{type(err).__name__}: {err}"})
        finally:
            if backend is not None and hasattr(backend, "close"):
                try:
                    backend.close()
                except Exception:  # the result is already decided; a backend left open is said
                    log.warning("closing the serving backend failed", exc_info=True)
        t_end = self.monitor.clock()
        res = summarise_serving(base, proto, runs, recs, info)
        upd: dict[str, Any] = {"warmup_s": getattr(backend, "warmup_s", None),
                               "cache_sizing": dict(getattr(backend, "sizing", {}) or {})}
        attn = getattr(backend, "attn", None)
        if attn:
            upd["notes"] = [*res.notes, f"continuous batching attention={attn}"]
        if cuda:
            import torch

            upd["peak_mem_alloc_gb"] = gb(torch.cuda.max_memory_allocated())
            upd["peak_mem_reserved_gb"] = gb(torch.cuda.max_memory_reserved())
        if self.trace_dir is not None:
            upd["requests_file"] = write_requests_csv(self.trace_dir / f"{cfg.key()}-requests.csv", runs, recs,
                                                      t_start).name
        sampler = self.monitor.sampler
        if sampler is not None:
            nv = sampler.max_mem_used_mb(t_start, t_end)
            upd["peak_mem_nvml_gb"] = None if nv is None else nv * 2**20 / 1e9
            if self.trace_dir is not None:
                name = f"{cfg.key()}.csv"
                sampler.to_csv(self.trace_dir / name, t_start, t_end, t_origin=t_start)
                upd["trace_file"] = name
        return res.model_copy(update=upd)

