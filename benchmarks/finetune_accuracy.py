"""Fine-tuning estimator accuracy: throughput and J/token of held-out LoRA/QLoRA rows (H100 and H200).

Every measured LoRA or QLoRA fine-tuning row is hidden in turn and predicted by
advisor.finetune_time.estimate_step from the other rows only (the training law refitted on them, so
the shipped calibration in finetune_params.csv, which saw every row, is not used here):

- leave-one-configuration-out (the headline split): the row and every row of the same model and
  configuration hidden. It is the planner's case for a model the data has measured on the GPU: a
  configuration (rank, sequence length, checkpointing, optimizer) nobody ran;
- leave-one-token-count-out: every row of the row's model at the row's tokens per micro-step
  hidden (512 <-> 2,048 tokens per step at micro-batch 1, 1,024-8,192 above it);
- leave-one-model-out: every row of the row's model hidden (the law must carry the model change;
  three models only, so a hidden model is an extrapolation in size for two of them);
- micro-batch held out (2, 4): every row above micro-batch 1 (the H200's, 2026-12-02) predicted
  from the micro-batch 1 rows alone, every GPU's: the issue's micro-batch 2-4 hold-out, measured
  on the H200 because no H100 was lent;
- the two closest stand-ins for H100 runs at micro-batch 2-4 that the data does not have: every
  H100 row predicted from the other GPUs' rows only (the law carried to the H100 from the H200),
  and the H200 rows above micro-batch 1 predicted from the H100 rows only (the H200's micro-batch 1
  rows hidden too: the batch change and the GPU change at once, as an unseen GPU would get).
Run: python benchmarks/finetune_accuracy.py [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable

from advisor.finetune_time import Calibration, calibrations, estimate_step
from measurements import catalog

SPLITS = {
    "leave-one-configuration-out": lambda o, c: o.arch == c.arch and o.setup == c.setup,
    "leave-one-token-count-out": lambda o, c: (o.arch == c.arch
                                               and o.setup.tokens_per_micro_step == c.setup.tokens_per_micro_step),
    "leave-one-model-out": lambda o, c: o.arch == c.arch,
}


# name -> which rows are predicted, and which rows each prediction may not see.
MICRO_BATCH: dict[str, tuple[Callable[[Calibration], bool], Callable[[Calibration, Calibration], bool]]] = {
    "micro-batch held out (2, 4)": (lambda c: c.setup.batch_size > 1, lambda o, c: o.setup.batch_size > 1),
    "H100 from the other GPUs": (lambda c: c.gpu == "h100_sxm", lambda o, c: o.gpu == "h100_sxm"),
    "H200 mb 2, 4 from the H100": (lambda c: c.gpu == "h200" and c.setup.batch_size > 1,
                                   lambda o, c: o.gpu == "h200"),
}


def run(cal: list[Calibration] | None = None) -> list[dict]:
    cal = calibrations() if cal is None else cal
    held_all = [c for c in cal if c.method in ("lora", "qlora") and c.energy_j_per_step]
    out = []
    splits = {name: ((lambda c: True), hidden) for name, hidden in SPLITS.items()} | MICRO_BATCH
    for name, (predicted, hidden) in splits.items():
        held = [c for c in held_all if predicted(c)]
        err_t, err_j = [], []
        for c in held:
            est = estimate_step(catalog.resolve_model(c.arch), c.setup, catalog.resolve_gpu(c.gpu),
                                [o for o in cal if not hidden(o, c)])
            if est is None or est.energy_j_per_step is None:
                raise RuntimeError(f"{c.row_id}: no estimate from the other rows")
            err_t.append(100 * abs(est.tokens_per_s / c.tokens_per_s - 1))
            err_j.append(100 * abs(est.energy_j_per_step / c.energy_j_per_step - 1))
        out.append({"split": name, "n": len(held),
                    "throughput_median_pct": round(statistics.median(err_t), 1),
                    "throughput_max_pct": round(max(err_t), 1),
                    "j_per_token_median_pct": round(statistics.median(err_j), 1),
                    "j_per_token_max_pct": round(max(err_j), 1)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = run()
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print("Fine-tuning estimator accuracy, held-out LoRA/QLoRA rows (|error| %)")
    print(f"{'split':<30} {'n':>3} {'tok/s median':>13} {'tok/s max':>10} {'J/tok median':>13} {'J/tok max':>10}")
    for r in res:
        print(f"{r['split']:<30} {r['n']:>3} {r['throughput_median_pct']:>13} {r['throughput_max_pct']:>10} "
              f"{r['j_per_token_median_pct']:>13} {r['j_per_token_max_pct']:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
