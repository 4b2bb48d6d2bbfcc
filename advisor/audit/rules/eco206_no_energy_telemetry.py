"""ECO206 no-energy-telemetry: a long training job with no energy tracking (informational).

What it catches
    A training run (`trainer.train()`, or a training loop's backward pass) in a file that uses
    no energy telemetry: no CodeCarbon (`EmissionsTracker`, `report_to="codecarbon"`), no NVML
    (pynvml / nvidia-ml-py), no Zeus. Without it nobody knows what the run cost. Reported gray:
    it wastes nothing by itself.

Not reported
    Files with any of those; short runs (max_steps at or below the policy's short-run-steps,
    100 by default: a smoke test).

Example
    train.py:88 ECO206 gray  trainer.train() runs with no energy telemetry ...

References
    seed 000 (the white paper's CodeCarbon + NVML protocol); the engine's power sampler.
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import best_practice, user_code_only
from advisor.audit.registry import rule
from advisor.audit.training import HF_ARG_CLASSES, TRAINER_CLASSES, TRL_ARG_CLASSES, short_name
from advisor.messages.text import msg

FIX = "track energy: with codecarbon.EmissionsTracker(): trainer.train(), or report_to=[\"codecarbon\"]"
TELEMETRY = frozenset({"codecarbon", "pynvml", "nvidia_smi", "zeus", "pyJoules", "carbontracker", "eco2ai",
                       "experiment_impact_tracker", "engine"})


def _short_run(ctx: Context) -> bool:
    limit = ctx.run.policy.short_run_steps
    for c, _ in ctx.index.nodes(ast.Call):
        if short_name(ctx.call_name(c)) in HF_ARG_CLASSES | TRL_ARG_CLASSES:
            a = ctx.kwarg("max_steps", c)
            if a.present and a.val is not None and a.val.number is not None and 0 < a.val.number <= limit:
                return True
    return False


def _trainer_names(ctx: Context) -> set[str]:
    names = set()
    for table in ctx.index.binds.values():
        for name, bl in table.items():
            if any(isinstance(b.value, ast.Call) and short_name(ctx.call_name(b.value)) in TRAINER_CLASSES for b in bl):
                names.add(name)
    return names


@rule("ECO206", "no-energy-telemetry", "Long training job without energy telemetry", nodes=(ast.Call,), fix=FIX,
      calls={"train", "backward"}, tokens=("train", "backward"))
@user_code_only(gray_only=False)
def check(ctx: Context):
    call = ctx.node
    f = call.func
    if not isinstance(f, ast.Attribute) or f.attr not in ("train", "backward"):
        return
    if f.attr == "train":
        if not (isinstance(f.value, ast.Name) and (f.value.id in _trainer_names(ctx) or "trainer" in f.value.id.lower())):
            return
    elif not ctx.loops:
        return
    memo = ctx.index.memo
    if memo.get("eco206"):
        return
    memo["eco206"] = True
    ix = ctx.index
    if ix.imported & TELEMETRY or "codecarbon" in ix.strings or _short_run(ctx):
        return
    text = (msg("finding.eco206_call", call=f"{ast.unparse(f)}()") if f.attr == "train"
            else msg("finding.eco206_loop"))
    yield ctx.hit(call.lineno, text,
                  severity="gray", confidence="high",
                  impact=best_practice(msg("finding.eco206_impact")))
