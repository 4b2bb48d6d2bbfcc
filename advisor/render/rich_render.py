"""Answer -> rich terminal output: one panel whose border is the mood's colour, holding the alerts
first, then the headline, tables, the mood-annotated bar chart, money and carbon,
recommendations with code, and the provenance. Generic over protocols. rich is imported here,
lazily, so `import advisor` stays light."""

from __future__ import annotations

import io
import os
import sys
from typing import Any

from advisor.answer import Answer
from advisor.messages import t as msg
from advisor.render.chart import bar_lines, chart_head
from advisor.render.labels import label, value_word
from advisor.render.markdown import _cell

# Columns a panel takes from the console width: a border and a space of padding on each side.
PANEL_FRAME = 4
# Columns a rich table adds around its cells: one separator per column plus the closing one, and a
# space of padding either side of every cell.
TABLE_FRAME_PER_COL = 3

MOOD_STYLE = {"green": "green", "yellow": "yellow", "orange": "dark_orange", "red": "red", "gray": "grey58"}


def color_default(stream: Any = None) -> bool:
    """Colour unless NO_COLOR is set or the stream is not a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream or sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _longest_token(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(w) for w in text.split()), default=0)


def _table_min_width(columns: list[str], rows: list[list[str]]) -> int:
    """The narrowest the table can be without splitting a word: every column as wide as its longest
    token (header included)."""
    widths = [max([_longest_token(c)] + [_longest_token(r[i]) for r in rows if i < len(r)]) for i, c in enumerate(columns)]
    return sum(widths) + TABLE_FRAME_PER_COL * len(columns) + 1


def _pack(fields: list[str], width: int, sep: str = "   ") -> list[str]:
    """Greedily pack "label: value" fields into lines of at most `width` columns; a field longer
    than a line gets a line of its own (rich then wraps it between words)."""
    from rich.cells import cell_len

    lines: list[str] = []
    cur = ""
    for f in fields:
        if cur and cell_len(cur) + len(sep) + cell_len(f) <= width:
            cur += sep + f
        else:
            if cur:
                lines.append(cur)
            cur = f
    if cur:
        lines.append(cur)
    return lines


def table_parts(title: str, columns: list[str], rows: list[list[str]], notes: list[str], avail: int,
                lang: str | None = None) -> list[Any]:
    """A table as rich renderables that fit `avail` columns without breaking a word: the full table
    when it fits; else the same table without the columns whose value is the same on every row
    (said once, as a note); else one block per row: the first column's "column: value" in bold,
    the others' under it."""
    from rich.table import Table as RTable
    from rich.text import Text

    notes = [n for n in notes if n]
    if _table_min_width(columns, rows) > avail and len(rows) > 1:
        keep = [i for i, _ in enumerate(columns) if i == 0 or len({r[i] if i < len(r) else "" for r in rows}) > 1]
        if len(keep) < len(columns):
            same = [f"{columns[i]}: {rows[0][i]}" for i in range(len(columns)) if i not in keep]
            columns = [columns[i] for i in keep]
            rows = [[r[i] if i < len(r) else "" for i in keep] for r in rows]
            notes = notes + [label(lang, "every_row").format(same=msg(lang, "sep.clause").join(same))]
    out: list[Any] = []
    if _table_min_width(columns, rows) <= avail:
        rt = RTable(title=title, title_justify="left", show_lines=False, header_style="bold")
        for col in columns:
            rt.add_column(col, overflow="fold")
        for r in rows:
            rt.add_row(*r)
        out.append(rt)
    else:
        from rich.padding import Padding

        out.append(Text(title, style="bold italic"))
        for r in rows:
            out.append(Text(f"{columns[0]}: {r[0] if r else '-'}", style="bold"))
            fields = [f"{c}: {v}" for c, v in zip(columns[1:], r[1:], strict=False) if v not in ("", "-")]
            # indented as a block, so a field that wraps stays under its row
            out += [Padding(Text(line), (0, 0, 0, 2)) for line in _pack(fields, avail - 2)]
    out += [Text(n, style="dim") for n in notes]
    return out


Detail = str  # "full" | "brief" | "rest"
DETAILS: tuple[str, ...] = ("full", "brief", "rest")
# The first screen: the summary of a brief answer fits this many lines (a 24-line terminal less
# the prompt and the hint), so the point never scrolls off.
BRIEF_LINES = 20


def _lines(renderable: Any, width: int) -> int:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None, no_color=True,
                      highlight=False, emoji=False, legacy_windows=False)
    with console.capture() as cap:
        console.print(renderable)
    return cap.get().count("\n")


