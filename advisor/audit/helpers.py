"""Questions several rules ask: is this call a model load, which model, how big, which
quantization; and the two ways a finding states its impact (measured rows, or best practice)."""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from advisor.answer import mood_for_waste
from advisor.audit.context import Arg, Context, Hit, Val
from advisor.audit.evidence import Comparison
from advisor.audit.models import Impact
from advisor.audit.pyindex import Frame
from advisor.messages.text import Msg, msg

# Classes whose from_pretrained loads no transformers model: tokenizers, configs, chat templates,
# and the quantization toolkits' own loaders (AutoAWQ, AutoGPTQ load in 16-bit to quantize).
_NOT_MODELS = re.compile(r"(Tokenizer|Processor|Config|FeatureExtractor|ImageProcessor|GenerationConfig|Dataset|"
                         r"PeftModel$|PeftConfig|Adapter|Template|^AutoAWQ|^AutoGPTQ|^GPTQModel)", re.I)
MODEL_ARG_NAMES = ("pretrained_model_name_or_path", "model_name_or_path", "model_name", "model_id", "model")
_SIZE_TOKEN = re.compile(r"^(?:(\d+)x)?(\d+(?:\.\d+)?)([bm])$", re.I)
# A Hub model id ("org/name") in any text: a comment, a README, a config beside the script.
_HUB_ID = re.compile(r"(?<![\w./-])([A-Za-z0-9][\w.-]{0,60}/[A-Za-z0-9][\w.-]{0,100})(?![\w/-])")
_BESIDE = re.compile(r"^(readme[^/]*\.md|[^/]+\.ya?ml|[^/]+\.sh)$", re.I)
BESIDE_MAX_BYTES = 256 * 1024
BESIDE_MAX_FILES = 24
NAMED_MAX = 4  # more distinct sized models named than this: a model list, not the one the run uses

CONF_ORDER = {"low": 0, "medium": 1, "high": 2}


def weakest(*confs: str) -> str:
    return min(confs, key=lambda c: CONF_ORDER[c])


def short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def loader_kind(name: str) -> str | None:
    """'hf' for a transformers/peft model class's from_pretrained, 'unsloth', 'pipeline', else None."""
    parts = name.split(".")
    if parts[-1] == "from_pretrained" and len(parts) >= 2:
        cls = parts[-2]
        if _NOT_MODELS.search(cls):
            return None
        if cls.startswith("Fast") and ("unsloth" in name or cls in ("FastLanguageModel", "FastModel")):
            return "unsloth"
        return "hf"
    if parts[-1] == "pipeline" and (len(parts) == 1 or parts[0] == "transformers"):
        return "pipeline"
    return None


def model_arg(ctx: Context, call: ast.Call) -> Arg:
    kind = loader_kind(ctx.call_name(call))
    if kind == "pipeline":
        return ctx.kwarg("model", call) if ctx.kwarg("model", call).present is not False else ctx.positional(1, None, call)
    for n in MODEL_ARG_NAMES:
        a = ctx.kwarg(n, call)
        if a.present is not False:
            return a
    return ctx.positional(0, None, call)


@dataclass(frozen=True)
class ModelSize:
    params_b: float | None
    label: str  # the model as written
    confidence: str
    how: str | Msg  # where the size comes from, or why it is unknown


def params_from_name(text: str) -> float | None:
    """'Qwen/Qwen2.5-0.5B-Instruct' -> 0.5; 'Mixtral-8x7B' -> 56 (an upper bound); None if no size."""
    repo = text.rstrip("/").split("/")[-1]
    best: float | None = None
    for tok in re.split(r"[-_\s]+", repo):
        m = _SIZE_TOKEN.match(tok)
        if not m:
            continue
        n = float(m.group(2)) * (int(m.group(1)) if m.group(1) else 1)
        n = n / 1000.0 if m.group(3).lower() == "m" else n
        best = n if best is None else max(best, n)
    return best


def model_size(ctx: Context, arg: Arg) -> ModelSize:
    size = _stated_size(ctx, arg)
    if size.params_b is None:
        return named_elsewhere(ctx, size)
    return size


