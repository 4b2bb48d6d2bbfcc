"""Worker processes (--jobs) and the audit cache: the same results in the same order, and a
cache that is invalidated by content and options and survives being corrupted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.audit import Auditor, AuditSettings
from advisor.audit.cache import cache_dir
from advisor.audit.policy import Policy

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus" / "audit"

LOAD = '''from transformers import AutoModelForCausalLM, BitsAndBytesConfig
cfg = BitsAndBytesConfig(load_in_8bit=True)
m = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-7B-Instruct", quantization_config=cfg, device_map="auto")
for p in prompts:
    m.generate(**tok(p, return_tensors="pt"), use_cache=False)
'''


def tree(tmp_path: Path, n: int = 24) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(CORPUS, root / "corpus")
    for i in range(n):  # enough files for the workers to be used
        (root / "pkg" / f"mod_{i:02d}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / f"mod_{i:02d}.py").write_text(LOAD if i % 3 == 0 else f"def f{i}(x):\n    return x + {i}\n")
    return root


def dump(report) -> dict:
    d = report.model_dump(mode="json")
    d.pop("elapsed_s")
    return d


def test_workers_give_the_same_report_in_the_same_order(tmp_path):
    root = tree(tmp_path)
    one = Auditor(AuditSettings(), jobs=1).audit_paths([str(root)])
    two = Auditor(AuditSettings(), jobs=2).audit_paths([str(root)])
    assert dump(one) == dump(two)
    assert len(one.findings) > 20 and one.diagnostics  # the corpus's bad files say why


def test_jobs_must_be_positive():
    with pytest.raises(ValueError, match="1 or more"):
        Auditor(AuditSettings(), jobs=0)


def test_a_rerun_of_an_unchanged_tree_comes_from_the_cache(tmp_path):
    root, cache = tree(tmp_path), tmp_path / "cache"
    first = Auditor(AuditSettings(), cache=cache)
    r1 = first.audit_paths([str(root)])
    assert first.cache_hits == 0 and first.files_parsed > 0
    again = Auditor(AuditSettings(), cache=cache)
    r2 = again.audit_paths([str(root)])
    assert dump(r1) == dump(r2)
    assert again.files_parsed == 0 and again.cache_hits == r1.files_given - len(
        [d for d in r1.diagnostics if "skipped" in d.message and "cannot" in d.message])


def test_a_changed_file_is_audited_again(tmp_path):
    root, cache = tree(tmp_path), tmp_path / "cache"
    Auditor(AuditSettings(), cache=cache).audit_paths([str(root)])
    target = root / "pkg" / "mod_01.py"
    target.write_text(LOAD)
    a = Auditor(AuditSettings(), cache=cache)
    report = a.audit_paths([str(root)])
    assert a.files_parsed == 1
    assert any(f.path.endswith("mod_01.py") and f.code == "ECO101" for f in report.findings)


@pytest.mark.parametrize("settings", [
    AuditSettings(select=["ECO101"]),
    AuditSettings(ignore=["ECO106"]),
    AuditSettings(gpu="a800"),
    AuditSettings(policy=Policy(max_checkpoints_per_run=3)),
])
def test_other_options_do_not_reuse_cached_results(tmp_path, settings):
    root, cache = tree(tmp_path, n=3), tmp_path / "cache"
    Auditor(AuditSettings(), cache=cache).audit_paths([str(root)])
    a = Auditor(settings, cache=cache)
    report = a.audit_paths([str(root)])
    assert a.cache_hits == 0
    fresh = Auditor(settings).audit_paths([str(root)])
    assert dump(report) == dump(fresh)


def test_a_new_requirement_pin_reaudits_python_files(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "serve.py").write_text('from transformers import AutoModelForCausalLM\n'
                                   'm = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-7B").to("cuda")\n')
    cache = tmp_path / "cache"
    gray = Auditor(AuditSettings(), cache=cache).audit_paths([str(root)])
    (root / "requirements.txt").write_text("transformers==4.46.0\n")
    a = Auditor(AuditSettings(), cache=cache)
    pinned = a.audit_paths([str(root)])
    assert [f.severity for f in gray.findings if f.code == "ECO107"] == ["gray"]
    assert [f.severity for f in pinned.findings if f.code == "ECO107"] == ["yellow"]
    # and the pin, read from the cache on the next run, still reaches the Python file
    b = Auditor(AuditSettings(), cache=cache)
    assert dump(b.audit_paths([str(root)])) == dump(pinned) and b.files_parsed == 0


def test_a_corrupt_cache_is_ignored_and_rewritten(tmp_path):
    root, cache = tree(tmp_path, n=3), tmp_path / "cache"
    good = Auditor(AuditSettings(), cache=cache).audit_paths([str(root)])
    [f] = list(cache.glob("*.json"))
    f.write_bytes(b"\x00{not json")
    a = Auditor(AuditSettings(), cache=cache)
    assert dump(a.audit_paths([str(root)])) == dump(good) and a.cache_hits == 0
    json.loads(f.read_text())  # written again, whole


def test_a_corrupt_entry_is_audited_again(tmp_path):
    root, cache = tree(tmp_path, n=3), tmp_path / "cache"
    good = Auditor(AuditSettings(), cache=cache).audit_paths([str(root)])
    [f] = list(cache.glob("*.json"))
    data = json.loads(f.read_text())
    keys = list(data["entries"])
    data["entries"][keys[0]] = {"findings": "oops"}
    data["entries"][keys[1]] = {**data["entries"][keys[1]], "findings": [{"code": 1}]}
    f.write_text(json.dumps(data))
    a = Auditor(AuditSettings(), cache=cache)
    assert dump(a.audit_paths([str(root)])) == dump(good)
    assert a.cache_hits == len(keys) - 2


def test_an_unwritable_cache_is_a_warning_not_a_failure(tmp_path):
    root = tree(tmp_path, n=3)
    blocker = tmp_path / "file"
    blocker.write_text("")
    report = Auditor(AuditSettings(), cache=blocker / "cache").audit_paths([str(root)])
    assert any("audit cache" in d.message and d.level == "warning" for d in report.diagnostics)
    assert report.findings


def test_a_file_over_its_time_budget_is_not_cached(tmp_path, monkeypatch):
    root = tmp_path / "p"
    root.mkdir()
    (root / "a.py").write_text(LOAD)
    cache = tmp_path / "cache"
    slow = AuditSettings(policy=Policy(time_budget_s=1e-9))
    r = Auditor(slow, cache=cache).audit_paths([str(root)])
    assert any("time budget" in d.message for d in r.diagnostics)
    a = Auditor(AuditSettings(policy=Policy(time_budget_s=1e-9)), cache=cache)
    a.audit_paths([str(root)])
    assert a.cache_hits == 0


def test_the_cache_lives_in_the_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("ECOLOBSTER_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "ecolobster" / "audit"
    monkeypatch.setenv("ECOLOBSTER_CACHE_DIR", str(tmp_path / "own"))
    assert cache_dir() == tmp_path / "own"


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "advisor.cli", "audit", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, check=False)


def test_cli_jobs_and_cache_flags(tmp_path):
    root = tree(tmp_path)
    env = {"ECOLOBSTER_CACHE_DIR": str(tmp_path / "c")}
    serial = run_cli(str(root), "--format", "concise", "--jobs", "1", "--no-cache", env=env)
    assert not (tmp_path / "c").exists()  # --no-cache writes nothing
    parallel = run_cli(str(root), "--format", "concise", "--jobs", "2", env=env)
    cached = run_cli(str(root), "--format", "concise", env=env)
    assert serial.returncode == parallel.returncode == cached.returncode == 1
    assert serial.stdout == parallel.stdout == cached.stdout and serial.stdout.count("\n") > 20
    assert list((tmp_path / "c").glob("*.json"))
    other = run_cli(str(root), "--format", "concise", "--cache-dir", str(tmp_path / "d"), env=env)
    assert other.stdout == serial.stdout and list((tmp_path / "d").glob("*.json"))
    bad = run_cli(str(root), "--jobs", "0")
    assert bad.returncode == 2 and "--jobs" in bad.stderr and "1 or more" in bad.stderr
