"""Physics limits on a measurement row: a row that breaks them is a broken measurement, not data.

The rule (every figure from the catalogs, none typed here):

* every token costs at least ``forward_flops_per_param_token`` (factors.csv) x active parameters
  FLOPs, and a GPU does at most its best dense tensor rate (gpus.csv: the largest of fp16_tflops,
  bf16_tflops, int8_tops), so ``throughput_tok_s`` and ``decode_tok_s`` are at most
  gpu_count x peak / (FLOPs per token);
* while it works, a GPU board draws at least its idle power (gpus.csv ``idle_power_w``), so
  ``energy_j_per_1k_tok`` is at least 1000 x idle_w x (FLOPs per token) / peak (gpu_count cancels:
  each GPU idles and computes).

Both bounds are far from real runs (real decoding reaches a fraction of peak compute at several
times idle power), so they only catch rows that cannot be: a 7B row of 1e-9 J/1k tok, a
throughput beyond the GPU's arithmetic. Rows on a GPU the catalog lacks (or CPU runs) are not
bounded here.
"""

from __future__ import annotations

from measurements import catalog
from measurements.schema import MeasurementRow


def _peak_ops(gpu_key: str) -> tuple[float, float] | None:
    """(best dense tensor rate in op/s, idle power W) of a catalog GPU, or None."""
    try:
        g = catalog.gpu(gpu_key)
    except catalog.UnknownName:
        return None
    rates = [r for r in (g.fp16_tflops, g.bf16_tflops, g.int8_tops) if r]
    return max(rates) * 1e12, g.idle_power_w


def _active_params(row: MeasurementRow) -> float:
    arch = catalog.model_by_hub_id(row.model_id)
    # a catalog MoE model computes with its active parameters only; otherwise the row's own count
    return (arch.active_params_b if arch is not None else row.params_b) * 1e9


def implausible(row: MeasurementRow) -> list[str]:
    """What in `row` breaks the physics bounds above (empty when nothing does)."""
    if row.kind == "simulated" or row.gpu == "cpu":
        return []
    spec = _peak_ops(row.gpu)
    if spec is None:
        return []
    peak, idle_w = spec
    flops_per_token = catalog.factor("forward_flops_per_param_token") * _active_params(row)
    out: list[str] = []
    max_tok_s = row.gpu_count * peak / flops_per_token
    for name in ("throughput_tok_s", "decode_tok_s"):
        v = getattr(row, name)
        if v is not None and v > max_tok_s:
            out.append(f"{name} {v:,.4g} exceeds {max_tok_s:,.4g}, the most {row.gpu_count} x {row.gpu} can "
                       f"compute for a {row.params_b:g}B model")
    floor = 1000 * idle_w * flops_per_token / peak
    if row.energy_j_per_1k_tok is not None and row.energy_j_per_1k_tok < floor:
        out.append(f"energy_j_per_1k_tok {row.energy_j_per_1k_tok:.4g} is below {floor:.4g}, the least a "
                   f"{row.gpu} can spend (idle power at peak compute) on 1,000 tokens of a {row.params_b:g}B model")
    return out
