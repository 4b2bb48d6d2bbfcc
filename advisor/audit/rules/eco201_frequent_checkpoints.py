"""ECO201 frequent-checkpoints: checkpoints saved very often.

What it catches
    `save_steps` small against the run (`max_steps / save_steps` above the policy's
    max-checkpoints-per-run, 20 by default), a `save_steps` ratio below 1/20, or, when the run
    length is not in the code, a save every fewer than min-save-interval-steps (50) steps; in
    plain loops, `torch.save` / `save_pretrained` / `save_state` under `if step % N == 0` with
    a small N. Every save stalls the GPU (power spikes, idle draw) and writes gigabytes.

Patterns
    TrainingArguments(output_dir="out", max_steps=1000, save_steps=10)
    SFTConfig(..., save_steps=SAVE_EVERY)                       # a constant is followed
    save_steps: 5                                               # YAML / JSON training config
    if step % 10 == 0: model.save_pretrained(...)
    if step % 500: torch.save(...)                              # true on 499 of 500 steps
    class Args(TrainingArguments): save_steps: int = 250; max_steps: int = 10000
    --save_steps 10 --max_steps 1000                            # shell script flags

Not reported
    save_strategy "epoch" / "no", the transformers default (500) on runs of up to 20 x 500 steps.

Example
    train.py:40 ECO201 yellow  save_steps=10 with max_steps=1000 writes 100 checkpoints ...

References
    seed 000 (simulated white paper) describes checkpoint-save power spikes; simulated figures
    are never used as evidence, so this rule is labelled best practice until measured.
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import best_practice, is_training_step_loop, modulo_test
from advisor.audit.nodes import TrainingConfig
from advisor.audit.registry import rule
from advisor.audit.training import TRAINING_ARG_CALLS, training_spec
from advisor.messages.text import msg

FIX = "save every few hundred steps or once per epoch (save_strategy=\"epoch\"), sized to the run"
IMPACT = "finding.eco201_impact"  # en.toml / zh.toml
_SAVES = ("save", "save_pretrained", "save_state", "save_model", "save_checkpoint")


def _strategy(spec, key: str) -> str | None:
    a = spec.get(key)
    if a.present and a.val is not None and a.val.text:
        return a.val.text.rsplit(".", 1)[-1].lower()
    return None


def _plain_loop(ctx: Context):
    node = ctx.node
    m = modulo_test(node.test)
    if not ctx.loops or m is None:
        return
    saves = [c for stmt in node.body for c in ast.walk(stmt) if isinstance(c, ast.Call)
             and isinstance(c.func, (ast.Attribute, ast.Name))
             and (c.func.attr if isinstance(c.func, ast.Attribute) else c.func.id) in _SAVES]
    if not saves:
        return
    if not any(is_training_step_loop(loop) for loop in ctx.loops):
        return  # `image.save(...)` in a loop over messages is not a checkpoint
    n = ctx.value(m[1]).number
    if m[0] == "inverted":
        if n is not None and n >= 2:
            test = ast.unparse(node.test)
            yield ctx.hit(node.lineno, msg("finding.eco201_inverted", test=test, n=f"{n:g}", m=f"{n - 1:g}"),
                          severity="yellow", confidence="high", impact=best_practice(msg(IMPACT)),
                          span=(node.lineno, saves[0].lineno), fix=f"if {test} == 0:")
        return
    if n is None or n >= ctx.run.policy.min_save_interval_steps:
        return
    yield ctx.hit(saves[0].lineno, msg("finding.eco201_loop", n=f"{n:g}"), severity="yellow", confidence="medium",
                  impact=best_practice(msg(IMPACT)), span=(node.lineno, saves[0].lineno))


@rule("ECO201", "frequent-checkpoints", "Checkpoints saved very often",
      nodes=(ast.Call, ast.If, ast.ClassDef, TrainingConfig), fix=FIX,
      calls=TRAINING_ARG_CALLS, tokens=sorted(TRAINING_ARG_CALLS | set(_SAVES)))
def check(ctx: Context):
    if isinstance(ctx.node, ast.If):
        yield from _plain_loop(ctx)
        return
    spec = training_spec(ctx)
    if spec is None:
        return
    policy = ctx.run.policy
    span = ctx.node_span() if isinstance(ctx.node, ast.Call) else None
    if spec.library == "axolotl":
        per_epoch, a = spec.number("saves_per_epoch")
        epochs, _ = spec.number("num_train_epochs")
        if per_epoch and per_epoch * (epochs or 1) > policy.max_checkpoints_per_run:
            yield ctx.hit(a.line, msg("finding.eco201_per_epoch", per=f"{per_epoch:g}", count=f"{per_epoch * (epochs or 1):g}"),
                          severity="yellow", confidence="high", impact=best_practice(msg(IMPACT)))
            return
    strategy = _strategy(spec, "save_strategy")
    if strategy not in (None, "steps"):
        return
    given = spec.given("save_steps")
    save, a = spec.number("save_steps")
    if save is None or save <= 0:
        return
    max_steps, _ = spec.number("max_steps")
    conf = a.val.confidence if a.val is not None else "high"
    if save < 1:
        count = 1 / save
        if count > policy.max_checkpoints_per_run:
            yield ctx.hit(a.line, msg("finding.eco201_ratio", save=f"{save:g}", count=f"{count:.0f}"),
                          severity="yellow", confidence=conf, impact=best_practice(msg(IMPACT)), span=span)
        return
    if max_steps and max_steps > 0:
        count = max_steps / save
        if count > policy.max_checkpoints_per_run:
            yield ctx.hit(a.line, msg("finding.eco201_max_steps", save=f"{save:g}", max_steps=f"{max_steps:g}",
                                      count=f"{count:.0f}", top=policy.max_checkpoints_per_run),
                          severity="yellow", confidence=conf, impact=best_practice(msg(IMPACT)), span=span)
        return
    if given.present and save < policy.min_save_interval_steps:
        yield ctx.hit(a.line, msg("finding.eco201_steps", save=f"{save:g}"), severity="yellow", confidence="medium",
                      impact=best_practice(msg(IMPACT)), span=span)