def _stated_size(ctx: Context, arg: Arg) -> ModelSize:
    if arg.present is not True or arg.val is None:
        return ModelSize(None, "?", "low", arg.val.reason if arg.val is not None else msg("why.no_model_arg"))
    v: Val = arg.val
    text = v.text if v.kind == "const" else None
    if text is None:
        # a parameter or attribute set at run time ('args.model'): its --option of the same name
        param = v.reason.fields.get("name") if isinstance(v.reason, Msg) and v.reason.key in (
            "why.param", "why.runtime_attr") else None
        dflt = ctx.index.attr_defaults.get(str(param).rsplit(".", 1)[-1]) if param else None
        if dflt is not None:  # a function parameter fed by the --option of the same name
            dv = ctx.value(dflt[0], Frame((ctx.index.tree,), (), None))
            if dv.kind == "const" and isinstance(dv.value, str):
                return _stated_size(ctx, Arg(True, dv.weaker("medium", msg("why.at_line", what=dflt[2], line=dflt[1])), arg.line))
        return ModelSize(None, "?", "low", v.reason or msg("why.model_not_string"))
    conf = v.confidence

    def via(how: Msg) -> Msg:
        return msg("why.via", how=how, origin=v.origin) if v.origin else how

    try:
        from measurements import catalog

        arch = catalog.model_by_hub_id(text)
        if arch is None:
            try:
                arch = catalog.resolve_model(text)
            except catalog.UnknownName:
                arch = None
        if arch is not None:
            return ModelSize(arch.params_b, text, conf, via(msg("why.catalog_entry", key=arch.key)))
    except (FileNotFoundError, ValueError):
        pass
    rows = ctx.run.evidence.params_of(text)
    if rows is not None:
        return ModelSize(rows, text, conf, via(msg("why.measured_rows", model=text)))
    p = params_from_name(text)
    if p is not None:
        return ModelSize(p, text, conf, via(msg("why.size_in_name", model=text)))
    return ModelSize(None, text, "low", msg("why.no_size", model=text))


# -- quantization ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quant:
    bits: int | None  # 4, 8, or None (not quantized / unknown)
    certain: bool  # False: the flag could not be read
    line: int
    config: ast.Call | None = None  # the BitsAndBytesConfig call, if any
    confidence: str = "high"
    reason: str | Msg = ""
    default_off: bool = False  # the flag is off by an overridable default (an argparse switch)


def bnb_bits(ctx: Context, call: ast.Call, only: int | None = None) -> Quant:
    """Bits requested by a BitsAndBytesConfig(...) call (or a loader's direct load_in_* kwargs);
    `only` looks at one of the two flags (a config offering both behind switches)."""
    for bits, key in ((4, "load_in_4bit"), (8, "load_in_8bit")):
        if only is not None and bits != only:
            continue
        a = ctx.kwarg(key, call)
        if a.present and a.val is not None:
            t = a.val.truthy()
            if t is True:
                return Quant(bits, True, a.line, call, a.val.confidence)
            if t is False and a.val.confidence != "high":  # off by default; the command line can turn it on
                return Quant(bits, False, a.line, call, "low", msg("why.off_unless", origin=a.val.origin),
                             default_off=True)
            if t is None:
                return Quant(bits, False, a.line, call, "low", a.val.reason or msg("why.runtime_read"))
    return Quant(None, True, call.lineno, call)


def loader_quant(ctx: Context, call: ast.Call) -> Quant:
    """Quantization a model-loading call asks for: direct load_in_* kwargs, or quantization_config
    resolving to a BitsAndBytesConfig call or a literal dict."""
    q = bnb_bits(ctx, call)
    if q.bits is not None:
        return Quant(q.bits, q.certain, q.line, None, q.confidence, q.reason, q.default_off)
    qc = ctx.kwarg("quantization_config", call)
    if qc.present and qc.val is not None:
        v = qc.val
        if v.kind == "call" and short(ctx.call_name(v.value)) == "BitsAndBytesConfig":
            inner = bnb_bits(ctx, v.value)
            if inner.bits is not None:
                conf = weakest(inner.confidence, v.confidence)
                return Quant(inner.bits, inner.certain, qc.line, v.value, conf, inner.reason, inner.default_off)
        elif v.kind == "dict":
            for bits, key in ((4, "load_in_4bit"), (8, "load_in_8bit")):
                e = v.value.get(key)
                if e is not None and e.truthy():
                    return Quant(bits, True, qc.line, None, weakest(e.confidence, v.confidence))
        elif v.kind == "unknown":
            return Quant(None, False, qc.line, None, "low", v.reason)
    return Quant(None, True, call.lineno)


