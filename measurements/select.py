"""The one evidence layer: select rows, pair configurations, and the figures derived from pairs.

Everything that quotes a measured comparison (the estimator, every protocol, the auditor's impact
figures, the chat's /data and the MCP query_measurements tool) selects and pairs rows here, so two
answers about the same configuration never disagree:

- `select()` filters rows by GPU, model, precision, framework, task, kind or source.
- `pairs()` pairs rows of the same configuration (GPU, GPU count, model, batch size, prompt and
  generated lengths, weights, framework) that differ in one field only (precision or batch size).
- `finetune_pairs()` pairs fine-tuning runs of one configuration that differ in method (QLoRA / LoRA).
- `penalty()` is what a trap costs against its fix for a configuration: the pairs on the GPU in
  question (all GPUs when it has none), and the pair nearest the model's size.
- `crossover()` is the model size above which a format starts saving energy against 16-bit.

Simulated rows are never evidence. This module imports nothing of the advisor or the engine.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from measurements.schema import MeasurementRow

SIXTEEN_BIT = ("fp16", "bf16")


def framework_of(r: MeasurementRow) -> str:
    """Rows written before the framework field were all transformers generate() in eager mode."""
    return getattr(r, "framework", None) or "hf-eager"


def evidence(rows: Iterable[MeasurementRow], task: str | None = None) -> list[MeasurementRow]:
    """Rows that may serve as evidence: never simulated, never superseded."""
    return [r for r in rows if r.is_evidence and (task is None or r.task == task)]


def select(rows: Iterable[MeasurementRow], *, gpu: str | None = None, model_ids: Sequence[str] | None = None,
           model_substring: str | None = None, precision: str | None = None, framework: str | None = None,
           task: str | None = None, kind: str | None = None, source: str | None = None,
           batch_size: int | None = None) -> list[MeasurementRow]:
    """Rows matching every filter given (names already resolved to catalog keys / hub ids)."""
    ids = {m.lower() for m in model_ids} if model_ids else None
    sub = model_substring.lower() if model_substring else None
    out = []
    for r in rows:
        if gpu is not None and r.gpu != gpu:
            continue
        if ids is not None or sub is not None:
            mid = r.model_id.lower()
            if not ((ids is not None and mid in ids) or (sub is not None and sub in mid)):
                continue
        if precision is not None and r.precision != precision:
            continue
        if framework is not None and framework_of(r) != framework:
            continue
        if task is not None and r.task != task:
            continue
        if kind is not None and r.kind != kind:
            continue
        if source is not None and source.lower() not in r.source.lower():
            continue
        if batch_size is not None and r.batch_size != batch_size:
            continue
        out.append(r)
    return out


# ---------------------------------------------------------------------------------------------
# pairs


def config_key(r: MeasurementRow, vary: str) -> tuple[Any, ...]:
    """Everything that defines a configuration except the varied field."""
    key = {"gpu": r.gpu, "gpu_count": r.gpu_count, "model": r.model_id.lower(), "precision": r.precision,
           "batch_size": r.batch_size, "prompt": r.prompt_tokens, "gen": r.gen_tokens, "weights": r.weights,
           "framework": framework_of(r)}
    key.pop({"precision": "precision", "batch_size": "batch_size"}[vary])
    return tuple(key.values())


@dataclass(frozen=True)
class Pair:
    """Two rows of one configuration: `trap` and the best `alt` measured beside it, and how much
    more energy `trap` spends (%, per 1,000 generated tokens; per trained token for fine-tuning)."""

    trap: MeasurementRow
    alt: MeasurementRow
    waste_pct: float

    @classmethod
    def of(cls, trap: MeasurementRow, alt: MeasurementRow) -> Pair:
        """The pair of two inference rows, compared by J per 1,000 generated tokens."""
        return cls(trap, alt, (trap.energy_j_per_1k_tok / alt.energy_j_per_1k_tok - 1.0) * 100.0)  # type: ignore[operator]

    @property
    def gpu(self) -> str:
        return self.trap.gpu

    @property
    def model_id(self) -> str:
        return self.trap.model_id

    @property
    def params_b(self) -> float:
        return self.trap.params_b

    @property
    def batch_size(self) -> int:
        return self.trap.batch_size

    @property
    def ids(self) -> list[str]:
        return [self.trap.id, self.alt.id]


def pairs(rows: Iterable[MeasurementRow], trap: str, alts: Sequence[str], *, vary: str = "precision",
          task: str = "inference", params_of: Callable[[str], float | None] | None = None) -> list[Pair]:
    """Every configuration measured with `trap` and one of `alts` in the varied field; the
    alternative spending the least energy is the pair's `alt`. For batch sizes, `trap` and `alts`
    are batch sizes as strings ("1"; ("next",) pairs with the smallest larger batch measured)."""
    groups: dict[tuple[Any, ...], dict[str, MeasurementRow]] = defaultdict(dict)
    for r in evidence(rows, task):
        if r.energy_j_per_1k_tok is None:
            continue
        val = r.precision if vary == "precision" else str(r.batch_size)
        groups[config_key(r, vary)].setdefault(val, r)
    out = []
    for g in groups.values():
        if trap not in g:
            continue
        if vary == "batch_size" and tuple(alts) == ("next",):
            larger = [int(k) for k in g if int(k) > int(trap)]
            options = [g[str(min(larger))]] if larger else []
        else:
            options = [g[a] for a in alts if a in g]
        if not options:
            continue
        out.append(Pair.of(g[trap], min(options, key=lambda r: r.energy_j_per_1k_tok or math.inf)))
    out.sort(key=lambda p: (p.gpu, p.params_b, p.model_id, p.batch_size))
    return out


def finetune_energy(r: MeasurementRow) -> float | None:
    """A fine-tuning row's energy per trained token (the whole run's, else per step when the row
    does not say how many tokens the run processed)."""
    if r.run_energy_wh and r.tokens_processed:
        return r.run_energy_wh / r.tokens_processed
    return r.energy_j_per_step


def finetune_pairs(rows: Iterable[MeasurementRow], trap: str, alt: str) -> list[Pair]:
    """Fine-tuning runs of one GPU, model, batch, sequence length and weights with method `trap`
    and method `alt` (e.g. qlora against lora), compared by `finetune_energy`."""
    groups: dict[tuple[Any, ...], dict[str, MeasurementRow]] = defaultdict(dict)
    for r in evidence(rows, "finetune"):
        if r.method is not None:
            groups[(r.gpu, r.model_id, r.batch_size, r.seq_len, r.weights)].setdefault(r.method, r)
    out = []
    for g in groups.values():
        if trap in g and alt in g:
            a, b = g[trap], g[alt]
            ea, eb = finetune_energy(a), finetune_energy(b)
            if ea and eb:
                out.append(Pair(a, b, (ea / eb - 1) * 100))
    return out


def scoped(ps: list[Pair], gpu: str | None) -> tuple[list[Pair], str | None]:
    """The pairs of `gpu` when it has any, else all of them; the second item names the fallback."""
    if not gpu:
        return ps, None
    mine = [p for p in ps if p.gpu == gpu]
    if mine or not ps:
        return mine or ps, None
    return ps, "other GPUs"


def nearest(ps: Sequence[Pair], params_b: float | None) -> Pair:
    """The pair nearest in model size (the median waste among equally near ones)."""
    if params_b:
        best = min(abs(math.log(p.params_b / params_b)) for p in ps)
        near = [p for p in ps if abs(math.log(p.params_b / params_b)) - best < 1e-9]
    else:
        near = list(ps)
    ordered = sorted(near, key=lambda p: p.waste_pct)
    return ordered[(len(ordered) - 1) // 2]


@dataclass
class PairSet:
    """Measured pairs and the figures every quote of them gives: the range of the waste, the rows
    cited and the GPUs measured."""

    pairs: list[Pair]

    @property
    def low(self) -> float:
        return min(p.waste_pct for p in self.pairs)

    @property
    def high(self) -> float:
        return max(p.waste_pct for p in self.pairs)

    @property
    def row_ids(self) -> list[str]:
        return pair_row_ids(self.pairs)

    @property
    def gpus(self) -> list[str]:
        return sorted({p.gpu for p in self.pairs})


@dataclass
class Penalty(PairSet):
    """What `trap` costs against its fix, from measured pairs."""

    chosen: Pair
    fallback: str | None = None  # "other GPUs" when the GPU asked about has no pair

    @property
    def waste_pct(self) -> float:
        return self.chosen.waste_pct

    @property
    def median(self) -> float:
        s = sorted(p.waste_pct for p in self.pairs)
        n = len(s)
        return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def pair_row_ids(pairs: Iterable[Pair]) -> list[str]:
    """The rows the pairs cite, each once, in the pairs' order."""
    out: list[str] = []
    for p in pairs:
        out += [i for i in p.ids if i not in out]
    return out


