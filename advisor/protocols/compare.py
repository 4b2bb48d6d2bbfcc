"""COMPARE: precisions (or GPUs, or batch sizes) side by side for one model, or one precision
against FP16 across model sizes ("why is 4-bit sometimes worse?", "should I use FP8?").

The precision table carries throughput, J/1k tok, the change vs FP16, tokens per joule, memory,
power and the energy rank, each from an estimate with its tier."""

from __future__ import annotations

import re
from statistics import median

from advisor import derive
from advisor.answer import Answer, Citation, Provenance, Recommendation, Table, mood_for_waste
from advisor.estimate import Estimate, weaker_tier
from advisor.messages import For
from advisor.protocols import common as c
from advisor.query import Query
from measurements import catalog, select

# the Query slots this protocol uses (advisor.protocols.report_unused lists any other stated one)
READS_SLOTS = ("gpu_count", "framework", "itl_target_ms", "itl_percentile")


def run(q: Query) -> Answer:
    if q.compare_axis == "model_size" or not q.model_params_b:
        return _across_sizes(q)
    if q.compare_axis == "gpu":
        return _across_gpus(q)
    if q.compare_axis == "batch_size":
        return _across_batches(q)
    if q.compare_axis == "framework":
        return _across_frameworks(q)
    return _precisions(q)


def _row(e: Estimate, label: str, base: Estimate | None, rank: int, current: bool, lang: str = "en") -> list:
    thr = None if e.throughput_tok_s is None else round(e.throughput_tok_s, 2)
    if thr is not None and e.throughput_std:
        thr = f"{e.throughput_tok_s:.2f} ± {e.throughput_std:.2f}"
    energy = round(e.j_per_1k_tok, 1) if e.energy_spread is None else f"{e.j_per_1k_tok:,.0f} ± {e.energy_spread:,.0f}"
    delta = "-" if base is None or base.config == e.config else c.fpct(c.delta_pct(e.j_per_1k_tok, base.j_per_1k_tok))
    m = For(lang)
    return [label + (m("compare.mark_current") if current else ""), thr, energy, delta, round(e.tokens_per_j, 3),
            None if e.mem_gb is None else round(e.mem_gb, 2), None if e.power_w is None else round(e.power_w, 1),
            rank, m.word("tier", e.tier)]


# the comparison table's columns after the first (catalog keys)
_COLUMNS = ("compare.col_throughput", "col.j_1k", "compare.col_delta_fp16", "compare.col_tok_j", "col.memory_gb",
            "col.power_w", "compare.col_rank", "col.tier")


def _ranked(ests: list[tuple[str, Estimate]]) -> list[tuple[str, Estimate]]:
    """The configurations that fit, lowest energy first (one that does not fit is never ranked)."""
    return sorted([t for t in ests if c.fits(t[1])], key=lambda t: t[1].j_per_1k_tok)


