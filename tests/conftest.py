"""Shared test set-up: every test gets its own empty local data directory, so no test reads or
writes the real ~/.local/share/ecolobster."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    d = tmp_path_factory.mktemp("ecolobster-data")
    monkeypatch.setenv("ECOLOBSTER_DATA_DIR", str(d))
    monkeypatch.setenv("XDG_STATE_HOME", str(d / "state"))
    monkeypatch.setenv("NO_COLOR", "1")
    return d
