"""What `ecolobster report` shows, read from a bench results file, a shipped raw archive or dataset rows.

Three sources, one model (`MeasuredReport`, a list of `ConfigReport`):

- a bench results file (``bench-*.jsonl``, one JSON line per configuration as the engine writes it)
  with its trace folder beside it (``bench-*-traces/``, or ``--traces DIR``);
- a raw archive as shipped in ``measurements/data/<gpu>_raw.tar.gz`` (``inference.jsonl``,
  ``finetune.jsonl``, ``session.json``, ``traces/*.csv``);
- dataset rows (the ``data list`` filters); a row's ``trace_file`` (``h200_raw.tar.gz:traces/x.csv``
  for shipped rows, a path for local ones) leads back to its trace and result line when they exist.

Nothing here computes a new figure: every number is a field of a result line or a row, or a ratio
of two of them named where it is shown (CV = standard deviation / mean). The advisor never imports
the engine, so result lines and trace CSVs are read here as plain JSON and CSV.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from measurements.jsonl import parse_jsonl

# The trace columns a figure draws (the engine writes more: see engine.power.TRACE_COLUMNS).
TRACE_FIELDS = ("power_w", "util_gpu_pct", "sm_clock_mhz", "mem_clock_mhz")


class ReportError(Exception):
    """A source that cannot be read: the message says what was wrong and what is accepted."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Span(_Model):
    """One measured window of a configuration (a generate call or a training step), seconds on the
    trace's clock; `prefill_s` is the time to the first token (inference only)."""

    t0: float
    t1: float
    prefill_s: float | None = None


class Trace(_Model):
    """A 10 Hz trace, one series per GPU: {gpu: {column: [values]}} with the times under 't_s'."""

    file: str
    series: dict[int, dict[str, list[float | None]]]


class ConfigReport(_Model):
    key: str
    label: str
    task: Literal["inference", "finetune"]
    status: str = "ok"
    model: str
    precision: str
    batch_size: int
    method: str | None = None
    throughput_tok_s: float | None = None
    throughput_std: float | None = None
    power_w: float | None = None
    power_std: float | None = None
    idle_power_w: float | None = None
    idle_s: float | None = Field(default=None, description="the idle window at the start of the trace, s")
    j_per_1k: float | None = Field(default=None, description="gross J per 1,000 tokens")
    j_per_1k_std: float | None = None
    j_per_1k_ci95: float | None = None
    j_per_1k_net: float | None = None
    energy_method: str | None = None
    n_runs: int | None = None
    gate_failed: bool | None = None
    gate_notes: list[str] = Field(default_factory=list)
    cv_max_throughput: float | None = None
    cv_max_power: float | None = None
    provenance: dict[str, str] = Field(default_factory=dict)
    windows: list[Span] = Field(default_factory=list)
    trace: Trace | None = None
    row_id: str | None = None

    @property
    def cv_throughput(self) -> float | None:
        return _ratio(self.throughput_std, self.throughput_tok_s)

    @property
    def cv_power(self) -> float | None:
        return _ratio(self.power_std, self.power_w)

    @property
    def cv_energy(self) -> float | None:
        return _ratio(self.j_per_1k_std, self.j_per_1k)


class MeasuredReport(_Model):
    title: str
    sources: list[str]
    configs: list[ConfigReport]
    notes: list[str] = Field(default_factory=list)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


# --- reading result lines and traces ------------------------------------------------------------

def parse_trace(text: str, name: str) -> Trace:
    series: dict[int, dict[str, list[float | None]]] = {}
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "t_s" not in reader.fieldnames or "power_w" not in reader.fieldnames:
        raise ReportError(f"{name}: not a power trace (a CSV with t_s and power_w columns)")
    for rec in reader:
        gpu = int(float(rec.get("gpu") or 0))
        s = series.setdefault(gpu, {k: [] for k in ("t_s", *TRACE_FIELDS)})
        for k in s:
            v = (rec.get(k) or "").strip()
            try:
                s[k].append(float(v) if v else None)
            except ValueError:
                s[k].append(None)
    return Trace(file=name, series=series)


