"""The seed author's own raw data (hongping-zh/ecocompute-ai, ecocompute-dynamic-eval, quant-energy).

The same measurement appears in several of the author's files, sometimes with different values.
ONE RULE decides which file a row comes from:

    A row is one configuration (GPU, model, precision, batch size) of one measurement session. Its
    figures come from the most primary file that holds that session: per-run raw files (averaged
    here) > the summary CSV the measurement script wrote > Markdown reports and memos. Skill
    references, READMEs, dashboard code and docs are never a row's source. Sessions already shipped
    in seed003_ecocompute.csv (the seed's skill tables) are not imported again, and where another
    session of a configuration seed 003 ships exists, seed 003's row stays the one row of that
    configuration, unless a more primary file of the same session contradicts it: then seed 003's row
    is kept with `superseded_by` naming the imported row (today six RTX 4090 D rows, whose printed
    throughputs the session's memo contradicts). The importer lists what it left out (`python -m measurements.importers`
    prints it; today the A800 pure-INT8 batch sweep of 2026-02-15, whose raw runs contradict the
    README table seed 003 copied, and the RTX 5090 Qwen2.5-3B FP16/NF4 pair). Every other file
    that holds the same configuration is named in the row's notes, with whether it agrees (within
    1% on J/1k tok) or what it says instead.

Energy is always re-derived from J/1k tok, never from the published "J/request" of the batch guide
(about 100x below J/1k tok x tokens). J/1k tok in `energy_j_per_1k_tok` is gross (board power /
throughput); where the author subtracted idle power (the RTX 4090 D sessions only), the published
figure goes to `energy_net_j_per_1k_tok` and the gross one is derived from the published power, as
each row's notes say. `int8_default` is bitsandbytes' LLM.int8() at its default threshold 6.0,
i.e. `int8_mixed`; an `int8` without a threshold cannot be placed and is not imported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from measurements.importers import num, read_source
from measurements.schema import MeasurementRow

RAW_FILE = "ecocompute_raw.csv"
RUNS_FILE = "ecocompute_runs.csv"
OUT_FILE = "ecocompute_external.csv"
AGREE = 0.01

PRECISION = {"fp16": "fp16", "nf4": "nf4", "nf4_dq": "nf4", "int8_pure": "int8_pure",
             "int8_default": "int8_mixed", "int8_mixed": "int8_mixed"}
BATCH_SWEEP_RAW = "metadata/batch_size_experiment/a800_mistral7b_pure_int8_batch_size_raw_20260215_131345.csv"
BATCH_SWEEP_SUMMARY = "metadata/batch_size_experiment/a800_mistral7b_pure_int8_batch_size_summary_20260215_131345.csv"
A800_SUMMARY = "data/a800_results/a800_summary.csv"
RTX5090_CSV = "data/rtx5090_benchmark_results.csv"
MEMO = "metadata/COMPLETE_DATASET_MEMO.md"
QUANT_MD = "data/QUANTIZATION_ENERGY_COMPLETE_DATASET_2026-03-06_EN.md"
PPL_YI = "data/ppl_yi1.5_6b_wikitext2_20260224.csv"

# Files read for cross-checks only, and why no row comes from them.
NOT_A_SOURCE = {
    "metadata/batch_size_experiment/README.md": "README: its batch table contradicts the raw and summary CSVs of the same folder",
    "skills/ecocompute/references/batch_size_guide.md": "skill reference (its J/request is ~100x off; shipped via seed 003)",
    "components/BatchSizeAnalysis.tsx": "dashboard code (its power column disagrees with the raw CSV)",
    "metadata/a800_metadata.json": "the 2026-02-13 A800 session, shipped via seed 003",
    "metadata/pure_int8_metadata.json": "the RTX 4090 D INT8 session, shipped via seed 003",
    "skills/ecocompute/references/paradox_data.md": "skill reference, shipped via seed 003",
    "docs/TESLA_T4_EXPERIMENTS.md": "contradicts the RTX 5090 measurements ~20x and names an 'int8' without threshold",
    "build/measured.csv": "curve-fit input copied from the primary files",
    "RTX5090_Energy_Benchmark_Report.md": "report of the same RTX 5090 session as data/rtx5090_benchmark_results.csv; "
                                          "its power-limit experiment did not enforce the cap",
}

# Raw model names -> hub ids (catalog entries). The author's files name models loosely.
MODELS = {
    "mistral-7b-v0.1": "mistralai/Mistral-7B-v0.1",
    "mistral-7b-instruct (v0.2 per metadata json; readme says v0.3)": "mistralai/Mistral-7B-Instruct-v0.2",
    "mistral-7b-instruct-v0.2 (per metadata json)": "mistralai/Mistral-7B-Instruct-v0.2",
    "qwen2.5-14b": "Qwen/Qwen2.5-14B",
    "yi-1.5-9b": "01-ai/Yi-1.5-9B",
    "tinyllama-1.1b": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "qwen2-0.5b": "Qwen/Qwen2-0.5B",
    "qwen2-1.5b": "Qwen/Qwen2-1.5B",
    "qwen2-7b": "Qwen/Qwen2-7B",
    "qwen2.5-3b": "Qwen/Qwen2.5-3B",
    "qwen2.5-7b-instruct": "Qwen/Qwen2.5-7B-Instruct",
    "phi-3-mini-4k-instruct": "microsoft/Phi-3-mini-4k-instruct",
    "01-ai/yi-1.5-6b": "01-ai/Yi-1.5-6B",
    "yi-1.5-6b": "01-ai/Yi-1.5-6B",
    "mistral-7b-instruct-v0.3": "mistralai/Mistral-7B-Instruct-v0.2",  # seed 003's reading of the same session
}
PARAMS_B = {  # the catalog's sizes, so the rows line up with its entries
    "mistralai/Mistral-7B-v0.1": 7.242, "mistralai/Mistral-7B-Instruct-v0.2": 7.242, "Qwen/Qwen2.5-14B": 14.77,
    "01-ai/Yi-1.5-9B": 8.829, "TinyLlama/TinyLlama-1.1B-Chat-v1.0": 1.1, "Qwen/Qwen2-0.5B": 0.494,
    "Qwen/Qwen2-1.5B": 1.544, "Qwen/Qwen2-7B": 7.616, "Qwen/Qwen2.5-3B": 3.086,
    "Qwen/Qwen2.5-7B-Instruct": 7.616, "microsoft/Phi-3-mini-4k-instruct": 3.821, "01-ai/Yi-1.5-6B": 6.061,
}


def gpu_key(raw: str) -> str:
    t = raw.lower()
    if "a800" in t:
        return "a800"
    if "4090" in t:
        return "rtx4090d"
    if "5090" in t:
        return "rtx5090"
    raise ValueError(f"unknown GPU name in the source: {raw!r}")


def model_token(raw: str) -> str:
    """A loose family token for cross-checks between files ('Mistral-7B (pure INT8)' -> 'mistral-7b')."""
    t = raw.lower()
    for tok in ("tinyllama", "qwen2-0.5b", "qwen2-1.5b", "qwen2-7b", "qwen2.5-0.5b", "qwen2.5-1.5b", "qwen2.5-3b",
                "qwen2.5-7b", "qwen2.5-14b", "yi-1.5-6b", "yi-1.5-9b", "mistral-7b", "phi-3"):
        if tok in t:
            return tok
    return t


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def _note(rec: dict[str, str], key: str) -> float | None:
    m = re.search(rf"{re.escape(key)}=([0-9.]+)", rec.get("notes", ""))
    return float(m.group(1).rstrip(".")) if m else None


@dataclass
class Sources:
    raw: list[dict[str, str]]
    runs: list[dict[str, str]]

    def cross_checks(self, primary_path: str, gpu: str, model: str, precision: str, batch: int, j_published: float,
                     double_quant: bool = False) -> str:
        """What the author's other files say about this configuration."""
        agree, differ = [], []
        for r in self.raw:
            if r["source_path"] == primary_path or not r["energy_j_per_1k_tok"]:
                continue
            if (gpu_key(r["gpu"]) != gpu or model_token(r["model"]) != model_token(model)
                    or PRECISION.get(r["precision"]) != precision or int(r["batch_size"]) != batch
                    or (r["precision"] == "nf4_dq") != double_quant or "power limit" in r["gpu"]):
                continue
            j = float(r["energy_j_per_1k_tok"])
            name = f"{r['source_repo']}:{r['source_path']}"
            if abs(j / j_published - 1) <= AGREE:
                if name not in agree:
                    agree.append(name)
            else:
                differ.append(f"{name} says {j:g} J/1k tok")
        parts = []
        if agree:
            parts.append("agrees within 1%: " + ", ".join(agree))
        if differ:
            parts.append("differs (another session, or a contradiction): " + "; ".join(differ))
        return ("other files with this configuration: " + " | ".join(parts)) if parts else ""


