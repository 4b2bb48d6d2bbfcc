"""The context a rule asks questions of: qualified call names through import aliases, keyword
values through variables, constants, literal dicts spread with `**`, argparse and dataclass
defaults. Everything is read from the AST; nothing the user wrote is ever executed.

A resolved value carries a confidence: "high" when the code says it plainly (a literal, a
constant), "medium" when it is a default someone can override (an argparse default, a
`os.environ.get` fallback, a variable assigned differently on several branches). A value that
cannot be read statically is `Val.unknown(...)` with the reason, so a rule can report at lower
confidence instead of guessing.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field
from typing import Any

from advisor.audit.pyindex import FUNC_TYPES, Binding, Frame, ModuleIndex, dotted
from advisor.messages.text import Msg, msg, word

MAX_DEPTH = 24
# Module names a pasted snippet may use without importing them (`torch.float32` in a fragment).
KNOWN_MODULES = frozenset({"torch", "transformers", "trl", "peft", "bitsandbytes", "torchao", "vllm", "accelerate"})

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}


@dataclass(frozen=True)
class Val:
    """A statically resolved value.

    kind: const (python literal in `value`), dict (str -> Val), list (list of Val), call
    (an ast.Call in `node`, its frame in `frame`), symbol (a qualified name such as
    "torch.float32"), unknown (see `reason`).
    """

    kind: str
    value: Any = None
    confidence: str = "high"
    origin: str | Msg = ""
    node: ast.AST | None = None
    frame: Frame | None = None
    reason: str | Msg = ""  # why it cannot be read (a catalog message, worded when shown)
    partial: bool = False  # a dict with an unresolved ** spread: keys may be missing

    @staticmethod
    def unknown(reason: str | Msg, node: ast.AST | None = None) -> Val:
        return Val("unknown", reason=reason, confidence="low", node=node)

    @property
    def known(self) -> bool:
        return self.kind != "unknown"

    def weaker(self, confidence: str, origin: str | Msg) -> Val:
        order = {"high": 2, "medium": 1, "low": 0}
        conf = confidence if order[confidence] < order[self.confidence] else self.confidence
        return Val(self.kind, self.value, conf, origin or self.origin, self.node, self.frame, self.reason, self.partial)

    def is_const(self, *values: Any) -> bool:
        """True when this is a literal equal to one of `values` (True == 1 is not conflated)."""
        if self.kind != "const":
            return False
        return any(type(self.value) is type(v) and self.value == v for v in values) or (
            not isinstance(self.value, bool) and isinstance(self.value, (int, float))
            and any(not isinstance(v, bool) and isinstance(v, (int, float)) and self.value == v for v in values))

    @property
    def number(self) -> float | None:
        if self.kind == "const" and isinstance(self.value, (int, float)) and not isinstance(self.value, bool):
            return float(self.value)
        if self.kind == "const" and isinstance(self.value, str):
            try:
                return float(self.value)
            except ValueError:
                return None
        return None

    @property
    def text(self) -> str | None:
        if self.kind == "const" and isinstance(self.value, str):
            return self.value
        if self.kind == "symbol":
            return self.value
        return None

    def truthy(self) -> bool | None:
        """The value's truth, or None when unknown (a string like "true" in a config counts)."""
        if self.kind == "const":
            v = self.value
            if isinstance(v, str):
                low = v.strip().lower()
                if low in ("true", "yes", "1", "auto"):
                    return True
                if low in ("false", "no", "0", "none", ""):
                    return False
                return None
            return bool(v)
        if self.kind in ("dict", "list"):
            return bool(self.value)
        return None


@dataclass(frozen=True)
class Arg:
    """A keyword (or positional) argument as the rule sees it."""

    present: bool | None  # None: maybe, behind an unresolved **kwargs
    val: Val | None = None
    line: int = 0
    col: int = 1
    via: str = ""  # how it was found, e.g. "**load_kwargs"

    @property
    def missing(self) -> bool:
        return self.present is False


MISSING = Arg(False)


