"""Time, energy, cost and CO2 of a fine-tuning run, from measured fine-tuning rows.

Step time comes from the dataset: a measured row of the same configuration on the same GPU is used
as is ("measured"). Otherwise the nearest measured row lends its *utilisation* (achieved FLOP/s
over the GPU's dense 16-bit peak), and the step time follows from the target's FLOPs:

    training FLOPs per token (named rule "training FLOPs: 2F / 3F"):
      F  = 2 x N_matmul + 2 x L x s x d_attn     forward pass (matmuls + causal attention)
      full fine-tuning       3F   (forward, gradient of the activations, gradient of the weights)
      LoRA / QLoRA           2F + 6 x N_lora     (frozen base: no weight gradients)
      gradient checkpointing +F   (every layer's forward runs again in the backward)

N_matmul counts the decoder's linear weights and the lm_head (the embedding lookup does no
matmul); d_attn = heads x head_dim; a causal kernel skips half of the 4 x s x d_attn per layer.
The named transfers are "nearest measured row's utilisation" (same GPU) and, across GPUs,
"same utilisation, power at the same fraction of TDP". Energy is step time x measured power;
kWh, cost and CO2 go through advisor.derive, so they agree with every other answer.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor import derive
from advisor.answer import CostLine
from advisor.finetune_memory import TrainSetup, count_params, layer_linears, lora_params, setup_from_row
from measurements import catalog
from measurements.schema import GPU, GPUPrice, MeasurementRow, ModelArch, Region
from measurements.store import load_rows

Tier = Literal["measured", "interpolated", "extrapolated"]


def matmul_params(arch: ModelArch) -> int:
    """Weights that take part in matmuls for every token: decoder linears and the lm_head."""
    per_layer = sum(lin.d_in * lin.d_out for lin in layer_linears(arch))
    return per_layer * arch.layers + arch.vocab * arch.hidden


def flops_per_token(arch: ModelArch, setup: TrainSetup) -> float:
    """Training FLOPs per trained token (rule "training FLOPs: 2F / 3F", module docstring)."""
    d_attn = arch.heads * arch.head_dim
    fwd = 2 * matmul_params(arch) + 2 * arch.layers * setup.seq_len * d_attn
    if setup.method == "full":
        total = 3 * fwd
    else:
        total = 2 * fwd + 6 * lora_params(arch, setup.lora_rank, setup.target_modules)
    if setup.grad_checkpointing:
        total += fwd
    return float(total)


def peak_flops(gpu: GPU, setup: TrainSetup) -> float:
    """The GPU's dense 16-bit tensor peak, FLOP/s (bf16 where the setup computes in bf16)."""
    tflops = gpu.fp16_tflops
    if setup.weight_format != "fp16" and gpu.bf16_tflops:
        tflops = gpu.bf16_tflops
    return tflops * 1e12


