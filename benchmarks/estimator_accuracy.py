"""How well does the estimator predict a measurement it has not seen?

Three scenarios over the measured inference rows (shipped data only, so the figures are
reproducible); absolute percentage error of the predicted J/1k tok, grouped by the tier the
estimator reports and by GPU:

- leave-one-out: each row hidden, predicted from all the others;
- hide GPU+precision: every row of the row's GPU *and* precision hidden (forces cross-GPU and
  cross-precision transfer);
- leave-one-GPU-out: every row of one GPU hidden and the performance model recalibrated on the
  other GPUs only, then each hidden row predicted (what a GPU the dataset does not have gets).

And over the serving rows (vLLM, ML.ENERGY v3), through the serving estimator itself
(advisor.estimate.serve_estimate with the serving model refitted without the hidden rows):

- serving leave-one-model-out: every row of one model hidden (all its GPUs, GPU counts, tasks and
  concurrencies), the serving model recalibrated on the other models, each hidden row predicted
  from its GPU, GPU count, format, task, concurrency and mean output length (the answer length a
  user states); ", length unstated": the same with the output length left to the estimator (the
  task's median over the other models);
- serving leave-one-GPU-out: every serving row of one GPU hidden (the cross-GPU transfer an A100
  question gets: the same model measured on the other GPU, times the serving model's ratio);
- HF rows standing in for vLLM: what the hf-eager estimate of the same model, GPU and batch size
  would say about a vLLM row (batch sizes the HF rows cover); the error a silent cross-framework
  stand-in would make, which is why the advisor never does it.

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


def run(local_span: float | None = None, scenarios: tuple[str, ...] = ("leave-one-out", "hide GPU+precision",
                                                                        "leave-one-GPU-out")) -> dict:
    """Errors per scenario, per tier (and 'all') and per GPU ('gpu:<key>')."""
    from advisor.estimate import calibrate

    # the HF-generate rows: serving rows (vLLM) have their own section, serving_leave_one_model_out()
    points = E.points_from_rows(store.load_rows(include_local=False), framework=E.physics.DEFAULT_FRAMEWORK)
    out: dict[str, dict[str, list[float]]] = {s: defaultdict(list) for s in scenarios}

    def score(scenario: str, ds, p) -> None:
        # the row's own lengths, as a question would state them
        c = ds.estimate_metric(p.gpu, p.model, p.params_b, p.precision, p.batch_size, "j", (p.prompt_tokens, p.gen_tokens))
        if c is None:
            out[scenario]["no estimate"].append(math.nan)
            return
        err = abs(c.value / p.j - 1) * 100
        for k in (c.tier, "all", f"gpu:{p.gpu}"):
            out[scenario][k].append(err)

    for i, p in enumerate(points):
        rest = points[:i] + points[i + 1:]
        if "leave-one-out" in out:
            score("leave-one-out", E.Dataset(rest, local_span=local_span), p)
        if "hide GPU+precision" in out:
            pool = [x for x in rest if not (x.gpu == p.gpu and x.precision == p.precision)]
            score("hide GPU+precision", E.Dataset(pool, local_span=local_span), p)
    if "leave-one-GPU-out" in out:
        for gpu in sorted({p.gpu for p in points}):
            others = [x for x in points if x.gpu != gpu]
            params, _ = calibrate.fit(others)
            ds = E.Dataset(others, local_span=local_span, params=params)
            for p in points:
                if p.gpu == gpu:
                    score("leave-one-GPU-out", ds, p)
    return out


def _serving_cfg(o, stated_length: bool = True):
    """The question a hidden row answers: its GPU, GPU count, model, format, task, concurrency and
    (when `stated_length`) its mean output length as the question's answer length."""
    from advisor.estimate import Config

    r = o.row
    return Config(gpu=o.gpu, model=o.model, params_b=o.setup.arch.params_b, precision=r.precision,
                  batch_size=int(o.setup.concurrency), gpu_count=r.gpu_count, framework=r.framework,
                  workload=o.setup.workload, data_parallel=r.data_parallel or 1,
                  gen_tokens=round(o.setup.gen_tokens) if stated_length else None)