def _row(*, rid: str, rec: dict[str, str], gpu: str, model: str, precision: str, batch: int, notes: list[str],
         **fields: object) -> MeasurementRow:
    return MeasurementRow(
        id=rid,
        source=f"seed author's data: {rec['source_repo']}@{rec['commit'][:12]} {rec['source_path']}",
        kind="measured", task="inference", gpu=gpu, gpu_count=1, model_id=model, params_b=PARAMS_B[model],
        weights="real", precision=precision, batch_size=batch,  # type: ignore[arg-type]
        notes="; ".join(n for n in notes if n), framework="hf-eager",
        source_repo=rec["source_repo"], source_commit=rec["commit"], source_path=rec["source_path"],
        **fields,  # type: ignore[arg-type]
    )


def _sd(values: list[float]) -> float | None:
    return stdev(values) if len(values) > 1 else None


def batch_sweep(src: Sources) -> list[MeasurementRow]:
    """A800, Mistral-7B-Instruct pure INT8, batch 1-64, 2026-02-15: averaged from its 70 runs."""
    by_bs: dict[int, list[dict[str, str]]] = defaultdict(list)
    for r in src.runs:
        if r["source_path"] == BATCH_SWEEP_RAW:
            by_bs[int(r["batch_size"])].append(r)
    summary = {int(r["batch_size"]): r for r in src.raw if r["source_path"] == BATCH_SWEEP_SUMMARY}
    out = []
    for bs, runs in sorted(by_bs.items()):
        j = [float(r["energy_j_per_1k_tok"]) for r in runs]
        tput = [float(r["throughput_tok_s"]) for r in runs]
        power = [float(r["power_w"]) for r in runs]
        per_req = [float(r["energy_per_request_j"]) for r in runs]
        mem = [float(m) for r in runs for m in re.findall(r"peak_mem_gb=([0-9.]+)", r["notes"])]
        s = summary[bs]
        j_mean = mean(j)
        model = MODELS[runs[0]["model"].lower()]
        notes = [
            f"A800 batch-size sweep of 2026-02-15: mean of the {len(runs)} individual runs in the raw CSV "
            f"(energy per 1k tok = total energy / all tokens of the batch, no idle subtraction); "
            f"{s['prompt_tokens']} prompt -> {s['gen_tokens']} generated tokens per sequence; throughput counts "
            "every sequence of the batch",
            f"summary CSV of the same session: {float(s['energy_j_per_1k_tok']):g} J/1k tok, "
            f"{float(s['throughput_tok_s']):g} tok/s",
            "model: the metadata JSON says Mistral-7B-Instruct-v0.2, the README v0.3; v0.2 taken",
            "J/request is the runs' own total energy / sequences (consistent with J/1k tok x tokens here)",
            src.cross_checks(BATCH_SWEEP_RAW, "a800", model, "int8_pure", bs, j_mean)
            .replace(BATCH_SWEEP_SUMMARY, BATCH_SWEEP_SUMMARY + " (summary of these runs)"),
        ]
        out.append(_row(
            rid=f"eco-a800-mistral-7b-instruct-v0.2-int8_pure-bs{bs}-20260215", rec=runs[0], gpu="a800", model=model,
            precision="int8_pure", batch=bs, notes=notes,
            prompt_tokens=int(s["prompt_tokens"]), gen_tokens=int(s["gen_tokens"]), throughput_tok_s=mean(tput),
            throughput_std=_sd(tput), power_w=mean(power), energy_j_per_1k_tok=j_mean, energy_std=_sd(j),
            energy_method="reported", energy_j_per_request=mean(per_req),
            gpu_mem_gb=max(mem) if mem else None, n_runs=len(runs), measured_on=dt.date(2026, 2, 15),
        ))
    return out


