"""ECO205 eval-logging-every-step: evaluation or logging every training step.

What it catches
    `eval_strategy="steps"` with `eval_steps=1`, including the quiet case where `eval_steps` is
    unset and inherits `logging_steps=1` (transformers falls back to logging_steps); and
    `logging_steps=1`. An evaluation pass every step can cost more than the training itself;
    logging every step forces a GPU synchronisation per step (a minor cost, reported green).

Patterns
    TrainingArguments(..., eval_strategy="steps", eval_steps=1)
    TrainingArguments(..., evaluation_strategy="steps", logging_steps=1)   # eval inherits 1
    logging_steps: 1                                                        # YAML / JSON

Not reported
    eval_strategy "no" / "epoch", ratios below 1, values read at run time.

Example
    train.py:44 ECO205 yellow  evaluation runs every step (eval_steps=1) ...

References
    transformers TrainingArguments (eval_steps defaults to logging_steps).
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import best_practice
from advisor.audit.nodes import TrainingConfig
from advisor.audit.registry import rule
from advisor.audit.training import TRAINING_ARG_CALLS, training_spec

FIX = "evaluate every few hundred steps or per epoch, and log every 10-50 steps"
IMPACT = "the dataset has no measurement of evaluation or logging overhead yet"


def _text(a) -> str | None:
    if a.present and a.val is not None and a.val.text:
        return a.val.text.rsplit(".", 1)[-1].lower()
    return None


@rule("ECO205", "eval-logging-every-step", "Evaluation or logging every step", nodes=(ast.Call, TrainingConfig), fix=FIX,
      calls=TRAINING_ARG_CALLS)
def check(ctx: Context):
    spec = training_spec(ctx)
    if spec is None:
        return
    span = ctx.node_span() if spec.call is not None else None
    strategy = _text(spec.get("eval_strategy"))
    ev_given = spec.given("eval_steps")
    log, la = spec.number("logging_steps")
    if strategy == "steps" or (spec.library == "axolotl" and ev_given.present):
        ev = ev_given.val.number if ev_given.present and ev_given.val is not None else None
        if ev_given.present is False and log == 1 and la.via != "default":
            yield ctx.hit(la.line, "evaluation runs every step: eval_steps is unset and inherits logging_steps=1",
                          severity="yellow", confidence="high", impact=best_practice(IMPACT), span=span)
            return
        if ev == 1:
            yield ctx.hit(ev_given.line, "evaluation runs every step (eval_steps=1)", severity="yellow",
                          confidence=ev_given.val.confidence if ev_given.val else "high",
                          impact=best_practice(IMPACT), span=span)
    log_strategy = _text(spec.get("logging_strategy"))
    if log == 1 and la.via != "default" and log_strategy in (None, "steps"):
        yield ctx.hit(la.line, "logging runs every step (logging_steps=1): a GPU sync per step, a minor cost",
                      severity="green", confidence=la.val.confidence if la.val else "high",
                      impact=best_practice(IMPACT), fix="log every 10-50 steps", span=span)