UNSTATED = ", length unstated"  # the same hold-out, the output length left to the estimator (task median)


def serving_run(scenarios: tuple[str, ...] = ("serving leave-one-model-out", "serving leave-one-GPU-out",
                                               "HF rows standing in for vLLM")) -> dict:
    """Errors (J/token and throughput) per serving scenario, per tier, GPU and model."""
    from advisor.estimate import serve_estimate, serving

    rows = store.load_rows(include_local=False)
    out: dict[str, dict[str, list[float]]] = {}
    for fw in serving.SERVING_FRAMEWORKS:
        obs = serving.observations(rows, fw)

        def score(name: str, o, e, out=out) -> None:
            d = out.setdefault(name, defaultdict(list))
            if e is None:
                d["no estimate"].append(math.nan)
                return
            err = abs(e.j_per_1k_tok / o.j_per_1k - 1) * 100
            for k in (e.tier, "all", f"gpu:{o.gpu}", f"model:{o.model}"):
                d[k].append(err)
            d["throughput"].append(abs(e.throughput_tok_s / o.tok_s - 1) * 100)

        groups = {"serving leave-one-model-out": lambda o: o.model, "serving leave-one-GPU-out": lambda o: o.gpu}
        for name, key in groups.items():
            if name not in scenarios:
                continue
            for k in sorted({key(o) for o in obs}):
                hidden = {o.row.id for o in obs if key(o) == k}
                train_rows = [r for r in rows if r.id not in hidden]
                params = serving.fit([o for o in obs if o.row.id not in hidden])
                for o in obs:
                    if o.row.id in hidden:
                        score(name, o, serve_estimate.estimate(_serving_cfg(o), train_rows, params=params))
                        score(name + UNSTATED, o,
                              serve_estimate.estimate(_serving_cfg(o, False), train_rows, params=params))
        if "HF rows standing in for vLLM" in scenarios:
            hf = E.Dataset(E.points_from_rows(rows, framework=E.physics.DEFAULT_FRAMEWORK))
            top = max(p.batch_size for p in hf.points)
            for o in obs:
                if o.setup.concurrency > top:
                    continue
                c = E._estimate(hf, _serving_cfg(o).model_copy(update={"framework": E.physics.DEFAULT_FRAMEWORK,
                                                                        "gpu_count": 1, "workload": None}))
                if c is not None:
                    score("HF rows standing in for vLLM", o, c)
    return out


def summary(res: dict[str, dict[str, list[float]]]) -> list[dict]:
    rows = []
    for scenario, by_key in res.items():
        keys = ["measured", "interpolated", "extrapolated", "all", "throughput", "no estimate"] + \
            sorted(k for k in by_key if k.startswith(("gpu:", "model:")))
        for key in keys:
            errs = [e for e in by_key.get(key, []) if not math.isnan(e)]
            n = len(by_key.get(key, []))
            if not n:
                continue
            rows.append({"scenario": scenario, "tier": key, "n": n,
                         "median_abs_pct_err": round(_pct(errs, 0.5), 1) if errs else None,
                         "p90_abs_pct_err": round(_pct(errs, 0.9), 1) if errs else None})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serving-only", action="store_true", help="only the serving scenarios")
    args = ap.parse_args()
    shipped = ([] if args.serving_only else summary(run())) + summary(serving_run())
    if args.json:
        print(json.dumps({"local_span": E.LOCAL_SPAN, "rows": shipped}, indent=2))
        return 0
    print(f"Estimator accuracy, J/1k tok (local_span={E.LOCAL_SPAN}; cross-GPU transfer through the performance model)")
    print(f"{'scenario':<45} {'tier / GPU / model':<30} {'n':>3} {'median |err| %':>15} {'p90 |err| %':>12}")
    for r in shipped:
        med = "-" if r["median_abs_pct_err"] is None else f"{r['median_abs_pct_err']:.1f}"
        p90 = "-" if r["p90_abs_pct_err"] is None else f"{r['p90_abs_pct_err']:.1f}"
        print(f"{r['scenario']:<45} {r['tier']:<30} {r['n']:>3} {med:>15} {p90:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