def _finish(ans: Answer, q: Query, ests: list[tuple[str, Estimate]], current: Estimate | None, title: str,
            first_col: str, base: Estimate | None) -> Answer:
    m = For(q.lang)
    lg = m.lang
    unfit = [(lbl, e) for lbl, e in ests if not c.fits(e)]
    ranked = _ranked(ests) or sorted(ests, key=lambda t: t[1].j_per_1k_tok)
    rank = {id(e): i + 1 for i, (_, e) in enumerate(ranked) if c.fits(e)}
    rows = [_row(e, lbl, base, rank.get(id(e), m("compare.does_not_fit")),  # type: ignore[arg-type]
                 current is not None and e.config == current.config, lg)
            for lbl, e in ests]
    notes = [m("compare.note_delta", prec=c.plabel(base.config.precision, lg)) if base else ""]
    notes += [m("compare.note_unfit", label=lbl, advice=c.fit_advice(e, lg)) for lbl, e in unfit]
    ans.tables.append(Table(title=title, columns=[first_col, *(m(k) for k in _COLUMNS)], rows=rows, notes=notes))
    for lbl, e in unfit:
        ans.warnings.append(m("compare.warn_unfit", label=lbl, advice=c.fit_advice(e, lg)))
    g = c.grid(q)
    w = c.workload(q, current or ranked[0][1])
    items = []
    for lbl, e in ests:
        line = c.cost("", e, w, g)
        items.append((lbl, e.j_per_1k_tok, current is not None and e.config == current.config,
                      f"{c.fusd(line.usd)}/{m('word.mo' if w.period == 'month' else 'word.job')}"
                      + ("" if c.fits(e) else m("compare.bar_unfit"))))
    ans.charts.append(c.bar_chart(title, items, lang=lg))
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
    best_line = c.cost(f"{m('word.recommended')}{m('compare.colon')}{label[id(rec)]}", rec, w, g)
    who = m("word.current") if current is not None else m("compare.reference")
    ref_line = c.cost(f"{who}{m('compare.colon')}{label[id(ref)]}", ref, w, g)
    ans.costs = [ref_line, best_line] if ref is not rec else [best_line]
    ans.conversions += w.conversions
    if w.defaulted:
        ans.defaults_applied.append(m("optimize.default_workload", requests=c.fnum(c.DEFAULT_MONTHLY_REQUESTS)))
    all_e = [e for _, e in ests]
    c.add_provenance(ans, all_e)
    c.cite_estimates(ans, all_e)
    ans.citations += g.citations
    c.add_bench_hints(ans, [e for e in all_e if e.tier != "measured"])
    ans.caveats += c.data_caveats(all_e, ans.lang)
    ans.extra["ranking"] = [lbl for lbl, e in ranked if c.fits(e)]
    ans.extra["does_not_fit"] = [lbl for lbl, _ in unfit]
    ans.extra["recommended"] = rec.config.model_dump()
    return ans


def _precisions(q: Query) -> Answer:
    precs = q.compare_precisions if len(q.compare_precisions) > 1 else c.ranked_precisions(q)
    if q.precision and q.precision not in precs:
        precs.append(q.precision)
    m, lg, mlabel, glabel, ans = c.opening(q, "compare", "compare.title", bs=q.batch_size)
    ests = [(c.plabel(p, lg), e) for p in precs if (e := c.est(q, precision=p)) is not None]
    if not ests:
        return _nothing(ans, q)
    base = next((e for _, e in ests if e.config.precision == "fp16"), None)
    current = next((e for _, e in ests if e.config.precision == q.precision), None) if "precision" not in q.defaulted else None
    _finish(ans, q, ests, current, m("compare.prec_table", model=mlabel, gpu=glabel, bs=q.batch_size),
            m("col.precision"), base)
    ranked = _ranked(ests)
    if not ranked:
        return _nothing_fits(ans, ests)
    rec = next((e for _, e in ranked if e.config.precision != "fp8"), ranked[0][1])
    ans.headline = m("compare.prec_headline", prec=c.plabel(rec.config.precision, lg), j=c.fnum(rec.j_per_1k_tok),
                     ranking=" > ".join(_short(e.config.precision, lg) for _, e in ranked))
    ans.recommendations.append(Recommendation(
        title=m("compare.prec_rec", prec=c.plabel(rec.config.precision, lg), model=mlabel, gpu=glabel),
        detail=_reasons(ranked, base, lg),
        code=c.config_code(rec.config.precision, c.hub_id(q), rec.config.batch_size)))
    for lbl, e in ranked:
        if base and e.config.precision != "fp16" and c.delta_pct(e.j_per_1k_tok, base.j_per_1k_tok) > 30:
            ans.caveats.append(m("compare.prec_caveat", label=lbl,
                                 pct=c.fpct(c.delta_pct(e.j_per_1k_tok, base.j_per_1k_tok)),
                                 tier=m.word("tier", weaker_tier(e.tier, base.tier))))
    qual = quality_table(q, [e.config.precision for _, e in ests])
    if qual is not None:
        ans.tables.append(qual[0])
        ans.citations += [Citation(kind="row", ref=i) for i in qual[1] if all(x.ref != i for x in ans.citations)]
        ans.extra["perplexity"] = qual[2]
    else:
        ans.caveats.append(For(q.lang)("serving.quality_missing"))
    return ans