def a800_quality(src: Sources) -> list[MeasurementRow]:
    """A800, three models x five formats, 2026-02-26, with WikiText-2 perplexity: averaged from the runs."""
    summary = {(r["model"], r["precision"]): r for r in src.raw if r["source_path"] == A800_SUMMARY}
    by_cfg: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in src.runs:
        if r["source_path"].startswith("data/a800_results/energy_"):
            by_cfg[(r["model"], r["precision"])].append(r)
    out = []
    for (raw_model, raw_prec), runs in sorted(by_cfg.items()):
        model = MODELS[raw_model.lower()]
        prec = PRECISION[raw_prec]
        dq = raw_prec == "nf4_dq"
        s = summary[(raw_model, raw_prec)]
        j = [float(r["energy_j_per_1k_tok"]) for r in runs]
        tput = [float(r["throughput_tok_s"]) for r in runs]
        power = [float(r["power_w"]) for r in runs]
        gens = sorted({int(r["gen_tokens"]) for r in runs})
        gen = gens[0] if len(gens) == 1 else None
        j_mean = mean(j)
        notes = [
            f"A800 session of 2026-02-26: mean of the {len(runs)} runs in the per-run JSON files "
            "(energy ~= power / throughput, no idle subtraction)",
            f"generated {'/'.join(str(g) for g in gens)} tokens per run (EOS-terminated; the token count differs "
            "between configurations of this session: compare J/1k tok, not J per run)",
            f"summary CSV: {float(s['energy_j_per_1k_tok']):g} J/1k tok, {float(s['throughput_tok_s']):g} tok/s",
            "NF4 with double quantisation of the scales (nf4_dq in the source)" if dq else "",
            "int8_default in the source: bitsandbytes LLM.int8() at its default threshold 6.0" if raw_prec == "int8_default" else "",
            "model named without a suffix in the source: the base model is taken" if model.endswith(("14B", "9B")) else "",
            src.cross_checks(runs[0]["source_path"], "a800", model, prec, 1, j_mean, dq),
        ]
        out.append(_row(
            rid=f"eco-a800-{_slug(model.split('/')[1])}-{prec}{'-dq' if dq else ''}-bs1-20260226", rec=runs[0], gpu="a800",
            model=model, precision=prec, batch=1, notes=notes, gen_tokens=gen,
            throughput_tok_s=mean(tput), throughput_std=_sd(tput), power_w=mean(power), energy_j_per_1k_tok=j_mean,
            energy_std=_sd(j), energy_method="reported", n_runs=len(runs), measured_on=dt.date(2026, 2, 26),
            perplexity=_note(s, "wikitext-2 perplexity"), perplexity_dataset="WikiText-2",
            double_quant=True if dq else None,
        ))
    return out


