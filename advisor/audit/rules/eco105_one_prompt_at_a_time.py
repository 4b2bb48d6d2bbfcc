"""ECO105 one-prompt-at-a-time: generation at batch size 1 where many prompts are served.

What it catches
    A `generate` call (transformers, vLLM) or a text-generation pipeline call inside a loop over
    prompts, fed one prompt per iteration (directly, or through a function of this file the loop
    calls with each prompt), or inside a `while` loop fed by `input()`; a web
    endpoint (FastAPI, Flask; or a function or method of this file it calls), a Streamlit app, or
    a Gradio handler (gr.Interface / gr.ChatInterface / a Blocks
    event such as `btn.click(fn, ...)`) that runs its own `generate` call per request with no
    batching in between (a `Thread(target=model.generate)` streamer counts, and so does the chat
    API of remote-code models, `model.chat` / `model.stream_chat`); and
    `batch_size=1` given to a pipeline. Batch 1 leaves most of the GPU idle while it draws power.

Patterns
    for prompt in prompts:
        ids = tok(prompt, return_tensors="pt").to("cuda")
        out = model.generate(**ids)                             # the input comes from the loop
    answers = [pipe(p) for p in prompts]
    @app.post("/generate")
    def gen(req): return model.generate(...)                    # one request, one generate
    pipeline("text-generation", model=mid, batch_size=1)
    gr.ChatInterface(respond).launch()                          # respond() calls model.generate
    while True: q = input("> "); out = model.generate(**tok(q, return_tensors="pt"))

Not reported
    Loops over batches (`for batch in batches`, `range(0, n, bs)`), repeated runs
    (`for _ in range(3)`, a benchmark), loops that time each call (latency benchmarks), generate calls whose input does not depend on the loop
    variable, endpoints wrapped in a batching decorator, Gradio events registered with
    `batch=True`.

Example
    batch_job.py:21 ECO105 orange  model.generate runs once per prompt of the loop over
    'prompts' (batch size 1) ... measured: batch 1 spends +87% to +294% energy per 1k tokens
    vs the next measured batch size ...

References
    seed 003 batch-size guide (A800, Mistral-7B, batch 1 to 64).
"""

from __future__ import annotations

import ast

from advisor.audit.context import Context
from advisor.audit.helpers import best_practice, measured, short, user_code_only
from advisor.audit.pyindex import dotted
from advisor.audit.registry import rule
from advisor.messages.text import msg

FIX = ("batch the prompts: tokenizer(list_of_prompts, padding=True) + one generate call, pipeline(..., batch_size=N) "
       "on the whole list, or a server with continuous batching (vLLM, TGI)")
_ROUTE = ("get", "post", "put", "route", "websocket", "api_route", "patch")
# Engines that batch concurrent requests themselves (continuous batching): an endpoint that hands
# each request to one of them is batched, even though its code makes one call per request.
BATCHING_ENGINES = frozenset({"vllm", "sglang", "lightllm", "dashinfer", "tensorrt_llm", "text_generation", "lmdeploy",
                              "exllamav2"})


def _pipelines(ctx: Context) -> set[str]:
    memo = ctx.index.memo
    if "pipelines" not in memo:
        names: set[str] = set()
        for table in ctx.index.binds.values():
            for name, bl in table.items():
                for b in bl:
                    v = b.value
                    if isinstance(v, ast.Call) and short(ctx.call_name(v)) == "pipeline":
                        names.add(name)
        memo["pipelines"] = names
    return memo["pipelines"]


CHAT_METHODS = frozenset({"chat", "stream_chat", "chat_stream"})
STREAM_CHAT = frozenset({"stream_chat", "chat_stream"})  # names no other API uses: any receiver counts