def quality_table(q: Query, precs: list[str]) -> tuple[Table, list[str], dict] | None:
    """The quality cost of each format where a perplexity row of this model exists (any GPU: the
    perplexity of a format does not depend on the GPU), against FP16 on the same dataset."""
    model = c.config(q).model
    found: dict[str, list] = {}
    for r in c.evidence_rows():
        if r.perplexity is None or r.double_quant or r.precision not in precs:
            continue
        a = catalog.model_by_hub_id(r.model_id)
        if (a.key if a is not None else r.model_id.lower()) == model:
            found.setdefault(r.precision, []).append(r)
    if not found:
        return None
    base_rows = found.get("fp16") or found.get("bf16") or []
    dataset = base_rows[0].perplexity_dataset if base_rows else None
    m = For(q.lang)
    rows, ids, out = [], [], {}
    for p in precs:
        cand = [r for r in found.get(p, []) if dataset is None or r.perplexity_dataset == dataset] or found.get(p, [])
        if not cand:
            continue
        r = cand[0]
        base = next((b for b in base_rows if b.perplexity_dataset == r.perplexity_dataset), None)
        delta = c.fpct(c.delta_pct(r.perplexity, base.perplexity)) if base is not None and base is not r else "-"
        rows.append([c.plabel(p, m.lang), round(r.perplexity, 3), r.perplexity_dataset, delta, r.id])
        ids.append(r.id)
        out[p] = {"perplexity": r.perplexity, "dataset": r.perplexity_dataset, "row_id": r.id}
    return (Table(title=m("serving.quality_title"),
                  columns=[m("col.precision"), m("serving.col_perplexity"), m("serving.col_dataset"),
                           m("serving.col_delta_16"), m("serving.col_row")], rows=rows,
                  notes=[m("serving.quality_note")]), ids, out)