def _records(src: Sources, path: str, gpu: str | None = None) -> Iterator[tuple[dict[str, str], str, str]]:
    """The raw records of one source file (of one GPU, if named), each with its catalog model and
    precision keys."""
    for r in src.raw:
        if r["source_path"] == path and (gpu is None or gpu_key(r["gpu"]) == gpu):
            yield r, MODELS[r["model"].lower()], PRECISION[r["precision"]]


def rtx5090_session(src: Sources, shipped: dict[tuple[Any, ...], list[float]]) -> list[MeasurementRow]:
    """RTX 5090, four models in FP16 and NF4, batch 1, n = 10 (the benchmark results CSV)."""
    out = []
    for r, model, prec in _records(src, RTX5090_CSV):
        j = float(r["energy_j_per_1k_tok"])
        same = shipped.get(("rtx5090", model, prec, 1), [])
        if any(abs(j / x - 1) <= AGREE for x in same):
            continue  # seed 003 ships this session (its "earlier study" table holds the same figures)
        notes = [
            "RTX 5090 FP16/NF4 session: the benchmark results CSV (J/1k tok = power / throughput, no idle "
            "subtraction although the telemetry config lists an idle figure); the memo dates it 2026-01-15, "
            "the report 2026-01-29; sampling with do_sample=True, temperature 0.7 per the report",
            f"power std {_note(r, 'power_std')} W" if _note(r, "power_std") is not None else "",
            "TinyLlama named without a variant: the catalog's TinyLlama-1.1B-Chat-v1.0 is taken" if "tinyllama" in model.lower() else "",
            src.cross_checks(RTX5090_CSV, "rtx5090", model, prec, 1, j),
        ]
        memo = [m for m in src.raw if m["source_path"] == MEMO and gpu_key(m["gpu"]) == "rtx5090"
                and model_token(m["model"]) == model_token(r["model"]) and m["precision"] == r["precision"]]
        gen = int(memo[0]["gen_tokens"]) if memo and memo[0]["gen_tokens"] else None
        if gen:
            notes.append(f"{gen} generated tokens per the memo's copy of this session (the CSV does not say)")
        out.append(_row(
            rid=f"eco-rtx5090-{_slug(model.split('/')[1])}-{prec}-bs1", rec=r, gpu="rtx5090", model=model,
            precision=prec, batch=1, notes=notes, gen_tokens=gen,
            throughput_tok_s=float(r["throughput_tok_s"]), power_w=float(r["power_w"]), energy_j_per_1k_tok=j,
            energy_method="reported", n_runs=int(r["n_runs"]),
        ))
    return out