def penalty(rows: Iterable[MeasurementRow], trap: str, alts: Sequence[str], *, gpu: str | None = None,
            params_b: float | None = None, max_params: float | None = None, vary: str = "precision",
            task: str = "inference") -> Penalty | None:
    ps = pairs(rows, trap, alts, vary=vary, task=task)
    if max_params is not None:
        ps = [p for p in ps if p.params_b <= max_params]
    ps, fallback = scoped(ps, gpu)
    if not ps:
        return None
    return Penalty(ps, nearest(ps, params_b), fallback)


# ---------------------------------------------------------------------------------------------
# the crossover


@dataclass
class Crossover:
    """Where a format starts saving energy against 16-bit, from measured pairs.

    `params_b` is the model size where the least-squares line of ln(J ratio) on ln(params) crosses
    zero, kept inside the measured bracket [`losing_up_to`, `saving_from`] (every pair at or below
    `losing_up_to` spends more; some pair at `saving_from` saves); when the line crosses outside
    it, the bracket's geometric middle. None when no measured size saves (`losing_up_to` is then
    the largest size measured): the data cannot place a crossover, and no figure is invented."""

    params_b: float | None
    losing_up_to: float | None
    saving_from: float | None
    pairs: list[Pair] = field(default_factory=list)
    fallback: str | None = None
    method: str = ""
    # which of the cases above, and of the fallbacks, as a stable code (answers word it per language)
    kind: str = ""  # all_spend | smallest_saves | least_squares | bracket_middle
    fallback_kind: str = ""  # no_pair | none_placed

    @property
    def row_ids(self) -> list[str]:
        return pair_row_ids(self.pairs)

    def describe(self) -> str:
        if self.params_b is None:
            return (f"no crossover within the measured sizes: it costs more energy at every size measured, "
                    f"up to {self.losing_up_to:g}B")
        if self.losing_up_to is None:
            return f"about {self.params_b:.1f}B parameters or less ({self.method})"
        return (f"about {self.params_b:.1f}B parameters ({self.method}; measured: more energy at every pair up to "
                f"{self.losing_up_to:g}B, a saving from {self.saving_from:g}B)")


