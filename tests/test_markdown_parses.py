"""Markdown output checked by a real CommonMark + GFM-tables parser (markdown-it-py, which rich
already depends on): every table parses as a table with the Answer's number of rows, captions are
paragraphs of their own, and code fences close with the code intact."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from advisor.answer import Answer, Recommendation, Table
from advisor.api import ask
from advisor.render import to_markdown

QUESTIONS = [
    "Lobster, I want to deploy Qwen2.5-3B on an RTX 5090. What's the greenest config?",
    "How much will Mistral-7B on A800 cost me for 1 million requests per month?",
    "Compare all 5 precisions for Qwen2.5-7B on RTX 5090.",
    "I'm running load_in_8bit=True and my GPU bill is crazy high. Help!",
    "Should I use FP8 on my Blackwell GPU? I heard it's faster.",
    "Lobster, tell me why 4-bit quantization is sometimes WORSE for energy.",
    "我想用Yi-6B跑100万字，要花多少钱？",
    "对比Qwen2.5-7B在RTX 5090上的全部5种精度",
    "LoRA or QLoRA for Llama-3.1-8B on a 24GB GPU?",
]


def _md() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _tables(tokens) -> list[int]:
    """Body-row count of each table in the token stream (a table with no body counts 0)."""
    counts: list[int] = []
    in_body = False
    for t in tokens:
        if t.type == "table_open":
            counts.append(0)
        elif t.type in ("tbody_open", "tbody_close"):
            in_body = t.type == "tbody_open"
        elif t.type == "tr_open" and in_body:
            counts[-1] += 1
    return counts


def _expected_tables(a: Answer) -> list[int]:
    expected = [len(t.rows) for t in a.tables]
    if a.costs:
        expected.append(len(a.costs))
    if a.provenance:
        expected.append(len(a.provenance))
    return expected


def _check(a: Answer) -> None:
    text = to_markdown(a)
    tokens = _md().parse(text)
    assert _tables(tokens) == _expected_tables(a), text
    # every caption is a paragraph of its own (an italic line inside a table cell would not be)
    paragraphs = {tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "paragraph_open"}
    for t in a.tables:
        for n in t.notes:
            if n:
                assert any(p.startswith("_") and n.split()[0] in p for p in paragraphs), n
    fences = [t for t in tokens if t.type == "fence"]
    codes = [r.code for r in a.recommendations if r.code]
    assert [f.content.rstrip("\n") for f in fences if f.info != "text"] == [c.rstrip("\n") for c in codes]
    assert len([f for f in fences if f.info == "text"]) == len(a.charts)


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_protocols_markdown_parses_as_written(question):
    a, _ = ask(question)
    _check(a)


def test_caption_under_a_table_is_not_a_row_and_backticks_in_code_close_the_fence():
    a = Answer(protocol="compare", title="t",
               tables=[Table(title="x", columns=["a", "b"], rows=[[1, 2], [3, 4]], notes=["a caption"])],
               recommendations=[Recommendation(title="r", code='s = """```"""\nprint(s)')])
    _check(a)
    assert _tables(_md().parse(to_markdown(a))) == [2]


def test_you_are_here_only_on_a_stated_configuration_and_percentages_carry_one_sign():
    bare, _ = ask("greenest config for Qwen2.5-7B on an RTX 5090?")
    assert not any(b.current for ch in bare.charts for b in ch.items)
    stated, _ = ask("greenest config for Qwen2.5-7B on an RTX 5090? I run FP16 at batch size 1")
    assert sum(b.current for ch in stated.charts for b in ch.items) == 1
    for a in (bare, stated):
        text = to_markdown(a)
        assert "by -" not in text and "by +" not in text
