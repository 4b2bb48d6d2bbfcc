"""Which rules can fire on a Python text, decided before parsing it.

Each rule declares trigger tokens (`@rule(..., tokens=...)`): words without which it cannot
report anything in a Python file (the call names it reads, the keyword it looks for). A file in
whose code none of a rule's tokens occur is not handed to that rule, and a file no rule wants is
not parsed at all: parsing and the AST walk are most of an audit's time, and most library code
holds none of the words.

Tokens are matched in the file's *code*: comments and string statements (docstrings) are left
out, because nothing there reaches a rule. Other strings stay (a dict key "load_in_8bit", an
install command). The lexer is a regular expression over string literals and comments; where it
can be wrong (invalid code, unusual f-strings) it keeps text, never drops it, so the filter only
ever lets more files through.

Token syntax (case is ignored): `word` matches the whole identifier-like word (not inside `training` for `train`);
`word*` matches words that start with it (`cuda*` matches "cuda:0"); `*word*` matches anywhere
(`*fp8*` in "e4m3_fp8"). A rule may give groups:
every group must match (`[("use_cache",), ("generate", "pipeline")]`); a plain list of words is
one group. A rule without tokens sees every file.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A string literal (any prefix, triple or single quoted; an unterminated triple quote runs to the
# end) or a comment, whichever starts first: a left-to-right scan sees them as the tokenizer does.
_LEX = re.compile(
    r"""\#[^\r\n]*"""
    r"""|\"\"\"[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:\"\"\"|\Z)"""
    r"""|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*(?:'''|\Z)"""
    r"""|"[^"\\\r\n]*(?:\\.[^"\\\r\n]*)*(?:"|(?=[\r\n])|\Z)"""
    r"""|'[^'\\\r\n]*(?:\\.[^'\\\r\n]*)*(?:'|(?=[\r\n])|\Z)""",
    re.S)
_PREFIX = re.compile(r"[rRbBuUfF]{1,2}\Z")
# What may follow a string statement on its line: blanks, a comment, the end of the line.
_STMT_END = re.compile(r"[ \t\f]*(?:#[^\r\n]*)?(?:\r?\n|\r|\Z)")
_WORDCHAR = "A-Za-z0-9_"
TokenGroups = tuple[tuple[str, ...], ...]


def normalize_tokens(tokens: Iterable[str] | Iterable[Iterable[str]] | None) -> TokenGroups | None:
    """`tokens` as a rule declares them -> groups of words (None: the rule sees every file)."""
    if tokens is None:
        return None
    items = list(tokens)
    if not items:
        raise ValueError("tokens must name at least one word (leave tokens out for a rule that reads every file)")
    groups = [tuple(g) for g in ([items] if all(isinstance(t, str) for t in items) else items)]
    for g in groups:
        if not g or not all(isinstance(t, str) for t in g):
            raise ValueError(f"each token group must be a non-empty list of words, got {g!r}")
        for t in g:
            if not re.fullmatch(r"\*?[A-Za-z0-9_.\-]+\*?", t) or (t.startswith("*") and not t.endswith("*")):
                raise ValueError(f"token {t!r}: use a word (letters, digits, _ . -), `word*` for a prefix or "
                                 "`*word*` for a substring")
    return tuple(groups)


def code_text(text: str) -> str:
    """`text` without its comments and string statements (docstrings); every other string stays.
    Removed stretches become a newline, so no word is glued to another."""
    out: list[str] = []
    pos = 0  # where the text not yet copied to `out` starts
    depth = 0  # bracket depth of the code counted so far
    gaps: list[tuple[int, int]] = []  # code stretches not yet counted into depth
    last = 0
    for m in _LEX.finditer(text):
        start = m.start()
        if last < start:
            gaps.append((last, start))
        last = m.end()
        if text[start] == "#":
            out.append(text[pos:start])
            out.append("\n")
            pos = last
            continue
        line_start = text.rfind("\n", 0, start) + 1
        lead = text[line_start:start].lstrip(" \t\f")
        if lead and not (_PREFIX.match(lead) and "f" not in lead.lower()):
            continue  # code precedes it on its line (an expression), or it is an f-string (which holds code)
        if not _STMT_END.match(text, last):
            continue  # something follows it: `"""x""".format(...)`, a comma, a backslash
        before = line_start - 1
        if before > 0 and text[before - 1] == "\r":
            before -= 1
        if before > 0 and text[before - 1] == "\\":
            continue  # the previous line continues into this one
        if gaps:
            chunk = "".join(text[a:b] for a, b in gaps)
            depth += (chunk.count("(") + chunk.count("[") + chunk.count("{")
                      - chunk.count(")") - chunk.count("]") - chunk.count("}"))
            gaps.clear()
        if depth > 0:
            continue  # inside brackets: an argument or list item, not a statement
        out.append(text[pos:start])
        out.append("\n")
        pos = last
    out.append(text[pos:])
    return "".join(out)


