"""The inference benchmark: greedy generation of a fixed length, prefill and decode timed apart,
batch sizes swept, OOM recorded and skipped, and an interrupted sweep resumed.

One run = one ``generate`` call on a fixed random prompt of ``prompt_tokens`` tokens per
sequence with ``min_new_tokens = max_new_tokens = gen_tokens`` (the output length is checked).
A logits processor marks the first call, which happens right after the prefill forward pass:
the window up to that mark is the prefill (time to first token), the rest is decode.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.power import EnergyMonitor, relative_gap
from engine.protocol import ProtocolResult, ProtocolSettings, RunMeasurement, run_protocol
from engine.provenance import Provenance
from engine.results import ResultBase, SweepBase, gb, slug

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
    note: str = Field(default="", description="a sentence the caller wants in the row's notes")

    def load_key(self) -> tuple[Any, ...]:
        """Configurations with the same load key share one loaded model."""
        return (self.model, self.precision, self.synthetic, tuple(sorted(self.overrides.items())),
                self.double_quant, self.compute_dtype, self.fp8_mode, self.compile)

    def key(self) -> str:
        ov = "".join(f"-{k}{v}" for k, v in sorted(self.overrides.items()))
        extra = ("-dq" if self.double_quant else "") + (f"-{self.fp8_mode}" if self.precision == "fp8" else "")
        extra += "-compiled" if self.compile else ""
        extra += "" if self.precision not in ("nf4", "int8_mixed", "int8_pure", "fp8") else f"-c{self.compute_dtype}"
        return slug(f"{'syn' if self.synthetic else 'real'}-{self.model}{ov}-{self.precision}{extra}"
                    f"-bs{self.batch_size}-p{self.prompt_tokens}-g{self.gen_tokens}")


class RunRecord(BaseModel):
    """One measured run, times relative to the configuration's start (seconds)."""

    phase: Literal["warmup", "measure"]
    t0: float
    t1: float
    elapsed_s: float
    prefill_s: float
    throughput_tok_s: float
    decode_tok_s: float
    energy_j: float | None = None
    counter_j: float | None = None
    sampler_j: float | None = None
    method: str = "unavailable"
    prefill_energy_j: float | None = None
    aligned: bool = False


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

    def __init__(self, monitor: EnergyMonitor, window: str):
        self.monitor, self.window, self.done = monitor, window, False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.done:
            self.done = True
            self.monitor.mark(self.window, "first_token")
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


def measure_inference(model: Any, cfg: InferenceConfig, monitor: EnergyMonitor, settings: ProtocolSettings,
                      device: str, on_event: Event | None = None, t_origin: float | None = None
                      ) -> tuple[ProtocolResult, list[RunRecord], dict[str, Any]]:
    """Idle baseline, warm-up and measured runs of one configuration on a loaded model.

    Run times are recorded relative to ``t_origin`` (the trace's origin; default: now)."""
    if t_origin is None:
        t_origin = monitor.clock()
    import torch
    from transformers import LogitsProcessorList

    cuda = device.startswith("cuda")
    info: dict[str, Any] = {}
    if cuda:
        torch.cuda.empty_cache()
    if settings.idle_s > 0 and monitor.energy_available:
        idle = monitor.measure_idle(settings.idle_s)
        info["idle_power_w"] = idle.power_w
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    ids, mask = make_prompt(cfg.batch_size, cfg.prompt_tokens, _vocab(model), device)
    tokens = cfg.batch_size * cfg.gen_tokens
    records: list[RunRecord] = []

    def once(i: int) -> RunMeasurement:
        proc = _FirstToken(monitor, "gen")
        monitor.begin_window("gen")
        try:
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=cfg.gen_tokens,
                                     min_new_tokens=cfg.gen_tokens, do_sample=False, num_beams=1,
                                     logits_processor=LogitsProcessorList([proc]), pad_token_id=0,
                                     use_cache=True)
        except BaseException:
            monitor.cancel_window("gen")
            raise
        w = monitor.end_window("gen")
        got = int(out.shape[1]) - cfg.prompt_tokens
        if got != cfg.gen_tokens:
            raise RuntimeError(f"generation stopped at {got} new tokens instead of {cfg.gen_tokens}")
        t_first, c_first = w.marks.get("first_token", (w.t1, None))
        prefill_s = t_first - w.t0
        decode_s = max(w.t1 - t_first, 1e-9)
        # The prefill lasts milliseconds, far below the counter's step: integrate the sampler's
        # instantaneous readings (taken at both edges), else difference the counter.
        pre_e = monitor.sampler_energy_j(w.t0, t_first)
        if pre_e is None and c_first is not None and w.counter_start_mj is not None and not w.aligned:
            pre_e = (c_first - w.counter_start_mj) / 1000.0
        rec = RunRecord(
            phase="warmup" if i < 0 else "measure", t0=w.t0 - t_origin, t1=w.t1 - t_origin,
            elapsed_s=w.elapsed_s, prefill_s=prefill_s, throughput_tok_s=tokens / w.elapsed_s,
            decode_tok_s=cfg.batch_size * (cfg.gen_tokens - 1) / decode_s, energy_j=w.energy_j,
            counter_j=w.counter_total_j, sampler_j=w.sampler_total_j, method=w.method,
            prefill_energy_j=pre_e, aligned=w.aligned)
        records.append(rec)
        return RunMeasurement(rec.throughput_tok_s, w.elapsed_s, w.energy_j,
                              {"prefill_s": prefill_s, "decode_tok_s": rec.decode_tok_s,
                               "prefill_energy_j": pre_e})

    def report(phase: str, i: int, m: RunMeasurement) -> None:
        if on_event:
            on_event("run", {"phase": phase, "index": i, "throughput_tok_s": m.throughput_tok_s,
                             "power_w": m.power_w, "energy_j": m.energy_j})

    proto = run_protocol(once, settings, report)
    if cuda:
        info["peak_mem_alloc_gb"] = gb(torch.cuda.max_memory_allocated())
        info["peak_mem_reserved_gb"] = gb(torch.cuda.max_memory_reserved())
    measured = records[-settings.runs:]
    return proto, measured, info


