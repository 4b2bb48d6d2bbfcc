"""Renderers (rich, Markdown, JSON), the ASCII chart and the persona layer."""

from __future__ import annotations

import io
import itertools
import re

import pytest

from advisor import persona
from advisor.answer import (
    MOODS,
    Alert,
    Answer,
    BarItem,
    Chart,
    Citation,
    CostLine,
    Provenance,
    Recommendation,
    Table,
)
from advisor.api import ask
from advisor.render import print_answer, render, to_json, to_markdown
from advisor.render.chart import bar_lines, render_chart

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sample(protocol: str = "audit", mood: str = "orange") -> Answer:
    return Answer(
        protocol=protocol, title="Sample answer", mood=mood, waste_pct=42.0, headline="Something to fix.",
        alerts=[Alert(code="INT8_MIXED", title="INT8 energy paradox", mood="orange", message="Mixed decomposition.",
                      fix="llm_int8_threshold=0.0", impact_pct=42.0)],
        warnings=["a warning"], errors=[],
        tables=[Table(title="Findings", columns=["line", "rule", "severity"], rows=[[12, "ECO101", "high"], [30, "ECO102", None]],
                      notes=["a note"])],
        charts=[Chart(title="Energy", metric="energy per 1k tokens", unit="J/1k tok", items=[
            BarItem(label="FP16", value=100.0, mood="green", annotation="$1/mo"),
            BarItem(label="INT8 mixed", value=200.0, mood="red", annotation="$2/mo", current=True)])],
        costs=[CostLine(label="now", kwh=10.0, usd=1.2, kg_co2=3.9, equivalents={"km_driven": 15.7, "smartphone_charges": 833})],
        recommendations=[Recommendation(title="Fix it", detail="Because.", code="x = 1", impact="-50%")],
        conversions=["10 kWh x $0.12/kWh = $1.20"], defaults_applied=["gpu: rtx4090d (default)"],
        provenance=[Provenance(subject="s", tier="measured", method="measured", confidence="high", row_ids=["r1"])],
        caveats=["a caveat"], citations=[Citation(kind="row", ref="r1")], voice=["Hello.", "Bye."],
    )


def test_chart_bars_are_relative_efficiency_and_mark_the_current_item():
    lines = bar_lines(sample().charts[0], width=20)
    assert "[====================]   100%" in lines[0][0] and lines[0][1] == "green"
    assert "[==========          ]    50%" in lines[1][0] and "<- you are here" in lines[1][0]
    assert "[Red]" in lines[1][0] and "$2/mo" in lines[1][0]
    assert render_chart(sample().charts[0]).startswith("Energy (bar = efficiency")


def test_markdown_is_generic_and_ordered():
    md = to_markdown(sample())
    assert md.index("Alert: INT8 energy paradox") < md.index("Something to fix.") < md.index("**Findings**")
    assert "| 12 | ECO101 | high |" in md and "| 30 | ECO102 | - |" in md
    assert "```python\nx = 1\n```" in md
    assert "<- you are here" in md and "r1" in md and "a caveat" in md
    assert md.rstrip().endswith("> Bye.")


def test_rich_has_mood_coloured_panel_only_when_colour_is_on():
    a = sample(mood="red")
    plain = render(a, "rich", width=100, color=False)
    assert not ANSI.search(plain)
    assert "EcoLobster - AUDIT: Sample answer" in plain and "mood: red" in plain and "<- you are here" in plain
    coloured = render(a, "rich", width=100, color=True)
    assert "\x1b[31m" in coloured  # red border


def test_rich_colour_auto_respects_no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ANSI.search(render(sample(), "rich"))


def test_json_round_trips_the_answer_model():
    a = sample()
    assert Answer.model_validate_json(to_json(a)) == a


