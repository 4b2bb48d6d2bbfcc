"""The audit engine: read each file once, walk its AST once, hand every node to the rules that
registered for its type, and turn what they report into findings (suppressions, selection,
severity caps, notebook cell locations). Bad input never stops the run: each problem becomes a
per-file diagnostic and the scan goes on.
"""

from __future__ import annotations

import ast
import gc
import json
import os
import re
import shlex
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advisor.answer import MOOD_ORDER
from advisor.audit import configs
from advisor.audit.context import Context, Hit, Resolver
from advisor.audit.evidence import Evidence
from advisor.audit.models import AuditReport, Diagnostic, Finding, Impact, diagnostic
from advisor.audit.nodes import IndexOption, Requirement, ShellCommand, TrainingConfig
from advisor.audit.prefilter import Prefilter
from advisor.audit.pyindex import Frame, build_index
from advisor.audit.registry import Rule, all_rules
from advisor.audit.settings import AuditSettings
from advisor.audit.sources import Source, decode, kind_for, load_path, notebook_source, sniff_kind
from advisor.audit.walk import FileItem, walk
from advisor.messages.text import Msg, msg

PSEUDO_TYPES = (ShellCommand, Requirement, IndexOption, TrainingConfig)
SHELL_CALLS = frozenset({"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
                         "subprocess.Popen", "os.system", "os.popen"})
_PY2 = re.compile(r"^\s*(print\s+[^\s(=]|exec\s+[\"']|except\s+[\w.]+\s*,\s*\w+\s*:)|\bur[\"']|^\s*raise\s+\w+\s*,", re.M)
MAX_PARTIAL_TRIES = 6


class OverBudget(BaseException):
    """A file's time budget is spent. A BaseException, so a rule's `except Exception` (which
    turns a rule's bug into a diagnostic) cannot swallow it."""


class Budget:
    """The time one file may take. Checked between nodes and rules (cheap); a SIGALRM backstop
    covers long stretches without a check when the audit runs on the main thread."""

    __slots__ = ("seconds", "deadline")

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.perf_counter() + seconds

    def check(self) -> None:
        if time.perf_counter() > self.deadline:
            raise OverBudget


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise OverBudget

    try:
        old = signal.signal(signal.SIGALRM, on_alarm)
    except ValueError:  # not the main interpreter: the cooperative checks still hold
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class RunState:
    """What every rule may consult during a run besides its node."""

    settings: AuditSettings
    rows: list[Any] | None = None
    pins: dict[str, str] = field(default_factory=dict)  # package -> version spec from requirement files
    memo: dict[str, Any] = field(default_factory=dict)  # per-run scratch space shared by rules
    budget: Budget | None = None
    _evidence: Evidence | None = None

    @property
    def evidence(self) -> Evidence:
        if self._evidence is None:
            self._evidence = Evidence(self.settings.gpu, self.rows)
        return self._evidence

    @property
    def policy(self):  # noqa: ANN201 - advisor.audit.policy.Policy
        return self.settings.policy


@dataclass
class FileResult:
    findings: list[Finding] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    lines: int = 0
    suppressed: int = 0
    suppressed_findings: list[Finding] = field(default_factory=list)
    unused: list[Diagnostic] = field(default_factory=list)
    audited: bool = False
    seen: dict[tuple[str, int, int | None], int] = field(default_factory=dict)  # (code, line, cell) -> index
    pins: list[tuple[str, str]] = field(default_factory=list)  # requirement files: (package, version spec)
    cacheable: bool = True  # False when the result depends on the machine (the time budget ran out)

    def to_entry(self) -> dict[str, Any]:
        """The result as the cache stores it (JSON)."""
        return {"lines": self.lines, "audited": self.audited, "suppressed": self.suppressed, "pins": self.pins,
                "findings": [f.model_dump(mode="json") for f in self.findings],
                "suppressed_findings": [f.model_dump(mode="json") for f in self.suppressed_findings],
                "diagnostics": [d.model_dump(mode="json") for d in self.diagnostics],
                "unused": [d.model_dump(mode="json") for d in self.unused]}

    @classmethod
    def from_entry(cls, e: Any) -> FileResult:
        """A cached result back; raises ValueError (or a pydantic error, one) for an entry of
        another shape."""
        if not isinstance(e, dict):
            raise ValueError("not an entry")
        return cls(findings=[Finding.model_validate(f) for f in e["findings"]],
                   suppressed_findings=[Finding.model_validate(f) for f in e["suppressed_findings"]],
                   diagnostics=[Diagnostic.model_validate(d) for d in e["diagnostics"]],
                   unused=[Diagnostic.model_validate(d) for d in e["unused"]],
                   lines=int(e["lines"]), suppressed=int(e["suppressed"]), audited=bool(e["audited"]),
                   pins=[(str(a), str(b)) for a, b in e["pins"]])


