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

    logging_steps: 1 / --logging_steps 1                                    # YAML, shell flags
    class Args(TrainingArguments): logging_steps: int = 1                   # dataclass defaults
    for batch in loader: ...; loss.backward(); print(loss.item())           # plain loop
    if step % 50: log(...)                                                  # true on 49 of 50 steps

    In a plain training loop (one with a backward pass), a print/log call that reads `.item()`
    with no `if step % N == 0` around it logs (and syncs the GPU) every step; `if step % N:` is
    true on every step that is NOT a multiple of N, so it logs on N-1 of N steps.

Not reported
    eval_strategy "no" / "epoch", ratios below 1, values read at run time; loop logging under
    `if step % N == 0` or under a condition that cannot be read (a verbosity flag).

Example
    train.py:44 ECO205 yellow  evaluation runs every step (eval_steps=1) ...

References
    transformers TrainingArguments (eval_steps defaults to logging_steps).
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import (
    best_practice,
    guards_between,
    is_training_step_loop,
    modulo_test,
    rank_check,
)
from advisor.audit.nodes import TrainingConfig
from advisor.audit.registry import rule
from advisor.audit.training import TRAINING_ARG_CALLS, training_spec
from advisor.messages.text import msg

FIX = "evaluate every few hundred steps or per epoch, and log every 10-50 steps"
IMPACT = "finding.eco205_impact"  # en.toml / zh.toml


def _text(a) -> str | None:
    if a.present and a.val is not None and a.val.text:
        return a.val.text.rsplit(".", 1)[-1].lower()
    return None


# Calls that write a log line or a metric (the last part of the name).
LOG_CALLS = frozenset({"print", "info", "debug", "warning", "log", "add_scalar", "add_scalars", "set_postfix",
                       "set_description", "write", "log_metrics", "log_dict"})
EVAL_CALLS = frozenset({"evaluate", "evaluation", "eval_model", "run_eval", "validate", "validation"})


def _reads_item(call: ast.Call) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "item"
               for a in list(call.args) + [k.value for k in call.keywords] for n in ast.walk(a))


def _call_last(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _loop_logging(ctx: Context):
    """A print/log of `.item()` on every step of a plain training loop."""
    call = ctx.node
    if not ctx.loops or _call_last(call) not in LOG_CALLS or not _reads_item(call):
        return
    loop = ctx.loops[-1]
    if not is_training_step_loop(loop):
        return
    guards = guards_between(loop, call)
    if guards is None:
        return
    for g in guards:
        if modulo_test(g.test) is not None or not rank_check(g.test):
            return  # periodic (or the inverted case, reported on the `if`), or a condition we cannot read
    yield ctx.hit(call.lineno, msg("finding.eco205_loop"),
                  severity="green", confidence="medium", impact=best_practice(msg(IMPACT)), fix=msg("finding.eco205_loop_fix"), span=ctx.node_span())


def _inverted_guard(ctx: Context):
    """`if step % N:` around logging or evaluation in a training loop: true on N-1 of N steps."""
    node = ctx.node
    m = modulo_test(node.test)
    if m is None or m[0] != "inverted" or not ctx.loops or not is_training_step_loop(ctx.loops[-1]):
        return
    n = ctx.value(m[1]).number
    if n is None or n < 2:
        return
    calls = [c for stmt in node.body for c in ast.walk(stmt) if isinstance(c, ast.Call)]
    evals = [c for c in calls if _call_last(c) in EVAL_CALLS]
    logs = [c for c in calls if _call_last(c) in LOG_CALLS]
    test = ast.unparse(node.test)
    if evals:
        yield ctx.hit(node.lineno, msg("finding.eco205_inverted_eval", test=test, n=f"{n:g}", m=f"{n - 1:g}"), severity="yellow",
                      confidence="high", impact=best_practice(msg(IMPACT)), fix=f"if {test} == 0:",
                      span=(node.lineno, evals[0].lineno))
    elif logs:
        yield ctx.hit(node.lineno, msg("finding.eco205_inverted_log", test=test, n=f"{n:g}", m=f"{n - 1:g}"), severity="green",
                      confidence="high", impact=best_practice(msg(IMPACT)), fix=f"if {test} == 0:",
                      span=(node.lineno, logs[0].lineno))


@rule("ECO205", "eval-logging-every-step", "Evaluation or logging every step",
      nodes=(ast.Call, ast.If, ast.ClassDef, TrainingConfig), fix=FIX, calls=TRAINING_ARG_CALLS | LOG_CALLS,
      # the arguments' classes, or a training-step loop (is_training_step_loop: a .backward() call)
      tokens=sorted(TRAINING_ARG_CALLS | {"backward"}))
def check(ctx: Context):
    if isinstance(ctx.node, ast.If):
        yield from _inverted_guard(ctx)
        return
    if isinstance(ctx.node, ast.Call) and _call_last(ctx.node) in LOG_CALLS:
        yield from _loop_logging(ctx)
        return
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
            yield ctx.hit(la.line, msg("finding.eco205_inherits"),
                          severity="yellow", confidence="high", impact=best_practice(msg(IMPACT)), span=span)
            return
        if ev == 1:
            yield ctx.hit(ev_given.line, msg("finding.eco205_eval"), severity="yellow",
                          confidence=ev_given.val.confidence if ev_given.val else "high",
                          impact=best_practice(msg(IMPACT)), span=span)
    log_strategy = _text(spec.get("logging_strategy"))
    if log == 1 and la.via != "default" and log_strategy in (None, "steps"):
        yield ctx.hit(la.line, msg("finding.eco205_log"),
                      severity="green", confidence=la.val.confidence if la.val else "high",
                      impact=best_practice(msg(IMPACT)), fix=msg("finding.eco205_log_fix"), span=span)
