"""The chat's input history: persistent, but never allowed to stop the chat from starting."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from advisor.limits import MAX_HISTORY_ENTRY_CHARS, MAX_HISTORY_FILE_BYTES

HISTORY_FILE = "chat_history"


def history_path() -> Path:
    """$XDG_STATE_HOME/ecolobster, else the data dir when relocated, else ~/.local/state/ecolobster."""
    state = os.environ.get("XDG_STATE_HOME")
    if state:
        return Path(state).expanduser() / "ecolobster" / HISTORY_FILE
    if os.environ.get("ECOLOBSTER_DATA_DIR"):
        from advisor.api import data_home

        return data_home() / HISTORY_FILE
    return Path.home() / ".local" / "state" / "ecolobster" / HISTORY_FILE


def check_history_file(path: Path) -> str | None:
    """Why `path` cannot serve as the history file, or None when it can (creating its folder).
    Only a regular file of at most MAX_HISTORY_FILE_BYTES is used: a device (/dev/zero) or FIFO
    would be read without end, and is never opened."""
    import stat

    try:
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    return f"{parent} is a file, not a folder"
                break
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            return "it is a folder"
        if path.exists():
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                return "it is a device, pipe or socket, not a regular file"
            if st.st_size > MAX_HISTORY_FILE_BYTES:
                return (f"it is {st.st_size / 1e6:,.0f} MB, more than the {MAX_HISTORY_FILE_BYTES / 1e6:,.0f} MB "
                        "a history file may hold")
            with path.open("rb") as fh:
                fh.read(1)
        with path.open("ab"):
            pass
    except OSError as err:
        return err.strerror or str(err)
    return None


def make_history(path: Path | None) -> tuple[Any, str | None]:
    """A history for the prompt session and a notice for the user when it had to fall back."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    if path is None:
        return InMemoryHistory(), None
    problem = check_history_file(path)
    if problem:
        return InMemoryHistory(), problem

    class SafeFileHistory(FileHistory):
        """FileHistory that skips huge entries and survives a file that breaks mid-session."""

        def load_history_strings(self) -> Iterable[str]:
            try:
                return list(super().load_history_strings())
            except (OSError, MemoryError):
                return []

        def store_string(self, string: str) -> None:
            if len(string) > MAX_HISTORY_ENTRY_CHARS:
                return
            # On failure the in-memory list still has it; the next start reports the file.
            with contextlib.suppress(OSError):
                super().store_string(string)

    return SafeFileHistory(str(path)), None