class Resolver:
    """Static value resolution over one module's index."""

    def __init__(self, index: ModuleIndex):
        self.ix = index
        self._names: dict[int, str] = {}  # id(call) -> qualified name: every rule asks, compute once

    # -- names -------------------------------------------------------------------------------
    def qualname(self, node: ast.AST) -> str | None:
        """Dotted name of an expression with its root import alias expanded
        (`tf.AutoModel` -> `transformers.AutoModel`)."""
        d = dotted(node)
        if d is None:
            return None
        root, _, rest = d.partition(".")
        q = self.ix.aliases.get(root)
        if q is None:
            return d
        return f"{q}.{rest}" if rest else q

    def call_name(self, call: ast.Call) -> str:
        key = id(call)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = self._call_name(call)
        return name

    def _call_name(self, call: ast.Call) -> str:
        f = call.func
        q = self.qualname(f)
        if q is not None:
            # A local name bound to a class (Model = AutoModelForCausalLM): follow it once.
            root = q.split(".")[0]
            if root not in self.ix.aliases and isinstance(f, (ast.Name, ast.Attribute)):
                frame = self.ix.frames.get(id(call))
                if frame is not None:
                    b = self._binding(root, call.lineno, frame)
                    if b is not None and b.value is not None and isinstance(b.value, (ast.Name, ast.Attribute)):
                        inner = self.qualname(b.value)
                        if inner:
                            return inner + q[len(root):]
            return q
        if isinstance(f, ast.Attribute):  # e.g. pipeline(...)(x) or get_model().generate(...)
            return f"?.{f.attr}"
        return "?"

    def _binding(self, name: str, line: int, frame: Frame) -> Binding | None:
        found = self._bindings(name, line, frame)
        return found[-1] if found else None

    def _bindings(self, name: str, line: int, frame: Frame) -> list[Binding]:
        """Bindings of `name` visible at `line`: innermost function scope first (only those
        before the use), then the module (any line: a function body runs after the module's
        constants are set)."""
        scopes = frame.scopes
        for i in range(len(scopes) - 1, -1, -1):
            scope = scopes[i]
            if isinstance(scope, ast.ClassDef) and i != len(scopes) - 1:
                continue
            table = self.ix.binds.get(id(scope))
            if not table or name not in table:
                continue
            bl = table[name]
            if isinstance(scope, ast.Module) and i != len(scopes) - 1:
                before = [b for b in bl if b.line <= line]
                return before or bl
            before = [b for b in bl if b.line <= line or b.kind == "param"]
            if before:
                return before
        return []

    # -- values ------------------------------------------------------------------------------
    def value(self, node: ast.AST, frame: Frame, depth: int = 0) -> Val:
        if depth > MAX_DEPTH:
            return Val.unknown(msg("why.depth"), node)
        t = type(node)
        if t is ast.Constant:
            return Val("const", node.value, node=node)
        if t is ast.Name:
            return self._name(node, frame, depth)
        if t is ast.Attribute:
            return self._attribute(node, frame, depth)
        if t is ast.Dict:
            return self._dict(node, frame, depth)
        if t in (ast.List, ast.Tuple, ast.Set):
            return Val("list", [self.value(e, frame, depth + 1) for e in node.elts], node=node)
        if t is ast.Call:
            return self._call(node, frame, depth)
        if t is ast.JoinedStr:
            parts: list[str] = []
            conf = "high"
            for v in node.values:
                if isinstance(v, ast.Constant):
                    parts.append(str(v.value))
                    continue
                inner = self.value(v.value, frame, depth + 1) if isinstance(v, ast.FormattedValue) else Val.unknown("")
                if inner.kind != "const" or v.format_spec is not None:
                    return Val.unknown(msg("why.fstring"), node)
                parts.append(str(inner.value))
                conf = inner.confidence if inner.confidence != "high" else conf
            return Val("const", "".join(parts), confidence=conf, node=node)
        if t is ast.BinOp and type(node.op) in _BINOPS:
            a, b = self.value(node.left, frame, depth + 1), self.value(node.right, frame, depth + 1)
            if a.kind == "const" and b.kind == "const":
                try:
                    if isinstance(a.value, str) != isinstance(b.value, str) or isinstance(a.value, (bytes, type(None))):
                        raise TypeError
                    if isinstance(a.value, str) and type(node.op) is not ast.Add:
                        raise TypeError
                    res = _BINOPS[type(node.op)](a.value, b.value)
                except Exception:  # division by zero, type mismatch: not a value we can state
                    return Val.unknown(msg("why.no_eval"), node)
                conf = "medium" if "medium" in (a.confidence, b.confidence) else "high"
                return Val("const", res, confidence=conf, node=node)
            return Val.unknown(msg("why.over_unknown"), node)
        if t is ast.UnaryOp:
            v = self.value(node.operand, frame, depth + 1)
            if v.kind == "const":
                if isinstance(node.op, ast.USub) and isinstance(v.value, (int, float)) and not isinstance(v.value, bool):
                    return Val("const", -v.value, v.confidence, v.origin, node)
                if isinstance(node.op, ast.Not):
                    return Val("const", not v.value, v.confidence, v.origin, node)
            return Val.unknown(msg("why.no_eval"), node)
        if t is ast.Subscript:
            base = self.value(node.value, frame, depth + 1)
            key = self.value(node.slice, frame, depth + 1)
            if base.kind == "dict" and key.kind == "const" and key.value in base.value:
                return base.value[key.value]
            if base.kind == "list" and key.kind == "const" and isinstance(key.value, int):
                try:
                    return base.value[key.value]
                except IndexError:
                    pass
            d = dotted(node.value)
            if d and self.qualname(node.value) == "os.environ":
                return Val.unknown(msg("why.environ"), node)
            if d and self.qualname(node.value) == "sys.argv":
                return Val.unknown(msg("why.argv"), node)
            return Val.unknown(msg("why.item"), node)
        if t is ast.IfExp:
            a, b = self.value(node.body, frame, depth + 1), self.value(node.orelse, frame, depth + 1)
            if a.kind == "const" and b.kind == "const" and a.value == b.value:
                return a
            return Val.unknown(msg("why.condition"), node)
        if t is ast.BoolOp and isinstance(node.op, ast.Or):
            last = self.value(node.values[-1], frame, depth + 1)
            first = self.value(node.values[0], frame, depth + 1)
            if first.known:
                return first
            if last.known:
                return last.weaker("medium", msg("why.fallback", why=first.reason or msg("why.first_not_static")))
            return Val.unknown(msg("why.runtime_values"), node)
        if t is ast.Starred:
            return self.value(node.value, frame, depth + 1)
        return Val.unknown(msg("why.expr_kind", kind=t.__name__), node)

    def _name(self, node: ast.Name, frame: Frame, depth: int) -> Val:
        name = node.id
        bl = self._bindings(name, node.lineno, frame)
        if not bl:
            if name in self.ix.aliases:
                return Val("symbol", self.ix.aliases[name], node=node)
            if name in ("True", "False", "None"):
                return Val("const", {"True": True, "False": False, "None": None}[name], node=node)
            return Val.unknown(msg("why.not_assigned", name=name), node)
        last = bl[-1]
        if last.kind == "import":
            return Val("symbol", self.ix.aliases.get(name, name), node=node)
        if last.kind == "param":
            if last.value is None:
                return Val.unknown(msg("why.param", name=name), node)
            inner = self._in_scope_of(last.value, frame)
            v = self.value(last.value, inner, depth + 1)
            return v.weaker("medium", msg("why.param_default", name=name)) if v.known else v
        if last.value is None:
            return Val.unknown(msg("why.bound", name=name, note=word("bind_note", last.note or "run-time value"), line=last.line), node)
        inner = self._in_scope_of(last.value, frame)
        v = self.value(last.value, inner, depth + 1)
        if not v.known:
            return v
        origin = v.origin or msg("why.name_at", name=name, line=last.line)
        if len(bl) > 1 and len({ast.dump(b.value) if b.value is not None else "?" for b in bl}) > 1:
            return v.weaker("medium", msg("why.assigned_twice", name=name, line=last.line))
        if v.kind == "dict":
            v = self._apply_item_binds(name, v, node.lineno, frame, depth)
        return Val(v.kind, v.value, v.confidence, origin, v.node, v.frame, v.reason, v.partial)

    def _apply_item_binds(self, name: str, v: Val, line: int, frame: Frame, depth: int) -> Val:
        """`kwargs["key"] = value` after `kwargs = {...}` and before the use updates the dict."""
        table = self.ix.item_binds.get(id(frame.scopes[-1])) or self.ix.item_binds.get(id(frame.scopes[0]))
        if not table:
            return v
        extra = {k: b for (n, k), bl in table.items() if n == name for b in bl if b.line <= line}
        if not extra:
            return v
        d = dict(v.value)
        for k, b in extra.items():
            d[k] = self.value(b.value, frame, depth + 1) if b.value is not None else Val.unknown(msg("why.runtime"))
        return Val("dict", d, v.confidence, v.origin, v.node, v.frame, v.reason, v.partial)

    def _in_scope_of(self, node: ast.AST, frame: Frame) -> Frame:
        # Module-level bindings are resolved in the module scope, not the function using them.
        for i in range(len(frame.scopes) - 1, -1, -1):
            s = frame.scopes[i]
            end = getattr(s, "end_lineno", None)
            if isinstance(s, ast.Module) or (getattr(s, "lineno", 0) <= getattr(node, "lineno", 0) <= (end or 0)):
                return Frame(frame.scopes[: i + 1], (), frame.func if i == len(frame.scopes) - 1 else None)
        return frame

    def _attribute(self, node: ast.Attribute, frame: Frame, depth: int) -> Val:
        q = self.qualname(node)
        root = q.split(".")[0] if q else None
        if q is not None and root is not None:
            base_name = dotted(node).split(".")[0]  # type: ignore[union-attr]
            # An imported module, or a bare name never bound here (a snippet without its imports).
            if base_name in self.ix.aliases or (base_name in KNOWN_MODULES
                                                and not self._bindings(base_name, node.lineno, frame)):
                return Val("symbol", q, node=node)
        if isinstance(node.value, ast.Name):
            table = self.ix.attr_binds.get(id(frame.scopes[-1])) or {}
            bl = [b for b in table.get((node.value.id, node.attr), []) if b.line <= node.lineno]
            if bl and bl[-1].value is not None:
                return self.value(bl[-1].value, frame, depth + 1)
            base = self.value(node.value, frame, depth + 1)
            if base.kind == "call":
                inner = self.kwarg(base.value, node.attr, base.frame, depth + 1)
                if inner.present and inner.val is not None:
                    return inner.val
        if node.attr in self.ix.attr_defaults:
            dnode, line, origin = self.ix.attr_defaults[node.attr]
            v = self.value(dnode, Frame(frame.scopes[:1], (), None), depth + 1)
            if v.known:
                return v.weaker("medium", msg("why.overridable", origin=origin, line=line))
        return Val.unknown(msg("why.runtime_attr", name=dotted(node) or node.attr), node)

    def _dict(self, node: ast.Dict, frame: Frame, depth: int) -> Val:
        out: dict[Any, Val] = {}
        partial = False
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:  # {**other}
                inner = self.value(v, frame, depth + 1)
                if inner.kind == "dict":
                    out.update(inner.value)
                    partial = partial or inner.partial
                else:
                    partial = True
                continue
            kv = self.value(k, frame, depth + 1)
            if kv.kind == "const":
                out[kv.value] = self.value(v, frame, depth + 1)
            else:
                partial = True
        return Val("dict", out, node=node, partial=partial)

    def _call(self, node: ast.Call, frame: Frame, depth: int) -> Val:
        name = self.call_name(node)
        if name in ("dict", "builtins.dict") and not node.args:
            out: dict[Any, Val] = {}
            partial = False
            for kw in node.keywords:
                if kw.arg is None:
                    inner = self.value(kw.value, frame, depth + 1)
                    if inner.kind == "dict":
                        out.update(inner.value)
                    else:
                        partial = True
                else:
                    out[kw.arg] = self.value(kw.value, frame, depth + 1)
            return Val("dict", out, node=node, partial=partial)
        if name in ("os.environ.get", "os.getenv") and node.args:
            key = self.value(node.args[0], frame, depth + 1)
            dflt = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "default"), None)
            var = key.value if key.kind == "const" else "?"
            if dflt is None:
                return Val.unknown(msg("why.env_var", var=str(var)), node)
            v = self.value(dflt, frame, depth + 1)
            return v.weaker("medium", msg("why.env_default", var=str(var)))
        if name in ("str", "int", "float", "bool") and len(node.args) == 1 and not node.keywords:
            v = self.value(node.args[0], frame, depth + 1)
            if v.kind == "const":
                try:
                    return Val("const", {"str": str, "int": int, "float": float, "bool": bool}[name](v.value),
                               v.confidence, v.origin, node)
                except (TypeError, ValueError):
                    pass
            return Val.unknown(msg("why.conversion"), node)
        if name == "getattr" and len(node.args) >= 2:
            attr = self.value(node.args[1], frame, depth + 1)
            base = self.qualname(node.args[0])
            if attr.kind == "const" and isinstance(attr.value, str) and base and base.split(".")[0] in (
                    "torch", "numpy"):
                return Val("symbol", f"{base}.{attr.value}", node=node)
        return Val("call", node, node=node, frame=self.ix.frames.get(id(node), frame))

    # -- call arguments ------------------------------------------------------------------------
    def kwarg(self, call: ast.Call, name: str, frame: Frame | None = None, depth: int = 0) -> Arg:
        """The keyword `name` of `call`, looking inside `**dict` spreads; Arg(None) when a spread
        cannot be read (the keyword may be there)."""
        frame = frame or self.ix.frames.get(id(call)) or Frame((self.ix.tree,), (), None)
        maybe = ""
        for kw in call.keywords:
            if kw.arg == name:
                return Arg(True, self.value(kw.value, frame, depth + 1), kw.value.lineno, kw.value.col_offset + 1)
        for kw in call.keywords:
            if kw.arg is None:
                spread = self.value(kw.value, frame, depth + 1)
                src = ast.unparse(kw.value) if depth < MAX_DEPTH else "kwargs"
                if spread.kind == "dict":
                    if name in spread.value:
                        v = spread.value[name]
                        line = getattr(v.node, "lineno", kw.value.lineno)
                        col = getattr(v.node, "col_offset", kw.value.col_offset) + 1
                        return Arg(True, v, line, col, via=f"**{src}")
                    if spread.partial:
                        maybe = src
                else:
                    maybe = src
        if maybe:
            return Arg(None, Val.unknown(msg("why.spread", src=maybe)),
                       call.lineno, call.col_offset + 1, via=f"**{maybe}")
        return MISSING

    def positional(self, call: ast.Call, index: int, name: str | None = None, frame: Frame | None = None) -> Arg:
        frame = frame or self.ix.frames.get(id(call)) or Frame((self.ix.tree,), (), None)
        if name:
            a = self.kwarg(call, name, frame)
            if a.present is not False:
                return a
        if len(call.args) > index and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1]):
            node = call.args[index]
            return Arg(True, self.value(node, frame), node.lineno, node.col_offset + 1)
        return MISSING