# What seed 003 states of its RTX 4090 D session (its measurement environment and token lengths):
# the memo's table is that session, so its rows carry the same stack and prompt length (and share
# one measuring-host key with seed 003's rows of the session)
SESSION_FIELDS = ("prompt_tokens", "torch_version", "transformers_version", "bitsandbytes_version", "cuda_version",
                  "driver_version")


def seed_session(seed_rows: list[MeasurementRow], gpu: str) -> dict[str, Any]:
    """The fields every seed-003 row of `gpu` states alike (its one session on that GPU)."""
    rows = [r for r in seed_rows if r.gpu == gpu and r.task == "inference"]
    out = {}
    for f in SESSION_FIELDS:
        values = {getattr(r, f) for r in rows}
        if len(values) == 1 and None not in values:
            out[f] = values.pop()
    return out


def rtx4090d_memo(src: Sources, shipped: dict[tuple[Any, ...], list[float]],
                  seed_rows: list[MeasurementRow]) -> list[MeasurementRow]:
    """RTX 4090 D memo table (2026-02-12/13): the configurations seed 003 does not hold, and those
    whose seed-003 row the memo contradicts (that row is kept, `superseded_by` this one)."""
    out = []
    session = seed_session(seed_rows, "rtx4090d")
    superseded = {r.superseded_by: r.id for r in seed_rows if r.superseded_by}
    for r, model, prec in _records(src, MEMO, gpu="rtx4090d"):
        if ("rtx4090d", model, prec, 1) in shipped:
            continue  # the session seed 003's RTX 4090 D tables come from
        net = float(r["energy_j_per_1k_tok"])
        tput, power = float(r["throughput_tok_s"]), float(r["power_w"])
        # to 0.1 J: the memo's power and throughput carry four or five significant digits
        gross = round(power / tput * 1000.0, 1)
        rid = f"eco-rtx4090d-{_slug(model.split('/')[1])}-{prec}-bs1"
        notes = [
            "RTX 4090 D session of 2026-02-12/13 (dataset memo table); the memo's J/1k tok is net of ~17 W idle "
            f"({net:g}, kept as energy_net_j_per_1k_tok); gross = published board power / throughput; energy_std is "
            "the memo's spread of its net figure (as in seed 003's rows)",
            "the session seed 003's RTX 4090 D tables copy: prompt length and software versions are seed 003's "
            "for that session (its Limitations section and Measurement Environment)" if session else "",
            f"replaces seed 003's row {superseded[rid]}, whose printed throughput this table contradicts (that "
            "row's notes say why)" if rid in superseded else "",
            "int8_default in the source: bitsandbytes LLM.int8() at its default threshold 6.0" if r["precision"] == "int8_default" else "",
            src.cross_checks(MEMO, "rtx4090d", model, prec, 1, net),
        ]
        out.append(_row(
            rid=rid, rec=r, gpu="rtx4090d", model=model,
            precision=prec, batch=1, notes=notes, gen_tokens=int(r["gen_tokens"]), throughput_tok_s=tput,
            power_w=power, energy_j_per_1k_tok=gross, energy_net_j_per_1k_tok=net, idle_power_w=17.0,
            throughput_std=num(r["throughput_std"]), energy_std=num(r["energy_std"]),
            energy_method="reported", n_runs=int(r["n_runs"]), **session,
        ))
    return out