_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@functools.lru_cache(maxsize=512)
def _right_bounded(lit: str) -> re.Pattern[str]:
    # The literal first, so the search skips ahead to it; the left boundary is checked by hand
    # (a pattern that starts with a look-behind is tried at every offset).
    return re.compile(re.escape(lit) + rf"(?![{_WORDCHAR}])")


def has_word(text: str, token: str) -> bool:
    """Does lower-cased `token` occur in `text` as a word (`word*`: as the start of one,
    `*word*`: anywhere)?"""
    lit = token.strip("*").lower()
    if token.startswith("*"):
        return lit in text
    if token.endswith("*"):
        i = text.find(lit)
        while i != -1:
            if i == 0 or text[i - 1] not in _WORD:
                return True
            i = text.find(lit, i + 1)
        return False
    for m in _right_bounded(lit).finditer(text):
        i = m.start()
        if i == 0 or text[i - 1] not in _WORD:
            return True
    return False


def _anchors(words: list[str]) -> dict[str, list[str]]:
    """Words that contain another word (`save_pretrained` holds `save`) are searched for only
    where that one occurs."""
    lits = sorted({w.strip("*").lower() for w in words}, key=len)
    anchors: dict[str, list[str]] = {}
    for w in lits:
        home = next((a for a in anchors if a in w), w)
        anchors.setdefault(home, []).append(w)
    return anchors


def _with_nfkc(low: str) -> str:
    """Python reads identifiers NFKC-normalized (a full-width `ｇｅｎｅｒａｔｅ` is `generate`):
    where that changes the text, search both forms."""
    if low.isascii() or unicodedata.is_normalized("NFKC", low):
        return low
    return low + "\n" + unicodedata.normalize("NFKC", low).lower()


@dataclass(frozen=True)
class _Entry:
    code: str
    groups: TokenGroups


class Prefilter:
    """The rules (codes) that can fire on a Python text, from their declared tokens."""

    def __init__(self, rules: Sequence[object]):
        self.always: frozenset[str] = frozenset(
            r.code for r in rules if getattr(r, "tokens", None) is None)  # type: ignore[attr-defined]
        # groups with fewer words first: the rarest condition usually fails first, sparing searches
        self.entries = [_Entry(r.code, tuple(sorted(r.tokens, key=len)))  # type: ignore[attr-defined]
                        for r in rules if getattr(r, "tokens", None) is not None]
        words = sorted({t for e in self.entries for g in e.groups for t in g})
        self.literal = {t: t.strip("*").lower() for t in words}
        anchors = _anchors(words)
        self.anchor_of = {lit: a for a, lits in anchors.items() for lit in lits}

    def _candidates(self, test) -> list[_Entry]:  # noqa: ANN001 - (token) -> bool
        return [e for e in self.entries if all(any(test(t) for t in g) for g in e.groups)]

    def rules_for(self, text: str) -> frozenset[str]:
        """Codes of the rules that may report something in Python source `text`."""
        if not self.entries:
            return self.always
        low = text.lower()  # tokens match whatever the case (rules compare lower-cased dtypes and names)
        plain = _with_nfkc(low)
        seen: dict[str, bool] = {}

        def substring(t: str) -> bool:  # cheap first: a superset of word matches in the code
            lit = self.literal[t]
            hit = seen.get(lit)
            if hit is None:
                a = self.anchor_of[lit]
                if a not in seen:
                    seen[a] = a in plain
                hit = seen[lit] = seen[a] and (a == lit or lit in plain)
            return hit

        cands = self._candidates(substring)
        if not cands:
            return self.always
        words = {t: has_word(plain, t) for e in cands for g in e.groups for t in g if substring(t)}
        cands = [e for e in cands if all(any(words.get(t, False) for t in g) for g in e.groups)]
        if not cands:
            return self.always
        code = _with_nfkc(code_text(low))
        found = {t: has_word(code, t) for t, ok in words.items() if ok}
        return self.always | {e.code for e in cands if all(any(found.get(t, False) for t in g) for g in e.groups)}
