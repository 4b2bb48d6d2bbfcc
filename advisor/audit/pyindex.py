"""One walk over a module's AST: node buckets for the rules, plus the symbol tables the context
uses to answer questions (import aliases, assignments per scope, argparse and dataclass defaults).

The walk is iterative (no recursion limit on deeply nested code) and records, for each node a
rule wants, its frame: the chain of scopes it sits in, the loops around it and the enclosing
function. Rules run after the walk, so they can see assignments made later in the file (a
threshold set on a config object after the object was created).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from advisor.messages.text import Msg, msg

SCOPE_TYPES = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
FUNC_TYPES = (ast.FunctionDef, ast.AsyncFunctionDef)
LOOP_TYPES = (ast.For, ast.AsyncFor, ast.While)
COMP_TYPES = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)

OPAQUE = None  # a binding whose value cannot be read statically (loop target, augmented assignment)


class Frame(NamedTuple):
    scopes: tuple[ast.AST, ...]  # module first, innermost last
    loops: tuple[ast.AST, ...]  # loop or comprehension nodes whose body holds the node
    func: ast.AST | None  # innermost enclosing function


class Binding(NamedTuple):
    line: int
    value: ast.AST | None  # OPAQUE when unreadable
    kind: str  # assign | param | import | opaque
    note: str = ""


@dataclass
class ModuleIndex:
    tree: ast.Module
    buckets: dict[type, list[tuple[ast.AST, Frame]]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    star_imports: list[str] = field(default_factory=list)
    binds: dict[int, dict[str, list[Binding]]] = field(default_factory=dict)  # id(scope) -> name -> bindings
    attr_binds: dict[int, dict[tuple[str, str], list[Binding]]] = field(default_factory=dict)
    item_binds: dict[int, dict[tuple[str, str], list[Binding]]] = field(default_factory=dict)
    attr_defaults: dict[str, tuple[ast.AST, int, str | Msg]] = field(default_factory=dict)  # attr -> (node, line, origin)
    frames: dict[int, Frame] = field(default_factory=dict)  # id(call node) -> frame
    call_names: set[str] = field(default_factory=set)
    method_names: set[str] = field(default_factory=set)
    imported: set[str] = field(default_factory=set)  # top-level packages imported
    strings: set[str] = field(default_factory=set)  # short string constants (device names, strategies)
    lines: int = 0
    memo: dict = field(default_factory=dict)  # per-file scratch space shared by rules

    def nodes(self, t: type) -> list[tuple[ast.AST, Frame]]:
        return self.buckets.get(t, [])


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _target_names(t: ast.AST) -> list[str]:
    if isinstance(t, ast.Name):
        return [t.id]
    if isinstance(t, (ast.Tuple, ast.List)):
        out: list[str] = []
        for e in t.elts:
            out.extend(_target_names(e.value if isinstance(e, ast.Starred) else e))
        return out
    return []


def _opt_dest(call: ast.Call) -> str | None:
    """The attribute name argparse gives an option: dest=, else the first long option."""
    for kw in call.keywords:
        if kw.arg == "dest" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    longs = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    for opt in longs:
        if opt.startswith("--"):
            return opt[2:].replace("-", "_")
    for opt in longs:
        if not opt.startswith("-"):
            return opt
    return None


def build_index(tree: ast.Module, wanted: set[type], budget: Any = None) -> ModuleIndex:
    """`budget` (advisor.audit.engine.Budget) is checked every few thousand nodes."""
    idx = ModuleIndex(tree=tree)
    buckets = idx.buckets
    binds = idx.binds
    mod_frame = Frame((tree,), (), None)
    stack: list[tuple[ast.AST, Frame]] = [(tree, mod_frame)]
    pop, push = stack.pop, stack.append
    Call, Assign, Name, Attribute, Constant = ast.Call, ast.Assign, ast.Name, ast.Attribute, ast.Constant
    AST = ast.AST

    def bind(frame: Frame, name: str, b: Binding) -> None:
        binds.setdefault(id(frame.scopes[-1]), {}).setdefault(name, []).append(b)

    count = 0
    while stack:
        node, frame = pop()
        count += 1
        if budget is not None and not count & 4095:
            budget.check()
        t = type(node)
        if t in wanted:
            buckets.setdefault(t, []).append((node, frame))

        if t is Call:
            idx.frames[id(node)] = frame
            f = node.func
            if type(f) is Attribute:
                idx.method_names.add(f.attr)
                d = _dotted(f)
                if d:
                    idx.call_names.add(d)
                if f.attr == "add_argument":
                    dest = _opt_dest(node)
                    kws = {kw.arg: kw.value for kw in node.keywords}
                    dflt = kws.get("default")
                    action = kws.get("action")
                    if dflt is None and type(action) is Constant and action.value in ("store_true", "store_false"):
                        # a switch left off the command line: argparse gives False (store_true) / True
                        dflt = ast.copy_location(Constant(action.value == "store_false"), action)
                    if dflt is not None and dest:
                        idx.attr_defaults.setdefault(dest, (dflt, node.lineno, msg("why.option_default", option=f"--{dest.replace('_', '-')}")))
            elif type(f) is Name:
                idx.call_names.add(f.id)
        elif t is Constant:
            v = node.value
            if type(v) is str and len(v) < 40:
                idx.strings.add(v)
        elif t is Assign:
            for tgt in node.targets:
                tt = type(tgt)
                if tt is Name:
                    bind(frame, tgt.id, Binding(node.lineno, node.value, "assign"))
                elif tt is Attribute and type(tgt.value) is Name:
                    idx.attr_binds.setdefault(id(frame.scopes[-1]), {}).setdefault(
                        (tgt.value.id, tgt.attr), []).append(Binding(node.lineno, node.value, "assign"))
                elif (tt is ast.Subscript and type(tgt.value) is Name and type(tgt.slice) is Constant
                      and isinstance(tgt.slice.value, str)):
                    idx.item_binds.setdefault(id(frame.scopes[-1]), {}).setdefault(
                        (tgt.value.id, tgt.slice.value), []).append(Binding(node.lineno, node.value, "assign"))
                elif tt in (ast.Tuple, ast.List):
                    val = node.value
                    if type(val) in (ast.Tuple, ast.List) and len(val.elts) == len(tgt.elts):
                        for te, ve in zip(tgt.elts, val.elts, strict=True):
                            if type(te) is Name:
                                bind(frame, te.id, Binding(node.lineno, ve, "assign"))
                            else:
                                for n in _target_names(te):
                                    bind(frame, n, Binding(node.lineno, OPAQUE, "opaque", "unpacked"))
                    else:
                        for n in _target_names(tgt):
                            bind(frame, n, Binding(node.lineno, OPAQUE, "opaque", "tuple unpacking"))
        elif t is ast.AnnAssign:
            if type(node.target) is Name and node.value is not None:
                bind(frame, node.target.id, Binding(node.lineno, node.value, "assign"))
                if type(frame.scopes[-1]) is ast.ClassDef:
                    val = node.value
                    if type(val) is Call and _dotted(val.func) in ("field", "dataclasses.field"):
                        val = next((k.value for k in val.keywords if k.arg == "default"), None)
                    if val is not None:
                        idx.attr_defaults.setdefault(
                            node.target.id, (val, node.lineno, msg("why.field_default", name=node.target.id)))
        elif t is ast.AugAssign:
            for n in _target_names(node.target):
                bind(frame, n, Binding(node.lineno, OPAQUE, "opaque", "augmented assignment"))
        elif t is ast.NamedExpr:
            bind(frame, node.target.id, Binding(node.lineno, node.value, "assign"))
        elif t is ast.Import:
            for a in node.names:
                if a.asname:
                    idx.aliases[a.asname] = a.name
                else:
                    root = a.name.split(".")[0]
                    idx.aliases[root] = root
                idx.imported.add(a.name.split(".")[0])
                bind(frame, a.asname or a.name.split(".")[0], Binding(node.lineno, OPAQUE, "import"))
        elif t is ast.ImportFrom:
            mod = ("." * node.level) + (node.module or "")
            if node.module:
                idx.imported.add(node.module.split(".")[0])
            for a in node.names:
                if a.name == "*":
                    idx.star_imports.append(mod)
                    continue
                idx.aliases[a.asname or a.name] = f"{mod}.{a.name}" if mod else a.name
                bind(frame, a.asname or a.name, Binding(node.lineno, OPAQUE, "import"))
        elif t in (ast.For, ast.AsyncFor):
            for n in _target_names(node.target):
                bind(frame, n, Binding(node.lineno, OPAQUE, "opaque", "loop variable"))
        elif t in (ast.With, ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    for n in _target_names(item.optional_vars):
                        bind(frame, n, Binding(node.lineno, OPAQUE, "opaque", "with-statement target"))
        elif t is ast.ExceptHandler and node.name:
            bind(frame, node.name, Binding(node.lineno, OPAQUE, "opaque", "exception"))

        # children, with the frame each one lives in
        if t in FUNC_TYPES or t is ast.Lambda:
            if t is not ast.Lambda:
                bind(frame, node.name, Binding(node.lineno, OPAQUE, "opaque", "function"))
                for d in node.decorator_list:
                    push((d, frame))
                if node.returns is not None:
                    push((node.returns, frame))
            a = node.args
            inner = Frame(frame.scopes + (node,), (), node if t is not ast.Lambda else frame.func)
            for dflt in a.defaults + [d for d in a.kw_defaults if d is not None]:
                push((dflt, frame))
            positional = a.posonlyargs + a.args
            pdefaults: list[ast.AST | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
            for arg, dflt in zip(positional, pdefaults, strict=True):
                bind(inner, arg.arg, Binding(node.lineno, dflt, "param"))
            for arg, dflt in zip(a.kwonlyargs, a.kw_defaults, strict=True):
                bind(inner, arg.arg, Binding(node.lineno, dflt, "param"))
            for extra in (a.vararg, a.kwarg):
                if extra is not None:
                    bind(inner, extra.arg, Binding(node.lineno, OPAQUE, "param"))
            body = node.body if t is not ast.Lambda else [node.body]
            for child in reversed(body):
                push((child, inner))
            continue
        if t is ast.ClassDef:
            bind(frame, node.name, Binding(node.lineno, OPAQUE, "opaque", "class"))
            for d in node.decorator_list + node.bases + [k.value for k in node.keywords]:
                push((d, frame))
            inner = Frame(frame.scopes + (node,), frame.loops, frame.func)
            for child in reversed(node.body):
                push((child, inner))
            continue
        if t in LOOP_TYPES:
            looped = Frame(frame.scopes, frame.loops + (node,), frame.func)
            for child in reversed(node.orelse):
                push((child, frame))
            for child in reversed(node.body):
                push((child, looped))
            if t is ast.While:
                push((node.test, frame))
            else:
                push((node.iter, frame))
                push((node.target, frame))
            continue
        if t in COMP_TYPES:
            looped = Frame(frame.scopes, frame.loops + (node,), frame.func)
            gens = node.generators
            for i, g in enumerate(gens):
                for n in _target_names(g.target):
                    bind(frame, n, Binding(node.lineno, OPAQUE, "opaque", "comprehension variable"))
                push((g.iter, frame if i == 0 else looped))
                for cond in g.ifs:
                    push((cond, looped))
            if t is ast.DictComp:
                push((node.key, looped))
                push((node.value, looped))
            else:
                push((node.elt, looped))
            continue
        if t is Name or t is Constant:
            continue  # leaves: nothing below them matters
        fields = _FIELDS.get(t)
        if fields is None:
            # `ctx` (Load/Store singletons) and annotations-only fields hold nothing a rule reads
            fields = _FIELDS[t] = tuple(f for f in t._fields if f not in ("ctx", "type_comment", "type_ignores"))
        for name in fields:
            v = getattr(node, name, None)
            if v.__class__ is list:
                for item in reversed(v):
                    if isinstance(item, AST):
                        push((item, frame))
            elif v is not None and isinstance(v, AST):
                push((v, frame))
    return idx


_FIELDS: dict[type, tuple[str, ...]] = {}


def dotted(node: ast.AST) -> str | None:
    return _dotted(node)
