"""ECO103 fp8-eager: torchao FP8 applied without compiling the model.

What it catches
    torchao FP8 quantization (`Float8WeightOnlyConfig`, `float8_weight_only`,
    `Float8DynamicActivationFloat8WeightConfig`, `TorchAoConfig("float8_weight_only")`) run in
    eager mode. Without `torch.compile` the FP8 path dispatches from Python: the GPU waits at
    high power while throughput collapses.

Patterns
    quantize_(model, Float8WeightOnlyConfig())                  # and no torch.compile anywhere
    from_pretrained(mid, quantization_config=TorchAoConfig("float8_weight_only"))

Not reported
    Files that call `torch.compile(...)` or `model.compile()`, and files serving through vLLM
    (which compiles).

Example
    fp8.py:14 ECO103 red  torchao FP8 (Float8WeightOnlyConfig) applied without torch.compile ...
    measured: FP8 spends +158% to +701% energy per 1k tokens vs FP16 ...

References
    seed 003: RTX 5090 five-precision study, torchao nightly eager mode (pytorch/ao#4094).
"""

from __future__ import annotations

import ast
import re

from advisor.audit.context import Context
from advisor.audit.helpers import best_practice, measured, short
from advisor.audit.registry import rule
from advisor.messages.text import msg

FIX = "compile the quantized model (model = torch.compile(model)) or serve FP8 through vLLM/SGLang; otherwise use FP16/BF16"
_FP8 = re.compile(r"float8|fp8", re.I)


def _fp8_config(ctx: Context, node: ast.AST) -> str | None:
    v = ctx.value(node)
    if v.kind == "call":
        n = short(ctx.call_name(v.value))
        return n if _FP8.search(n) else None
    if v.kind in ("symbol", "const") and isinstance(v.value, str) and _FP8.search(v.value):
        return short(v.value)
    return None


def _compiled(ctx: Context) -> bool:
    ix = ctx.index
    return ("compile" in ix.method_names or any(n.endswith("compile") for n in ix.call_names)
            or "vllm" in ix.imported or "sglang" in ix.imported)


@rule("ECO103", "fp8-eager", "torchao FP8 in eager mode (no torch.compile)", nodes=(ast.Call,), fix=FIX,
      calls={"quantize_", "quantize", "TorchAoConfig"}, tokens=[("quantize_", "quantize", "TorchAoConfig"), ("*float8*", "*fp8*")])
def check(ctx: Context):
    call = ctx.node
    name = ctx.call_name()
    s = short(name)
    cfg = None
    if s in ("quantize_", "quantize") and len(call.args) >= 2:
        cfg = _fp8_config(ctx, call.args[1])
    elif s == "TorchAoConfig":
        a = ctx.positional(0, "quant_type")
        if a.present and a.val is not None and a.val.node is not None:
            cfg = _fp8_config(ctx, a.val.node) if a.val.kind != "const" else (
                a.val.value if isinstance(a.val.value, str) and _FP8.search(a.val.value) else None)
    if not cfg or _compiled(ctx):
        return
    ev = ctx.run.evidence
    comp = ev.precision("fp8", ("fp16", "bf16"))
    if comp.pairs:
        impact, mood = measured(ctx, comp, ev.describe(comp, "fp8_eager", "fp16"))
    else:
        impact, mood = best_practice(msg("finding.eco103_no_pairs")), "yellow"
    yield ctx.hit(call.lineno, msg("finding.eco103", cfg=cfg), severity=mood, confidence="high", impact=impact,
                  span=ctx.node_span())
