"""ECO102 nf4-small-model: 4-bit (NF4) loading of a small model for inference.

What it catches
    bitsandbytes 4-bit loading of a model small enough that the dequantization work on every
    linear layer costs more energy than the memory it saves. The size bound is not typed in:
    it is the data's crossover, the largest model size at which every measured NF4/FP16 pair
    shows NF4 spending more (3.8B in the shipped data; NF4 saves energy from 6B up).

Patterns
    from_pretrained("Qwen/Qwen2.5-0.5B", load_in_4bit=True)
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")
    from_pretrained(MODEL_ID, quantization_config=cfg)          # MODEL_ID a constant
    pipeline("text-generation", model=mid, model_kwargs={"quantization_config": cfg})

Model size
    From the catalog (measurements/catalog/models.csv), the dataset's measured models, or the
    size in the name ("...-1.5B", "...-360M"). A model id read from an argparse default or an
    environment fallback gives medium confidence; an id the code does not state gives a gray,
    low-confidence finding.

Not reported
    Larger models (4-bit on a 7B model saves energy in the data), training scripts (ECO203
    covers QLoRA), 8-bit loading (ECO101), models whose size neither the code, the catalog, the
    name, a comment nor the READMEs and configs beside the file give.

Example
    infer.py:9 ECO102 orange  4-bit loading of Qwen/Qwen2.5-0.5B (0.5B parameters) ...
    measured: NF4 spends +11% to +55% energy per 1k tokens vs FP16 ...

References
    seed 003 paradox data: RTX 5090 five-precision and RTX 4090D NF4 tables.
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import four_bit_load, measured, model_arg, model_size, user_code_only, weakest
from advisor.audit.registry import rule
from advisor.messages.text import msg

FIX = "load small models in FP16/BF16 (torch_dtype=torch.float16); keep 4-bit for models too large for the GPU"


@rule("ECO102", "nf4-small-model", "4-bit (NF4) loading of a small model", nodes=(ast.Call,), fix=FIX,
      calls={"from_pretrained", "pipeline"}, tokens=[("from_pretrained", "pipeline"), ("load_in_4bit",)])
@user_code_only(gray_only=True)
def check(ctx: Context):
    call = ctx.node
    q = four_bit_load(ctx, call, training=False)
    if q is None:
        return
    ev = ctx.run.evidence
    bound, _ = ev.nf4_penalty_bound()
    if bound is None:
        return  # no data defines "small": say nothing rather than guess
    size = model_size(ctx, model_arg(ctx, call))
    span = ctx.node_span()
    if size.params_b is not None and size.params_b > bound:
        return  # a larger model: 4-bit saves energy or sits past the measured crossover
    comp = ev.precision("nf4", ("fp16", "bf16"), params_b=size.params_b, max_params=bound)
    if not comp.pairs:
        return
    impact, mood = measured(ctx, comp, ev.describe(comp, "nf4", "fp16"))
    if size.params_b is None:
        # No size from the code, the catalog, the name, a comment or the files beside it: nothing
        # to claim (on real scripts the "may be small" note was mostly about 7B+ models).
        return
    if not q.certain:
        yield ctx.hit(call.lineno, msg("finding.eco102_maybe", model=size.label, params=f"{size.params_b:g}", why=q.reason),
                      severity="gray", confidence="low", impact=impact, span=span)
        return
    text = msg("finding.eco102", model=size.label, params=f"{size.params_b:g}", how=size.how, bound=f"{bound:.1f}")
    yield ctx.hit(call.lineno, text, severity=mood, confidence=weakest(size.confidence, q.confidence),
                  impact=impact, span=span)


