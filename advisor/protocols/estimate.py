"""ESTIMATE: what a workload costs per month (or per job) in kWh, dollars and kgCO2 and their
everyday equivalents, for the current configuration and the optimized one, with every unit
conversion shown."""

from __future__ import annotations

from advisor import derive
from advisor.answer import Answer, Recommendation, Table
from advisor.protocols import common as c
from advisor.protocols import optimize
from advisor.query import Query

# the Query slots this protocol uses (advisor.protocols.report_unused lists any other stated one)
READS_SLOTS = ("gpu_count", "framework", "itl_target_ms", "e2e_target_s")


def run(q: Query) -> Answer:
    mlabel, glabel = c.model_label(q), c.gpu_label(q.gpu)
    ans = c.base_answer(q, "estimate", f"Estimate: {mlabel} on {glabel}")
    ans.alerts = c.detect_traps(q)
    current = c.est(q)
    if current is None:
        ans.mood = "gray"
        ans.headline = f"No measurement or derivation covers {mlabel} on {glabel} yet."
        return ans
    cands = optimize.candidates(q)
    best = optimize.best_of(cands) if cands else current
    if best.j_per_1k_tok > current.j_per_1k_tok:
        best = current
    w = c.workload(q, current)
    g = c.grid(q)
    per = "month" if w.period == "month" else "job"
    cur_line = c.cost(f"{'current' if c.config_stated(q) else 'default baseline'}: {c.plabel(current.config.precision)}, BS={current.config.batch_size}", current, w, g)
    best_line = c.cost(f"optimized: {c.plabel(best.config.precision)}, BS={best.config.batch_size}", best, w, g)
    ans.costs = [cur_line, best_line]
    c.judge(ans, q, current, best)
    fc_cur = c.full_cost("current" if c.config_stated(q) else "default baseline", current, w, g)
    fc_best = c.full_cost("optimized", best, w, g)
    fcs = [fc_cur, fc_best] if best.config != current.config else [fc_cur]

    def money(f: c.FullCost) -> str:
        rent = f"rental {c.fusd(f.rental_usd)} + " if f.rental_usd is not None else ""
        norent = "" if f.rental_usd is not None else ", no rental price listed for this GPU"
        gpus = f"{f.gpus} GPU{'s' * (f.gpus != 1)}, " if f.gpus else ""
        return (f"{c.fusd(f.total_usd)} ({rent}electricity {c.fusd(f.electricity.usd)}{norent}; {gpus}"
                f"{c.fnum(f.gpu_hours)} GPU-hours)")

    ans.headline = (f"{w.label}: {money(fc_cur)} per {per} as configured"
                    + (f"; {money(fc_best)} optimized ({c.plabel(best.config.precision)}, batch size "
                       f"{best.config.batch_size})" if len(fcs) > 1 else "")
                    + f". Energy {c.fnum(cur_line.kwh, 1)} kWh and {c.fnum(cur_line.kg_co2, 1)} kgCO2 as configured.")
    if not fc_cur.serves:
        ans.headline += (f" One replica at this configuration would need {c.fnum(fc_cur.replica_hours)} hours a month, "
                         f"more than the {c.hours_per_month():,.0f} in a month.")

    def sav(a: float, b: float) -> str:
        return "-" if a == 0 else c.fpct(c.delta_pct(b, a))

    rows = [
        ["J/1k tok", round(current.j_per_1k_tok, 1), round(best.j_per_1k_tok, 1), sav(current.j_per_1k_tok, best.j_per_1k_tok)],
    ]
    gen = q.gen_tokens or 0
    if w.requests is not None and gen:
        rows.append(["J/request", round(derive.energy_per_request_j(current.j_per_1k_tok, gen), 1),
                     round(derive.energy_per_request_j(best.j_per_1k_tok, gen), 1),
                     sav(current.j_per_1k_tok, best.j_per_1k_tok)])
    rows += [
        [f"energy (kWh/{per})", round(cur_line.kwh, 3), round(best_line.kwh, 3), sav(cur_line.kwh, best_line.kwh)],
        [f"cost ($/{per})", round(cur_line.usd, 2), round(best_line.usd, 2), c.fusd(cur_line.usd - best_line.usd) + " saved"],
        [f"carbon (kgCO2/{per})", round(cur_line.kg_co2, 3), round(best_line.kg_co2, 3), sav(cur_line.kg_co2, best_line.kg_co2)],
        ["km driven (equivalent)", round(cur_line.equivalents["km_driven"], 1), round(best_line.equivalents["km_driven"], 1),
         sav(cur_line.equivalents["km_driven"], best_line.equivalents["km_driven"])],
        ["smartphone charges (equivalent)", round(cur_line.equivalents["smartphone_charges"]),
         round(best_line.equivalents["smartphone_charges"]),
         sav(cur_line.equivalents["smartphone_charges"], best_line.equivalents["smartphone_charges"])],
        ["tier", current.tier, best.tier, ""],
    ]
    ans.tables.append(Table(title=f"{'Monthly' if per == 'month' else 'Job'} estimate: {mlabel} on {glabel} ({w.label})",
                            columns=["metric", "current", "optimized", "change"], rows=rows,
                            notes=[f"current: {c.plabel(current.config.precision)}, batch size {current.config.batch_size}; "
                                   f"optimized: {c.plabel(best.config.precision)}, batch size {best.config.batch_size}",
                                   g.label]))
    ans.tables.append(c.capacity_table(fcs, w, g))
    ans.caveats += c.capacity_caveats(fcs)
    for f in fcs:
        ans.citations += [x for x in f.citations if all(x.ref != y.ref for y in ans.citations)]
    ans.extra["capacity"] = [optimize._cap(f) for f in fcs]
    ans.conversions += w.conversions + c.cost_conversions(current, w, g, cur_line)
    if fc_cur.gpu_hours is not None:
        ans.conversions.append(f"{c.fnum(w.tokens)} tokens / {c.fnum(current.throughput_tok_s, 1)} tok/s / 3,600 s/h x "
                               f"{current.config.gpu_count} GPU(s) = {c.fnum(fc_cur.gpu_hours, 1)} GPU-hours"
                               + (f" x {fc_cur.rental_basis.split(',')[0]} = {c.fusd(fc_cur.rental_usd)} rental"
                                  if fc_cur.rental_usd is not None else ""))
    if w.defaulted:
        ans.defaults_applied.append(f"workload: {c.fnum(c.DEFAULT_MONTHLY_REQUESTS)} requests/month (basis for the monthly figures)")
    if q.job_tokens is not None:
        ans.caveats.append("The tokens are counted as generated tokens at the measured J per 1k generated tokens; "
                           "reading a prompt (prefill) costs less per token than generating, so a job that only "
                           "reads text costs less than this.")
    steps = []
    if best.config.precision != current.config.precision:
        steps.append(f"precision {c.plabel(current.config.precision)} -> {c.plabel(best.config.precision)}")
    if best.config.batch_size != current.config.batch_size:
        steps.append(f"batch size {current.config.batch_size} -> {best.config.batch_size}")
    if steps:
        code = c.config_code(best.config.precision, c.hub_id(q), best.config.batch_size, q.gen_tokens or 256)
        ans.recommendations.append(Recommendation(
            title="Optimization: " + "; ".join(steps),
            detail=f"{c.fnum(current.j_per_1k_tok)} -> {c.fnum(best.j_per_1k_tok)} J/1k tok ({best.tier}, {best.method}).",
            code=code,
            impact=f"{c.fusd(cur_line.usd - best_line.usd)} and {c.fnum(cur_line.kg_co2 - best_line.kg_co2, 1)} kgCO2 saved per {per}"))
    ests = [current, best]
    c.add_provenance(ans, ests)
    c.cite_estimates(ans, ests)
    ans.citations += g.citations + c.factor_citations("km_driven_per_kgco2", "smartphone_charge_kwh")
    if any("chinese_chars_per_token" in x for x in ans.conversions):
        ans.citations += c.factor_citations("chinese_chars_per_token")
    if any("requests_per_user_day" in x for x in ans.conversions):
        ans.citations += c.factor_citations("requests_per_user_day")
    c.add_bench_hints(ans, [e for e in ests if e.tier != "measured"])
    ans.caveats += c.data_caveats(ests)
    ans.extra["tokens"] = w.tokens
    ans.extra["period"] = w.period
    return ans
