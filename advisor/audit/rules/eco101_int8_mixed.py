"""ECO101 int8-mixed-precision: 8-bit loading without `llm_int8_threshold=0.0`.

What it catches
    bitsandbytes 8-bit loading left at its default outlier threshold (6.0). LLM.int8() then
    splits every linear layer into an FP16 part (outlier columns) and an INT8 part and converts
    between them on every forward pass: less memory than FP16, but more energy than both FP16
    and pure INT8.

Patterns
    BitsAndBytesConfig(load_in_8bit=True)                       # no threshold
    AutoModelForCausalLM.from_pretrained(mid, load_in_8bit=True)
    BitsAndBytesConfig(**{"load_in_8bit": True})                # literal dicts are read
    BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0)

Not reported
    llm_int8_threshold=0.0 given directly, through a constant, a literal **dict, or set later on
    the config object (`cfg.llm_int8_threshold = 0.0`); load_in_8bit=False. A threshold or flag
    that cannot be read statically gives a gray, low-confidence finding that says so.

Example
    serve.py:12 ECO101 red  8-bit loading without llm_int8_threshold=0.0 runs LLM.int8()
    mixed-precision decomposition. measured: INT8 mixed spends +37% to +83% energy per 1k
    tokens vs pure INT8 ... (rows seed003-...)
    fix: BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=0.0)

References
    Dettmers et al. 2022, LLM.int8(); seed 003 paradox data (RTX 4090D, RTX 5090, A800 rows).
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import (
    ModelSize,
    best_practice,
    bnb_bits,
    loader_kind,
    loader_using,
    measured,
    model_arg,
    model_size,
    names_bound_to,
    short,
    user_code_only,
    weakest,
)
from advisor.audit.nodes import TrainingConfig
from advisor.audit.registry import rule
from advisor.audit.training import config_model, config_quant
from advisor.messages.text import msg

FIX = ("set llm_int8_threshold=0.0 (pure INT8): BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=0.0); "
       "or load in FP16/BF16 when it fits")
THRESHOLD = "llm_int8_threshold"


def _threshold_set_later(ctx: Context, call: ast.Call):
    names = names_bound_to(ctx, call)
    for table in ctx.index.attr_binds.values():
        for (base, attr), bl in table.items():
            if base in names and attr == THRESHOLD and bl:
                return bl[-1]
    return None


def _impact(ctx: Context, size: ModelSize | None):
    ev = ctx.run.evidence
    best = ev.precision("int8_mixed", ("int8_pure", "fp16", "bf16"), params_b=size.params_b if size else None)
    pure = ev.precision("int8_mixed", ("int8_pure",), params_b=size.params_b if size else None)
    if best.pairs:
        text = ev.describe(best, "int8_mixed", "int8_best")
        if pure.pairs:
            text = msg("finding.eco101_vs_pure", text=text, lo=f"{pure.low:+.0f}%", hi=f"{pure.high:+.0f}%",
                       n=len(pure.pairs))
        impact, mood = measured(ctx, best, text)
    else:
        impact, mood = best_practice(msg("finding.eco101_no_pairs")), "yellow"
    return impact, mood


def _config(ctx: Context):
    """axolotl `load_in_8bit: true` (its LoRA loader builds BitsAndBytesConfig(load_in_8bit=True) with
    the default threshold), LLaMA-Factory `quantization_bit: 8`, a `--load_in_8bit` flag."""
    cfg: TrainingConfig = ctx.node
    bits, line = config_quant(cfg)
    if bits != 8:
        return
    for key, e in cfg.entries.items():
        if key.rsplit(".", 1)[-1] == THRESHOLD and isinstance(e.value, (int, float)) and e.value == 0:
            return
    impact, mood = _impact(ctx, model_size(ctx, config_model(cfg)))
    yield ctx.hit(line, msg("finding.eco101_config"), severity=mood,
                  confidence="medium", impact=impact)


@rule("ECO101", "int8-mixed-precision", "INT8 mixed-precision decomposition (8-bit without threshold 0.0)",
      nodes=(ast.Call, TrainingConfig), fix=FIX,
      calls={"BitsAndBytesConfig", "from_pretrained"}, tokens=[("BitsAndBytesConfig", "from_pretrained"), ("load_in_8bit",)])
@user_code_only(gray_only=True)
def check(ctx: Context):
    call = ctx.node
    if isinstance(call, TrainingConfig):
        yield from _config(ctx)
        return
    name = ctx.call_name()
    is_cfg = short(name) == "BitsAndBytesConfig"
    if not is_cfg and loader_kind(name) is None:
        return
    q = bnb_bits(ctx, call, only=8)
    if q.bits != 8:
        return
    thr = ctx.kwarg(THRESHOLD)
    later = _threshold_set_later(ctx, call) if is_cfg else None
    span = ctx.node_span()
    if later is not None and later.value is not None:
        thr_val = ctx.value(later.value, ctx.frame)
        thr_present: bool | None = True
    else:
        thr_val = thr.val
        thr_present = thr.present
    if thr_present and thr_val is not None and thr_val.known:
        n = thr_val.number
        if n is not None and n == 0.0:
            return  # pure INT8: the evidence the rule looks for is contradicted
    loader = loader_using(ctx, call) if is_cfg else call
    size = model_size(ctx, model_arg(ctx, loader)) if loader is not None else None
    impact, mood = _impact(ctx, size)
    if not q.certain:
        yield ctx.hit(q.line, msg("finding.eco101_flag_unknown", why=q.reason), severity="gray", confidence="low",
                      impact=impact, span=span)
        return
    if thr_present and thr_val is not None and not thr_val.known:
        yield ctx.hit(thr.line or q.line, msg("finding.eco101_threshold_unknown", why=thr_val.reason), severity="gray",
                      confidence="low", impact=impact, span=span)
        return
    if thr_present is None:
        yield ctx.hit(q.line, msg("finding.eco101_threshold_spread", via=thr.via), severity="gray", confidence="low", impact=impact, span=span)
        return
    if thr_present and thr_val is not None and thr_val.number is not None:
        text = msg("finding.eco101_threshold", value=f"{thr_val.number:g}")
    else:
        text = msg("finding.eco101_default")
    conf = weakest(q.confidence, thr_val.confidence if thr_present and thr_val is not None else "high")
    yield ctx.hit(q.line, text, severity=mood, confidence=conf, impact=impact, span=span)
