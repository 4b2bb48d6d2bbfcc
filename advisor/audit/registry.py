"""The rule registry: one small module per rule under advisor/audit/rules/.

A rule module's docstring is the rule's documentation (what it catches, the patterns, an example
report, references). Its check function is registered with the `rule` decorator, naming the
rule's stable code and the node types it wants; the engine walks each file once and hands every
node of those types to the rule, wrapped in a context object the rule asks questions of.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from advisor.audit.prefilter import normalize_tokens

CheckFn = Callable[[Any], Iterable[Any]]


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    title: str
    nodes: tuple[type, ...]
    check: CheckFn
    doc: str
    fix: str
    calls: frozenset[str] | None = None  # for ast.Call: the call names (last part) the rule reads
    # Trigger tokens (advisor.audit.prefilter): groups of words, each group must occur in a
    # Python file's code for the rule to be able to report there; None: every file.
    tokens: tuple[tuple[str, ...], ...] | None = None

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.title


_RULES: dict[str, Rule] = {}
_LOADED = False


def rule(code: str, name: str, title: str, nodes: tuple[type, ...], fix: str,
         calls: frozenset[str] | set[str] | None = None,
         tokens: Iterable[str] | Iterable[Iterable[str]] | None = None) -> Callable[[CheckFn], CheckFn]:
    """Register `check` as rule `code`, dispatched on `nodes` (AST or config node types).

    `calls` narrows the dispatch of ast.Call nodes to calls whose resolved name ends in one of
    these names (after import aliases: `B(...)` for `BitsAndBytesConfig as B` counts), so a rule
    is not handed every call in the file.

    `tokens` are the words without which the rule cannot report anything in a Python file or
    notebook (see advisor.audit.prefilter): a file whose code holds none of them is not handed to
    the rule, and a file no rule wants is not parsed. A list of words means any of them; a list
    of lists means one word of every list. Declare only words that *every* finding needs (the
    call names in `calls`, the keyword the rule looks for); leave tokens out when unsure: the
    rule then sees every file. tests/test_audit_prefilter.py checks that the prefilter changes
    no finding."""
    groups = normalize_tokens(tokens)

    def deco(fn: CheckFn) -> CheckFn:
        if code in _RULES and _RULES[code].check is not fn:
            raise ValueError(f"rule code {code} registered twice ({_RULES[code].check.__module__}, {fn.__module__})")
        doc = (sys.modules[fn.__module__].__doc__ or "").strip()
        _RULES[code] = Rule(code=code, name=name, title=title, nodes=tuple(nodes), check=fn, doc=doc, fix=fix,
                            calls=frozenset(calls) if calls is not None else None, tokens=groups)
        return fn

    return deco


def all_rules() -> dict[str, Rule]:
    """Every registered rule, by code (imports advisor.audit.rules.* once)."""
    global _LOADED
    if not _LOADED:
        from advisor.audit import rules as pkg

        for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")
        _LOADED = True
    return dict(sorted(_RULES.items()))
