"""The protocols: each turns a validated Query into an Answer.

`run(query)` dispatches on `query.protocol`. OPTIMIZE, DIAGNOSE, COMPARE and ESTIMATE live here;
AUDIT and PLAN belong to their own modules (`advisor.protocols.audit`, `advisor.protocols.plan`),
imported only when asked for, so a missing one never breaks the others.
"""

from __future__ import annotations

import importlib

from advisor.answer import Answer
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
    return runner(query)


def _unavailable(query: Query, why: str) -> Answer:
    return Answer(protocol="error", title="Cannot answer this yet", lang=query.lang or "en", mood="gray",
                  errors=[why], query=query.model_dump(exclude_none=True))
