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
    name = _MODULES.get(query.protocol)
    if name is None:
        return _unavailable(query, f"unknown protocol '{query.protocol}'")
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        return _unavailable(query, f"the {query.protocol.upper()} protocol is not installed in this build")
    runner = getattr(mod, "run", None)
    if runner is None:
        return _unavailable(query, f"{name} has no run(query)")
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
        ans.caveats.append(f"The saving is ${saving:.2f} a month: large in percent, small in absolute terms "
                           f"(under ${trivial:g} a month at this workload).")
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
DECLARED_SLOTS = ("gpu_count", "framework", "itl_target_ms", "itl_percentile", "e2e_target_s")
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
    # the percentile goes with its target: reported with it, or used with it
    if "itl_percentile" in stated and query.itl_target_ms is not None:
        stated.remove("itl_percentile")
    what = {
        "gpu_count": f"{query.gpu_count} GPUs per replica (gpu_count): this answer does not model several GPUs yet; "
                     "its figures are for one GPU",
        "framework": f"the {query.framework} framework: this answer's figures come from rows of other serving "
                     f"regimes; {query.framework} is not modelled in it",
        "itl_target_ms": f"a per-token latency target of {query.itl_target_ms:g} ms"
                         + (f" (p{query.itl_percentile:g})" if query.itl_percentile else "")
                         + ": not checked by this answer" if query.itl_target_ms else "",
        "itl_percentile": f"a latency percentile (p{query.itl_percentile:g}) with no target: not used"
                          if query.itl_percentile else "",
        "e2e_target_s": f"an end-to-end latency target of {query.e2e_target_s:g} s per answer: not checked by this "
                        "answer" if query.e2e_target_s else "",
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
    return Answer(protocol="error", title="Cannot answer this yet", lang=query.lang or "en", mood="gray",
                  errors=[why], query=query.model_dump(exclude_none=True))
