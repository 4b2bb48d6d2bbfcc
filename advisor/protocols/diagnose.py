"""DIAGNOSE: why inference is slow or the bill is high. The reported configuration and symptoms
are matched against the known traps (INT8 mixed decomposition, NF4 on small models, batch size 1
in production, FP8 eager mode, nightly builds); each match has a confidence, the expected vs the
reported figures, fixes in priority order with code, the expected improvement and how to verify
it with a measurement."""

from __future__ import annotations

from advisor import derive
from advisor.answer import Alert, Answer, Recommendation, Table, mood_for_waste, worst_mood
from advisor.estimate import Estimate, weaker_tier
from advisor.messages import For
from advisor.protocols import common as c
from advisor.query import Query
from measurements import catalog, select

# the Query slots this protocol uses (advisor.protocols.report_unused lists any other stated one)
READS_SLOTS = ("gpu_count", "framework")

# the fix each trap calls for, as a change of configuration
_FIX = {"INT8_MIXED": {"precision": "int8_pure"}, "FP8_EAGER": {"precision": "fp16"}, "NF4_SMALL": {"precision": "fp16"}}


def _fix_for(q: Query, code: str) -> dict:
    if code == "INT8_MIXED" and q.model_params_b and q.gpu:
        # The one-line fix is pure INT8, but where FP16 spends less still (the A800 rows), the best
        # alternative for the same job is FP16: waste and mood are measured against it.
        pure, half = c.est(q, precision="int8_pure"), c.est(q, precision="fp16")
        if pure is not None and half is not None and half.j_per_1k_tok < pure.j_per_1k_tok:
            return {"precision": "fp16"}
    if code == "BS1_PRODUCTION":
        return {"batch_size": min(c.production_min_batch(), max(c.batch_candidates(q.use_case)))}
    return dict(_FIX.get(code, {}))


def _code_for(q: Query, code: str, fix: dict) -> tuple[str, str]:
    if code == "BS1_PRODUCTION":
        return c.config_code(q.precision or "fp16", c.hub_id(q), fix["batch_size"], q.gen_tokens or 256), "python"
    if code == "NIGHTLY_BUILD":
        return ("python -c \"import torch; print(torch.__version__)\"   # '.dev' means nightly\n"
                "pip install --upgrade torch torchao   # stable releases"), "bash"
    if "precision" in fix:
        return c.config_code(fix["precision"], c.hub_id(q), q.batch_size or 1, q.gen_tokens or 256), "python"
    return "", "python"