@dataclass
class Hit:
    """What a rule reports; the engine turns it into a Finding (path, code, title, suppression)."""

    line: int
    message: str | Msg  # a catalog message (worded in the answer's language when shown)
    severity: str
    confidence: str
    impact: Any
    fix: str | Msg | None = None  # instead of the rule's own fix
    col: int = 1
    end_line: int | None = None
    span: tuple[int, int] | None = None  # lines where a suppression comment counts


@dataclass
class Context:
    """What a rule sees: the node, where it sits, and the questions it may ask."""

    node: Any
    frame: Frame | None
    resolver: Resolver | None
    source: Any  # advisor.audit.sources.Source
    run: Any  # advisor.audit.engine.RunState (settings, evidence, project facts)
    facts: dict[str, Any] = field(default_factory=dict)

    # -- python questions --------------------------------------------------------------------
    @property
    def index(self) -> ModuleIndex:
        assert self.resolver is not None
        return self.resolver.ix

    def call_name(self, call: ast.Call | None = None) -> str:
        assert self.resolver is not None
        return self.resolver.call_name(call or self.node)

    def qualname(self, node: ast.AST) -> str | None:
        assert self.resolver is not None
        return self.resolver.qualname(node)

    def frame_of(self, node: ast.AST) -> Frame:
        return self.index.frames.get(id(node)) or self.frame or Frame((self.index.tree,), (), None)

    def value(self, node: ast.AST, frame: Frame | None = None) -> Val:
        assert self.resolver is not None
        return self.resolver.value(node, frame or self.frame_of(node))

    def kwarg(self, name: str, call: ast.Call | None = None, frame: Frame | None = None) -> Arg:
        assert self.resolver is not None
        call = call or self.node
        return self.resolver.kwarg(call, name, frame or self.frame_of(call))

    def first_kwarg(self, names: tuple[str, ...], call: ast.Call | None = None, frame: Frame | None = None) -> tuple[str, Arg]:
        maybe: tuple[str, Arg] | None = None
        for n in names:
            a = self.kwarg(n, call, frame)
            if a.present:
                return n, a
            if a.present is None and maybe is None:
                maybe = (n, a)
        return maybe or (names[0], MISSING)

    def positional(self, index: int, name: str | None = None, call: ast.Call | None = None) -> Arg:
        assert self.resolver is not None
        call = call or self.node
        return self.resolver.positional(call, index, name, self.frame_of(call))

    @property
    def loops(self) -> tuple[ast.AST, ...]:
        return self.frame.loops if self.frame else ()

    @property
    def func(self) -> ast.AST | None:
        return self.frame.func if self.frame else None

    def enclosing_functions(self) -> list[ast.AST]:
        return [s for s in (self.frame.scopes if self.frame else ()) if isinstance(s, FUNC_TYPES)]

    def hit(self, line: int, message: str | Msg, *, severity: str, confidence: str, impact: Any,
            fix: str | Msg | None = None, col: int = 1, span: tuple[int, int] | None = None) -> Hit:
        return Hit(line=line, message=message, severity=severity, confidence=confidence, impact=impact,
                   fix=fix, col=col, span=span)

    def node_span(self, node: ast.AST | None = None) -> tuple[int, int]:
        n = node or self.node
        start = getattr(n, "lineno", 1)
        return start, getattr(n, "end_lineno", None) or start
