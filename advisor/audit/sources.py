"""Reading what the user points at, safely: kinds by file name, size and binary guards, encodings,
notebooks (code cells, IPython magics), and per-file diagnostics instead of crashes.

Nothing here executes anything: files are read as bytes, decoded, and parsed as text or JSON.
FIFOs and devices are never opened (a read would block).
"""

from __future__ import annotations

import codecs
import errno
import io
import json
import os
import re
import stat
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from advisor.audit.models import Diagnostic
from advisor.audit.nodes import ShellCommand
from advisor.audit.policy import Policy
from advisor.audit.suppress import Suppressions
from advisor.messages.text import Msg, msg

KINDS = ("python", "notebook", "requirements", "pyproject", "yaml", "json", "shell", "dockerfile")
_REQ_NAME = re.compile(r"(^|[-_.])(requirements|constraints|requires)([-_.].*)?\.(txt|in)$", re.I)


def kind_for(name: str) -> str | None:
    """The reader for a file name, or None for files the auditor does not read."""
    base = os.path.basename(name)
    low = base.lower()
    if low.endswith((".py", ".pyw")):
        return "python"
    if low.endswith(".ipynb"):
        return "notebook"
    if low == "pyproject.toml":
        return "pyproject"
    if _REQ_NAME.search(low) or low in ("requirements.txt", "requirements.in"):
        return "requirements"
    if low.endswith((".yaml", ".yml")):
        return "yaml"
    if low.endswith(".json"):
        return "json"
    if low.endswith((".sh", ".bash")):
        return "shell"
    if low.startswith(("dockerfile", "containerfile")) or low.endswith(".dockerfile"):
        return "dockerfile"
    return None


@dataclass
class Source:
    path: str
    kind: str
    text: str
    cell_map: list[tuple[int, int]] | None = None  # notebook: text line index -> (cell, line in cell)
    shell: list[ShellCommand] = field(default_factory=list)  # notebook magics
    diagnostics: list[Diagnostic] = field(default_factory=list)
    memo: dict = field(default_factory=dict)  # per-file scratch space for rules (e.g. a text search done once)
    file_lines: list[int | None] | None = None  # notebook: text line index -> line in the .ipynb file

    def __post_init__(self) -> None:
        self.lines = self.text.splitlines()
        self._suppressions: Suppressions | None = None

    @property
    def suppressions(self) -> Suppressions:
        if self._suppressions is None:
            self._suppressions = Suppressions(self.lines)
        return self._suppressions

    def file_line(self, line: int) -> int | None:
        """Notebooks: the line of the .ipynb file that holds text line `line` (for SARIF and CI
        annotations, which point into the file as stored)."""
        if self.file_lines and 1 <= line <= len(self.file_lines):
            return self.file_lines[line - 1]
        return None

    def locate(self, line: int) -> tuple[int, int | None]:
        """(line, cell) as the user sees them: notebooks count lines within a cell."""
        if self.cell_map and 1 <= line <= len(self.cell_map):
            cell, in_cell = self.cell_map[line - 1]
            return in_cell, cell
        return line, None

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 1 <= line <= len(self.lines) else ""


def _diag(path: str, level: str, message: str | Msg, line: int | None = None) -> Diagnostic:
    text = message if isinstance(message, Msg) else None
    return Diagnostic(path=path, level=level, message=str(message), text=text, line=line)  # type: ignore[arg-type]


def read_bytes(path: Path) -> bytes:
    """Read a file; kept as a function of its own so tests can simulate unreadable files."""
    with open(path, "rb") as fh:
        return fh.read()


def load_path(path: Path, display: str, kind: str, policy: Policy) -> tuple[bytes | None, list[Diagnostic]]:
    try:
        st = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return None, [_diag(display, "error", msg("diag.symlink_self"))]
        if os.path.islink(path):
            return None, [_diag(display, "error", msg("diag.broken_symlink", target=os.readlink(path)))]
        return None, [_diag(display, "error", f"cannot read: {err.strerror or err}; skipped")]
    if not stat.S_ISREG(st.st_mode):
        return None, [_diag(display, "info", msg("diag.not_regular"))]
    limit_mb = policy.max_notebook_mb if kind == "notebook" else policy.max_file_mb
    if st.st_size > limit_mb * 1024 * 1024:
        return None, [_diag(display, "warning",
                            msg("diag.too_big", mb=f"{st.st_size / 1024 / 1024:.1f}",
                                                          limit=f"{limit_mb:g}", kind=kind))]
    try:
        return read_bytes(path), []
    except PermissionError:
        return None, [_diag(display, "error", msg("diag.permission"))]
    except OSError as err:
        return None, [_diag(display, "error", f"cannot read: {err.strerror or err}; skipped")]


