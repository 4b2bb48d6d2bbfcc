"""`ecolobster report`: measurements as one self-contained HTML page (and PNG figures).

    ecolobster report bench-20261201-101500.jsonl            # a bench results file and its traces
    ecolobster report measurements/data/h200_raw.tar.gz      # a shipped raw archive
    ecolobster report --gpu h200 --model qwen2.5-7b          # dataset rows (the `data list` filters)
    ecolobster report RESULTS --out report.html --png figures/

Needs the `report` extra (matplotlib); imports stay inside the handler.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor.limits import UsageError

FILTERS = ("gpu", "model", "precision", "source", "kind", "task", "framework", "workload", "gpu_count")


def register(sub: argparse._SubParsersAction) -> None:
    from advisor.cli.data import filters

    p = sub.add_parser(
        "report", help="an HTML report of measurements: traces, energy, batch curves, CV gates, provenance",
        description="One self-contained HTML page (opens offline) from a bench results file and its traces, a "
                    "raw archive (measurements/data/*_raw.tar.gz) or dataset rows chosen with the `data list` "
                    "filters: per configuration the power / utilisation / clock trace with the idle baseline, "
                    "the measured windows and the prefill / decode split; J/1k tok and throughput with error "
                    "bars; J/token against batch size (log-log) per format; CV gates; provenance. Needs the "
                    "report extra: pip install \"ecolobster[report]\".")
    p.add_argument("path", nargs="?", type=Path, metavar="SOURCE",
                   help="a bench results file (.jsonl) or a raw archive (.tar.gz); leave out to report dataset rows")
    p.add_argument("--traces", type=Path, default=None,
                   help="the trace folder of a results file (default: <results stem>-traces beside it)")
    filters(p)
    p.add_argument("--out", "-o", type=Path, default=Path("ecolobster-report.html"),
                   help="the HTML file to write (default ecolobster-report.html)")
    p.add_argument("--png", type=Path, default=None, metavar="DIR", help="also write every figure as PNG into DIR")
    p.add_argument("--format", choices=("rich", "json"), default="rich",
                   help="what is printed once the page is written: a line (rich, default) or JSON with the "
                        "file, the configurations and every figure's plotted values (json)")
    p.set_defaults(handler=cmd_report)


def build(args: argparse.Namespace):
    """The MeasuredReport the arguments ask for (UsageError on bad input)."""
    from advisor.api import ReportError, load_results, report_from_rows

    used = [f for f in FILTERS if getattr(args, f, None)]
    if args.path is not None:
        if used:
            raise UsageError(f"give a results file / archive or dataset filters, not both "
                             f"(got {args.path} and --{', --'.join(used)})")
        try:
            return load_results(args.path, args.traces)
        except ReportError as err:
            raise UsageError(str(err)) from None
    if args.traces is not None:
        raise UsageError("--traces goes with a results file: ecolobster report RESULTS.jsonl --traces DIR")
    from advisor.api import filter_rows

    rows = filter_rows(args)
    if not rows:
        raise UsageError("no dataset row matches those filters (`ecolobster data list` with the same filters "
                         "shows what there is)")
    title = "dataset rows" + ("" if not used else ": " + ", ".join(f"{f} {getattr(args, f)}" for f in used))
    return report_from_rows(rows, title)


def cmd_report(args: argparse.Namespace) -> int:
    from advisor.render.plots import ReportUnavailable

    report = build(args)
    try:
        from advisor.render.html import report_page, report_plots, write_pngs

        plotted = report_plots(report)
        text = report_page(report, plotted)
        pngs = write_pngs(plotted, args.png) if args.png is not None else []
    except ReportUnavailable as err:
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"cannot write the PNG figures into {args.png}: {err.strerror or err}") from None
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot write {args.out}: {err.strerror or err}") from None
    if args.format == "json":
        import json

        print(json.dumps({
            "out": str(args.out), "title": report.title, "sources": report.sources,
            "configurations": len(report.configs), "notes": report.notes,
            "figures": [{"section": s, "kind": p.name, "title": p.title,
                         "values": {label: value for label, value, _ in p.values.values()}} for s, p in plotted],
            "pngs": [str(x) for x in pngs]}, indent=2, ensure_ascii=False))
        return 0
    print(f"report: {args.out} ({len(report.configs)} configurations, {len(plotted)} figures)")
    if pngs:
        print(f"{len(pngs)} PNG figures in {args.png}")
    return 0
