"""Engine results -> measurement rows (the contract the advisor reads), with provenance and notes."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from engine.finetune import FinetuneResult
from engine.inference import InferenceResult, default_settings_note
from engine.provenance import describe, row_fields
from engine.results import local_row_id, slug
from engine.serve import ServeResult
from measurements.schema import MeasurementRow

log = logging.getLogger(__name__)

Result = InferenceResult | FinetuneResult | ServeResult



def gpu_key(res: Result) -> str:
    """The GPU whose energy the row reports; "cpu" for a CPU run that read no GPU at all."""
    p = res.provenance
    if p is not None and p.gpu_key:
        return p.gpu_key
    if p is not None and p.gpu_names:
        return slug(p.gpu_names[0]).replace("-", "_")
    return "cpu" if res.device == "cpu" else "unknown_gpu"


def params_b(res: Result) -> float:
    """The catalog's parameter count for an unmodified synthetic architecture (so rows match the
    catalog), the counted one otherwise."""
    if res.arch_key and not res.config.overrides:
        try:
            from measurements.catalog import resolve_model

            return resolve_model(res.arch_key).params_b
        except Exception:  # not a catalog architecture (or no catalog): the counted size stands
            log.debug("no catalog size for %s", res.arch_key, exc_info=True)
    return max(res.params_b or 0.0, 1e-9)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def _common_notes(res: Result) -> list[str]:
    """The notes every row starts with; a configuration that did not complete has no row."""
    if res.status != "ok":
        raise ValueError(f"configuration {res.key} did not complete ({res.status}: {res.error}); no row")
    notes: list[str] = []
    if res.weights == "synthetic":
        notes.append(f"synthetic weights: random initialisation with the exact catalog shapes of {res.model_id}")
    settings = res.settings
    if isinstance(res, FinetuneResult):  # a fine-tuning run's warm-up and measured counts are steps
        settings = settings.model_copy(update={"warmup": res.config.warmup_steps, "runs": res.config.steps})
    notes.append(default_settings_note(settings))
    if res.config.note:
        notes.append(res.config.note)
    return notes


def _energy_notes(res: Result, what: str) -> list[str]:
    notes: list[str] = []
    if res.energy_method is None:
        notes.append(f"energy unavailable (device {res.device}: no GPU energy reading); {what} only")
        return notes
    notes.append(f"GPU energy from {res.energy_method}, all GPUs of the run summed; the 10 Hz sampler's "
                 f"integral differs from the counter by {_pct(res.counter_vs_sampler)} on average")
    if res.counter_vs_sampler is not None and res.counter_vs_sampler > 0.03:
        notes.append("that gap comes from sub-second windows with bursty power, which 10 Hz instantaneous "
                     "readings under-sample; the counter, interpolated to the window edges from its 100 ms "
                     "steps, is the figure used")
    if res.idle_power_w is not None:
        notes.append(f"idle {res.idle_power_w:.1f} W measured for {res.settings.idle_s:g} s before the "
                     "configuration (net = gross - idle x time)")
    return notes


def _gate_note(res: Result) -> str:
    if res.gate_failed:
        return "CV GATE FAILED after re-runs: " + " | ".join(res.gate_notes)
    if res.gate_notes:
        return f"CV gates passed after {res.attempts} attempts ({' | '.join(res.gate_notes)})"
    return "CV gates passed"


def _mem_note(res: Result) -> str | None:
    parts = []
    for label, v in (("torch allocated", res.peak_mem_alloc_gb), ("reserved", res.peak_mem_reserved_gb),
                     ("NVML", res.peak_mem_nvml_gb)):
        if v is not None:
            parts.append(f"{label} {v:.2f}")
    return f"peak memory GB (1e9 bytes): {', '.join(parts)}" if parts else None


def _finish(notes: list[str], res: Result) -> str:
    m = _mem_note(res)
    if m:
        notes.append(m)
    notes += [n for n in res.notes if n]
    if res.provenance is not None:
        notes.append(describe(res.provenance))
    return "; ".join(notes)


def _row(res: Result, source: str, id_prefix: str | None, trace_prefix: str, notes: list[str],
         own: dict[str, Any]) -> MeasurementRow:
    """A row from the fields every kind of result fills alike, then the kind's `own` fields (which
    may override them, as tensor parallelism does gpu_count), then the run's provenance."""
    c = res.config
    fields: dict[str, Any] = dict(
        id=row_id_for(res, id_prefix), source=source, kind="measured",
        gpu=gpu_key(res), gpu_count=max(1, res.provenance.gpu_count if res.provenance else 1),
        model_id=res.model_id or c.model, params_b=params_b(res), weights=res.weights or "real",
        precision=c.precision,
        # which FP8 implementation ran: the two cost very differently (measurements.vocab.Fp8Mode)
        fp8_mode=getattr(c, "fp8_mode", None) if c.precision == "fp8" else None, power_w=res.power_w, idle_power_w=res.idle_power_w,
        energy_method=res.energy_method, gpu_mem_gb=res.peak_mem_alloc_gb, peak_mem_alloc_gb=res.peak_mem_alloc_gb,
        peak_mem_reserved_gb=res.peak_mem_reserved_gb, peak_mem_nvml_gb=res.peak_mem_nvml_gb,
        trace_file=(trace_prefix + res.trace_file) if res.trace_file else None, notes=_finish(notes, res))
    fields.update(own)
    if res.provenance is not None:
        fields.update(row_fields(res.provenance))
    return MeasurementRow.model_validate(fields)


