"""The figures of the HTML pages, drawn with matplotlib (the optional `report` extra).

matplotlib is imported only when a figure is drawn, so importing the advisor, and every text
format, stays free of it. Figures are object-oriented (`matplotlib.figure.Figure`, no pyplot
state) and come out as inline SVG for the page or PNG for `--png`.

Every plotted number is also written into the SVG: each bar, point or segment is a group with
`data-label` / `data-value` attributes and a `<title>` (the browser's tooltip), so a reader, and a
test, can check the picture against the JSON answer.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from advisor.answer import Chart, Table
from advisor.limits import UsageError

# Colours of the moods (layout, not figures): the same order as the terminal's.
MOOD_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "orange": "#ef6c00", "red": "#c62828", "gray": "#9e9e9e"}
WINDOW_COLOUR, PREFILL_COLOUR, IDLE_COLOUR = "#90caf9", "#ff7043", "#bdbdbd"
SERIES_COLOURS = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#795548", "#546e7a")
INSTALL_HINT = 'pip install "ecolobster[report]"'
_ids = itertools.count(1)


class ReportUnavailable(UsageError):
    """matplotlib (the `report` extra) is not installed: the CLI prints the message, exit 2."""


def _mpl() -> Any:
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportUnavailable(f"HTML pages and PNG figures need matplotlib (the report extra): {INSTALL_HINT}") from None
    return matplotlib, Figure


@dataclass
class Plot:
    """One figure: its matplotlib Figure and the values it shows, keyed by the SVG group id."""

    name: str
    title: str
    fig: Any
    values: dict[str, tuple[str, float, str]] = field(default_factory=dict)
    caption: str = ""

    def mark(self, artist: Any, label: str, value: float, text: str) -> None:
        gid = f"eco{next(_ids)}"
        artist.set_gid(gid)
        self.values[gid] = (label, value, text)

    def svg(self) -> str:
        matplotlib, _ = _mpl()
        buf = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            self.fig.savefig(buf, format="svg")
        text = buf.getvalue()
        text = text[text.index("<svg"):]
        for gid, (label, value, tip) in self.values.items():
            text = text.replace(
                f'<g id="{gid}">',
                f'<g id="{gid}" class="eco-value" data-label="{escape(label)}" data-value="{value!r}">'
                f"<title>{escape(tip)}</title>", 1)
        # The page scales the figure down to its width, never up past its drawn size.
        return re.sub(r'<svg([^>]*?) width="([^"]*)" height="[^"]*"',
                      r'<svg\1 style="width:100%;max-width:\2;height:auto"', text, count=1)

    def save_png(self, path: Path, dpi: int = 110) -> None:
        self.fig.savefig(path, format="png", dpi=dpi)


def _new(width: float, height: float, rows: int = 1, cols: int = 1, layout: str | None = "constrained",
         **kw: Any) -> tuple[Any, Any]:
    _, Figure = _mpl()
    fig = Figure(figsize=(width, height), layout=layout)
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def _fmt(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


# --- Answer figures ---------------------------------------------------------------------------

_BS = re.compile(r"^\s*(?:BS|bs|batch(?: size)?)\s*=?\s*(\d+)\s*$")


def batch_sizes(chart: Chart) -> list[int] | None:
    """The batch sizes when every item of the chart is one ('BS=8'), else None."""
    out = []
    for it in chart.items:
        m = _BS.match(it.label)
        if not m:
            return None
        out.append(int(m.group(1)))
    return out if len(out) >= 2 else None


def chart_plot(chart: Chart) -> Plot:
    """An Answer's chart: the batch curve (log-log) when its items are batch sizes, else ranked
    horizontal bars in the mood colours, best on top, the user's configuration outlined."""
    bss = batch_sizes(chart)
    if bss is not None:
        return _batch_chart(chart, bss)
    items = sorted(chart.items, key=lambda it: it.value, reverse=not chart.lower_is_better)
    fig, axes = _new(8.0, 0.45 * len(items) + 1.3)
    ax = axes[0][0]
    p = Plot("chart", chart.title, fig, caption=f"{chart.metric}, {chart.unit}; "
             + ("lower is better" if chart.lower_is_better else "higher is better"))
    ys = list(range(len(items)))[::-1]
    for y, it in zip(ys, items, strict=True):
        bar = ax.barh(y, it.value, color=MOOD_COLOURS.get(it.mood, "#9e9e9e"), height=0.65,
                      edgecolor="black" if it.current else "none", linewidth=2 if it.current else 0)[0]
        tip = f"{it.label}: {_fmt(it.value)} {chart.unit} [{it.mood}]" + (f" {it.annotation}" if it.annotation else "")
        p.mark(bar, it.label, it.value, tip)
        note = _fmt(it.value) + (f"  {it.annotation}" if it.annotation else "") + ("  (yours)" if it.current else "")
        ax.text(it.value, y, "  " + note, va="center", fontsize=8)
    ax.set_yticks(ys, [it.label for it in items], fontsize=9)
    ax.set_xlabel(f"{chart.metric} ({chart.unit})")
    ax.set_xlim(0, max(it.value for it in items) * 1.35 if items else 1)
    ax.set_title(chart.title, fontsize=10, loc="left")
    return p


