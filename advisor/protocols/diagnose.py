"""DIAGNOSE: why inference is slow or the bill is high. The reported configuration and symptoms
are matched against the known traps (INT8 mixed decomposition, NF4 on small models, batch size 1
in production, FP8 eager mode, nightly builds); each match has a confidence, the expected vs the
reported figures, fixes in priority order with code, the expected improvement and how to verify
it with a measurement."""

from __future__ import annotations

from advisor import derive
from advisor.answer import Alert, Answer, Recommendation, Table, mood_for_waste, worst_mood
from advisor.estimate import Estimate
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
    mlabel, glabel = c.model_label(q), c.gpu_label(q.gpu)
    ans = c.base_answer(q, "diagnose", f"Diagnosis: {mlabel} on {glabel}")
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
        rows.append([a.title, conf, why, c.fnum(exp_before), c.fnum(exp_after), change,
                     c.fnum(current.throughput_tok_s, 1) if current else "-", c.fnum(after.throughput_tok_s, 1) if after else "-"])
        code, lang = _code_for(q, a.code, fix)
        fixes.append((a, fix, after, code, lang))
    if rows:
        ans.tables.append(Table(
            title="Matched traps",
            columns=["trap", "confidence", "evidence", "J/1k tok now", "J/1k tok fixed", "energy change", "tok/s now",
                     "tok/s fixed"],
            rows=rows))
    # expected vs reported
    if current is not None and (q.reported_tok_s or q.reported_power_w or q.reported_j_per_1k_tok):
        rep = []
        for label, reported, expected in (("throughput tok/s", q.reported_tok_s, current.throughput_tok_s),
                                          ("power W", q.reported_power_w, current.power_w),
                                          ("J/1k tok", q.reported_j_per_1k_tok, current.j_per_1k_tok)):
            if reported is None:
                continue
            dev = c.fpct(c.delta_pct(reported, expected)) if expected else "-"
            rep.append([label, c.fnum(reported, 1), c.fnum(expected, 1), dev])
        ans.tables.append(Table(title=f"Reported vs expected for {c.plabel(q.precision or 'fp16')} at batch size "
                                      f"{q.batch_size} ({current.tier})",
                                columns=["metric", "reported", "expected (data)", "deviation"], rows=rep))
    # evidence across the dataset for each trap
    for a in alerts:
        ev = _evidence(a.code)
        if ev is not None:
            ans.tables.append(ev)
    # fixes in priority order: largest expected saving first
    fixes.sort(key=lambda t: -(t[0].impact_pct or 0))
    g = c.grid(q)
    w = c.workload(q, current)
    for i, (a, _fix, after, code, lang) in enumerate(fixes, 1):
        impact = None
        if current is not None and after is not None:
            before_line = c.cost("before", current, w, g)
            after_line = c.cost("after", after, w, g)
            impact = (f"{c.fnum(current.j_per_1k_tok)} -> {c.fnum(after.j_per_1k_tok)} J/1k tok "
                      f"({c.fpct(c.delta_pct(after.j_per_1k_tok, current.j_per_1k_tok))}); "
                      f"{c.fnum(current.throughput_tok_s, 1)} -> {c.fnum(after.throughput_tok_s, 1)} tok/s; "
                      f"{c.fusd(before_line.usd - after_line.usd)}/month saved at {w.label} ({after.tier})")
        elif a.impact_pct is not None:
            impact = f"about {c.fpct(-100 * a.impact_pct / (100 + a.impact_pct))} energy (median of the measured pairs)"
        title = a.fix or a.title
        if a.code == "INT8_MIXED" and _fix.get("precision") == "fp16":
            title = ("Load in FP16: on this GPU it spends less than pure INT8 (llm_int8_threshold=0.0), "
                     "the one-line fix")
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
                cur_line = c.cost(f"now: {c.plabel(current.config.precision)}, BS={current.config.batch_size}", current, w, g)
                fin_line = c.cost(f"after the fixes: {c.plabel(final.config.precision)}, BS={final.config.batch_size}", final, w, g)
                ans.costs = [cur_line, fin_line]
                ans.conversions += w.conversions
                if w.defaulted:
                    ans.defaults_applied.append(
                        f"workload: {c.fnum(c.DEFAULT_MONTHLY_REQUESTS)} requests/month (basis for the monthly figures)")
                ans.waste_pct = derive.waste_pct(current.j_per_1k_tok, final.j_per_1k_tok)
                ans.recommendations.append(Recommendation(
                    title="Verify with a measurement",
                    detail=(f"After the fixes expect about {c.fnum(final.throughput_tok_s, 1)} tok/s, "
                            f"{c.fnum(final.power_w)} W and {c.fnum(final.j_per_1k_tok)} J/1k tok "
                            f"({final.tier}). If your measurement differs by more than its spread, the trap was not the "
                            "cause: measure the current configuration too and compare."),
                    code=f"ecolobster bench --model {q.model if q.model and ' ' not in q.model else 'your-model'} "
                         f"--precision {final.config.precision} --batch-size {final.config.batch_size}\n"
                         f"ecolobster bench --model {q.model if q.model and ' ' not in q.model else 'your-model'} "
                         f"--precision {current.config.precision} --batch-size {current.config.batch_size}",
                    language="bash"))
    if not alerts:
        ans.mood = "green" if current is not None else "gray"
        ans.headline = ("No known energy trap matches this configuration."
                        + (" Measure it to compare against the data." if current is None else ""))
        ans.recommendations.append(Recommendation(
            title="Measure it to find out",
            detail="Run the measurement on your GPU: the advisor will compare it with the dataset.",
            code=f"ecolobster bench --model {q.model or 'your-model'} --precision {q.precision or 'fp16'} "
                 f"--batch-size {q.batch_size or 1}", language="bash"))
        if current is not None:
            ans.waste_pct = 0.0
    else:
        impacts = [a.impact_pct for a in alerts if a.impact_pct is not None]
        if ans.waste_pct is None and impacts:
            ans.waste_pct = max(impacts)
        # the mood follows the waste against the best alternative, and never sits below an alert's
        ans.mood = worst_mood(*(a.mood for a in alerts), mood_for_waste(ans.waste_pct))
        top = alerts[0]
        ans.headline = f"{top.title} detected ({conf_overall[0]} confidence)" + (
            f"; {len(alerts) - 1} more finding(s)." if len(alerts) > 1 else ".")
    c.add_provenance(ans, ests)
    c.cite_estimates(ans, ests)
    for a in alerts:
        for ci in a.citations:
            if all(x.ref != ci.ref for x in ans.citations):
                ans.citations.append(ci)
    ans.citations += g.citations
    c.add_bench_hints(ans, [e for e in ests if e.tier != "measured"])
    ans.caveats += c.data_caveats(ests)
    ans.extra["matched"] = [a.code for a in alerts]
    return ans


