"""The inference benchmark: greedy generation of a fixed length, prefill and decode timed apart,
batch sizes swept, OOM recorded and skipped, and an interrupted sweep resumed.

One run = one ``generate`` call on a fixed random prompt of ``prompt_tokens`` tokens per
sequence with ``min_new_tokens = max_new_tokens = gen_tokens`` (the output length is checked).
A logits processor marks the first call, which happens right after the prefill forward pass:
the window up to that mark is the prefill (time to first token), the rest is decode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.power import EnergyMonitor, relative_gap
from engine.protocol import ProtocolResult, ProtocolSettings, RunMeasurement, run_protocol
from engine.provenance import Provenance
from engine.results import ResultBase, SweepBase, WindowEnergy, energy_fields, gb, slug

log = logging.getLogger(__name__)


Event = Callable[[str, dict[str, Any]], None]


class InferenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="catalog key/alias (synthetic) or hub id / local path (real)")
    precision: str
    batch_size: int = Field(ge=1)
    prompt_tokens: int = Field(default=128, ge=1)
    gen_tokens: int = Field(default=256, ge=2)
    synthetic: bool = True
    overrides: dict[str, int] = {}
    double_quant: bool = False
    compute_dtype: Literal["fp16", "bf16", "fp32"] = "fp16"
    fp8_mode: Literal["weight_only", "dynamic"] = "dynamic"
    compile: bool = False
    trust_remote_code: bool = False
    cache: Literal["dynamic", "static"] = Field(
        default="dynamic", description="KV cache: dynamic (hf-eager) or static, whose decode step transformers "
                                       "compiles into CUDA graphs on a GPU (hf-static-cache)")
    tp: int | None = Field(default=None, ge=1, description="tensor-parallel ranks (engine.parallel); None: one process")
    note: str = Field(default="", description="a sentence the caller wants in the row's notes")

    @property
    def framework(self) -> str:
        return "hf-static-cache" if self.cache == "static" else "hf-eager"

    def load_key(self) -> tuple[Any, ...]:
        """Configurations with the same load key share one loaded model."""
        return (self.model, self.precision, self.synthetic, tuple(sorted(self.overrides.items())),
                self.double_quant, self.compute_dtype, self.fp8_mode, self.compile, self.tp)

    def key(self) -> str:
        ov = "".join(f"-{k}{v}" for k, v in sorted(self.overrides.items()))
        extra = ("-dq" if self.double_quant else "") + (f"-{self.fp8_mode}" if self.precision == "fp8" else "")
        extra += "-compiled" if self.compile else ""
        extra += "-static" if self.cache == "static" else ""
        extra += f"-tp{self.tp}" if self.tp is not None else ""
        extra += "" if self.precision not in ("nf4", "int8_mixed", "int8_pure", "fp8") else f"-c{self.compute_dtype}"
        return slug(f"{'syn' if self.synthetic else 'real'}-{self.model}{ov}-{self.precision}{extra}"
                    f"-bs{self.batch_size}-p{self.prompt_tokens}-g{self.gen_tokens}")


class RunRecord(WindowEnergy):
    """One measured run, times relative to the configuration's start (seconds)."""

    phase: Literal["warmup", "measure"]
    t0: float
    t1: float
    elapsed_s: float
    prefill_s: float
    throughput_tok_s: float
    decode_tok_s: float
    prefill_energy_j: float | None = None
    aligned: bool = False
    repeats: int = 1  # generate calls inside the window (to reach the minimum window)
    energy_per_gpu_j: dict[int, float] | None = None  # by NVML index, summed into energy_j


class InferenceResult(ResultBase):
    config: InferenceConfig
    n_runs: int = 0
    throughput_tok_s: float | None = None
    throughput_std: float | None = None
    prefill_ms: float | None = None
    prefill_ms_std: float | None = None
    decode_tok_s: float | None = None
    energy_per_run_j: float | None = None
    energy_j_per_1k_tok: float | None = None
    energy_net_j_per_1k_tok: float | None = None
    prefill_energy_j: float | None = None
    cpu_ram_energy_j: float | None = None
    codecarbon_gpu_j: float | None = None
    framework: str = "hf-eager"
    repeats: int = 1
    warmup_s: list[float] = []
    first_call_overhead_s: float | None = Field(
        default=None, description="first warm-up run minus the median measured run: compilation, graph capture")
    decode_compiled: bool | None = None
    interleaved_with: list[str] = []
    runs: list[RunRecord] = []


