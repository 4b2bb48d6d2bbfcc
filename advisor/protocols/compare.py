"""COMPARE: precisions (or GPUs, or batch sizes) side by side for one model, or one precision
against FP16 across model sizes ("why is 4-bit sometimes worse?", "should I use FP8?").

The precision table carries throughput, J/1k tok, the change vs FP16, tokens per joule, memory,
power and the energy rank, each from an estimate with its tier."""

from __future__ import annotations

from statistics import median

from advisor import derive
from advisor.answer import Answer, Citation, Provenance, Recommendation, Table, mood_for_waste
from advisor.estimate import Estimate
from advisor.protocols import common as c
from advisor.query import Query
from measurements import select

# the Query slots this protocol uses (advisor.protocols.report_unused lists any other stated one)
READS_SLOTS = ("gpu_count", "framework")


def run(q: Query) -> Answer:
    if q.compare_axis == "model_size" or not q.model_params_b:
        return _across_sizes(q)
    if q.compare_axis == "gpu":
        return _across_gpus(q)
    if q.compare_axis == "batch_size":
        return _across_batches(q)
    return _precisions(q)


def _row(e: Estimate, label: str, base: Estimate | None, rank: int, current: bool) -> list:
    thr = None if e.throughput_tok_s is None else round(e.throughput_tok_s, 2)
    if thr is not None and e.throughput_std:
        thr = f"{e.throughput_tok_s:.2f} ± {e.throughput_std:.2f}"
    energy = round(e.j_per_1k_tok, 1) if e.energy_spread is None else f"{e.j_per_1k_tok:,.0f} ± {e.energy_spread:,.0f}"
    delta = "-" if base is None or base.config == e.config else c.fpct(c.delta_pct(e.j_per_1k_tok, base.j_per_1k_tok))
    return [label + (" (current)" if current else ""), thr, energy, delta, round(e.tokens_per_j, 3),
            None if e.mem_gb is None else round(e.mem_gb, 2), None if e.power_w is None else round(e.power_w, 1),
            rank, e.tier]


_COLUMNS = ["throughput tok/s", "J/1k tok", "Δ energy vs FP16", "tok/J", "memory GB", "power W", "rank (energy)", "tier"]


def _ranked(ests: list[tuple[str, Estimate]]) -> list[tuple[str, Estimate]]:
    """The configurations that fit, lowest energy first (one that does not fit is never ranked)."""
    return sorted([t for t in ests if c.fits(t[1])], key=lambda t: t[1].j_per_1k_tok)


def _finish(ans: Answer, q: Query, ests: list[tuple[str, Estimate]], current: Estimate | None, title: str,
            first_col: str, base: Estimate | None) -> Answer:
    unfit = [(lbl, e) for lbl, e in ests if not c.fits(e)]
    ranked = _ranked(ests) or sorted(ests, key=lambda t: t[1].j_per_1k_tok)
    rank = {id(e): i + 1 for i, (_, e) in enumerate(ranked) if c.fits(e)}
    rows = [_row(e, lbl, base, rank.get(id(e), "does not fit"), current is not None and e.config == current.config)  # type: ignore[arg-type]
            for lbl, e in ests]
    notes = [f"Δ vs {c.plabel(base.config.precision)} at the same batch size" if base else ""]
    notes += [f"{lbl}: {c.fit_advice(e)}; not ranked" for lbl, e in unfit]
    ans.tables.append(Table(title=title, columns=[first_col, *_COLUMNS], rows=rows, notes=notes))
    for lbl, e in unfit:
        ans.warnings.append(f"{lbl} {c.fit_advice(e)}: left out of the ranking.")
    g = c.grid(q)
    w = c.workload(q, current or ranked[0][1])
    items = []
    for lbl, e in ests:
        line = c.cost("", e, w, g)
        items.append((lbl, e.j_per_1k_tok, current is not None and e.config == current.config,
                      f"{c.fusd(line.usd)}/{'mo' if w.period == 'month' else 'job'}"
                      + ("" if c.fits(e) else " (does not fit)")))
    ans.charts.append(c.bar_chart(title, items))
    best = ranked[0][1]
    if not c.fits(best):  # nothing fits: no recommendation, no cost of a recommendation
        c.add_provenance(ans, [e for _, e in ests])
        return ans
    pool = [e for _, e in ranked if e.config.precision != "fp8"] or [best]
    rec = pool[0]
    ref = current or base or ranked[-1][1]
    if current is not None:
        waste = max(derive.waste_pct(ref.j_per_1k_tok, rec.j_per_1k_tok), 0.0)
        ans.waste_pct = waste
        ans.mood = c.mood_of(waste, ref, rec)
    else:
        # nothing of the user's to judge: the mood is the recommendation's
        ans.waste_pct = 0.0
        ans.mood = c.mood_of(0.0, rec)
    label = {id(e): lbl for lbl, e in ests}
    best_line = c.cost(f"recommended: {label[id(rec)]}", rec, w, g)
    ref_line = c.cost(f"{'current' if current is not None else 'reference'}: {label[id(ref)]}", ref, w, g)
    ans.costs = [ref_line, best_line] if ref is not rec else [best_line]
    ans.conversions += w.conversions
    if w.defaulted:
        ans.defaults_applied.append(f"workload: {c.fnum(c.DEFAULT_MONTHLY_REQUESTS)} requests/month (basis for the monthly figures)")
    all_e = [e for _, e in ests]
    c.add_provenance(ans, all_e)
    c.cite_estimates(ans, all_e)
    ans.citations += g.citations
    c.add_bench_hints(ans, [e for e in all_e if e.tier != "measured"])
    ans.caveats += c.data_caveats(all_e)
    ans.extra["ranking"] = [lbl for lbl, e in ranked if c.fits(e)]
    ans.extra["does_not_fit"] = [lbl for lbl, _ in unfit]
    ans.extra["recommended"] = rec.config.model_dump()
    return ans


