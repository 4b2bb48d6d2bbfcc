"""The measurement schema and the store: strict shipped data, forgiving local data, safe appends."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from measurements import store
from measurements.schema import MeasurementRow
from measurements.store import DataError, append_rows, load_rows, read_csv, read_local

GOOD = dict(
    id="t-1", source="test", kind="measured", task="inference", gpu="a800", model_id="x/y",
    params_b=7.0, precision="fp16", batch_size=1, energy_j_per_1k_tok=100.0,
)


def _row(**kw) -> MeasurementRow:
    return MeasurementRow.model_validate({**GOOD, **kw})


def test_row_accepts_valid_and_rejects_bad_values():
    assert _row().precision == "fp16"
    with pytest.raises(ValidationError, match="batch_size"):
        _row(batch_size=-4)
    with pytest.raises(ValidationError, match="precision"):
        _row(precision="int4")
    with pytest.raises(ValidationError, match="int8_mixed"):
        _row(precision="int8")
    with pytest.raises(ValidationError, match="method"):
        _row(task="finetune")
    with pytest.raises(ValidationError, match="energy"):
        _row(energy_j_per_1k_tok=None)
    assert _row(energy_j_per_1k_tok=None, notes="CPU run: energy unavailable").energy_j_per_1k_tok is None
    assert _row(kind="simulated").is_evidence is False


def test_a_superseded_row_is_kept_but_never_evidence():
    old = _row(superseded_by="t-2", notes="superseded by t-2: its session's memo contradicts this throughput")
    assert old.is_evidence is False and old.kind == "measured"
    with pytest.raises(ValidationError, match="superseded_by"):
        _row(superseded_by="t-1", notes="superseded by t-1")  # itself
    with pytest.raises(ValidationError, match="superseded_by"):
        _row(superseded_by="t-2", notes="contradicted")  # the notes must name the row and say why
    with pytest.raises(ValidationError, match="superseded_by"):
        _row(superseded_by="t 2", notes="superseded by t 2")  # not an id


def test_every_superseded_shipped_row_names_a_shipped_evidence_row_of_its_configuration():
    rows = {r.id: r for r in load_rows(include_local=False)}
    superseded = [r for r in rows.values() if r.superseded_by]
    assert len(superseded) == 6
    for r in superseded:
        new = rows[r.superseded_by]  # type: ignore[index]
        assert new.is_evidence and (new.gpu, new.model_id, new.precision, new.batch_size) == (
            r.gpu, r.model_id, r.precision, r.batch_size)


def _csv(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "bad.csv"
    p.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return p


def test_csv_errors_name_file_line_and_field(tmp_path):
    header = "id,source,kind,task,gpu,model_id,params_b,precision,batch_size,energy_j_per_1k_tok\n"
    p = _csv(tmp_path, header + "aa1,src,measured,inference,a800,m/x,7,fp16,1,10\n"
                                "aa2,src,measured,inference,a800,m/x,7,int4,1,10\n")
    with pytest.raises(DataError, match=r"bad.csv:3: field 'precision'"):
        read_csv(p)
    p = _csv(tmp_path, header + "aa1,src,measured,inference,a800,m/x,7,fp16,-2,10\n")
    with pytest.raises(DataError, match=r"bad.csv:2: field 'batch_size'"):
        read_csv(p)
    p = _csv(tmp_path, header.replace(",energy_j_per_1k_tok", "") + "aa1,src,measured,inference,a800,m/x,7,fp16,1\n")
    with pytest.raises(DataError, match=r"bad.csv:2: .*energy"):
        read_csv(p)
    p = _csv(tmp_path, "id,source,bogus\nx,y,z\n")
    with pytest.raises(DataError, match=r"unknown column.*bogus"):
        read_csv(p)
    p = _csv(tmp_path, header + "aa1,src,measured,inference,a800,m/x,7,fp16,1,10,extra\n")
    with pytest.raises(DataError, match=r"bad.csv:2: more cells"):
        read_csv(p)


def test_shipped_data_never_loads_partially(tmp_path, monkeypatch):
    header = "id,source,kind,task,gpu,model_id,params_b,precision,batch_size,energy_j_per_1k_tok\n"
    (tmp_path / "a.csv").write_text(header + "aa1,src,measured,inference,a800,m/x,7,fp16,1,10\n")
    (tmp_path / "b.csv").write_text(header + "bb1,src,measured,inference,a800,m/x,7,fp16,0,10\n")
    monkeypatch.setattr(store, "DATA_DIR", tmp_path)
    store.shipped_rows.cache_clear()
    try:
        with pytest.raises(DataError, match="b.csv:2"):
            load_rows(include_local=False)
    finally:
        store.shipped_rows.cache_clear()


def test_local_store_roundtrip_and_corrupt_line_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("ECOLOBSTER_DATA_DIR", str(tmp_path))
    assert store.local_store_path() == tmp_path / "measurements.jsonl"
    assert append_rows([_row(id="loc-1"), _row(id="loc-2", batch_size=8)]) == 2
    with store.local_store_path().open("a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({**GOOD, "id": "loc-bad", "batch_size": 0}) + "\n")
    append_rows([_row(id="loc-3")])
    got = read_local()
    assert [r.id for r in got.rows] == ["loc-1", "loc-2", "loc-3"]
    assert len(got.problems) == 2
    assert "not valid JSON" in got.problems[0] and ":3:" in got.problems[0]
    assert "batch_size" in got.problems[1]
    problems: list[str] = []
    ids = {r.id for r in load_rows(problems=problems)}
    assert {"loc-1", "loc-2", "loc-3"} <= ids
    assert len(problems) == 2


def test_killed_writer_leaves_partial_line_that_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("ECOLOBSTER_DATA_DIR", str(tmp_path))
    path = store.local_store_path()
    append_rows([_row(id="ok-1")])
    with path.open("a") as fh:  # what a writer killed mid-write leaves behind
        fh.write(_row(id="half").model_dump_json()[:40])
    append_rows([_row(id="ok-2")])
    got = read_local()
    assert [r.id for r in got.rows] == ["ok-1", "ok-2"]
    assert len(got.problems) == 1


def _writer(path: str, start: int, n: int) -> None:
    for i in range(start, start + n):
        append_rows([_row(id=f"w-{i}", notes="x" * 2000)], Path(path))


def test_concurrent_writers_lose_no_rows(tmp_path):
    path = tmp_path / "m.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(path), k * 100, 60)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    got = read_local(path)
    assert got.problems == []
    assert sorted(r.id for r in got.rows) == sorted(f"w-{k * 100 + i}" for k in range(4) for i in range(60))


def test_importing_advisor_does_not_import_torch():
    code = (
        "import sys, advisor, advisor.cli, advisor.answer, measurements.store, measurements.catalog\n"
        "advisor.cli.build_parser()\n"
        "bad = [m for m in ('torch', 'transformers', 'bitsandbytes', 'peft') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_installed_wheel_finds_its_data_from_any_directory(tmp_path):
    """`pip install .` (not editable) ships the CSVs and references inside the package."""
    root = Path(__file__).resolve().parents[1]
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(root)],
        check=True, capture_output=True, text=True,
    )
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import advisor, measurements\n"
        "assert advisor.__file__.startswith(sys.argv[1]), advisor.__file__\n"
        "from advisor.cli import main\n"
        "sys.exit(main(['data', 'validate']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["ECOLOBSTER_DATA_DIR"] = str(tmp_path / "data")
    out = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "dataset OK" in out.stdout
    shipped = {p.name for p in (target / "measurements" / "data").glob("*.csv")}
    assert "seed003_ecocompute.csv" in shipped
    assert list((target / "references").glob("*.md")), "reference documents are not in the wheel"
    dist = next(target.glob("ecolobster-*.dist-info"))
    entry_points = (dist / "entry_points.txt").read_text()
    assert "ecolobster = advisor.cli:main" in entry_points
    assert "[ecolobster.commands]" in entry_points and "bench = engine.cli" in entry_points