def is_oom(err: BaseException) -> bool:
    """CUDA out-of-memory, whichever way the library raised it."""
    try:
        import torch

        if isinstance(err, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    text = str(err)
    return "out of memory" in text.lower() or "CUBLAS_STATUS_ALLOC_FAILED" in text


class _FirstToken:
    """A logits processor whose first call marks the end of the prefill inside the open window."""

    def __init__(self, monitor: EnergyMonitor, window: str, label: str = "first_token"):
        self.monitor, self.window, self.label, self.done = monitor, window, label, False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.done:
            self.done = True
            self.monitor.mark(self.window, self.label)
        return scores


def make_prompt(batch: int, tokens: int, vocab: int, device: str, seed: int = 1234) -> tuple[Any, Any]:
    """A fixed random prompt (same ids every run and every configuration of the same shape)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    # Skip the lowest ids, where real vocabularies keep special tokens.
    low = min(100, max(vocab - 1, 1) // 2)
    ids = torch.randint(low, vocab, (batch, tokens), generator=g)
    return ids.to(device), torch.ones_like(ids).to(device)


def _vocab(model: Any) -> int:
    emb = model.get_input_embeddings()
    return int(emb.num_embeddings if hasattr(emb, "num_embeddings") else model.config.vocab_size)


def _raise_recompile_limit() -> None:
    """Each batch size is a new graph for dynamo; past its recompile limit (8) it falls back to
    eager silently, which would measure a different regime than the row says."""
    import torch

    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, max(64, getattr(cfg, name)))


class PreparedRuns:
    """One configuration ready to run, run by run: ``once(i)`` is one protocol run (i < 0: warm-up).

    Split from ``measure_inference`` so that configurations sharing a loaded model can be measured
    interleaved (``engine.protocol.run_interleaved``)."""

    def __init__(self, model: Any, cfg: InferenceConfig, monitor: EnergyMonitor, settings: ProtocolSettings,
                 device: str, t_origin: float | None = None, agree: Callable[[bool], bool] | None = None):
        import torch

        # Turns this process's decision into the one all tensor-parallel ranks take (identity alone).
        self.agree = agree or (lambda x: x)

        self.model, self.cfg, self.monitor, self.settings, self.device = model, cfg, monitor, settings, device
        self.t_origin = monitor.clock() if t_origin is None else t_origin
        self.cuda = device.startswith("cuda")
        self.info: dict[str, Any] = {}
        self.records: list[RunRecord] = []
        self.repeats = 1
        self.last_call_s = float("inf")  # the latest generate call's duration (any phase)
        if self.cuda:
            torch.cuda.empty_cache()
        if settings.idle_s > 0 and monitor.energy_available:
            self.info["idle_power_w"] = monitor.measure_idle(settings.idle_s).power_w
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        if cfg.cache == "static":
            _raise_recompile_limit()
        self.ids, self.mask = make_prompt(cfg.batch_size, cfg.prompt_tokens, _vocab(model), device)

    def _generate(self, proc: Any) -> Any:
        import torch
        from transformers import LogitsProcessorList

        cfg = self.cfg
        kw: dict[str, Any] = {"cache_implementation": "static"} if cfg.cache == "static" else {}
        with torch.inference_mode():
            return self.model.generate(input_ids=self.ids, attention_mask=self.mask, max_new_tokens=cfg.gen_tokens,
                                       min_new_tokens=cfg.gen_tokens, do_sample=False, num_beams=1,
                                       logits_processor=LogitsProcessorList([proc]), pad_token_id=0,
                                       use_cache=True, **kw)

    def once(self, i: int) -> RunMeasurement:
        cfg, monitor = self.cfg, self.monitor
        # The first measured run calls generate until its window lasts min_window_s and fixes that
        # count; every later run does the same work, so runs stay comparable.
        calibrate = i == 0 and self.settings.min_window_s > 0 and not any(r.phase == "measure" for r in self.records)
        k = 1 if i < 0 else self.repeats
        monitor.begin_window("gen")
        t_begin = monitor.clock()
        starts: list[float] = []
        firsts: list[tuple[float, float | None]] = []
        try:
            j = 0
            # Calibrating, the calls go on until the window lasts min_window_s and also until j calls at
            # the fastest pace seen (this window's last call, or the last warm-up call) would: a first
            # measured call still slowed by compilation or graph capture must not leave the later,
            # faster runs with windows below the minimum.
            pace = self.last_call_s
            while j < k or (calibrate and self.agree(monitor.clock() - t_begin < self.settings.min_window_s
                                                     or j * pace < self.settings.min_window_s)):
                if j:
                    monitor.mark("gen", f"call{j}")
                proc = _FirstToken(monitor, "gen", f"first_token{j}" if j else "first_token")
                t_call = monitor.clock()
                out = self._generate(proc)
                self.last_call_s = monitor.clock() - t_call
                pace = min(pace, self.last_call_s)
                got = int(out.shape[1]) - cfg.prompt_tokens
                if got != cfg.gen_tokens:
                    raise RuntimeError(f"generation stopped at {got} new tokens instead of {cfg.gen_tokens}")
                j += 1
            if calibrate:
                k = self.repeats = j
        except BaseException:
            monitor.cancel_window("gen")
            raise
        w = monitor.end_window("gen")
        for j in range(k):
            starts.append(w.t0 if j == 0 else w.marks[f"call{j}"][0])
            firsts.append(w.marks.get(f"first_token{j}" if j else "first_token", (w.t1, None)))
        prefill_s = sum(f[0] - s0 for s0, f in zip(starts, firsts, strict=True))
        decode_s = max(w.elapsed_s - prefill_s, 1e-9)
        # The prefill lasts milliseconds, far below the counter's step: integrate the sampler's
        # instantaneous readings (taken at both edges), else difference the counter.
        pre_parts = [monitor.sampler_energy_j(s0, f[0]) for s0, f in zip(starts, firsts, strict=True)]
        pre_e: float | None = None if any(x is None for x in pre_parts) else sum(pre_parts)  # type: ignore[arg-type]
        c_first = firsts[0][1]
        if pre_e is None and k == 1 and c_first is not None and w.counter_start_mj is not None and not w.aligned:
            pre_e = (c_first - w.counter_start_mj) / 1000.0
        tokens = cfg.batch_size * cfg.gen_tokens * k
        rec = RunRecord(
            phase="warmup" if i < 0 else "measure", t0=w.t0 - self.t_origin, t1=w.t1 - self.t_origin,
            elapsed_s=w.elapsed_s, prefill_s=prefill_s / k, throughput_tok_s=tokens / w.elapsed_s,
            decode_tok_s=cfg.batch_size * (cfg.gen_tokens - 1) * k / decode_s, **energy_fields(w),
            prefill_energy_j=None if pre_e is None else pre_e / k, aligned=w.aligned, repeats=k,
            energy_per_gpu_j=w.energy_per_gpu_j if w.energy_per_gpu_j and len(w.energy_per_gpu_j) > 1 else None)
        self.records.append(rec)
        # Energy per run is per generate call, so runs and rows read the same whatever k is.
        return RunMeasurement(rec.throughput_tok_s, w.elapsed_s / k, None if w.energy_j is None else w.energy_j / k,
                              {"prefill_s": rec.prefill_s, "decode_tok_s": rec.decode_tok_s,
                               "prefill_energy_j": rec.prefill_energy_j})

    def finish(self, proto: ProtocolResult) -> tuple[ProtocolResult, list[RunRecord], dict[str, Any]]:
        import statistics

        import torch

        if self.cuda:
            self.info["peak_mem_alloc_gb"] = gb(torch.cuda.max_memory_allocated())
            self.info["peak_mem_reserved_gb"] = gb(torch.cuda.max_memory_reserved())
        measured = [r for r in self.records if r.phase == "measure"][-len(proto.runs):]
        warm = [r.elapsed_s for r in self.records if r.phase == "warmup"]
        self.info["warmup_s"] = warm
        self.info["repeats"] = self.repeats
        if warm and measured:
            per_call = statistics.median(r.elapsed_s / r.repeats for r in measured)
            self.info["first_call_overhead_s"] = warm[0] - per_call
        if self.cfg.cache == "static":
            self.info["decode_compiled"] = hasattr(self.model, "_compiled_call")
        return proto, measured, self.info


def measure_inference(model: Any, cfg: InferenceConfig, monitor: EnergyMonitor, settings: ProtocolSettings,
                      device: str, on_event: Event | None = None, t_origin: float | None = None,
                      agree: Callable[[bool], bool] | None = None
                      ) -> tuple[ProtocolResult, list[RunRecord], dict[str, Any]]:
    """Idle baseline, warm-up and measured runs of one configuration on a loaded model.

    Run times are recorded relative to ``t_origin`` (the trace's origin; default: now)."""
    prep = PreparedRuns(model, cfg, monitor, settings, device, t_origin, agree)
    return prep.finish(run_protocol(prep.once, settings, _reporter(on_event), agree))


def _reporter(on_event: Event | None) -> Callable[[str, int, RunMeasurement], None]:
    def report(phase: str, i: int, m: RunMeasurement) -> None:
        if on_event:
            on_event("run", {"phase": phase, "index": i, "throughput_tok_s": m.throughput_tok_s,
                             "power_w": m.power_w, "energy_j": m.energy_j})

    return report


def summarise_result(res: InferenceResult, proto: ProtocolResult, runs: list[RunRecord],
                     info: dict[str, Any]) -> InferenceResult:
    cfg = res.config
    tokens = cfg.batch_size * cfg.gen_tokens
    upd: dict[str, Any] = dict(
        n_runs=len(proto.runs), attempts=proto.attempts, gate_failed=proto.gate_failed,
        gate_notes=proto.gate_notes, throughput_tok_s=proto.throughput.mean,
        throughput_std=proto.throughput.std, runs=runs,
        idle_power_w=info.get("idle_power_w"), peak_mem_alloc_gb=info.get("peak_mem_alloc_gb"),
        peak_mem_reserved_gb=info.get("peak_mem_reserved_gb"), framework=cfg.framework,
        repeats=info.get("repeats", 1), warmup_s=info.get("warmup_s", []),
        first_call_overhead_s=info.get("first_call_overhead_s"), decode_compiled=info.get("decode_compiled"))
    pre = proto.extra("prefill_s")
    if pre:
        upd["prefill_ms"], upd["prefill_ms_std"] = pre.mean * 1000, pre.std * 1000
    dec = proto.extra("decode_tok_s")
    if dec:
        upd["decode_tok_s"] = dec.mean
    pe = proto.extra("prefill_energy_j")
    if pe:
        upd["prefill_energy_j"] = pe.mean
    if proto.energy is not None and proto.power is not None:
        k = 1000.0 / tokens
        upd.update(energy_per_run_j=proto.energy.mean, energy_j_per_1k_tok=proto.energy.mean * k,
                   energy_std=proto.energy.std * k,
                   energy_ci95=(proto.energy.ci95 * k if proto.energy.n > 1 else None),
                   power_w=proto.power.mean, power_std=proto.power.std)
        methods = sorted({r.method for r in runs})
        upd["energy_method"] = "+".join(methods)
        idle = info.get("idle_power_w")
        if idle is not None:
            nets = [max(0.0, (r.energy_j or 0.0) - idle * r.elapsed_s) / r.repeats for r in runs]
            upd["energy_net_j_per_1k_tok"] = sum(nets) / len(nets) * k
        gaps = [relative_gap(r.sampler_j, r.counter_j) for r in runs]
        gaps_ok = [g for g in gaps if g is not None]
        if gaps_ok:
            upd["counter_vs_sampler"] = sum(gaps_ok) / len(gaps_ok)
    return res.model_copy(update=upd)


class Sweep(SweepBase):
    """Runs configurations in order, loading each model once for all its batch sizes."""

    result_cls = InferenceResult

    def __init__(self, configs: Iterable[InferenceConfig], settings: ProtocolSettings, device: str,
                 out_path: str | Path, trace_dir: str | Path | None = None,
                 monitor: EnergyMonitor | None = None, loader: Callable[..., Any] | None = None,
                 provenance: Provenance | None = None, on_event: Event | None = None,
                 deadline: float | None = None,
                 carbon_region: str | None = None, interleave: bool = False):
        super().__init__(configs, settings, device, out_path, trace_dir, monitor, loader, provenance,
                         on_event, deadline)
        self.carbon_region = carbon_region
        # Configurations sharing a loaded model (batch sizes, dynamic vs static cache) measured
        # in rounds A B A B, for comparisons that slow drift must not bias.
        self.interleave = interleave
        # Tensor-parallel ranks take rank 0's decisions (re-runs, window repeats): engine.parallel.
        self.agree: Callable[[bool], bool] | None = None

    def _load(self, cfg: InferenceConfig) -> Any:
        return self.loader(cfg.model, cfg.precision, self.device, synthetic=cfg.synthetic,
                           overrides=cfg.overrides or None, compute_dtype=cfg.compute_dtype,
                           double_quant=cfg.double_quant, fp8_mode=cfg.fp8_mode,
                           compile_model=cfg.compile, trust_remote_code=cfg.trust_remote_code)

    def _one(self, lm: Any, cfg: InferenceConfig) -> InferenceResult:
        from engine.models import free_memory

        base = self._lm_base(lm, cfg)
        t_start = self.monitor.clock()
        tracker = None
        if self.carbon_region:
            from engine.carbon import CarbonTracker, CarbonUnavailable

            try:
                tracker = CarbonTracker(self.carbon_region).start()
            except CarbonUnavailable as err:
                base.notes.append(str(err))
        try:
            proto, runs, info = measure_inference(lm.model, cfg, self.monitor, self.settings, self.device,
                                                  self.on_event, t_origin=t_start, agree=self.agree)
        except Exception as err:
            if tracker is not None:
                try:
                    tracker.stop()
                except Exception:  # the run already failed; its error is the one reported
                    log.debug("stopping CodeCarbon after a failed run failed too", exc_info=True)
            free_memory()
            return self._failed(base, err)
        upd: dict[str, Any] = {}
        if tracker is not None:
            rep = tracker.stop()
            upd["cpu_ram_energy_j"] = rep.cpu_ram_energy_j
            upd["codecarbon_gpu_j"] = rep.gpu_energy_kwh * 3.6e6
        res = summarise_result(base, proto, runs, info)
        return self._traced(res, f"{cfg.key()}.csv", t_start, self.monitor.clock(), upd)

    def _interleaved(self, lm: Any, group: list[InferenceConfig]) -> list[InferenceResult]:
        """Configurations of one loaded model measured in rounds A B A B (run_interleaved), each
        after its own idle baseline and warm-up; one trace covers them all."""
        from engine.models import free_memory
        from engine.protocol import run_interleaved

        t_start = self.monitor.clock()
        bases = [self._lm_base(lm, c) for c in group]
        keys = [c.key() for c in group]
        try:
            preps = [PreparedRuns(lm.model, c, self.monitor, self.settings, self.device, t_start) for c in group]
            report = _reporter(self.on_event)
            protos = run_interleaved([p.once for p in preps], self.settings,
                                     lambda k, phase, i, m: report(phase, i, m))
        except Exception as err:
            free_memory()
            return [self._failed(b, err) for b in bases]
        t_end = self.monitor.clock()
        out = []
        for prep, proto, base in zip(preps, protos, bases, strict=True):
            proto, runs, info = prep.finish(proto)
            res = summarise_result(base, proto, runs, info)
            res = res.model_copy(update={"interleaved_with": [k for k in keys if k != base.key]})
            out.append(self._traced(res, f"interleaved-{keys[0]}.csv", t_start, t_end, {}))
        return out

    def _lm_base(self, lm: Any, cfg: InferenceConfig) -> InferenceResult:
        return self._base(cfg, "ok", model_id=lm.model_id, arch_key=lm.arch_key, params_b=lm.params_b,
                          weights=lm.weights, load_s=lm.load_s, notes=list(lm.notes))

    @staticmethod
    def _failed(base: InferenceResult, err: Exception) -> InferenceResult:
        status = "oom" if is_oom(err) else "error"
        return base.model_copy(update={"status": status, "error": f"{type(err).__name__}: {err}"})

    def _traced(self, res: InferenceResult, name: str, t_start: float, t_end: float,
                upd: dict[str, Any]) -> InferenceResult:
        sampler = self.monitor.sampler
        if sampler is not None:
            nv = sampler.max_mem_used_mb(t_start, t_end)
            upd["peak_mem_nvml_gb"] = None if nv is None else nv * 2**20 / 1e9
            if self.trace_dir is not None:
                if not (self.trace_dir / name).exists() or not name.startswith("interleaved-"):
                    sampler.to_csv(self.trace_dir / name, t_start, t_end, t_origin=t_start)
                upd["trace_file"] = name
        return res.model_copy(update=upd) if upd else res


def default_settings_note(settings: ProtocolSettings) -> str:
    if settings.is_full():
        return f"full protocol ({settings.describe()})"
    d = ProtocolSettings()
    return (f"reduced protocol: {settings.describe()} (full protocol: warmup {d.warmup}, runs {d.runs}, "
            f"pause {d.pause_s:g} s, idle {d.idle_s:g} s)")


def wait_for_sampler(monitor: EnergyMonitor, seconds: float = 0.3) -> None:
    """Let the sampler collect a few samples before the first window (live display, edges)."""
    if monitor.sampler is not None:
        time.sleep(seconds)