def _batch_chart(chart: Chart, bss: list[int]) -> Plot:
    fig, axes = _new(7.0, 4.0)
    ax = axes[0][0]
    p = Plot("batch-curve", chart.title, fig, caption=f"{chart.metric} against batch size, log-log")
    pts = sorted(zip(bss, chart.items, strict=True), key=lambda t: t[0])
    ax.plot([b for b, _ in pts], [it.value for _, it in pts], color="#546e7a", linewidth=1.2, zorder=1)
    for b, it in pts:
        (dot,) = ax.plot([b], [it.value], "o", markersize=8, color=MOOD_COLOURS.get(it.mood, "#9e9e9e"),
                         markeredgecolor="black" if it.current else "white", zorder=2)
        p.mark(dot, it.label, it.value, f"{it.label}: {_fmt(it.value)} {chart.unit} [{it.mood}]")
        ax.annotate(_fmt(it.value), (b, it.value), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted(set(bss)), [str(b) for b in sorted(set(bss))])
    ax.set_xlabel("batch size")
    ax.set_ylabel(f"{chart.metric} ({chart.unit})")
    ax.set_title(chart.title, fontsize=10, loc="left")
    return p


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def breakdown_parts(table: Table) -> tuple[list[tuple[str, list[float | None]]], list[tuple[str, list[float | None]]]]:
    """(components, totals) of a breakdown table: rows of numbers under a first column
    'component'; the rows from the first 'peak ...' one on are totals, not parts of the stack."""
    comps: list[tuple[str, list[float | None]]] = []
    totals: list[tuple[str, list[float | None]]] = []
    in_totals = False
    for row in table.rows:
        label, cells = str(row[0]), [_num(v) for v in row[1:]]
        if label.lower().startswith("peak"):
            in_totals = True
        if all(c is None for c in cells):
            continue
        (totals if in_totals else comps).append((label, cells))
    return comps, totals


def is_breakdown(table: Table) -> bool:
    return bool(table.columns) and str(table.columns[0]).lower() == "component" and len(table.columns) >= 2 \
        and bool(breakdown_parts(table)[0])