def _load_test_fields(res: InferenceResult | ServeResult) -> dict[str, Any]:
    """The generation fields a one-request run and a serving load test fill alike."""
    c = res.config
    return dict(prompt_tokens=c.prompt_tokens, gen_tokens=c.gen_tokens, throughput_tok_s=res.throughput_tok_s,
                throughput_std=res.throughput_std, energy_j_per_1k_tok=res.energy_j_per_1k_tok,
                energy_std=res.energy_std, energy_net_j_per_1k_tok=res.energy_net_j_per_1k_tok,
                n_runs=res.n_runs or None, framework=res.framework)


def row_id_for(res: Result, prefix: str | None) -> str:
    """Shipped rows: ``<prefix>-<key>``; local rows: host tag + time, so they never collide."""
    if prefix:
        return f"{prefix}-{res.key}"
    host = res.provenance.host if res.provenance is not None else "nohost"
    if res.provenance is not None and res.provenance.node_id:  # Ray nodes can share a host
        host += f"-{res.provenance.node_id[:8]}"
    when = res.provenance.measured_at if res.provenance is not None else dt.datetime.now(dt.UTC)
    return local_row_id(host, when, res.key)


def inference_row(res: InferenceResult, source: str, id_prefix: str | None = None,
                  trace_prefix: str = "") -> MeasurementRow:
    c = res.config
    notes = _common_notes(res)
    if res.prefill_ms is not None and res.decode_tok_s is not None:
        pe = f", {res.prefill_energy_j:.2f} J" if res.prefill_energy_j is not None else ""
        notes.append(f"prefill (time to first token) {res.prefill_ms:.1f} ms{pe}; decode {res.decode_tok_s:.1f} tok/s")
    notes += _regime_notes(res)
    notes += _energy_notes(res, "throughput")
    notes.append(_gate_note(res))
    if res.cpu_ram_energy_j is not None:
        notes.append(f"CodeCarbon CPU+RAM {res.cpu_ram_energy_j:.1f} J over the measured runs")
    own: dict[str, Any] = dict(
        task="inference", batch_size=c.batch_size, **_load_test_fields(res), prefill_ms=res.prefill_ms,
        decode_tok_s=res.decode_tok_s, energy_ci95=res.energy_ci95)
    if c.tp is not None:
        own["tensor_parallel"] = c.tp
        if res.device.startswith("cuda"):
            own["gpu_count"] = c.tp
    return _row(res, source, id_prefix, trace_prefix, notes, own)


