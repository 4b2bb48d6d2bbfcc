"""OPTIMIZE: the greenest configuration (precision x batch size) of a model on a GPU for a use case.

Every candidate is estimated with its provenance, ranked by J per 1,000 generated tokens among
the batch sizes the use case allows and the memory fits; the answer compares the best with the
user's (or the default) configuration over a month, and lists the traps to avoid.
"""

from __future__ import annotations

from advisor import derive
from advisor.answer import Answer, Recommendation, Table
from advisor.estimate import Estimate
from advisor.protocols import common as c
from advisor.query import USE_CASE_LABEL, Query
from measurements import catalog

# the Query slots this protocol uses (advisor.protocols.report_unused lists any other stated one)
READS_SLOTS = ("gpu_count", "framework", "itl_target_ms", "e2e_target_s")


def candidates(q: Query, missed: list[str] | None = None) -> list[Estimate]:
    """Estimates of every ranked precision at every batch size the use case allows, that fit and
    meet the user's latency target (those that miss it are listed in `missed`)."""
    out = []
    for prec in c.ranked_precisions(q):
        for bs in c.batch_candidates(q.use_case):
            e = c.est(q, precision=prec, batch_size=bs)
            if e is None or not c.fits(e):
                continue
            why = c.latency_miss(e, q)
            if why:
                if missed is not None:
                    missed.append(f"{c.plabel(prec)} at batch size {bs}: {why}")
                continue
            out.append(e)
    return out


# Product policy: a precision never measured on this GPU is recommended over a measured one only
# when it is estimated to save more than this fraction, about the median error of cross-GPU and
# cross-precision transfer in benchmarks/estimator_accuracy.py (README, Benchmarks).


def _measured_here(e: Estimate) -> bool:
    return bool(c.ds().by_gp.get((e.config.gpu, e.config.precision)))


def best_of(ests: list[Estimate]) -> Estimate:
    # FP8 in eager mode is never recommended, whatever an extrapolation says
    pool = [e for e in ests if e.config.precision != "fp8"] or ests
    best = min(pool, key=lambda e: e.j_per_1k_tok)
    backed = [e for e in pool if _measured_here(e)]
    if backed and not _measured_here(best):
        safe = min(backed, key=lambda e: e.j_per_1k_tok)
        if best.j_per_1k_tok > safe.j_per_1k_tok * (1 - catalog.factor("extrapolation_margin_pct") / 100):
            return safe
    return best


def unmeasured_alternative(ests: list[Estimate], chosen: Estimate) -> Estimate | None:
    """A cheaper-looking configuration whose precision was never measured on this GPU."""
    pool = [e for e in ests if e.config.precision != "fp8" and not _measured_here(e)
            and e.j_per_1k_tok < chosen.j_per_1k_tok]
    return min(pool, key=lambda e: e.j_per_1k_tok) if pool else None