class Calibration(BaseModel):
    """One measured fine-tuning row, read as an achieved utilisation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    row_id: str
    gpu: str
    arch: str
    method: str
    weights: str
    setup: TrainSetup
    tokens_per_s: float
    step_time_s: float
    power_w: float | None
    energy_j_per_step: float | None
    utilisation: float
    n_params: int
    tdp_w: float


def calibrations(rows: list[MeasurementRow] | None = None) -> list[Calibration]:
    """Every measured fine-tuning row with a throughput, as a utilisation (simulated rows never)."""
    rows = load_rows() if rows is None else rows
    out: list[Calibration] = []
    for r in rows:
        if r.task != "finetune" or r.kind != "measured" or not r.throughput_tok_s or not r.step_time_s:
            continue
        arch = catalog.model_by_hub_id(r.model_id)
        if arch is None:
            continue
        try:
            gpu = catalog.resolve_gpu(r.gpu)
            setup = setup_from_row(r)
        except ValueError:
            continue
        util = flops_per_token(arch, setup) * r.throughput_tok_s / peak_flops(gpu, setup)
        out.append(Calibration(row_id=r.id, gpu=gpu.key, arch=arch.key, method=setup.method,
                               weights=setup.weight_format, setup=setup, tokens_per_s=r.throughput_tok_s,
                               step_time_s=r.step_time_s, power_w=r.power_w, energy_j_per_step=r.energy_j_per_step,
                               utilisation=util, n_params=count_params(arch).total, tdp_w=gpu.tdp_w))
    return out


class StepEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu: str
    step_time_s: float = Field(description="one micro-step of batch x seq tokens")
    tokens_per_s: float
    power_w: float | None
    energy_j_per_step: float | None
    j_per_1k_tok: float | None
    utilisation: float
    tier: Tier
    method: str
    confidence: Literal["high", "medium", "low"]
    row_ids: list[str]
    note: str = ""


def _same_config(a: TrainSetup, b: TrainSetup) -> bool:
    keys = ("method", "weight_format", "double_quant", "lora_rank", "batch_size", "seq_len", "grad_checkpointing",
            "optimizer")
    if a.method != "full" and a.target_modules != b.target_modules:
        return False
    return all(getattr(a, k) == getattr(b, k) for k in keys if not (k == "lora_rank" and a.method == "full"))


def _distance(arch: ModelArch, setup: TrainSetup, gpu: GPU, c: Calibration) -> float:
    d = abs(math.log(count_params(arch).total / c.n_params))
    d += abs(math.log(setup.tokens_per_micro_step / c.setup.tokens_per_micro_step))
    d += 0.25 * abs(math.log(setup.lora_rank / c.setup.lora_rank)) if setup.method != "full" else 0.0
    d += 0.5 * (setup.grad_checkpointing != c.setup.grad_checkpointing)
    d += 0.5 * (setup.double_quant != c.setup.double_quant and setup.weight_format == "nf4")
    d += 3.0 * (gpu.key != c.gpu)  # another GPU: the utilisation may not carry over
    return d


def estimate_step(arch: ModelArch, setup: TrainSetup, gpu: GPU,
                  cal: list[Calibration] | None = None) -> StepEstimate | None:
    """Step time and energy of `setup` on `gpu`; None when no measured fine-tuning row exists."""
    cal = calibrations() if cal is None else cal
    if not cal:
        return None
    tokens = setup.tokens_per_micro_step
    exact = [c for c in cal if c.arch == arch.key and c.gpu == gpu.key and _same_config(setup, c.setup)]
    if exact:
        c = exact[0]
        e = c.energy_j_per_step
        return StepEstimate(gpu=gpu.key, step_time_s=c.step_time_s, tokens_per_s=c.tokens_per_s, power_w=c.power_w,
                            energy_j_per_step=e, j_per_1k_tok=e / tokens * 1000 if e else None,
                            utilisation=c.utilisation, tier="measured", method="measured", confidence="high",
                            row_ids=[c.row_id])
    # same method and weight format first (QLoRA's dequantisation changes the utilisation)
    pool = [c for c in cal if c.method == setup.method and c.weights == setup.weight_format] or \
        [c for c in cal if c.method == setup.method] or cal
    best = min(pool, key=lambda c: _distance(arch, setup, gpu, c))
    flops = flops_per_token(arch, setup)
    tok_s = best.utilisation * peak_flops(gpu, setup) / flops
    step = tokens / tok_s
    same_gpu = best.gpu == gpu.key
    if best.power_w is None:
        power = None
    elif same_gpu:
        power = best.power_w
    else:
        power = best.power_w / best.tdp_w * gpu.tdp_w
    energy = power * step if power is not None else None
    on_gpu = [c for c in pool if c.gpu == gpu.key]
    inside = bool(on_gpu) and min(c.n_params for c in on_gpu) <= count_params(arch).total <= max(
        c.n_params for c in on_gpu) and best.method == setup.method
    if same_gpu and inside:
        tier: Tier = "interpolated"
        conf: Literal["high", "medium", "low"] = "medium"
        how = "nearest measured row's utilisation"
    elif same_gpu:
        tier, conf, how = "extrapolated", "medium", "nearest measured row's utilisation (outside the measured sizes)"
    else:
        tier, conf = "extrapolated", "low"
        how = f"same utilisation as on {best.gpu}, power at the same fraction of TDP"
    note = (f"{best.row_id}: {best.utilisation * 100:.0f}% of the dense 16-bit peak; "
            f"{flops / 1e9:.1f} GFLOP per trained token (rule 'training FLOPs: 2F / 3F')")
    if best.method != setup.method:
        note += f"; no {setup.method} row yet, borrowed from {best.method}"
        conf = "low"
    return StepEstimate(gpu=gpu.key, step_time_s=step, tokens_per_s=tok_s, power_w=power, energy_j_per_step=energy,
                        j_per_1k_tok=energy / tokens * 1000 if energy is not None else None,
                        utilisation=best.utilisation, tier=tier, method=how, confidence=conf,
                        row_ids=[best.row_id], note=note)


class Workload(BaseModel):
    """How much the run trains on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    examples: int | None = Field(default=None, ge=1)
    avg_tokens: float | None = Field(default=None, gt=0)
    tokens: float | None = Field(default=None, gt=0, description="tokens per epoch, when given directly")
    epochs: float = Field(default=1, gt=0)

    def tokens_per_epoch(self, seq_len: int) -> float:
        if self.tokens is not None:
            return self.tokens
        if self.examples is None or self.avg_tokens is None:
            raise ValueError("give the dataset as examples + average tokens, or as total tokens")
        return self.examples * min(self.avg_tokens, seq_len)  # longer examples are truncated

    def total_tokens(self, seq_len: int) -> float:
        return self.tokens_per_epoch(seq_len) * self.epochs