def _regime_notes(res: InferenceResult) -> list[str]:
    """What the static cache, window repeats and interleaving did (nothing for a plain eager row)."""
    notes: list[str] = []
    if res.config.cache == "static":
        compiled = {True: "compiled by transformers (torch.compile; CUDA graphs on a GPU)",
                    False: "NOT compiled (transformers compiles it only on a GPU): static cache in eager mode",
                    None: "compilation unknown"}[res.decode_compiled]
        notes.append(f"static KV cache (cache_implementation='static'), decode step {compiled}")
        if res.warmup_s:
            over = "" if res.first_call_overhead_s is None else \
                f"; first call {res.first_call_overhead_s:.2f} s longer than a measured one (compilation)"
            notes.append(f"{len(res.warmup_s)} warm-up run(s) of {', '.join(f'{x:.2f}' for x in res.warmup_s)} s "
                         f"before any measured window{over}")
    if res.repeats > 1:
        notes.append(f"each measured window holds {res.repeats} generate calls (minimum window "
                     f"{res.settings.min_window_s:g} s); figures are per call")
    if res.config.tp is not None:
        where = "GPUs" if res.device.startswith("cuda") else "CPU processes (gloo)"
        notes.append(f"tensor parallel over {res.config.tp} {where} (transformers tp_plan='auto', "
                     "torch.distributed.run); windows open and close at a barrier of every rank")
        split = [(r.energy_per_gpu_j, r.repeats) for r in res.runs if r.energy_per_gpu_j]
        if split:
            gpus = sorted(split[0][0])
            mean = {g: sum(e.get(g, 0.0) / k for e, k in split) / len(split) for g in gpus}
            notes.append("energy per GPU per call, J: " + ", ".join(f"GPU {g} {mean[g]:.1f}" for g in gpus))
    if res.interleaved_with:
        notes.append("measured interleaved run by run (A B A B) with " + ", ".join(res.interleaved_with))
    return notes


def finetune_row(res: FinetuneResult, source: str, id_prefix: str | None = None,
                 trace_prefix: str = "") -> MeasurementRow:
    c = res.config
    notes = _common_notes(res)
    desc = {"lora": f"LoRA on a {c.dtype} base", "full": f"full fine-tuning in {c.dtype}",
            "qlora": f"QLoRA on a {c.quant}{' double-quantised' if c.double_quant else ''} base, compute {c.dtype}"}
    notes.append(desc[c.method] + (f", r={c.rank} alpha={c.lora_alpha} dropout={c.dropout} targets={c.target_modules}"
                                   if c.method != "full" else "") +
                 f", trainable parameters {res.trainable_params}")
    notes.append(f"{c.warmup_steps} warm-up + {c.steps} measured steps, batch {c.batch_size} x {c.seq_len} tokens, "
                 f"optimizer {c.optimizer} lr {c.lr:g}; gradient checkpointing "
                 f"{'on' if c.grad_checkpointing else 'off'} (verified in train mode: {res.gc_verified})")
    if c.save_every:
        notes.append(f"adapter saved every {c.save_every} steps inside the step window")
    notes += _energy_notes(res, "step time")
    if res.energy_net_j_per_token is not None:
        notes.append(f"net energy {res.energy_net_j_per_token * 1000:.1f} J per 1k trained tokens")
    if res.spikes:
        notes.append(f"{len(res.spikes)} power spike(s) detected in the trace")
    notes.append(_gate_note(res))
    tokens = c.batch_size * c.seq_len
    total_s = sum(s.step_time_s for s in res.steps) if res.steps else None
    total_j = sum(s.energy_j or 0.0 for s in res.steps) if res.energy_method else None
    return _row(res, source, id_prefix, trace_prefix, notes, dict(
        task="finetune", batch_size=c.batch_size, method=c.method,
        lora_rank=None if c.method == "full" else c.rank, seq_len=c.seq_len,
        lora_dropout=None if c.method == "full" else c.dropout,
        target_modules=None if c.method == "full" else c.target_modules,
        # the engine's QLoRA always runs peft's k-bit preparation (engine/finetune.py)
        double_quant=c.double_quant if c.method == "qlora" else None,
        kbit_upcast=True if c.method == "qlora" else None,
        grad_checkpointing=c.grad_checkpointing, optimizer=c.optimizer,
        throughput_tok_s=res.tokens_per_s, throughput_std=(res.step_time_std or 0) * tokens / res.step_time_s ** 2
        if res.step_time_s else None,
        step_time_s=res.step_time_s, energy_j_per_step=res.energy_j_per_step,
        energy_j_per_1k_tok=res.energy_j_per_token * 1000 if res.energy_j_per_token else None,
        energy_std=res.energy_std / tokens * 1000 if res.energy_std is not None else None,
        energy_ci95=res.energy_ci95 / tokens * 1000 if res.energy_ci95 is not None else None,
        energy_net_j_per_1k_tok=(res.energy_net_j_per_token * 1000 if res.energy_net_j_per_token is not None
                                 else None),
        n_runs=res.n_steps or None,
        run_energy_wh=total_j / 3600 if total_j else None,
        run_duration_h=total_s / 3600 if total_s else None,
        tokens_processed=tokens * res.n_steps if res.n_steps else None))


