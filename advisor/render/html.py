"""Answers and measurement reports as one self-contained HTML page (no network: the styles, the
figures (inline SVG) and the one small script are in the page).

`to_html(answer)` is the `--format html` of every protocol; `answers_page(answers)` the chat's
`/report FILE`; `report_page(report)` the page of `ecolobster report`. The text follows the same
order as the Markdown renderer; the Answer's charts become real plots (advisor.render.plots).
"""

from __future__ import annotations

import datetime as dt
import re
from html import escape
from pathlib import Path
from typing import Any

from advisor.answer import Answer, Table
from advisor.messages import t as msg
from advisor.render.labels import label, value_word
from advisor.render.markdown import _cell

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;
 margin:0 auto;max-width:1100px;padding:1.2rem 1.5rem 3rem;color:#212121;line-height:1.45}
h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.2rem;margin:1.8rem 0 .5rem;border-bottom:1px solid #ddd}
h3{font-size:1.02rem;margin:1.1rem 0 .4rem}
table{border-collapse:collapse;margin:.4rem 0 .8rem;font-size:.85rem;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure.eco-figure{margin:1rem 0;padding:.5rem;border:1px solid #eee;border-radius:6px;background:#fff}
figure.eco-figure svg{display:block;margin:0 auto}
p.cap{font-size:.8rem;color:#555;margin:.2rem 0 0}
.mood{display:inline-block;padding:.05rem .5rem;border-radius:.7rem;color:#fff;font-size:.8rem;font-weight:600}
.mood-green{background:#2e7d32}.mood-yellow{background:#f9a825;color:#212121}.mood-orange{background:#ef6c00}
.mood-red{background:#c62828}.mood-gray{background:#9e9e9e}
.alert{border-left:5px solid #9e9e9e;background:#fafafa;padding:.4rem .8rem;margin:.5rem 0}
.alert.mood-border-green{border-color:#2e7d32}.alert.mood-border-yellow{border-color:#f9a825}
.alert.mood-border-orange{border-color:#ef6c00}.alert.mood-border-red{border-color:#c62828}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:.8rem}
.voice{font-style:italic;color:#555}.bad{color:#c62828;font-weight:600}.ok{color:#2e7d32;font-weight:600}
section.answer{border-top:3px solid #eee;margin-top:1.5rem}nav a{margin-right:.8rem}
footer{margin-top:2rem;font-size:.75rem;color:#777}
"""

# The page's only script: it counts the figures once the page has loaded (a visible check that
# the page rendered whole, and what the headless-browser test reads).
_SCRIPT = """
document.addEventListener("DOMContentLoaded", function () {
  var n = document.querySelectorAll("figure.eco-figure svg").length;
  document.body.setAttribute("data-figures-rendered", String(n));
  var f = document.getElementById("eco-figure-count");
  if (f) { f.textContent = n + " figures"; }
});
"""


def _e(v: object) -> str:
    return escape(str(v), quote=True)


def page(title: str, body: str, lang: str = "en") -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<!DOCTYPE html>\n<html lang="{_e(lang)}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{_e(title)}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n"
            f'<footer>EcoLobster · generated {stamp} · <span id="eco-figure-count"></span> · '
            "self-contained page: no network needed</footer>\n"
            f"<script>{_SCRIPT}</script>\n</body>\n</html>\n")


def figure(plot: Any) -> str:
    cap = f'<p class="cap">{_e(plot.caption)}</p>' if plot.caption else ""
    # The title is drawn in the figure (so the PNG has it too): the page repeats it for screen
    # readers only.
    return (f'<figure class="eco-figure" data-kind="{_e(plot.name)}" aria-label="{_e(plot.title)}">\n'
            f"{plot.svg()}\n{cap}</figure>\n")


def table_html(t: Table | None, columns: list[str] | None = None, rows: list[list[Any]] | None = None,
               title: str = "", notes: list[str] | None = None) -> str:
    if t is not None:
        columns, rows, title, notes = [str(c) for c in t.columns], t.rows, t.title, t.notes
    out = [f"<h3>{_e(title)}</h3>"] if title else []
    out.append("<table><thead><tr>" + "".join(f"<th>{_e(c)}</th>" for c in columns or []) + "</tr></thead><tbody>")
    for r in rows or []:
        cells = []
        for v in r:
            num = isinstance(v, int | float) and not isinstance(v, bool)
            cells.append(f'<td class="num">{_e(_cell(v))}</td>' if num else f"<td>{_e(_cell(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    out += [f'<p class="cap">{_e(n)}</p>' for n in notes or [] if n]
    return "\n".join(out) + "\n"


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>\n"


def answer_section(a: Answer, anchor: str = "") -> str:
    """One Answer as HTML, in the Markdown renderer's order, its charts drawn."""
    from advisor.render import plots

    def L(key: str) -> str:
        return label(a.lang, key)

    out = [f'<section class="answer" id="{_e(anchor)}">' if anchor else '<section class="answer">',
           f'<h2>{_e(a.title)} <span class="mood mood-{_e(a.mood)}">{_e(msg(a.lang, f"mood.{a.mood}"))}</span></h2>']
    if a.voice:
        out.append(f'<p class="voice">{_e(a.voice[0])}</p>')
    for al in a.alerts:
        out.append(f'<div class="alert mood-border-{_e(al.mood)}"><strong>{_e(L("alert"))}: {_e(al.title)}</strong> '
                   f"({_e(al.code)})<br>{_e(al.message)}"
                   + (f"<br>{_e(L('quick_fix'))}: <code>{_e(al.fix)}</code>" if al.fix else "") + "</div>")
    if a.headline:
        waste = f" ({_e(L('waste'))}: {a.stated_waste():+.1f}%)" if a.stated_waste() is not None else ""
        out.append(f"<p><strong>{_e(a.headline)}</strong>{waste}</p>")
    if a.errors:
        out.append(f"<h3>{_e(L('errors'))}</h3>" + _list(a.errors))
    if a.warnings:
        out.append(f"<h3>{_e(L('warnings'))}</h3>" + _list(a.warnings))
    for t in a.tables:
        out.append(table_html(t))
        if plots.is_breakdown(t):
            out.append(figure(plots.breakdown_plot(t)))
    for ch in a.charts:
        if ch.items:
            out.append(figure(plots.chart_plot(ch)))
    if a.costs:
        rows = [[c.label, c.kwh, c.usd, c.kg_co2, c.equivalents.get("km_driven", 0.0),
                 c.equivalents.get("smartphone_charges", 0.0)] for c in a.costs]
        out.append(table_html(None, [L("configuration"), "kWh", "$", "kgCO2", L("km"), L("phones")], rows,
                              L("money"), [a.costs[0].basis] if a.costs[0].basis else []))
    if a.recommendations:
        out.append(f"<h3>{_e(L('recommendations'))}</h3>")
        for r in a.recommendations:
            out.append(f"<p><strong>{_e(r.title)}</strong></p>")
            if r.detail:
                out.append(f"<p>{_e(r.detail)}</p>")
            if r.impact:
                out.append(f"<p>{_e(L('impact'))}: {_e(r.impact)}</p>")
            if r.code:
                out.append(f'<pre><code class="language-{_e(r.language)}">{_e(r.code)}</code></pre>')
    if a.conversions:
        out.append(f"<h3>{_e(L('derived'))}</h3>" + _list(a.conversions))
    if a.defaults_applied:
        out.append(f"<h3>{_e(L('defaults'))}</h3>" + _list(a.defaults_applied))
    if a.provenance:
        rows = [[p.subject, value_word(a.lang, "tier", p.tier), p.method, value_word(a.lang, "confidence", p.confidence),
                 ", ".join(p.row_ids[:4]) + (" ..." if len(p.row_ids) > 4 else "")]
                for p in a.provenance]
        out.append(table_html(None, [L("figures"), L("tier"), L("method"), L("confidence"), L("rows")], rows,
                              L("provenance")))
    if a.caveats:
        out.append(f"<h3>{_e(L('caveats'))}</h3>" + _list(a.caveats))
    if a.citations:
        out.append(f"<h3>{_e(L('sources'))}</h3>" + _list(
            [f"{c.kind}: {c.ref}" + (f" ({c.detail})" if c.detail else "") for c in a.citations]))
    out += [f'<p class="voice">{_e(v)}</p>' for v in a.voice[1:]]
    out.append("</section>")
    return "\n".join(out) + "\n"


def to_html(answer: Answer) -> str:
    """One Answer as a page (`--format html`)."""
    return page(answer.title, answer_section(answer), answer.lang)


def answers_page(answers: list[Answer], title: str = "EcoLobster conversation") -> str:
    """Several answers (a chat session) as one page, with a table of contents."""
    nav = "<nav>" + "".join(f'<a href="#answer-{i}">{i}. {_e(a.title)}</a>' for i, a in enumerate(answers, 1)) + "</nav>"
    body = [f"<h1>{_e(title)}</h1>", nav]
    body += [answer_section(a, f"answer-{i}") for i, a in enumerate(answers, 1)]
    return page(title, "\n".join(body), answers[0].lang if answers else "en")


# --- the measurement report -------------------------------------------------------------------

def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def ordered(configs: list[Any]) -> list[Any]:
    """Configurations by task, model, format (the dataset's precision order) and batch size."""
    from measurements.schema import PRECISIONS

    def key(c: Any) -> tuple[Any, ...]:
        prec = PRECISIONS.index(c.precision) if c.precision in PRECISIONS else len(PRECISIONS)
        return (c.task, c.model, c.method or "", prec, c.precision, c.batch_size, c.label)

    return sorted(configs, key=key)


def report_plots(report: Any) -> list[tuple[str, Any]]:
    """(section, Plot) of every figure of a measurement report, in page order."""
    from advisor.render import plots

    out: list[tuple[str, Any]] = []
    ok = [c for c in ordered(report.configs) if c.status == "ok"]
    for task in ("inference", "finetune"):
        cs = [c for c in ok if c.task == task]
        if cs:
            out.append(("summary", plots.energy_throughput_plot(cs, task)))
    by_model: dict[str, list[Any]] = {}
    for c in ok:
        if c.task == "inference" and c.j_per_1k is not None:
            by_model.setdefault(c.model, []).append(c)
    for model, cs in sorted(by_model.items()):
        if len({c.batch_size for c in cs}) >= 2:
            out.append(("batch", plots.batch_energy_plot(model, cs)))
    if any(c.cv_throughput is not None or c.cv_power is not None for c in ok):
        out.append(("cv", plots.cv_plot(ok)))
    out += [("traces", plots.trace_plot(c)) for c in ok if c.trace is not None]
    return out


def _provenance_rows(report: Any) -> tuple[list[str], list[list[Any]]]:
    groups: dict[tuple[tuple[str, str], ...], int] = {}
    for c in report.configs:
        key = tuple(sorted(c.provenance.items()))
        groups[key] = groups.get(key, 0) + 1
    cols: list[str] = []
    for key in groups:
        for k, _ in key:
            if k not in cols:
                cols.append(k)
    front = [k for k in ("GPU", "GPUs", "driver", "CUDA", "torch", "transformers", "bitsandbytes", "protocol")
             if k in cols]
    cols = front + [k for k in cols if k not in front]
    rows = [[n, *[dict(key).get(k, "-") for k in cols]] for key, n in groups.items()]
    return ["configurations", *cols], rows


def report_page(report: Any, plotted: list[tuple[str, Any]] | None = None) -> str:
    plotted = report_plots(report) if plotted is None else plotted
    body = [f"<h1>EcoLobster report: {_e(report.title)}</h1>",
            "<p>Sources: " + ", ".join(f"<code>{_e(s)}</code>" for s in report.sources) + "</p>"]
    if report.notes:
        body.append(_list(report.notes))
    ok = [c for c in ordered(report.configs) if c.status == "ok"]
    failed = [c for c in ordered(report.configs) if c.status != "ok"]
    body.append(f"<p>{len(report.configs)} configurations: {len(ok)} measured, {len(failed)} did not run "
                f"(OOM or error); {sum(c.trace is not None for c in ok)} with a power trace.</p>")
    sections = {"summary": "Energy and throughput", "batch": "Energy against batch size", "cv": "CV gates",
                "traces": "Power traces"}
    for key, heading in sections.items():
        figs = [p for s, p in plotted if s == key]
        if key == "cv":
            body.append(f"<h2>{heading}</h2>")
            body += [figure(p) for p in figs]
            body.append(_cv_table(ok))
            head, rows = _provenance_rows(report)
            body.append("<h2>Provenance</h2>" + table_html(None, head, rows))
            continue
        if figs:
            body.append(f"<h2>{heading}</h2>")
            if key == "traces":
                body.append('<p class="cap">Grey: the idle window at the start of each configuration; dashed: its '
                            "idle baseline; blue: the measured windows (decode); orange: each window's prefill, up "
                            "to the first token. Warm-up runs lie between the idle window and the first measured "
                            "window.</p>")
            body += [figure(p) for p in figs]
    body.append("<h2>Configurations</h2>" + table_html(None, [
        "configuration", "status", "n", "tok/s", "± sd", "W", "idle W", "J/1k tok", "± CI95", "net J/1k", "energy method",
        "row"], [[c.label, c.status, c.n_runs, c.throughput_tok_s, c.throughput_std, c.power_w, c.idle_power_w,
                  c.j_per_1k, c.j_per_1k_ci95, c.j_per_1k_net, c.energy_method, c.row_id or c.key]
                 for c in ordered(report.configs)]))
    if failed:
        body.append(_list([f"{c.label}: {c.status}" for c in failed]))
    return page(report.title, "\n".join(body))


def _cv_table(configs: list[Any]) -> str:
    rows = []
    for c in configs:
        gate = "-" if c.gate_failed is None else ("FAILED" if c.gate_failed else "passed")
        rows.append([c.label, c.n_runs, _pct(c.cv_throughput), _pct(c.cv_power), _pct(c.cv_energy), gate,
                     "; ".join(c.gate_notes)])
    return table_html(None, ["configuration", "n runs", "throughput CV", "power CV", "energy CV", "gate", "notes"], rows)


def write_pngs(plotted: list[tuple[str, Any]], folder: Path) -> list[Path]:
    """Each figure as a PNG in `folder` (created), named by its order, kind and title."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (_, p) in enumerate(plotted, 1):
        slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", p.title.lower()).strip("-")[:80]
        path = folder / f"{i:02d}-{p.name}-{slug}.png"
        p.save_png(path)
        out.append(path)
    return out
