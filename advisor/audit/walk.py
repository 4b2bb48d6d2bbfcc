"""Which files a directory scan reads: .gitignore files honoured (nested ones too, negations,
anchored and directory-only patterns), default excludes for environments and caches, extra
excludes from the command line or `[tool.ecolobster]`. Symlinked directories are followed once;
a link back into a directory already being walked is a loop and gets a diagnostic.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from advisor.audit.models import Diagnostic
from advisor.audit.sources import kind_for

DEFAULT_EXCLUDES = (".git/", ".hg/", ".svn/", ".venv/", "venv/", ".tox/", ".nox/", "node_modules/", "__pycache__/",
                    ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", "site-packages/", ".ipynb_checkpoints/",
                    "*.egg-info/", ".hypothesis/")


@dataclass(frozen=True)
class Pattern:
    base: str  # directory (relative to the walk root, "" for the root) the pattern is relative to
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _translate(pat: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pat.startswith("/**", i) and i + 3 == len(pat):
            out.append("/.*")
            i += 3
            continue
        if pat.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pat.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pat[i + 1: j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j
        elif c == "\\" and i + 1 < len(pat):
            out.append(re.escape(pat[i + 1]))
            i += 1
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_pattern(line: str, base: str = "") -> Pattern | None:
    """One .gitignore line -> Pattern (None for blanks and comments)."""
    pat = line.rstrip("\n")
    if not pat.strip() or pat.startswith("#"):
        return None
    if not pat.endswith("\\ "):
        pat = pat.rstrip()
    negate = pat.startswith("!")
    if negate:
        pat = pat[1:]
    if pat.startswith("\\#") or pat.startswith("\\!"):
        pat = pat[1:]
    dir_only = pat.endswith("/")
    pat = pat.rstrip("/")
    if not pat:
        return None
    anchored = "/" in pat
    pat = pat.lstrip("/")
    rx = _translate(pat)
    if not anchored:
        rx = "(?:.*/)?" + rx
    return Pattern(base, re.compile(rx + r"\Z", re.S), negate, dir_only)


class IgnoreRules:
    def __init__(self, patterns: list[Pattern] | None = None):
        self.patterns = list(patterns or [])

    def extend(self, lines: list[str], base: str = "") -> None:
        for line in lines:
            p = compile_pattern(line, base)
            if p is not None:
                self.patterns.append(p)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        result = False
        for p in self.patterns:
            if p.dir_only and not is_dir:
                continue
            if p.base:
                if not rel.startswith(p.base + "/"):
                    continue
                sub = rel[len(p.base) + 1:]
            else:
                sub = rel
            if p.regex.match(sub):
                result = not p.negate
        return result


def real_path(p: Path) -> Path | None:
    """`p` with every link resolved, or None when a symlink loop (or a link that cannot be read)
    stops resolution. Path.resolve raises on loops; a walker must skip them, not fail."""
    try:
        return p.resolve()
    except (RuntimeError, OSError):
        return None


@dataclass(frozen=True)
class FileItem:
    path: Path
    display: str
    kind: str


def walk(root: Path, display_root: str, excludes: list[str], use_gitignore: bool = True
         ) -> Iterator[FileItem | Diagnostic]:
    rules = IgnoreRules()
    rules.extend(list(DEFAULT_EXCLUDES))
    rules.extend(excludes)
    visiting: set[str] = set()

    def disp(rel: str) -> str:
        return os.path.join(display_root, rel) if rel else display_root

    def recurse(d: Path, rel: str) -> Iterator[FileItem | Diagnostic]:
        try:
            real = os.path.realpath(d)
        except OSError as err:
            yield Diagnostic(path=disp(rel), level="error", message=f"cannot resolve: {err}; skipped")
            return
        if real in visiting:
            yield Diagnostic(path=disp(rel), level="warning",
                             message=f"symlink loop: points back to {real}, which is already being scanned; not followed")
            return
        visiting.add(real)
        try:
            if use_gitignore:
                gi = d / ".gitignore"
                try:
                    if gi.is_file():
                        rules.extend(gi.read_text(encoding="utf-8", errors="replace").splitlines(), rel)
                except OSError:
                    pass
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError as err:
                yield Diagnostic(path=disp(rel), level="error", message=f"cannot list directory: {err.strerror}; skipped")
                return
            for e in entries:
                erel = f"{rel}/{e.name}" if rel else e.name
                try:
                    is_dir = e.is_dir(follow_symlinks=True)
                except OSError:
                    is_dir = False
                if rules.ignored(erel, is_dir):
                    continue
                if is_dir:
                    yield from recurse(Path(e.path), erel)
                    continue
                kind = kind_for(e.name)
                if kind is None:
                    continue
                yield FileItem(Path(e.path), disp(erel), kind)
        finally:
            visiting.discard(real)

    yield from recurse(root, "")