def _confidence(q: Query, a: Alert, current: Estimate | None, inferred: bool) -> tuple[str, str]:
    if inferred:
        return "medium", "batch size 1 assumed (not stated) and the symptoms fit"
    if a.code == "NIGHTLY_BUILD":
        return "medium", "a nightly/dev build was named"
    stated = {"INT8_MIXED": "load_in_8bit without threshold 0.0 stated", "FP8_EAGER": "FP8 without a compiled path stated",
              "NF4_SMALL": "NF4 on a model below the crossover stated", "BS1_PRODUCTION": "batch size 1 in production stated"}
    why = stated.get(a.code, "configuration matches")
    if current is not None and q.reported_tok_s and current.throughput_tok_s:
        dev = abs(c.delta_pct(q.reported_tok_s, current.throughput_tok_s))
        if dev <= catalog.factor("diagnose_match_tolerance_pct"):
            return "high", f"{why}; reported throughput within {dev:.0f}% of the trap's expected figure"
        return "medium", f"{why}; reported throughput {dev:.0f}% away from the trap's expected figure"
    return "high", why


def _evidence(code: str) -> Table | None:
    # the same pairs as the alerts and the auditor (measurements.select): trap vs its fix
    pairs = {"INT8_MIXED": ("int8_mixed", select.INT8_MIXED_FIXES, "pure INT8 / 16-bit"),
             "FP8_EAGER": ("fp8", select.SIXTEEN_BIT, "16-bit"), "NF4_SMALL": ("nf4", select.SIXTEEN_BIT, "16-bit")}
    if code not in pairs:
        return None
    a, b, blabel = pairs[code]
    st = c.pair_stats(a, b)
    if st is None:
        return None
    rows = [[c.gpu_short(p.gpu), p.model_id, p.batch_size, round(p.trap.energy_j_per_1k_tok),  # type: ignore[arg-type]
             f"{round(p.alt.energy_j_per_1k_tok)} ({p.alt.precision})", c.fpct(p.waste_pct)] for p in st.pairs]  # type: ignore[arg-type]
    return Table(title=f"Evidence: {c.plabel(a)} vs {blabel} in the measurements ({len(rows)} pairs)",
                 columns=["GPU", "model", "batch size", f"{a} J/1k tok", f"{blabel} J/1k tok", "Δ energy"], rows=rows)
