"""OPTIMIZE: the greenest configuration (precision x batch size) of a model on a GPU for a use case.

Every candidate is estimated with its provenance, ranked by J per 1,000 generated tokens among
the batch sizes the use case allows and the memory fits; the answer compares the best with the
user's (or the default) configuration over a month, and lists the traps to avoid.
"""

from __future__ import annotations

from advisor import derive
from advisor.answer import Answer, Recommendation, Table
from advisor.estimate import Estimate, weaker_tier
from advisor.messages import For
from advisor.protocols import common as c
from advisor.protocols import serving as sv
from advisor.query import Query
from measurements import catalog

# the Query slots this protocol uses (advisor.protocols.report_unused lists any other stated one)
READS_SLOTS = ("gpu_count", "framework", "itl_target_ms", "e2e_target_s", "own_gpus", "gpu_lifetime_years",
               "gpu_purchase_usd")


def candidates(q: Query, missed: list[str] | None = None) -> list[Estimate]:
    """Estimates of every framework's levers that fit and meet the user's latency target (those that
    miss it are listed in `missed`): HF generate over precision x batch size, a serving engine over
    format x concurrency x GPU count (advisor.protocols.serving)."""
    out = []
    for fw in sv.frameworks_for(q):
        if sv.is_serving(fw):
            out += sv.candidates(q, fw, missed)
        elif fw == (q.framework or "hf-eager"):
            out += _hf_candidates(q, missed)
    return out


def _hf_candidates(q: Query, missed: list[str] | None = None) -> list[Estimate]:
    out = []
    fw, n = c.config(q).framework, q.gpu_count or 1
    for prec in c.ranked_precisions(q):
        for bs in sv.capped_levels(q, fw, prec, n, c.batch_candidates(q.use_case)):
            e = c.est(q, precision=prec, batch_size=bs)
            if e is None or not c.fits(e):
                continue
            why = c.latency_miss(e, q)
            if why:
                if missed is not None:
                    missed.append(For(q.lang)("optimize.missed_item", prec=c.plabel(prec, q.lang), bs=bs, why=why))
                continue
            out.append(e)
    return out


# Product policy: a precision never measured on this GPU is recommended over a measured one only
# when it is estimated to save more than this fraction, about the median error of cross-GPU and
# cross-precision transfer in benchmarks/estimator_accuracy.py (README, Benchmarks).