def breakdown_plot(table: Table) -> Plot:
    """A memory breakdown as one stacked bar per column (strategy), the totals as markers: the
    parts are each at their own largest, so the stack can exceed the peak (the table's note)."""
    comps, totals = breakdown_parts(table)
    cols = [str(c) for c in table.columns[1:]]
    fig, axes = _new(8.0, 4.6)
    ax = axes[0][0]
    p = Plot("breakdown", table.title, fig, caption="stacked: each component at its own largest; markers: totals")
    bottoms = [0.0] * len(cols)
    matplotlib, _ = _mpl()
    palette = matplotlib.colormaps["tab20"]
    for k, (label, cells) in enumerate(comps):
        colour = palette(k % 20)
        first = True
        for i, v in enumerate(cells):
            if v is None or v <= 0:
                continue
            bar = ax.bar(i, v, bottom=bottoms[i], color=colour, width=0.55, edgecolor="white", linewidth=0.5,
                         label=label if first else None)[0]
            first = False
            p.mark(bar, f"{cols[i]} / {label}", v, f"{cols[i]}: {label} {v:g} GB")
            bottoms[i] += v
    for k, (label, cells) in enumerate(totals):
        for i, v in enumerate(cells):
            if v is None:
                continue
            (m,) = ax.plot([i - 0.33, i + 0.33], [v, v], color="black", linestyle=("-", "--", ":")[k % 3],
                           linewidth=1.6, label=label if i == 0 else None)
            p.mark(m, f"{cols[i]} / {label}", v, f"{cols[i]}: {label} {v:g} GB")
            ax.annotate(f"{v:g}", (i + 0.33, v), xytext=(3, 0), textcoords="offset points", fontsize=8, va="center")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylabel("GB")
    ax.set_title(table.title, fontsize=10, loc="left")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return p


# --- measurement figures ----------------------------------------------------------------------

def trace_plot(c: Any) -> Plot:
    """Power, utilisation and clocks of one configuration over time, with its idle window and
    baseline, its measured windows, and each window's prefill (to the first token) and decode."""
    # Fixed margins (the legends go in the right one): a report draws dozens of these, and the
    # constrained layout would double the drawing time.
    fig, axes = _new(9.0, 4.8, rows=3, layout=None, sharex=True, gridspec_kw={"height_ratios": [2.2, 1, 1]})
    fig.subplots_adjust(left=0.08, right=0.76, top=0.93, bottom=0.1, hspace=0.15)
    ax_p, ax_u, ax_c = axes[0][0], axes[1][0], axes[2][0]
    p = Plot("trace", f"Trace: {c.label}", fig)
    multi = len(c.trace.series) > 1
    for g, s in sorted(c.trace.series.items()):
        t = s["t_s"]
        suffix = f" (GPU {g})" if multi else ""
        ax_p.plot(t, s["power_w"], color=SERIES_COLOURS[g % 8], linewidth=1.1, label="power" + suffix)
        if any(v is not None for v in s["util_gpu_pct"]):
            ax_u.plot(t, s["util_gpu_pct"], color=SERIES_COLOURS[g % 8], linewidth=1.0, label="GPU util" + suffix)
        if any(v is not None for v in s["sm_clock_mhz"]):
            ax_c.plot(t, s["sm_clock_mhz"], color=SERIES_COLOURS[g % 8], linewidth=1.0, label="SM clock" + suffix)
        if any(v is not None for v in s["mem_clock_mhz"]):
            ax_c.plot(t, s["mem_clock_mhz"], color=SERIES_COLOURS[(g + 3) % 8], linewidth=1.0, linestyle="--",
                      label="memory clock" + suffix)
    for ax in (ax_p, ax_u, ax_c):
        for k, w in enumerate(c.windows):
            ax.axvspan(w.t0, w.t1, color=WINDOW_COLOUR, alpha=0.35, lw=0,
                       label="measured window (decode)" if k == 0 and ax is ax_p else None)
            if w.prefill_s:
                ax.axvspan(w.t0, w.t0 + w.prefill_s, color=PREFILL_COLOUR, alpha=0.7, lw=0,
                           label="prefill (to first token)" if k == 0 and ax is ax_p else None)
        if c.idle_s:
            ax.axvspan(0, c.idle_s, color=IDLE_COLOUR, alpha=0.35, lw=0,
                       label="idle window" if ax is ax_p else None)
    for k, w in enumerate(c.windows):
        seg = ax_p.axvline(w.t0, color="#0d47a1", linewidth=0.6, alpha=0.6)
        p.mark(seg, f"window {k + 1}", w.t1 - w.t0,
               f"measured window {k + 1}: {w.t0:.2f}-{w.t1:.2f} s" +
               (f", prefill {w.prefill_s * 1000:.1f} ms" if w.prefill_s else ""))
    if c.idle_power_w is not None:
        line = ax_p.axhline(c.idle_power_w, color="#616161", linestyle="--", linewidth=1.0,
                            label=f"idle baseline {c.idle_power_w:.1f} W")
        p.mark(line, "idle baseline W", c.idle_power_w, f"idle baseline {c.idle_power_w:.1f} W")
    ax_p.set_ylabel("power W")
    ax_u.set_ylabel("util %")
    ax_c.set_ylabel("clock MHz")
    ax_c.set_xlabel("time since the configuration started, s")
    ax_p.set_title(p.title, fontsize=10, loc="left")
    ax_p.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for ax in (ax_u, ax_c):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    parts = []
    if c.j_per_1k is not None:
        parts.append(f"{_fmt(c.j_per_1k)} J/1k tok gross")
    if c.j_per_1k_net is not None:
        parts.append(f"{_fmt(c.j_per_1k_net)} net of idle")
    if c.energy_method:
        parts.append(f"energy from {c.energy_method}")
    p.caption = "; ".join(parts)
    return p