def _precisions(q: Query) -> Answer:
    mlabel, glabel = c.model_label(q), c.gpu_label(q.gpu)
    precs = q.compare_precisions if len(q.compare_precisions) > 1 else c.ranked_precisions(q)
    if q.precision and q.precision not in precs:
        precs.append(q.precision)
    ans = c.base_answer(q, "compare", f"Comparison: {mlabel} on {glabel}, batch size {q.batch_size}")
    ans.alerts = c.detect_traps(q)
    ests = [(c.plabel(p), e) for p in precs if (e := c.est(q, precision=p)) is not None]
    if not ests:
        return _nothing(ans, q)
    base = next((e for _, e in ests if e.config.precision == "fp16"), None)
    current = next((e for _, e in ests if e.config.precision == q.precision), None) if "precision" not in q.defaulted else None
    _finish(ans, q, ests, current, f"Precisions for {mlabel} on {glabel} (BS={q.batch_size})", "precision", base)
    ranked = _ranked(ests)
    if not ranked:
        return _nothing_fits(ans, ests)
    rec = next((e for _, e in ranked if e.config.precision != "fp8"), ranked[0][1])
    ans.headline = (f"Lowest energy: {c.plabel(rec.config.precision)} at {c.fnum(rec.j_per_1k_tok)} J/1k tok; "
                    f"ranking {' > '.join(c.plabel(e.config.precision).split(' (')[0] for _, e in ranked)}.")
    ans.recommendations.append(Recommendation(
        title=f"Use {c.plabel(rec.config.precision)} for {mlabel} on {glabel}",
        detail=_reasons(ranked, base),
        code=c.config_code(rec.config.precision, c.hub_id(q), rec.config.batch_size)))
    for lbl, e in ranked:
        if base and e.config.precision != "fp16" and c.delta_pct(e.j_per_1k_tok, base.j_per_1k_tok) > 30:
            ans.caveats.append(f"{lbl}: {c.fpct(c.delta_pct(e.j_per_1k_tok, base.j_per_1k_tok))} energy vs FP16 "
                               f"on this configuration ({e.tier}).")
    ans.caveats.append("Accuracy (perplexity, benchmarks) of INT8/NF4/FP8 is not part of these measurements: "
                       "validate quality on your task before switching.")
    return ans


def _reasons(ranked: list[tuple[str, Estimate]], base: Estimate | None) -> str:
    best = next(e for _, e in ranked if e.config.precision != "fp8")
    out = [f"{c.plabel(best.config.precision)}: {c.fnum(best.j_per_1k_tok)} J/1k tok, "
           f"{c.fnum(best.throughput_tok_s, 1)} tok/s ({best.tier})."]
    for _, e in ranked:
        if e is best:
            continue
        out.append(f"{c.fpct(derive.waste_pct(e.j_per_1k_tok, best.j_per_1k_tok))} energy for "
                   f"{c.plabel(e.config.precision).split(' (')[0]}.")
    if base is not None and best.power_w and base.power_w and best is not base:
        out.append(f"Power is not energy: {c.plabel(best.config.precision).split(' (')[0]} draws "
                   f"{c.fnum(best.power_w)} W vs FP16 {c.fnum(base.power_w)} W.")
    return " ".join(out)