def test_every_format_renders_real_answers_and_an_error():
    for text in ("Compare all 5 precisions for Qwen2.5-7B on RTX 5090.", "tell me about int4 on a gtx 1080"):
        a, _ = ask(text)
        for fmt in ("rich", "markdown", "json"):
            out = render(a, fmt, width=120, color=False)
            assert a.title in out


def test_unknown_format_is_a_clear_error():
    with pytest.raises(ValueError, match="Accepted: rich, markdown, json, html"):
        render(sample(), "pdf")  # type: ignore[arg-type]


def test_print_answer_to_a_console():
    from rich.console import Console

    buf = io.StringIO()
    print_answer(sample(), "rich", console=Console(file=buf, width=100, color_system=None))
    assert "Sample answer" in buf.getvalue()
    buf2 = io.StringIO()
    print_answer(sample(), "markdown", console=Console(file=buf2, width=100, color_system=None))
    assert "## Sample answer" in buf2.getvalue()


NUMBER_WORDS = re.compile(r"\d|[一二三四五六七八九十百千万亿两]|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|"
                          r"billion|half|twice|double)\b", re.IGNORECASE)


def test_voice_lines_never_carry_a_number():
    codes = [None, "INT8_MIXED", "FP8_EAGER", "NF4_SMALL", "BS1_PRODUCTION", "NIGHTLY_BUILD"]
    for mood, lang, code, proto in itertools.product(MOODS, ("en", "zh"), codes, ("compare", "error")):
        a = Answer(protocol=proto, title="t", mood=mood,
                   alerts=[Alert(code=code, title="t", mood=mood, message="m")] if code else [])
        lines = persona.lines_for(a, lang)
        assert lines
        for ln in lines:
            assert not NUMBER_WORDS.search(ln), (mood, lang, code, ln)


def test_persona_adds_words_only():
    a, _ = ask("I'm running load_in_8bit=True and my GPU bill is crazy high. Help!")
    again = persona.apply(a, "zh")
    assert again.voice != a.voice and again.lang == "zh"
    assert again.model_dump(exclude={"voice", "lang"}) == a.model_dump(exclude={"voice", "lang"})
    assert "混合精度分解" in again.voice[1]  # the alert's line, in Chinese


def test_rich_at_80_columns_fits_and_never_splits_a_word():
    from rich.cells import cell_len

    from advisor.audit import Auditor, load_settings
    from advisor.protocols.audit import report_to_answer

    compare, _ = ask("Compare all 5 precisions for Qwen2.5-7B on RTX 5090.")
    out = render(compare, "rich", width=80, color=False)
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    # the headers, the tier and the figures each survive whole
    for token in ("precision", "measured", "INT8", "5,331", "42,711", "(threshold=0.0)", "(load_in_8bit"):
        assert token in out, token  # a word cut by a line break or a border would not match
    assert "precision: FP16" in out and "J/1k tok: 5,331" in out  # a row as a block of "column: value"
    assert "tier: measured (every row)" in out  # the column every row shares became a note
    assert "Comparison: Qwen2.5-7B on NVIDIA GeForce RTX 5090, batch size 1" in out  # title kept whole

    path = "tests/corpus/audit/hf_fastapi_server.py"
    audit = report_to_answer(Auditor(load_settings([path])).audit_paths([path]), query={"paths": [path]}, subject=path)
    out = render(audit, "rich", width=80, color=False)
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    for token in ("ECO101", "ECO105", "measured", "INT8", "llm_int8_threshold=0.0", "eco-a800-mistral-7b-v0.1-int8_pure-bs1-20260226);",
                  "tests/corpus/audit/hf_fastapi_server.py:14"):
        assert token in out, token  # a word cut by a line break or a border would not match
    assert "INT8 mixed-precision decomposition (8-bit without threshold 0.0)" in out  # alert title not cut


def test_rich_keeps_the_table_when_it_fits():
    out = render(sample(), "rich", width=80, color=False)
    assert "┃ line ┃ rule   ┃ severity ┃" in out