def run(q: Query) -> Answer:
    mlabel, glabel = c.model_label(q), c.gpu_label(q.gpu)
    ans = c.base_answer(q, "optimize", f"Greenest configuration: {mlabel} on {glabel}")
    ans.alerts = c.detect_traps(q)
    current = c.est(q)
    missed: list[str] = []
    cands = candidates(q, missed)
    if missed:
        ans.caveats.append(f"{len(missed)} configuration(s) left out for missing the latency target: "
                           + "; ".join(missed[:6]) + ("; ..." if len(missed) > 6 else ""))
    if current is not None and not cands and missed:
        ans.mood = "gray"
        ans.headline = (f"No configuration of {mlabel} on {glabel} that fits meets the latency target "
                        f"({len(missed)} estimated, all too slow).")
        return ans
    if current is not None and not cands:
        g = c.gpu_of(q.gpu)
        needs = [(p, c.est(q, precision=p, batch_size=1)) for p in ("fp16", "int8_pure", "nf4")]
        rows = [[c.plabel(p), round(e.mem_gb, 1) if e and e.mem_gb else None] for p, e in needs]
        ans.mood = "gray"
        ans.headline = (f"{mlabel} does not fit in the {g.vram_gb:g} GB of the {glabel} in any measured format, "
                        "even at batch size 1." if g else f"{mlabel} does not fit on {glabel}.")
        ans.tables.append(Table(title=f"Estimated GPU memory for {mlabel} at batch size 1",
                                columns=["precision", "GB needed"], rows=rows))
        ans.recommendations.append(Recommendation(
            title="Use a GPU with more memory, or several",
            detail="Compare GPUs with enough memory, e.g. ask \"compare H100 vs A800 for this model in NF4\"."))
        return ans
    if current is None or not cands:
        ans.mood = "gray"
        ans.headline = (f"No measurement or derivation covers {mlabel} on {glabel} yet.")
        ans.recommendations.append(Recommendation(
            title="Measure it", code=f"ecolobster bench --model {q.model} --precision fp16 --batch-size 8 --synthetic",
            language="bash"))
        return ans
    best = best_of(cands)
    c.judge(ans, q, current, best)
    uc = USE_CASE_LABEL.get(q.use_case or "", q.use_case or "")
    bc = best.config
    ans.headline = (f"Use {c.plabel(bc.precision)} at batch size {bc.batch_size}: {c.fnum(best.j_per_1k_tok)} J/1k tok "
                    f"vs {c.fnum(current.j_per_1k_tok)} for {c.plabel(q.precision or 'fp16')} at batch size {q.batch_size} "
                    f"({c.fpct(-100 + 100 * best.j_per_1k_tok / current.j_per_1k_tok)} energy; best for {uc}).")

    # the ranking
    ranked = sorted(cands, key=lambda e: e.j_per_1k_tok)
    shown = ranked[:8]
    if current not in shown and all(e.config != current.config for e in shown):
        shown.append(current)
    rows = []
    for e in shown:
        rank = ranked.index(e) + 1 if e in ranked else "-"
        cur = (" (current)" if c.config_stated(q) else " (default baseline)") if e.config == current.config else ""
        rows.append([rank if rank != "-" else "-", c.plabel(e.config.precision) + cur, e.config.batch_size,
                     round(e.j_per_1k_tok, 1), _r(e.throughput_tok_s), _r(e.power_w), _r(e.mem_gb, 1),
                     c.fpct(derive.waste_pct(e.j_per_1k_tok, best.j_per_1k_tok)), e.tier, e.confidence])
    ans.tables.append(Table(
        title=f"Ranked configurations for {mlabel} on {glabel} ({uc}: batch sizes {', '.join(map(str, c.batch_candidates(q.use_case)))})",
        columns=["rank", "precision", "batch size", "J/1k tok", "tok/s", "power W", "memory GB", "vs best", "tier", "confidence"],
        rows=rows,
        notes=[f"{len(ranked)} candidate configurations estimated; configurations that do not fit in "
               f"{c.gpu_of(q.gpu).vram_gb:g} GB are left out." if c.gpu_of(q.gpu) else ""]))

    # chart: each precision at the recommended batch size, plus the current configuration
    g = c.grid(q)
    w = c.workload(q, current)
    items = []
    # "you are here" marks only a configuration the user stated, never the defaults
    stated = not {"precision", "batch_size"} <= set(q.defaulted)
    for prec in c.ranked_precisions(q):
        e = next((x for x in cands if x.config.precision == prec and x.config.batch_size == bc.batch_size), None)
        if e is None:
            continue
        line = c.cost("", e, w, g)
        items.append((f"{c.plabel(prec)} BS={bc.batch_size}", e.j_per_1k_tok, stated and e.config == current.config,
                      f"{c.fusd(line.usd)}/{'mo' if w.period == 'month' else 'job'}"))
    if stated and not any(cur for _, _, cur, _ in items):
        line = c.cost("", current, w, g)
        items.append((f"{c.plabel(current.config.precision)} BS={current.config.batch_size}", current.j_per_1k_tok, True,
                      f"{c.fusd(line.usd)}/{'mo' if w.period == 'month' else 'job'}"))
    ans.charts.append(c.bar_chart(f"Energy per 1k tokens, {mlabel} on {glabel}", items))

    # money and carbon
    cur_line = c.cost(f"{'current' if c.config_stated(q) else 'default baseline'}: {c.plabel(current.config.precision)}, BS={current.config.batch_size}", current, w, g)
    best_line = c.cost(f"recommended: {c.plabel(bc.precision)}, BS={bc.batch_size}", best, w, g)
    ans.costs = [cur_line, best_line]
    ans.conversions += w.conversions + c.cost_conversions(best, w, g, best_line)
    fcs = [c.full_cost("recommended", best, w, g)]
    if best.config != current.config:
        fcs.append(c.full_cost("current" if c.config_stated(q) else "default baseline", current, w, g))
    ans.tables.append(c.capacity_table(fcs, w, g))
    ans.caveats += c.capacity_caveats(fcs)
    for f in fcs:
        ans.citations += [x for x in f.citations if all(x.ref != y.ref for y in ans.citations)]
    ans.extra["capacity"] = [_cap(f) for f in fcs]
    if w.defaulted:
        ans.defaults_applied.append(f"workload: {c.fnum(c.DEFAULT_MONTHLY_REQUESTS)} requests/month (basis for the monthly figures)")

    # why, and what to do
    code = c.config_code(bc.precision, c.hub_id(q), bc.batch_size, q.gen_tokens or 256)
    save = cur_line.usd - best_line.usd
    ans.recommendations.append(Recommendation(
        title=f"Run {c.plabel(bc.precision)} at batch size {bc.batch_size}",
        detail=_why(q, best, current, cands),
        code=code,
        impact=(f"{c.fnum(cur_line.kwh, 1)} -> {c.fnum(best_line.kwh, 1)} kWh, {c.fusd(cur_line.usd)} -> {c.fusd(best_line.usd)}"
                f" ({c.fusd(save)} saved), {c.fnum(cur_line.kg_co2, 1)} -> {c.fnum(best_line.kg_co2, 1)} kgCO2 per "
                f"{'month' if w.period == 'month' else 'job'}")))
    alt = unmeasured_alternative(cands, best)
    if alt is not None:
        ac = alt.config
        ans.recommendations.append(Recommendation(
            title=f"Worth measuring: {c.plabel(ac.precision)} at batch size {ac.batch_size}",
            detail=(f"Estimated at {c.fnum(alt.j_per_1k_tok)} J/1k tok "
                    f"({c.fpct(c.delta_pct(alt.j_per_1k_tok, best.j_per_1k_tok))} vs the recommendation), but "
                    f"{c.plabel(ac.precision)} was never measured on {glabel}: the figure is {alt.tier} "
                    f"({alt.method}). Measure it before switching."),
            code=alt.bench_command, language="bash"))
    if "gpu" in q.defaulted:
        ans.recommendations.append(Recommendation(
            title="Tell me your GPU",
            detail=f"These figures assume the default GPU ({glabel}). Name yours (e.g. 'on an A800') for figures "
                   "that fit your hardware."))
    pit = _pitfalls(q, cands, bc.batch_size)
    if pit:
        ans.tables.append(pit)
    ests = [best, current]
    c.add_provenance(ans, ests)
    c.cite_estimates(ans, ests)
    ans.citations += g.citations + c.factor_citations("km_driven_per_kgco2", "smartphone_charge_kwh")
    c.add_bench_hints(ans, [e for e in ests if e.tier != "measured"])
    ans.caveats += c.data_caveats(ests)
    ans.extra["best"] = {"precision": bc.precision, "batch_size": bc.batch_size, "j_per_1k_tok": best.j_per_1k_tok,
                         "tier": best.tier}
    ans.extra["current"] = {"precision": current.config.precision, "batch_size": current.config.batch_size,
                            "j_per_1k_tok": current.j_per_1k_tok, "tier": current.tier}
    return ans


