"""`ecolobster data`: list, show, validate and export the measurements dataset."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from advisor.limits import UsageError

LIST_COLUMNS = ("id", "kind", "framework", "gpu", "gpu_count", "model_id", "precision", "batch_size",
                "throughput_tok_s", "power_w", "energy_j_per_1k_tok", "where")
NUMERIC_COLUMNS = ("gpu_count", "batch_size", "throughput_tok_s", "power_w", "energy_j_per_1k_tok")


def filters(sp: argparse.ArgumentParser) -> None:
    """The row filters of `data list` / `data export` (and `report`, which reads the same rows)."""
    sp.add_argument("--gpu", help="GPU key or alias, e.g. 4090d, a800, h100")
    sp.add_argument("--model", help="model key, alias or hub id (substring of the hub id also matches)")
    sp.add_argument("--precision", help="fp32 fp16 bf16 fp8 nf4 int8_mixed int8_pure")
    sp.add_argument("--source", help="substring of the source field")
    sp.add_argument("--kind", choices=["measured", "simulated", "derived"])
    sp.add_argument("--task", choices=["inference", "finetune"])
    # the vocabularies live in measurements.schema, imported only when a command runs (fast start)
    sp.add_argument("--framework", help="serving framework, e.g. hf-eager, vllm (an unknown one lists them all)")
    sp.add_argument("--workload", help="what the served requests were: chat, reasoning, code-completion")
    sp.add_argument("--gpu-count", type=int, help="GPUs of the configuration")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="query the measurements dataset (list, show, validate, export)")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    lp = dsub.add_parser("list", help="list rows, optionally filtered")
    filters(lp)
    lp.add_argument("--format", choices=["rich", "markdown", "json"], default="rich")
    lp.set_defaults(handler=cmd_list)

    sp = dsub.add_parser("show", help="show every field of one row")
    sp.add_argument("id")
    sp.add_argument("--format", choices=["rich", "markdown", "json"], default="rich")
    sp.set_defaults(handler=cmd_show)

    vp = dsub.add_parser("validate", help="check every shipped and local row and the catalogs")
    vp.add_argument("--format", choices=["rich", "markdown", "json"], default="rich")
    vp.set_defaults(handler=cmd_validate)

    ep = dsub.add_parser("export", help="export rows as CSV or a JSON array (stable field names)")
    filters(ep)
    ep.add_argument("--format", choices=["csv", "json"], default="json")
    ep.set_defaults(handler=cmd_export)


def where(row: Any) -> str:
    """Where a row's figures were read: repository@commit path for published data, else the source."""
    if row.source_repo and row.source_path:
        commit = f"@{row.source_commit[:12]}" if row.source_commit else ""
        return f"{row.source_repo}{commit} {row.source_path}"
    return row.source


def _value(row: Any, col: str) -> Any:
    return where(row) if col == "where" else getattr(row, col)


def _fmt(v: Any) -> str:
    from advisor.render.cells import row_cell

    return row_cell(v)


def cmd_list(args: argparse.Namespace) -> int:
    from advisor.api import filter_rows

    rows = filter_rows(args)
    if args.format == "json":
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2, ensure_ascii=False))
        return 0
    if args.format == "markdown":
        print("| " + " | ".join(LIST_COLUMNS) + " |")
        print("|" + "---|" * len(LIST_COLUMNS))
        for r in rows:
            print("| " + " | ".join(_fmt(_value(r, c)).replace("|", "/") for c in LIST_COLUMNS) + " |")
        print(f"\n{len(rows)} rows")
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Measurements ({len(rows)} rows)", show_lines=False)
    for c in LIST_COLUMNS:
        t.add_column(c, overflow="fold", justify="right" if c in NUMERIC_COLUMNS else "left")
    for r in rows:
        t.add_row(*(_fmt(_value(r, c)) for c in LIST_COLUMNS))
    Console().print(t)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from advisor.api import load_rows

    rows = {r.id: r for r in load_rows()}
    row = rows.get(args.id)
    if row is None:
        import difflib

        near = difflib.get_close_matches(args.id, list(rows), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(near)}?" if near else " `ecolobster data list` shows the ids."
        raise UsageError(f"no row with id '{args.id}'.{hint}")
    data = row.model_dump(mode="json")
    if args.format == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif args.format == "markdown":
        print(f"### {row.id}\n\n| field | value |\n|---|---|")
        for k, v in data.items():
            if v not in (None, ""):
                print(f"| {k} | {v} |")
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=row.id, show_header=False)
        t.add_column("field", style="bold")
        t.add_column("value", overflow="fold")
        for k, v in data.items():
            if v not in (None, ""):
                t.add_row(k, str(v))
        Console().print(t)
    return 0