def loaders(ctx: Context) -> list[ast.Call]:
    memo = ctx.index.memo
    if "loaders" not in memo:
        memo["loaders"] = [c for c, _ in ctx.index.nodes(ast.Call)
                           if loader_kind(ctx.call_name(c)) is not None]  # type: ignore[arg-type]
    return memo["loaders"]


def loader_using(ctx: Context, config_call: ast.Call) -> ast.Call | None:
    """The model-loading call that takes `config_call` as its quantization_config, if any."""
    for c in loaders(ctx):
        qc = ctx.kwarg("quantization_config", c)
        if qc.present and qc.val is not None and qc.val.kind == "call" and qc.val.value is config_call:
            return c
    return None


def names_bound_to(ctx: Context, node: ast.AST) -> set[str]:
    """Variable names assigned the value of `node` (`cfg = BitsAndBytesConfig(...)` -> {'cfg'})."""
    out: set[str] = set()
    for table in ctx.index.binds.values():
        for name, bl in table.items():
            if any(b.value is node for b in bl):
                out.add(name)
    return out


def method_calls_on(ctx: Context, names: set[str]) -> list[ast.Call]:
    """Calls like `model.half()` / `model.to(...)` on any of `names`."""
    out = []
    for c, _ in ctx.index.nodes(ast.Call):
        f = c.func  # type: ignore[attr-defined]
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in names:
            out.append(c)
    return out  # type: ignore[return-value]


DTYPE_16 = ("torch.float16", "torch.half", "torch.bfloat16", "float16", "bfloat16", "fp16", "bf16", "half")
DTYPE_32 = ("torch.float32", "torch.float", "float32", "fp32", "float")


def dtype_of(v: Val | None) -> str | None:
    """'16', '32', 'auto' or None (unknown) for a dtype value."""
    if v is None:
        return None
    t = v.text
    if t is None:
        return None
    t = t.lower()
    if t == "auto":
        return "auto"
    if t in DTYPE_16 or t.endswith((".float16", ".bfloat16", ".half")):
        return "16"
    if t in DTYPE_32 or t.endswith((".float32",)):
        return "32"
    return None


def uses_gpu(ctx: Context) -> bool:
    ix = ctx.index
    if {"cuda", "xpu"} & ix.method_names or any(s.startswith(("cuda", "xpu")) for s in ix.strings):
        return True
    return any(ctx.kwarg("device_map", c).present for c in loaders(ctx))


def is_training(ctx: Context) -> bool:
    from advisor.audit.training import is_training_module

    memo = ctx.index.memo
    if "training" not in memo:
        memo["training"] = is_training_module(ctx)
    return memo["training"]


def four_bit_load(ctx: Context, call: ast.Call, *, training: bool) -> Quant | None:
    """How a model-loading call quantises to 4 bits, in a training script (`training`) or an
    inference one; None when the call loads no model, the script is of the other kind, or the
    load is not 4-bit (ECO102 watches inference, ECO203 training)."""
    if loader_kind(ctx.call_name()) is None or is_training(ctx) != training:
        return None
    q = loader_quant(ctx, call)
    return q if q.bits == 4 else None


# -- impact ----------------------------------------------------------------------------------------
def measured(ctx: Context, comp: Comparison, text: Msg) -> tuple[Impact, str]:
    """A measured impact and the mood it implies (the chosen pair's waste)."""
    c = comp.chosen
    assert c is not None
    imp = Impact(basis="measured", text=str(text), msg=text, waste_pct=round(c.waste_pct, 1), low_pct=round(comp.low, 1),
                 high_pct=round(comp.high, 1), row_ids=comp.row_ids,
                 scope=", ".join(ctx.run.evidence.gpu_name(g) for g in comp.gpus))
    return imp, mood_for_waste(c.waste_pct)


def best_practice(text: Msg, row_ids: list[str] | None = None) -> Impact:
    what = msg("impact.best_practice", text=text)
    return Impact(basis="best practice", text=str(what), msg=what, row_ids=row_ids or [])


# -- plain training loops --------------------------------------------------------------------------
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_RANK_WORDS = ("main_process", "rank", "is_main", "master", "local_process")


