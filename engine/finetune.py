"""The fine-tuning benchmark: measured training steps of LoRA, QLoRA and full fine-tuning.

A step is forward (with labels, so transformers computes the loss the usual way, logits up-cast
to FP32), backward, optimizer step and zero_grad, inside one window synchronised at both ends.
Each configuration records step time, trained tokens/s, J per step and per token, average and
idle power, peak memory three ways (torch allocated, torch reserved, NVML used), the power trace,
and the periodic spikes found in it (``engine.spikes``, e.g. from checkpoint saving).

Pitfalls handled here, because they silently change what is measured:

- gradient checkpointing only acts in training mode: the model is put in ``train()`` and the
  flag is read back (``gc_verified``) before any step;
- QLoRA follows the standard recipe: ``prepare_model_for_kbit_training`` (which up-casts the
  non-quantised parameters to FP32), then the LoRA adapters;
- each configuration starts from freed memory and reset peak counters, so its peak is its own.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.inference import is_oom
from engine.power import relative_gap
from engine.protocol import RunMeasurement, run_protocol, summarize
from engine.results import ResultBase, SweepBase, WindowEnergy, energy_fields, gb, slug

log = logging.getLogger(__name__)


OPTIMIZERS = ("adamw", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd")


class FinetuneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    method: Literal["lora", "qlora", "full"]
    rank: int = Field(default=16, ge=1)
    alpha: int | None = Field(default=None, ge=1, description="LoRA alpha (default: 2 x rank)")
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str = "all-linear"
    quant: Literal["nf4", "int8"] = Field(default="nf4", description="QLoRA base weights")
    double_quant: bool = False
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    seq_len: int = Field(default=512, ge=2)
    batch_size: int = Field(default=1, ge=1)
    grad_checkpointing: bool = False
    optimizer: Literal["adamw", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd"] = "adamw"
    lr: float = Field(default=2e-4, gt=0)
    steps: int = Field(default=5, ge=1, description="measured steps")
    warmup_steps: int = Field(default=2, ge=0)
    save_every: int | None = Field(default=None, ge=1, description="save the adapter every N steps")
    synthetic: bool = True
    overrides: dict[str, int] = {}
    trust_remote_code: bool = False
    note: str = ""

    @property
    def precision(self) -> str:
        if self.method != "qlora":
            return self.dtype
        return "nf4" if self.quant == "nf4" else "int8_mixed"

    @property
    def lora_alpha(self) -> int:
        return self.alpha if self.alpha is not None else 2 * self.rank

    def load_key(self) -> tuple[Any, ...]:
        return (self.model, self.method == "qlora", self.precision, self.double_quant, self.dtype,
                self.synthetic, tuple(sorted(self.overrides.items())))

    def key(self) -> str:
        ov = "".join(f"-{k}{v}" for k, v in sorted(self.overrides.items()))
        m = self.method if self.method != "qlora" else f"qlora-{self.quant}{'-dq' if self.double_quant else ''}"
        r = "" if self.method == "full" else f"-r{self.rank}a{self.lora_alpha}"
        save = f"-save{self.save_every}" if self.save_every else ""
        return slug(f"ft-{'syn' if self.synthetic else 'real'}-{self.model}{ov}-{m}-{self.dtype}{r}"
                    f"-s{self.seq_len}-bs{self.batch_size}-gc{int(self.grad_checkpointing)}-{self.optimizer}"
                    f"-n{self.steps}{save}")


class StepRecord(WindowEnergy):
    phase: Literal["warmup", "measure"]
    t0: float
    t1: float
    step_time_s: float
    loss: float
    saved: bool = False
    aligned: bool = False


class FinetuneResult(ResultBase):
    config: FinetuneConfig
    trainable_params: int | None = None
    gc_verified: bool | None = None
    n_steps: int = 0
    step_time_s: float | None = None
    step_time_std: float | None = None
    tokens_per_s: float | None = None
    energy_j_per_step: float | None = None
    energy_j_per_token: float | None = None
    energy_net_j_per_token: float | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    spikes: list[dict[str, Any]] = []
    steps: list[StepRecord] = []


def make_optimizer(name: str, params: list[Any], lr: float) -> Any:
    import torch

    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise RuntimeError(f"optimizer '{name}' needs bitsandbytes; installed optimizers: adamw, sgd") from None
    table = {"adamw_8bit": bnb.optim.AdamW8bit, "paged_adamw_8bit": bnb.optim.PagedAdamW8bit,
             "paged_adamw_32bit": bnb.optim.PagedAdamW32bit}
    if name not in table:
        raise ValueError(f"unknown optimizer '{name}'; accepted: {', '.join(OPTIMIZERS)}")
    return table[name](params, lr=lr)


def _spike_detector() -> Callable[[list[float], list[float]], list[Any]] | None:
    try:
        from engine.spikes import detect_spikes
    except Exception:  # absent, or broken: the measurement goes on without spike detection
        log.debug("spike detection unavailable", exc_info=True)
        return None
    return detect_spikes


def _as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return dict(obj)
    return {"value": repr(obj)}


def _set_checkpointing(model: Any, on: bool) -> None:
    """Turn activation (gradient) checkpointing on or off under either transformers API name."""
    kwargs = {"use_reentrant": False}  # non-reentrant: no input grads needed, frozen embeddings fine
    if on:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    elif _checkpointing_flag(model):
        if hasattr(model, "activation_checkpointing_disable"):
            model.activation_checkpointing_disable()
        else:
            model.gradient_checkpointing_disable()


def _checkpointing_flag(model: Any) -> bool:
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):
        if hasattr(type(model), name) or hasattr(model, name):
            return bool(getattr(model, name))
    return False


def _checkpointing_active(model: Any) -> bool:
    """Read back what the layers will do: the flag on the model and training mode."""
    return _checkpointing_flag(model) and bool(model.training)


class FinetuneSweep(SweepBase):
    """Loads each base model once, then wraps, measures and unwraps one configuration at a time."""

    result_cls = FinetuneResult

    def _load(self, cfg: FinetuneConfig) -> Any:
        lm = self.loader(cfg.model, cfg.precision, self.device, synthetic=cfg.synthetic,
                         overrides=cfg.overrides or None, compute_dtype=cfg.dtype,
                         double_quant=cfg.double_quant, trust_remote_code=cfg.trust_remote_code,
                         # QLoRA keeps the from_pretrained path peft's recipe was written for.
                         **({"quant_build": "checkpoint"} if cfg.method == "qlora" else {}))
        if cfg.method == "qlora":
            from peft import prepare_model_for_kbit_training

            lm.model = prepare_model_for_kbit_training(lm.model, use_gradient_checkpointing=False)
            lm.notes.append("prepare_model_for_kbit_training applied (non-quantised parameters up-cast to FP32)")
        return lm

    def _one(self, lm: Any, cfg: FinetuneConfig) -> FinetuneResult:
        import torch

        from engine.models import free_memory

        cuda = self.device.startswith("cuda")
        base = self._base(cfg, "ok", model_id=lm.model_id, arch_key=lm.arch_key, params_b=lm.params_b,
                          weights=lm.weights, load_s=lm.load_s, notes=list(lm.notes))
        model = lm.model
        wrapped: Any = None
        opt: Any = None
        scratch = tempfile.TemporaryDirectory(prefix="ecolobster-ft-") if cfg.save_every else None
        try:
            if cuda:
                torch.cuda.empty_cache()
            if cfg.method == "full":
                for p in model.parameters():
                    p.requires_grad_(True)
                wrapped = model
            else:
                from peft import LoraConfig, get_peft_model

                lcfg = LoraConfig(r=cfg.rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.dropout,
                                  target_modules=cfg.target_modules, task_type="CAUSAL_LM", bias="none")
                wrapped = get_peft_model(model, lcfg)
            _set_checkpointing(model, cfg.grad_checkpointing)
            model.config.use_cache = False
            wrapped.train()
            gc_ok = _checkpointing_active(model) == cfg.grad_checkpointing
            if not gc_ok:
                raise RuntimeError(f"gradient checkpointing should be {'on' if cfg.grad_checkpointing else 'off'} "
                                   "but the model reports otherwise")
            params = [p for p in wrapped.parameters() if p.requires_grad]
            trainable = sum(p.numel() for p in params)
            opt = make_optimizer(cfg.optimizer, params, cfg.lr)
            result = self._measure(wrapped, opt, cfg, base, scratch)
            return result.model_copy(update={"trainable_params": trainable, "gc_verified": gc_ok})
        except Exception as err:
            status = "oom" if is_oom(err) else "error"
            return base.model_copy(update={"status": status, "error": f"{type(err).__name__}: {err}"})
        finally:
            # Leave the base model as it was loaded: no adapters, no grads, checkpointing off.
            if opt is not None:
                opt.zero_grad(set_to_none=True)
            del opt
            if wrapped is not None and cfg.method != "full":
                try:
                    lm.model = wrapped.unload()
                except Exception:  # the next configuration reloads the model if it must
                    log.warning("removing the adapters after %s failed", cfg.method, exc_info=True)
            if cfg.method == "full":
                for p in lm.model.parameters():
                    p.requires_grad_(False)
                    p.grad = None
            try:
                _set_checkpointing(lm.model, False)
            except Exception:  # a model without the switch: nothing to turn off
                log.debug("turning gradient checkpointing off failed", exc_info=True)
            lm.model.eval()
            if scratch is not None:
                scratch.cleanup()
            del wrapped, model
            free_memory()

    def _measure(self, wrapped: Any, opt: Any, cfg: FinetuneConfig, base: FinetuneResult,
                 scratch: Any) -> FinetuneResult:
        import torch

        from engine.inference import make_prompt

        cuda = self.device.startswith("cuda")
        mon = self.monitor
        idle_w = None
        if self.settings.idle_s > 0 and mon.energy_available:
            idle_w = mon.measure_idle(self.settings.idle_s).power_w
        emb = wrapped.get_input_embeddings()
        ids, _ = make_prompt(cfg.batch_size, cfg.seq_len, int(emb.num_embeddings), self.device)
        tokens = cfg.batch_size * cfg.seq_len
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t_start = mon.clock()
        records: list[StepRecord] = []
        counter = {"n": 0}

        def step(i: int) -> RunMeasurement:
            counter["n"] += 1
            save_now = bool(cfg.save_every and i >= 0 and (i + 1) % cfg.save_every == 0)
            mon.begin_window("step")
            try:
                loss = wrapped(input_ids=ids, labels=ids).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if save_now:
                    wrapped.save_pretrained(Path(scratch.name) / f"step{i + 1}")
                lv = float(loss.detach())
            except BaseException:
                mon.cancel_window("step")
                raise
            w = mon.end_window("step")
            records.append(StepRecord(
                phase="warmup" if i < 0 else "measure", t0=w.t0 - t_start, t1=w.t1 - t_start,
                step_time_s=w.elapsed_s, loss=lv, **energy_fields(w), saved=save_now, aligned=w.aligned))
            return RunMeasurement(tokens / w.elapsed_s, w.elapsed_s, w.energy_j)

        def report(phase: str, i: int, m: RunMeasurement) -> None:
            if self.on_event:
                self.on_event("run", {"phase": phase, "index": i, "throughput_tok_s": m.throughput_tok_s,
                                      "power_w": m.power_w, "energy_j": m.energy_j})

        settings = self.settings.model_copy(update={"warmup": cfg.warmup_steps, "runs": cfg.steps})
        proto = run_protocol(step, settings, report)
        t_end = mon.clock()
        measured = records[-cfg.steps:]
        upd: dict[str, Any] = dict(
            settings=settings, n_steps=len(measured), attempts=proto.attempts, gate_failed=proto.gate_failed,
            gate_notes=proto.gate_notes, steps=measured, idle_power_w=idle_w,
            loss_first=records[0].loss if records else None, loss_last=records[-1].loss if records else None)
        st = summarize([r.step_time_s for r in measured])
        upd.update(step_time_s=st.mean, step_time_std=st.std, tokens_per_s=tokens / st.mean)
        if cuda:
            upd["peak_mem_alloc_gb"] = gb(torch.cuda.max_memory_allocated())
            upd["peak_mem_reserved_gb"] = gb(torch.cuda.max_memory_reserved())
        if proto.energy is not None and proto.power is not None:
            upd.update(energy_j_per_step=proto.energy.mean, energy_std=proto.energy.std,
                       energy_ci95=proto.energy.ci95 if proto.energy.n > 1 else None,
                       energy_j_per_token=proto.energy.mean / tokens, power_w=proto.power.mean,
                       power_std=proto.power.std,
                       energy_method="+".join(sorted({r.method for r in measured})))
            if idle_w is not None:
                nets = [max(0.0, (r.energy_j or 0.0) - idle_w * r.step_time_s) for r in measured]
                upd["energy_net_j_per_token"] = sum(nets) / len(nets) / tokens
            gaps = [g for g in (relative_gap(r.sampler_j, r.counter_j) for r in measured) if g is not None]
            if gaps:
                upd["counter_vs_sampler"] = sum(gaps) / len(gaps)
        sampler = mon.sampler
        if sampler is not None:
            nv = sampler.max_mem_used_mb(t_start, t_end)
            upd["peak_mem_nvml_gb"] = None if nv is None else nv * 2**20 / 1e9
            detect = _spike_detector()
            if detect is not None:
                times, power = _summed_series(sampler, t_start, t_end)
                if len(times) >= 3:
                    try:
                        upd["spikes"] = [_as_dict(s) for s in detect(times, power)]
                    except Exception as err:  # the detector's failure must not lose the measurement
                        base.notes.append(f"spike detection failed: {err}")
            if self.trace_dir is not None:
                name = f"{cfg.key()}.csv"
                sampler.to_csv(self.trace_dir / name, t_start, t_end, t_origin=t_start)
                upd["trace_file"] = name
        return base.model_copy(update=upd)


def _summed_series(sampler: Any, t0: float, t1: float) -> tuple[list[float], list[float]]:
    """Power summed over GPUs per sampler tick, times relative to t0."""
    by_tick: dict[int, list[Any]] = {}
    gpus = sorted({s.gpu for s in sampler.samples(t0, t1)})
    per_gpu = {g: sampler.samples(t0, t1, g) for g in gpus}
    n = min((len(v) for v in per_gpu.values()), default=0)
    for i in range(n):
        by_tick[i] = [per_gpu[g][i] for g in gpus]
    times = [by_tick[i][0].t_s - t0 for i in range(n)]
    power = [sum(s.reading.power_w for s in by_tick[i]) for i in range(n)]
    return times, power