# The 2026-03-06 RTX 4090 D dataset subtracted an idle of 16.81-18.57 W and, in its n=10 table,
# publishes net power too: gross is rebuilt with the midpoint, and the half-range is the error.
IDLE_0306 = (16.81, 18.57)


def rtx4090d_0306(src: Sources) -> list[MeasurementRow]:
    out = []
    idle = sum(IDLE_0306) / 2
    half = (IDLE_0306[1] - IDLE_0306[0]) / 2
    seen: dict[tuple[Any, ...], int] = defaultdict(int)
    for r, model, prec in _records(src, QUANT_MD):
        net = float(r["energy_j_per_1k_tok"])
        tput = float(r["throughput_tok_s"])
        m = re.match(r"(\d+) trials", r["n_runs"])
        n = int(m.group(1)) if m else int(r["n_runs"])
        table = "n10" if not m else "trials"
        seen[(model, prec)] += 1
        gross = net + idle * 1000.0 / tput
        err = half * 1000.0 / tput
        notes = [
            "RTX 4090 D dataset of 2026-03-06 (" + ("quantisation-method comparison, 10 runs" if table == "n10"
                                                   else f"{n} trial(s) x 10 iterations") + "); the published "
            f"J/1k tok is net of an idle of {IDLE_0306[0]}-{IDLE_0306[1]} W ({net:g}, kept as energy_net_j_per_1k_tok); "
            f"gross = net + {idle:.2f} W (the idle range's midpoint) / throughput, +-{err:.0f} J/1k tok from the range",
            "the n=10 table's power column is net power too (power / throughput reproduces its net J/1k tok)"
            if table == "n10" else "no power published for this table",
            "int8_default in the source: bitsandbytes LLM.int8() at its default threshold 6.0" if r["precision"] == "int8_default" else "",
            "TinyLlama named without a variant: the catalog's TinyLlama-1.1B-Chat-v1.0 is taken" if "tinyllama" in model.lower() else "",
            src.cross_checks(QUANT_MD, "rtx4090d", model, prec, 1, net),
        ]
        power = num(r["power_w"])
        out.append(_row(
            rid=f"eco-rtx4090d-{_slug(model.split('/')[1])}-{prec}-bs1-20260306-{table}", rec=r, gpu="rtx4090d",
            model=model, precision=prec, batch=1, notes=notes, gen_tokens=int(r["gen_tokens"]),
            throughput_tok_s=tput, power_w=power + idle if power else None, energy_j_per_1k_tok=gross,
            energy_net_j_per_1k_tok=net, idle_power_w=idle, energy_method="reported", n_runs=n,
            measured_on=dt.date(2026, 3, 6),
        ))
    return out