def run(q: Query) -> Answer:
    m, lg, mlabel, glabel, ans = c.opening(q, "diagnose", "diagnose.title", traps=False)
    alerts = c.detect_traps(q)
    inferred = False
    if not alerts and q.batch_size == 1 and q.use_case != "interactive_chat" and (q.symptoms or q.reported_tok_s):
        # no stated trap, but the default single-request serving fits "slow" / "expensive"
        qq = q.model_copy(update={"defaulted": [x for x in q.defaulted if x != "batch_size"]})
        alerts = [a for a in c.detect_traps(qq) if a.code == "BS1_PRODUCTION"]
        inferred = bool(alerts)
    ans.alerts = alerts
    current = c.est(q) if q.model_params_b and q.gpu else None
    rows, fixes, ests = [], [], []
    conf_overall = []
    for a in alerts:
        fix = _fix_for(q, a.code)
        after = c.est(q, **fix) if (current is not None and fix) else None
        if current is not None:
            ests.append(current)
        if after is not None:
            ests.append(after)
        conf, why = _confidence(q, a, current, inferred)
        conf_overall.append(conf)
        exp_before = current.j_per_1k_tok if current else None
        exp_after = after.j_per_1k_tok if after else None
        change = (c.fpct(c.delta_pct(exp_after, exp_before)) if exp_before and exp_after
                  else (c.fpct(-a.impact_pct / (1 + a.impact_pct / 100)) if a.impact_pct else "-"))
        rows.append([a.title, m.word("confidence", conf), why, c.fnum(exp_before), c.fnum(exp_after), change,
                     c.fnum(current.throughput_tok_s, 1) if current else "-", c.fnum(after.throughput_tok_s, 1) if after else "-"])
        code, lang = _code_for(q, a.code, fix)
        fixes.append((a, fix, after, code, lang))
    if rows:
        ans.tables.append(Table(
            title=m("diagnose.matched"),
            columns=[m("col.trap"), m("col.confidence"), m("diagnose.col_evidence"), m("diagnose.col_j_now"),
                     m("diagnose.col_j_fixed"), m("diagnose.col_change"), m("diagnose.col_tok_now"),
                     m("diagnose.col_tok_fixed")],
            rows=rows))
    # expected vs reported
    if current is not None and (q.reported_tok_s or q.reported_power_w or q.reported_j_per_1k_tok):
        rep = []
        for label, reported, expected in ((m("diagnose.row_throughput"), q.reported_tok_s, current.throughput_tok_s),
                                          (m("diagnose.row_power"), q.reported_power_w, current.power_w),
                                          ("J/1k tok", q.reported_j_per_1k_tok, current.j_per_1k_tok)):
            if reported is None:
                continue
            dev = c.fpct(c.delta_pct(reported, expected)) if expected else "-"
            rep.append([label, c.fnum(reported, 1), c.fnum(expected, 1), dev])
        ans.tables.append(Table(title=m("diagnose.reported_title", prec=c.plabel(q.precision or "fp16", lg),
                                        bs=q.batch_size, tier=m.word("tier", current.tier)),
                                columns=[m("diagnose.col_metric"), m("diagnose.col_reported"),
                                         m("diagnose.col_expected"), m("diagnose.col_deviation")], rows=rep))
    # evidence across the dataset for each trap
    for a in alerts:
        ev = _evidence(a.code, lg)
        if ev is not None:
            ans.tables.append(ev)
    # fixes in priority order: largest expected saving first
    fixes.sort(key=lambda t: -(t[0].impact_pct or 0))
    g = c.grid(q)
    w = c.workload(q, current)
    for i, (a, _fix, after, code, lang) in enumerate(fixes, 1):
        impact = None
        if current is not None and after is not None:
            before_line = c.cost(m("diagnose.before"), current, w, g)
            after_line = c.cost(m("diagnose.after"), after, w, g)
            impact = m("diagnose.impact", j0=c.fnum(current.j_per_1k_tok), j1=c.fnum(after.j_per_1k_tok),
                       pct=c.fpct(c.delta_pct(after.j_per_1k_tok, current.j_per_1k_tok)),
                       t0=c.fnum(current.throughput_tok_s, 1), t1=c.fnum(after.throughput_tok_s, 1),
                       usd=c.fusd(before_line.usd - after_line.usd), workload=w.label,
                       tier=m.word("tier", weaker_tier(current.tier, after.tier)))
        elif a.impact_pct is not None:
            impact = m("diagnose.impact_pairs", pct=c.fpct(-100 * a.impact_pct / (100 + a.impact_pct)))
        title = a.fix or a.title
        if a.code == "INT8_MIXED" and _fix.get("precision") == "fp16":
            title = m("diagnose.fp16_title")
        ans.recommendations.append(Recommendation(title=f"{i}. {title}", detail=a.message, code=code or None,
                                                  language=lang, impact=impact))
    if current is not None and fixes and all(f[2] is not None for f in fixes if f[1]):
        # all fixes together
        combined: dict = {}
        for _, fix, _, _, _ in fixes:
            combined.update(fix)
        if combined:
            final = c.est(q, **combined)
            if final is not None:
                ests.append(final)
                cur_line = c.cost(m("common.cost_label", who=m("diagnose.now"), prec=c.plabel(current.config.precision, lg),
                                    bs=current.config.batch_size), current, w, g)
                fin_line = c.cost(m("common.cost_label", who=m("diagnose.after_fixes"),
                                    prec=c.plabel(final.config.precision, lg), bs=final.config.batch_size), final, w, g)
                ans.costs = [cur_line, fin_line]
                ans.conversions += w.conversions
                if w.defaulted:
                    ans.defaults_applied.append(m("optimize.default_workload",
                                                  requests=c.fnum(c.DEFAULT_MONTHLY_REQUESTS)))
                ans.waste_pct = derive.waste_pct(current.j_per_1k_tok, final.j_per_1k_tok)
                ans.recommendations.append(Recommendation(
                    title=m("diagnose.verify_title"),
                    detail=m("diagnose.verify_detail", tok_s=c.fnum(final.throughput_tok_s, 1), w=c.fnum(final.power_w),
                             j=c.fnum(final.j_per_1k_tok), tier=m.word("tier", final.tier)),
                    code=f"ecolobster bench --model {q.model if q.model and ' ' not in q.model else 'your-model'} "
                         f"--precision {final.config.precision} --batch-size {final.config.batch_size}\n"
                         f"ecolobster bench --model {q.model if q.model and ' ' not in q.model else 'your-model'} "
                         f"--precision {current.config.precision} --batch-size {current.config.batch_size}",
                    language="bash"))
    short = _shortfall(q, current)
    if short is not None and current is not None:
        ans.recommendations.append(Recommendation(title=m("diagnose.shortfall_title"),
                                                  detail=m("diagnose.shortfall_detail"), code=SHORTFALL_CHECK,
                                                  language="bash"))
    if not alerts:
        ans.mood = "green" if current is not None else "gray"
        ans.headline = m("diagnose.no_trap") + (m("diagnose.no_trap_measure") if current is None else "")
        ans.recommendations.append(Recommendation(
            title=m("diagnose.measure_title"),
            detail=m("diagnose.measure_detail"),
            code=f"ecolobster bench --model {q.model or 'your-model'} --precision {q.precision or 'fp16'} "
                 f"--batch-size {q.batch_size or 1}", language="bash"))
        if current is not None:
            ans.waste_pct = 0.0
            if short is not None:
                # the time the run loses against its own configuration's figure, at about the same power
                ans.waste_pct = 100.0 * (current.throughput_tok_s / q.reported_tok_s - 1.0)  # type: ignore[operator]
                ans.mood = c.mood_of(ans.waste_pct, current)
    else:
        impacts = [a.impact_pct for a in alerts if a.impact_pct is not None]
        if ans.waste_pct is None and impacts:
            ans.waste_pct = max(impacts)
        # the mood follows the waste against the best alternative, and never sits below an alert's
        ans.mood = worst_mood(*(a.mood for a in alerts), mood_for_waste(ans.waste_pct))
        top = alerts[0]
        ans.headline = m("diagnose.headline", trap=top.title, conf=m.word("confidence", conf_overall[0])) + (
            m("diagnose.headline_more", n=len(alerts) - 1) if len(alerts) > 1 else m("diagnose.headline_end"))
    if short is not None and current is not None:
        ans.headline += " " + m("diagnose.shortfall", rep=c.fnum(q.reported_tok_s, 1),
                                exp=c.fnum(current.throughput_tok_s, 1), pct=c.fpct(short),
                                prec=c.plabel(current.config.precision, lg), bs=current.config.batch_size, gpu=glabel,
                                tier=m.word("tier", current.tier))
    c.add_provenance(ans, ests)
    c.cite_estimates(ans, ests)
    for a in alerts:
        for ci in a.citations:
            if all(x.ref != ci.ref for x in ans.citations):
                ans.citations.append(ci)
    ans.citations += g.citations
    c.add_bench_hints(ans, [e for e in ests if e.tier != "measured"])
    ans.caveats += c.data_caveats(ests, ans.lang)
    ans.extra["matched"] = [a.code for a in alerts]
    return ans


