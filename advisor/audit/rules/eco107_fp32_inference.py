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
    `.to(torch.float16)`, `torch.autocast`, CPU-only scripts, training scripts (ECO202), loads
    whose model only gives its weights (`state_dict()`, `save_pretrained`: conversion scripts),
    loads without a dtype that run the model's own code (`trust_remote_code=True`: that code may
    pick its dtype), casts chained onto the load (`from_pretrained(...).half().cuda()`), parts of
    a model class loaded into `self.<name>` (the class sets the dtype of the whole).

Example
    app.py:18 ECO107 yellow  from_pretrained(..., torch_dtype=torch.float32) runs inference in FP32 ...

References
    transformers from_pretrained `dtype` (default FP32 before 5.0, "auto" from 5.0).
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import (
    best_practice,
    branch_truth,
    dtype_of,
    is_training,
    loader_kind,
    loader_quant,
    method_calls_on,
    names_bound_to,
    short,
    transformers_major,
    user_code_only,
    uses_gpu,
)
from advisor.audit.registry import rule
from advisor.messages.text import msg

FIX = "load in 16-bit: torch_dtype=torch.bfloat16 (or torch.float16 on GPUs without BF16), or dtype=\"auto\""
IMPACT = "finding.eco107_impact"  # en.toml / zh.toml


def _device_text(ctx: Context, v) -> object:  # noqa: ANN001 - a Val
    """A device value as a constant: `torch.device(x)` is read through x."""
    if v.kind == "call" and short(ctx.call_name(v.value)) == "device" and v.value.args:
        v = ctx.value(v.value.args[0], v.frame)
    return v.value if v.kind == "const" else None


def _cpu_only(ctx: Context, call: ast.Call) -> bool:
    for key in ("device_map", "device"):
        a = ctx.kwarg(key, call)
        if not a.present or a.val is None:
            continue
        values = list(a.val.value.values()) if a.val.kind == "dict" and a.val.value else [a.val]
        devs = [_device_text(ctx, v) for v in values]
        if all((isinstance(d, str) and d.lower() == "cpu") or d == -1 for d in devs):
            return True
    return False


def _cast_later(ctx: Context, call: ast.Call) -> tuple[str | None, str]:
    """('16', "") when the loaded model is cast to 16-bit later on a path that runs, ('32', "")
    for `.float()`, ('maybe16', why) when the only 16-bit cast sits under a condition that cannot
    be read, (None, why) when there is none (why: a cast that is off by its flag's default)."""
    chained = _chained_cast(ctx, call)
    if chained is not None:
        return chained, ""
    names = names_bound_to(ctx, call)
    if not names:
        return None, ""
    maybe = off = ""
    for c in method_calls_on(ctx, names):
        attr = c.func.attr  # type: ignore[attr-defined]
        kind = None
        if attr in ("half", "bfloat16"):
            kind = "16"
        elif attr == "float" and not c.args:
            kind = "32"
        elif attr == "to":
            for a in list(c.args) + [k.value for k in c.keywords]:
                kind = dtype_of(ctx.value(a)) if dtype_of(ctx.value(a)) in ("16", "32") else kind
        if kind is None:
            continue
        runs, why = branch_truth(ctx, c)
        if runs is True:
            return kind, ""
        if kind == "16":
            if runs is None:
                maybe = maybe or why
            else:
                off = off or why
    if maybe:
        return "maybe16", maybe
    return None, off


def _parents(ctx: Context) -> dict[int, ast.AST]:
    memo = ctx.index.memo
    if "eco107_parents" not in memo:
        memo["eco107_parents"] = {id(c): p for p in ast.walk(ctx.index.tree) for c in ast.iter_child_nodes(p)}
    return memo["eco107_parents"]


def _chained_cast(ctx: Context, call: ast.Call) -> str | None:
    """'16' / '32' for a cast chained onto the load itself: `from_pretrained(...).half().cuda()`."""
    parents = _parents(ctx)
    node: ast.AST = call
    for _ in range(6):
        attr = parents.get(id(node))
        outer = parents.get(id(attr)) if isinstance(attr, ast.Attribute) else None
        if not (isinstance(attr, ast.Attribute) and isinstance(outer, ast.Call) and outer.func is attr):
            return None
        if attr.attr in ("half", "bfloat16"):
            return "16"
        if attr.attr == "float" and not outer.args:
            return "32"
        if attr.attr == "to":
            for a in list(outer.args) + [k.value for k in outer.keywords]:
                d = dtype_of(ctx.value(a))
                if d in ("16", "32"):
                    return d
        node = outer
    return None