def select_rules(settings: AuditSettings) -> list[Rule]:
    rules = list(all_rules().values())
    if settings.select:
        rules = [r for r in rules if any(r.code.startswith(s) for s in settings.select)]
    if settings.ignore:
        rules = [r for r in rules if not any(r.code.startswith(s) for s in settings.ignore)]
    return rules


def _py2_hint(text: str) -> Msg | str:
    return msg("diag.py2") if _PY2.search(text) else ""


def _parse(text: str, display: str) -> ast.Module:
    with warnings.catch_warnings():  # the user's invalid escapes are not our warnings to print
        warnings.simplefilter("ignore")
        return ast.parse(text, filename=display)


def parse_python(text: str, display: str, budget: Budget | None = None
                 ) -> tuple[ast.Module | None, list[Diagnostic], int]:
    """Parse; on a syntax error audit the longest prefix that parses (half-written code), and say
    so. Returns (tree, diagnostics, number of lines audited)."""
    lines = text.splitlines()
    try:
        return _parse(text, display), [], len(lines)
    except SyntaxError as err:
        if err.lineno is None:  # e.g. NUL bytes in text passed directly
            return None, [Diagnostic(path=display, level="error", message=f"cannot parse: {err.msg}; skipped")], 0
        where = msg("diag.at_col", line=err.lineno, col=err.offset) if err.offset else msg("diag.at", line=err.lineno)
        syntax = msg("diag.syntax", where=where, err=err.msg, hint=_py2_hint(text))
        err_line = err.lineno
        stop = min(err.lineno or len(lines), len(lines) + 1)
    except (ValueError, RecursionError, MemoryError, OverflowError) as err:
        kind = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        return None, [Diagnostic(path=display, level="error", message=f"cannot parse: {kind}; skipped")], 0
    starts = [i for i in range(stop - 1, 0, -1) if lines[i - 1][:1] not in ("", " ", "\t", "#", ")", "]", "}")]
    for k in [stop] + starts[:MAX_PARTIAL_TRIES]:
        if budget is not None:
            budget.check()
        prefix = "\n".join(lines[: k - 1])
        if not prefix.strip():
            continue
        try:
            tree = _parse(prefix, display)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        return tree, [diagnostic(display, "warning", msg("diag.partial", what=syntax, last=k - 1), err_line)], k - 1
    return None, [diagnostic(display, "error", msg("diag.skipped", what=syntax), err_line)], 0


class Dispatch:
    """Rules by the node type they read, for one set of rules (all selected rules, or the ones
    the prefilter let through for a file)."""

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self.by_type: dict[type, list[Rule]] = {}
        for r in rules:
            for t in r.nodes:
                self.by_type.setdefault(t, []).append(r)
        self.wanted = {t for t in self.by_type if issubclass(t, ast.AST)} | {ast.Call}
        self.pseudo = any(t in self.by_type for t in PSEUDO_TYPES)
        self.call_rules: dict[str, list[Rule]] = {}  # call name (last part) -> rules that read it

    def for_call(self, last: str) -> list[Rule]:
        rules = self.call_rules.get(last)
        if rules is None:
            rules = self.call_rules[last] = [r for r in self.by_type.get(ast.Call, ())
                                             if r.calls is None or last in r.calls]
        return rules


