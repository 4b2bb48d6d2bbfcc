"""Turn a GPU session's raw results into the shipped dataset.

    python benchmarks/engine_rows.py --gpu h200 RESULTS_DIR...   # dirs holding *.jsonl, *_traces.tar.gz, *.log
    python benchmarks/engine_rows.py                             # check every GPU's CSVs against its archive

Writes measurements/data/<gpu>_inference.csv and <gpu>_finetune.csv (one measured row per finished
configuration, full provenance in the row) and measurements/data/<gpu>_raw.tar.gz (every result
line, the power traces, the logs) that the rows' ``trace_file`` points into. What the GPU's archive
already holds is kept; later directories win where a configuration appears twice. Without
arguments it re-reads each committed raw archive and checks that the CSVs are what it would write
(``make bench`` verifies the conversion).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "measurements" / "data"


class Session(NamedTuple):
    """What a GPU's rows say about where and how they were measured."""

    gpu: str  # the name used in notes
    described: str  # the GPU as the source column names it
    dates: dict[str, str]  # per phase: the sessions that measured it
    commands: dict[str, str]  # per phase: the command that ran the sweep
    warm_idle: str  # the idle draw right after a configuration (seen in the traces)
    # A later session of a phase: (phase, first started_at of its records, date, command). A
    # record started at or after that time was measured by it, so each row names its own session.
    later: tuple[tuple[str, str, str, str], ...] = ()

    def measured_by(self, phase: str, started_at: str | None) -> tuple[str, str]:
        """The date and command of the session that measured a record of this phase."""
        for ph, since, date, command in sorted(self.later, key=lambda x: x[1], reverse=True):
            if ph == phase and started_at and started_at >= since:
                return date, command
        return self.dates[phase], self.commands[phase]


SWEEP = "benchmarks/engine_dataset.py {phase}"
SESSIONS = {
    "h100": Session("H100", "an NVIDIA H100 80GB HBM3 (SXM)", {"inference": "2026-11-23", "finetune": "2026-11-23"},
                    {"inference": SWEEP, "finetune": SWEEP}, "about 120 W"),
    "h200": Session("H200", "an NVIDIA H200 141GB HBM3e (SXM)", {"inference": "2026-12-01", "finetune": "2026-12-02"},
                    {"inference": SWEEP, "finetune": "ecolobster bench --finetune, micro-batch 1, 2 and 4"},
                    "about 125 W",
                    later=(("finetune", "2026-12-02T03:45:22Z", "2026-12-02",
                            "benchmarks/gpu_session.sh finetune (ecolobster bench --finetune, micro-batch 2 and 4 at "
                            "512 and 2,048 tokens, gradient checkpointing on and off)"),
                           ("finetune", "2026-12-02T09:01:54Z", "2026-12-02",
                            "benchmarks/ft_remeasure.sh (ecolobster bench --finetune, 3 warm-up and 20 measured steps, "
                            "one re-run on a failed gate: micro-batch 1, 2 and 4 at 512 tokens and micro-batch 1 at "
                            "2,048 tokens, checkpointing on and off)"),
                           ("inference", "2026-12-02T18:43:00Z", "2026-12-02",
                            "benchmarks/gpu_session.sh fp8 (benchmarks/engine_dataset.py inference --fp8: torchao FP8 "
                            "weight-only for the four Qwen2.5 sizes and dynamic activation + weight for 1.5B and 3B, "
                            "batch 1 and 8, no re-runs)"))),
}
SOURCE = ("ecolobster engine on {described}, device sessions of {dates}; "
          "{command}; raw results and traces: measurements/data/{key}_raw.tar.gz")
SESSION_NOTE = ("idle baseline measured right after the previous configuration, when the {gpu} still holds its "
                "clocks ({warm_idle}); the same GPU read {cold:.1f} W before anything ran in the session, so the "
                "net figures are net of that warm idle, not of a cold one")


# A later session that logged no cold idle must not inherit the first session's reading.
UNREAD_NOTE = ("idle baseline measured right after the previous configuration, when the {gpu} still holds its "
               "clocks ({warm_idle}); this session did not read the GPU cold, so the net figures are net of that "
               "warm idle")


