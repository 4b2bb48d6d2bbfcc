"""Answer -> Markdown (copyable into reports). Generic: any protocol's Answer renders the same
way, in the same order: voice opening, alerts, headline, errors and warnings, tables, charts,
costs, recommendations with code, conversions, defaults, provenance, caveats, citations."""

from __future__ import annotations

import re

from advisor.answer import Answer, Table
from advisor.render.chart import mood_tag, render_chart
from advisor.render.labels import label, value_word


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:,.1f}".rstrip("0").rstrip(".")
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _fence(code: str) -> str:
    """A backtick fence longer than any run of backticks in the code, so the block always closes."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


def table_md(t: Table) -> list[str]:
    out = [f"**{t.title}**", "", "| " + " | ".join(_cell(c) for c in t.columns) + " |",
           "|" + "|".join("---" for _ in t.columns) + "|"]
    for r in t.rows:
        out.append("| " + " | ".join(_cell(v) for v in r) + " |")
    # A blank line ends the table: a caption written right under the last row would parse as
    # one more row (GFM tables run until a blank line).
    notes = [f"_{n}_" for n in t.notes if n]
    if notes:
        out += ["", *notes]
    out.append("")
    return out


def to_markdown(answer: Answer) -> str:
    a = answer

    def L(key: str) -> str:
        return label(a.lang, key)

    out: list[str] = [f"## {a.title}", ""]
    tag = mood_tag(a.mood, a.lang)
    if a.not_understood:  # before the answer: the user must see what it does not account for
        out += [f"**{L('not_understood')}:**", ""] + [f"- {n}" for n in a.not_understood] + [""]
    if a.voice:
        out += [f"> {a.voice[0]}", ""]
    for al in a.alerts:
        out.append(f"> **{mood_tag(al.mood, a.lang)} {L('alert')}: {al.title}** ({al.code})")
        out.append(f"> {al.message}")
        if al.fix:
            out.append(f"> {L('quick_fix')}: `{al.fix}`")
        out.append("")
    if a.headline:
        waste = f" ({L('waste')}: {a.stated_waste():+.1f}%)" if a.stated_waste() is not None else ""
        out += [f"**{tag}** {a.headline}{waste}", ""]
    if a.errors:
        out += [f"### {L('errors')}", ""] + [f"{i}. {e}" for i, e in enumerate(a.errors, 1)] + [""]
    if a.warnings:
        out += [f"### {L('warnings')}", ""] + [f"- {w}" for w in a.warnings] + [""]
    for t in a.tables:
        out += table_md(t)
    for ch in a.charts:
        text = render_chart(ch, lang=a.lang)
        fence = _fence(text)
        out += [f"{fence}text", text, fence, ""]
    if a.costs:
        out += [f"**{L('money')}**", "", f"| {L('configuration')} | kWh | $ | kgCO2 | {L('km')} | {L('phones')} |",
                "|---|---|---|---|---|---|"]
        for c in a.costs:
            eq = c.equivalents
            out.append(f"| {_cell(c.label)} | {c.kwh:,.3g} | {c.usd:,.2f} | {c.kg_co2:,.3g} | "
                       f"{eq.get('km_driven', 0):,.3g} | {eq.get('smartphone_charges', 0):,.3g} |")
        if a.costs[0].basis:
            out += ["", f"_{a.costs[0].basis}_"]
        out.append("")
    if a.recommendations:
        out += [f"### {L('recommendations')}", ""]
        for r in a.recommendations:
            out.append(f"**{r.title}**")
            if r.detail:
                out += ["", r.detail]
            if r.impact:
                out += ["", f"{L('impact')}: {r.impact}"]
            if r.code:
                fence = _fence(r.code)
                out += ["", f"{fence}{r.language}", r.code, fence]
            out.append("")
    if a.conversions:
        out += [f"### {L('derived')}", ""] + [f"- {c}" for c in a.conversions] + [""]
    if a.defaults_applied:
        out += [f"### {L('defaults')}", ""] + [f"- {d}" for d in a.defaults_applied] + [""]
    if a.provenance:
        out += [f"### {L('provenance')}", "",
                f"| {L('figures')} | {L('tier')} | {L('method')} | {L('confidence')} | {L('rows')} |", "|---|---|---|---|---|"]
        for p in a.provenance:
            tier, conf = value_word(a.lang, "tier", p.tier), value_word(a.lang, "confidence", p.confidence)
            out.append(f"| {_cell(p.subject)} | {tier} | {_cell(p.method)} | {conf} | "
                       f"{_cell(', '.join(p.row_ids[:4]) + (' ...' if len(p.row_ids) > 4 else ''))} |")
        out.append("")
    if a.caveats:
        out += [f"### {L('caveats')}", ""] + [f"- {c}" for c in a.caveats] + [""]
    if a.citations:
        out += [f"### {L('sources')}", ""]
        for c in a.citations:
            out.append(f"- {c.kind}: `{c.ref}`" + (f" ({c.detail})" if c.detail else ""))
        out.append("")
    if len(a.voice) > 1:
        out += [f"> {v}" for v in a.voice[1:]] + [""]
    return "\n".join(out).rstrip() + "\n"