def _head(a: Answer, avail: int, style: str, compact: bool) -> list[Any]:
    """What comes first in every form: what was not understood, errors, alerts, the headline."""
    from rich.cells import cell_len
    from rich.panel import Panel
    from rich.text import Text

    def L(key: str) -> str:
        return label(a.lang, key)

    parts: list[Any] = []
    if a.not_understood:  # before the answer: the user must see what it does not account for
        parts.append(Text(L("not_understood") + ":\n" + "\n".join(f"- {n}" for n in a.not_understood), style="bold yellow"))
    for e in a.errors:
        parts.append(Text(f"{L('error')}: {e}", style="bold red"))
    for al in a.alerts:
        if compact:
            # two lines at most: the title, then as much of the message (where, how much) as fits
            t = Text(f"! {al.title}: ", style=f"bold {MOOD_STYLE.get(al.mood, 'grey58')}")
            room = 2 * avail - cell_len(t.plain) - 2
            msg = al.message if cell_len(al.message) <= room else al.message[: max(0, room - 1)].rstrip() + "…"
            t.append(msg)
            parts.append(t)
            continue
        title = f"{L('alert')}: {al.title} ({al.code})"
        body = Text()
        # rich cuts a title longer than the border with an ellipsis: move it into the body instead
        if cell_len(title) > avail - PANEL_FRAME - 2:
            body.append(al.title + "\n", style="bold")
            title = f"{L('alert')} ({al.code})"
        body.append(al.message)
        if al.fix:
            body.append(f"\n{L('quick_fix')}: ", style="bold")
            body.append(al.fix, style="cyan")
        parts.append(Panel(body, title=title, border_style=MOOD_STYLE.get(al.mood, "grey58"), title_align="left"))
    if a.headline:
        line = Text(a.headline, style="bold")
        if a.stated_waste() is not None:
            line.append(f"  ({L('waste')}: {a.stated_waste():+.1f}%)", style=style)
        parts.append(line)
    return parts


def _recommendation(a: Answer, r: Any, full: bool) -> Any:
    from rich.text import Text

    t = Text()
    t.append(f"> {r.title}\n", style="bold green")
    if full and r.detail:
        t.append(r.detail + "\n")
    if r.impact:
        t.append(f"{label(a.lang, 'impact')}: {r.impact}\n", style="green")
    if full and r.code:
        t.append(r.code + "\n", style="cyan")
    t.rstrip()
    return t


def _table(a: Answer, t: Any, avail: int, max_rows: int | None = None) -> list[Any]:
    rows = [[_cell(v) for v in r] for r in t.rows]
    notes = list(t.notes)
    if max_rows is not None and len(rows) > max_rows:
        notes = [label(a.lang, "more_rows").format(n=len(rows) - max_rows)]
        rows = rows[:max_rows]
    return table_parts(t.title, [str(c) for c in t.columns], rows, notes, avail, a.lang)


def _rest(a: Answer, avail: int, style: str, skip_first_table: bool = False) -> list[Any]:
    """Everything after the point: warnings, tables, charts, money, recommendations with code,
    conversions, defaults, caveats, provenance and sources."""
    from rich.cells import cell_len
    from rich.text import Text

    def L(key: str) -> str:
        return label(a.lang, key)

    parts: list[Any] = []
    for w in a.warnings:
        parts.append(Text(f"{L('warning')}: {w}", style="yellow"))
    for t in a.tables[1 if skip_first_table else 0:]:
        parts += _table(a, t, avail)
    for ch in a.charts:
        txt = Text(chart_head(ch, a.lang) + "\n", style="bold")
        lines = bar_lines(ch, lang=a.lang)
        if any(cell_len(line) > avail for line, _ in lines):
            lines = bar_lines(ch, lang=a.lang, stacked=True)
        for line, mood in lines:
            txt.append(line + "\n", style=MOOD_STYLE.get(mood, ""))
        parts.append(txt)
    if a.costs:
        rows = []
        for c in a.costs:
            eq = c.equivalents
            rows.append([c.label, f"{c.kwh:,.3g}", f"{c.usd:,.2f}", f"{c.kg_co2:,.3g}", f"{eq.get('km_driven', 0):,.3g}",
                         f"{eq.get('smartphone_charges', 0):,.3g}"])
        parts += table_parts(L("money"), [L("configuration"), "kWh", "$", "kgCO2", L("km"), L("phones")], rows,
                             [a.costs[0].basis], avail, a.lang)
    for r in a.recommendations:
        parts.append(_recommendation(a, r, full=True))
    for key, items in (("derived", a.conversions), ("defaults", a.defaults_applied), ("caveats", a.caveats)):
        if items:
            t = Text(L(key) + "\n", style="bold")
            for it in items:
                t.append(f"- {it}\n", style="dim" if key != "caveats" else "")
            parts.append(t)
    if a.provenance:
        t = Text(L("provenance") + "\n", style="bold")
        for p in a.provenance:
            ids = ", ".join(p.row_ids[:3]) + (" ..." if len(p.row_ids) > 3 else "")
            tier, conf = value_word(a.lang, "tier", p.tier), value_word(a.lang, "confidence", p.confidence)
            t.append(f"- {p.subject}: {tier} ({conf}) - {p.method}" + (f" [{ids}]" if ids else "") + "\n",
                     style="dim")
        parts.append(t)
    if a.citations:
        refs = ", ".join(c.ref for c in a.citations[:12]) + (
            " " + L("more_refs").format(n=len(a.citations) - 12) if len(a.citations) > 12 else "")
        parts.append(Text(f"{L('sources')}: {refs}", style="dim"))
    for v in a.voice[1:]:
        parts.append(Text(v, style=style))
    return parts