def _across_frameworks(q: Query) -> Answer:
    """Frameworks side by side for one model and GPU: each at the batch size (concurrency) stated,
    else at the largest batch size both cover, and each at its own best configuration."""
    from advisor.protocols import serving as sv

    fws = q.compare_frameworks
    m, lg, mlabel, glabel, ans = c.opening(q, "compare", "serving.fw_title", traps=False,
                                           fws=" vs ".join(sv.fw_label(f) for f in fws))
    ests: list[tuple[str, Estimate]] = []
    for fw in fws:
        serving_fw = sv.is_serving(fw)
        prec = q.precision if "precision" not in q.defaulted else ("bf16" if serving_fw else "fp16")
        if serving_fw:
            sizes = sv.concurrencies_for(q, fw, prec, q.gpu_count or 1)
        else:
            sizes = [q.batch_size] if "batch_size" not in q.defaulted else c.batch_candidates(q.use_case)
        cands = [e for b in sizes if (e := c.est(q, framework=fw, precision=prec, batch_size=b)) is not None
                 and c.fits(e) and not c.latency_miss(e, q)]
        if not cands:
            ans.caveats.append(m("serving.fw_none", fw=sv.fw_label(fw), model=mlabel, gpu=glabel))
            continue
        best = min(cands, key=lambda e: e.j_per_1k_tok)
        ests.append((sv.label(best, lg), best))
        for e in cands:
            if e.config.batch_size in (q.batch_size if "batch_size" not in q.defaulted else 32,) and e is not best:
                ests.append((sv.label(e, lg), e))
    if not ests:
        return _nothing(ans, q)
    ranked = sorted(ests, key=lambda t: t[1].j_per_1k_tok)
    base = next((e for _, e in ranked if e.config.framework == fws[0]), None)
    rows = []
    for i, (lbl, e) in enumerate(ranked):
        rows.append([lbl, sv.fw_label(e.config.framework), e.config.batch_size, e.config.gpu_count,
                     round(e.j_per_1k_tok, 1), None if e.throughput_tok_s is None else round(e.throughput_tok_s, 1),
                     None if e.itl_ms is None else round(e.itl_ms, 1),
                     "-" if base is None or e is base else c.fpct(c.delta_pct(e.j_per_1k_tok, base.j_per_1k_tok)),
                     i + 1, m.word("tier", e.tier)])
    ans.tables.append(Table(
        title=m("serving.fw_table_title", model=mlabel, gpu=glabel),
        columns=[m("serving.col_configuration"), m("col.framework"), m("col.batch_concurrency"), m("col.gpus"),
                 m("col.j_1k"), m("col.tok_s"), m("col.itl_ms"), m("serving.delta_vs", fw=sv.fw_label(fws[0])),
                 m("col.rank"), m("col.tier")], rows=rows,
        notes=[m("serving.fw_table_note")]))
    best = ranked[0][1]
    g = c.grid(q)
    w = c.workload(q, best)
    items = [(lbl, e.j_per_1k_tok, False,
              f"{c.fusd(c.cost('', e, w, g).usd)}/{m('word.mo' if w.period == 'month' else 'word.job')}")
             for lbl, e in ranked]
    ans.charts.append(c.bar_chart(m("serving.fw_chart", model=mlabel, gpu=glabel), items, lang=lg))
    worst = ranked[-1][1]
    ans.waste_pct = 0.0
    ans.mood = c.mood_of(0.0, best)
    vs = (m("serving.fw_vs", pct=c.fpct(c.delta_pct(best.j_per_1k_tok, worst.j_per_1k_tok)), label=ranked[-1][0])
          if worst is not best else "")
    ans.headline = m("serving.fw_headline", label=ranked[0][0], j=c.fnum(best.j_per_1k_tok), vs=vs)
    best_line = c.cost(m("common.cost_label_fw", who=m("word.recommended"), label=ranked[0][0]), best, w, g)
    ref_line = c.cost(m("common.cost_label_fw", who=m("word.reference"), label=ranked[-1][0]), worst, w, g)
    ans.costs = [ref_line, best_line] if worst is not best else [best_line]
    ans.conversions += w.conversions
    code = sv.serve_command(best, c.hub_id(q)) if sv.is_serving(best.config.framework) else \
        c.config_code(best.config.precision, c.hub_id(q), best.config.batch_size)
    ans.recommendations.append(Recommendation(title=m("serving.fw_use", label=ranked[0][0]),
                                              detail=f"{m.word('tier', best.tier)} ({c.method_text(best, lg)})",
                                              code=code, language="bash" if sv.is_serving(best.config.framework) else "python"))
    all_e = [e for _, e in ranked]
    c.add_provenance(ans, all_e)
    c.cite_estimates(ans, all_e)
    ans.citations += g.citations
    ans.caveats += c.data_caveats(all_e, lg)
    ans.extra["ranking"] = [lbl for lbl, _ in ranked]
    ans.extra["frameworks"] = {e.config.framework: {"batch_size": e.config.batch_size, "j_per_1k_tok": e.j_per_1k_tok,
                                                    "tier": e.tier, "row_ids": list(e.row_ids)}
                               for _, e in reversed(ranked)}
    ans.extra["recommended"] = best.config.model_dump()
    return ans


def _short(prec: str, lang: str) -> str:
    """A precision's short name: its label without the parenthesis."""
    return re.split(r" \(|（", c.plabel(prec, lang))[0]


def _reasons(ranked: list[tuple[str, Estimate]], base: Estimate | None, lang: str = "en") -> str:
    m = For(lang)
    best = next((e for _, e in ranked if e.config.precision != "fp8"), ranked[0][1])
    out = [m("compare.reason_best", prec=c.plabel(best.config.precision, lang), j=c.fnum(best.j_per_1k_tok),
             tok_s=c.fnum(best.throughput_tok_s, 1), tier=m.word("tier", best.tier))]
    for _, e in ranked:
        if e is best:
            continue
        out.append(m("compare.reason_other", pct=c.fpct(derive.waste_pct(e.j_per_1k_tok, best.j_per_1k_tok)),
                     prec=_short(e.config.precision, lang)))
    if base is not None and best.power_w and base.power_w and best is not base:
        out.append(m("compare.reason_power", prec=_short(best.config.precision, lang), w=c.fnum(best.power_w),
                     fp16_w=c.fnum(base.power_w)))
    return m("sep.sentence").join(out)


