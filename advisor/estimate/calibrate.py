"""Calibrating the performance model on the measured rows, by least squares.

For each framework, the model's few parameters (overhead per layer and bandwidth efficiency per
format; shared by the framework's formats: compute efficiency, the overlap of host launches with
GPU work, the warm power floor, the power at full tensor rate and the energy per GB moved for HBM
and for GDDR; a format whose kernels stream like another's, formats.csv bw_efficiency_of, takes that
format's bandwidth efficiency instead of fitting its own) are fitted to minimise the sum of squared log errors of throughput and J/1k tok over
the measured inference rows of that framework, each GPU's rows together weighing as much as any
other GPU's: coordinate descent, each parameter by golden-section search within physical limits
(efficiencies in (0, 1], coefficients >= 0). The energy per GB is the DRAM's: a framework with no
row of one memory kind takes that figure from a framework that has one.

    python -m advisor.estimate.calibrate            # refit on the shipped rows, write perf_params.csv
    python -m advisor.estimate.calibrate --check    # refit and compare with the shipped file
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from statistics import median
from typing import Any

from advisor.estimate import physics as P
from advisor.estimate.golden import golden_section
from measurements import catalog

# search limits of each parameter (physical: no kernel streams memory faster than the measured best)
LIMITS = {"oh_ms_per_layer": (1e-4, 50.0), "eff_bw": (0.005, catalog.factor("max_bw_efficiency")), "eff_compute": (0.01, 1.0),
          "overlap": (1.0, 16.0), "u0": (0.0, 1.0), "u1": (0.0, 5.0), "j_per_gb_hbm": (0.0, 2.0), "j_per_gb_gddr": (0.0, 2.0),
          "launch_factor": (0.25, 4.0)}
LOG_SCALE = {"oh_ms_per_layer", "eff_bw", "eff_compute", "overlap"}
MIN_HOST_ROWS = 4  # a host with fewer rows keeps the median host's speed (too few to tell it from noise)
HOST = "host:"  # the format column of a host's launch factor in perf_params.csv
ITERS = 28  # golden-section narrowings per parameter and sweep (bracket shrinks 0.618**28, about 1e-6)
START = {"oh_ms_per_layer": 0.5, "eff_bw": 0.7, "eff_compute": 0.5, "overlap": 2.0, "u0": 0.1, "u1": 1.0,
         "j_per_gb_hbm": 0.15, "j_per_gb_gddr": 0.25}
PER_FORMAT = ("oh_ms_per_layer", "eff_bw")
SHARED = ("eff_compute", "overlap", "u0", "u1", "j_per_gb_hbm", "j_per_gb_gddr")
# the energy of a byte moved is the DRAM's, not the framework's: where a framework's rows hold no GPU
# of one memory kind, that kind's figure comes from a framework whose rows do
HARDWARE = {"j_per_gb_hbm": "hbm", "j_per_gb_gddr": "gddr"}
UNITS = {"oh_ms_per_layer": "ms per layer per forward pass", "eff_bw": "fraction of peak memory bandwidth",
         "eff_compute": "fraction of peak dense tensor rate",
         "overlap": "exponent k of the smooth maximum (t_overhead^k + t_gpu^k)^(1/k)",
         "u0": "fraction of (limit - idle) drawn while work is queued (warm clocks)",
         "u1": "fraction of (limit - idle) at the full dense tensor rate",
         "launch_factor": "this measuring host's launch overhead relative to the median host's",
         "j_per_gb_hbm": "J per GB moved to or from HBM", "j_per_gb_gddr": "J per GB moved to or from GDDR"}


@dataclass(frozen=True)
class Obs:
    work: P.Work
    tok_s: float
    j_per_1k: float
    row_id: str
    weight: float = 1.0
    host: str = ""


def observations(points: Sequence[Any]) -> list[Obs]:
    """Measured points (advisor.estimate.Point) with throughput and energy, as model inputs."""
    from advisor.estimate.serving import SERVING_FRAMEWORKS

    out = []
    for p in points:
        # a serving engine's rows calibrate its own model (advisor.estimate.serving), not this one
        if not p.tput or not p.j or getattr(p, "framework", P.DEFAULT_FRAMEWORK) in SERVING_FRAMEWORKS:
            continue
        w = P.work_for(p.gpu, p.model, p.params_b, p.precision, p.batch_size, p.prompt_tokens, p.gen_tokens,
                       getattr(p, "gpu_count", 1), getattr(p, "framework", P.DEFAULT_FRAMEWORK))
        if w is not None:
            out.append(Obs(w, p.tput, p.j, p.id, host=getattr(p, "host", "")))
    # every GPU counts as much as any other in the fit (its rows share one unit of weight): the
    # parameters then describe GPUs in general, not the host and software of the most-measured one
    n: dict[str, int] = defaultdict(int)
    for o in out:
        n[(o.work.framework, o.work.gpu.key)] += 1  # type: ignore[index]
    out = [replace(o, weight=1.0 / n[(o.work.framework, o.work.gpu.key)]) for o in out]  # type: ignore[index]
    return out


def _loss(obs: Sequence[Obs], params: dict[tuple[str, str, str], float]) -> float:
    s = 0.0
    for o in obs:
        pr = P.predict(o.work, params)
        if pr is None:
            return math.inf
        s += o.weight * (math.log(pr.tok_s / o.tok_s) ** 2 + math.log(pr.j_per_1k / o.j_per_1k) ** 2)
    return s


def _loss_at(obs: Sequence[Obs], params: dict[tuple[str, str, str], float], key: tuple[str, str, str],
             value: float) -> float:
    """The loss with one parameter set to `value` (the others as they stand)."""
    return _loss(obs, {**params, key: value})


def _on_hosts(obs: Sequence[Obs], factors: dict[str, float]) -> list[Obs]:
    """The observations with each one's host launch factor set (1, the median host, where unfitted)."""
    return [replace(o, work=replace(o.work, host=factors.get(o.host, 1.0))) for o in obs]


