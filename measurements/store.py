"""Load the shipped measurement CSVs plus the user's local rows; append new rows safely.

Shipped data are strict: one invalid row stops loading with the file, line and field named, so
the dataset is never partially loaded in silence. The local store (JSON lines written by the
engine) is forgiving: a corrupt line is reported and skipped, the other rows are kept.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from measurements.schema import MeasurementRow
from measurements.validation import describe

log = logging.getLogger(__name__)


DATA_DIR = Path(__file__).parent / "data"
LOCAL_FILE = "measurements.jsonl"
# Resource bounds of the local reader (not facts about the world): a row is a few kB, so a line of
# 1 MiB is not a row, and 256 MiB is ~100,000x the store of a long measurement campaign.
MAX_LINE_BYTES = 1 << 20
MAX_STORE_BYTES = 256 << 20


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
    """A bad row or catalog line: every field that is wrong, on one line."""
    return describe(err, "field '{where}': {msg}", whole="row")


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


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


@dataclass
class LocalLoad:
    """What the local store held: the rows kept, the lines skipped (``problems``), and the reasons
    the store or a row is unusable (``errors``: the file cannot be read, a row breaks physics)."""

    rows: list[MeasurementRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class _NotRegular(OSError):
    pass


def _open_regular(path: Path) -> int:
    """Open `path` for reading only if it is a regular file, else None (FileNotFoundError passes).

    O_NONBLOCK so that a FIFO never blocks the open; the type is checked on the open descriptor
    (fstat), so a file swapped for a FIFO or device between a check and the open is still refused.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _NotRegular(_file_kind(mode))
    os.set_blocking(fd, True)
    return fd


def _parse_line(raw: bytes) -> MeasurementRow:
    text = raw.decode("utf-8", errors="replace")
    obj = json.loads(text)  # RecursionError / ValueError are the caller's to report
    # A lone surrogate ("\ud800") is valid JSON but cannot be written back out as UTF-8: such a row
    # would break every JSON answer that cites it, so it is refused here.
    json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return MeasurementRow.model_validate(obj)


def read_local(path: Path | None = None) -> LocalLoad:
    """Read the local JSONL store; it survives any file.

    Only a regular file is opened (a directory, FIFO or device is reported, never read); at most
    MAX_STORE_BYTES are read and a line longer than MAX_LINE_BYTES is skipped unread, so a link to
    /dev/zero or a runaway file cannot exhaust memory; a line that is not JSON, nests too deep, is
    not a valid row or breaks physics (measurements.plausible) is skipped and reported.
    """
    path = path or local_store_path()
    out = LocalLoad()
    try:
        fd = _open_regular(path)
    except FileNotFoundError:
        return out
    except _NotRegular as err:
        out.errors.append(f"{path}: the local store is {err}, not a regular file; its rows were not read")
        return out
    except OSError as err:
        out.errors.append(f"{path}: the local store cannot be read ({err.strerror or err}); its rows were not read")
        return out
    from measurements.plausible import implausible

    read = 0
    with os.fdopen(fd, "rb") as fh:
        n = 0
        while True:
            try:
                raw = fh.readline(MAX_LINE_BYTES + 1)
            except OSError as err:
                out.errors.append(f"{path}: read failed after line {n} ({err.strerror or err}); "
                                  "the rest of the store was not read")
                break
            if not raw:
                break
            n += 1
            read += len(raw)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                # skip the rest of the over-long line without holding it in memory
                while True:
                    chunk = fh.readline(MAX_LINE_BYTES)
                    read += len(chunk)
                    if not chunk or chunk.endswith(b"\n") or read > MAX_STORE_BYTES:
                        break
                out.problems.append(f"{path}:{n}: line longer than {MAX_LINE_BYTES:,} bytes "
                                    "(a row is a few kB); line skipped")
            elif raw.strip():
                try:
                    row = _parse_line(raw)
                except RecursionError:
                    out.problems.append(f"{path}:{n}: JSON nested too deeply to be a row; line skipped")
                except json.JSONDecodeError as err:
                    out.problems.append(f"{path}:{n}: not valid JSON ({err.msg}); line skipped")
                except ValidationError as err:
                    out.problems.append(f"{path}:{n}: {_describe(err)}; line skipped")
                except (ValueError, UnicodeError) as err:  # e.g. a 5,000-digit integer, a lone surrogate
                    out.problems.append(f"{path}:{n}: not a valid row ({type(err).__name__}); line skipped")
                else:
                    bad = implausible(row)
                    if bad:
                        out.errors.append(f"{path}:{n}: row '{row.id}' is physically implausible: "
                                          f"{'; '.join(bad)}; row not used")
                    else:
                        out.rows.append(row)
            if read > MAX_STORE_BYTES:
                out.errors.append(f"{path}: larger than {MAX_STORE_BYTES:,} bytes; only the first "
                                  f"{n} lines were read")
                break
    return out