def _across_gpus(q: Query) -> Answer:
    gpus = q.compare_gpus or ([q.gpu] if q.gpu else [])
    prec = c.plabel(q.precision or "fp16", q.lang)
    m, lg, mlabel, _, ans = c.opening(q, "compare", "compare.gpus_title", prec=prec, bs=q.batch_size)
    ests = [(c.replica_label(e, c.gpu_short(g)), e) for g in gpus if (e := c.est_fitting(q, gpu=g)) is not None]
    for lbl, e in ests:
        if e.config.gpu_count > 1:
            ans.caveats.append(m("compare.gpus_tp", label=lbl, model=mlabel, prec=c.plabel(e.config.precision, lg),
                                 n=e.config.gpu_count))
    if not ests:
        return _nothing(ans, q)
    _finish(ans, q, ests, None, m("compare.gpus_table", model=mlabel, prec=prec, bs=q.batch_size), "GPU", None)
    ranked = _ranked(ests)
    if not ranked:
        return _nothing_fits(ans, ests)
    unfit = [lbl for lbl, e in ests if not c.fits(e)]
    ans.headline = (m("compare.gpus_headline", gpu=ranked[0][0], j=c.fnum(ranked[0][1].j_per_1k_tok),
                      tier=m.word("tier", ranked[0][1].tier))
                    + (m("compare.gpus_unfit_one" if len(unfit) == 1 else "compare.gpus_unfit_many", gpus=m.join(unfit))
                       if unfit else m("diagnose.headline_end")))
    return ans


def _across_batches(q: Query) -> Answer:
    prec = c.plabel(q.precision or "fp16", q.lang)
    m, lg, mlabel, glabel, ans = c.opening(q, "compare", "compare.batch_title", prec=prec)
    sizes = q.compare_batch_sizes or c.batch_candidates("offline_batch")
    ests = [(f"BS={b}", e) for b in sizes if (e := c.est(q, batch_size=b)) is not None and c.fits(e)]
    if not ests:
        return _nothing(ans, q)
    current = (next((e for _, e in ests if e.config.batch_size == q.batch_size), None)
               if "batch_size" not in q.defaulted else None)
    _finish(ans, q, ests, current, m("compare.batch_table", model=mlabel, gpu=glabel, prec=prec), m("col.batch_size"),
            None)
    one = next((e for _, e in ests if e.config.batch_size == 1), None)
    best = min((e for _, e in ests), key=lambda e: e.j_per_1k_tok)
    ans.headline = (m("compare.batch_headline", bs=best.config.batch_size, j=c.fnum(best.j_per_1k_tok))
                    + (m("compare.batch_vs_one", pct=c.fpct(c.delta_pct(best.j_per_1k_tok, one.j_per_1k_tok))) if one
                       else m("diagnose.headline_end")))
    return ans


