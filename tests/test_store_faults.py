"""The local store survives any file and never reports a row stored that is not (issue #17).

Reader: hostile files (a line of 100,000 '[', a directory, an unreadable file, a FIFO, a link to
/dev/zero, over-long lines, lone surrogates, rows that break physics) are skipped and reported
wherever rows are read. Writer: short writes, ENOSPC, EIO, a file-size limit and kill -9 at random
points: nothing acknowledged is lost and nothing torn is read.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from advisor.cli import main
from measurements import store
from measurements.schema import MeasurementRow
from measurements.store import WriteError, append_lines, append_rows, load_rows, read_local

ROOT = Path(__file__).resolve().parents[1]
GOOD = dict(id="t-1", source="test", kind="measured", task="inference", gpu="a800", model_id="x/y",
            params_b=7.0, precision="fp16", batch_size=1, energy_j_per_1k_tok=100.0)


def _row(**kw) -> MeasurementRow:
    return MeasurementRow.model_validate({**GOOD, **kw})


def _store() -> Path:
    p = store.local_store_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _run_cli_subprocess(tmp_env: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "ECOLOBSTER_DATA_DIR": str(tmp_env), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "advisor.cli", *argv], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


# --- the reader --------------------------------------------------------------------------------

def test_deep_nesting_line_is_skipped_and_reported_by_every_command(capsys):
    path = _store()
    append_rows([_row(id="loc-ok")])
    with path.open("a") as fh:
        fh.write("[" * 100_000 + "\n")
    got = read_local()
    assert [r.id for r in got.rows] == ["loc-ok"]
    assert len(got.problems) == 1 and ":2:" in got.problems[0] and "nested too deeply" in got.problems[0]

    code, out, err = _cli(capsys, "data", "list", "--format", "json")
    assert code == 0 and "loc-ok" in out
    assert "warning:" in err and "nested too deeply" in err and "Traceback" not in err

    code, out, err = _cli(capsys, "data", "validate", "--format", "json")
    report = json.loads(out)
    assert code == 0 and [w for w in report["warnings"] if "nested too deeply" in w]

    code, out, err = _cli(capsys, "ask", "greenest config for Mistral-7B on an A800", "--format", "json")
    answer = json.loads(out)
    assert code == 0 and [w for w in answer["warnings"] if "nested too deeply" in w]
    assert "nested too deeply" not in err  # said once, in the answer


def test_store_that_is_a_directory(capsys):
    _store().mkdir()
    code, out, err = _cli(capsys, "data", "list", "--format", "json")
    assert code == 0 and json.loads(out) and "is a directory, not a regular file" in err
    code, out, err = _cli(capsys, "data", "validate")
    assert code == 1 and "ERROR" in err and "is a directory" in err
    code, out, _ = _cli(capsys, "ask", "greenest config for Mistral-7B on an A800", "--format", "json")
    assert code == 0 and [w for w in json.loads(out)["warnings"] if "is a directory" in w]


def test_store_that_cannot_be_opened(monkeypatch, capsys):
    path = _store()
    append_rows([_row(id="loc-ok")])
    real_open = os.open

    def deny(p, *a, **kw):  # tests run as root, where chmod 000 does not stop a read
        if Path(p) == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real_open(p, *a, **kw)

    monkeypatch.setattr(store.os, "open", deny)
    got = read_local()
    assert got.rows == [] and "cannot be read (Permission denied)" in got.errors[0]
    code, _, err = _cli(capsys, "data", "list", "--format", "json")
    assert code == 0 and "Permission denied" in err


@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_fifo_or_dev_zero_store_never_hangs_or_fills_memory(tmp_path, kind):
    home = tmp_path / "home"
    home.mkdir()
    path = home / store.LOCAL_FILE
    if kind == "fifo":
        os.mkfifo(path)
        said = "a FIFO (named pipe), not a regular file"
    else:
        path.symlink_to("/dev/zero")
        said = "a device, not a regular file"
    t0 = time.monotonic()
    listed = _run_cli_subprocess(home, "data", "list", "--format", "json", timeout=60)
    validated = _run_cli_subprocess(home, "data", "validate", timeout=60)
    assert time.monotonic() - t0 < 60
    assert listed.returncode == 0 and json.loads(listed.stdout) and said in listed.stderr
    assert validated.returncode == 1 and said in validated.stderr and "Traceback" not in validated.stderr


def test_huge_lines_and_huge_files_are_bounded(monkeypatch):
    monkeypatch.setattr(store, "MAX_LINE_BYTES", 4096)
    path = _store()
    with path.open("wb") as fh:
        fh.write(b"x" * 50_000 + b"\n")  # a line with no end in sight, then a good row
        fh.write(_row(id="loc-after").model_dump_json().encode() + b"\n")
    got = read_local()
    assert [r.id for r in got.rows] == ["loc-after"]
    assert "line longer than 4,096 bytes" in got.problems[0] and ":1:" in got.problems[0]

    monkeypatch.setattr(store, "MAX_STORE_BYTES", 1000)
    append_rows([_row(id=f"loc-{i}") for i in range(20)])
    got = read_local()
    assert len(got.rows) < 20 and [e for e in got.errors if "larger than 1,000 bytes" in e]


def test_lone_surrogate_and_giant_integer_rows_are_skipped(capsys):
    path = _store()
    append_rows([_row(id="loc-ok")])
    with path.open("a") as fh:
        fh.write(json.dumps({**GOOD, "id": "loc-sur", "notes": "\ud800"}) + "\n")  # ensure_ascii: \ud800
        fh.write('{"id": "loc-big", "batch_size": ' + "9" * 5000 + "}\n")
    got = read_local()
    assert [r.id for r in got.rows] == ["loc-ok"] and len(got.problems) == 2
    code, out, _ = _cli(capsys, "data", "list", "--format", "json")
    assert code == 0 and [r["id"] for r in json.loads(out) if r["id"].startswith("loc-")] == ["loc-ok"]


def test_physically_implausible_local_row_fails_validate_and_never_answers(capsys):
    # 1e-9 J/1k tok for a 7B model on an A800: below idle power x peak-compute time (plausible.py)
    bogus = _row(id="local-bogus", model_id="mistralai/Mistral-7B-Instruct-v0.2", energy_j_per_1k_tok=1e-9,
                 throughput_tok_s=40.0, power_w=200.0, prompt_tokens=512, gen_tokens=256)
    assert append_rows([bogus]) == 1
    got = read_local()
    assert got.rows == [] and "physically implausible" in got.errors[0] and "energy_j_per_1k_tok" in got.errors[0]

    code, out, _ = _cli(capsys, "data", "validate", "--format", "json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    assert [e for e in report["errors"] if "local-bogus" in e and "physically implausible" in e]

    code, out, _ = _cli(capsys, "ask", "greenest config for Mistral-7B on an A800", "--format", "json")
    answer = json.loads(out)
    assert code == 0
    cited = {c["ref"] for c in answer["citations"]} | {i for p in answer["provenance"] for i in p["row_ids"]}
    assert "local-bogus" not in cited
    assert [w for w in answer["warnings"] if "local-bogus" in w]


def test_physics_floor_comes_from_the_catalog_and_passes_every_shipped_row():
    from measurements import catalog
    from measurements.plausible import implausible

    assert all(implausible(r) == [] for r in store.shipped_rows())
    g = catalog.gpu("a800")
    peak = max(g.fp16_tflops, g.bf16_tflops or 0, g.int8_tops or 0) * 1e12
    floor = 1000 * g.idle_power_w * catalog.factor("forward_flops_per_param_token") * 7e9 / peak
    assert implausible(_row(energy_j_per_1k_tok=floor * 1.01)) == []
    assert implausible(_row(energy_j_per_1k_tok=floor * 0.99))
    too_fast = peak / (catalog.factor("forward_flops_per_param_token") * 7e9) * 1.01
    assert [m for m in implausible(_row(throughput_tok_s=too_fast)) if "throughput_tok_s" in m]
    assert implausible(_row(gpu="cpu", energy_j_per_1k_tok=1e-9)) == []  # no catalog GPU: no bound here


# --- the writer --------------------------------------------------------------------------------

def test_short_writes_are_completed(monkeypatch, tmp_path):
    path = tmp_path / "m.jsonl"
    real_write = os.write
    calls = []

    def dribble(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(store.os, "write", dribble)
    assert append_rows([_row(id=f"s-{i}") for i in range(5)], path) == 5
    assert len(calls) > 5
    got = read_local(path)
    assert [r.id for r in got.rows] == [f"s-{i}" for i in range(5)] and got.problems == []


@pytest.mark.parametrize("code,where", [(errno.ENOSPC, "write"), (errno.EIO, "write"), (errno.EIO, "fsync"),
                                        (errno.EFBIG, "write")])
def test_failed_write_raises_and_rolls_back(monkeypatch, tmp_path, code, where):
    path = tmp_path / "m.jsonl"
    append_rows([_row(id="before")], path)
    size = path.stat().st_size
    real_write = os.write
    state = {"n": 0}

    def failing_write(fd, data):
        state["n"] += 1
        if state["n"] == 1:
            return real_write(fd, bytes(data[:100]))  # part of the payload reaches the file
        raise OSError(code, os.strerror(code))

    def failing_fsync(fd):
        raise OSError(code, os.strerror(code))

    if where == "write":
        monkeypatch.setattr(store.os, "write", failing_write)
    else:
        monkeypatch.setattr(store.os, "fsync", failing_fsync)
    with pytest.raises(WriteError, match="nothing was stored") as info:
        append_rows([_row(id=f"new-{i}") for i in range(20)], path)
    assert os.strerror(code) in str(info.value)
    monkeypatch.undo()
    if where == "write":
        assert path.stat().st_size == size  # rolled back: no torn line
    got = read_local(path)
    assert got.problems == [] and "before" in [r.id for r in got.rows]


def test_not_a_regular_file_is_refused_for_writing(tmp_path):
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(WriteError, match="Is a directory.*nothing was stored"):
        append_lines(tmp_path / "dir.jsonl", b"x\n")
    os.mkfifo(tmp_path / "pipe.jsonl")
    with pytest.raises(WriteError, match="FIFO"):  # would block forever without O_NONBLOCK
        append_lines(tmp_path / "pipe.jsonl", b"x\n")
    with pytest.raises(WriteError, match="cannot open"):
        append_lines(Path("/proc/definitely/not/here.jsonl"), b"x\n")


def test_file_size_limit_never_reports_rows_stored_that_are_not(tmp_path):
    """RLIMIT_FSIZE: the system accepts part of a write, then refuses (EFBIG); the issue's case."""
    path = tmp_path / "m.jsonl"
    code = textwrap.dedent(f"""
        import json, resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        from measurements.schema import MeasurementRow
        from measurements.store import WriteError, append_rows
        good = {GOOD!r}
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))
        acked = []
        for k in range(6):
            rows = [MeasurementRow.model_validate({{**good, "id": f"r-{{k}}-{{i}}"}}) for i in range(4)]
            try:
                n = append_rows(rows, __import__("pathlib").Path({str(path)!r}))
                acked += [r.id for r in rows][:n]
            except WriteError as err:
                print("ERR", err, file=sys.stderr)
        print(json.dumps(acked))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    acked = json.loads(out.stdout)
    assert "ERR" in out.stderr and "nothing was stored" in out.stderr
    got = read_local(path)
    assert [r.id for r in got.rows] == acked and got.problems == []  # every acked row, nothing torn
    assert 0 < len(acked) < 24


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from measurements.schema import MeasurementRow
    from measurements.store import append_rows
    good = dict(source="test", kind="measured", task="inference", gpu="a800", model_id="x/y", params_b=7.0,
                precision="fp16", batch_size=1, energy_j_per_1k_tok=100.0)
    path, tag = Path(sys.argv[2]), sys.argv[3]
    for i in range(100000):
        rows = [MeasurementRow(id=f"{tag}-{i}-{j}", notes="n" * (1000 * (i % 50)), **good) for j in range(3)]
        append_rows(rows, path)
        print(f"{tag}-{i}", flush=True)  # acknowledged: append_rows returned
""")


