"""Turn the H100 sessions' raw results into the shipped dataset.

    python benchmarks/engine_h100_rows.py RESULTS_DIR...     # dirs holding *.jsonl and *_traces.tar.gz

Writes measurements/data/h100_inference.csv and h100_finetune.csv (one measured row per finished
configuration, full provenance in the row) and measurements/data/h100_raw.tar.gz (every result
line, the power traces, the logs) that the rows' ``trace_file`` points into. Later directories
win where a configuration appears twice. Without arguments it re-reads the committed raw archive
and checks that the CSVs are what it would write (so ``make bench`` verifies the conversion).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "measurements" / "data"
RAW = DATA / "h100_raw.tar.gz"
SOURCE = ("ecolobster engine on an NVIDIA H100 80GB HBM3 (SXM), device sessions of 2026-11-23; "
          "benchmarks/engine_h100_dataset.py {phase}; raw results and traces: measurements/data/h100_raw.tar.gz")
SESSION_NOTE = ("idle baseline measured right after the previous configuration, when the H100 still holds its "
                "clocks (about 120 W); the same GPU read {cold:.1f} W before anything ran in the session, so the "
                "net figures are net of that warm idle, not of a cold one")


def _results(dirs: list[Path], phase: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for d in dirs:
        f = d / f"{phase}.jsonl"
        if f.exists():
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    r = json.loads(line)
                    out[r["key"]] = r
    return out


def _cold_idle(dirs: list[Path]) -> float | None:
    for d in dirs:
        for log in d.glob("*.log"):
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("ENV "):
                    return float(json.loads(line[4:])["cold_idle_w"])
        env = d / "inference_env.json"
        if env.exists():
            return float(json.loads(env.read_text())["cold_idle_w"])
    return None


def rows_for(records: dict[str, dict[str, Any]], phase: str, cold_idle: float | None) -> list[Any]:
    from engine.finetune import FinetuneResult
    from engine.inference import InferenceResult
    from engine.rows import finetune_row, inference_row

    rows = []
    for rec in records.values():
        if rec.get("status") != "ok":
            continue
        if phase == "inference":
            res: Any = InferenceResult.model_validate(rec)
            conv: Any = inference_row
        else:
            res = FinetuneResult.model_validate(rec)
            conv = finetune_row
        if cold_idle is not None:
            res = res.model_copy(update={"notes": [*res.notes, SESSION_NOTE.format(cold=cold_idle)]})
        rows.append(conv(res, SOURCE.format(phase=phase), id_prefix="h100", trace_prefix="h100_raw.tar.gz:traces/"))
    return sorted(rows, key=lambda r: (r.model_id, r.precision, r.method or "", r.batch_size, r.id))


def render_csv(rows: list[Any]) -> str:
    from measurements.schema import MeasurementRow

    fields = list(MeasurementRow.model_fields)
    used = [f for f in fields if any(getattr(r, f) not in (None, "") for r in rows) or f in ("id", "notes")]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=used, lineterminator="\n")
    w.writeheader()
    for r in rows:
        d = r.model_dump(mode="json")
        w.writerow({k: ("" if d[k] is None else d[k]) for k in used})
    return buf.getvalue()


def build_raw(dirs: list[Path], records: dict[str, dict[str, dict[str, Any]]], cold: float | None) -> None:
    with tarfile.open(RAW, "w:gz") as out:
        meta = json.dumps({"cold_idle_w": cold}).encode()
        info = tarfile.TarInfo("session.json")
        info.size = len(meta)
        out.addfile(info, io.BytesIO(meta))
        for phase, recs in records.items():
            data = "".join(json.dumps(r) + "\n" for r in recs.values()).encode()
            info = tarfile.TarInfo(f"{phase}.jsonl")
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
        seen: set[str] = set()
        for d in reversed(dirs):  # later sessions win
            for tgz in sorted(d.glob("*_traces.tar.gz")):
                with tarfile.open(tgz) as tf:
                    for m in tf.getmembers():
                        if m.isfile() and m.name not in seen:
                            seen.add(m.name)
                            f = tf.extractfile(m)
                            assert f is not None
                            m2 = tarfile.TarInfo(f"traces/{m.name}")
                            payload = f.read()
                            m2.size = len(payload)
                            out.addfile(m2, io.BytesIO(payload))
            for log in sorted(d.glob("*.log")):
                payload = log.read_bytes()
                info = tarfile.TarInfo(f"logs/{d.name}-{log.name}")
                info.size = len(payload)
                out.addfile(info, io.BytesIO(payload))


def from_raw() -> tuple[dict[str, dict[str, dict[str, Any]]], float | None]:
    recs: dict[str, dict[str, dict[str, Any]]] = {}
    cold = None
    with tarfile.open(RAW) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m) if m.isfile() else None
            if f is None:
                continue
            text = f.read().decode("utf-8", errors="replace")
            if m.name.endswith(".jsonl"):
                recs[m.name[:-6]] = {json.loads(x)["key"]: json.loads(x) for x in text.splitlines() if x.strip()}
            elif m.name == "session.json":
                cold = json.loads(text)["cold_idle_w"]
    return recs, cold


def main(argv: list[str] | None = None) -> int:
    args = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not args:
        if not RAW.exists():
            print("engine_h100_rows: no raw archive to check")
            return 0
        recs, cold = from_raw()
        bad = 0
        for phase in ("inference", "finetune"):
            rows = rows_for(recs.get(phase, {}), phase, cold)
            path = DATA / f"h100_{phase}.csv"
            want = path.read_text(encoding="utf-8") if path.exists() else ""
            same = render_csv(rows) == want
            bad += not same
            print(f"{path.name}: {len(rows)} rows, {'matches' if same else 'DIFFERS FROM'} the raw archive")
        return 1 if bad else 0
    cold = _cold_idle(args)
    recs = {phase: _results(args, phase) for phase in ("inference", "finetune")}
    for phase, r in recs.items():
        rows = rows_for(r, phase, cold)
        (DATA / f"h100_{phase}.csv").write_text(render_csv(rows), encoding="utf-8")
        print(f"h100_{phase}.csv: {len(rows)} rows")
    build_raw(args, recs, cold)
    print(f"{RAW.name}: {RAW.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