# Problems found while reading the local store on behalf of callers that did not ask for them
# (every answer, `data list`, the MCP tools). Front ends drain them with take_problems() and show
# them (stderr, the answer's warnings), so a skipped line is never silent.
_UNREPORTED: list[str] = []


def take_problems() -> list[str]:
    """The local-store problems not yet shown to the user, each once; clears them."""
    out = list(dict.fromkeys(_UNREPORTED))
    _UNREPORTED.clear()
    return out


def _note(messages: Iterable[str]) -> None:
    for m in messages:
        if m not in _UNREPORTED:
            _UNREPORTED.append(m)


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


def load_rows(include_local: bool = True, problems: list[str] | None = None,
              errors: list[str] | None = None) -> list[MeasurementRow]:
    """Every shipped row plus local rows. A local row with a shipped id replaces nothing: it is
    kept under its own id (local ids are made unique by the engine).

    What was skipped in the local store goes to `problems` when the caller passes a list (an
    unreadable store or an implausible row to `errors`, if given), else to the process's
    unreported problems (take_problems), which the CLI and the answers show."""
    rows = list(shipped_rows())
    if include_local:
        local = read_local()
        found = list(local.problems) if errors is not None else [*local.errors, *local.problems]
        if errors is not None:
            errors.extend(local.errors)
        ids = {r.id for r in rows}
        for r in local.rows:
            if r.id in ids:
                found.append(f"local row '{r.id}' has the id of another row; not used (row ids must be unique)")
                continue
            ids.add(r.id)
            rows.append(r)
        if problems is not None:
            problems.extend(found)
        else:
            _note(found)
    return rows


class WriteError(OSError):
    """Rows could not be stored; the file holds none of them (it was rolled back)."""

    def __init__(self, errno_: int | None, message: str):
        super().__init__(message)
        self.errno = errno_


def _open_for_append(path: Path) -> int:
    """An O_APPEND descriptor on the regular file `path` (created if missing), or WriteError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                     0o644)
    except OSError as err:
        raise WriteError(err.errno, f"cannot open {path} for writing ({err.strerror or err}); nothing was stored") \
            from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as err:  # pragma: no cover - fstat of an open descriptor
        os.close(fd)
        raise WriteError(err.errno, f"cannot inspect {path} ({err.strerror or err}); nothing was stored") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise WriteError(0, f"{path} is {_file_kind(mode)}, not a regular file; nothing was stored")
    os.set_blocking(fd, True)
    return fd


def check_writable(path: Path) -> None:
    """Raise WriteError now if rows could not be appended to `path` (before hours of measuring)."""
    os.close(_open_for_append(path))


def append_lines(path: Path, data: bytes) -> None:
    """Append complete lines to `path`: all of them durably, or none, or raise WriteError.

    One O_APPEND write loop under an exclusive lock, then fsync. os.write may write fewer bytes
    than asked (a file-size limit, a full disk): the loop writes the rest, and when the system
    refuses (EFBIG, ENOSPC, EIO) the file is truncated back to its size before the call, so no
    torn line is left to read and nothing is reported stored that is not. A killed writer leaves at
    most a partial final line (skipped on read; the next write starts on a fresh line), and two
    concurrent writers never interleave or lose lines. Only a regular file is written (a FIFO or
    device would block or swallow the rows).
    """
    if not data:
        return
    fd = _open_for_append(path)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data
        view = memoryview(data)
        try:
            while view:
                n = os.write(fd, view)
                if n <= 0:  # pragma: no cover - a regular file never returns 0 for a non-empty write
                    raise OSError(0, "the system accepted no bytes")
                view = view[n:]
            os.fsync(fd)
        except OSError as err:
            try:
                os.ftruncate(fd, start)
                os.fsync(fd)
                state = "the file was rolled back to its previous size"
            except OSError:
                log.warning("rolling back %s failed", path, exc_info=True)
                state = "the file could not be rolled back; its torn last line is skipped on read"
            raise WriteError(err.errno, f"writing to {path} failed after {len(data) - len(view):,} of "
                                        f"{len(data):,} bytes ({err.strerror or err}); nothing was stored, "
                                        f"{state}") from None
    finally:
        os.close(fd)


def append_rows(rows: Iterable[MeasurementRow], path: Path | None = None) -> int:
    """Append rows to the local store (see append_lines); returns how many, all durably stored.
    Raises WriteError when they could not be: then none is stored."""
    # unknown (None) fields are left out: they read back as the same defaults, and a line stays small
    # as the schema grows (serving, quality and provenance fields are None for most rows)
    payload = "".join(r.model_dump_json(exclude_none=True) + "\n" for r in rows)
    if payload:
        append_lines(path or local_store_path(), payload.encode("utf-8"))
    return payload.count("\n")
