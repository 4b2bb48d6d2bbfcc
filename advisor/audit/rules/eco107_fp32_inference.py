"""ECO107 fp32-inference: a model loaded for GPU inference in FP32.

What it catches
    `torch_dtype=torch.float32` (or `dtype=`, or "float32") on a model load, `model.float()`
    after loading, and, with transformers before 5.0 (whose default dtype is FP32), a load on
    the GPU with no dtype at all. transformers 5 loads the checkpoint's own dtype ("auto"):
    when the project pins transformers>=5 the no-dtype case is not reported; when no pin is
    in sight it is reported gray, at low confidence, saying so.

Patterns
    AutoModelForCausalLM.from_pretrained(mid, torch_dtype=torch.float32, device_map="auto")
    model = AutoModelForCausalLM.from_pretrained(mid).to("cuda")           # transformers 4.x
    pipeline("text-generation", model=mid, device=0)

Not reported
    16-bit or "auto" dtypes, quantized loads, a later `.half()` / `.bfloat16()` /
    `.to(torch.float16)`, `torch.autocast`, CPU-only scripts, training scripts (ECO202).

Example
    app.py:18 ECO107 yellow  from_pretrained(..., torch_dtype=torch.float32) runs inference in FP32 ...

References
    transformers from_pretrained `dtype` (default FP32 before 5.0, "auto" from 5.0).
"""

from __future__ import annotations

import ast
import re

from advisor.audit.context import Context
from advisor.audit.helpers import (
    best_practice,
    dtype_of,
    is_training,
    loader_kind,
    loader_quant,
    method_calls_on,
    names_bound_to,
    uses_gpu,
)
from advisor.audit.registry import rule

FIX = "load in 16-bit: torch_dtype=torch.bfloat16 (or torch.float16 on GPUs without BF16), or dtype=\"auto\""
IMPACT = ("the dataset has no FP32 inference rows yet; FP32 weights take twice the memory of FP16/BF16 and "
          "bypass the 16-bit tensor-core paths")


def _transformers_major(spec: str | None) -> int | None:
    """Major version a pin allows: '==4.46.0' -> 4, '>=5' -> 5, '<5' -> 4, None if unclear."""
    if not spec:
        return None
    m = re.search(r"(==|~=|===)\s*(\d+)", spec)
    if m:
        return int(m.group(2))
    upper = re.search(r"<\s*(\d+)(?:\.0)*\b", spec)
    if upper and re.search(r"<\s*\d+(\.0)*\s*(,|$)", spec):
        return int(upper.group(1)) - 1
    lower = re.search(r">=?\s*(\d+)", spec)
    if lower and int(lower.group(1)) >= 5:
        return int(lower.group(1))
    return None


def _cpu_only(ctx: Context, call: ast.Call) -> bool:
    for key in ("device_map", "device"):
        a = ctx.kwarg(key, call)
        if a.present and a.val is not None and a.val.kind == "const":
            v = a.val.value
            if (isinstance(v, str) and v.lower() == "cpu") or v == -1:
                return True
    return False


def _cast_later(ctx: Context, call: ast.Call) -> str | None:
    """'16' when the loaded model is cast to 16-bit later, '32' when `.float()`, else None."""
    names = names_bound_to(ctx, call)
    if not names:
        return None
    for c in method_calls_on(ctx, names):
        attr = c.func.attr  # type: ignore[attr-defined]
        if attr in ("half", "bfloat16"):
            return "16"
        if attr == "float" and not c.args:
            return "32"
        if attr == "to":
            for a in list(c.args) + [k.value for k in c.keywords]:
                d = dtype_of(ctx.value(a))
                if d == "16":
                    return "16"
                if d == "32":
                    return "32"
    return None


@rule("ECO107", "fp32-inference", "FP32 inference", nodes=(ast.Call,), fix=FIX,
      calls={"from_pretrained", "pipeline"})
def check(ctx: Context):
    call = ctx.node
    kind = loader_kind(ctx.call_name())
    if kind not in ("hf", "pipeline") or is_training(ctx) or _cpu_only(ctx, call):
        return
    if kind == "pipeline":
        from advisor.audit.helpers import model_arg

        m = model_arg(ctx, call)
        if not (m.present and m.val is not None and m.val.kind == "const"):
            return  # a model object loaded elsewhere (its own load is checked there) or no model at all
    span = ctx.node_span()
    impact = best_practice(IMPACT)
    dt = None
    for key in ("torch_dtype", "dtype"):
        a = ctx.kwarg(key)
        if a.present is not False:
            dt = a
            break
    if kind == "pipeline" and dt is None:
        mk = ctx.kwarg("model_kwargs")
        if mk.present and mk.val is not None and mk.val.kind == "dict":
            for key in ("torch_dtype", "dtype"):
                if key in mk.val.value:
                    v = mk.val.value[key]
                    from advisor.audit.context import Arg

                    dt = Arg(True, v, getattr(v.node, "lineno", mk.line))
                    break
    if dt is not None:
        if dt.present is None or dt.val is None:
            return
        d = dtype_of(dt.val)
        if d == "32" and _cast_later(ctx, call) != "16":
            yield ctx.hit(dt.line, f"{dt.val.text or 'float32'} loads the model in FP32 for inference",
                          severity="yellow", confidence=dt.val.confidence, impact=impact, span=span)
        return
    if loader_quant(ctx, call).bits is not None or ctx.kwarg("quantization_config").present is not False:
        return
    later = _cast_later(ctx, call)
    if later == "16" or "autocast" in " ".join(ctx.index.call_names) or not uses_gpu(ctx):
        return
    if later == "32":
        yield ctx.hit(call.lineno, "the model is loaded and then cast to FP32 with .float() for inference",
                      severity="yellow", confidence="high", impact=impact, span=span)
        return
    major = _transformers_major(ctx.run.pins.get("transformers"))
    if major is not None and major >= 5:
        return
    if major is not None:
        yield ctx.hit(call.lineno, f"no dtype given: transformers {major}.x (pinned "
                                   f"{ctx.run.pins['transformers']}) loads the weights in FP32 by default",
                      severity="yellow", confidence="high", impact=impact, span=span)
        return
    yield ctx.hit(call.lineno, "no dtype given: transformers before 5.0 loads the weights in FP32 by default "
                               "(5.0 and later load the checkpoint's dtype); no transformers pin was found to tell",
                  severity="gray", confidence="low", impact=impact, span=span)
