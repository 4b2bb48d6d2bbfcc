"""How well does the estimator predict a measurement it has not seen?

Leave-one-out over the measured inference rows (shipped data only, so the figures are
reproducible): each row is hidden, the estimator predicts its J/1k tok from the others, and the
absolute percentage error is grouped by the tier the estimator reports. A second pass hides every
row of the row's GPU *and precision*, which forces the extrapolated paths (cross-GPU transfer and
precision transfer) on every row. Variants of the two tuning knobs (the batch law's locality and
the spec used for cross-GPU transfer) are compared, so the shipped choice is the measured best.

    python benchmarks/estimator_accuracy.py            # table
    python benchmarks/estimator_accuracy.py --json     # machine-readable
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor import estimate as E  # noqa: E402
from measurements import store  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    """Percentile by linear interpolation between order statistics."""
    s = sorted(values)
    if not s:
        return math.nan
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run(local_span: float | None = None, transfer: str | None = None) -> dict[str, dict[str, list[float]]]:
    points = E.points_from_rows(store.load_rows(include_local=False))
    out: dict[str, dict[str, list[float]]] = {"leave-one-out": defaultdict(list), "hide GPU+precision": defaultdict(list)}
    for i, p in enumerate(points):
        rest = points[:i] + points[i + 1:]
        for scenario, pool in (("leave-one-out", rest),
                               ("hide GPU+precision", [x for x in rest if not (x.gpu == p.gpu and x.precision == p.precision)])):
            ds = E.Dataset(pool, local_span=local_span, transfer=transfer)
            c = ds.estimate_metric(p.gpu, p.model, p.params_b, p.precision, p.batch_size, "j")
            if c is None:
                out[scenario]["no estimate"].append(math.nan)
                continue
            err = abs(c.value / p.j - 1) * 100
            out[scenario][c.tier].append(err)
            out[scenario]["all"].append(err)
    return out


def summary(res: dict[str, dict[str, list[float]]]) -> list[dict]:
    rows = []
    for scenario, by_tier in res.items():
        for tier in ("measured", "interpolated", "extrapolated", "all", "no estimate"):
            errs = [e for e in by_tier.get(tier, []) if not math.isnan(e)]
            n = len(by_tier.get(tier, []))
            if not n:
                continue
            rows.append({"scenario": scenario, "tier": tier, "n": n,
                         "median_abs_pct_err": round(_pct(errs, 0.5), 1) if errs else None,
                         "p90_abs_pct_err": round(_pct(errs, 0.9), 1) if errs else None})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    shipped = summary(run())
    variants = []
    for span in (0.0, 0.5, 1.0, 2.0):
        for transfer in ("none", "bw", "tdp_bw"):
            s = summary(run(local_span=span, transfer=transfer))
            get = {(r["scenario"], r["tier"]): r for r in s}
            variants.append({
                "local_span": span or None, "transfer": transfer,
                "loo_interpolated_median": get.get(("leave-one-out", "interpolated"), {}).get("median_abs_pct_err"),
                "loo_all_median": get.get(("leave-one-out", "all"), {}).get("median_abs_pct_err"),
                "loo_all_p90": get.get(("leave-one-out", "all"), {}).get("p90_abs_pct_err"),
                "hidden_extrapolated_median": get.get(("hide GPU+precision", "extrapolated"), {}).get("median_abs_pct_err"),
                "hidden_extrapolated_p90": get.get(("hide GPU+precision", "extrapolated"), {}).get("p90_abs_pct_err"),
            })
    if args.json:
        print(json.dumps({"shipped": {"local_span": E.LOCAL_SPAN, "transfer": E.TRANSFER, "rows": shipped},
                          "variants": variants}, indent=2))
        return 0
    print(f"Estimator accuracy, J/1k tok (shipped settings: local_span={E.LOCAL_SPAN}, transfer={E.TRANSFER})")
    print(f"{'scenario':<20} {'tier':<13} {'n':>3} {'median |err| %':>15} {'p90 |err| %':>12}")
    for r in shipped:
        med = "-" if r["median_abs_pct_err"] is None else f"{r['median_abs_pct_err']:.1f}"
        p90 = "-" if r["p90_abs_pct_err"] is None else f"{r['p90_abs_pct_err']:.1f}"
        print(f"{r['scenario']:<20} {r['tier']:<13} {r['n']:>3} {med:>15} {p90:>12}")
    print("\nVariants (median / p90 absolute % error):")
    print(f"{'local_span':>10} {'transfer':<8} {'LOO interp med':>15} {'LOO all med':>12} {'LOO all p90':>12} "
          f"{'hidden extrap med':>18} {'hidden extrap p90':>18}")
    for v in variants:
        print(f"{str(v['local_span']):>10} {v['transfer']:<8} {v['loo_interpolated_median']!s:>15} {v['loo_all_median']!s:>12} "
              f"{v['loo_all_p90']!s:>12} {v['hidden_extrapolated_median']!s:>18} {v['hidden_extrapolated_p90']!s:>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
