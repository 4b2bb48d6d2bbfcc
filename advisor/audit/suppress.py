"""Suppressions written in the audited file, at three scopes:

    x = f(...)  # eco: ignore[ECO101]            this line (or any line of the statement)
    x = f(...)  # eco: ignore                    every rule on this line
    # eco: ignore-file[ECO206]                   the whole file (anywhere in it; bare = every rule)
    # eco: disable[ECO205]  ...  # eco: enable[ECO205]   a block (to the end of the file if never enabled)

Each comment remembers whether it silenced something, so unused ones can be reported (a
suppression left behind after the code was fixed hides the next real finding).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_COMMENT = re.compile(r"#\s*eco\s*:\s*(ignore-file|ignore|disable|enable)\b(?:\[([^\]\n]*)\])?", re.I)
ALL = frozenset({"*"})


def _codes(raw: str | None) -> frozenset[str]:
    if raw is None:
        return ALL
    codes = frozenset(c.strip().upper() for c in re.split(r"[,\s]+", raw) if c.strip())
    return codes or ALL


def codes_on(line: str) -> frozenset[str] | None:
    """Codes a line-level `# eco: ignore` on this line suppresses (ALL for a bare one), None when
    there is none."""
    if "eco" not in line:
        return None
    for m in _COMMENT.finditer(line):
        if m.group(1).lower() == "ignore":
            return _codes(m.group(2))
    return None


def _covers(codes: frozenset[str], code: str) -> bool:
    return codes is ALL or "*" in codes or code in codes


@dataclass
class Comment:
    line: int
    scope: str  # ignore | ignore-file | disable
    codes: frozenset[str]
    end: int = 0  # disable: the last line of the block
    used: set[str] = field(default_factory=set)  # codes it silenced

    @property
    def text(self) -> str:
        inner = "" if self.codes is ALL else "[" + ", ".join(sorted(self.codes)) + "]"
        return f"# eco: {self.scope}{inner}"


class Suppressions:
    """Every suppression comment of one file, read once."""

    def __init__(self, lines: list[str]):
        self.by_line: dict[int, Comment] = {}
        self.file: list[Comment] = []
        self.blocks: list[Comment] = []
        open_blocks: list[Comment] = []
        for n, text in enumerate(lines, start=1):
            if "eco" not in text:
                continue
            for m in _COMMENT.finditer(text):
                scope, codes = m.group(1).lower(), _codes(m.group(2))
                if scope == "ignore":
                    self.by_line.setdefault(n, Comment(n, scope, codes))
                elif scope == "ignore-file":
                    self.file.append(Comment(n, scope, codes))
                elif scope == "disable":
                    c = Comment(n, scope, codes, end=len(lines))
                    open_blocks.append(c)
                    self.blocks.append(c)
                else:  # enable: closes the open blocks it names
                    for b in open_blocks:
                        if b.end == len(lines) and (codes is ALL or b.codes is ALL or b.codes & codes):
                            b.end = n
                    open_blocks = [b for b in open_blocks if b.end == len(lines)]

    def __bool__(self) -> bool:
        return bool(self.by_line or self.file or self.blocks)

    def match(self, code: str, span: tuple[int, int]) -> Comment | None:
        """The comment that silences `code` on lines `span`, marked used; None if none does."""
        start, end = span
        for n in range(max(1, start), end + 1):
            c = self.by_line.get(n)
            if c is not None and _covers(c.codes, code):
                c.used.add(code)
                return c
        for b in self.blocks:
            if b.line <= start <= b.end and _covers(b.codes, code):
                b.used.add(code)
                return b
        for f in self.file:
            if _covers(f.codes, code):
                f.used.add(code)
                return f
        return None

    def unused(self, ran: set[str], known: set[str]) -> list[tuple[Comment, list[str]]]:
        """Comments (or codes of them) that silenced nothing: codes of rules that ran, and codes that
        name no rule at all. A code of a rule left out by --select is not unused, it did not run."""
        out: list[tuple[Comment, list[str]]] = []
        for c in sorted([*self.by_line.values(), *self.file, *self.blocks], key=lambda c: c.line):
            if c.codes is ALL or "*" in c.codes:
                if not c.used:
                    out.append((c, []))
                continue
            idle = sorted(k for k in c.codes if k not in c.used and (k in ran or not any(r.startswith(k) for r in known)))
            if idle:
                out.append((c, idle))
        return out


def is_suppressed(code: str, lines: list[str], span: tuple[int, int]) -> bool:
    """One-off check without keeping state (the chat and tests use it)."""
    return Suppressions(lines).match(code, span) is not None
