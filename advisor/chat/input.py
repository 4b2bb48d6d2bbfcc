"""Input handling: cleaning typed or piped text, telling code from questions, and splitting piped
input into questions and code blocks as it streams in."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

_FENCE = "```"
_FENCED = re.compile(r"```[\w+-]*[^\S\n]*\n(.*?)(?:\n[^\S\n]*```|\Z)", re.S)
_CODE_LINE = re.compile(
    r"""^\s*(?:
        import\s+\w | from\s+[\w.]+\s+import\b | def\s+\w | class\s+\w | @\w | async\s+def\b
        | (?:if|for|while|with|try|elif|else|except|finally|return)\b.*:?\s*$
        | [A-Za-z_][\w.\[\]'"]*\s*(?:=|\+=|-=)\s*\S
        | [A-Za-z_][\w.]*\(.*\)\s*$
    )""",
    re.X,
)


def fence_open(text: str) -> bool:
    """True while a ``` code fence is open: Enter then adds a line instead of sending."""
    return text.count(_FENCE) % 2 == 1


def looks_like_code_line(line: str) -> bool:
    return bool(_CODE_LINE.match(line)) or line.lstrip().startswith(_FENCE)


def extract_code(text: str) -> str | None:
    """The code in `text` if it is (or contains) a code block, else None.

    Fenced blocks are code by declaration. Unfenced text is code when it has at least two
    non-empty lines and either parses as Python or is mostly lines that read like code (a paste
    with a syntax error is still code the auditor should see).
    """
    if _FENCE in text:
        blocks = [b.strip("\n") for b in _FENCED.findall(text)]
        blocks = [b for b in blocks if b.strip()]
        return "\n\n".join(blocks) if blocks else None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        tree = None
    if tree is not None and any(not isinstance(n, ast.Expr) for n in tree.body):
        return text
    codeish = sum(looks_like_code_line(ln) or ln[:1] in (" ", "\t") for ln in lines)
    return text if codeish * 2 > len(lines) else None


def clean_text(text: str) -> str:
    """Drop control characters (keeping newlines and tabs) and normalise line endings."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def reads_like_prose(line: str) -> bool:
    """A line that ends a code block when it follows one: a question, Chinese text, a command."""
    stripped = line.strip()
    return stripped.startswith("/") or stripped.endswith(("?", "？")) or bool(_CJK.search(stripped))


def _bracket_balance(line: str) -> int:
    code = line.split("#", 1)[0]  # rough: a '#' inside a string cuts it short, which only ends a block early
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


def _parses(text: str) -> bool:
    import ast

    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _ends_code(block: list[str], line: str) -> bool:
    """True when `block` is complete Python and `line` would break it: the line is not code."""
    text = "\n".join(block)
    return _parses(text) and not _parses(text + "\n" + line)


def iter_units(lines: Iterable[str]) -> Iterator[str]:
    """Split piped input into questions, as it streams in.

    A plain line is a question of its own and is yielded at once. A line that opens a ``` fence
    or reads like code starts a block; the block is yielded whole (it will be audited) when the
    fence closes, or when a question, a command or, after a blank line, a line that does not read
    like code comes next (never while a bracket is still open).
    """
    block: list[str] = []
    in_fence = False
    pending_blank = False
    depth = 0

    def flush() -> Iterator[str]:
        nonlocal block, depth
        if block:
            text = "\n".join(block).strip("\n")
            block, depth = [], 0
            if text.strip():
                yield text

    for raw in lines:
        line = raw.rstrip("\r\n")
        if in_fence:
            block.append(line)
            if line.strip().startswith(_FENCE):
                in_fence = False
                yield from flush()
            continue
        if not line.strip():
            if block:
                pending_blank = True
            continue
        if block:
            codeish = (looks_like_code_line(line) or line[:1] in (" ", "\t")
                       or line.lstrip().startswith(("#", ")", "]", "}")))
            if depth > 0 or codeish or not (pending_blank or reads_like_prose(line) or _ends_code(block, line)):
                if pending_blank:
                    block.append("")
                pending_blank = False
                block.append(line)
                depth += _bracket_balance(line)
                continue
            # A question or prose after a code block: the block is done; this line is new.
            pending_blank = False
            yield from flush()
        if line.strip().startswith(_FENCE):
            block.append(line)
            in_fence = line.count(_FENCE) % 2 == 1
            if not in_fence:
                yield from flush()
            continue
        if looks_like_code_line(line) and not line.lstrip().startswith("/"):
            block.append(line)
            depth = _bracket_balance(line)
            continue
        yield line
    yield from flush()