def _ls(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return slope, my - slope * mx


def crossover(rows: Iterable[MeasurementRow], trap: str = "nf4", alts: Sequence[str] = SIXTEEN_BIT, *,
              gpu: str | None = None) -> Crossover | None:
    """The crossover of `trap` against the best of `alts` (on `gpu` when its pairs place one, else
    over every GPU, said in `fallback`)."""
    allp = pairs(rows, trap, alts)
    if not allp:
        return None
    own = [p for p in allp if p.gpu == gpu] if gpu else []
    if own:
        c = _crossover(own)
        if c.params_b is not None:
            return c
    c = _crossover(allp)
    if gpu and not own:
        c.fallback, c.fallback_kind = "no pair on this GPU; every GPU's pairs", "no_pair"
    elif gpu and own:
        c.fallback = "this GPU's pairs place none (no saving measured on it); every GPU's pairs"
        c.fallback_kind = "none_placed"
    return c


def _crossover(ps: list[Pair]) -> Crossover:
    sizes = sorted({p.params_b for p in ps})
    saving = [p.params_b for p in ps if p.waste_pct <= 0]
    if not saving:
        return Crossover(None, sizes[-1], None, ps, method="every measured pair spends more", kind="all_spend")
    hi = min(saving)
    losing = [s for s in sizes if s < hi]
    lo = max(losing) if losing else None
    if lo is None:  # a saving at the smallest size measured: nothing below it to bracket
        return Crossover(hi, None, hi, ps, method="the smallest measured size already saves", kind="smallest_saves")
    slope, icpt = _ls([math.log(p.params_b) for p in ps], [math.log(1 + p.waste_pct / 100) for p in ps])
    x0 = math.exp(-icpt / slope) if slope < 0 else None
    if x0 is not None and lo <= x0 <= hi:
        return Crossover(x0, lo, hi, ps, method=f"least squares of ln(energy ratio) on ln(params) over {len(ps)} "
                                                "measured pairs", kind="least_squares")
    mid = math.sqrt(lo * hi)
    return Crossover(mid, lo, hi, ps, method=f"middle of the measured bracket {lo:g}-{hi:g}B (the least-squares line "
                                             "crosses outside it)", kind="bracket_middle")


# ---------------------------------------------------------------------------------------------
# the named figures: one function each, used by ask, diagnose, compare and the auditor alike

INT8_MIXED_FIXES = ("int8_pure", "fp16", "bf16")


def int8_mixed_penalty(rows: Iterable[MeasurementRow], gpu: str | None = None,
                       params_b: float | None = None) -> Penalty | None:
    """INT8 mixed decomposition (threshold 6.0) against the better of pure INT8 and 16-bit."""
    return penalty(rows, "int8_mixed", INT8_MIXED_FIXES, gpu=gpu, params_b=params_b)


def int8_mixed_vs_pure(rows: Iterable[MeasurementRow], gpu: str | None = None,
                       params_b: float | None = None) -> Penalty | None:
    """INT8 mixed against pure INT8 alone (the one-line fix, llm_int8_threshold=0.0)."""
    return penalty(rows, "int8_mixed", ("int8_pure",), gpu=gpu, params_b=params_b)


def nf4_crossover(rows: Iterable[MeasurementRow], gpu: str | None = None) -> Crossover | None:
    return crossover(rows, "nf4", SIXTEEN_BIT, gpu=gpu)


def nf4_bound(c: Crossover | None) -> float | None:
    """The size up to which NF4 counts as 'small' (costs more than 16-bit): the crossover, or the
    largest measured size where no size saves."""
    if c is None:
        return None
    return c.params_b if c.params_b is not None else c.losing_up_to


def nf4_penalty(rows: Iterable[MeasurementRow], gpu: str | None = None, params_b: float | None = None,
                max_params: float | None = None) -> Penalty | None:
    return penalty(rows, "nf4", SIXTEEN_BIT, gpu=gpu, params_b=params_b, max_params=max_params)


def fp8_penalty(rows: Iterable[MeasurementRow], gpu: str | None = None, params_b: float | None = None,
                mode: str | None = None) -> Penalty | None:
    """FP8 against 16-bit; of one FP8 implementation when `mode` is given (the two cost very differently)."""
    if mode is not None:
        rows = [r for r in rows if r.precision != "fp8" or r.fp8_implementation == mode]
    return penalty(rows, "fp8", SIXTEEN_BIT, gpu=gpu, params_b=params_b)


def batch1_penalty(rows: Iterable[MeasurementRow], gpu: str | None = None,
                   params_b: float | None = None) -> Penalty | None:
    """Batch size 1 against the smallest larger batch measured in the same configuration."""
    return penalty(rows, "1", ("next",), vary="batch_size", gpu=gpu, params_b=params_b)
