"""The mood-annotated ASCII bar chart shared by every renderer.

Bars show relative efficiency: the best item (lowest energy) is a full bar at 100%, an item that
spends twice as much gets half a bar at 50%. Each line ends with the item's annotation and mood.
"""

from __future__ import annotations

from advisor.answer import Chart
from advisor.messages import has, t
from advisor.render.labels import label

BAR_WIDTH = 20  # characters of a full bar (layout, not a figure)


def mood_tag(mood: str, lang: str | None = "en") -> str:
    """The mood as a tag, '[Green]' or '[绿色]' (the catalog's `mood_tag`)."""
    return t(lang, f"mood_tag.{mood}") if has(f"mood_tag.{mood}") else ""


def bar_lines(chart: Chart, width: int = BAR_WIDTH, lang: str = "en", stacked: bool = False) -> list[tuple[str, str]]:
    """(text, mood) per item: `label: [=====     ] 50%  annotation [Mood] <- you`. `stacked` puts
    the label on a line of its own and the bar, indented, under it (for narrow terminals)."""
    if not chart.items:
        return []
    vals = [it.value for it in chart.items]
    best = min(vals) if chart.lower_is_better else max(vals)
    label_w = max(len(it.label) for it in chart.items)
    out = []
    for it in chart.items:
        if it.value <= 0 or best <= 0:
            rel = 0.0
        else:
            rel = best / it.value if chart.lower_is_better else it.value / best
        n = max(1, round(rel * width)) if rel > 0 else 0
        bar = "=" * n + " " * (width - n)
        head = f"{it.label}\n  " if stacked else f"{it.label.ljust(label_w)} "
        text = f"{head}[{bar}] {rel * 100:5.0f}%"
        if it.annotation:
            text += f"  {it.annotation}"
        text += f"  {mood_tag(it.mood, lang)}"
        if it.current:
            text += f"  {label(lang, 'here')}"
        out.append((text, it.mood))
    return out


def chart_head(chart: Chart, lang: str = "en") -> str:
    return f"{chart.title} ({label(lang, 'bar')}; {chart.metric}, {chart.unit})"


def render_chart(chart: Chart, width: int = BAR_WIDTH, lang: str = "en") -> str:
    return "\n".join([chart_head(chart, lang), *(t for t, _ in bar_lines(chart, width, lang))])