def _brief(a: Answer, avail: int, width: int, style: str, more_hint: str, extra_lines: int = 0) -> list[Any]:
    """The point first, within BRIEF_LINES lines at this width: what was not understood, errors,
    alerts (one line each), the headline, the recommendation and its key figures, and one table
    (cut to the rows that fit); then a hint naming what `more_hint` shows."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    head = _head(a, avail, style, compact=True)
    rec = [_recommendation(a, a.recommendations[0], full=False)] if a.recommendations else []
    hidden = len(a.tables) + len(a.charts) + len(a.recommendations) + bool(a.costs) + bool(a.provenance)
    hint = [Text(label(a.lang, "more_hint").format(how=more_hint), style="dim")] if hidden else []
    voice = [Text(a.voice[0], style=f"bold {style}")] if a.voice else []

    def fits(parts: list[Any]) -> bool:
        return _lines(Panel(Group(*parts)), width) + extra_lines <= BRIEF_LINES

    # the persona line stays unless even the point without a table cannot fit beside it; then the
    # table keeps as many rows as fit
    if voice and not fits(voice + head + rec + hint):
        voice = []
    table: list[Any] = []
    if a.tables:
        t = a.tables[0]
        for n in range(len(t.rows), 0, -1):
            cand = _table(a, t, avail, max_rows=n)
            if fits(voice + head + rec + cand + hint):
                table = cand
                break
    # the persona's sign-off closes the first screen when there is room for it
    closing = [Text(v, style=style) for v in a.voice[1:]]
    if closing and not fits(voice + head + rec + table + hint + closing):
        closing = []
    return voice + head + rec + table + hint + closing


def renderable(answer: Answer, width: int = 100, detail: Detail = "full", more_hint: str = "--detail full"):
    """The answer as one rich Panel laid out for a console `width` columns wide. `detail`: "full"
    (everything, the point first), "brief" (the first screen only, ending with a hint that
    `more_hint` shows the rest) or "rest" (what "brief" left out)."""
    from rich.cells import cell_len
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    if detail not in DETAILS:
        raise ValueError(f"unknown detail '{detail}'. Accepted: {', '.join(DETAILS)}")
    a = answer
    avail = max(20, width - PANEL_FRAME)
    style = MOOD_STYLE.get(a.mood, "grey58")
    # the rest of an answer says it continues one, so it never reads as a new answer
    cont = f" ({label(a.lang, 'continued')})" if detail == "rest" else ""
    title = f"EcoLobster - {a.protocol.upper()}{cont}: {a.title}"
    long_title = cell_len(title) > avail - 2
    if detail == "brief":
        parts = _brief(a, avail, width, style, more_hint,
                       extra_lines=_lines(Text(a.title), avail) if long_title else 0)
    elif detail == "rest":
        parts = _rest(a, avail, style)
    else:
        parts = ([Text(a.voice[0], style=f"bold {style}")] if a.voice else []) + _head(a, avail, style, compact=False)
        parts += _rest(a, avail, style)
    if long_title:
        # too long for the border (rich would cut it mid-word): the full title opens the body
        parts.insert(0, Text(a.title, style="bold"))
        title = f"EcoLobster - {a.protocol.upper()}{cont}"
    return Panel(Group(*parts), title=title, title_align="left",
                 border_style=style, subtitle=f"{label(a.lang, 'mood')}: {msg(a.lang, f'mood.{a.mood}')}", subtitle_align="right")


def to_rich(answer: Answer, width: int = 100, color: bool | None = None, detail: Detail = "full",
            more_hint: str = "--detail full") -> str:
    from rich.console import Console

    if color is None:
        color = color_default()
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, color_system="standard" if color else None,
                      no_color=not color, highlight=False, emoji=False, legacy_windows=False)
    console.print(renderable(answer, width, detail, more_hint))
    return buf.getvalue()
