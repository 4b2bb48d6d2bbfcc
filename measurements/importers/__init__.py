"""Build shipped measurement CSVs from published external data, with provenance on every row.

The sources sit outside the repository (`../shared/external/` beside a checkout, see
`shared/external/README.md`); what they yield is committed under `measurements/data/`, so the
advisor never reads them at run time. `python -m measurements.importers` rebuilds the files, and
`python -m measurements.importers --check` says whether the committed ones still match.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from measurements.schema import MeasurementRow

REPO_ROOT = Path(__file__).resolve().parents[2]


def _source_dir() -> Path:
    """shared/external beside the repository, or beside a folder above it (a git worktree kept in a
    subfolder of the main checkout's parent finds the same sources)."""
    for d in REPO_ROOT.parents:
        if (d / "shared" / "external").is_dir():
            return d / "shared" / "external"
    return REPO_ROOT.parent / "shared" / "external"


DEFAULT_SOURCE_DIR = _source_dir()
DATA_DIR = REPO_ROOT / "measurements" / "data"


def read_source(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def num(cell: str | None) -> float | None:
    """A number from a source cell; empty means unknown."""
    cell = (cell or "").strip()
    return float(cell) if cell else None


def to_csv(rows: Sequence[MeasurementRow]) -> str:
    """Rows as a shipped CSV: only the columns some row fills, in schema order, stable text."""
    fields = [f for f in MeasurementRow.model_fields
              if any(getattr(r, f) not in (None, "") for r in rows) or f in ("id", "source", "kind")]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        data = r.model_dump(mode="json")
        w.writerow(["" if data[f] is None else _cell(data[f]) for f in fields])
    return buf.getvalue()


def _cell(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6f}".rstrip("0").rstrip(".")
    return str(v)


def unique_ids(rows: Iterable[MeasurementRow]) -> None:
    seen: set[str] = set()
    for r in rows:
        if r.id in seen:
            raise ValueError(f"importer produced the id '{r.id}' twice")
        seen.add(r.id)


def built_files(source_dir: Path) -> dict[str, str]:
    """Every shipped CSV the importers make, name -> text, from the external folder."""
    from measurements.importers import ecocompute, mlenergy

    seed = read_seed003()
    out = {}
    for name, rows in ((mlenergy.OUT_FILE, mlenergy.build(source_dir)),
                       (ecocompute.OUT_FILE, ecocompute.build(source_dir, seed))):
        unique_ids(rows)
        out[name] = to_csv(rows)
    return out


def read_seed003() -> list[MeasurementRow]:
    from measurements.store import read_csv

    return read_csv(DATA_DIR / "seed003_ecocompute.csv")
