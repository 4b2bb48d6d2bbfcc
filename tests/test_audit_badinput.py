"""Bad input never crashes the auditor: each problem is a per-file diagnostic and the scan goes on
with the other files (here, a good file whose finding must still be reported)."""

from __future__ import annotations

import os

import pytest

from advisor.audit import Auditor, AuditSettings
from advisor.audit import sources as sources_mod

GOOD = "from transformers import BitsAndBytesConfig as B\nB(load_in_8bit=True)\n"


def scan(tmp_path, **settings):
    (tmp_path / "good.py").write_text(GOOD)
    report = Auditor(AuditSettings(**settings)).audit_paths([str(tmp_path)])
    assert [(os.path.basename(f.path), f.code) for f in report.findings] == [("good.py", "ECO101")]
    return {os.path.basename(d.path): d for d in report.diagnostics}


def test_binary_file(tmp_path):
    (tmp_path / "blob.py").write_bytes(b"\x7fELF\x00\x01\x02" * 100)
    d = scan(tmp_path)["blob.py"]
    assert "binary" in d.message


def test_ten_megabyte_file_is_skipped_with_the_limit_named(tmp_path):
    big = tmp_path / "huge.py"
    line = "x = 1  # " + "a" * 90 + "\n"
    big.write_text(line * (10 * 1024 * 1024 // len(line) + 1))
    assert big.stat().st_size >= 10 * 1024 * 1024
    d = scan(tmp_path)["huge.py"]
    assert d.level == "warning" and "MB limit" in d.message and "max-file-mb" in d.message


def test_symlink_loops_and_broken_links(tmp_path):
    os.symlink(tmp_path / "b.py", tmp_path / "a.py")
    os.symlink(tmp_path / "a.py", tmp_path / "b.py")
    os.symlink(tmp_path / "missing.py", tmp_path / "dangling.py")
    sub = tmp_path / "pkg"
    sub.mkdir()
    os.symlink(tmp_path, sub / "up")  # a directory link back to an ancestor
    diags = scan(tmp_path)
    assert "symlink loop" in diags["a.py"].message and "symlink loop" in diags["b.py"].message
    assert "broken symlink" in diags["dangling.py"].message
    assert "symlink loop" in diags["up"].message


def test_unreadable_file(tmp_path, monkeypatch):
    (tmp_path / "secret.py").write_text(GOOD)
    real = sources_mod.read_bytes

    def deny(path):
        if path.name == "secret.py":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(sources_mod, "read_bytes", deny)
    assert scan(tmp_path)["secret.py"].message == "permission denied; skipped"


def test_fifo_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    assert "not a regular file" in scan(tmp_path)["pipe.py"].message


@pytest.mark.parametrize(("name", "content", "needle"), [
    # Python files hold a trigger word (`generate`): a file no rule wants is not parsed at all.
    ("py2.py", b"print 'hello'\nexec 'x = 1'\nmodel.generate()\n", "Python 2"),
    ("half.py", b"model.generate()\ndef f(:\n", "syntax error"),
    ("nul_late.py", b"x = 1\n" * 2000 + b"\x00\n", "binary"),
    ("bad_cookie.py", b"# -*- coding: klingon -*-\nx = 1\n", "klingon"),
    ("empty.py", b"", "empty"),
    ("spaces.py", b"   \n\n\t\n", "empty"),
    ("nb.ipynb", b'{"cells": [', "broken JSON"),
    ("nb2.ipynb", b'[1, 2, 3]', "not a valid notebook"),
    ("cfg.json", b'{"a": ', "not valid JSON"),
    ("pyproject.toml", b"[project\nname=", "not valid TOML"),
    ("deep.py", b"x = generate" + b"(" * 5000 + b")" * 5000 + b"\n", ""),
])
def test_each_bad_file_gives_one_diagnostic(tmp_path, name, content, needle):
    (tmp_path / name).write_bytes(content)
    diags = scan(tmp_path)
    assert name in diags
    assert needle in diags[name].message


def test_a_file_no_rule_wants_is_not_parsed_so_its_syntax_is_not_checked(tmp_path):
    """The prefilter's trade: a file whose code holds no rule's trigger word cannot hold a
    finding, so it is read but not parsed, and a syntax error in it goes unreported."""
    (tmp_path / "half.py").write_bytes(b"def f(:\n")
    assert scan(tmp_path) == {}
    report = Auditor(AuditSettings()).audit_paths([str(tmp_path / "half.py")])
    assert report.files_scanned == 1 and not report.nothing_audited and not report.diagnostics


def test_non_utf8_bytes_are_replaced_and_audited(tmp_path):
    (tmp_path / "legacy.py").write_bytes(b"# caf\xe9\nm.generate(x, use_cache=False)\n")
    (tmp_path / "good.py").write_text(GOOD)
    r = Auditor(AuditSettings()).audit_paths([str(tmp_path)])
    assert sorted(f.code for f in r.findings) == ["ECO101", "ECO106"]
    assert any("not valid utf-8" in d.message for d in r.diagnostics)


def test_gitignore_and_default_excludes(tmp_path):
    (tmp_path / ".gitignore").write_text("build/\n*.gen.py\n!keep.gen.py\n/top_only.py\n")
    for rel in ("build/x.py", "a.gen.py", "keep.gen.py", "top_only.py", "sub/top_only.py", ".venv/lib/y.py",
                "node_modules/z.py", "sub/nested/w.py"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(GOOD)
    (tmp_path / "sub" / ".gitignore").write_text("nested/\n")
    r = Auditor(AuditSettings(exclude=["sub/top_only.py"])).audit_paths([str(tmp_path)])
    got = sorted(os.path.relpath(f.path, tmp_path) for f in r.findings)
    assert got == ["keep.gen.py"]


def test_explicit_file_is_audited_even_if_ignored(tmp_path):
    (tmp_path / ".gitignore").write_text("*.py\n")
    (tmp_path / "x.py").write_text(GOOD)
    assert [f.code for f in Auditor(AuditSettings()).audit_paths([str(tmp_path / "x.py")]).findings] == ["ECO101"]