def cheapest_price(gpu_key: str, override: float | None = None) -> GPUPrice | None:
    if override is not None:
        import datetime as dt

        return GPUPrice(gpu=gpu_key, provider="user", usd_per_hour=override, as_of=dt.date.today(),
                        source="given by the user")
    prices = [p for p in catalog.gpu_prices() if p.gpu == gpu_key]
    return min(prices, key=lambda p: (p.usd_per_hour, -p.as_of.toordinal())) if prices else None


class RunEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu: str
    step: StepEstimate
    tokens: float
    micro_steps: int
    optimizer_steps: int
    hours: float
    gpu_energy_kwh: float | None
    cost: CostLine | None = Field(default=None, description="electricity, facility kWh and CO2 (derive.cost_line)")
    rental_usd: float | None = None
    price: GPUPrice | None = None

    @property
    def total_usd(self) -> float | None:
        """Renting: the hourly price (electricity included); an own GPU: the electricity."""
        if self.rental_usd is not None:
            return self.rental_usd
        return self.cost.usd if self.cost else None


def estimate_run(arch: ModelArch, setup: TrainSetup, gpu: GPU, work: Workload, region: Region,
                 pue: float | None = None, price_override: float | None = None,
                 cal: list[Calibration] | None = None) -> RunEstimate | None:
    step = estimate_step(arch, setup, gpu, cal)
    if step is None:
        return None
    tokens = work.total_tokens(setup.seq_len)
    micro = math.ceil(tokens / setup.tokens_per_micro_step)
    opt_steps = math.ceil(micro / setup.grad_accum)
    seconds = tokens / step.tokens_per_s
    hours = seconds / 3600
    cost = None
    gpu_kwh = None
    if step.j_per_1k_tok is not None:
        pue_v = derive.pue_for(region, pue)
        gpu_kwh = derive.energy_kwh(step.j_per_1k_tok, tokens, 1.0)
        cost = derive.cost_line(f"{setup.method} on {gpu.key}", step.j_per_1k_tok, tokens, region.price_usd_kwh,
                                region.grid_gco2_kwh, pue_v,
                                basis=f"{tokens:,.0f} trained tokens, PUE {pue_v:g}, {region.name} electricity and grid")
    price = cheapest_price(gpu.key, price_override)
    rental = hours * price.usd_per_hour if price else None
    return RunEstimate(gpu=gpu.key, step=step, tokens=tokens, micro_steps=micro, optimizer_steps=opt_steps,
                       hours=hours, gpu_energy_kwh=gpu_kwh, cost=cost, rental_usd=rental, price=price)