def decode(data: bytes, display: str, kind: str) -> tuple[str | None, list[Diagnostic]]:
    """Bytes -> text. Binary files are skipped; undecodable bytes are replaced, with a warning,
    so the rest of the file is still audited."""
    if b"\x00" in data:  # text never holds NUL bytes: a binary or corrupt file
        return None, [_diag(display, "info", msg("diag.binary"))]
    encoding = "utf-8"
    diags: list[Diagnostic] = []
    if kind == "python":
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError as err:  # an unknown coding cookie, or bytes that are not UTF-8
            if "unknown encoding" in str(err.msg):
                diags.append(_diag(display, "warning", f"{err.msg}; read as UTF-8"))
            encoding = "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        text = data.decode(encoding, errors="replace")
        line = data[: err.start].count(b"\n") + 1
        diags.append(_diag(display, "warning",
                           msg("diag.encoding", encoding=encoding, byte=f"0x{data[err.start]:02x}", line=line), line))
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        diags.append(_diag(display, "info", msg("diag.empty")))
    return text, diags


# -- notebooks ----------------------------------------------------------------------------------
_SHELL_CELL_MAGICS = {"bash", "sh", "script", "system"}
_SKIP_CELL_MAGICS = {"writefile", "file", "html", "javascript", "js", "latex", "markdown", "svg", "perl", "ruby",
                     "sql", "capture_text"}
# Linear: the leading blanks and the first name character are disjoint, so no split is retried.
_ASSIGN_BANG = re.compile(r"^(\s*[\w.,\[\]][\w.,\s\[\]]*=\s*)!(.*)$")


def _cell_source(cell: dict) -> str:
    src = cell.get("source", cell.get("input", ""))
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def notebook_source(text: str, display: str) -> tuple[Source | None, list[Diagnostic]]:
    """The code cells of a notebook as one Python text, IPython magics turned into placeholders
    (shell lines are kept apart as ShellCommand nodes), and a map back to (cell, line)."""
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as err:
        return None, [_diag(display, "error", msg("diag.notebook_json", err=err.msg, line=err.lineno,
                                                                       col=err.colno), err.lineno)]
    except RecursionError:  # a hostile file of nested brackets
        return None, [_diag(display, "error", msg("diag.notebook_deep"))]
    if not isinstance(nb, dict):
        return None, [_diag(display, "error", msg("diag.notebook_object"))]
    cells = nb.get("cells")
    if cells is None and isinstance(nb.get("worksheets"), list) and nb["worksheets"]:  # nbformat 3
        cells = nb["worksheets"][0].get("cells") if isinstance(nb["worksheets"][0], dict) else None
    if not isinstance(cells, list):
        return None, [_diag(display, "error", msg("diag.notebook_cells"))]
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    lang = ""
    for k in ("kernelspec", "language_info"):
        sub = meta.get(k)
        if isinstance(sub, dict):
            lang = str(sub.get("language") or sub.get("name") or lang)
    if lang and "python" not in lang.lower():
        return None, [_diag(display, "info", msg("diag.notebook_lang", lang=lang))]
    out_lines: list[str] = []
    cmap: list[tuple[int, int]] = []
    fmap: list[int | None] = []
    shell: list[ShellCommand] = []
    keys = _source_key_lines(text)
    if len(keys) != len(cells):  # an unusual layout: no file lines rather than wrong ones
        keys = []
    code_index = 0
    for cell in cells:
        code_index += 1  # cells are numbered as the notebook shows them: markdown cells count too
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        key_line, per_line = keys[code_index - 1] if keys else (None, False)
        lines = _cell_source(cell).splitlines() or [""]
        magic = lines[0].strip()
        mode = "python"
        if magic.startswith("%%"):
            name = magic[2:].split()[0] if magic[2:].split() else ""
            mode = "shell" if name in _SHELL_CELL_MAGICS else ("skip" if name in _SKIP_CELL_MAGICS else "python")
            lines = [""] + lines[1:] if mode == "python" else lines
        for n, raw in enumerate(lines, start=1):
            text_line = raw
            stripped = raw.lstrip()
            indent = raw[: len(raw) - len(stripped)]
            gline = len(out_lines) + 1
            if mode == "shell":
                if n > 1 and stripped:
                    shell.append(ShellCommand(stripped, gline, "notebook cell magic"))
                text_line = ""
            elif mode == "skip":
                text_line = ""
            elif stripped.startswith("!"):
                shell.append(ShellCommand(stripped[1:], gline, "notebook shell line"))
                text_line = indent + "pass"
            elif stripped.startswith("%"):
                if re.match(r"%\s*(pip|conda|mamba|uv)\b", stripped):
                    shell.append(ShellCommand(stripped[1:], gline, "notebook magic"))
                text_line = indent + "pass"
            else:
                m = _ASSIGN_BANG.match(raw)
                if m:
                    shell.append(ShellCommand(m.group(2), gline, "notebook shell line"))
                    text_line = m.group(1) + "None"
            out_lines.append(text_line)
            cmap.append((code_index, n))
            fmap.append(None if key_line is None else key_line + (n if per_line else 0))
    src = Source(display, "notebook", "\n".join(out_lines) + "\n", cell_map=cmap, shell=shell, file_lines=fmap)
    return src, []