def _across_gpus(q: Query) -> Answer:
    mlabel = c.model_label(q)
    gpus = q.compare_gpus or ([q.gpu] if q.gpu else [])
    ans = c.base_answer(q, "compare", f"GPUs for {mlabel} ({c.plabel(q.precision or 'fp16')}, BS={q.batch_size})")
    ans.alerts = c.detect_traps(q)
    ests = [(c.replica_label(e, c.gpu_short(g)), e) for g in gpus if (e := c.est_fitting(q, gpu=g)) is not None]
    for lbl, e in ests:
        if e.config.gpu_count > 1:
            ans.caveats.append(f"{lbl}: one GPU cannot hold {mlabel} in {c.plabel(e.config.precision)}, so this row is a "
                               f"tensor-parallel replica of {e.config.gpu_count} GPUs (energy and power summed over them).")
    if not ests:
        return _nothing(ans, q)
    _finish(ans, q, ests, None, f"{mlabel}, {c.plabel(q.precision or 'fp16')}, BS={q.batch_size} by GPU", "GPU", None)
    ranked = _ranked(ests)
    if not ranked:
        return _nothing_fits(ans, ests)
    unfit = [lbl for lbl, e in ests if not c.fits(e)]
    ans.headline = (f"Lowest energy per token: {ranked[0][0]} ({c.fnum(ranked[0][1].j_per_1k_tok)} J/1k tok, "
                    f"{ranked[0][1].tier})" + (f"; {', '.join(unfit)} cannot hold the model and "
                                                f"{'is' if len(unfit) == 1 else 'are'} not ranked." if unfit else "."))
    return ans


def _across_batches(q: Query) -> Answer:
    mlabel, glabel = c.model_label(q), c.gpu_label(q.gpu)
    ans = c.base_answer(q, "compare", f"Batch sizes for {mlabel} on {glabel} ({c.plabel(q.precision or 'fp16')})")
    ans.alerts = c.detect_traps(q)
    sizes = q.compare_batch_sizes or c.batch_candidates("offline_batch")
    ests = [(f"BS={b}", e) for b in sizes if (e := c.est(q, batch_size=b)) is not None and c.fits(e)]
    if not ests:
        return _nothing(ans, q)
    current = (next((e for _, e in ests if e.config.batch_size == q.batch_size), None)
               if "batch_size" not in q.defaulted else None)
    _finish(ans, q, ests, current, f"{mlabel} on {glabel}, {c.plabel(q.precision or 'fp16')} by batch size", "batch size", None)
    one = next((e for _, e in ests if e.config.batch_size == 1), None)
    best = min((e for _, e in ests), key=lambda e: e.j_per_1k_tok)
    ans.headline = (f"Batch size {best.config.batch_size}: {c.fnum(best.j_per_1k_tok)} J/1k tok"
                    + (f", {c.fpct(c.delta_pct(best.j_per_1k_tok, one.j_per_1k_tok))} vs batch size 1." if one else "."))
    return ans