def energy_throughput_plot(configs: list[Any], task: str) -> Plot:
    """J/1k tok (error bars: 95% CI of the mean) and throughput (error bars: one standard
    deviation) per configuration, side by side."""
    n = len(configs)
    fig, axes = _new(10.0, 0.28 * n + 1.6, cols=2, sharey=True)
    ax_e, ax_t = axes[0][0], axes[0][1]
    what = "fine-tuning" if task == "finetune" else "inference"
    p = Plot(f"energy-{task}", f"Energy and throughput per configuration ({what})", fig,
             caption="error bars: 95% confidence interval of the mean (energy), one standard deviation (throughput)")
    ys = list(range(n))[::-1]
    for y, c in zip(ys, configs, strict=True):
        if c.j_per_1k is not None:
            err = c.j_per_1k_ci95 if c.j_per_1k_ci95 is not None else 0.0
            bar = ax_e.barh(y, c.j_per_1k, xerr=err, color="#1565c0", height=0.65, capsize=2,
                            error_kw={"elinewidth": 0.8})[0]
            p.mark(bar, f"{c.label} J/1k", c.j_per_1k, f"{c.label}: {_fmt(c.j_per_1k)} ± {_fmt(err)} J/1k tok")
        if c.throughput_tok_s is not None:
            err = c.throughput_std or 0.0
            bar = ax_t.barh(y, c.throughput_tok_s, xerr=err, color="#2e7d32", height=0.65, capsize=2,
                            error_kw={"elinewidth": 0.8})[0]
            p.mark(bar, f"{c.label} tok/s", c.throughput_tok_s,
                   f"{c.label}: {_fmt(c.throughput_tok_s)} ± {_fmt(err)} tok/s")
    ax_e.set_yticks(ys, [c.label for c in configs], fontsize=7)
    ax_e.set_ylim(-0.7, n - 0.3)
    ax_e.set_xlabel("J per 1,000 tokens (gross)")
    ax_t.set_xlabel("throughput, tokens/s")
    if not any(c.j_per_1k is not None for c in configs):
        ax_e.text(0.5, 0.5, "energy not measured\n(no GPU energy counter)", ha="center", va="center",
                  transform=ax_e.transAxes, fontsize=9, color="#616161")
    ax_e.set_title(p.title, fontsize=10, loc="left")
    return p