def _ms(d: dict[str, float], q: str) -> float | None:
    return d.get(q)


def serve_row(res: ServeResult, source: str, id_prefix: str | None = None, trace_prefix: str = "") -> MeasurementRow:
    """A continuous-batching load test -> a row with framework hf-continuous-batching and the
    serving fields (latency percentiles, concurrency, J per request)."""
    c = res.config
    notes = _common_notes(res)
    load = (f"concurrency {c.concurrency} (closed loop)" if c.arrival == "concurrency"
            else f"Poisson arrivals at {c.rate_rps:g} requests/s (open loop, seed {c.seed})")
    notes.append(f"serving load test of transformers continuous batching (paged KV cache): {load}, "
                 f"{c.num_requests} requests per test, prompt {c.prompt.label()} and output {c.output.label()} "
                 f"tokens; {res.n_runs} measured tests")
    notes.append(f"steady-state window, mean {res.window_s:.2f} s per test: {res.window_rule}; energy, throughput "
                 f"and J per token over that window only (ramp-up and drain excluded)")
    if (c.arrival == "concurrency" and c.concurrency is not None and res.reached_concurrency is not None
            and res.reached_concurrency < c.concurrency):
        notes.append(f"the server never ran {c.concurrency} requests at once (peak {res.reached_concurrency}): "
                     "batch_size records the target")
    if c.arrival == "poisson":
        notes.append(f"batch_size is the mean number of decoding requests ({res.mean_batch_size:.2f}), rounded")
    notes.append(f"latency percentiles over {res.latency_sample} of every measured test; TTFT and end-to-end "
                 "latency count from the scheduled arrival")
    e2e = res.e2e_s
    notes.append(f"end-to-end latency p50 {e2e.get('p50', 0):.3f} s, p90 {e2e.get('p90', 0):.3f} s, "
                 f"p99 {e2e.get('p99', 0):.3f} s")
    if res.energy_j_per_request is not None:
        notes.append("J per request = J per output token x mean output tokens per request")
    if res.warmup_s is not None:
        notes.append(f"manager warm-up (CUDA graphs / compilation) {res.warmup_s:.2f} s, outside every window")
    if res.cache_sizing:
        notes.append("paged cache: " + ", ".join(f"{k}={v}" for k, v in sorted(res.cache_sizing.items())))
    if res.requests_file:
        notes.append(f"request trace: {trace_prefix}{res.requests_file}")
    notes += _energy_notes(res, "throughput and latency")
    notes.append(_gate_note(res))
    batch = c.concurrency if c.arrival == "concurrency" else max(1, round(res.mean_batch_size or 1))
    return _row(res, source, id_prefix, trace_prefix, notes, dict(
        task="inference", batch_size=batch, **_load_test_fields(res),
        max_num_seqs=c.max_num_seqs or res.cache_sizing.get("max_requests_per_batch"),
        mean_batch_size=res.mean_batch_size, mean_output_tokens=res.mean_output_tokens,
        energy_j_per_request=res.energy_j_per_request,
        ttft_p50_ms=_ms(res.ttft_ms, "p50"), ttft_p90_ms=_ms(res.ttft_ms, "p90"), ttft_p99_ms=_ms(res.ttft_ms, "p99"),
        itl_p50_ms=_ms(res.itl_ms, "p50"), itl_p90_ms=_ms(res.itl_ms, "p90"), itl_p95_ms=_ms(res.itl_ms, "p95"),
        itl_p99_ms=_ms(res.itl_ms, "p99"),
        e2e_p50_s=e2e.get("p50"), e2e_p90_s=e2e.get("p90"), e2e_p99_s=e2e.get("p99")))
