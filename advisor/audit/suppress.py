"""Inline suppressions: `# eco: ignore[ECO101]`, `# eco: ignore[ECO101, ECO205]`, or a bare
`# eco: ignore` that silences every rule on that line. A suppression counts on any line of the
statement a finding points at (the first line of a multi-line call works)."""

from __future__ import annotations

import re

_SUPPRESS = re.compile(r"#\s*eco\s*:\s*ignore\b(?:\[([^\]]*)\])?", re.I)
ALL = frozenset({"*"})


def codes_on(line: str) -> frozenset[str] | None:
    """Codes suppressed on this line (ALL for a bare ignore), None when there is no comment."""
    if "eco" not in line:
        return None
    m = _SUPPRESS.search(line)
    if not m:
        return None
    if m.group(1) is None:
        return ALL
    codes = frozenset(c.strip().upper() for c in re.split(r"[,\s]+", m.group(1)) if c.strip())
    return codes or ALL


def is_suppressed(code: str, lines: list[str], span: tuple[int, int]) -> bool:
    start, end = span
    for n in range(max(1, start), min(len(lines), end) + 1):
        codes = codes_on(lines[n - 1])
        if codes is not None and (codes is ALL or "*" in codes or code in codes):
            return True
    return False
