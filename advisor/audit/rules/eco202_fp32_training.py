"""ECO202 fp32-training: training in FP32 on a GPU that supports BF16/FP16.

What it catches
    transformers `TrainingArguments` (and YAML/JSON training configs, DeepSpeed configs) with
    neither `bf16` nor `fp16` turned on; TRL configs with both explicitly off (TRL turns bf16 on
    by default); plain PyTorch loops with a backward pass on the GPU and no autocast, no
    `Accelerator(mixed_precision=...)` and no 16-bit weights. Every CUDA GPU since Volta runs
    FP16 on tensor cores and Ampere onwards runs BF16; FP32 training leaves them unused.

Patterns
    TrainingArguments(output_dir="out", per_device_train_batch_size=8)    # no bf16/fp16
    SFTConfig(..., bf16=False, fp16=False)
    for batch in loader: loss = model(**batch).loss; loss.backward()      # no autocast

Not reported
    plain loops over an 8-bit/4-bit base (its matmuls run in the quantized kernels), library
    modules (the caller decides), bf16/fp16 on (or set from a variable: the user made it configurable), `use_cpu=True`,
    models loaded in 16-bit (`torch_dtype=torch.bfloat16`), TRL configs that leave bf16 unset.

Example
    finetune.py:52 ECO202 yellow  TrainingArguments without bf16=True or fp16=True trains in FP32 ...

References
    transformers TrainingArguments (bf16, fp16); TRL configs (bf16 defaults to True).
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import best_practice, dtype_of, loader_quant, loaders, user_code_only, uses_gpu
from advisor.audit.nodes import TrainingConfig
from advisor.audit.registry import rule
from advisor.audit.training import TRAINING_ARG_CALLS, training_spec
from advisor.messages.text import Msg, msg

FIX = "turn on mixed precision: bf16=True (Ampere and newer) or fp16=True (older GPUs)"
IMPACT = "finding.eco202_impact"  # en.toml / zh.toml


def _gpu_fix(ctx: Context) -> str | Msg:
    gpu = ctx.run.settings.gpu
    if not gpu:
        return FIX
    try:
        from measurements import catalog

        g = catalog.resolve_gpu(gpu)
    except Exception:  # catalog unavailable: the generic fix still holds
        return FIX
    return msg("finding.eco202_fix_bf16" if g.bf16_support else "finding.eco202_fix_fp16", gpu=g.name)


def _weights_16(ctx: Context) -> bool:
    for c in loaders(ctx):
        for key in ("torch_dtype", "dtype"):
            a = ctx.kwarg(key, c)
            if a.present and dtype_of(a.val) == "16":
                return True
    return "half" in ctx.index.method_names or "bfloat16" in ctx.index.method_names


def _plain_loop(ctx: Context):
    call = ctx.node
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "backward" and ctx.loops):
        return
    memo = ctx.index.memo
    if memo.get("eco202_loop"):
        return
    memo["eco202_loop"] = True
    names = " ".join(ctx.index.call_names)
    if "autocast" in names or "GradScaler" in names or _weights_16(ctx) or not uses_gpu(ctx):
        return
    if "deepspeed.initialize" in names or ".initialize" in names and "deepspeed" in ctx.index.imported:
        return  # a DeepSpeed engine: its config's bf16/fp16 section sets the precision
    if "prepare_model_for_kbit_training" in names or "prepare_model_for_int8_training" in names or any(
            loader_quant(ctx, c).bits is not None for c in loaders(ctx)):
        return  # an 8-bit/4-bit base: its matmuls run in the quantized kernels, not FP32
    for c, _ in ctx.index.nodes(ast.Call):
        if ctx.call_name(c).endswith("Accelerator"):
            mp = ctx.kwarg("mixed_precision", c)
            if not (mp.present and mp.val is not None and mp.val.text == "no"):
                return  # given, or left to `accelerate launch` and its config file
    yield ctx.hit(call.lineno, msg("finding.eco202_loop"), severity="yellow",
                  confidence="medium", impact=best_practice(msg(IMPACT)), fix=msg("finding.eco202_loop_fix"))


def _not_a_training_run(ctx: Context, spec) -> bool:  # noqa: ANN001 - TrainingSpec
    """Prediction-only configs (LLaMA-Factory `do_predict` without `do_train`) and smoke runs of
    at most short-run-steps steps (tests)."""
    train, predict = spec.given("do_train"), spec.given("do_predict")
    if predict.present and predict.val is not None and predict.val.truthy() and not (
            train.present and train.val is not None and train.val.truthy()):
        return True
    steps, _ = spec.number("max_steps")
    return steps is not None and 0 < steps <= ctx.run.policy.short_run_steps


def _quantized_base(ctx: Context, spec) -> bool:  # noqa: ANN001 - TrainingSpec
    """An 8-bit/4-bit base: its matmuls run in the quantized kernels' 16-bit compute dtype."""
    if spec.config is not None:
        return any(k in spec.config.entries and spec.config.entries[k].value not in (None, False)
                   for k in ("load_in_8bit", "load_in_4bit", "quantization_bit"))
    return any(loader_quant(ctx, c).bits is not None for c in loaders(ctx))


@rule("ECO202", "fp32-training", "FP32 training on a GPU with BF16/FP16", nodes=(ast.Call, TrainingConfig), fix=FIX,
      calls=TRAINING_ARG_CALLS | {"backward"}, tokens=sorted(TRAINING_ARG_CALLS | {"backward"}))
@user_code_only(gray_only=False)
def check(ctx: Context):
    spec = training_spec(ctx)
    if spec is None:
        if isinstance(ctx.node, ast.Call):
            yield from _plain_loop(ctx)
        return
    if _not_a_training_run(ctx, spec):
        return
    cpu = spec.given("use_cpu")
    if cpu.present and cpu.val is not None and cpu.val.truthy():
        return
    flags = {k: spec.given(k) for k in ("bf16", "fp16")}
    for a in flags.values():
        if a.present is None:
            return  # behind an unreadable **kwargs: the flags may well be there
        if a.present and a.val is not None and a.val.truthy() is not False:
            return  # on, "auto", or configurable at run time
    explicit_off = all(a.present for a in flags.values()) or (flags["bf16"].present and spec.library == "trl")
    if spec.library in ("trl", "command line") and not explicit_off:
        return  # TRL turns bf16 on when neither flag is set; a script's own defaults are not in sight
    if not explicit_off and _quantized_base(ctx, spec):
        return  # flags left unset on a quantized base: not the FP32 recipe this rule is about
    if spec.call is not None and _weights_16(ctx):
        return
    line = max((a.line for a in flags.values() if a.present), default=spec.line)
    owner = spec.owner
    text = msg("finding.eco202_off" if explicit_off else "finding.eco202_unset", owner=owner)
    yield ctx.hit(line, text, severity="yellow", confidence="high", impact=best_practice(msg(IMPACT)), fix=_gpu_fix(ctx),
                  span=ctx.node_span() if spec.call is not None else None)