def _host_loss(obs: Sequence[Obs], params: dict[tuple[str, str, str], float], host: str, value: float) -> float:
    return _loss(_on_hosts(obs, {host: value}), params)


def fit_hosts(fw: str, fobs: Sequence[Obs], params: dict[tuple[str, str, str], float]) -> dict[str, float]:
    """One launch factor per measuring host (HF eager at small batches waits on the host's CPU and
    software, which the GPU's specs cannot tell), scaled so that the median GPU's hosts are 1: the
    per-format overheads then describe the median host, which is what a GPU nobody measured gets. The per-format
    overheads absorb the scale, so the fit's predictions do not change."""
    by_host: dict[str, list[Obs]] = defaultdict(list)
    for o in fobs:
        by_host[o.host].append(o)
    fitted = {h: golden_section(partial(_host_loss, rows, params, h), *LIMITS["launch_factor"], log=True, iters=ITERS)
              for h, rows in by_host.items() if len(rows) >= MIN_HOST_ROWS}
    if not fitted:
        return {}
    # each GPU counts once, as in the fit: its hosts' factors averaged (log scale, by rows), then the
    # median over GPUs
    per_gpu: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for h, v in fitted.items():
        per_gpu[by_host[h][0].work.gpu.key].append((math.log(v), len(by_host[h])))
    med = math.exp(median(sum(lv * n for lv, n in xs) / sum(n for _, n in xs) for xs in per_gpu.values()))
    for k in [k for k in params if k[0] == fw and k[2] == "oh_ms_per_layer"]:
        params[k] *= med
    return {h: v / med for h, v in fitted.items()}


def _fitted(fmt: str) -> tuple[str, ...]:
    """The per-format parameters fitted on a format's own rows: all of PER_FORMAT, but the bandwidth
    efficiency of a format whose kernels stream like another's (formats.csv bw_efficiency_of)."""
    f = catalog.formats().get(fmt)
    return tuple(n for n in PER_FORMAT if not (n == "eff_bw" and f is not None and f.bw_efficiency_of))