def session_note(key: str, cold: float | None) -> str:
    if cold is None:
        return UNREAD_NOTE.format(**SESSIONS[key]._asdict())
    return SESSION_NOTE.format(cold=cold, **SESSIONS[key]._asdict())


def has_session_note(notes: list[str]) -> bool:
    return any(n.startswith(SESSION_NOTE.split("{")[0]) for n in notes)


def raw_path(key: str) -> Path:
    return DATA / f"{key}_raw.tar.gz"


def _result_files(d: Path, phase: str) -> list[Path]:
    """A phase's result files in a directory: <phase>.jsonl, and for fine-tuning the per-model
    ft-<model>.jsonl that `benchmarks/gpu_session.sh finetune` writes."""
    return [d / f"{phase}.jsonl", *(sorted(d.glob("ft-*.jsonl")) if phase == "finetune" else [])]


def _results(dirs: list[Path], phase: str) -> dict[str, dict[str, Any]]:
    from engine.results import read_jsonl  # skips a torn last line, as a resumed sweep does

    return {r["key"]: r for d in dirs for f in _result_files(d, phase) if f.exists()
            for r in read_jsonl(f) if "key" in r}


def _cold_idle(dirs: list[Path]) -> float | None:
    """The lowest idle read at the start of any phase: the coldest the GPU was seen."""
    seen: list[float] = []
    for d in dirs:
        for log in d.glob("*.log"):
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("ENV "):
                    seen.append(float(json.loads(line[4:])["cold_idle_w"]))
        env = d / "inference_env.json"
        if env.exists():
            seen.append(float(json.loads(env.read_text())["cold_idle_w"]))
    return min(seen) if seen else None


def rows_for(records: dict[str, dict[str, Any]], phase: str, cold_idle: float | None, key: str) -> list[Any]:
    from engine.finetune import FinetuneResult
    from engine.inference import InferenceResult
    from engine.rows import finetune_row, inference_row

    sess = SESSIONS[key]
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
        if cold_idle is not None and not has_session_note(res.notes):  # else it came with its own session
            res = res.model_copy(update={"notes": [*res.notes, session_note(key, cold_idle)]})
        date, command = sess.measured_by(phase, rec.get("started_at"))
        rows.append(conv(res, SOURCE.format(key=key, described=sess.described, dates=date,
                                       command=command.format(phase=phase)), id_prefix=key,
                         trace_prefix=f"{key}_raw.tar.gz:traces/"))
    return sorted(rows, key=lambda r: (r.model_id, r.precision, r.method or "", r.batch_size, r.id))


def render_csv(rows: list[Any]) -> str:
    from measurements.schema import MeasurementRow

    fields = MeasurementRow.model_fields

    def shown(f: str) -> bool:
        # framework is written only where some row is not hf-eager, its default: the store fills
        # the default back, and the CSVs shipped before the column stay byte-identical.
        if f == "framework":
            return any(getattr(r, f) != fields[f].default for r in rows)
        return any(getattr(r, f) not in (None, "") for r in rows)

    used = [f for f in fields if shown(f) or f in ("id", "notes")]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=used, lineterminator="\n")
    w.writeheader()
    for r in rows:
        d = r.model_dump(mode="json")
        w.writerow({k: ("" if d[k] is None else d[k]) for k in used})
    return buf.getvalue()