def test_kill_minus_9_at_random_points_loses_nothing_acknowledged(tmp_path):
    path = tmp_path / "m.jsonl"
    rng = random.Random(17)
    acked: set[str] = set()
    kills = 6
    for k in range(kills):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ROOT), str(path), f"w{k}"],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # started and wrote at least once
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
        proc.wait(10)
        acked |= {line for line in (first + rest).split() if line}
    got = read_local(path)
    written = {r.id.rsplit("-", 1)[0] for r in got.rows}
    assert acked <= written  # nothing acknowledged is lost
    for r in got.rows:  # nothing torn is read: every row is whole, field for field
        _, i, _ = r.id.split("-")
        assert r.notes == "n" * (1000 * (int(i) % 50)) and r.energy_j_per_1k_tok == 100.0
    assert len(got.problems) <= kills  # at most one torn tail per killed writer, each skipped and reported
    assert all("line skipped" in p for p in got.problems)
    # and the store still takes new rows on a fresh line after the torn tails
    append_rows([_row(id="after-kills")], path)
    assert read_local(path).rows[-1].id == "after-kills"


def test_load_rows_reports_through_take_problems_once():
    path = _store()
    path.write_text("garbage\n")
    store.take_problems()
    load_rows()
    load_rows()
    first = store.take_problems()
    assert len(first) == 1 and "not valid JSON" in first[0]
    assert store.take_problems() == []
    mine: list[str] = []
    load_rows(problems=mine)
    assert len(mine) == 1 and store.take_problems() == []