def _label(cfg: dict[str, Any], task: str) -> str:
    if task == "finetune":
        rank = "" if cfg.get("method") == "full" else f" r{cfg.get('rank')}"
        return (f"{cfg.get('model')} {cfg.get('method')}{rank} seq{cfg.get('seq_len')} bs{cfg.get('batch_size')}"
                f" gc{'1' if cfg.get('grad_checkpointing') else '0'}")
    prec = cfg.get("precision", "?")
    return f"{cfg.get('model')} {prec} bs{cfg.get('batch_size')}"


def _provenance(prov: dict[str, Any] | None) -> dict[str, str]:
    if not prov:
        return {}
    out: dict[str, str] = {}
    names = prov.get("gpu_names") or []
    out["GPU"] = ", ".join(names) if names else str(prov.get("device") or "-")
    for key, label in (("gpu_count", "GPUs"), ("driver_version", "driver"), ("cuda_version", "CUDA"),
                       ("python_version", "python"), ("host", "host"), ("protocol", "protocol"),
                       ("cpu_model", "CPU")):
        if prov.get(key) not in (None, ""):
            out[label] = str(prov[key])
    for pkg, ver in sorted((prov.get("versions") or {}).items()):
        if ver:
            out[pkg] = str(ver)
    return out


def config_from_result(rec: dict[str, Any], task: str, traces: dict[str, Trace] | None = None) -> ConfigReport:
    """One engine result line (inference or fine-tuning) as a report entry."""
    cfg = rec.get("config") or {}
    settings = rec.get("settings") or {}
    if task == "finetune":
        tokens = None
        if rec.get("tokens_per_s") and rec.get("step_time_s"):
            tokens = rec["tokens_per_s"] * rec["step_time_s"]  # tokens per step
        per_tok = rec.get("energy_j_per_token")
        k = 1000.0 / tokens if tokens else None
        windows = [Span(t0=s["t0"], t1=s["t1"]) for s in rec.get("steps") or [] if s.get("phase") == "measure"]
        std_tp = None
        if rec.get("step_time_std") and rec.get("step_time_s") and rec.get("tokens_per_s"):
            std_tp = rec["tokens_per_s"] * rec["step_time_std"] / rec["step_time_s"]  # same CV as step time
        fields: dict[str, Any] = dict(
            method=cfg.get("method"), throughput_tok_s=rec.get("tokens_per_s"), throughput_std=std_tp,
            j_per_1k=None if per_tok is None else per_tok * 1000.0,
            j_per_1k_std=None if rec.get("energy_std") is None or k is None else rec["energy_std"] * k,
            j_per_1k_ci95=None if rec.get("energy_ci95") is None or k is None else rec["energy_ci95"] * k,
            j_per_1k_net=None if rec.get("energy_net_j_per_token") is None else rec["energy_net_j_per_token"] * 1000,
            n_runs=rec.get("n_steps") or None,
            precision=(cfg.get("quant") if cfg.get("method") == "qlora" else cfg.get("dtype")) or "?")
    else:
        windows = [Span(t0=r["t0"], t1=r["t1"], prefill_s=r.get("prefill_s"))
                   for r in rec.get("runs") or [] if r.get("phase", "measure") == "measure"]
        fields = dict(
            throughput_tok_s=rec.get("throughput_tok_s"), throughput_std=rec.get("throughput_std"),
            j_per_1k=rec.get("energy_j_per_1k_tok"), j_per_1k_std=rec.get("energy_std"),
            j_per_1k_ci95=rec.get("energy_ci95"), j_per_1k_net=rec.get("energy_net_j_per_1k_tok"),
            n_runs=rec.get("n_runs") or None, precision=cfg.get("precision", "?"))
    trace = None
    if rec.get("trace_file") and traces is not None:
        trace = traces.get(Path(rec["trace_file"]).name)
    return ConfigReport(
        key=str(rec.get("key", "?")), label=_label(cfg, task), task=task,  # type: ignore[arg-type]
        status=str(rec.get("status", "ok")), model=str(cfg.get("model", rec.get("model_id", "?"))),
        batch_size=int(cfg.get("batch_size", 1)), power_w=rec.get("power_w"), power_std=rec.get("power_std"),
        idle_power_w=rec.get("idle_power_w"), idle_s=settings.get("idle_s") if rec.get("idle_power_w") else None,
        energy_method=rec.get("energy_method"), gate_failed=rec.get("gate_failed"),
        gate_notes=list(rec.get("gate_notes") or []), cv_max_throughput=settings.get("cv_max_throughput"),
        cv_max_power=settings.get("cv_max_power"), provenance=_provenance(rec.get("provenance")),
        windows=windows, trace=trace, **fields)