def _across_sizes(q: Query) -> Answer:
    """One precision against 16-bit over every measured model size (on the GPU named, else all):
    the pairs and the crossover of the evidence layer (measurements.select), as ask and audit use."""
    focus = next((p for p in q.compare_precisions if p != "fp16"), None) or (
        q.precision if q.precision and q.precision != "fp16" else "nf4")
    st = c.pair_stats(focus, select.SIXTEEN_BIT, q.gpu)
    gpu = q.gpu if st is not None and not st.fallback and q.gpu else None
    where = c.gpu_label(gpu) if gpu else "every measured GPU"
    ans = c.base_answer(q, "compare", f"{c.plabel(focus)} vs 16-bit across model sizes on {where}")
    if q.gpu and gpu is None:
        ans.warnings.append(f"No {c.plabel(focus)} vs 16-bit pairs measured on {c.gpu_label(q.gpu)}; showing every GPU.")
    qq = q.model_copy(update={"precision": focus, "defaulted": [x for x in q.defaulted if x != "precision"]})
    ans.alerts = [a for a in c.detect_traps(qq) if a.code != "BS1_PRODUCTION"]
    if st is None:
        return _nothing(ans, q)
    rows, items, wastes = [], [], []
    for pr in sorted(st.pairs, key=lambda p: (p.gpu, p.params_b, p.batch_size)):
        pa, pb = pr.trap, pr.alt
        t_ratio = pb.throughput_tok_s / pa.throughput_tok_s if pa.throughput_tok_s and pb.throughput_tok_s else None
        p_ratio = (pa.energy_j_per_1k_tok * pa.throughput_tok_s) / (pb.energy_j_per_1k_tok * pb.throughput_tok_s) \
            if t_ratio else None  # type: ignore[operator]
        delta = pr.waste_pct
        wastes.append(max(delta, 0.0))
        rows.append([c.gpu_short(pr.gpu), pr.model_id, pa.params_b, pa.batch_size,
                     f"{round(pb.energy_j_per_1k_tok)} ({pb.precision})", round(pa.energy_j_per_1k_tok),  # type: ignore[arg-type]
                     c.fpct(delta), None if t_ratio is None else round(t_ratio, 2),
                     None if p_ratio is None else round(p_ratio, 2)])
        items.append((f"{focus} {pr.model_id.split('/')[-1]} BS{pa.batch_size} ({c.gpu_short(pr.gpu)})", 100 + delta,
                       False, c.fpct(delta) + " vs 16-bit"))
    ans.tables.append(Table(
        title=f"{c.plabel(focus)} vs 16-bit, measured pairs (same GPU, model, batch size, lengths)",
        columns=["GPU", "model", "params B", "batch size", "16-bit J/1k tok", f"{focus} J/1k tok", "Δ energy",
                 "time ratio (16-bit tok/s ÷ this)", "power ratio (this ÷ 16-bit)"],
        rows=rows,
        notes=["energy ratio = time ratio x power ratio: a format that draws less power still costs more energy "
               "when it slows generation down more than it saves in watts"]))
    items.insert(0, ("16-bit (baseline, every model)", 100.0, False, "= 100"))
    ans.charts.append(c.bar_chart(f"{c.plabel(focus)} energy as % of 16-bit on the same model", items,
                                  metric="energy relative to 16-bit", unit="% of 16-bit"))
    cross = select.crossover(c.evidence_rows(), focus, select.SIXTEEN_BIT, gpu=q.gpu)
    waste_mid = median(wastes)
    ans.waste_pct = waste_mid
    ans.mood = mood_for_waste(waste_mid)
    if cross is not None and cross.params_b is not None:
        ans.headline = (f"{c.plabel(focus)} costs {c.fpct(st.low)} to {c.fpct(st.high)} energy vs 16-bit over "
                        f"{len(st.pairs)} measured pairs; it starts saving energy at {cross.describe()}"
                        + (f" ({cross.fallback})" if cross.fallback else "") + ".")
        ans.provenance.append(Provenance(subject=f"{focus}/16-bit crossover", tier="interpolated", method=cross.method,
                                         confidence="medium" if len(cross.pairs) >= 4 else "low", row_ids=cross.row_ids))
    else:
        ans.headline = (f"{c.plabel(focus)} costs {c.fpct(st.low)} to {c.fpct(st.high)} energy vs 16-bit over "
                        f"{len(st.pairs)} measured pairs, at every model size measured.")
    ans.recommendations += _mechanism(focus, cross)
    for i in st.row_ids:
        if all(cc.ref != i for cc in ans.citations):
            ans.citations.append(Citation(kind="row", ref=i))
    ans.extra["focus"] = focus
    ans.extra["pairs"] = len(st.pairs)
    if cross is not None and cross.params_b is not None:
        ans.extra["crossover_params_b"] = cross.params_b
    return ans


def _mechanism(focus: str, cross) -> list[Recommendation]:
    if focus == "nf4":
        when = f" below about {cross.params_b:.1f}B parameters" if cross and cross.params_b else ""
        return [Recommendation(
            title=f"Why: the dequantization tax{when}",
            detail="NF4 stores 4-bit weights and expands them to FP16 at every linear layer on every forward pass. "
                   "A small model already fits in memory in FP16, so there is little bandwidth to save and the extra "
                   "compute dominates: generation slows more than power drops. Large models are limited by streaming "
                   "weights from memory, where 4-bit weights pay off.",
            code=c.config_code("fp16"),
            impact="use FP16 for small models; keep NF4 for models above the crossover or when memory is tight")]
    if focus == "fp8":
        return [Recommendation(
            title="Why: immature software, not the hardware",
            detail="The measured FP8 path (torchao weight-only FP8, eager mode, nightly build without compiled "
                   "extensions) dispatches from Python; the GPU idles at high power between kernels while throughput "
                   "collapses, and the penalty grows with model size. Compiled paths were not measured.",
            code=c.config_code("fp8"),
            impact="use FP16 (or NF4 above the crossover); measure a compiled FP8 stack before adopting it")]
    if focus == "int8_mixed":
        return [Recommendation(title="Why: mixed-precision decomposition",
                               detail="LLM.int8() splits outlier features into FP16 and the rest into INT8 at every "
                                      "linear layer; the conversions cost more time than 8-bit weights save.",
                               code=c.config_code("int8_pure"))]
    return []


def _nothing_fits(ans: Answer, ests: list[tuple[str, Estimate]]) -> Answer:
    ans.mood = "gray"
    ans.headline = "None of these configurations fits in GPU memory: " + "; ".join(
        f"{lbl} {c.fit_advice(e)}" for lbl, e in ests) + "."
    return ans


def _nothing(ans: Answer, q: Query) -> Answer:
    ans.mood = "gray"
    ans.headline = "No measurement or derivation covers this comparison yet."
    ans.recommendations.append(Recommendation(
        title="Measure it", code=f"ecolobster bench --model {q.model or 'qwen2.5-7b'} --precision fp16 --batch-size 1 --synthetic",
        language="bash"))
    return ans