def _measured_here(e: Estimate) -> bool:
    if sv.is_serving(e.config.framework):
        return sv.measured_here(e)
    return bool(c.ds().by_gp.get((e.config.gpu, e.config.fmt_key)))


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
    m, lg, mlabel, glabel, ans = c.opening(q, "optimize", "optimize.title")
    current = sv.current(q)
    sv.note_gpu_count(ans.defaults_applied, q, current)
    sv.note_load_concurrency(ans.defaults_applied, q, current)
    missed: list[str] = []
    cands = candidates(q, missed)
    if missed:
        ans.caveats.append(m("optimize.missed", n=len(missed), items=m.join(missed[:6], "clause")
                             + (m("sep.more") if len(missed) > 6 else "")))
    if current is not None and not cands and missed:
        ans.mood = "gray"
        ans.headline = m("optimize.none_meets", model=mlabel, gpu=glabel, n=len(missed))
        return ans
    if current is not None and not cands:
        g = c.gpu_of(q.gpu)
        needs = [(p, c.est(q, precision=p, batch_size=1)) for p in ("fp16", "int8_pure", "nf4")]
        rows = [[c.plabel(p, lg), round(e.mem_gb, 1) if e and e.mem_gb else None] for p, e in needs]
        ans.mood = "gray"
        ans.headline = (m("optimize.no_fit", model=mlabel, vram=g.vram_gb, gpu=glabel) if g
                        else m("optimize.no_fit_short", model=mlabel, gpu=glabel))
        ans.tables.append(Table(title=m("optimize.mem_title", model=mlabel),
                                columns=[m("col.precision"), m("col.gb_needed")], rows=rows))
        ans.recommendations.append(Recommendation(title=m("optimize.bigger_title"), detail=m("optimize.bigger_detail")))
        return ans
    if current is None or not cands:
        ans.mood = "gray"
        ans.headline = m("optimize.no_data", model=mlabel, gpu=glabel)
        ans.recommendations.append(Recommendation(
            title=m("optimize.measure_it"),
            code=f"ecolobster bench --model {q.model} --precision fp16 --batch-size 8 --synthetic", language="bash"))
        return ans
    best = best_of(cands)
    cap = sv.load_cap(q, best.config.framework, best.config.precision, best.config.gpu_count)
    if cap is not None and cap[0] == best.config.batch_size:  # the load, not the memory, set its batch
        ans.caveats.append(m("optimize.load_cap", need=c.fnum(c.load_tok_s(q, best) or 0, 1), n=cap[0], top=cap[1]))
    c.judge(ans, q, current, best)
    uc = m.word("use_case", q.use_case or "")
    bc = best.config
    serving_best = sv.is_serving(bc.framework)
    multi_fw = len({e.config.framework for e in cands}) > 1 or serving_best
    if best.config == current.config:  # nothing to change: say so, not "use X instead of X (+0.0%)"
        ans.headline = m("optimize.headline_same", label=sv.label(best, lg) if multi_fw else
                         m("optimize.label_hf", prec=c.plabel(bc.precision, lg), bs=bc.batch_size),
                         j=c.fnum(best.j_per_1k_tok), use_case=uc,
                         itl=m("optimize.itl_part", itl=c.fnum(best.itl_ms, 1)) if best.itl_ms else "")
    elif multi_fw:
        ans.headline = m("optimize.headline_fw", label=sv.label(best, lg), j=c.fnum(best.j_per_1k_tok),
                         cur_j=c.fnum(current.j_per_1k_tok), cur_label=sv.label(current, lg),
                         pct=c.fpct(-100 + 100 * best.j_per_1k_tok / current.j_per_1k_tok), use_case=uc,
                         itl=m("optimize.itl_part", itl=c.fnum(best.itl_ms, 1)) if best.itl_ms else "")
    else:
        ans.headline = m("optimize.headline", prec=c.plabel(bc.precision, lg), bs=bc.batch_size,
                     j=c.fnum(best.j_per_1k_tok), cur_j=c.fnum(current.j_per_1k_tok),
                     cur_prec=c.plabel(q.precision or "fp16", lg), cur_bs=q.batch_size,
                         pct=c.fpct(-100 + 100 * best.j_per_1k_tok / current.j_per_1k_tok), use_case=uc)

    # the ranking
    ranked = sorted(cands, key=lambda e: e.j_per_1k_tok)
    shown = ranked[:8]
    if current not in shown and all(e.config != current.config for e in shown):
        shown.append(current)
    rows = []
    for e in shown:
        rank = ranked.index(e) + 1 if e in ranked else "-"
        cur = (m("optimize.mark_current") if c.config_stated(q) else m("optimize.mark_baseline")) \
            if e.config == current.config else ""
        if multi_fw:
            rows.append([rank, sv.fw_label(e.config.framework) + cur, sv.plabel(e.config.framework, e.config.precision, lg),
                         e.config.batch_size, e.config.gpu_count, round(e.j_per_1k_tok, 1), _r(e.throughput_tok_s),
                         _r(e.itl_ms if e.itl_ms is not None else _itl(e), 1), _r(e.power_w), _r(e.mem_gb, 1),
                         c.fpct(derive.waste_pct(e.j_per_1k_tok, best.j_per_1k_tok)), m.word("tier", e.tier),
                         m.word("confidence", e.confidence)])
        else:
            rows.append([rank if rank != "-" else "-", c.plabel(e.config.precision, lg) + cur, e.config.batch_size,
                         round(e.j_per_1k_tok, 1), _r(e.throughput_tok_s), _r(e.power_w), _r(e.mem_gb, 1),
                         c.fpct(derive.waste_pct(e.j_per_1k_tok, best.j_per_1k_tok)), m.word("tier", e.tier),
                         m.word("confidence", e.confidence)])
    if multi_fw:
        title = m("optimize.ranked_title_fw", model=mlabel, gpu=glabel, use_case=uc)
        cols = ("rank", "framework", "precision", "batch_concurrency", "gpus", "j_1k", "tok_s", "itl_ms", "power_w",
                "memory_gb", "vs_best", "tier", "confidence")
    else:
        title = m("optimize.ranked_title", model=mlabel, gpu=glabel, use_case=uc,
                  sizes=", ".join(map(str, c.batch_candidates(q.use_case))))
        cols = ("rank", "precision", "batch_size", "j_1k", "tok_s", "power_w", "memory_gb", "vs_best", "tier",
                "confidence")
    ans.tables.append(Table(
        title=title,
        columns=[m(f"col.{k}") for k in cols],
        rows=rows,
        notes=[m("optimize.ranked_note", n=len(ranked), vram=c.gpu_of(q.gpu).vram_gb) if c.gpu_of(q.gpu) else ""]))

    # chart: each precision at the recommended batch size, plus the current configuration
    g = c.grid(q)
    # one answer length for the whole answer (common.answer_length); the estimate only matters for
    # an hours-per-day workload, which runs at its throughput
    w = c.workload(q, best if serving_best else current)
    c.note_answer_length(ans.defaults_applied, q, w)
    items = []
    # "you are here" marks only a configuration the user stated, never the defaults
    stated = not {"precision", "batch_size"} <= set(q.defaulted)
    if multi_fw:
        # the best configuration of each framework and format
        seen: set[tuple[str, str]] = set()
        for e in ranked:
            k = (e.config.framework, e.config.precision)
            if k in seen:
                continue
            seen.add(k)
            line = c.cost("", e, w, g)
            items.append((sv.label(e, lg), e.j_per_1k_tok, stated and e.config == current.config,
                          f"{c.fusd(line.usd)}/{m('word.mo' if w.period == 'month' else 'word.job')}"))
    for prec in ([] if multi_fw else c.ranked_precisions(q)):
        e = next((x for x in cands if x.config.precision == prec and x.config.batch_size == bc.batch_size), None)
        if e is None:
            continue
        line = c.cost("", e, w, g)
        items.append((f"{c.plabel(prec, lg)} BS={bc.batch_size}", e.j_per_1k_tok, stated and e.config == current.config,
                      f"{c.fusd(line.usd)}/{m('word.mo' if w.period == 'month' else 'word.job')}"))
    if stated and not any(cur for _, _, cur, _ in items):
        line = c.cost("", current, w, g)
        items.append((f"{c.plabel(current.config.precision, lg)} BS={current.config.batch_size}", current.j_per_1k_tok,
                      True, f"{c.fusd(line.usd)}/{m('word.mo' if w.period == 'month' else 'word.job')}"))
    ans.charts.append(c.bar_chart(m("optimize.chart_title", model=mlabel, gpu=glabel), items, lang=lg))

    # money and carbon
    who_cur = m("word.current" if c.config_stated(q) else "word.baseline")
    cur_line = c.named_cost(who_cur, current, w, g, multi_fw)
    best_line = c.named_cost(m("word.recommended"), best, w, g, multi_fw)
    ans.costs = [cur_line, best_line]
    ans.conversions += w.conversions + c.cost_conversions(best, w, g, best_line)
    own = c.ownership(q)
    fcs = [c.full_cost(m("word.recommended"), best, w, g, own)]
    if best.config != current.config:
        fcs.append(c.full_cost(who_cur, current, w, g, own))
    ans.tables.append(c.capacity_table(fcs, w, g))
    ans.caveats += c.capacity_caveats(fcs, lg)
    for f in fcs:
        ans.citations += [x for x in f.citations if all(x.ref != y.ref for y in ans.citations)]
    ans.extra["capacity"] = [_cap(f) for f in fcs]
    if w.defaulted:
        ans.defaults_applied.append(m("optimize.default_workload", requests=c.fnum(c.DEFAULT_MONTHLY_REQUESTS)))
    ans.defaults_applied += c.ownership_notes(own, lg)

    # why, and what to do
    if serving_best:
        code, language = sv.serve_command(best, c.hub_id(q)), "bash"
    else:
        code, language = c.config_code(bc.precision, c.hub_id(q), bc.batch_size, q.gen_tokens or 256), "python"
    # the headline's money is the full cost (GPUs + electricity) when the GPUs have a price, since the
    # GPUs' rental is most of it; electricity alone is the fallback
    fc_cur = fcs[-1] if best.config != current.config else fcs[0]
    priced = fcs[0].gpu_usd is not None and fc_cur.gpu_usd is not None
    if priced:
        impact = m("optimize.impact_total", kwh0=c.fnum(cur_line.kwh, 1), kwh1=c.fnum(best_line.kwh, 1),
                   usd0=c.fusd(fc_cur.total_usd), usd1=c.fusd(fcs[0].total_usd),
                   save=c.fusd(fc_cur.total_usd - fcs[0].total_usd),
                   gpu0=c.fusd(fc_cur.gpu_usd or 0.0), gpu1=c.fusd(fcs[0].gpu_usd or 0.0),
                   el0=c.fusd(cur_line.usd), el1=c.fusd(best_line.usd),
                   co0=c.fnum(cur_line.kg_co2, 1), co1=c.fnum(best_line.kg_co2, 1), per=c.per_word(w))
    else:
        impact = m("optimize.impact", kwh0=c.fnum(cur_line.kwh, 1), kwh1=c.fnum(best_line.kwh, 1),
                   usd0=c.fusd(cur_line.usd), usd1=c.fusd(best_line.usd), save=c.fusd(cur_line.usd - best_line.usd),
                   co0=c.fnum(cur_line.kg_co2, 1), co1=c.fnum(best_line.kg_co2, 1), per=c.per_word(w))
    ans.recommendations.append(Recommendation(
        title=(m("optimize.run_title_fw", label=sv.label(best, lg)) if multi_fw
               else m("optimize.run_title", prec=c.plabel(bc.precision, lg), bs=bc.batch_size)),
        language=language,
        detail=_why(q, best, current, cands),
        code=code,
        impact=impact))
    alt = unmeasured_alternative(cands, best)
    if alt is not None:
        ac = alt.config
        ans.recommendations.append(Recommendation(
            title=m("optimize.alt_title", prec=c.plabel(ac.precision, lg), bs=ac.batch_size),
            detail=m("optimize.alt_detail", j=c.fnum(alt.j_per_1k_tok),
                     pct=c.fpct(c.delta_pct(alt.j_per_1k_tok, best.j_per_1k_tok)), prec=c.plabel(ac.precision, lg),
                     gpu=glabel, tier=m.word("tier", alt.tier), method=c.method_text(alt, lg)),
            code=alt.bench_command, language="bash"))
    if "gpu" in q.defaulted:
        ans.recommendations.append(Recommendation(title=m("optimize.gpu_title"),
                                                  detail=m("optimize.gpu_detail", gpu=glabel)))
    pit = None if serving_best else _pitfalls(q, [e for e in cands if not sv.is_serving(e.config.framework)],
                                               bc.batch_size)
    if pit:
        ans.tables.append(pit)
    ests = [best, current]
    c.add_provenance(ans, ests)
    c.cite_estimates(ans, ests)
    ans.citations += g.citations + c.factor_citations("km_driven_per_kgco2", "smartphone_charge_kwh")
    c.add_bench_hints(ans, [e for e in ests if e.tier != "measured"])
    ans.caveats += c.data_caveats(ests, ans.lang)
    ans.extra["best"] = _summary(best)
    ans.extra["current"] = _summary(current)
    return ans