def yi_perplexity(src: Sources) -> list[MeasurementRow]:
    """RTX 4090 D, Yi-1.5-6B: WikiText-2 perplexity of three formats (no energy in this file)."""
    out = []
    for r, model, prec in _records(src, PPL_YI):
        mem = _note(r, "gpu_mem_gb")
        notes = [
            "energy unavailable: an accuracy-only run (its energy deltas are copied from the energy runs, which "
            "seed 003 ships); WikiText-2, 50 samples truncated to 512 tokens; 2026-02-24",
            "int8_default in the source: bitsandbytes LLM.int8() at its default threshold 6.0" if r["precision"] == "int8_default" else "",
        ]
        out.append(_row(
            rid=f"eco-rtx4090d-yi-1.5-6b-{prec}-ppl-20260224", rec=r, gpu="rtx4090d", model=model, precision=prec,
            batch=1, notes=notes, prompt_tokens=int(r["prompt_tokens"]), gpu_mem_gb=mem,
            perplexity=_note(r, "ppl"), perplexity_dataset="WikiText-2 (50 samples, 512-token truncation)",
            measured_on=dt.date(2026, 2, 24),
        ))
    return out


def shipped_configs(seed_rows: list[MeasurementRow]) -> dict[tuple[Any, ...], list[float]]:
    """Configurations seed 003 ships (superseded rows aside), with their J/1k tok."""
    out: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in seed_rows:
        # a superseded row is no longer its configuration's row: the row replacing it is imported
        if r.energy_j_per_1k_tok is not None and r.superseded_by is None:
            out[(r.gpu, r.model_id, r.precision, r.batch_size)].append(r.energy_j_per_1k_tok)
    return out


def build_all(source_dir: Path, seed_rows: list[MeasurementRow]) -> tuple[list[MeasurementRow], list[str]]:
    """The rows to ship, and what was left out because seed 003 already ships that configuration."""
    src = Sources(read_source(source_dir / RAW_FILE), read_source(source_dir / RUNS_FILE))
    shipped = shipped_configs(seed_rows)
    rows = (batch_sweep(src) + a800_quality(src) + rtx5090_session(src, shipped) + rtx4090d_memo(src, shipped, seed_rows)
            + rtx4090d_0306(src) + yi_perplexity(src))
    keep, left_out = [], []
    for r in rows:
        same = shipped.get((r.gpu, r.model_id, r.precision, r.batch_size))
        if same and r.energy_j_per_1k_tok is not None and not r.double_quant:
            # One row per configuration: seed 003's stays the dataset's row (see the module docstring)
            left_out.append(f"{r.id}: {r.energy_j_per_1k_tok:.0f} J/1k tok from {r.source_path} "
                            f"(n={r.n_runs}); seed 003 ships {', '.join(f'{x:g}' for x in same)}")
            continue
        keep.append(r)
    return keep, left_out


def build(source_dir: Path, seed_rows: list[MeasurementRow]) -> list[MeasurementRow]:
    return build_all(source_dir, seed_rows)[0]
