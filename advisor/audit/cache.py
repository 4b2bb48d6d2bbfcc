"""The audit cache: one file's results, stored under a key made of its bytes, its path and kind,
and (in a namespace) the auditor's code, the measurements it cites and the run's settings, so a
re-run over an unchanged tree reads files and hashes them instead of auditing them.

Where: $ECOLOBSTER_CACHE_DIR, else $XDG_CACHE_HOME/ecolobster/audit, else ~/.cache/ecolobster/audit.
One JSON file per namespace, written atomically (a temporary file, then a rename), so a run that
is killed or two runs at once never leave half a file. A cache that cannot be read, is not JSON
or holds entries of another shape is ignored (entry by entry where it can be): the file is then
audited again, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT = 1
MAX_ENTRIES = 200_000  # about one entry per file ever audited under these settings; oldest go first
_PACKAGE = Path(__file__).resolve().parent  # advisor/audit
_ROOT = _PACKAGE.parents[1]


def cache_dir() -> Path:
    override = os.environ.get("ECOLOBSTER_CACHE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "ecolobster" / "audit"


def _code_files() -> list[Path]:
    """The code whose change must invalidate cached results: the auditor and what it imports
    for its findings (moods, the measurements' readers)."""
    files = sorted(_PACKAGE.rglob("*.py"))
    for rel in ("advisor/answer.py", "measurements/select.py", "measurements/schema.py", "measurements/store.py",
                "measurements/catalog.py"):
        p = _ROOT / rel
        if p.is_file():
            files.append(p)
    return files


def _data_files() -> list[Path]:
    from measurements.store import local_store_path

    out = sorted((_ROOT / "measurements" / "data").glob("*.csv")) + sorted((_ROOT / "measurements" / "catalog").glob("*.csv"))
    out.append(local_store_path())
    return out


def namespace(settings_json: str, extra: str = "") -> str:
    """The part of every key that is the same for a whole run: the auditor's own source (its
    version, however it was installed), the measurement files it reads impacts from (size and
    modification time), and the settings (rules selected, GPU, policy)."""
    h = hashlib.sha256(f"ecolobster-audit-cache/{FORMAT}\n".encode())
    for p in _code_files():
        try:
            h.update(p.name.encode() + b"\0" + p.read_bytes())
        except OSError:
            h.update(p.name.encode() + b"\0?")
    for p in _data_files():
        try:
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p.name}\0-\n".encode())
    h.update(settings_json.encode())
    h.update(extra.encode())
    return h.hexdigest()


def installed_versions() -> str:
    """Installed packages some rules read (ECO106 follows the installed transformers major when
    nothing is pinned): a different install must not reuse results."""
    import importlib.metadata

    out = []
    for pkg in ("transformers",):
        try:
            out.append(f"{pkg}=={importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{pkg} absent")
    return ";".join(out)


def file_key(data: bytes, display: str, kind: str, context: str = "") -> str:
    """One file's key: its bytes, where it is shown (findings carry the path) and its reader;
    `context` is what else its results depend on (requirement pins, for Python files)."""
    h = hashlib.blake2b(data, digest_size=20)
    h.update(b"\0" + display.encode("utf-8", "surrogateescape") + b"\0" + kind.encode() + b"\0" + context.encode())
    return h.hexdigest()


class AuditCache:
    def __init__(self, directory: Path, ns: str):
        self.directory = directory
        self.namespace = ns
        self.path = directory / f"{ns[:40]}.json"
        self.entries: dict[str, Any] = {}
        self.used: set[str] = set()
        self.added = 0
        self.problem: str | None = None  # why the cache could not be read or written, for a diagnostic
        self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as err:
            self.problem = f"cannot read the audit cache {self.path}: {err.strerror or err}; auditing without it"
            return
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return  # corrupt (a crash mid-write by an older version, a disk error): start afresh
        if (isinstance(data, dict) and data.get("format") == FORMAT and data.get("namespace") == self.namespace
                and isinstance(data.get("entries"), dict)):
            self.entries = data["entries"]

    def get(self, key: str) -> Any | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.used.add(key)
        return entry

    def drop(self, key: str) -> None:
        """An entry that did not read back as results: forget it (the file is audited again)."""
        self.entries.pop(key, None)
        self.used.discard(key)

    def put(self, key: str, entry: Any) -> None:
        self.entries.pop(key, None)  # re-inserted last: the newest entries survive the cap
        self.entries[key] = entry
        self.used.add(key)
        self.added += 1

    def save(self) -> None:
        if not self.added:
            return
        entries = self.entries
        if len(entries) > MAX_ENTRIES:
            keep = [k for k in entries if k not in self.used][-(MAX_ENTRIES - len(self.used)):] if len(
                self.used) < MAX_ENTRIES else []
            entries = {k: entries[k] for k in [*keep, *[k for k in entries if k in self.used]]}
        body = json.dumps({"format": FORMAT, "namespace": self.namespace, "entries": entries},
                          separators=(",", ":"), ensure_ascii=False)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".audit-", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(body)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as err:
            self.problem = f"cannot write the audit cache in {self.directory}: {err.strerror or err}; results not cached"