class Auditor:
    def __init__(self, settings: AuditSettings | None = None, rows: list[Any] | None = None, *,
                 prefilter: bool = True, jobs: int = 1, cache: Path | None = None):
        """`prefilter=False` hands every Python file to every rule (the prefilter's tests compare
        both ways; the findings must be the same). `jobs` worker processes audit the files of
        audit_paths (results and their order are the same for any number); `cache` is a folder
        for the audit cache (advisor.audit.cache; None: no cache)."""
        if jobs < 1:
            raise ValueError(f"jobs must be 1 or more, not {jobs}")
        self.jobs = jobs
        self.cache_folder = cache
        self.rows = rows
        self.use_prefilter = prefilter
        self.settings = settings or AuditSettings()
        self.rules = select_rules(self.settings)
        self.dispatch = Dispatch(self.rules)
        self.by_type = self.dispatch.by_type
        self.wanted = self.dispatch.wanted
        self.run = RunState(self.settings, rows)
        self.prefilter = Prefilter(self.rules) if prefilter else None
        self._dispatches: dict[frozenset[str], Dispatch] = {frozenset(r.code for r in self.rules): self.dispatch}
        self.files_parsed = 0  # Python files (and notebooks) parsed, for the speed benchmark
        self.cache_hits = 0  # files whose results came from the cache

    def _dispatch_for(self, codes: frozenset[str]) -> Dispatch:
        d = self._dispatches.get(codes)
        if d is None:
            d = self._dispatches[codes] = Dispatch([r for r in self.rules if r.code in codes])
        return d

    # -- one text -----------------------------------------------------------------------------
    def audit_text(self, text: str, path: str = "<stdin>", kind: str | None = None) -> FileResult:
        return self._budgeted(path, lambda: self._audit_text(text, path, kind))

    def _budgeted(self, path: str, work: Any) -> FileResult:
        """Run one file's audit within the policy's time budget; over it, the file is reported as
        skipped (its partial findings are dropped: a half-audited file would look clean)."""
        seconds = self.settings.policy.time_budget_s
        self.run.budget = Budget(seconds)
        # An AST is a tree (freed by reference counting): the cyclic collector only costs time
        # while a file's millions of nodes are made, so it waits until the file is done.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with _alarm(seconds + 0.05):
                return work()
        except OverBudget:
            return FileResult(cacheable=False, diagnostics=[diagnostic(
                path, "warning", msg("diag.time_budget", seconds=f"{seconds:g}"))])
        finally:
            self.run.budget = None
            if collecting:
                gc.enable()

    def _audit_text(self, text: str, path: str, kind: str | None) -> FileResult:
        kind = kind or kind_for(path) or sniff_kind(text)
        res = FileResult(lines=text.count("\n") + (0 if text.endswith("\n") or not text else 1))
        if not text.strip():
            res.diagnostics.append(diagnostic(path, "info", msg("diag.empty")))
            return res
        try:
            self._audit(text, path, kind, res)
        except Exception as err:  # a bug of ours must not stop the scan of other files
            res.diagnostics.append(Diagnostic(path=path, level="error",
                                              message=f"internal error while auditing ({type(err).__name__}: {err}); "
                                                      "skipped. Please report it."))
        return res

    def _audit(self, text: str, path: str, kind: str, res: FileResult) -> None:
        if kind == "notebook":
            src, diags = notebook_source(text, path)
            res.diagnostics.extend(diags)
            if src is None:
                return
            res.lines = sum(1 for _ in src.cell_map or [])
            self._audit_python(src, res)
            self._unused_suppressions(src, res)
            return
        src = Source(path, kind, text)
        if kind == "python":
            dispatch = self.dispatch
            if self.prefilter is not None:
                codes = self.prefilter.rules_for(text)
                if not codes:  # no rule's trigger words in the code: nothing can be found, no parse
                    res.audited = True
                    self._unused_suppressions(src, res)
                    return
                dispatch = self._dispatch_for(codes)
            self._audit_python(src, res, dispatch)
            self._unused_suppressions(src, res)
            return
        nodes: list[Any]
        if kind == "requirements":
            nodes = configs.read_requirements(text)
        elif kind == "pyproject":
            nodes, _, diags = configs.read_pyproject(text, path)
            res.diagnostics.extend(diags)
        elif kind == "yaml":
            nodes = configs.read_yaml(text, path)
        elif kind == "json":
            nodes, diags = configs.read_json(text, path)
            res.diagnostics.extend(diags)
        elif kind in ("shell", "dockerfile"):
            nodes = configs.read_shell(text, dockerfile=kind == "dockerfile")
        else:
            res.diagnostics.append(diagnostic(path, "info", msg("diag.no_reader", kind=kind)))
            return
        res.audited = True
        if kind in ("requirements", "pyproject"):
            for n in nodes:
                if isinstance(n, Requirement) and n.spec:
                    res.pins.append((n.name, n.spec))
                    self.run.pins.setdefault(n.name, n.spec)
        self._dispatch_pseudo(self._expand(nodes), src, None, res, self.dispatch)
        self._unused_suppressions(src, res)

    def _expand(self, nodes: list[Any]) -> list[Any]:
        out: list[Any] = []
        for n in nodes:
            out.append(n)
            if isinstance(n, ShellCommand):
                out.extend(configs.parse_command(n.text, n.line, f"install command ({n.origin})"))
        return out

    def _audit_python(self, src: Source, res: FileResult, dispatch: Dispatch | None = None) -> None:
        dispatch = dispatch or self.dispatch
        budget = self.run.budget
        self.files_parsed += 1
        tree, diags, _ = parse_python(src.text, src.path, budget)
        for d in diags:
            if d.line is not None and src.cell_map:
                line, cell = src.locate(d.line)
                d = (diagnostic(d.path, d.level, msg("diag.cell", cell=cell, what=d.text), line) if d.text is not None
                     else Diagnostic(path=d.path, level=d.level, line=line, message=f"cell {cell}: {d.message}"))
            res.diagnostics.append(d)
        pseudo: list[Any] = list(src.shell)
        if tree is None:
            if pseudo:
                self._dispatch_pseudo(self._expand(pseudo), src, None, res, dispatch)
            return
        res.audited = True
        index = build_index(tree, dispatch.wanted, budget)
        index.lines = len(src.lines)
        resolver = Resolver(index)
        if dispatch.pseudo:
            # Install commands run from Python (subprocess, os.system) are audited like shell lines.
            for call, frame in index.nodes(ast.Call):
                name = resolver.call_name(call)  # type: ignore[arg-type]
                if (name in SHELL_CALLS or name.endswith(".system")) and call.args:  # type: ignore[attr-defined]
                    cmd = _command_text(resolver.value(call.args[0], frame))  # type: ignore[attr-defined]
                    if cmd and "install" in cmd:
                        pseudo.append(ShellCommand(cmd, call.lineno, "subprocess call"))  # type: ignore[attr-defined]
        for t, rules in dispatch.by_type.items():
            if t in PSEUDO_TYPES:
                continue
            is_call = t is ast.Call
            for node, frame in index.nodes(t):
                if budget is not None:
                    budget.check()
                if is_call:
                    rules = dispatch.for_call(resolver.call_name(node).rsplit(".", 1)[-1])  # type: ignore[arg-type]
                    if not rules:
                        continue
                ctx = Context(node, frame, resolver, src, self.run)
                for rule in rules:
                    self._apply(rule, ctx, src, res)
        if pseudo:
            self._dispatch_pseudo(self._expand(pseudo), src, resolver, res, dispatch)

    def _dispatch_pseudo(self, nodes: list[Any], src: Source, resolver: Resolver | None, res: FileResult,
                         dispatch: Dispatch) -> None:
        budget = self.run.budget
        for n in nodes:
            if budget is not None:
                budget.check()
            for rule in dispatch.by_type.get(type(n), ()):
                ctx = Context(n, None, resolver, src, self.run)
                self._apply(rule, ctx, src, res)

    def _apply(self, rule: Rule, ctx: Context, src: Source, res: FileResult) -> None:
        try:
            hits = list(rule.check(ctx) or ())
        except RecursionError:
            hits = []
            res.diagnostics.append(Diagnostic(path=src.path, level="warning",
                                              message=f"{rule.code}: expression nested too deeply near line "
                                                      f"{getattr(ctx.node, 'lineno', getattr(ctx.node, 'line', '?'))}; "
                                                      "rule skipped there"))
        except Exception as err:  # one rule's bug must not hide the other findings
            line = getattr(ctx.node, "lineno", getattr(ctx.node, "line", None))
            res.diagnostics.append(Diagnostic(path=src.path, level="error", line=line if isinstance(line, int) else None,
                                              message=f"internal error in rule {rule.code} ({type(err).__name__}: {err}); "
                                                      "the rest of the file was audited. Please report it."))
            return
        for h in hits:
            f = self._finding(rule, h, src)
            if f.suppressed_by is not None:
                res.suppressed += 1
                res.suppressed_findings.append(f)
                continue
            key = (f.code, f.line, f.cell)
            at = res.seen.get(key)
            if at is None:
                res.seen[key] = len(res.findings)
                res.findings.append(f)
            elif _rank(f) > _rank(res.findings[at]):  # one finding per code and line: the most severe
                res.findings[at] = f

    def _finding(self, rule: Rule, h: Hit, src: Source) -> Finding:
        span = h.span or (h.line, h.line)
        span = (min(span[0], h.line), max(span[1], h.line))
        comment = src.suppressions.match(rule.code, span)
        impact: Impact = h.impact
        severity = h.severity
        cap = self.settings.policy.best_practice_mood
        if impact.basis == "best practice" and severity != "gray" and MOOD_ORDER[severity] > MOOD_ORDER[cap]:
            severity = cap
        line, cell = src.locate(h.line)
        snippet = src.line_text(h.line).strip()
        return Finding(code=rule.code, name=rule.name, title=rule.title, severity=severity,  # type: ignore[arg-type]
                       confidence=h.confidence, path=src.path, line=max(1, line), col=max(1, h.col),  # type: ignore[arg-type]
                       end_line=None, cell=cell, message=str(h.message),
                       text=h.message if isinstance(h.message, Msg) else None, fix=str(h.fix or rule.fix),
                       fix_text=h.fix if isinstance(h.fix, Msg) else None, impact=impact,
                       snippet=snippet[:200], file_line=src.file_line(h.line),
                       suppressed_by=f"line {comment.line}: {comment.text}" if comment is not None else None)

    def _unused_suppressions(self, src: Source, res: FileResult) -> None:
        if "eco" not in src.text or not src.suppressions:
            return
        ran = {r.code for r in self.rules}
        for c, idle in src.suppressions.unused(ran, set(all_rules())):
            line, cell = src.locate(c.line)
            where = f"cell {cell}: " if cell is not None else ""
            what = f"{', '.join(idle)} silenced nothing" if idle else "it silenced nothing"
            res.unused.append(Diagnostic(path=src.path, level="info", line=line,
                                         message=f"{where}unused suppression '{c.text}' ({what}); remove it so it "
                                                 "cannot hide a future finding"))

    # -- files --------------------------------------------------------------------------------
    def audit_file(self, item: FileItem) -> FileResult:
        return self._budgeted(item.display, lambda: self._audit_file(item))

    def _audit_file(self, item: FileItem) -> FileResult:
        data, diags = load_path(item.path, item.display, item.kind, self.settings.policy)
        return self._audit_bytes(item, data, diags)

    def _audit_bytes(self, item: FileItem, data: bytes | None, diags: list[Diagnostic]) -> FileResult:
        res = FileResult(diagnostics=list(diags))
        if data is None:
            res.cacheable = False
            return res
        text, ddiags = decode(data, item.display, "python" if item.kind == "python" else item.kind)
        res.diagnostics.extend(ddiags)
        if text is None or not text.strip():
            return res
        sub = self._audit_text(text, item.display, item.kind)
        sub.diagnostics = res.diagnostics + sub.diagnostics
        return sub

    def collect(self, paths: list[str], stdin_name: str | None = None) -> tuple[list[FileItem | tuple[str, str]], list[Diagnostic]]:
        items: list[FileItem | tuple[str, str]] = []
        diags: list[Diagnostic] = []
        for p in paths:
            if p == "-":
                data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
                name = stdin_name or "<stdin>"
                text, dd = decode(data, name, kind_for(name) or "python")
                diags.extend(dd)
                if text is not None:
                    items.append((name, text))
                continue
            path = Path(p)
            if os.path.isdir(path):
                for it in walk(path, p.rstrip("/") or p, self.settings.exclude, self.settings.respect_gitignore):
                    (diags if isinstance(it, Diagnostic) else items).append(it)  # type: ignore[arg-type]
                continue
            kind = kind_for(p)
            if kind is None and os.path.isfile(path):
                try:
                    with open(path, "rb") as fh:
                        head = fh.readline(200)
                except OSError:
                    head = b""
                kind = "python" if head.startswith(b"#!") and b"python" in head else None
            if kind is None:
                if os.path.lexists(path) and not os.path.exists(path):
                    kind = "python"  # a broken or looping link: let the reader say which
                else:
                    diags.append(diagnostic(p, "info", msg("diag.file_type")))
                    continue
            items.append(FileItem(path, p, kind))
        return items, diags

    def audit_paths(self, paths: list[str], stdin_name: str | None = None) -> AuditReport:
        t0 = time.perf_counter()
        items, diags = self.collect(paths, stdin_name)
        # Requirement files first: their pins (e.g. transformers) inform the Python rules.
        order = {"requirements": 0, "pyproject": 0}
        items.sort(key=lambda it: order.get(it.kind, 1) if isinstance(it, FileItem) else 1)
        report = AuditReport(diagnostics=diags, rules=[r.code for r in self.rules], gpu=self.settings.gpu)
        cache = self._open_cache()
        first = [it for it in items if isinstance(it, FileItem) and it.kind in order]
        rest = [it for it in items if not (isinstance(it, FileItem) and it.kind in order)]
        results = self._audit_items(first, cache, parallel=False)
        results += self._audit_items(rest, cache, parallel=True)
        for res in results:
            report.files_given += 1
            report.findings.extend(res.findings)
            report.diagnostics.extend(res.diagnostics)
            report.suppressed += res.suppressed
            report.suppressed_findings.extend(res.suppressed_findings)
            report.unused_suppressions.extend(res.unused)
            if res.audited:
                report.files_scanned += 1
                report.lines_scanned += res.lines
        if cache is not None:
            cache.save()
            if cache.problem:
                report.diagnostics.append(Diagnostic(path=str(cache.directory), level="warning", message=cache.problem))
        report.findings.sort(key=lambda f: (f.path, f.cell or 0, f.line, f.code))
        report.elapsed_s = time.perf_counter() - t0
        return report

    def _open_cache(self) -> Any:
        if self.cache_folder is None or self.rows is not None:  # rows handed in (tests) are not what the key hashes
            return None
        from advisor.audit.cache import AuditCache, installed_versions, namespace

        settings = self.settings.model_dump(mode="json", exclude={"config_file"})
        return AuditCache(self.cache_folder, namespace(json.dumps(settings, sort_keys=True), installed_versions()))

    def _audit_items(self, items: list[FileItem | tuple[str, str]], cache: Any, parallel: bool) -> list[FileResult]:
        """Results in the order of `items`: from the cache where the file's key is there, else
        audited here or by the worker processes."""
        from advisor.audit.cache import file_key

        out: list[FileResult | None] = [None] * len(items)
        todo: list[int] = []
        keys: dict[int, str] = {}
        loaded: dict[int, tuple[bytes | None, list[Diagnostic]]] = {}
        for i, it in enumerate(items):
            if not isinstance(it, FileItem):
                out[i] = self.audit_text(it[1], it[0], kind_for(it[0]) if it[0] != "<stdin>" else None)
                continue
            if cache is not None:
                data, diags = load_path(it.path, it.display, it.kind, self.settings.policy)
                if data is not None:
                    ctx = json.dumps(sorted(self.run.pins.items())) if it.kind in ("python", "notebook") else ""
                    keys[i] = key = file_key(data, it.display, it.kind, ctx)
                    entry = cache.get(key)
                    if entry is not None:
                        try:
                            res = out[i] = FileResult.from_entry(entry)
                        except (ValueError, KeyError, TypeError):  # includes pydantic's ValidationError
                            cache.drop(key)
                        else:
                            for name, spec in res.pins:
                                self.run.pins.setdefault(name, spec)
                            self.cache_hits += 1
                            continue
                loaded[i] = (data, diags)
            if parallel:
                todo.append(i)
                continue
            # in order, at once: a requirement file's pins must land before the next file's (first pin wins)
            res = out[i] = (self._budgeted(it.display, lambda it=it, i=i: self._audit_bytes(it, *loaded[i]))
                            if i in loaded else self.audit_file(it))
            if cache is not None and i in keys and res.cacheable:
                cache.put(keys[i], res.to_entry())
        workers = min(self.jobs, max(1, len(todo) // MIN_FILES_PER_WORKER))
        if workers > 1:
            fresh = self._in_workers([items[i] for i in todo], workers)  # type: ignore[misc]
        else:
            fresh = [self._budgeted(items[i].display,  # type: ignore[union-attr]
                                    lambda i=i: self._audit_bytes(items[i], *loaded[i]))  # type: ignore[arg-type]
                     if i in loaded else self.audit_file(items[i]) for i in todo]  # type: ignore[arg-type]
        for i, res in zip(todo, fresh, strict=True):
            out[i] = res
            if cache is not None and i in keys and res.cacheable:
                cache.put(keys[i], res.to_entry())
        return out  # type: ignore[return-value]

    def _in_workers(self, items: list[FileItem], workers: int) -> list[FileResult]:
        import concurrent.futures
        import multiprocessing

        # fork where there is one: the workers start with the rules already imported
        ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
        init = (self.settings.model_dump_json(), self.rows, dict(self.run.pins), self.use_prefilter)
        chunk = max(1, len(items) // (workers * 16))
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker,
                                                    initargs=init) as pool:
            results = list(pool.map(_worker_audit, items, chunksize=chunk))
        self.files_parsed += sum(r[1] for r in results)
        return [r[0] for r in results]

    def audit_code(self, code: str, filename: str = "<stdin>") -> AuditReport:
        t0 = time.perf_counter()
        res = self.audit_text(code, filename, kind_for(filename) if filename not in ("<stdin>", "<chat>") else None)
        report = AuditReport(findings=sorted(res.findings, key=lambda f: (f.cell or 0, f.line, f.code)),
                             diagnostics=res.diagnostics, files_scanned=int(res.audited), lines_scanned=res.lines,
                             suppressed=res.suppressed, suppressed_findings=res.suppressed_findings,
                             unused_suppressions=res.unused, files_given=1, rules=[r.code for r in self.rules],
                             gpu=self.settings.gpu)
        report.elapsed_s = time.perf_counter() - t0
        return report


def _rank(f: Finding) -> int:
    return MOOD_ORDER[f.severity]


def _command_text(v: Any) -> str | None:
    if v.kind == "const" and isinstance(v.value, str):
        return v.value
    if v.kind == "list" and v.value and all(x.kind == "const" and isinstance(x.value, str) for x in v.value):
        return shlex.join(x.value for x in v.value)
    return None


def frame_for(index: Any, node: ast.AST) -> Frame | None:
    return index.frames.get(id(node))


# -- worker processes (--jobs) -------------------------------------------------------------------
MIN_FILES_PER_WORKER = 8  # below this a process costs more than it saves
_WORKER: Auditor | None = None


def _start_worker(settings_json: str, rows: list[Any] | None, pins: dict[str, str], prefilter: bool) -> None:
    global _WORKER
    _WORKER = Auditor(AuditSettings.model_validate_json(settings_json), rows, prefilter=prefilter)
    _WORKER.run.pins.update(pins)


def _worker_audit(item: FileItem) -> tuple[FileResult, int]:
    assert _WORKER is not None
    before = _WORKER.files_parsed
    res = _WORKER.audit_file(item)
    res.seen = {}
    return res, _WORKER.files_parsed - before