def fit(points: Sequence[Any], sweeps: int = 4) -> tuple[dict[tuple[str, str, str], float],
                                                       dict[tuple[str, str], dict[str, Any]]]:
    """Parameters per (framework, format, name) and a fit report per (framework, format)."""
    obs = observations(points)
    by_fw: dict[str, list[Obs]] = defaultdict(list)
    for o in obs:
        by_fw[o.work.framework].append(o)
    params: dict[tuple[str, str, str], float] = {}
    report: dict[tuple[str, str], dict[str, Any]] = {}
    borrowed: dict[tuple[str, str], str] = {}
    # frameworks whose rows cover more memory kinds first: they lend the DRAM energies to the others
    order = sorted(by_fw, key=lambda f: (-len({o.work.gpu.memory_family for o in by_fw[f]}), -len(by_fw[f]), f))
    for fw in order:
        fobs = by_fw[fw]
        kinds = {o.work.gpu.memory_family for o in fobs}
        by_fmt: dict[str, list[Obs]] = defaultdict(list)
        for o in fobs:
            by_fmt[o.work.fmt.key].append(o)
        free = [n for n in SHARED if n not in HARDWARE or HARDWARE[n] in kinds]
        for name in SHARED:
            params[(fw, "*", name)] = START[name]
            if name not in free:
                lender = next((f for f in order if (f, "*", name) in params and f != fw), None)
                if lender is not None:
                    params[(fw, "*", name)] = params[(lender, "*", name)]
                    borrowed[(fw, name)] = lender
        for fmt in by_fmt:
            for name in _fitted(fmt):
                params[(fw, fmt, name)] = START[name]
        factors: dict[str, float] = {}
        for _ in range(sweeps):
            factors = fit_hosts(fw, fobs, params)
            fobs = _on_hosts(fobs, factors)
            by_fmt = defaultdict(list)
            for o in fobs:
                by_fmt[o.work.fmt.key].append(o)
            for fmt, rows in by_fmt.items():
                for name in _fitted(fmt):
                    key = (fw, fmt, name)
                    params[key] = golden_section(partial(_loss_at, rows, params, key), *LIMITS[name],
                                                  log=name in LOG_SCALE, iters=ITERS)
            for name in free:
                key = (fw, "*", name)
                params[key] = golden_section(partial(_loss_at, fobs, params, key), *LIMITS[name],
                                              log=name in LOG_SCALE, iters=ITERS)
        for fmt, rows in by_fmt.items():
            et, ej = [], []
            for o in rows:
                pr = P.predict(o.work, params)
                et.append(abs(pr.tok_s / o.tok_s - 1) * 100)  # type: ignore[union-attr]
                ej.append(abs(pr.j_per_1k / o.j_per_1k - 1) * 100)  # type: ignore[union-attr]
            report[(fw, fmt)] = {"n": len(rows), "tput_median_pct": median(et), "j_median_pct": median(ej)}
        allj = [abs(P.predict(o.work, params).j_per_1k / o.j_per_1k - 1) * 100 for o in fobs]  # type: ignore[union-attr]
        report[(fw, "*")] = {"n": len(fobs), "j_median_pct": median(allj),
                             "borrowed": {n: f for (f2, n), f in borrowed.items() if f2 == fw},
                             "tput_median_pct": median(abs(P.predict(o.work, params).tok_s / o.tok_s - 1) * 100  # type: ignore[union-attr]
                                                       for o in fobs)}
        for h, v in factors.items():
            hobs = [o for o in fobs if o.host == h]
            pairs = [(pr, o) for o in hobs if (pr := P.predict(o.work, params)) is not None]
            params[(fw, HOST + h, "launch_factor")] = v
            report[(fw, HOST + h)] = {"n": len(hobs),
                                      "j_median_pct": median(abs(pr.j_per_1k / o.j_per_1k - 1) * 100 for pr, o in pairs),
                                      "tput_median_pct": median(abs(pr.tok_s / o.tok_s - 1) * 100 for pr, o in pairs)}
    return params, report


FIELDS = ["framework", "format", "param", "value", "unit", "n_rows", "fit_median_abs_pct_err", "source"]


def to_rows(params: dict[tuple[str, str, str], float], report: dict[tuple[str, str], dict[str, Any]],
            when: str) -> list[dict[str, Any]]:
    out = []
    for (fw, fmt, name), v in sorted(params.items()):
        r = report.get((fw, fmt), {})
        lender = report.get((fw, "*"), {}).get("borrowed", {}).get(name)
        if lender:
            out.append({"framework": fw, "format": fmt, "param": name, "value": f"{v:.6g}", "unit": UNITS[name],
                        "n_rows": 0, "fit_median_abs_pct_err": "",
                        "source": f"no {fw} row of a GPU with this memory kind: the {lender} fit's figure (a property "
                                  f"of the DRAM, not of the framework); python -m advisor.estimate.calibrate, {when}"})
            continue
        what = (f"the {r.get('n', 0)} measured {fw} rows of this host" if fmt.startswith(HOST) else
                f"the {r.get('n', 0)} measured {fw} {'rows' if fmt == '*' else fmt + ' rows'}")
        out.append({"framework": fw, "format": fmt, "param": name, "value": f"{v:.6g}", "unit": UNITS[name],
                    "n_rows": r.get("n", 0), "fit_median_abs_pct_err": f"{r['j_median_pct']:.1f}" if r else "",
                    "source": f"least squares (log throughput and log J/1k tok) over {what} of the shipped data; "
                              f"python -m advisor.estimate.calibrate, {when}; fit error = median |error| of J/1k tok"})
    return out


def main(argv: list[str] | None = None) -> int:
    from advisor import estimate as E
    from measurements import store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare a fresh fit with the shipped file")
    args = ap.parse_args(argv)
    params, report = fit(E.points_from_rows(store.load_rows(include_local=False)))
    for (fw, fmt), r in sorted(report.items()):
        print(f"{fw:<12} {fmt:<11} n={r['n']:>3}  median |err| throughput {r['tput_median_pct']:5.1f}%  "
              f"J/1k tok {r['j_median_pct']:5.1f}%")
    path = catalog.CATALOG_DIR / "perf_params.csv"
    if args.check:
        shipped = P.shipped_params()
        bad = [k for k, v in params.items() if k not in shipped or abs(shipped[k] / v - 1) > 0.05]
        print("shipped calibration matches" if not bad else f"stale: {bad}")
        return 0 if not bad else 1
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(to_rows(params, report, dt.date.today().isoformat()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