def _component_of_a_class(ctx: Context, call: ast.Call) -> bool:
    """`self.vision_tower = CLIPVisionModel.from_pretrained(...)` in a method: a part of a larger
    model class, whose dtype the class or its caller sets for the whole."""
    parent = _parents(ctx).get(id(call))
    return isinstance(parent, ast.Assign) and any(
        isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self" for t in parent.targets)


def _quantized(ctx: Context, call: ast.Call) -> tuple[bool | None, str]:
    """Is the load quantized: True, False, or None (a flag or a conditional config that cannot be
    read); a `quantization_config=cfg if args.q else None` follows the flag's default."""
    q = loader_quant(ctx, call)
    if q.bits is not None and q.default_off:
        return False, ""
    if q.bits is not None:
        return (True, "") if q.certain else (None, msg("why.quant_flag", why=q.reason))
    qc = ctx.kwarg("quantization_config")
    if qc.present is False:
        return False, ""
    if qc.present is None or qc.val is None:
        return None, msg("why.quant_spread")
    node = qc.val.node
    if isinstance(node, ast.IfExp):
        t = ctx.value(node.test).truthy()
        branch = node.body if t else node.orelse
        if t is None:
            return None, msg("why.quant_depends", test=ast.unparse(node.test))
        if isinstance(branch, ast.Constant) and branch.value is None:
            return False, ""
        return True, ""
    if qc.val.kind == "const" and qc.val.value is None:
        return False, ""
    if qc.val.kind == "unknown":
        return None, msg("why.quant_config", why=qc.val.reason)
    return True, ""


# Uses of a loaded model that run no forward pass: weight conversion, merging, saving.
_NO_FORWARD = frozenset({"state_dict", "save_pretrained", "push_to_hub", "named_parameters", "parameters",
                         "named_modules", "modules", "merge_and_unload", "resize_token_embeddings", "to", "cuda",
                         "cpu", "eval", "config", "get_input_embeddings", "get_output_embeddings",
                         "load_state_dict", "tie_weights", "num_parameters", "requires_grad_", "dtype", "device"})


def _runs_forward(ctx: Context, call: ast.Call) -> bool:
    """False when every use of the loaded model is a conversion (`state_dict()`, `save_pretrained`):
    a weight-diff or merge script, not inference. True when it is called, generates, or is handed on."""
    names = names_bound_to(ctx, call)
    if not names:
        return True
    parents = _parents(ctx)
    converted = False
    for n in ast.walk(ctx.index.tree):
        if isinstance(n, ast.Name) and n.id in names and isinstance(n.ctx, ast.Load):
            p = parents.get(id(n))
            if isinstance(p, ast.Attribute) and p.value is n and p.attr in _NO_FORWARD:
                converted = converted or p.attr in ("state_dict", "save_pretrained", "push_to_hub", "merge_and_unload")
                continue
            return True
    return not converted  # never used here: a snippet, assume it serves


@rule("ECO107", "fp32-inference", "FP32 inference", nodes=(ast.Call,), fix=FIX,
      calls={"from_pretrained", "pipeline"},
      # a load, and either GPU use (uses_gpu: .cuda()/.xpu(), "cuda..."/"xpu..." strings, device_map) or an FP32 dtype
      tokens=[("from_pretrained", "pipeline"), ("cuda*", "xpu*", "device_map", "float32", "float", "fp32")])
@user_code_only(gray_only=False)
def check(ctx: Context):
    call = ctx.node
    kind = loader_kind(ctx.call_name())
    if kind not in ("hf", "pipeline") or is_training(ctx) or _cpu_only(ctx, call) or not _runs_forward(ctx, call):
        return
    if _component_of_a_class(ctx, call):
        return
    if kind == "pipeline":
        from advisor.audit.helpers import model_arg

        m = model_arg(ctx, call)
        if not (m.present and m.val is not None and m.val.kind == "const"):
            return  # a model object loaded elsewhere (its own load is checked there) or no model at all
    span = ctx.node_span()
    impact = best_practice(msg(IMPACT))
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
        later, why = _cast_later(ctx, call)
        if d == "32" and later != "16":
            dtype = dt.val.text or "float32"
            text = (msg("finding.eco107_dtype_unless", dtype=dtype, why=why) if later == "maybe16"
                    else msg("finding.eco107_dtype", dtype=dtype))
            yield ctx.hit(dt.line, text,
                          severity="yellow", confidence="low" if later == "maybe16" else dt.val.confidence,
                          impact=impact, span=span)
        return
    quant, qwhy = _quantized(ctx, call)
    if quant is True:
        return
    remote = ctx.kwarg("trust_remote_code")
    if remote.present and remote.val is not None and remote.val.truthy() is not False:
        return  # custom model code picks its own dtype (Qwen's chooses BF16/FP16 by the GPU): no default to read
    later, why = _cast_later(ctx, call)
    if later == "16" or "autocast" in " ".join(ctx.index.call_names) or not uses_gpu(ctx):
        return
    major = transformers_major(ctx.run.pins.get("transformers"))
    if major is not None and major >= 5:
        return
    # A cast or a quantization that may not run lowers the confidence instead of silencing the finding.
    doubt = qwhy if quant is None else why if later == "maybe16" else ""
    if doubt:
        yield ctx.hit(call.lineno, msg("finding.eco107_doubt", why=doubt), severity="gray", confidence="low", impact=impact, span=span)
        return
    skipped = why  # a 16-bit cast behind a flag that is off by default
    if later == "32":
        yield ctx.hit(call.lineno, msg("finding.eco107_float"),
                      severity="yellow", confidence="high", impact=impact, span=span)
        return
    if major is not None:
        pin = ctx.run.pins["transformers"]
        text = (msg("finding.eco107_pinned_skipped", major=major, pin=pin, why=skipped) if skipped
                else msg("finding.eco107_pinned", major=major, pin=pin))
        yield ctx.hit(call.lineno, text, severity="yellow", confidence="medium" if skipped else "high", impact=impact, span=span)
        return
    text = msg("finding.eco107_unpinned_skipped", why=skipped) if skipped else msg("finding.eco107_unpinned")
    yield ctx.hit(call.lineno, text, severity="gray", confidence="low", impact=impact, span=span)
