"""The synthetic-checkpoint cache lives in a folder of the user's own (issue #17): a shared temp
dir must not hand us a checkpoint someone else planted."""

from __future__ import annotations

import os
import stat

import pytest

from engine import models
from engine.models import ModelLoadError, scratch_dir


@pytest.fixture
def base(tmp_path, monkeypatch):
    monkeypatch.setenv("ECOLOBSTER_SCRATCH", str(tmp_path))
    return tmp_path


def test_scratch_dir_is_private_and_per_user(base):
    d = scratch_dir()
    assert d == base / f"ecolobster-synthetic-{os.getuid()}"
    st = os.lstat(d)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o700
    assert scratch_dir() == d  # reused


def test_own_folder_others_can_write_is_made_private(base):
    d = base / f"ecolobster-synthetic-{os.getuid()}"
    d.mkdir()
    os.chmod(d, 0o777)
    assert scratch_dir() == d and stat.S_IMODE(os.lstat(d).st_mode) == 0o700


def test_symlink_planted_in_its_place_is_refused(base, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("planted")
    (base / f"ecolobster-synthetic-{os.getuid()}").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ModelLoadError, match="not a directory"):
        scratch_dir()


def test_folder_of_another_user_is_refused(base, monkeypatch):
    me = os.getuid()
    other = me + 4242
    (base / f"ecolobster-synthetic-{other}").mkdir(mode=0o700)  # made by us, so not owned by `other`
    monkeypatch.setattr(models.os, "getuid", lambda: other)
    with pytest.raises(ModelLoadError, match=f"belongs to uid {me}, not you"):
        scratch_dir()