def _cap(f: c.FullCost) -> dict:
    return {"label": f.label, "gpu_hours": f.gpu_hours, "gpus": f.gpus, "replicas": f.replicas,
            "tok_s_needed": f.tok_s_needed, "serves": f.serves, "rental_usd": f.rental_usd,
            "electricity_usd": f.electricity.usd, "total_usd": f.total_usd}


def _r(x: float | None, nd: int = 0) -> float | None:
    if x is None:
        return None
    return round(x, nd) if nd else float(round(x))


def _why(q: Query, best: Estimate, current: Estimate, cands: list[Estimate]) -> str:
    bc = best.config
    same_bs = {e.config.precision: e for e in cands if e.config.batch_size == bc.batch_size}
    parts = []
    fp16 = same_bs.get("fp16")
    if fp16 and bc.precision != "fp16":
        parts.append(f"At batch size {bc.batch_size}, {c.plabel(bc.precision)} uses "
                     f"{c.fpct(-100 + 100 * best.j_per_1k_tok / fp16.j_per_1k_tok)} energy vs FP16.")
    elif bc.precision == "fp16":
        others = [e for p, e in same_bs.items() if p != "fp16"]
        if others:
            nxt = min(others, key=lambda e: e.j_per_1k_tok)
            parts.append(f"FP16 beats every quantized format here (next: {c.plabel(nxt.config.precision)}, "
                         f"{c.fpct(derive.waste_pct(nxt.j_per_1k_tok, best.j_per_1k_tok))}).")
    one = next((e for e in cands if e.config.precision == bc.precision and e.config.batch_size == 1), None)
    if one and bc.batch_size > 1:
        cut = 100 - 100 * best.j_per_1k_tok / one.j_per_1k_tok
        verb = "cuts" if cut >= 0 else "raises"
        parts.append(f"Batching to {bc.batch_size} {verb} energy per token by "
                     f"{c.fpct(abs(cut)).lstrip('+')} vs batch size 1 ({best.tier}).")
    parts.append(f"Figures: {best.tier} ({best.method}; confidence {best.confidence}).")
    return " ".join(parts)


def _pitfalls(q: Query, cands: list[Estimate], bs: int) -> Table | None:
    at = {e.config.precision: e for e in cands if e.config.batch_size == bs}
    best = min(at.values(), key=lambda e: e.j_per_1k_tok) if at else None
    if best is None:
        return None
    rows = []
    why = {"int8_mixed": "load_in_8bit without llm_int8_threshold=0.0", "fp8": "torchao FP8 in eager mode",
           "nf4": "4-bit dequantization overhead on a model this size", "int8_pure": "8-bit weights on this GPU"}
    for prec, e in sorted(at.items(), key=lambda kv: -kv[1].j_per_1k_tok):
        w = derive.waste_pct(e.j_per_1k_tok, best.j_per_1k_tok)
        if prec == best.config.precision or w < 5 or prec not in why:
            continue
        rows.append([c.plabel(prec), why.get(prec, ""), c.fpct(w), e.tier])
    if not rows:
        return None
    return Table(title=f"Pitfalls to avoid (batch size {bs}, vs the best)", columns=["precision", "trap", "extra energy", "tier"],
                 rows=rows)
