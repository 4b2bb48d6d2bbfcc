"""ECO204 batch-one-no-accumulation: per-device batch size 1 without gradient accumulation.

What it catches
    `per_device_train_batch_size=1` (axolotl `micro_batch_size: 1`, DeepSpeed
    `train_micro_batch_size_per_gpu: 1`) with `gradient_accumulation_steps` unset or 1: every
    optimizer step sees one sequence, the GPU runs far below its throughput, and the run takes
    more steps (and more idle-power time) for the same data.

Patterns
    TrainingArguments(output_dir="o", per_device_train_batch_size=1)
    micro_batch_size: 1                                         # axolotl YAML

Not reported
    packed batches (axolotl `sample_packing`, TRL/LLaMA-Factory `packing`): one packed row holds
    several sequences up to the length limit.
    batch size 1 with gradient accumulation (the usual memory-bound QLoRA recipe), values the
    code reads at run time.

Example
    sft.py:33 ECO204 yellow  per_device_train_batch_size=1 with no gradient accumulation ...

References
    transformers TrainingArguments (per_device_train_batch_size, gradient_accumulation_steps).
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import best_practice
from advisor.audit.nodes import TrainingConfig
from advisor.audit.registry import rule
from advisor.audit.training import TRAINING_ARG_CALLS, training_spec
from advisor.messages.text import msg

FIX = ("raise the per-device batch size as far as memory allows, and use gradient_accumulation_steps to reach the "
       "effective batch you want")
IMPACT = "finding.eco204_impact"  # en.toml / zh.toml


PACKING_KEYS = ("sample_packing", "packing", "neat_packing", "multipack_real_batches")


@rule("ECO204", "batch-one-no-accumulation", "Per-device batch size 1 without gradient accumulation",
      nodes=(ast.Call, TrainingConfig), fix=FIX, calls=TRAINING_ARG_CALLS, tokens=sorted(TRAINING_ARG_CALLS))
def check(ctx: Context):
    spec = training_spec(ctx)
    if spec is None:
        return
    bs, a = spec.number("per_device_train_batch_size")
    if bs != 1 or a.via == "default":
        return
    accum, g = spec.number("gradient_accumulation_steps")
    if g.present is None or accum is None or accum > 1:
        return
    for key in PACKING_KEYS:  # a packed micro-batch holds several sequences, filled to the length limit
        p = spec.given(key)
        if p.present is None or (p.present and p.val is not None and p.val.truthy() is not False):
            return
    conf = a.val.confidence if a.val is not None else "high"
    name = "micro_batch_size" if spec.library == "axolotl" else "per_device_train_batch_size"
    yield ctx.hit(a.line, msg("finding.eco204", name=name),
                  severity="yellow", confidence=conf, impact=best_practice(msg(IMPACT)),
                  span=ctx.node_span() if spec.call is not None else None)
