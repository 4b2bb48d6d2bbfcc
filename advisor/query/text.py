"""Text helpers: normalising English/Chinese text, Chinese numerals, cleaning bytes that are not text,
reading a stated number safely, and blanking what a reader has taken."""

from __future__ import annotations

import math
import re
import unicodedata

from advisor.query.slots import Lang, QueryError

# Unit definitions (not measurements): decimal multipliers and the mean Gregorian month.
_MULT = {
    "k": 1e3, "thousand": 1e3, "千": 1e3,
    "m": 1e6, "mn": 1e6, "million": 1e6, "百万": 1e6, "mil": 1e6,
    "b": 1e9, "bn": 1e9, "billion": 1e9,
    "万": 1e4, "wan": 1e4, "千万": 1e7, "亿": 1e8, "yi": 1e8,
}


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


_CN_UNITS = {"十": 10, "百": 100, "千": 1000}


_CN_BIG = {"万": 10**4, "亿": 10**8}


def _cn_to_int(s: str) -> int | None:
    """Chinese numerals ("一百万", "三千", "十") -> int; None when `s` is not one."""
    if not s or any(c not in _CN_DIGITS and c not in _CN_UNITS and c not in _CN_BIG for c in s):
        return None
    total, section, digit = 0, 0, None
    for c in s:
        if c in _CN_DIGITS:
            digit = _CN_DIGITS[c]
        elif c in _CN_UNITS:
            section += (digit if digit is not None else 1) * _CN_UNITS[c]
            digit = None
        else:
            section += digit or 0
            total = (total + section) * _CN_BIG[c]
            section, digit = 0, None
    return total + section + (digit or 0)


_CN_NUM_RE = re.compile(r"[零〇一二两三四五六七八九十百千]+(?:[万亿][零〇一二两三四五六七八九十百千]*)*[万亿]?")


def _replace_cn_numerals(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        s = m.group(0)
        # keep a trailing 万/亿 as a multiplier word so "一百万字" reads like "100万字"
        tail = ""
        if s[-1] in _CN_BIG and len(s) > 1:
            s, tail = s[:-1], s[-1]
        if s in ("一", "两") and not tail:  # "一个", "一下": an article, not a quantity
            return m.group(0)
        v = _cn_to_int(s)
        return f"{v}{tail}" if v is not None else m.group(0)

    return _CN_NUM_RE.sub(sub, text)


def normalize_text(text: str) -> str:
    """NFKC (full-width -> ASCII), lower case, Chinese numerals -> digits, CJK spaced from Latin."""
    # a Chinese comma separates list items: "RTX 4090，5000 条" is not the number 4,090,5000
    t = unicodedata.normalize("NFKC", (text or "").replace("，", ", ").replace("、", ", "))
    t = t.replace("\u3000", " ").lower()
    t = _replace_cn_numerals(t)
    # a space between CJK and Latin/digits, so "在RTX 5090上" reads as words (a loop: a regex with
    # CJK ranges costs milliseconds to compile in every fresh process)
    out: list[str] = []
    prev = ""
    for ch in t:
        if prev and ((_is_cjk(prev) and (ch.isascii() and (ch.isalnum() or ch == "$")))
                     or (_is_cjk(ch) and prev.isascii() and (prev.isalnum() or prev in "%)"))):
            out.append(" ")
        out.append(ch)
        prev = ch
    return " ".join("".join(out).split())


def clean_text(text: str) -> str:
    """Text that can always be printed and serialised: lone surrogates (bytes that were not UTF-8)
    and control characters other than newlines and tabs become U+FFFD / spaces."""
    if text.isascii() and text.isprintable():
        return text
    t = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() or ch in "\n\t" else ("\ufffd" if unicodedata.category(ch) == "Cs" else " ")
                   for ch in t)


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u4dbf" or "\u4e00" <= ch <= "\u9fff"


def has_cjk(text: str) -> bool:
    return any(_is_cjk(ch) for ch in text)


# a number that does not start inside a word ("a800" holds no quantity)
_NUM = r"(?<![a-z0-9_.])((?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+)"


_MULT_RE = r"(?:\s*(thousand|million|billion|mil|mn|bn|k|m|b|千万|百万|万|亿|千|wan|yi)(?![a-z]))?"


def _number(num: str, mult: str | None = None) -> float:
    """A stated number with its multiplier word; an absurd one (a 400-digit "size") is a QueryError."""
    digits = num.replace(",", "")
    if len(digits) > 24:
        raise QueryError([f"the number '{digits[:12]}...' ({len(digits)} digits) is too long to be a real quantity"])
    v = float(digits) * _MULT.get((mult or "").strip(), 1.0)
    if not math.isfinite(v):
        raise QueryError([f"the number '{num}' is too large to be a real quantity"])
    return v


def _int(num: str, mult: str | None = None) -> int:
    return int(_number(num, mult))


def _fmt(v: float) -> str:
    """A readable number for conversion lines."""
    if v >= 100 or v == int(v):
        return f"{v:,.0f}"
    return f"{v:,.3g}"


def _mentions(text: str, *words: str) -> bool:
    """A cheap substring test that decides whether a (costly to compile) pattern is worth trying."""
    return any(w in text for w in words)


def _blank(text: str, m: re.Match[str] | tuple[int, int]) -> str:
    """Remove a matched span so later rules do not read it twice (and what is left over can be
    reported as not understood)."""
    start, end = (m.start(), m.end()) if isinstance(m, re.Match) else m
    return text[:start] + " " * (end - start) + text[end:]


def _detect_lang(text: str) -> Lang:
    return "zh" if has_cjk(text or "") else "en"