# --- bench: the store or the results file refuses the rows ----------------------------------------

TINY_BENCH = ["bench", "--model", "Qwen2.5-0.5B", "--synthetic", "--arch-override", "layers=2", "--arch-override",
              "hidden=64", "--arch-override", "heads=4", "--arch-override", "kv_heads=2", "--arch-override",
              "intermediate=128", "--arch-override", "vocab=512", "--precision", "fp32", "--batch-size", "1",
              "--prompt-tokens", "8", "--gen-tokens", "4", "--runs", "2", "--warmup", "1", "--pause", "0",
              "--device", "cpu", "--no-carbon", "--format", "json"]


def test_bench_refuses_to_start_when_the_store_or_out_cannot_be_written(capsys, tmp_path):
    _store().mkdir()  # the local dataset cannot take rows
    code, out, err = _cli(capsys, *TINY_BENCH, "--out", str(tmp_path / "r.jsonl"))
    assert code == 2 and "local dataset cannot be written" in err and "--no-store" in err
    assert not (tmp_path / "r.jsonl").read_text()  # nothing was measured
    (tmp_path / "outdir").mkdir()
    code, out, err = _cli(capsys, *TINY_BENCH, "--no-store", "--out", str(tmp_path / "outdir"))
    assert code == 2 and err.startswith("error: --out:") and "Traceback" not in err