def batch_energy_plot(model: str, configs: list[Any]) -> Plot:
    """J per generated token against batch size, log-log, one line per format (precision)."""
    fig, axes = _new(7.0, 4.2)
    ax = axes[0][0]
    p = Plot("batch-energy", f"J/token against batch size: {model}", fig,
             caption="log-log; error bars: 95% confidence interval of the mean")
    by_prec: dict[str, list[Any]] = {}
    for c in configs:
        by_prec.setdefault(c.precision, []).append(c)
    for k, (prec, cs) in enumerate(sorted(by_prec.items())):
        cs = sorted(cs, key=lambda c: c.batch_size)
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        xs = [c.batch_size for c in cs]
        ys = [c.j_per_1k / 1000.0 for c in cs]
        errs = [(c.j_per_1k_ci95 or 0.0) / 1000.0 for c in cs]
        # The lower bar stops above zero on a log axis.
        low = [min(e, y * 0.95) for e, y in zip(errs, ys, strict=True)]
        ax.errorbar(xs, ys, yerr=[low, errs], color=colour, marker="o", markersize=4, linewidth=1.2,
                    capsize=2, label=prec)
        for c, x, y in zip(cs, xs, ys, strict=True):
            (dot,) = ax.plot([x], [y], "o", color=colour, markersize=4)
            p.mark(dot, f"{prec} bs{c.batch_size}", y, f"{model} {prec} bs{c.batch_size}: {y:.4g} J/token")
    bss = sorted({c.batch_size for c in configs})
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(bss, [str(b) for b in bss])
    ax.set_xlabel("batch size")
    ax.set_ylabel("J per generated token (gross)")
    ax.set_title(p.title, fontsize=10, loc="left")
    ax.legend(fontsize=8, title="format", title_fontsize=8, frameon=False)
    return p


def cv_plot(configs: list[Any]) -> Plot:
    """Throughput and power CV per configuration against the gates; a failed gate in red."""
    n = len(configs)
    fig, axes = _new(9.0, 0.26 * n + 1.6)
    ax = axes[0][0]
    p = Plot("cv", "CV gates: spread of the measured runs", fig,
             caption="CV = standard deviation / mean of the measured runs; dashed: the gates")
    ys = list(range(n))[::-1]
    for y, c in zip(ys, configs, strict=True):
        for name, v, marker, colour in (("throughput", c.cv_throughput, "o", "#1565c0"),
                                        ("power", c.cv_power, "s", "#ef6c00")):
            if v is None:
                continue
            (dot,) = ax.plot([v * 100], [y], marker, color=colour, markersize=5, label=f"{name} CV")
            p.mark(dot, f"{c.label} {name} CV %", v * 100, f"{c.label}: {name} CV {v * 100:.2f}%")
    ax.set_yticks(ys, [c.label for c in configs], fontsize=7)
    ax.set_ylim(-0.7, n - 0.3)
    for lab, c in zip(ax.get_yticklabels(), configs, strict=True):
        if c.gate_failed:
            lab.set_color(MOOD_COLOURS["red"])
    gates = {(c.cv_max_throughput, c.cv_max_power) for c in configs} - {(None, None)}
    if len(gates) == 1:
        gt, gp = next(iter(gates))
        if gt is not None:
            ax.axvline(gt * 100, color="#1565c0", linestyle="--", linewidth=1, label=f"throughput gate {gt * 100:g}%")
        if gp is not None:
            ax.axvline(gp * 100, color="#ef6c00", linestyle="--", linewidth=1, label=f"power gate {gp * 100:g}%")
    ax.set_xlabel("coefficient of variation, % (labels in red: gate failed)")
    ax.set_title(p.title, fontsize=10, loc="left")
    handles, names = ax.get_legend_handles_labels()
    seen: dict[str, Any] = {}
    for h, nm in zip(handles, names, strict=True):
        seen.setdefault(nm, h)
    ax.legend(list(seen.values()), list(seen), fontsize=7, loc="lower right", frameon=False)
    return p
