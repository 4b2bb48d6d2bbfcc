"""Load the shipped measurement CSVs plus the user's local rows; append new rows safely.

Shipped data are strict: one invalid row stops loading with the file, line and field named, so
the dataset is never partially loaded in silence. The local store (JSON lines written by the
engine) is forgiving: a corrupt line is reported and skipped, the other rows are kept.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from measurements.schema import MeasurementRow

DATA_DIR = Path(__file__).parent / "data"
LOCAL_FILE = "measurements.jsonl"


class DataError(ValueError):
    """A data file holds something that is not a valid measurement row."""


def data_home() -> Path:
    """Where local rows and state live: $ECOLOBSTER_DATA_DIR, else the XDG data directory."""
    override = os.environ.get("ECOLOBSTER_DATA_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "ecolobster"


def local_store_path() -> Path:
    return data_home() / LOCAL_FILE


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "row"
        parts.append(f"field '{loc}': {e['msg']}")
    return "; ".join(parts)


def _clean(cell: str | None) -> str | None:
    if cell is None:
        return None
    cell = cell.strip()
    return cell or None


def read_csv(path: Path) -> list[MeasurementRow]:
    """Parse one shipped CSV strictly; raise DataError naming file, line and field."""
    rows: list[MeasurementRow] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise DataError(f"{path.name}: empty file, expected a header row")
        unknown = set(reader.fieldnames) - set(MeasurementRow.model_fields)
        if unknown:
            raise DataError(
                f"{path.name}:1: unknown column(s) {sorted(unknown)}; accepted columns are the "
                "fields of measurements.schema.MeasurementRow"
            )
        for rec in reader:
            line = reader.line_num
            if None in rec:  # more cells than header columns
                raise DataError(f"{path.name}:{line}: more cells than header columns")
            values = {k: v for k, v in ((k, _clean(v)) for k, v in rec.items()) if v is not None}
            try:
                rows.append(MeasurementRow.model_validate(values))
            except ValidationError as err:
                raise DataError(f"{path.name}:{line}: {_describe(err)}") from None
    return rows


@dataclass
class LocalLoad:
    rows: list[MeasurementRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_local(path: Path | None = None) -> LocalLoad:
    """Read the local JSONL store; corrupt lines are reported and skipped."""
    path = path or local_store_path()
    out = LocalLoad()
    if not path.exists():
        return out
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.rows.append(MeasurementRow.model_validate(json.loads(line)))
            except json.JSONDecodeError as err:
                out.problems.append(f"{path}:{n}: not valid JSON ({err.msg}); line skipped")
            except ValidationError as err:
                out.problems.append(f"{path}:{n}: {_describe(err)}; line skipped")
    return out


@lru_cache(maxsize=1)
def shipped_rows() -> tuple[MeasurementRow, ...]:
    rows: list[MeasurementRow] = []
    seen: dict[str, str] = {}
    for path in sorted(DATA_DIR.glob("*.csv")):
        for row in read_csv(path):
            if row.id in seen:
                raise DataError(f"{path.name}: duplicate id '{row.id}' (also in {seen[row.id]})")
            seen[row.id] = path.name
            rows.append(row)
    return tuple(rows)


def load_rows(include_local: bool = True, problems: list[str] | None = None) -> list[MeasurementRow]:
    """Every shipped row plus local rows. A local row with a shipped id replaces nothing: it is
    kept under its own id (local ids are made unique by the engine)."""
    rows = list(shipped_rows())
    if include_local:
        local = read_local()
        if problems is not None:
            problems.extend(local.problems)
        ids = {r.id for r in rows}
        for r in local.rows:
            if r.id in ids:
                if problems is not None:
                    problems.append(f"local row '{r.id}' repeats an existing id; skipped")
                continue
            ids.add(r.id)
            rows.append(r)
    return rows


def append_lines(path: Path, data: bytes) -> None:
    """Append complete lines to `path` atomically.

    One O_APPEND write under an exclusive lock, fsynced: a killed writer leaves at most a partial
    final line (skipped on read, and the next write starts on a fresh line), and two concurrent
    writers never interleave or lose lines.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def append_rows(rows: Iterable[MeasurementRow], path: Path | None = None) -> int:
    """Append rows to the local store atomically (see append_lines); returns how many."""
    payload = "".join(r.model_dump_json() + "\n" for r in rows)
    if payload:
        append_lines(path or local_store_path(), payload.encode("utf-8"))
    return payload.count("\n")
