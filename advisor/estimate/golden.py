"""Golden-section search: the one-parameter minimiser both calibrations use (the performance model's,
`calibrate.py`, and the serving model's, `serving.py`), each with its own number of iterations.

A bounded search without derivatives suits the losses here: each is smooth within the physical
limits of one parameter, and the search keeps the value inside them by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def golden_section(f: Callable[[float], float], lo: float, hi: float, *, log: bool, iters: int) -> float:
    """The point of [lo, hi] where `f` is least (to the bracket left after `iters` narrowings);
    with `log`, searched in log space (for parameters spanning orders of magnitude)."""
    a, b = (math.log(lo), math.log(hi)) if log else (lo, hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)

    def ev(x: float) -> float:
        return f(math.exp(x) if log else x)

    fc, fd = ev(c), ev(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = ev(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = ev(d)
    x = (a + b) / 2
    return math.exp(x) if log else x