# --- the three sources --------------------------------------------------------------------------

def _task_of(rec: dict[str, Any]) -> str:
    return "finetune" if "steps" in rec or "step_time_s" in rec else "inference"


def from_results(path: Path, trace_dir: Path | None = None) -> MeasuredReport:
    """A bench results file; its traces from `trace_dir`, else the `<stem>-traces` folder beside it."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise ReportError(f"cannot read the results file {path}: {err.strerror or err}") from None
    recs = parse_jsonl(text)
    if not recs or not any("key" in r and "status" in r for r in recs):
        raise ReportError(f"{path}: no result lines (expected the JSON lines `ecolobster bench --out` writes)")
    tdir = trace_dir or path.with_name(path.stem + "-traces")
    traces: dict[str, Trace] = {}
    notes: list[str] = []
    for r in recs:
        name = r.get("trace_file")
        if not name:
            continue
        f = tdir / Path(name).name
        try:
            traces[f.name] = parse_trace(f.read_text(encoding="utf-8"), f.name)
        except OSError:
            notes.append(f"trace {f} not found: that configuration has no trace figure")
    configs = [config_from_result(r, _task_of(r), traces) for r in recs if "key" in r]
    if not any(c.trace for c in configs) and not any(r.get("trace_file") for r in recs):
        notes.append("no configuration kept a power trace (a CPU run, or NVML unavailable): energy and traces "
                     "are not measured, throughput is")
    return MeasuredReport(title=f"Bench results: {path.name}", sources=[str(path)], configs=configs, notes=notes)


def read_archive(path: Path) -> tuple[list[dict[str, Any]], dict[str, Trace], dict[str, Any]]:
    """(result lines, traces by file name, session.json) of a raw archive."""
    try:
        with tarfile.open(path) as tf:
            files = []
            for m in tf.getmembers():
                f = tf.extractfile(m) if m.isfile() else None
                if f is not None:
                    files.append((m.name, f.read().decode("utf-8", errors="replace")))
    except (OSError, tarfile.TarError, EOFError) as err:
        raise ReportError(f"cannot read the archive {path}: {err}") from None
    recs: list[dict[str, Any]] = []
    traces: dict[str, Trace] = {}
    session: dict[str, Any] = {}
    for name, data in files:
        if name.endswith(".jsonl"):
            recs += parse_jsonl(data)
        elif name.startswith("traces/") and name.endswith(".csv"):
            traces[Path(name).name] = parse_trace(data, name)
        elif name == "session.json":
            try:
                session = json.loads(data)
            except json.JSONDecodeError:
                session = {}
    if not recs:
        raise ReportError(f"{path}: no result lines (a raw archive holds inference.jsonl / finetune.jsonl)")
    return recs, traces, session


def from_archive(path: Path) -> MeasuredReport:
    recs, traces, session = read_archive(path)
    configs = [config_from_result(r, _task_of(r), traces) for r in recs if "key" in r]
    notes = []
    if session.get("cold_idle_w"):
        notes.append(f"session.json: the GPU read {session['cold_idle_w']:.1f} W idle before anything ran "
                     "(the per-configuration idle baselines are marked on each trace)")
    return MeasuredReport(title=f"Raw measurements: {path.name}", sources=[str(path)], configs=configs, notes=notes)


def _row_config(row: Any) -> ConfigReport:
    label = f"{row.model_id.split('/')[-1]} {row.precision} bs{row.batch_size}"
    if row.task == "finetune":
        label = f"{row.model_id.split('/')[-1]} {row.method} seq{row.seq_len} bs{row.batch_size}"
    gate = None
    if row.kind == "measured" and row.source.startswith("ecolobster"):
        gate = "cv gate failed" in row.notes.lower()
    prov = {"GPU": row.gpu, "GPUs": str(row.gpu_count)}
    for key, label_ in (("driver_version", "driver"), ("cuda_version", "CUDA"), ("torch_version", "torch"),
                        ("transformers_version", "transformers"), ("bitsandbytes_version", "bitsandbytes"),
                        ("torchao_version", "torchao"), ("peft_version", "peft")):
        if getattr(row, key, None):
            prov[label_] = str(getattr(row, key))
    prov["source"] = row.source
    j, j_std, j_ci = row.energy_j_per_1k_tok, row.energy_std, row.energy_ci95
    return ConfigReport(
        key=row.id, row_id=row.id, label=label, task=row.task, model=row.model_id, precision=row.precision,
        batch_size=row.batch_size, method=row.method, throughput_tok_s=row.throughput_tok_s,
        throughput_std=row.throughput_std, power_w=row.power_w, idle_power_w=row.idle_power_w,
        j_per_1k=j, j_per_1k_std=j_std, j_per_1k_ci95=j_ci, j_per_1k_net=row.energy_net_j_per_1k_tok,
        energy_method=row.energy_method, n_runs=row.n_runs, gate_failed=gate, provenance=prov)


def from_rows(rows: list[Any], title: str) -> MeasuredReport:
    """Dataset rows; a row whose trace is in a shipped archive or a local trace folder gets the
    trace, its measured windows and CV figures from the result line there."""
    from measurements.store import DATA_DIR

    archives: dict[str, tuple[list[dict[str, Any]], dict[str, Trace]]] = {}
    results: dict[Path, list[dict[str, Any]]] = {}
    configs: list[ConfigReport] = []
    notes: list[str] = []
    for row in rows:
        base = _row_config(row)
        tf = row.trace_file or ""
        rec, trace_map = None, None
        if ":" in tf and tf.split(":", 1)[0].endswith((".tar.gz", ".tgz")):
            arch, member = tf.split(":", 1)
            if arch not in archives:
                try:
                    recs, traces, _ = read_archive(DATA_DIR / arch)
                except ReportError as err:
                    notes.append(str(err))
                    recs, traces = [], {}
                archives[arch] = (recs, traces)
            recs, trace_map = archives[arch]
            rec = next((r for r in recs if Path(str(r.get("trace_file") or "")).name == Path(member).name), None)
        elif tf:
            p = Path(tf)
            res = p.parent.with_name(p.parent.name.removesuffix("-traces") + ".jsonl")
            if res not in results:
                try:
                    results[res] = parse_jsonl(res.read_text(encoding="utf-8", errors="replace"))
                except OSError:
                    results[res] = []
            rec = next((r for r in results[res] if r.get("trace_file") == p.name), None)
            try:
                trace_map = {p.name: parse_trace(p.read_text(encoding="utf-8"), p.name)}
            except (OSError, ReportError):
                notes.append(f"row {row.id}: trace {p} not found")
        if rec is not None:
            full = config_from_result(rec, row.task, trace_map)
            configs.append(full.model_copy(update={"row_id": row.id, "label": base.label,
                                                   "provenance": {**full.provenance, "source": row.source}}))
        else:
            configs.append(base)
    return MeasuredReport(title=title, sources=sorted({r.source for r in rows}), configs=configs, notes=notes)


def load_source(path: Path, trace_dir: Path | None = None) -> MeasuredReport:
    """A results file (.jsonl) or a raw archive (.tar.gz), by its name."""
    name = path.name.lower()
    if not path.exists():
        raise ReportError(f"{path} does not exist (give a bench results .jsonl file or a raw .tar.gz archive, "
                          "or dataset filters such as --gpu h200)")
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return from_archive(path)
    if name.endswith((".jsonl", ".json")):
        return from_results(path, trace_dir)
    raise ReportError(f"{path}: unknown kind of file. Accepted: a bench results file (.jsonl) or a raw "
                      "archive (.tar.gz, as in measurements/data/)")