def _across_sizes(q: Query) -> Answer:
    """One precision against 16-bit over every measured model size (on the GPU named, else all):
    the pairs and the crossover of the evidence layer (measurements.select), as ask and audit use."""
    focus = next((p for p in q.compare_precisions if p != "fp16"), None) or (
        q.precision if q.precision and q.precision != "fp16" else "nf4")
    m = For(q.lang)
    lg = m.lang
    st = c.pair_stats(focus, select.SIXTEEN_BIT, q.gpu)
    gpu = q.gpu if st is not None and not st.fallback and q.gpu else None
    where = c.gpu_label(gpu, lg) if gpu else m("compare.every_gpu")
    fl = c.plabel(focus, lg)
    ans = c.base_answer(q, "compare", m("compare.sizes_title", prec=fl, where=where))
    if q.gpu and gpu is None:
        ans.warnings.append(m("compare.sizes_warn", prec=fl, gpu=c.gpu_label(q.gpu, lg)))
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
                       False, m("compare.bar_vs16", pct=c.fpct(delta))))
    ans.tables.append(Table(
        title=m("compare.sizes_table", prec=fl),
        columns=["GPU", m("compare.col_model"), m("compare.col_params"), m("col.batch_size"), m("compare.col_16bit"),
                 m("compare.col_focus", focus=focus), m("compare.col_delta"), m("compare.col_time_ratio"),
                 m("compare.col_power_ratio")],
        rows=rows,
        notes=[m("compare.sizes_note")]))
    items.insert(0, (m("compare.bar_baseline"), 100.0, False, "= 100"))
    ans.charts.append(c.bar_chart(m("compare.sizes_chart", prec=fl), items, metric=m("compare.sizes_metric"),
                                  unit=m("compare.sizes_unit"), lang=lg))
    cross = select.crossover(c.evidence_rows(), focus, select.SIXTEEN_BIT, gpu=q.gpu)
    waste_mid = median(wastes)
    ans.waste_pct = waste_mid
    ans.mood = mood_for_waste(waste_mid)
    if cross is not None and cross.params_b is not None:
        ans.headline = m("compare.sizes_headline", prec=fl, low=c.fpct(st.low), high=c.fpct(st.high), n=len(st.pairs),
                         cross=c.crossover_text(cross, lg),
                         where=m("alert.paren", text=c.crossover_fallback(cross, lg)) if cross.fallback else "")
        ans.provenance.append(Provenance(subject=m("compare.crossover_subject", focus=focus), tier="interpolated",
                                         method=c.crossover_method(cross, lg),
                                         confidence="medium" if len(cross.pairs) >= 4 else "low", row_ids=cross.row_ids))
    else:
        ans.headline = m("compare.sizes_headline_none", prec=fl, low=c.fpct(st.low), high=c.fpct(st.high),
                         n=len(st.pairs))
    ans.recommendations += _mechanism(focus, cross, lg)
    for i in st.row_ids:
        if all(cc.ref != i for cc in ans.citations):
            ans.citations.append(Citation(kind="row", ref=i))
    ans.extra["focus"] = focus
    ans.extra["pairs"] = len(st.pairs)
    if cross is not None and cross.params_b is not None:
        ans.extra["crossover_params_b"] = cross.params_b
    return ans


def _mechanism(focus: str, cross, lang: str = "en") -> list[Recommendation]:
    m = For(lang)
    if focus == "nf4":
        when = m("compare.nf4_below", size=f"{cross.params_b:.1f}") if cross and cross.params_b else ""
        return [Recommendation(title=m("compare.nf4_title", when=when), detail=m("compare.nf4_detail"),
                               code=c.config_code("fp16"), impact=m("compare.nf4_impact"))]
    if focus == "fp8":
        return [Recommendation(title=m("compare.fp8_title"), detail=m("compare.fp8_detail"),
                               code=c.config_code("fp8"), impact=m("compare.fp8_impact"))]
    if focus == "int8_mixed":
        return [Recommendation(title=m("compare.int8_title"), detail=m("compare.int8_detail"),
                               code=c.config_code("int8_pure"))]
    return []


def _nothing_fits(ans: Answer, ests: list[tuple[str, Estimate]]) -> Answer:
    m = For(ans.lang)
    ans.mood = "gray"
    ans.headline = m("compare.nothing_fits", items=m.join([f"{lbl} {c.fit_advice(e, m.lang)}" for lbl, e in ests],
                                                          "clause"))
    return ans


def _nothing(ans: Answer, q: Query) -> Answer:
    m = For(q.lang)
    ans.mood = "gray"
    ans.headline = m("compare.nothing")
    ans.recommendations.append(Recommendation(
        title=m("optimize.measure_it"), code=f"ecolobster bench --model {q.model or 'qwen2.5-7b'} --precision fp16 --batch-size 1 --synthetic",
        language="bash"))
    return ans
