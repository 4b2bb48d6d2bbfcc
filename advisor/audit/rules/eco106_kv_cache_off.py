"""ECO106 kv-cache-off: the key/value cache disabled in generation.

What it catches
    `use_cache=False` given to `generate`, a `GenerationConfig` or a pipeline call, or set on a
    model's `generation_config`; and `model.config.use_cache = False` in a script that
    generates text and does not train. Without the cache every new token recomputes attention
    over the whole sequence so far.

Patterns
    model.generate(**inputs, max_new_tokens=256, use_cache=False)
    gen_cfg = GenerationConfig(use_cache=False)
    model.generation_config.use_cache = False

    With transformers 5 `generate` reads `generation_config`, so `model.config.use_cache = False`
    no longer turns the cache off: the project's transformers pin decides (else the installed
    version); with neither in sight the finding is gray and says both.

Not reported
    `use_cache=False` under a continuous-batching branch (`if use_cb:`: that engine keeps its own
    paged cache), `model.config.use_cache = False` under transformers 5, in training scripts (the usual companion of gradient
    checkpointing), `use_cache=True`.

Example
    chat.py:30 ECO106 yellow  generate(..., use_cache=False) disables the KV cache ...
    best practice: no cache-on vs cache-off pair has been measured yet ...

References
    transformers generation docs (use_cache); seed 003 AUDIT protocol ("no KV cache").
"""

from __future__ import annotations

import ast
import importlib.metadata
import re

from advisor.audit.context import Context
from advisor.audit.helpers import best_practice, is_training, short, transformers_major, user_code_only
from advisor.audit.pyindex import dotted
from advisor.audit.registry import rule
from advisor.audit.rules.eco105_one_prompt_at_a_time import CHAT_METHODS, STREAM_CHAT, generation_call
from advisor.messages.text import Msg, msg

FIX = "leave use_cache at its default (True) for generation"
IMPACT = "finding.eco106_impact"  # en.toml / zh.toml


@rule("ECO106", "kv-cache-off", "KV cache disabled in generation", nodes=(ast.Call, ast.Assign), fix=FIX,
      tokens=[("use_cache",), sorted({"generate", "generate_content", "GenerationConfig", "generation_config", "pipeline"}
                                     | CHAT_METHODS | STREAM_CHAT)])
@user_code_only(gray_only=True)
def check(ctx: Context):
    node = ctx.node
    if isinstance(node, ast.Call):
        if not any(k.arg == "use_cache" or k.arg is None for k in node.keywords):
            return  # cheap exit: most calls say nothing about the cache
    elif not any(isinstance(t, ast.Attribute) and t.attr == "use_cache" for t in node.targets):
        return
    hits = list(_check(ctx, node))
    if hits and not _own_cache_engine(ctx, node):
        yield from hits


def _check(ctx: Context, node: ast.AST):
    span = ctx.node_span()
    if isinstance(node, ast.Call):
        name = short(ctx.call_name())
        if not (generation_call(ctx, node) or name in ("GenerationConfig", "pipeline")):
            return
        a = ctx.kwarg("use_cache")
        if not a.present or a.val is None:
            return
        t = a.val.truthy()
        if t is False:
            yield ctx.hit(a.line, msg("finding.eco106_kwarg", name=name), severity="yellow",
                          confidence=a.val.confidence, impact=best_practice(msg(IMPACT)), span=span)
        elif t is None and a.val.kind == "unknown":
            yield ctx.hit(a.line, msg("finding.eco106_unknown", name=name, why=a.val.reason),
                          severity="gray", confidence="low", impact=best_practice(msg(IMPACT)), span=span)
        return
    for tgt in node.targets:
        d = dotted(tgt) or ""
        if not d.endswith(".use_cache"):
            continue
        v = ctx.value(node.value)
        if v.truthy() is not False:
            continue
        if d.endswith("generation_config.use_cache"):
            yield ctx.hit(node.lineno, msg("finding.eco106_generation_config", target=d),
                          severity="yellow", confidence="high", impact=best_practice(msg(IMPACT)), span=span)
        elif d.endswith("config.use_cache") and not is_training(ctx) and "generate" in ctx.index.method_names:
            major, where = _major(ctx)
            if major is not None and major >= 5:
                return  # transformers 5: generate reads generation_config, not model.config
            if major is not None:
                yield ctx.hit(node.lineno, msg("finding.eco106_config", target=d, major=major, where=where), severity="yellow",
                              confidence="medium", impact=best_practice(msg(IMPACT)), span=span)
            else:
                yield ctx.hit(node.lineno, msg("finding.eco106_config_unknown", target=d), severity="gray",
                              confidence="low", impact=best_practice(msg(IMPACT)), span=span)


_OWN_CACHE = re.compile(r"continuous|paged|(^|[^a-z])cb($|[^a-z])|batching", re.I)


def _own_cache_engine(ctx: Context, node: ast.AST) -> bool:
    """use_cache=False under `if use_cb:` / `if continuous_batching:`: a continuous-batching engine
    keeps its own paged KV cache, so the model's cache is not needed."""
    frame = ctx.frame_of(node)
    scope = frame.scopes[-1] if frame.scopes else ctx.index.tree
    for n in ast.walk(scope):
        if isinstance(n, ast.If) and any(c is node for b in n.body for c in ast.walk(b)) \
                and _OWN_CACHE.search(ast.unparse(n.test)):
            return True
    return False


def _major(ctx: Context) -> tuple[int | None, str | Msg]:
    """The transformers major version the script runs on: the project's pin, else the installed one."""
    pin = ctx.run.pins.get("transformers")
    major = transformers_major(pin)
    if major is not None:
        return major, msg("finding.pinned", pin=str(pin))
    try:
        version = importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        return None, ""
    head = version.split(".")[0]
    return (int(head), msg("finding.installed", version=version)) if head.isdigit() else (None, "")
