"""ECO203 qlora-small-model: QLoRA (4-bit base) on a model small enough for 16-bit LoRA.

What it catches
    A training script (peft adapters, a Trainer, or a backward pass) that loads its base model
    in 4-bit when 16-bit LoRA would fit: with --gpu, when the model's 16-bit weights take at most
    the policy's share of the GPU's memory (lora16-weight-share, half by default); without a
    GPU, when the model is at or below the data's NF4 crossover (the bound ECO102 uses). Each
    training step then pays dequantization on every linear layer.

Impact
    Measured when the dataset holds QLoRA and LoRA fine-tuning rows of the same configuration
    (the engine's fine-tuning benchmark writes them); until then "best practice", quoting the
    measured inference NF4 overhead of small models as the nearest evidence.

Patterns
    model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-1.5B", quantization_config=bnb4)
    model = prepare_model_for_kbit_training(model); model = get_peft_model(model, lora_cfg)
    FastLanguageModel.from_pretrained(model_name="unsloth/Llama-3.2-1B", load_in_4bit=True)

    Configs count too: axolotl `load_in_4bit` / `adapter: qlora`, LLaMA-Factory
    `quantization_bit: 4`, a `--load_in_4bit` flag. When the code does not state the model, the
    size comes from an argument default of the same name, the models a comment names, or the
    README, configs and launch scripts beside the file (the largest named decides; low
    confidence).

Not reported
    4-bit bases that would not fit in 16-bit (a 7B model on a 16 GB GPU), inference scripts
    (ECO102), models whose size none of those sources gives.

Example
    qlora.py:27 ECO203 yellow  QLoRA on Qwen/Qwen2.5-1.5B (1.5B parameters): 16-bit LoRA fits ...

References
    seed 002 and 004 (LoRA vs QLoRA trade-offs); seed 003 NF4 inference rows.
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import (
    Quant,
    best_practice,
    four_bit_load,
    measured,
    model_arg,
    model_size,
    user_code_only,
    weakest,
)
from advisor.audit.nodes import TrainingConfig
from advisor.audit.policy import BYTES_FP16
from advisor.audit.registry import rule
from advisor.audit.training import config_model, config_quant
from advisor.messages.text import Msg, msg

FIX = "train 16-bit LoRA (load the base in torch.bfloat16, no 4-bit quantization_config) when it fits the GPU"


def _fits(ctx: Context, params_b: float) -> tuple[bool | None, str | Msg]:
    ev = ctx.run.evidence
    gpu = ctx.run.settings.gpu
    need = params_b * BYTES_FP16
    if gpu:
        try:
            from measurements import catalog

            g = catalog.resolve_gpu(gpu)
            share = ctx.run.policy.lora16_weight_share
            return need <= g.vram_gb * share, msg("finding.eco203_fits_gpu", need=f"{need:.1f}", gpu=g.name,
                                                                        vram=f"{g.vram_gb:g}")
        except Exception:  # catalog unavailable: fall back to the data's small-model bound
            pass
    bound, _ = ev.nf4_penalty_bound()
    if bound is None:
        return None, ""
    return params_b <= bound, msg("finding.eco203_fits_bound", need=f"{need:.1f}", bound=f"{bound:.1f}")


def _impact(ctx: Context, params_b: float | None):
    ev = ctx.run.evidence
    ft = ev.finetune("qlora", "lora", params_b=params_b)
    if ft.pairs:
        return measured(ctx, ft, ev.describe(ft, "qlora", "lora16", per="token"))
    bound, _ = ev.nf4_penalty_bound()
    inf = ev.precision("nf4", ("fp16", "bf16"), params_b=params_b, max_params=bound) if bound else None
    if inf is not None and inf.pairs:
        text = msg("finding.eco203_inference", lo=f"{inf.low:+.0f}%", hi=f"{inf.high:+.0f}%", bound=f"{bound:.1f}")
        return best_practice(text, inf.row_ids), "yellow"
    return best_practice(msg("finding.eco203_no_pairs")), "yellow"


def _config(ctx: Context):
    """A 4-bit base in a training config (axolotl, LLaMA-Factory, command-line flags)."""
    bits, line = config_quant(ctx.node)
    if bits != 4:
        return None
    return config_model(ctx.node), line


@rule("ECO203", "qlora-small-model", "QLoRA on a model where 16-bit LoRA fits", nodes=(ast.Call, TrainingConfig),
      fix=FIX, calls={"from_pretrained", "pipeline"}, tokens=[("from_pretrained", "pipeline"), ("load_in_4bit",)])
@user_code_only(gray_only=True)
def check(ctx: Context):
    call = ctx.node
    if isinstance(call, TrainingConfig):
        found = _config(ctx)
        if found is None:
            return
        arg, line = found
        q = Quant(4, True, line)
        span = None
    else:
        found_q = four_bit_load(ctx, call, training=True)
        if found_q is None:
            return
        q = found_q
        arg, line = model_arg(ctx, call), call.lineno
        span = ctx.node_span()
    size = model_size(ctx, arg)
    if size.params_b is None:
        # No size from the code, the catalog, the name, a comment or the files beside it: on real
        # recipes a "may fit" note here was wrong 7 times in 9 (benchmarks/audit_realworld.csv).
        return
    fits, why = _fits(ctx, size.params_b)
    if not fits:
        return
    impact, mood = _impact(ctx, size.params_b)
    named = isinstance(size.how, Msg) and size.how.key == "why.largest_named"
    text = msg("finding.eco203_named" if named else "finding.eco203", model=size.label, params=f"{size.params_b:g}",
               how=size.how, why=why)
    yield ctx.hit(line, text, severity=mood if q.certain else "gray",
                  confidence=weakest(size.confidence, q.confidence), impact=impact, span=span)
