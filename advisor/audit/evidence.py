"""Impact from the measurements dataset: paired rows, never typed-in figures.

A comparison pairs rows measured in the same configuration (GPU, model, batch size, prompt and
generation length) that differ only in precision (or only in batch size), and reports the extra
energy per 1,000 generated tokens of the trap against the fix, with the row ids. Simulated rows
are never evidence. With a GPU given, that GPU's pairs are used when the dataset has any; the
answer says when it falls back to other GPUs.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from advisor.messages.text import Msg, msg
from measurements import select
from measurements.schema import MeasurementRow
from measurements.select import Pair, PairSet

PRECISION_LABEL = {
    "fp32": "FP32", "fp16": "FP16", "bf16": "BF16", "fp8": "FP8", "nf4": "NF4",
    "int8_mixed": "INT8 mixed (threshold 6.0)", "int8_pure": "pure INT8 (threshold 0.0)",
}


@dataclass
class Comparison(PairSet):
    """Measured pairs as a finding quotes them, with a note when the GPU asked about has none."""

    scope_note: str | Msg = ""
    chosen: Pair | None = None  # the pair closest to the user's model, or the median one


class Evidence:
    """The dataset as the auditor uses it, loaded once per run."""

    def __init__(self, gpu: str | None = None, rows: list[MeasurementRow] | None = None):
        if rows is None:
            from measurements.store import load_rows

            rows = load_rows()
        # The rules are about Hugging Face code: only HF-generate rows are evidence for them (a vLLM
        # row never stands in for one), and NF4 with double quantisation is not plain NF4.
        self.rows = [r for r in rows if r.is_evidence and r.framework == "hf-eager"
                     and not (r.task == "inference" and r.double_quant)]
        self.gpu = gpu
        self.problems: list[str] = []
        self._memo: dict[tuple, object] = {}  # comparisons are asked for once per finding: compute once per run

    def _cached(self, key: tuple, fn):  # noqa: ANN001, ANN202
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    # -- names -------------------------------------------------------------------------------
    @staticmethod
    def gpu_name(key: str) -> str:
        try:
            from measurements import catalog

            return catalog.resolve_gpu(key).name
        except Exception:  # catalog missing or key unknown: the key is still a faithful name
            return key

    def params_of(self, model_id: str) -> float | None:
        """Parameter count (billions) of a model the dataset has measured."""
        low = model_id.lower()
        for r in self.rows:
            if r.model_id.lower() == low:
                return r.params_b
        return None

    # -- scope ---------------------------------------------------------------------------------
    def _scoped(self, pairs: list[Pair]) -> tuple[list[Pair], str | Msg]:
        scoped, fallback = select.scoped(pairs, self.gpu)
        if fallback is None or self.gpu is None:
            return scoped, ""
        others = ", ".join(sorted({self.gpu_name(p.gpu) for p in pairs}))
        return scoped, msg("impact.scope", gpu=self.gpu_name(self.gpu), others=others)

    @staticmethod
    def _choose(pairs: list[Pair], params_b: float | None) -> Pair:
        return select.nearest(pairs, params_b)

    # -- comparisons ---------------------------------------------------------------------------
    def precision(self, trap: str, alts: tuple[str, ...], *, params_b: float | None = None,
                  max_params: float | None = None, task: str = "inference") -> Comparison:
        """Pairs of `trap` precision against the best of `alts` in the same configuration."""
        return self._cached(("precision", trap, alts, params_b, max_params, task),  # type: ignore[return-value]
                            lambda: self._precision(trap, alts, params_b, max_params, task))

    def _precision(self, trap: str, alts: tuple[str, ...], params_b: float | None, max_params: float | None,
                   task: str) -> Comparison:
        # the pairs of the one evidence layer, so ask, diagnose and audit quote the same figures
        pairs = [p for p in select.pairs(self.rows, trap, alts, task=task)
                 if max_params is None or p.params_b <= max_params]
        pairs.sort(key=lambda p: (p.gpu, p.params_b, p.batch_size))
        scoped, note = self._scoped(pairs)
        comp = Comparison(scoped, note)
        if scoped:
            comp.chosen = self._choose(scoped, params_b)
        return comp

    def nf4_penalty_bound(self) -> tuple[float | None, list[Pair]]:
        """The model size (B params) up to which NF4 spends more energy than 16-bit: the data's
        crossover (measurements.select.nf4_crossover, the figure ask and compare quote)."""
        return self._cached(("nf4_bound",), self._nf4_penalty_bound)  # type: ignore[return-value]

    def _nf4_penalty_bound(self) -> tuple[float | None, list[Pair]]:
        bound = select.nf4_bound(select.nf4_crossover(self.rows, self.gpu))
        if bound is None:
            return None, []
        comp = self.precision("nf4", select.SIXTEEN_BIT, max_params=bound)
        penalty = [p for p in comp.pairs if p.waste_pct > 0]
        return (bound, penalty) if penalty else (None, [])

    def batch(self, *, params_b: float | None = None) -> Comparison:
        """Batch size 1 against the smallest larger batch measured in the same configuration
        (the most conservative saving)."""
        return self._cached(("batch",), self._batch)  # type: ignore[return-value]

    def _batch(self) -> Comparison:
        pairs = select.pairs(self.rows, "1", ("next",), vary="batch_size")
        scoped, note = self._scoped(pairs)
        comp = Comparison(scoped, note)
        if scoped:
            comp.chosen = min(scoped, key=lambda p: p.waste_pct)
        return comp

    def batch_curve(self, pair: Pair) -> list[MeasurementRow]:
        """Every batch size measured in the configuration of `pair`, smallest first."""
        t = pair.trap
        rows = [r for r in self.rows if r.task == "inference" and r.energy_j_per_1k_tok is not None
                and (r.gpu, r.model_id, r.precision, r.prompt_tokens, r.gen_tokens)
                == (t.gpu, t.model_id, t.precision, t.prompt_tokens, t.gen_tokens)]
        return sorted(rows, key=lambda r: r.batch_size)

    def finetune(self, trap: str, alt: str, *, params_b: float | None = None) -> Comparison:
        """Fine-tuning method pairs (e.g. qlora vs lora) on the same GPU, model, batch and
        sequence length, by energy per processed token (or per step)."""
        pairs = select.finetune_pairs(self.rows, trap, alt)
        scoped, note = self._scoped(pairs)
        comp = Comparison(scoped, note)
        if scoped:
            comp.chosen = self._choose(scoped, params_b)
        return comp

    def nightly_rows(self) -> list[MeasurementRow]:
        return [r for r in self.rows if r.nightly_build]

    def describe(self, comp: Comparison, trap_label: str, alt_label: str, per: str = "1k") -> Msg:
        """One sentence: the range, the closest configuration, the GPUs, the row ids. The labels
        are keys of the catalog's [trap] table (a precision or method as the rules name it); `per` is
        the energy's unit, "1k" (per 1k generated tokens) or "token" (per trained token)."""
        gpus = ", ".join(self.gpu_name(g) for g in comp.gpus)
        c = comp.chosen
        assert c is not None
        rng: Msg | str = (msg("impact.range", lo=_pct(comp.low), hi=_pct(comp.high)) if len(comp.pairs) > 1
                          else _pct(comp.low))
        near = msg("impact.closest", model=c.model_id, params=f"{c.params_b:g}", bs=c.trap.batch_size,
                   gpu=self.gpu_name(c.gpu), pct=_pct(c.waste_pct), trap_id=c.trap.id, alt_id=c.alt.id)
        text = msg("impact.measured_one" if len(comp.pairs) == 1 else "impact.measured_many", trap=msg(f"trap.{trap_label}"),
                   rng=rng, alt=msg(f"trap.{alt_label}"), n=len(comp.pairs), gpus=gpus, near=near,
                   per=msg(f"impact.per_{per}"))
        if comp.scope_note:
            text = msg("impact.scoped", text=text, note=comp.scope_note)
        return text


def _pct(v: float) -> str:
    return f"{v:+.0f}%"


def median(values: list[float]) -> float:
    return statistics.median(values)
