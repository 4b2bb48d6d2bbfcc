"""The ML.ENERGY Leaderboard v3 LLM rows (vLLM serving on H100 and B200) as measurement rows.

One row per published configuration (model, task, GPU, GPU count and parallelism, max_num_seqs),
figures as the leaderboard published them: GPU energy per generated token at steady state (ramp-up
and drain excluded), all GPUs of the configuration summed; nothing derived except units
(J/token x 1,000 = J/1k tok). The rows are `framework=vllm`, `kind=measured` (ML.ENERGY measured
them); `batch_size` is vLLM's `max_num_seqs`, the batch actually run is `mean_batch_size`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from measurements.importers import num, read_source
from measurements.schema import MeasurementRow

SOURCE_FILE = "mlenergy_v3_llm.csv"
OUT_FILE = "mlenergy_v3.csv"

# The leaderboard's GPU names -> catalog keys. Its H100 nodes are the SXM5 80 GB part (the
# ML.ENERGY benchmark's hardware description); the B200 is the HGX/DGX B200 at 1,000 W.
GPUS = {"H100": "h100_sxm", "B200": "b200"}
PRECISIONS = {"bfloat16": "bf16", "fp8": "fp8", "mxfp4": "mxfp4"}
WORKLOADS = {"lm-arena-chat": "chat", "gpqa": "reasoning", "sourcegraph-fim": "code-completion"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")


def row_from(rec: dict[str, str], repeat: int = 1, times: int = 1) -> MeasurementRow:
    gpu = GPUS[rec["gpu_model"]]
    n = int(rec["num_gpus"])
    tp, dp, ep = int(rec["tensor_parallel"]), int(rec["data_parallel"]), int(rec["expert_parallel"])
    seqs = int(rec["max_num_seqs"])
    model = rec["model_id"]
    workload = WORKLOADS[rec["task"]]
    commit = rec["source_commit"]
    rid = (f"mlenergy-{gpu}-x{n}-tp{tp}dp{dp}ep{ep}-{_slug(model.split('/', 1)[1])}-{workload}-seqs{seqs}")
    if repeat > 1:
        rid += f"-r{repeat}"
    mean_batch = num(rec["avg_batch_size"])
    notes = (
        f"ML.ENERGY Leaderboard v3, vLLM (0.11.x era) serving {rec['task']} prompts ({workload}); "
        f"max_num_seqs {seqs}, mean batch actually running {mean_batch:.1f}; "
        f"{n} x {rec['gpu_model']} with tensor parallel {tp}, data parallel {dp}, expert parallel {ep}; "
        "GPU energy only (no CPU, DRAM, network or cooling), steady state (ramp-up and drain excluded), "
        "all GPUs of the configuration summed; prompt lengths follow the task's dataset and are not "
        f"published per row; architecture per the leaderboard: {rec['architecture']}, "
        f"{rec['total_params_b']}B total / {rec['active_params_b']}B active"
    )
    precision = PRECISIONS[rec["weight_precision"]]
    if precision == "fp8":
        notes += ("; fp8_mode dynamic: vLLM runs FP8 checkpoints as W8A8, FP8 weights and activations quantised "
                  "at run time (Fp8Config activation_scheme 'dynamic' by default) with FP8 GEMMs on GPUs of compute "
                  "capability 8.9 or more, H100 and B200 here (docs.vllm.ai, quantization/fp8: 'FP8 W8A8')")
    if times > 1:
        notes += (f"; the published file holds this configuration {times} times with different figures: "
                  f"each entry is kept as its own row (repeated measurements), this is entry {repeat}")
    return MeasurementRow(
        id=rid,
        source=f"ML.ENERGY Leaderboard v3: {rec['source_repo']}@{commit[:12]} {rec['source_path']}",
        kind="measured",
        task="inference",
        gpu=gpu,
        gpu_count=n,
        model_id=model,
        params_b=float(rec["total_params_b"]),
        weights="real",
        precision=precision,  # type: ignore[arg-type]
        fp8_mode="dynamic" if precision == "fp8" else None,
        batch_size=seqs,
        throughput_tok_s=num(rec["output_tokens_per_s"]),
        power_w=num(rec["avg_power_w"]),
        energy_j_per_1k_tok=float(rec["energy_per_token_j"]) * 1000.0,
        energy_method="reported",
        notes=notes,
        framework="vllm",
        workload=workload,  # type: ignore[arg-type]
        workload_dataset=rec["task"],
        tensor_parallel=tp,
        data_parallel=dp,
        expert_parallel=ep,
        max_num_seqs=seqs,
        mean_batch_size=mean_batch,
        mean_output_tokens=num(rec["avg_output_len"]),
        energy_j_per_request=num(rec["energy_per_request_j"]),
        itl_p50_ms=num(rec["median_itl_ms"]),
        itl_p90_ms=num(rec["p90_itl_ms"]),
        itl_p95_ms=num(rec["p95_itl_ms"]),
        itl_p99_ms=num(rec["p99_itl_ms"]),
        source_repo=rec["source_repo"],
        source_commit=commit,
        source_path=rec["source_path"],
    )


def build(source_dir: Path) -> list[MeasurementRow]:
    recs = read_source(source_dir / SOURCE_FILE)

    def key(rec: dict[str, str]) -> tuple[str, ...]:
        return tuple(rec[k] for k in ("model_id", "task", "gpu_model", "num_gpus", "tensor_parallel",
                                      "data_parallel", "expert_parallel", "max_num_seqs"))

    times = Counter(key(r) for r in recs)
    seen: Counter[tuple[str, ...]] = Counter()
    rows = []
    for rec in recs:
        seen[key(rec)] += 1
        rows.append(row_from(rec, seen[key(rec)], times[key(rec)]))
    return rows