def summarise_result(res: InferenceResult, proto: ProtocolResult, runs: list[RunRecord],
                     info: dict[str, Any]) -> InferenceResult:
    cfg = res.config
    tokens = cfg.batch_size * cfg.gen_tokens
    upd: dict[str, Any] = dict(
        n_runs=len(proto.runs), attempts=proto.attempts, gate_failed=proto.gate_failed,
        gate_notes=proto.gate_notes, throughput_tok_s=proto.throughput.mean,
        throughput_std=proto.throughput.std, runs=runs,
        idle_power_w=info.get("idle_power_w"), peak_mem_alloc_gb=info.get("peak_mem_alloc_gb"),
        peak_mem_reserved_gb=info.get("peak_mem_reserved_gb"))
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
            nets = [max(0.0, (r.energy_j or 0.0) - idle * r.elapsed_s) for r in runs]
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
                 carbon_region: str | None = None):
        super().__init__(configs, settings, device, out_path, trace_dir, monitor, loader, provenance,
                         on_event, deadline)
        self.carbon_region = carbon_region

    def _load(self, cfg: InferenceConfig) -> Any:
        return self.loader(cfg.model, cfg.precision, self.device, synthetic=cfg.synthetic,
                           overrides=cfg.overrides or None, compute_dtype=cfg.compute_dtype,
                           double_quant=cfg.double_quant, fp8_mode=cfg.fp8_mode,
                           compile_model=cfg.compile, trust_remote_code=cfg.trust_remote_code)

    def _one(self, lm: Any, cfg: InferenceConfig) -> InferenceResult:
        from engine.models import free_memory

        base = self._base(cfg, "ok", model_id=lm.model_id, arch_key=lm.arch_key, params_b=lm.params_b,
                          weights=lm.weights, load_s=lm.load_s, notes=list(lm.notes))
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
                                                  self.on_event, t_origin=t_start)
        except Exception as err:
            if tracker is not None:
                with contextlib.suppress(Exception):
                    tracker.stop()
            free_memory()
            status = "oom" if is_oom(err) else "error"
            return base.model_copy(update={"status": status, "error": f"{type(err).__name__}: {err}"})
        t_end = self.monitor.clock()
        res = summarise_result(base, proto, runs, info)
        upd: dict[str, Any] = {}
        if tracker is not None:
            rep = tracker.stop()
            upd["cpu_ram_energy_j"] = rep.cpu_ram_energy_j
            upd["codecarbon_gpu_j"] = rep.gpu_energy_kwh * 3.6e6
        sampler = self.monitor.sampler
        if sampler is not None:
            nv = sampler.max_mem_used_mb(t_start, t_end)
            upd["peak_mem_nvml_gb"] = None if nv is None else nv * 2**20 / 1e9
            if self.trace_dir is not None:
                name = f"{cfg.key()}.csv"
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