def validate_all() -> tuple[dict[str, int], list[str], list[str]]:
    """Counts of what loaded, hard errors, and warnings (e.g. skipped local lines)."""
    from advisor.api import DataError, catalog, load_rows

    counts: dict[str, int] = {}
    errors: list[str] = []
    problems: list[str] = []
    try:
        rows = load_rows(problems=problems, errors=errors)
        counts["rows"] = len(rows)
        counts["measured"] = sum(r.kind == "measured" for r in rows)
        counts["simulated"] = sum(r.kind == "simulated" for r in rows)
    except DataError as err:
        errors.append(str(err))
        rows = []
    for name, fn in (("gpus", catalog.gpus), ("models", catalog.models), ("regions", catalog.regions),
                     ("factors", catalog.factors), ("gpu_prices", catalog.gpu_prices)):
        try:
            counts[name] = len(fn())
        except (DataError, FileNotFoundError) as err:
            errors.append(f"catalog {name}: {err}")
    if "gpus" in counts and "factors" in counts and "models" in counts:
        from advisor.api import implausible

        for r in rows:  # local rows that break physics were already refused (in errors) by the reader
            bad = implausible(r)
            if bad:
                errors.append(f"row '{r.id}' is physically implausible: {'; '.join(bad)}")
    if "gpus" in counts:
        from advisor.api import shipped_rows

        known = {g.key for g in catalog.gpus()}
        shipped = {r.id for r in shipped_rows()}
        for r in rows:
            if r.gpu in known or r.gpu == "cpu":  # "cpu": a CPU-only engine run (energy unavailable)
                continue
            if r.id in shipped:
                errors.append(f"row '{r.id}': gpu '{r.gpu}' is not in the GPU catalog")
            else:  # a local measurement of a GPU the catalog lacks is kept, but cannot be matched
                problems.append(f"local row '{r.id}': gpu '{r.gpu}' is not in the GPU catalog; "
                                "answers about catalog GPUs will not use it")
    if "gpus" in counts and "gpu_prices" in counts:
        known = {g.key for g in catalog.gpus()}
        errors.extend(f"gpu_prices.csv: gpu '{p.gpu}' is not in the GPU catalog"
                      for p in catalog.gpu_prices() if p.gpu not in known)
    return counts, errors, problems


def cmd_validate(args: argparse.Namespace) -> int:
    counts, errors, problems = validate_all()
    if args.format == "json":
        print(json.dumps({"ok": not errors, "counts": counts, "errors": errors, "warnings": problems}, indent=2))
    else:
        for e in errors:
            print(f"ERROR {e}", file=sys.stderr)
        for p in problems:
            print(f"warning: {p}", file=sys.stderr)
        summary = ", ".join(f"{v} {k}" for k, v in counts.items())
        print(("dataset OK: " if not errors else "dataset has errors: ") + summary)
    return 1 if errors else 0


def cmd_export(args: argparse.Namespace) -> int:
    from advisor.api import MeasurementRow, filter_rows

    rows = filter_rows(args)
    records = [r.model_dump(mode="json") for r in rows]
    if args.format == "json":
        json.dump(records, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    import pandas as pd

    frame = pd.DataFrame.from_records(records, columns=list(MeasurementRow.model_fields))
    frame.to_csv(sys.stdout, index=False)
    return 0