def test_bench_store_failing_after_the_measurement_keeps_the_rows_and_says_so(capsys, tmp_path, monkeypatch):
    real = store.append_rows

    def store_refuses(rows, path=None):
        if path is None:  # the local dataset: as if the disk filled during the run
            raise WriteError(errno.ENOSPC, f"writing to {store.local_store_path()} failed (No space left on "
                                           "device); nothing was stored")
        return real(rows, path)

    monkeypatch.setattr(store, "append_rows", store_refuses)
    out_file = tmp_path / "r.jsonl"
    code, out, err = _cli(capsys, *TINY_BENCH, "--out", str(out_file))
    assert code == 2
    report = json.loads(out)
    assert report["stored_rows"] == 0 and len(report["row_ids"]) == 1
    assert "NOT added to the local dataset" in err and "No space left" in err
    aside = tmp_path / "r-rows.jsonl"
    assert f"cat {aside} >> " in err
    assert [r.id for r in read_local(aside).rows] == report["row_ids"]
    assert [json.loads(x)["status"] for x in out_file.read_text().splitlines()] == ["ok"]
    assert read_local().rows == []


def test_bench_results_file_failing_mid_sweep_is_a_clear_error(capsys, tmp_path, monkeypatch):
    import engine.results

    def full_disk(path, data):
        raise WriteError(errno.ENOSPC, f"writing to {path} failed after 0 of {len(data)} bytes (No space left on "
                                       "device); nothing was stored")

    monkeypatch.setattr(engine.results, "append_lines", full_disk)
    code, out, err = _cli(capsys, *TINY_BENCH, "--no-store", "--out", str(tmp_path / "r.jsonl"))
    assert code == 2 and "results file could not be written" in err and "No space left" in err
    assert "Traceback" not in err and out == ""
