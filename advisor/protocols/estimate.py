"""ESTIMATE: what a workload costs per month (or per job) in kWh, dollars and kgCO2 and their
everyday equivalents, for the current configuration and the optimized one, with every unit
conversion shown."""

from __future__ import annotations

import re

from advisor import derive
from advisor.answer import Answer, Recommendation, Table
from advisor.protocols import common as c
from advisor.protocols import optimize
from advisor.protocols import serving as sv
from advisor.query import Query

# the Query slots this protocol uses (advisor.protocols.report_unused lists any other stated one)
READS_SLOTS = ("gpu_count", "framework", "itl_target_ms", "e2e_target_s", "own_gpus", "gpu_lifetime_years",
               "gpu_purchase_usd")


def run(q: Query) -> Answer:
    m, lg, mlabel, glabel, ans = c.opening(q, "estimate", "estimate.title")
    current = sv.current(q)
    sv.note_gpu_count(ans.defaults_applied, q, current)
    sv.note_load_concurrency(ans.defaults_applied, q, current)
    if current is None:
        ans.mood = "gray"
        ans.headline = m("estimate.no_data", model=mlabel, gpu=glabel)
        return ans
    cands = optimize.candidates(q)
    best = optimize.best_of(cands) if cands else current
    if best.j_per_1k_tok > current.j_per_1k_tok:
        best = current
    w = c.workload(q, current)  # one answer length for both columns (common.answer_length)
    c.note_answer_length(ans.defaults_applied, q, w)
    g = c.grid(q)
    per = c.per_word(w)
    per_text = m("common.per_month" if w.period == "month" else "common.per_job")
    who_cur = m("word.current" if c.config_stated(q) else "word.baseline")
    # with a serving engine among them, a configuration is named with its framework and GPU count
    named = sv.is_serving(current.config.framework) or sv.is_serving(best.config.framework)
    cur_line = c.named_cost(who_cur, current, w, g, named)
    best_line = c.named_cost(m("estimate.optimized"), best, w, g, named)
    ans.costs = [cur_line, best_line]
    c.judge(ans, q, current, best)
    own = c.ownership(q)
    fc_cur = c.full_cost(who_cur, current, w, g, own)
    fc_best = c.full_cost(m("estimate.optimized"), best, w, g, own)
    fcs = [fc_cur, fc_best] if best.config != current.config else [fc_cur]

    def money(f: c.FullCost) -> str:
        rent_key = "estimate.owned" if f.owned else "estimate.rental"
        rent = m(rent_key, usd=c.fusd(f.gpu_usd)) if f.gpu_usd is not None else ""
        norent = "" if f.gpu_usd is not None else m("estimate.no_purchase" if f.owned else "estimate.no_rental")
        gpus = m("estimate.gpu_one" if f.gpus == 1 else "estimate.gpu_many", n=f.gpus) if f.gpus else ""
        return m("estimate.money", total=c.fusd(f.total_usd), rent=rent, power=c.fusd(f.electricity.usd), norent=norent,
                 gpus=gpus, hours=c.fnum(f.gpu_hours))

    best_part = (m("estimate.headline_best_fw", money=money(fc_best), label=sv.label(best, lg)) if named else
                 m("estimate.headline_best", money=money(fc_best), prec=c.plabel(best.config.precision, lg),
                   bs=best.config.batch_size))
    ans.headline = (m("estimate.headline", workload=w.label, money=money(fc_cur), per=per_text)
                    + (best_part if len(fcs) > 1 else "")
                    + m("estimate.headline_energy", kwh=c.fnum(cur_line.kwh, 1), co2=c.fnum(cur_line.kg_co2, 1)))
    if not current.fits:
        # a configuration that cannot load is never costed: the headline says so and what would fit,
        # and only a fitting optimized configuration gets GPUs and a bill
        fcs = [fc_best] if best.fits and best.config != current.config else []
        ans.headline = m("estimate.unfit", label=sv.label(current, lg), advice=c.fit_advice(current, lg)) + (
            m("estimate.unfit_best", workload=w.label, money=money(fc_best), label=sv.label(best, lg), per=per_text)
            if fcs else "")
    elif not fc_cur.serves:
        ans.headline += m("estimate.headline_replica", hours=c.fnum(fc_cur.replica_hours),
                          hpm=f"{c.hours_per_month():,.0f}")

    def sav(a: float, b: float) -> str:
        return "-" if a == 0 else c.fpct(c.delta_pct(b, a))

    rows = [
        ["J/1k tok", round(current.j_per_1k_tok, 1), round(best.j_per_1k_tok, 1), sav(current.j_per_1k_tok, best.j_per_1k_tok)],
    ]
    gen = w.gen or q.gen_tokens or 0  # the answer length the workload counts
    if w.requests is not None and gen:
        rows.append(["J/request", round(derive.energy_per_request_j(current.j_per_1k_tok, gen), 1),
                     round(derive.energy_per_request_j(best.j_per_1k_tok, gen), 1),
                     sav(current.j_per_1k_tok, best.j_per_1k_tok)])
    rows += [
        [m("estimate.row_energy", per=per), round(cur_line.kwh, 3), round(best_line.kwh, 3),
         sav(cur_line.kwh, best_line.kwh)],
        [m("estimate.row_cost", per=per), round(cur_line.usd, 2), round(best_line.usd, 2),
         m("estimate.saved", usd=c.fusd(cur_line.usd - best_line.usd))],
        [m("estimate.row_carbon", per=per), round(cur_line.kg_co2, 3), round(best_line.kg_co2, 3),
         sav(cur_line.kg_co2, best_line.kg_co2)],
        [m("estimate.row_km"), round(cur_line.equivalents["km_driven"], 1), round(best_line.equivalents["km_driven"], 1),
         sav(cur_line.equivalents["km_driven"], best_line.equivalents["km_driven"])],
        [m("estimate.row_phones"), round(cur_line.equivalents["smartphone_charges"]),
         round(best_line.equivalents["smartphone_charges"]),
         sav(cur_line.equivalents["smartphone_charges"], best_line.equivalents["smartphone_charges"])],
        [m("estimate.row_tier"), m.word("tier", current.tier), m.word("tier", best.tier), ""],
    ]
    ans.tables.append(Table(title=m("estimate.title_month" if w.period == "month" else "estimate.title_job",
                                    model=mlabel, gpu=glabel, workload=w.label),
                            columns=[m("estimate.col_metric"), who_cur, m("estimate.optimized"),
                                     m("estimate.col_change")], rows=rows,
                            notes=[m("estimate.note_configs", who=who_cur, cur_prec=c.plabel(current.config.precision, lg),
                                     cur_bs=current.config.batch_size, prec=c.plabel(best.config.precision, lg),
                                     bs=best.config.batch_size),
                                   g.label]))
    if fcs:
        ans.tables.append(c.capacity_table(fcs, w, g))
    ans.caveats += c.capacity_caveats(fcs, lg)
    for f in fcs:
        ans.citations += [x for x in f.citations if all(x.ref != y.ref for y in ans.citations)]
    ans.extra["capacity"] = [optimize._cap(f) for f in fcs]
    ans.conversions += w.conversions + c.cost_conversions(current, w, g, cur_line)
    if fc_cur.gpu_hours is not None and current.fits:
        # the price per GPU-hour: the rental basis up to its first separator
        price = re.split(r"[,，]", fc_cur.rental_basis)[0]
        ans.conversions.append(m("estimate.conv_gpu_hours", tokens=c.fnum(w.tokens), tok_s=c.fnum(current.throughput_tok_s, 1),
                                 n=current.config.gpu_count, gpu_hours=c.fnum(fc_cur.gpu_hours, 1))
                               + (m("estimate.conv_rental", price=price, usd=c.fusd(fc_cur.rental_usd))
                                  if fc_cur.rental_usd is not None and not fc_cur.owned else ""))
        if fc_cur.owned and fc_cur.ownership_usd is not None:
            ans.conversions.append(m("estimate.conv_owned", basis=fc_cur.ownership_basis,
                                     usd=c.fusd(fc_cur.ownership_usd), per=per))
    ans.defaults_applied += c.ownership_notes(own, q.lang)
    if w.defaulted:
        ans.defaults_applied.append(m("optimize.default_workload", requests=c.fnum(c.DEFAULT_MONTHLY_REQUESTS)))
    if q.job_tokens is not None:
        ans.caveats.append(m("estimate.job_caveat"))
    steps = []
    if best.config.framework != current.config.framework:
        steps.append(m("estimate.step_framework", a=sv.fw_label(current.config.framework),
                       b=sv.fw_label(best.config.framework)))
    if best.config.gpu_count != current.config.gpu_count:
        steps.append(m("estimate.step_gpus", a=current.config.gpu_count, b=best.config.gpu_count))
    if best.config.precision != current.config.precision:
        steps.append(m("estimate.step_precision", a=sv.plabel(current.config.framework, current.config.precision, lg),
                       b=sv.plabel(best.config.framework, best.config.precision, lg)))
    if best.config.batch_size != current.config.batch_size:
        steps.append(m("estimate.step_batch", a=current.config.batch_size, b=best.config.batch_size))
    if steps:
        code = (sv.serve_command(best, c.hub_id(q)) if sv.is_serving(best.config.framework) else
                c.config_code(best.config.precision, c.hub_id(q), best.config.batch_size, q.gen_tokens or 256))
        ans.recommendations.append(Recommendation(
            title=m("estimate.rec_title", steps=m.join(steps, "clause")),
            detail=m("estimate.rec_detail", a=c.fnum(current.j_per_1k_tok), b=c.fnum(best.j_per_1k_tok),
                     tier=m.word("tier", best.tier), method=c.method_text(best, lg)),
            code=code,
            # the saving of the headline's totals: the GPUs' cost (rental or amortised) with the electricity
            # (nothing is saved against a configuration that cannot run: the optimized one's bill alone)
            impact=m("estimate.rec_impact", usd=c.fusd(fc_cur.total_usd - fc_best.total_usd),
                     gpus=c.fusd((fc_cur.gpu_usd or 0.0) - (fc_best.gpu_usd or 0.0)),
                     power=c.fusd(cur_line.usd - best_line.usd),
                     co2=c.fnum(cur_line.kg_co2 - best_line.kg_co2, 1), per=per_text) if current.fits else
            m("estimate.rec_impact_unfit", usd=c.fusd(fc_best.total_usd), per=per_text)))
    ests = [current, best]
    c.add_provenance(ans, ests)
    c.cite_estimates(ans, ests)
    ans.citations += g.citations + c.factor_citations("km_driven_per_kgco2", "smartphone_charge_kwh")
    if any("chinese_chars_per_token" in x for x in ans.conversions):
        ans.citations += c.factor_citations("chinese_chars_per_token")
    if any("requests_per_user_day" in x for x in ans.conversions):
        ans.citations += c.factor_citations("requests_per_user_day")
    c.add_bench_hints(ans, [e for e in ests if e.tier != "measured"])
    ans.caveats += c.data_caveats(ests, ans.lang)
    ans.extra["tokens"] = w.tokens
    ans.extra["period"] = w.period
    return ans