_SOURCE_KEY = re.compile(r'"source"\s*:\s*(\[\s*\n)?')


def _source_key_lines(text: str) -> list[tuple[int, bool]]:
    """(line of each cell's "source" key, whether its lines follow one per file line) in file
    order, as nbformat writes notebooks (a list of strings, one per line, after the key)."""
    out: list[tuple[int, bool]] = []
    line, at = 1, 0
    for m in _SOURCE_KEY.finditer(text):
        line += text.count("\n", at, m.start())
        at = m.start()
        out.append((line, m.group(1) is not None))
    return out


def join_continuations(text: str) -> list[tuple[int, str]]:
    """Logical lines of a shell-like text (backslash continuations joined), with first line numbers."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for n, line in enumerate(text.splitlines(), start=1):
        if not buf:
            start = n
        if line.rstrip().endswith("\\"):
            buf.append(line.rstrip()[:-1])
            continue
        buf.append(line)
        out.append((start, " ".join(s.strip() for s in buf)))
        buf = []
    if buf:
        out.append((start, " ".join(s.strip() for s in buf)))
    return out


def sniff_kind(text: str) -> str:
    """The most likely reader for pasted text with no file name (the chat, stdin)."""
    s = text.lstrip()
    if s.startswith("{"):
        try:
            obj = json.loads(s)
        except (json.JSONDecodeError, RecursionError):
            return "python"
        return "notebook" if isinstance(obj, dict) and "cells" in obj else "json"
    if s.startswith("[build-system]") or s.startswith("[project]") or "\n[project]" in text:
        return "pyproject"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not lines:
        return "python"
    req = sum(bool(re.match(r"^(-[-\w]+(\s|=|$)|[A-Za-z0-9][\w.\-]*(\[[^\]]*\])?\s*((==|>=|<=|~=|!=|===|<|>)\s*\S+|@\s*\S+)?\s*(;.*)?$)", ln))
              for ln in lines)
    if req == len(lines) and any(("==" in ln or ln.startswith("-")) for ln in lines):
        return "requirements"
    yaml_like = sum(bool(re.match(r"^(-\s+)?[A-Za-z_][\w.\-]*\s*:(\s|$)", ln)) for ln in lines)
    if yaml_like >= max(2, len(lines) * 0.6) and not any(ln.startswith(("import ", "from ", "def ")) for ln in lines):
        return "yaml"
    if lines[0].startswith(("pip ", "pip3 ", "conda ", "python -m pip", "uv pip", "RUN ", "FROM ")):
        return "shell"
    return "python"