def _own_body(loop: ast.AST) -> list[ast.AST]:
    """The nodes of a loop's body that are not inside a nested loop or function."""
    out: list[ast.AST] = []
    todo = list(getattr(loop, "body", []))
    while todo:
        n = todo.pop()
        out.append(n)
        if isinstance(n, _LOOPS + (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        todo.extend(ast.iter_child_nodes(n))
    return out


def is_training_step_loop(loop: ast.AST) -> bool:
    """Does this loop run one optimizer step per iteration (a backward pass in its own body)?"""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "backward"
               for n in _own_body(loop))


def guards_between(loop: ast.AST, node: ast.AST) -> list[ast.If] | None:
    """The `if` statements of `loop`'s own body whose `body` holds `node`, outermost first; None
    when `node` is not in the loop's own body or sits in an `else` branch (not a simple guard)."""
    def holds(s: ast.AST) -> bool:
        return any(c is node for c in ast.walk(s))

    def find(stmts: list[ast.AST], path: list[ast.If]) -> list[ast.If] | None:
        for s in stmts:
            if s is node:
                return path
            if not holds(s):
                continue
            if isinstance(s, ast.If):
                if holds(s.test):
                    return path
                return find(s.body, path + [s]) if any(holds(b) for b in s.body) else None
            if isinstance(s, _LOOPS + (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                return None  # inside a nested loop or definition
            inner = [b for f in ("body", "orelse", "finalbody") for b in getattr(s, f, [])]
            inner += [b for h in getattr(s, "handlers", []) for b in h.body]
            return find(inner, path) if inner else path
        return None
    return find(list(getattr(loop, "body", [])), [])


def modulo_test(test: ast.AST) -> tuple[str, ast.AST] | None:
    """('periodic', N) for `x % N == 0`, ('inverted', N) for a bare `if x % N:` (true on every
    step that is NOT a multiple of N), else None."""
    if isinstance(test, ast.BinOp) and isinstance(test.op, ast.Mod):
        return "inverted", test.right
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.left, ast.BinOp) \
            and isinstance(test.left.op, ast.Mod):
        zero = isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == 0
        if isinstance(test.ops[0], ast.Eq) and zero:
            return "periodic", test.left.right
        if isinstance(test.ops[0], ast.NotEq) and zero:
            return "inverted", test.left.right
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        for v in test.values:
            m = modulo_test(v)
            if m is not None:
                return m
    return None


def rank_check(test: ast.AST) -> bool:
    """A test that picks a process (`accelerator.is_main_process`, `rank == 0`), not a step."""
    text = ast.unparse(test).lower()
    return any(w in text for w in _RANK_WORDS) and "%" not in text


def branch_truth(ctx: Context, node: ast.AST) -> tuple[bool | None, str]:
    """Does the code path to `node` run? Follows the `if` statements around it in its function
    (or the module): (False, why) when a condition is off by its visible default (an argparse or
    dataclass default, a constant), (None, why) when a condition cannot be read, (True, "") when
    every condition holds or there is none."""
    frame = ctx.frame_of(node)
    scope = next((s for s in reversed(frame.scopes) if not isinstance(s, ast.ClassDef)), ctx.index.tree)
    unknown = ""
    todo: list[tuple[list[ast.AST], bool]] = [(list(getattr(scope, "body", [])), True)]
    while todo:
        stmts, _ = todo.pop()
        for s in stmts:
            if not any(c is node for c in ast.walk(s)):
                continue
            if isinstance(s, ast.If) and not any(c is node for c in ast.walk(s.test)):
                in_body = any(any(c is node for c in ast.walk(b)) for b in s.body)
                v = ctx.value(s.test, frame)
                t = v.truthy()
                if t is not None:
                    t = t if in_body else not t
                if t is False:
                    return False, msg("why.branch_off", test=ast.unparse(s.test), line=s.lineno, origin=v.origin or msg("why.a_constant"))
                if t is None and not unknown:
                    unknown = msg("why.branch_unknown", test=ast.unparse(s.test), line=s.lineno)
                todo.append((s.body if in_body else s.orelse, True))
            elif not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = [b for f in ("body", "orelse", "finalbody") for b in getattr(s, f, []) if isinstance(b, ast.stmt)]
                inner += [b for h in getattr(s, "handlers", []) for b in h.body]
                if inner:
                    todo.append((inner, True))
            break
    return (None, unknown) if unknown else (True, "")


def transformers_major(spec: str | None) -> int | None:
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


def _sizes_in(text: str) -> list[tuple[float, str]]:
    """(billions of parameters, id) of each Hub model id in `text` whose size can be read."""
    out: dict[str, float] = {}
    for m in _HUB_ID.finditer(text):
        ident = m.group(1).rstrip(".")
        if ident in out or ident.lower().endswith((".py", ".json", ".md", ".txt", ".yaml", ".yml", ".git")):
            continue
        p = params_from_name(ident)
        if p is None:
            try:
                from measurements import catalog

                arch = catalog.model_by_hub_id(ident)
                p = arch.params_b if arch is not None else None
            except (FileNotFoundError, ValueError):
                p = None
        if p is not None:
            out[ident] = p
    return [(p, i) for i, p in out.items()]


def _beside(ctx: Context) -> list[tuple[float, str, str]]:
    """Models named in the READMEs, configs and launch scripts in the script's own folder. Only for a
    script read from disk: a pasted snippet's name is a label, and the working directory's README is
    not its neighbour."""
    path = getattr(ctx.source, "path", "")
    folder = os.path.dirname(path)
    if not path or path.startswith("<") or not os.path.isfile(path):
        return []
    memo = ctx.run.memo.setdefault("models_beside", {})
    if folder in memo:
        return memo[folder]
    found: list[tuple[float, str, str]] = []
    try:
        names = sorted(n for n in os.listdir(folder or ".") if _BESIDE.match(n))[:BESIDE_MAX_FILES]
    except OSError:
        names = []
    for n in names:
        fp = os.path.join(folder, n)
        try:
            if not os.path.isfile(fp) or os.path.getsize(fp) > BESIDE_MAX_BYTES:
                continue
            with open(fp, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        found.extend((p, i, n) for p, i in _sizes_in(text))
    memo[folder] = found
    return found


def named_elsewhere(ctx: Context, size: ModelSize) -> ModelSize:
    """When the code does not state the model, the models its comments and strings name, else
    the READMEs, configs and launch scripts beside it: the largest of them (a recipe that also
    names a large model is not called small). Low confidence: the run may use another model."""
    memo = ctx.source.memo
    if "models_named" not in memo:
        memo["models_named"] = [(p, i, msg("why.this_file")) for p, i in _sizes_in(ctx.source.text)]
    named = memo["models_named"] or _beside(ctx)
    if not named or len({i for _, i, _ in named}) > NAMED_MAX:
        return size  # none, or a catalogue of models (an app's model list): no one size to read
    p, ident, where = max(named)
    return ModelSize(p, ident, "low", msg("why.largest_named", model=ident, where=where, how=size.how))


def library_module(ctx: Context) -> bool:
    """Package internals rather than a user's script: the module imports its siblings relatively
    (`from .utils import ...`, which a script run as a file cannot do), imports the package whose
    folder it sits in (an `__init__.py` beside it) and has no `__main__` guard, or it sits inside an installed package. Their models, prompts and flags come from the caller, so what a rule
    cannot read there says nothing about a real run."""
    if ctx.resolver is None:
        return False
    memo = ctx.index.memo
    if "library" not in memo:
        path = str(getattr(ctx.source, "path", "")).replace("\\", "/")
        ix = ctx.index
        relative = any(v.startswith(".") for v in ix.aliases.values()) or any(m.startswith(".") for m in ix.star_imports)
        # `from llava.model import ...` in llava/model/encoder.py: a module of its own package,
        # unless it is run as a script (a __main__ guard)
        folders = set(path.split("/")[:-1])
        own = bool(folders & ix.imported) and "__main__" not in ix.strings and os.path.isfile(
            os.path.join(os.path.dirname(path) or ".", "__init__.py"))
        memo["library"] = relative or own or "/site-packages/" in path or "/dist-packages/" in path
    return memo["library"]


def user_code_only(gray_only: bool = False) -> Callable[[Callable[[Context], Iterable[Hit]]], Callable[[Context], Iterator[Hit]]]:
    """Wrap a rule's check so that in library modules it reports nothing (`gray_only=False`: the
    trap depends on how the caller uses the code) or only what it can read (`gray_only=True`:
    literal settings such as BitsAndBytesConfig(load_in_8bit=True) still count)."""
    def deco(fn: Callable[[Context], Iterable[Hit]]) -> Callable[[Context], Iterator[Hit]]:
        @functools.wraps(fn)
        def wrapped(ctx: Context) -> Iterator[Hit]:
            library = None  # asked only when there is a hit: most nodes give none
            for h in fn(ctx) or ():
                if library is None:
                    library = library_module(ctx)
                if not library or (gray_only and h.severity != "gray"):
                    yield h
        return wrapped
    return deco