def _summary(e: Estimate) -> dict:
    cf = e.config
    return {"framework": cf.framework, "precision": cf.precision, "batch_size": cf.batch_size,
            "gpu_count": cf.gpu_count, "j_per_1k_tok": e.j_per_1k_tok, "throughput_tok_s": e.throughput_tok_s,
            "itl_ms": e.itl_ms, "tier": e.tier, "row_ids": list(e.row_ids)}


def _itl(e: Estimate) -> float | None:
    return 1000.0 * e.config.batch_size / e.throughput_tok_s if e.throughput_tok_s else None


def _cap(f: c.FullCost) -> dict:
    return {"label": f.label, "gpu_hours": f.gpu_hours, "gpus": f.gpus, "replicas": f.replicas,
            "tok_s_needed": f.tok_s_needed, "serves": f.serves, "rental_usd": f.rental_usd, "owned": f.owned,
            "ownership_usd": f.ownership_usd, "electricity_usd": f.electricity.usd, "total_usd": f.total_usd}


def _r(x: float | None, nd: int = 0) -> float | None:
    if x is None:
        return None
    return round(x, nd) if nd else float(round(x))


def _why(q: Query, best: Estimate, current: Estimate, cands: list[Estimate]) -> str:
    m = For(q.lang)
    bc = best.config
    same_bs = {e.config.precision: e for e in cands if e.config.batch_size == bc.batch_size}
    parts = []
    fp16 = same_bs.get("fp16")
    if fp16 and bc.precision != "fp16":
        parts.append(m("optimize.why_vs_fp16", bs=bc.batch_size, prec=c.plabel(bc.precision, m.lang),
                       pct=c.fpct(-100 + 100 * best.j_per_1k_tok / fp16.j_per_1k_tok)))
    elif bc.precision == "fp16":
        others = [e for p, e in same_bs.items() if p != "fp16"]
        if others:
            nxt = min(others, key=lambda e: e.j_per_1k_tok)
            parts.append(m("optimize.why_fp16", prec=c.plabel(nxt.config.precision, m.lang),
                           pct=c.fpct(derive.waste_pct(nxt.j_per_1k_tok, best.j_per_1k_tok))))
    one = next((e for e in cands if e.config.precision == bc.precision and e.config.batch_size == 1), None)
    if one and bc.batch_size > 1:
        cut = 100 - 100 * best.j_per_1k_tok / one.j_per_1k_tok
        parts.append(m("optimize.why_cuts" if cut >= 0 else "optimize.why_raises", bs=bc.batch_size,
                       pct=c.fpct(abs(cut)).lstrip("+"), tier=m.word("tier", weaker_tier(best.tier, one.tier))))
    parts.append(m("optimize.why_figures", tier=m.word("tier", best.tier), method=c.method_text(best, m.lang),
                   conf=m.word("confidence", best.confidence)))
    return m("sep.sentence").join(parts)


def _pitfalls(q: Query, cands: list[Estimate], bs: int) -> Table | None:
    at = {e.config.precision: e for e in cands if e.config.batch_size == bs}
    best = min(at.values(), key=lambda e: e.j_per_1k_tok) if at else None
    if best is None:
        return None
    m = For(q.lang)
    rows = []
    traps = ("int8_mixed", "fp8", "nf4", "int8_pure")  # the formats with a known trap (optimize.trap_*)
    for prec, e in sorted(at.items(), key=lambda kv: -kv[1].j_per_1k_tok):
        w = derive.waste_pct(e.j_per_1k_tok, best.j_per_1k_tok)
        if prec == best.config.precision or w < 5 or prec not in traps:
            continue
        rows.append([c.plabel(prec, m.lang), m(f"optimize.trap_{prec}"), c.fpct(w), m.word("tier", e.tier)])
    if not rows:
        return None
    return Table(title=m("optimize.pitfalls_title", bs=bs),
                 columns=[m("col.precision"), m("col.trap"), m("col.extra_energy"), m("col.tier")], rows=rows)