# what shows a run slower than its configuration: clocks, power and thermal limits, and the
# throttle reasons, sampled each second while the slow job runs
SHORTFALL_CHECK = ("nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu,"
                   "clocks_throttle_reasons.active,utilization.gpu,memory.used --format=csv -l 1")


def _shortfall(q: Query, current: Estimate | None) -> float | None:
    """How far (percent, negative) a reported throughput falls below the configuration's expected
    figure, when further than the estimator's error allows (diagnose_match_tolerance_pct): then
    something beyond the configuration slows the run, and batching or a format will not explain it."""
    if current is None or not q.reported_tok_s or not current.throughput_tok_s:
        return None
    dev = c.delta_pct(q.reported_tok_s, current.throughput_tok_s)
    return dev if dev < -catalog.factor("diagnose_match_tolerance_pct") else None


def _confidence(q: Query, a: Alert, current: Estimate | None, inferred: bool) -> tuple[str, str]:
    m = For(q.lang)
    if inferred:
        return "medium", m("diagnose.why_inferred")
    if a.code == "NIGHTLY_BUILD":
        return "medium", m("diagnose.why_nightly")
    stated = ("INT8_MIXED", "FP8_EAGER", "NF4_SMALL", "BS1_PRODUCTION")  # diagnose.why_<code>
    why = m(f"diagnose.why_{a.code}") if a.code in stated else m("diagnose.why_matches")
    if current is not None and q.reported_tok_s and current.throughput_tok_s:
        dev = abs(c.delta_pct(q.reported_tok_s, current.throughput_tok_s))
        if dev <= catalog.factor("diagnose_match_tolerance_pct"):
            return "high", m("diagnose.why_within", why=why, dev=f"{dev:.0f}")
        return "medium", m("diagnose.why_away", why=why, dev=f"{dev:.0f}")
    return "high", why


def _evidence(code: str, lang: str = "en") -> Table | None:
    # the same pairs as the alerts and the auditor (measurements.select): trap vs its fix
    m = For(lang)
    pairs = {"INT8_MIXED": ("int8_mixed", select.INT8_MIXED_FIXES, m("diagnose.alt_int8")),
             "FP8_EAGER": ("fp8", select.SIXTEEN_BIT, m("diagnose.alt_16bit")),
             "NF4_SMALL": ("nf4", select.SIXTEEN_BIT, m("diagnose.alt_16bit"))}
    if code not in pairs:
        return None
    a, b, blabel = pairs[code]
    st = c.pair_stats(a, b)
    if st is None:
        return None
    rows = [[c.gpu_short(p.gpu), p.model_id, p.batch_size, round(p.trap.energy_j_per_1k_tok),  # type: ignore[arg-type]
             f"{round(p.alt.energy_j_per_1k_tok)} ({p.alt.precision})", c.fpct(p.waste_pct)] for p in st.pairs]  # type: ignore[arg-type]
    return Table(title=m("diagnose.evidence_title", prec=c.plabel(a, lang), alt=blabel, n=len(rows)),
                 columns=["GPU", m("compare.col_model"), m("col.batch_size"), f"{a} J/1k tok", f"{blabel} J/1k tok",
                          m("compare.col_delta")], rows=rows)