def _add(out: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    out.addfile(info, io.BytesIO(payload))


def build_raw(raw: Path, dirs: list[Path], records: dict[str, dict[str, dict[str, Any]]],
              cold: float | None) -> None:
    """Write the archive: the merged result lines, then every trace and log. What an existing
    archive holds is kept (new directories win on a name clash), and the file is replaced only
    once the new one is complete, so a rebuild from new directories never loses earlier data."""
    files: dict[str, bytes] = {}
    if raw.exists():
        with tarfile.open(raw) as tf:
            for m in tf.getmembers():
                f = tf.extractfile(m) if m.isfile() else None
                if f is not None and m.name.startswith(("traces/", "logs/")):
                    files[m.name] = f.read()
    for d in dirs:  # in order: later sessions win
        # <phase>_traces.tar.gz of a sweep, ft-traces.tar.gz of gpu_session.sh (one folder per
        # model inside): a row's trace_file is the bare file name, so the archive keeps it flat
        for tgz in sorted(d.glob("*traces.tar.gz")):
            with tarfile.open(tgz) as tf:
                for m in tf.getmembers():
                    f = tf.extractfile(m) if m.isfile() else None
                    if f is not None:
                        files[f"traces/{Path(m.name).name}"] = f.read()
        for log in sorted(d.glob("*.log")):
            files[f"logs/{d.name}-{log.name}"] = log.read_bytes()
    tmp = raw.with_name(raw.name + ".partial")
    with tarfile.open(tmp, "w:gz") as out:
        _add(out, "session.json", json.dumps({"cold_idle_w": cold}).encode())
        for phase, recs in records.items():
            _add(out, f"{phase}.jsonl", "".join(json.dumps(r) + "\n" for r in recs.values()).encode())
        for name in sorted(files):
            _add(out, name, files[name])
    tmp.replace(raw)


def from_raw(raw: Path) -> tuple[dict[str, dict[str, dict[str, Any]]], float | None]:
    recs: dict[str, dict[str, dict[str, Any]]] = {}
    cold = None
    with tarfile.open(raw) as tf:
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


def check(key: str) -> bool:
    """True when the committed CSVs of this GPU are what its raw archive converts to."""
    recs, cold = from_raw(raw_path(key))
    ok = True
    for phase in ("inference", "finetune"):
        rows = rows_for(recs.get(phase, {}), phase, cold, key)
        path = DATA / f"{key}_{phase}.csv"
        want = path.read_text(encoding="utf-8") if path.exists() else ""
        same = render_csv(rows) == want if rows else not path.exists()
        ok &= same
        print(f"{path.name}: {len(rows)} rows, {'matches' if same else 'DIFFERS FROM'} the raw archive")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", choices=sorted(SESSIONS), help="the session's GPU (needed with RESULTS_DIR)")
    ap.add_argument("dirs", nargs="*", type=Path)
    args = ap.parse_args(argv)
    if not args.dirs:
        keys = [k for k in SESSIONS if raw_path(k).exists()]
        if not keys:
            print("engine_rows: no raw archive to check")
            return 0
        return 0 if all([check(k) for k in keys]) else 1
    if args.gpu is None:
        ap.error("--gpu is required with RESULTS_DIR (accepted: " + ", ".join(sorted(SESSIONS)) + ")")
    key = args.gpu
    bad = [str(d) for d in args.dirs if not d.is_dir() or not any(d.glob("*.jsonl")) and not any(d.glob("*.log"))]
    if bad:
        ap.error(f"not a results directory (no *.jsonl or *.log): {', '.join(bad)}; nothing was written")
    # Rows already shipped for this GPU stay: the archive's records are the base, new dirs win.
    # Their session's cold idle stays in session.json; the new records carry their own in a note.
    merging = raw_path(key).exists()
    base, base_cold = from_raw(raw_path(key)) if merging else ({}, None)
    cold_new = _cold_idle(args.dirs)
    recs = {}
    for phase in ("inference", "finetune"):
        new = _results(args.dirs, phase)
        if merging:
            note = session_note(key, cold_new)
            new = {k: r if r.get("status") != "ok" or has_session_note(r.get("notes", []))
                   else {**r, "notes": [*r.get("notes", []), note]} for k, r in new.items()}
        recs[phase] = {**base.get(phase, {}), **new}
    cold = base_cold if merging else cold_new
    for phase, r in recs.items():
        rows = rows_for(r, phase, cold, key)
        if rows:
            (DATA / f"{key}_{phase}.csv").write_text(render_csv(rows), encoding="utf-8")
        print(f"{key}_{phase}.csv: {len(rows)} rows")
    build_raw(raw_path(key), args.dirs, recs, cold)
    print(f"{raw_path(key).name}: {raw_path(key).stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