def _model_names(ctx: Context) -> set[str]:
    """Names assigned a loaded model (`model = AutoModel.from_pretrained(...).half().cuda()`)."""
    memo = ctx.index.memo
    if "eco105_models" not in memo:
        from advisor.audit.helpers import loader_kind

        def loads(node: ast.AST) -> bool:
            return any(isinstance(c, ast.Call) and loader_kind(ctx.call_name(c)) == "hf" for c in ast.walk(node))

        # functions of this file that load a model (`def init_model(): ... from_pretrained(...)`)
        makers = {n.name for n in ast.walk(ctx.index.tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                  and loads(n)}
        names: set[str] = set()
        for table in ctx.index.binds.values():
            for name, bl in table.items():
                if any(b.value is not None and (loads(b.value) or any(
                        isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in makers
                        for c in ast.walk(b.value))) for b in bl):
                    names.add(name)
        memo["eco105_models"] = names
    return memo["eco105_models"]


def generation_call(ctx: Context, call: ast.Call) -> str | None:
    """'model.generate' / 'pipe' when `call` generates text, else None (a thread started on
    `model.generate`, the streaming idiom, counts as the call)."""
    f = call.func
    if isinstance(f, (ast.Name, ast.Attribute)) and (dotted(f) or "").rsplit(".", 1)[-1] == "Thread":
        for k in call.keywords:
            if k.arg == "target" and isinstance(k.value, ast.Attribute) and k.value.attr == "generate":
                return dotted(k.value) or "generate"
        return None
    if isinstance(f, ast.Attribute) and f.attr in ("generate", "generate_content") and not (
            isinstance(f.value, ast.Name) and "token" in f.value.id.lower()):
        return dotted(f) or "generate"
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (
            f.attr in STREAM_CHAT or (f.attr in CHAT_METHODS and f.value.id in _model_names(ctx))):
        return dotted(f) or f.attr  # the chat API of remote-code models (ChatGLM, Qwen): one generate per call
    if isinstance(f, ast.Name) and f.id in _pipelines(ctx):
        return f.id
    return None


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _input_funcs(ctx: Context) -> set[str]:
    """`input` and the functions of this file that read a line with it (`def get_query(): ... input()`)."""
    memo = ctx.index.memo
    if "eco105_input" not in memo:
        out = {"input", "raw_input"}
        for fn in ast.walk(ctx.index.tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in ("input", "raw_input")
                    for c in ast.walk(fn)):
                out.add(fn.name)
        memo["eco105_input"] = out
    return memo["eco105_input"]


def _input_names(ctx: Context, loop: ast.While) -> set[str]:
    """Names a `while` loop assigns from `input()` or a helper that calls it (a prompt loop)."""
    out: set[str] = set()
    readers = _input_funcs(ctx)
    for n in ast.walk(loop):
        if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None and any(
                isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in readers
                for c in ast.walk(n.value)):
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                out |= _names_in(t)
    return out


def _loop_vars(ctx: Context, loop: ast.AST) -> tuple[set[str], list[ast.AST], str]:
    if isinstance(loop, (ast.For, ast.AsyncFor)):
        return _names_in(loop.target), loop.body, ast.unparse(loop.iter)
    if isinstance(loop, ast.While):
        names = _input_names(ctx, loop)
        return names, loop.body, "input()" if names else ""
    if isinstance(loop, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        names: set[str] = set()
        for g in loop.generators:
            names |= _names_in(g.target)
        return names, [], ast.unparse(loop.generators[0].iter)
    return set(), [], ""


_TIMERS = frozenset({"perf_counter", "perf_counter_ns", "time", "monotonic", "synchronize", "elapsed_time"})


def _times_each_step(loop: ast.AST) -> bool:
    """A loop that reads a clock around each call measures per-prompt latency on purpose."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _TIMERS
               and isinstance(n.func.value, (ast.Name, ast.Attribute))
               for stmt in getattr(loop, "body", []) for n in ast.walk(stmt))


def _batched_iter(loop: ast.AST, it: str) -> bool:
    low = it.lower()
    if "batch" in low or "chunk" in low:
        return True
    if isinstance(loop, (ast.For, ast.AsyncFor)) and isinstance(loop.iter, ast.Call):
        f = loop.iter.func
        if isinstance(f, ast.Name) and f.id == "range" and len(loop.iter.args) == 3:
            return True
    return False


def _tainted(loop_names: set[str], body: list[ast.AST]) -> set[str]:
    """Names that carry the loop's item: assigned from it, or a container or object a method
    call fed it to (`messages.append({"content": prompt})`, `conv.append_message(role, inp)`)."""
    tainted = set(loop_names)
    steps = sorted((n for stmt in body for n in ast.walk(stmt)
                    if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign))
                    or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                        and isinstance(n.value.func, ast.Attribute) and isinstance(n.value.func.value, ast.Name))),
                   key=lambda n: (n.lineno, n.col_offset))
    for _ in range(3):  # a few passes reach names assigned before they feed each other
        for a in steps:
            if isinstance(a, ast.Expr):
                call = a.value
                if any(_names_in(x) & tainted for x in list(call.args) + [k.value for k in call.keywords]):
                    tainted.add(call.func.value.id)
            elif a.value is not None and _names_in(a.value) & tainted:
                targets = a.targets if isinstance(a, ast.Assign) else [a.target]
                for t in targets:
                    tainted |= _names_in(t)
    return tainted


def _impact(ctx: Context):
    ev = ctx.run.evidence
    comp = ev.batch()
    if not comp.pairs:
        return best_practice(msg("finding.eco105_no_sweep")), "yellow"
    c = comp.chosen
    assert c is not None
    curve = ev.batch_curve(c)
    steps = ", ".join(f"bs{r.batch_size} {r.energy_j_per_1k_tok:,.0f} J" for r in curve)
    gpus = ", ".join(ev.gpu_name(g) for g in comp.gpus)
    text = msg("finding.eco105_impact", lo=f"{comp.low:+.0f}%", hi=f"{comp.high:+.0f}%", n=len(comp.pairs),
               gpus=gpus, model=c.model_id, prec=c.trap.precision, steps=steps, rows=", ".join(r.id for r in curve))
    if comp.scope_note:
        text = msg("impact.scoped", text=text, note=comp.scope_note)
    return measured(ctx, comp, text)


# Gradio calls that register a handler: the function runs once per user request.
_GRADIO_EVENTS = frozenset({"Interface", "ChatInterface", "click", "submit", "change", "then", "input", "load",
                            "TabbedInterface", "upload", "select", "stream", "release"})


def _gradio_handlers(ctx: Context) -> dict[str, bool]:
    """Functions of this file that Gradio calls per request -> whether that registration batches
    (`batch=True`); a function they call (two levels) counts as the handler too."""
    memo = ctx.index.memo
    if "gradio_handlers" in memo:
        return memo["gradio_handlers"]
    out: dict[str, bool] = {}
    if "gradio" in ctx.index.imported:
        for c, _ in ctx.index.nodes(ast.Call):
            f = c.func  # type: ignore[attr-defined]
            last = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if last not in _GRADIO_EVENTS:
                continue
            fn = next((k.value for k in c.keywords if k.arg == "fn"), c.args[0] if c.args else None)  # type: ignore[attr-defined]
            if isinstance(fn, ast.Name):
                batched = any(k.arg == "batch" and isinstance(k.value, ast.Constant) and k.value.value is True
                              for k in c.keywords)  # type: ignore[attr-defined]
                out[fn.id] = out.get(fn.id, False) or batched
        funcs = {n.name: n for n in ast.walk(ctx.index.tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for _ in range(2):
            for name, batched in list(out.items()):
                fn_node = funcs.get(name)
                if fn_node is None:
                    continue
                for c in ast.walk(fn_node):
                    if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id in funcs:
                        out.setdefault(c.func.id, batched)
    memo["gradio_handlers"] = out
    return out


def _gradio_handler(ctx: Context) -> str | None:
    handlers = _gradio_handlers(ctx)
    for fn in reversed(ctx.enclosing_functions()):
        if getattr(fn, "name", None) in handlers:
            return None if handlers[fn.name] else fn.name  # type: ignore[attr-defined]
    return None


@rule("ECO105", "one-prompt-at-a-time", "Generation one prompt at a time (batch size 1)", nodes=(ast.Call,), fix=FIX,
      tokens=sorted({"generate", "generate_content", "pipeline"} | CHAT_METHODS | STREAM_CHAT))
@user_code_only(gray_only=False)
def check(ctx: Context):
    call = ctx.node
    f = call.func
    # pipeline(..., batch_size=1) or pipe(inputs, batch_size=1)
    is_pipe_ctor = short(ctx.call_name()) == "pipeline"
    gen = generation_call(ctx, call)
    if gen is None and not is_pipe_ctor:
        return
    span = ctx.node_span()
    if is_pipe_ctor or (gen and isinstance(f, ast.Name)):
        bs = ctx.kwarg("batch_size")
        if bs.present and bs.val is not None and bs.val.number == 1.0:
            impact, mood = _impact(ctx)
            yield ctx.hit(bs.line, msg("finding.eco105_pipeline"),
                          severity=mood, confidence="medium", impact=impact, span=span)
            return
    if gen is None:
        return
    for loop in reversed(ctx.loops):
        names, body, it = _loop_vars(ctx, loop)
        names.discard("_")
        if not names or _batched_iter(loop, it) or any("batch" in n.lower() for n in names):
            continue
        if _times_each_step(loop):
            return  # a latency benchmark: one prompt at a time is what it measures
        used = set()
        for a in list(call.args) + [k.value for k in call.keywords]:
            used |= _names_in(a)
        tainted = _tainted(names, body) if isinstance(loop, (ast.For, ast.AsyncFor, ast.While)) else names
        if used & tainted:
            impact, mood = _impact(ctx)
            if isinstance(loop, ast.While):
                yield ctx.hit(call.lineno, msg("finding.eco105_input", gen=gen), severity=mood,
                              confidence="medium", impact=impact, span=span)
            else:
                yield ctx.hit(call.lineno, msg("finding.eco105_loop", gen=gen, it=it),
                              severity=mood, confidence="high", impact=impact, span=span)
            return
    if ctx.loops or ctx.index.imported & BATCHING_ENGINES:
        return
    fns = ctx.enclosing_functions()
    site = _looped_call_site(ctx, fns[-1]) if fns else None
    if site is not None:
        c, it = site
        impact, mood = _impact(ctx)
        fn_name = fns[-1].name  # type: ignore[attr-defined]
        text = (msg("finding.eco105_caller_input", gen=gen, fn=fn_name) if it == "input()"
                else msg("finding.eco105_caller_loop", gen=gen, fn=fn_name, it=it))
        yield ctx.hit(c.lineno, text,
                      severity=mood, confidence="medium", impact=impact,
                      span=(c.lineno, c.end_lineno or c.lineno))
        return
    handler = _gradio_handler(ctx)
    if handler:
        impact, mood = _impact(ctx)
        yield ctx.hit(call.lineno, msg("finding.eco105_gradio", fn=handler, gen=gen), severity=mood,
                      confidence="medium", impact=impact, span=span)
        return
    if "streamlit" in ctx.index.imported:  # the script reruns on every interaction of every session
        impact, mood = _impact(ctx)
        yield ctx.hit(call.lineno, msg("finding.eco105_streamlit", gen=gen), severity=mood, confidence="medium",
                      impact=impact, span=span)
        return
    for fn in reversed(ctx.enclosing_functions()):
        route = _route_of(fn)
        if route == "batched":
            return
        if route == "route":
            impact, mood = _impact(ctx)
            yield ctx.hit(call.lineno, msg("finding.eco105_endpoint", fn=fn.name, gen=gen),  # type: ignore[attr-defined]
                          severity=mood, confidence="medium", impact=impact, span=span)
            return
    endpoint = _route_helpers(ctx).get(getattr(fns[-1], "name", "")) if fns else None
    if endpoint:
        impact, mood = _impact(ctx)
        yield ctx.hit(call.lineno, msg("finding.eco105_route_helper", fn=fns[-1].name, gen=gen, endpoint=endpoint),  # type: ignore[attr-defined]
                      severity=mood, confidence="medium", impact=impact, span=span)


def _route_of(fn: ast.AST) -> str | None:
    """'route' for a web endpoint (FastAPI / Flask decorator), 'batched' behind a batching
    decorator, else None."""
    for d in getattr(fn, "decorator_list", []):
        target = d.func if isinstance(d, ast.Call) else d
        dn = dotted(target) or ""
        if "batch" in dn.lower():
            return "batched"
        if dn.rsplit(".", 1)[-1] in _ROUTE and "." in dn:
            return "route"
    return None


def _route_helpers(ctx: Context) -> dict[str, str]:
    """Functions of this file an endpoint calls (two levels down) -> the endpoint's name."""
    memo = ctx.index.memo
    if "eco105_route_helpers" in memo:
        return memo["eco105_route_helpers"]
    defs: dict[str, list[ast.AST]] = {}  # name -> every def of it (a method may share a route's name)
    for n in ast.walk(ctx.index.tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defs.setdefault(n.name, []).append(n)
    out: dict[str, str] = {}
    frontier = [(fn, fn.name) for fns in defs.values() for fn in fns if _route_of(fn) == "route"]
    for _ in range(3):
        nxt = []
        for fn, route in frontier:
            for c in ast.walk(fn):
                # a function of this file, or a method of a class of this file (`worker.generate_stream(p)`)
                callee = c.func.id if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) else \
                    c.func.attr if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) else None
                for target in defs.get(callee or "", []):
                    if target is not fn and _route_of(target) is None and callee not in out:
                        out[callee] = route  # type: ignore[index]
                        nxt.append((target, route))
        frontier = nxt
    memo["eco105_route_helpers"] = out
    return out


def _looped_call_site(ctx: Context, fn: ast.AST) -> tuple[ast.Call, str] | None:
    """A call of `fn` inside a loop over prompts, fed from the loop variable: the generate call in
    `fn` then runs once per item (`for q in questions: answer(model, q)`)."""
    name = getattr(fn, "name", None)
    for c, frame in ctx.index.nodes(ast.Call):
        if not (isinstance(c.func, ast.Name) and c.func.id == name and frame.loops):  # type: ignore[attr-defined]
            continue
        loop = frame.loops[-1]
        names, body, it = _loop_vars(ctx, loop)
        names.discard("_")
        if not names or _batched_iter(loop, it) or any("batch" in n.lower() for n in names) or _times_each_step(loop):
            continue
        used: set[str] = set()
        for a in list(c.args) + [k.value for k in c.keywords]:  # type: ignore[attr-defined]
            used |= _names_in(a)
        if used & _tainted(names, body):
            return c, it  # type: ignore[return-value]
    return None
