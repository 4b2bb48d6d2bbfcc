"""The protocols: each turns a validated Query into an Answer.

`run(query)` dispatches on `query.protocol`. OPTIMIZE, DIAGNOSE, COMPARE and ESTIMATE live here;
AUDIT and PLAN belong to their own modules (`advisor.protocols.audit`, `advisor.protocols.plan`),
imported only when asked for, so a missing one never breaks the others.
"""

from __future__ import annotations

import importlib

from advisor.answer import Answer
from advisor.messages import t
from advisor.query import Query

_MODULES = {
    "optimize": "advisor.protocols.optimize",
    "diagnose": "advisor.protocols.diagnose",
    "compare": "advisor.protocols.compare",
    "estimate": "advisor.protocols.estimate",
    "audit": "advisor.protocols.audit",
    "plan": "advisor.protocols.plan",
}


def run(query: Query) -> Answer:
    """Answer `query` with its protocol's module (imported lazily)."""
    lang = query.lang
    name = _MODULES.get(query.protocol)
    if name is None:
        return _unavailable(query, t(lang, "unused.unknown_protocol", name=query.protocol))
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        return _unavailable(query, t(lang, "unused.not_installed", name=query.protocol.upper()))
    runner = getattr(mod, "run", None)
    if runner is None:
        return _unavailable(query, t(lang, "unused.no_run", module=name))
    return report_unused(moods_agree(runner(query)), query, getattr(mod, "READS_SLOTS", ()))


def moods_agree(ans: Answer) -> Answer:
    """The mood never contradicts the content: never green beside an alert or a stated waste above
    the green threshold; a saving of cents a month is said in words and kept at most yellow."""
    from advisor.answer import MOOD_THRESHOLDS, mood_for_waste, worst_mood
    from measurements import catalog

    green_max = next(upper for upper, mood in MOOD_THRESHOLDS if mood == "green")
    if ans.mood == "green":
        worse = [a.mood for a in ans.alerts if a.mood in ("yellow", "orange", "red")]
        if ans.waste_pct is not None and ans.waste_pct >= green_max:
            worse.append(mood_for_waste(ans.waste_pct))
        if worse:
            ans.mood = worst_mood(*worse)
            # the waste shown is the one that set the mood: an alert's measured impact when it is larger
            impacts = [a.impact_pct for a in ans.alerts if a.mood in worse and a.impact_pct is not None]
            if impacts and (ans.waste_pct is None or max(impacts) > ans.waste_pct):
                ans.waste_pct = max(impacts)
    saving = _monthly_saving(ans)
    trivial = catalog.factor("trivial_saving_usd_month")
    if saving is not None and 0 < saving < trivial and ans.mood in ("orange", "red"):
        ans.mood = "yellow"
        ans.caveats.append(t(ans.lang, "unused.trivial_saving", usd=saving, trivial=trivial))
    return ans


def _monthly_saving(ans: Answer) -> float | None:
    """Dollars a month between the configuration judged and the recommended one (full cost where
    the answer has it, else electricity)."""
    caps = ans.extra.get("capacity")
    if caps and len(caps) > 1:
        totals = [x["total_usd"] for x in caps]
        return max(totals) - min(totals)
    if len(ans.costs) > 1 and (ans.costs[0].basis or "").endswith(t(ans.lang, "common.per_month")):
        return abs(ans.costs[0].usd - ans.costs[-1].usd)
    return None


# Slots the parser fills that a protocol module must declare it reads (`READS_SLOTS = ("gpu_count", ...)`);
# a stated one that its module does not read is listed as not understood, never silently dropped.
DECLARED_SLOTS = ("gpu_count", "framework", "itl_target_ms", "itl_percentile", "e2e_target_s", "own_gpus",
                  "gpu_lifetime_years", "gpu_purchase_usd")
# fields of the resolved query every answer's JSON carries, stated or not
RESOLVED_FIELDS = ("gpu_count", "framework", "requests_per_month", "prompt_tokens", "gen_tokens", "reported_tok_s",
                   "reported_power_w", "not_understood")


def report_unused(ans: Answer, query: Query, reads: tuple[str, ...] | set[str] = ()) -> Answer:
    """Copy the question's not-understood facts onto the answer, add the stated slots the protocol
    did not use, and make the mood gray when any of them could change the figures."""
    out = list(query.not_understood)
    stated = [s for s in DECLARED_SLOTS if getattr(query, s, None) is not None and s not in query.defaulted
              and s not in reads]
    if "gpu_count" in stated and query.gpu_count == 1:
        stated.remove("gpu_count")
    # own GPUs where an answer prices only energy: its costs are what owned GPUs cost to run, said so
    if "own_gpus" in stated and ans.costs:
        stated.remove("own_gpus")
        ans.caveats.append(t(ans.lang, "common.own_electricity_only"))
    # the percentile goes with its target: reported with it, or used with it
    if "itl_percentile" in stated and query.itl_target_ms is not None:
        stated.remove("itl_percentile")
    lg = query.lang
    pct = t(lg, "unused.itl_pct", p=query.itl_percentile) if query.itl_percentile else ""
    what = {
        "gpu_count": t(lg, "unused.gpu_count", n=query.gpu_count),
        "framework": t(lg, "unused.framework", fw=query.framework),
        "itl_target_ms": t(lg, "unused.itl_target", ms=query.itl_target_ms, pct=pct) if query.itl_target_ms else "",
        "itl_percentile": t(lg, "unused.itl_percentile", p=query.itl_percentile) if query.itl_percentile else "",
        "e2e_target_s": t(lg, "unused.e2e_target", s=query.e2e_target_s) if query.e2e_target_s else "",
        "own_gpus": t(lg, "unused.own_gpus") if query.own_gpus else "",
        "gpu_lifetime_years": t(lg, "unused.gpu_lifetime", years=query.gpu_lifetime_years)
                              if query.gpu_lifetime_years else "",
        "gpu_purchase_usd": t(lg, "unused.gpu_purchase", usd=query.gpu_purchase_usd) if query.gpu_purchase_usd else "",
    }
    out += [what[s] for s in stated if what[s]]
    ans.not_understood = list(dict.fromkeys(ans.not_understood + out))
    if ans.protocol != "error":
        for k in RESOLVED_FIELDS:
            ans.query.setdefault(k, getattr(query, k, None))
        ans.query["not_understood"] = list(ans.not_understood)
        if ans.not_understood:
            ans.mood = "gray"
    return ans


def _unavailable(query: Query, why: str) -> Answer:
    return Answer(protocol="error", title=t(query.lang, "unused.cannot_title"), lang=query.lang or "en", mood="gray",
                  errors=[why], query=query.model_dump(exclude_none=True))
