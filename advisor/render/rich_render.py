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
from advisor.render.chart import bar_lines, chart_head
from advisor.render.labels import label
from advisor.render.markdown import _cell

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


def renderable(answer: Answer):
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table as RTable
    from rich.text import Text

    a = answer

    def L(key: str) -> str:
        return label(a.lang, key)

    style = MOOD_STYLE.get(a.mood, "grey58")
    parts: list[Any] = []
    if a.voice:
        parts.append(Text(a.voice[0], style=f"bold {style}"))
    for al in a.alerts:
        body = Text(al.message)
        if al.fix:
            body.append(f"\n{L('quick_fix')}: ", style="bold")
            body.append(al.fix, style="cyan")
        parts.append(Panel(body, title=f"{L('alert')}: {al.title} ({al.code})", border_style=MOOD_STYLE.get(al.mood, "grey58"),
                           title_align="left"))
    if a.headline:
        line = Text(a.headline, style="bold")
        if a.waste_pct is not None:
            line.append(f"  ({L('waste')}: {a.waste_pct:+.1f}%)", style=style)
        parts.append(line)
    for e in a.errors:
        parts.append(Text(f"{L('error')}: {e}", style="bold red"))
    for w in a.warnings:
        parts.append(Text(f"{L('warning')}: {w}", style="yellow"))
    for t in a.tables:
        rt = RTable(title=t.title, title_justify="left", show_lines=False, header_style="bold")
        for col in t.columns:
            rt.add_column(str(col), overflow="fold")
        for r in t.rows:
            rt.add_row(*(_cell(v) for v in r))
        parts.append(rt)
        for n in t.notes:
            if n:
                parts.append(Text(n, style="dim"))
    for ch in a.charts:
        txt = Text(chart_head(ch, a.lang) + "\n", style="bold")
        for line, mood in bar_lines(ch, lang=a.lang):
            txt.append(line + "\n", style=MOOD_STYLE.get(mood, ""))
        parts.append(txt)
    if a.costs:
        ct = RTable(title=L("money"), title_justify="left", header_style="bold")
        for col in (L("configuration"), "kWh", "$", "kgCO2", L("km"), L("phones")):
            ct.add_column(col, overflow="fold")
        for c in a.costs:
            eq = c.equivalents
            ct.add_row(c.label, f"{c.kwh:,.3g}", f"{c.usd:,.2f}", f"{c.kg_co2:,.3g}", f"{eq.get('km_driven', 0):,.3g}",
                       f"{eq.get('smartphone_charges', 0):,.3g}")
        parts.append(ct)
        if a.costs[0].basis:
            parts.append(Text(a.costs[0].basis, style="dim"))
    for r in a.recommendations:
        t = Text()
        t.append(f"> {r.title}\n", style="bold green")
        if r.detail:
            t.append(r.detail + "\n")
        if r.impact:
            t.append(f"{L('impact')}: {r.impact}\n", style="green")
        if r.code:
            t.append(r.code + "\n", style="cyan")
        parts.append(t)
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
            t.append(f"- {p.subject}: {p.tier} ({p.confidence}) - {p.method}" + (f" [{ids}]" if ids else "") + "\n",
                     style="dim")
        parts.append(t)
    if a.citations:
        refs = ", ".join(c.ref for c in a.citations[:12]) + (f" (+{len(a.citations) - 12} more)" if len(a.citations) > 12 else "")
        parts.append(Text(f"{L('sources')}: {refs}", style="dim"))
    for v in a.voice[1:]:
        parts.append(Text(v, style=style))
    return Panel(Group(*parts), title=f"EcoLobster - {a.protocol.upper()}: {a.title}", title_align="left",
                 border_style=style, subtitle=f"{L('mood')}: {a.mood}", subtitle_align="right")


def to_rich(answer: Answer, width: int = 100, color: bool | None = None) -> str:
    from rich.console import Console

    if color is None:
        color = color_default()
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, color_system="standard" if color else None,
                      no_color=not color, highlight=False, emoji=False, legacy_windows=False)
    console.print(renderable(answer))
    return buf.getvalue()
