"""PLAN: "LoRA or QLoRA (or full fine-tuning) for model X on my GPU, with budget B?"

The answer holds, for each strategy: the VRAM breakdown by component (advisor.finetune_memory),
a fit matrix over every catalog GPU (fits / tight / OOM, with and without gradient checkpointing),
time, energy, cost and CO2 per run on each GPU where it fits (advisor.finetune_time, from the
measured fine-tuning rows), a recommendation with its reasons and a ready configuration (peft +
transformers Python and YAML), and the risks.

Entry points: `plan(PlanRequest)`, `plan_from_text(text)` and `run(query)` (the protocols
dispatcher and the chat's /plan).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from advisor import derive
from advisor.answer import Alert, Answer, Citation, Provenance, Recommendation, Table, mood_for_waste
from advisor.finetune_memory import (
    DeviceOverheads,
    MemoryEstimate,
    TrainSetup,
    device_overheads,
    estimate_training,
    module_names,
    normalize_optimizer,
    parse_target_modules,
    setup_from_row,
)
from advisor.finetune_time import Calibration, RunEstimate, Workload, calibrations, estimate_run, shipped_fits
from advisor.messages import For
from advisor.messages.derivation import derivation_text
from measurements import catalog
from measurements.catalog import UnknownName
from measurements.schema import GPU, ModelArch, Region
from measurements.store import load_rows

# Product policy (like the mood thresholds): a run whose predicted device memory comes within this
# share of the card's VRAM is "tight": allocator fragmentation and short-lived buffers the estimate
# does not list can tip it over.
TIGHT_SHARE = 0.10
STRATEGIES: tuple[str, ...] = ("full", "lora", "qlora")
LABEL = {"full": "full fine-tuning", "lora": "LoRA", "qlora": "QLoRA"}  # English; answers use _label(s, lang)


def _label(strategy: str, lang: str = "en") -> str:
    return For(lang)(f"plan.{strategy}")


class PlanRequest(BaseModel):
    """What a fine-tuning plan needs; everything but the model has a stated default."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    examples: int | None = Field(default=None, ge=1)
    avg_tokens: float | None = Field(default=None, gt=0)
    tokens: float | None = Field(default=None, gt=0, description="tokens per epoch, instead of examples")
    seq_len: int | None = Field(default=None, ge=16, le=1_048_576)
    epochs: float = Field(default=1, gt=0, le=1000)
    method: Literal["full", "lora", "qlora", "compare"] = "compare"
    rank: int = Field(default=16, ge=1, le=1024)
    target_modules: str = "all-linear"
    batch_size: int = Field(default=1, ge=1, le=4096)
    grad_accum: int = Field(default=1, ge=1, le=4096)
    grad_checkpointing: bool | None = Field(default=None, description="None: off where it fits, else on")
    optimizer: str = "adamw"
    double_quant: bool = True
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    gpus: list[str] = Field(default_factory=list)
    vram_gb: float | None = Field(default=None, gt=0, le=1024)
    budget_usd: float | None = Field(default=None, gt=0)
    region: str | None = None
    pue: float | None = Field(default=None, ge=1)
    gpu_price_usd_h: float | None = Field(default=None, gt=0, description="rental price overriding the catalog")
    lang: Literal["en", "zh"] = "en"

    @field_validator("optimizer")
    @classmethod
    def _opt(cls, v: str) -> str:
        return normalize_optimizer(v)

    @field_validator("target_modules")
    @classmethod
    def _targets(cls, v: str) -> str:
        parse_target_modules(v)
        return v


class Option(BaseModel):
    """One strategy on one GPU: the setting chosen for it, its memory and its run."""

    model_config = ConfigDict(extra="forbid")

    strategy: str
    gpu: str
    grad_checkpointing: bool
    status: Literal["fits", "tight", "OOM"]
    device_gb: float
    vram_gb: float
    run: RunEstimate | None = None
    owned: bool = Field(default=False, description="the user's own GPU: the run costs its electricity")

    @property
    def kwh(self) -> float | None:
        return self.run.cost.kwh if self.run and self.run.cost else None

    @property
    def usd(self) -> float | None:
        """Own GPU: the electricity. Otherwise the rental (electricity included); None without a price."""
        if self.run is None:
            return None
        if self.owned:
            return self.run.cost.usd if self.run.cost else None
        return self.run.rental_usd


# --- the plan -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _evidence() -> tuple[tuple[Calibration, ...], DeviceOverheads, tuple[float, int]]:
    """Calibration rows, device overheads and the estimator's validation over the measured rows."""
    rows = load_rows()
    cal = tuple(calibrations(rows))
    ov = device_overheads(rows)
    errs = []
    for r in rows:
        if r.task == "finetune" and r.kind == "measured" and r.peak_mem_alloc_gb:
            arch = catalog.model_by_hub_id(r.model_id)
            if arch is None:
                continue
            try:
                est = estimate_training(arch, setup_from_row(r))
            except ValueError:
                continue
            errs.append(abs(est.peak_allocated_gb / r.peak_mem_alloc_gb - 1) * 100)
    return cal, ov, (max(errs) if errs else float("nan"), len(errs))


def _setup(req: PlanRequest, strategy: str, seq: int, gc: bool, gpu: GPU | None = None) -> TrainSetup:
    fp16 = gpu is not None and not gpu.bf16_support
    weights = None
    if strategy != "qlora" and fp16:
        weights = "fp16"
    return TrainSetup(method=strategy, weights=weights, double_quant=req.double_quant,  # type: ignore[arg-type]
                      lora_rank=req.rank, target_modules=parse_target_modules(req.target_modules),
                      lora_dropout=req.lora_dropout if strategy != "full" else 0.0, batch_size=req.batch_size,
                      seq_len=seq, grad_accum=req.grad_accum, grad_checkpointing=gc,
                      optimizer=req.optimizer)  # type: ignore[arg-type]


def _device_gb(est: MemoryEstimate, ov: DeviceOverheads) -> float:
    return est.device_total_gb(ov.reserve_ratio, ov.context_gb)


def _status(device_gb: float, vram: float) -> Literal["fits", "tight", "OOM"]:
    if device_gb <= vram * (1 - TIGHT_SHARE):
        return "fits"
    return "tight" if device_gb <= vram else "OOM"


_RANK = {"fits": 0, "tight": 1, "OOM": 2}


def _fmt_h(hours: float) -> str:
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:.1f} h"


def _usd(x: float | None) -> str:
    if x is None:
        return "-"
    return f"${x:,.2f}" if x >= 0.01 else f"${x:.4f}"


def plan(req: PlanRequest) -> Answer:
    """The fine-tuning plan for `req` (see the module docstring)."""
    m = For(req.lang)
    try:
        arch = catalog.resolve_model(req.model)
    except UnknownName as err:
        return _error(req, str(err))
    if arch.num_experts:
        return _error(req, m("plan.moe", model=arch.name))
    try:
        user_gpus = [catalog.resolve_gpu(g) for g in req.gpus]
        region = catalog.resolve_region(req.region or "us")
    except UnknownName as err:
        return _error(req, str(err))

    defaults: list[str] = []
    default_seq = int(catalog.factor("default_finetune_seq_len"))
    seq = req.seq_len or min(default_seq, arch.context_length)
    if req.seq_len is None:
        defaults.append(m("plan.default_seq", seq=seq, default=f"{default_seq:,}"))
    if req.seq_len and req.seq_len > arch.context_length:
        return _error(req, m("plan.seq_too_long", seq=req.seq_len, model=arch.name, ctx=arch.context_length))
    if req.examples is None and req.tokens is None:
        work = Workload(tokens=1_000_000, epochs=req.epochs)
        defaults.append(m("plan.default_dataset"))
    elif req.tokens is not None:
        work = Workload(tokens=req.tokens, epochs=req.epochs)
    else:
        if req.avg_tokens is None:
            defaults.append(m("plan.default_avg", seq=seq))
        work = Workload(examples=req.examples, avg_tokens=req.avg_tokens or seq, epochs=req.epochs)
    if req.region is None:
        defaults.append(m("plan.default_region", region=_region_name(region, m.lang), price=region.price_usd_kwh,
                          gco2=region.grid_gco2_kwh))
    strategies = list(STRATEGIES) if req.method == "compare" else [req.method]
    gc_options = [False, True] if req.grad_checkpointing is None else [req.grad_checkpointing]

    cal, ov, (val_max, val_n) = _evidence()
    all_gpus = list(catalog.gpus())
    if req.vram_gb is not None and not user_gpus:
        user_gpus = [g for g in all_gpus if abs(g.vram_gb - req.vram_gb) <= 0.5]
    targets = user_gpus or all_gpus

    # memory per strategy and checkpointing setting (the 16-bit dtype does not change the bytes)
    mem: dict[tuple[str, bool], MemoryEstimate] = {}
    for s in strategies:
        for gc in (False, True):
            mem[(s, gc)] = estimate_training(arch, _setup(req, s, seq, gc))

    # fit matrix over the catalog: the better status of the allowed checkpointing settings
    options: dict[tuple[str, str], Option] = {}
    for g in all_gpus:
        for s in strategies:
            best: Option | None = None
            for gc in gc_options:
                dev = _device_gb(mem[(s, gc)], ov)
                o = Option(strategy=s, gpu=g.key, grad_checkpointing=gc, status=_status(dev, g.vram_gb),
                           device_gb=dev, vram_gb=g.vram_gb)
                # the better status; among out-of-memory settings the smaller need
                if best is None or _RANK[o.status] < _RANK[best.status] or (
                        o.status == best.status == "OOM" and o.device_gb < best.device_gb):
                    best = o
            assert best is not None
            options[(s, g.key)] = best

    # runs where it fits, on the GPUs the user has (or all of them)
    for g in targets:
        for s in strategies:
            o = options[(s, g.key)]
            if o.status == "OOM":
                continue
            price = req.gpu_price_usd_h if (req.gpu_price_usd_h and len(targets) == 1) else None
            o.owned = bool(req.gpus) and price is None
            # the law calibrated on the shipped rows (finetune_params.csv); the user's own rows anchor it
            o.run = estimate_run(arch, _setup(req, s, seq, o.grad_checkpointing, g), g, work, region, req.pue,
                                 price, list(cal), shipped_fits() or None)

    ans = Answer(protocol="plan", title=m("plan.title", model=arch.name), lang=req.lang,
                 query=req.model_dump(exclude_none=True), defaults_applied=defaults)
    ans.query["model_key"] = arch.key
    ans.query["seq_len"] = seq
    ans.query["trained_tokens"] = work.total_tokens(seq)
    _breakdown_table(ans, arch, strategies, mem, ov, gc_options)
    _fit_table(ans, arch, strategies, options, all_gpus, {g.key for g in user_gpus})
    runs = [o for g in targets for s in strategies if (o := options[(s, g.key)]).run is not None]
    _runs_table(ans, runs)
    _recommend(ans, req, arch, strategies, options, targets, runs, region, work, seq)
    _risks(ans, req, arch, strategies, options, targets, mem, seq, cal)
    if req.method in ("lora", "qlora") and ans.extra.get("recommended"):
        _greener_method(ans, req, arch, targets, seq, work, region, cal, ov, gc_options)
    _provenance(ans, arch, mem, ov, runs, val_max, val_n, region)
    _seed004(ans, arch, mem, ov)
    return ans


# --- tables ---------------------------------------------------------------------------------------


# the breakdown's rows in order; each one's label is plan.c_<key> in the message catalog
_COMPONENT_ROWS: tuple[str, ...] = ("weights", "weights_quantised", "quant_state", "weights_unquantised", "master_weights",
                                    "lora_adapters", "gradients", "optimizer", "optimizer_step_temp", "activations",
                                    "logits", "transient")


def _region_name(region: Region, lang: str) -> str:
    return region.name_zh if lang == "zh" and region.name_zh else region.name


def _breakdown_table(ans: Answer, arch: ModelArch, strategies: list[str], mem: dict, ov: DeviceOverheads,
                     gc_options: list[bool]) -> None:
    """One column per strategy (with checkpointing on where the user allowed it, else as asked)."""
    m = For(ans.lang)
    gc = True in gc_options
    ests = {s: mem[(s, gc)] for s in strategies}
    present = {c.key for e in ests.values() for c in e.components}
    rows: list[list] = []
    for key in _COMPONENT_ROWS:
        if key not in present:
            continue
        row: list = [m(f"plan.c_{key}")]
        for s in strategies:
            try:
                row.append(round(ests[s].component(key).gb, 2))
            except KeyError:
                row.append(None)
        rows.append(row)
    rows.append([m("plan.peak_alloc"), *[round(ests[s].peak_allocated_gb, 2) for s in strategies]])
    rows.append([m("plan.peak_phase"), *[m.word("phase", ests[s].peak_phase) for s in strategies]])
    rows.append([m("plan.on_device"), *[round(_device_gb(ests[s], ov), 2) for s in strategies]])
    first = ests[strategies[0]].setup
    notes = [m("plan.note_components"),
             m("plan.note_setup", gc=m("plan.on" if gc else "plan.off"), bs=first.batch_size, seq=first.seq_len,
               rank=first.lora_rank)]
    if ov.measured:
        notes.append(m("plan.note_reserve", ratio=ov.reserve_ratio, ctx=ov.context_gb, n=len(ov.row_ids)))
    else:
        notes.append(m("plan.note_no_reserve"))
    ans.tables.append(Table(title=m("plan.breakdown_title", model=arch.name),
                            columns=[m("plan.col_component"), *[_label(s, m.lang) for s in strategies]],
                            rows=rows, notes=notes))


def _fit_table(ans: Answer, arch: ModelArch, strategies: list[str], options: dict, gpus: list[GPU],
               yours: set[str]) -> None:
    m = For(ans.lang)
    rows = []
    for g in sorted(gpus, key=lambda g: (g.vram_gb, g.key)):
        cells: list = [g.name + (m("plan.yours") if g.key in yours else ""), g.vram_gb]
        for s in strategies:
            o = options[(s, g.key)]
            cells.append(f"{m(f'plan.status_{o.status}')} {o.device_gb:.1f} GB"
                         + (m("plan.checkpointing_mark") if o.grad_checkpointing else ""))
        rows.append(cells)
    ans.tables.append(Table(
        title=m("plan.fit_title"), columns=["GPU", m("plan.col_vram"), *[_label(s, m.lang) for s in strategies]],
        rows=rows, notes=[m("plan.fit_note", share=100 * (1 - TIGHT_SHARE))]))
    ans.extra["fit_matrix"] = {g.key: {s: options[(s, g.key)].status for s in strategies} for g in gpus}
    ans.extra["device_gb"] = {s: {g.key: round(options[(s, g.key)].device_gb, 3) for g in gpus} for s in strategies}


def _runs_table(ans: Answer, runs: list[Option]) -> None:
    m = For(ans.lang)
    rows = []
    for o in sorted(runs, key=lambda o: (o.kwh if o.kwh is not None else math.inf)):
        r = o.run
        assert r is not None
        rows.append([_label(o.strategy, m.lang), o.gpu, m("plan.on" if o.grad_checkpointing else "plan.off"),
                     round(o.device_gb, 1), _fmt_h(r.hours), None if o.kwh is None else round(o.kwh, 4),
                     _usd(r.rental_usd), _usd(r.cost.usd if r.cost else None),
                     None if not r.cost else round(r.cost.kg_co2, 4), m.word("tier", r.step.tier)])
    ans.tables.append(Table(
        title=m("plan.runs_title"), rows=rows,
        columns=[m("plan.col_strategy"), "GPU", m("plan.col_checkpointing"), m("plan.col_device_gb"),
                 m("plan.col_time"), "kWh", m("plan.col_cloud"), m("plan.col_electricity"), m("plan.col_co2"),
                 m("col.tier")],
        notes=[m("plan.runs_note_cost"), m("plan.runs_note_time")]))
    ans.extra["runs"] = [
        {"strategy": o.strategy, "gpu": o.gpu, "grad_checkpointing": o.grad_checkpointing, "status": o.status,
         "device_gb": round(o.device_gb, 3), "hours": o.run.hours if o.run else None, "kwh": o.kwh,
         "usd": o.usd, "rental_usd": o.run.rental_usd if o.run else None,
         "electricity_usd": o.run.cost.usd if o.run and o.run.cost else None,
         "kg_co2": o.run.cost.kg_co2 if o.run and o.run.cost else None,
         "tier": o.run.step.tier if o.run else None,
         "row_ids": o.run.step.row_ids if o.run else []}
        for o in runs]


# --- recommendation and ready configuration --------------------------------------------------------


def _recommend(ans: Answer, req: PlanRequest, arch: ModelArch, strategies: list[str], options: dict,
               targets: list[GPU], runs: list[Option], region: Region, work: Workload, seq: int) -> None:
    m = For(req.lang)
    lg = m.lang
    fitting = [o for o in runs if o.kwh is not None]
    if not any(options[(s, g.key)].status != "OOM" for s in strategies for g in targets):
        _no_fit(ans, req, arch, strategies, options, targets, seq)
        return
    if not fitting:
        ans.mood = "gray"
        ans.headline = m("plan.no_rows_headline", model=arch.name)
        ans.warnings.append(m("plan.no_rows_warning"))
        return
    within = fitting
    if req.budget_usd is not None:
        within = [o for o in fitting if o.usd is not None and o.usd <= req.budget_usd]
        over = [o for o in fitting if o.usd is not None and o not in within]
        unpriced = [o for o in fitting if o.usd is None]
        if unpriced:
            ans.caveats.append(m("plan.unpriced", n=len(unpriced), gpus=m.join(sorted({o.gpu for o in unpriced}))))
        if over:
            cheapest_over = min(over, key=lambda o: o.usd or math.inf)
            ans.alerts.append(Alert(
                code="FT_BUDGET", title=m("plan.over_title"), mood="orange" if within else "red",
                message=m("plan.over_msg", n=len(over), total=len(fitting), budget=req.budget_usd,
                          strategy=_label(cheapest_over.strategy, lg), gpu=cheapest_over.gpu,
                          usd=_usd(cheapest_over.usd)),
                fix=m("plan.over_fix")))
        if not within:
            best_cost = min((o for o in fitting if o.usd is not None), key=lambda o: o.usd or math.inf)
            ans.mood = "red"
            ans.headline = m("plan.no_budget", budget=req.budget_usd, strategy=_label(best_cost.strategy, lg),
                             gpu=best_cost.gpu, usd=_usd(best_cost.usd))
            ans.extra["recommended"] = None
            return
    # the greenest run that fits (and fits the budget); money breaks ties. Runs timed from rows on
    # the same GPU come first: a transfer to another GPU is a low-confidence guess of its power.
    priced = [o for o in within if o.usd is not None] or within
    sure = [o for o in priced if o.run and o.run.step.confidence != "low"] or priced
    best = min(sure, key=lambda o: (o.kwh, o.usd if o.usd is not None else math.inf, _RANK[o.status]))
    if sure is not priced:
        greener = [o for o in priced if o not in sure and o.kwh is not None and o.kwh < best.kwh]
        if greener:
            g0 = min(greener, key=lambda o: o.kwh or math.inf)
            ans.caveats.append(m("plan.greener_guess", strategy=_label(g0.strategy, lg), gpu=g0.gpu, kwh=g0.kwh))
    assert best.run is not None and best.kwh is not None
    g = catalog.resolve_gpu(best.gpu)
    reasons = [m("plan.r_peak", gb=best.device_gb, vram=g.vram_gb, status=m(f"plan.status_{best.status}"))
               + (m("plan.r_with_gc") if best.grad_checkpointing else ""),
               m("plan.r_run", time=_fmt_h(best.run.hours), tokens=work.total_tokens(seq), kwh=best.kwh,
                 co2=best.run.cost.kg_co2, region=_region_name(region, lg)) if best.run.cost else ""]
    if best.owned and best.run.cost:
        reasons.append(m("plan.r_owned", usd=_usd(best.run.cost.usd)))
    elif best.run.rental_usd is not None and best.run.price is not None:
        reasons.append(m("plan.r_rental", usd=_usd(best.run.rental_usd), provider=best.run.price.provider,
                         price=best.run.price.usd_per_hour, as_of=best.run.price.as_of))
    others = [o for o in within if o is not best and o.kwh]
    for s in strategies:
        alt = [o for o in others if o.strategy == s and o.strategy != best.strategy]
        if alt:
            a = min(alt, key=lambda o: o.kwh or math.inf)
            reasons.append(m("plan.r_other", strategy=_label(s, lg), time=_fmt_h(a.run.hours),  # type: ignore[union-attr]
                             kwh=a.kwh, gpu=a.gpu, pct=(a.kwh / best.kwh - 1) * 100))  # type: ignore[operator]
    if best.strategy == "qlora":
        reasons.append(m("plan.r_qlora"))
    ans.recommendations.append(Recommendation(
        title=m("plan.rec_title", strategy=_label(best.strategy, lg), gpu=g.name,
                gc=m("plan.with_gc") if best.grad_checkpointing else ""),
        detail=m.join([r for r in reasons if r], "clause"),
        impact=m("plan.rec_impact", kwh=best.kwh, usd=_usd(best.usd))))
    setup = _setup(req, best.strategy, seq, best.grad_checkpointing, g)
    ans.recommendations.append(Recommendation(title=m("plan.ready"), code=_python_config(arch, setup, req, work),
                                              language="python"))
    ans.recommendations.append(Recommendation(title=m("plan.yaml"), code=_yaml_config(arch, setup, req, work),
                                              language="yaml"))
    # waste of what the user asked for, against the recommendation
    asked = [o for o in within if req.method != "compare" and o.strategy == req.method]
    waste = 0.0
    if asked:
        waste = derive.waste_pct(min(o.kwh for o in asked if o.kwh), best.kwh)
    ans.waste_pct = waste if req.method != "compare" else None
    ans.mood = mood_for_waste(waste, evidence_ok=best.run.step.confidence != "low")
    ans.headline = m("plan.headline", strategy=_label(best.strategy, lg), gpu=g.name, gb=best.device_gb,
                     time=_fmt_h(best.run.hours), kwh=best.kwh, usd=_usd(best.usd))
    ans.extra["recommended"] = {"strategy": best.strategy, "gpu": best.gpu, "grad_checkpointing": best.grad_checkpointing,
                                "device_gb": round(best.device_gb, 3), "kwh": best.kwh, "usd": best.usd,
                                "hours": best.run.hours, "tier": best.run.step.tier}


def _greener_method(ans: Answer, req: PlanRequest, arch: ModelArch, targets: list[GPU], seq: int, work: Workload,
                    region: Region, cal: tuple[Calibration, ...], ov: DeviceOverheads, gc_options: list[bool]) -> None:
    """The user asked for one of LoRA / QLoRA: would the other fit on the same GPU and use less energy?"""
    rec = ans.extra["recommended"]
    other = "qlora" if req.method == "lora" else "lora"
    g = catalog.resolve_gpu(rec["gpu"])
    best: Option | None = None
    for gc in gc_options:
        dev = _device_gb(estimate_training(arch, _setup(req, other, seq, gc)), ov)
        o = Option(strategy=other, gpu=g.key, grad_checkpointing=gc, status=_status(dev, g.vram_gb), device_gb=dev,
                   vram_gb=g.vram_gb)
        if o.status == "OOM":
            continue
        o.run = estimate_run(arch, _setup(req, other, seq, gc, g), g, work, region, req.pue, None, list(cal),
                             shipped_fits() or None)
        if o.kwh is not None and (best is None or o.kwh < (best.kwh or math.inf)):
            best = o
    if best is None or best.kwh is None or best.kwh >= rec["kwh"]:
        return
    waste = derive.waste_pct(rec["kwh"], best.kwh)
    ans.waste_pct = waste
    ans.mood = mood_for_waste(waste, evidence_ok=best.run is not None and best.run.step.confidence != "low")
    ans.extra["alternative"] = {"strategy": other, "gpu": g.key, "grad_checkpointing": best.grad_checkpointing,
                                "status": best.status, "device_gb": round(best.device_gb, 3), "kwh": best.kwh}
    m = For(req.lang)
    ans.alerts.append(Alert(
        code="FT_GREENER_METHOD", title=m("plan.greener_title", strategy=_label(other, m.lang)), mood=ans.mood,
        message=m("plan.greener_msg", strategy=_label(other, m.lang), gpu=g.name, status=m(f"plan.status_{best.status}"),
                  gb=best.device_gb, gc=m("plan.r_with_gc") if best.grad_checkpointing else "", kwh=best.kwh,
                  rec_kwh=rec["kwh"], asked=_label(req.method, m.lang), waste=waste),
        fix=f"--method {other}" + (m("plan.greener_tight") if best.status == "tight" else ""),
        impact_pct=waste))


def _no_fit(ans: Answer, req: PlanRequest, arch: ModelArch, strategies: list[str], options: dict,
            targets: list[GPU], seq: int) -> None:
    m = For(req.lang)
    need = min(options[(s, g.key)].device_gb for s in strategies for g in targets)
    where = ", ".join(sorted({g.key for g in targets}))
    ans.mood = "gray"
    ans.extra["recommended"] = None
    ans.headline = m("plan.no_fit_headline", model=arch.name, where=where if len(targets) < 6 else m("plan.any_gpu"),
                     strategies=m("plan.or").join(_label(s, m.lang) for s in strategies), need=need)
    fixes = []
    if "qlora" not in strategies:
        q = estimate_training(arch, _setup(req, "qlora", seq, True))
        fixes.append(m("plan.fix_qlora", gb=q.peak_allocated_gb))
    if req.batch_size > 1:
        fixes.append(m("plan.fix_batch"))
    if seq > 512:
        fixes.append(m("plan.fix_seq", seq=seq))
    fixes.append(m("plan.fix_shard"))
    ans.alerts.append(Alert(code="FT_NO_FIT", title=m("plan.no_fit_title"), mood="red",
                            message=ans.headline, fix=m.join(fixes, "clause")))
    ans.errors.append(m("plan.no_fit_error"))


def _targets_list(arch: ModelArch, setup: TrainSetup) -> list[str]:
    return module_names(arch.model_type, setup.target_modules)


_HF_OPT = {"adamw": "adamw_torch", "adamw_fused": "adamw_torch_fused", "adamw_8bit": "adamw_bnb_8bit",
           "paged_adamw_8bit": "paged_adamw_8bit", "paged_adamw_32bit": "paged_adamw_32bit", "sgd": "sgd"}


def _python_config(arch: ModelArch, setup: TrainSetup, req: PlanRequest, work: Workload) -> str:
    dtype = "float16" if setup.weight_format == "fp16" else "bfloat16"
    lines = ["import torch", "from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training",
             "from transformers import AutoModelForCausalLM, BitsAndBytesConfig, TrainingArguments", ""]
    if setup.method == "qlora":
        lines += ["quant = BitsAndBytesConfig(",
                  '    load_in_4bit=True, bnb_4bit_quant_type="nf4",',
                  f"    bnb_4bit_compute_dtype=torch.{dtype}, bnb_4bit_use_double_quant={setup.double_quant},",
                  ")",
                  f'model = AutoModelForCausalLM.from_pretrained("{arch.hub_id}", quantization_config=quant,',
                  f"                                             dtype=torch.{dtype})",
                  "# casts embeddings, norms and lm_head to fp32 (counted in the plan's memory)",
                  "model = prepare_model_for_kbit_training(model, use_gradient_checkpointing="
                  f"{setup.grad_checkpointing})"]
    else:
        lines += [f'model = AutoModelForCausalLM.from_pretrained("{arch.hub_id}", dtype=torch.{dtype})']
    if setup.method != "full":
        lines += ["lora = LoraConfig(",
                  f"    r={setup.lora_rank}, lora_alpha={2 * setup.lora_rank}, lora_dropout={setup.lora_dropout},",
                  f"    target_modules={_targets_list(arch, setup)!r},",
                  '    bias="none", task_type="CAUSAL_LM",', ")",
                  "model = get_peft_model(model, lora)", "model.print_trainable_parameters()"]
    lines += ["",
              "args = TrainingArguments(",
              '    output_dir="out",',
              f"    num_train_epochs={work.epochs:g},",
              f"    per_device_train_batch_size={setup.batch_size},",
              f"    gradient_accumulation_steps={setup.grad_accum},",
              f"    gradient_checkpointing={setup.grad_checkpointing},",
              '    gradient_checkpointing_kwargs={"use_reentrant": False},',
              f'    optim="{_HF_OPT[setup.optimizer]}",',
              "    learning_rate=2e-4," if setup.method != "full" else "    learning_rate=1e-5,",
              "    # the plan's memory and time follow a loop without autocast, as measured on the H100;",
              "    # bf16=True (autocast) changes the activation dtypes",
              "    bf16=False,",
              '    save_strategy="epoch",  # rare saves: each one is a power and time spike',
              ")",
              f"# tokenize to at most {setup.seq_len} tokens per example, then Trainer(model=model, args=args, ...)"]
    return "\n".join(lines)


def _yaml_config(arch: ModelArch, setup: TrainSetup, req: PlanRequest, work: Workload) -> str:
    out = [f"model: {arch.hub_id}", f"method: {setup.method}"]
    if setup.method == "qlora":
        out += ["quantization:", "  load_in_4bit: true", "  bnb_4bit_quant_type: nf4",
                "  bnb_4bit_compute_dtype: bfloat16", f"  bnb_4bit_use_double_quant: {str(setup.double_quant).lower()}",
                "  prepare_model_for_kbit_training: true"]
    if setup.method != "full":
        out += ["lora:", f"  r: {setup.lora_rank}", f"  lora_alpha: {2 * setup.lora_rank}",
                f"  lora_dropout: {setup.lora_dropout}", "  target_modules: [" + ", ".join(_targets_list(arch, setup)) + "]"]
    out += ["training:", f"  max_seq_length: {setup.seq_len}", f"  num_train_epochs: {work.epochs:g}",
            f"  per_device_train_batch_size: {setup.batch_size}", f"  gradient_accumulation_steps: {setup.grad_accum}",
            f"  gradient_checkpointing: {str(setup.grad_checkpointing).lower()}",
            f"  optim: {_HF_OPT[setup.optimizer]}", "  bf16: false", "  save_strategy: epoch"]
    return "\n".join(out) + "\n"


# --- risks, provenance, the seed document ------------------------------------------------------------


def _risks(ans: Answer, req: PlanRequest, arch: ModelArch, strategies: list[str], options: dict,
           targets: list[GPU], mem: dict, seq: int, cal: tuple[Calibration, ...]) -> None:
    m = For(req.lang)
    rec = ans.extra.get("recommended")
    if rec:
        o = options[(rec["strategy"], rec["gpu"])]
        margin = (o.vram_gb - o.device_gb) / o.vram_gb * 100
        if o.status == "tight" or margin < 20:
            ans.alerts.append(Alert(
                code="FT_OOM_MARGIN", title=m("plan.margin_title"), mood="yellow" if o.status == "fits" else "orange",
                message=m("plan.margin_msg", margin=margin, vram=o.vram_gb), fix=m("plan.margin_fix")))
    # QLoRA's slower steps, from measured pairs on the same GPU and configuration
    ratios, ids = [], []
    for q in cal:
        if q.method != "qlora":
            continue
        for lo in cal:
            if (lo.method == "lora" and lo.gpu == q.gpu and lo.arch == q.arch and lo.setup.seq_len == q.setup.seq_len
                    and lo.setup.lora_rank == q.setup.lora_rank and lo.setup.grad_checkpointing == q.setup.grad_checkpointing
                    and lo.setup.batch_size == q.setup.batch_size):
                ratios.append(q.step_time_s / lo.step_time_s)
                ids += [q.row_id, lo.row_id]
    if "qlora" in strategies and ratios:
        ratios.sort()
        med = ratios[len(ratios) // 2]
        ans.alerts.append(Alert(
            code="FT_QLORA_SLOWER", title=m("plan.slower_title"), mood="yellow",
            message=m("plan.slower_msg", lo=ratios[0], hi=ratios[-1], med=med, n=len(ratios)),
            impact_pct=(med - 1) * 100,
            citations=[Citation(kind="row", ref=i) for i in sorted(set(ids))[:8]]))
    target_keys = {g.key for g in targets}
    qlora_no_gc = [o for o in options.values() if o.strategy == "qlora" and o.gpu in target_keys
                   and o.status != "OOM" and not o.grad_checkpointing]
    if "qlora" in strategies and arch.kv_heads < arch.heads and qlora_no_gc:
        extra = mem[("qlora", False)].peak_allocated_gb - estimate_training(
            arch, _setup(req, "qlora", seq, False).model_copy(update={"autocast": True})).peak_allocated_gb
        if extra > 0.5:
            ans.alerts.append(Alert(
                code="FT_FP32_ATTENTION", title=m("plan.fp32_title"), mood="orange",
                message=m("plan.fp32_msg", model=arch.name, gb=extra, seq=seq), fix=m("plan.fp32_fix")))
    if "full" in strategies:
        full = mem[("full", True)]
        ans.alerts.append(Alert(
            code="FT_FULL_STATES", title=m("plan.full_title"), mood="yellow",
            message=m("plan.full_msg", model=arch.name, grads=full.component("gradients").gb,
                      opt=full.component("optimizer").gb,
                      share=mem[("lora", True)].params_trainable / full.params_trainable)
            if ("lora", True) in mem else m("plan.full_msg_short", model=arch.name),
            fix=m("plan.full_fix")))
    saving = [r for r in load_rows() if r.task == "finetune" and r.kind == "measured" and "saved every" in (r.notes or "")]
    if saving:
        ans.caveats.append(m("plan.saves", rows=", ".join(r.id for r in saving[:3])))


def _provenance(ans: Answer, arch: ModelArch, mem: dict, ov: DeviceOverheads, runs: list[Option], val_max: float,
                val_n: int, region: Region) -> None:
    m = For(ans.lang)
    note = m("plan.validated", n=val_n, err=val_max) if val_n else m("plan.not_validated")
    ans.provenance.append(Provenance(subject=m("plan.memory_subject", model=arch.key),
                                     tier="interpolated" if val_n else "extrapolated",
                                     method=m("plan.memory_method"),
                                     confidence="high" if val_n else "medium", note=note))
    for o in runs:
        if o.run is None:
            continue
        st = o.run.step
        ans.provenance.append(Provenance(subject=f"{arch.key} / {o.strategy} / {o.gpu}", tier=st.tier,
                                         method=derivation_text(st.method, ans.lang), confidence=st.confidence,
                                         row_ids=st.row_ids, note=derivation_text(st.note, ans.lang)))
    ans.citations.append(Citation(kind="derivation", ref="saved-tensor walk", detail=note))
    ans.citations.append(Citation(kind="derivation", ref="training FLOPs: 2F / 3F",
                                  detail="time and power from the training performance model fitted on the measured rows (advisor.finetune_time)"))
    ans.citations.append(Citation(kind="catalog", ref=f"models/{arch.key}", detail=arch.source))
    ans.citations.append(Citation(kind="catalog", ref=f"regions/{region.key}",
                                  detail=f"price: {region.price_source}; carbon: {region.carbon_source}"))
    prices = {o.run.price.gpu: o.run.price for o in runs if o.run and o.run.price}
    for p in prices.values():
        ans.citations.append(Citation(kind="catalog", ref=f"gpu_prices/{p.gpu}/{p.provider}",
                                      detail=f"${p.usd_per_hour:g}/h as of {p.as_of}: {p.source}"))
    ans.citations.append(Citation(kind="reference", ref="references/finetuning.md"))
    ans.conversions.append(m("plan.kwh_conversion"))


def _seed004(ans: Answer, arch: ModelArch, mem: dict, ov: DeviceOverheads) -> None:
    """Where our figures differ from the LoRA-vs-QLoRA decision document (seed 004), and why."""
    if arch.key != "olmo-7b":
        return
    m = For(ans.lang)
    lines = [m("plan.seed004_layers")]
    if ("lora", True) in mem:
        lo = mem[("lora", True)]
        lines.append(m("plan.seed004_lora", alloc=lo.peak_allocated_gb, device=_device_gb(lo, ov)))
    if ("qlora", True) in mem:
        q = mem[("qlora", True)]
        lines.append(m("plan.seed004_qlora", alloc=q.peak_allocated_gb, fp32=q.component("weights_unquantised").gb))
    lines.append(m("plan.seed004_cost"))
    lines.append(m("plan.seed004_steps"))
    ans.caveats.extend(lines)


def _error(req: PlanRequest | None, msg: str, lang: str | None = None) -> Answer:
    lg = req.lang if req else (lang if lang in ("en", "zh") else "en")
    return Answer(protocol="plan", title=For(lg)("plan.title_error"), mood="gray", errors=[msg],
                  query=req.model_dump(exclude_none=True) if req else {}, lang=lg)  # type: ignore[arg-type]


# --- free text ---------------------------------------------------------------------------------------


def request_from_text(text: str) -> tuple[PlanRequest | None, list[str]]:
    """Read a fine-tuning question into a PlanRequest; the second item lists what was wrong. The
    words are read by the one question parser (advisor.query, its fine-tuning reader)."""
    from advisor.query import QueryError, parse

    try:
        q = parse(text, protocol="plan")
    except QueryError as err:
        return None, list(err.errors)
    return request_from_query(q)


def request_from_query(q) -> tuple[PlanRequest | None, list[str]]:  # q: advisor.query.Query
    fields: dict[str, object] = dict(q.finetune)
    m = For(q.lang)
    fields["lang"] = m.lang
    problems: list[str] = []
    if q.model and q.model_known:
        fields["model"] = q.model
        if q.region and "region" not in q.defaulted:
            fields["region"] = q.region
        if q.pue is not None:
            fields["pue"] = q.pue
        gpus = list(q.compare_gpus) or ([q.gpu] if q.gpu and "gpu" not in q.defaulted else [])
        if gpus:
            fields["gpus"] = gpus
            fields.pop("vram_gb", None)
    elif q.model:
        problems.append(m("plan.not_in_catalog", model=q.model_name or q.model))
    else:
        problems.append(m("plan.name_model"))
    if problems:
        return None, problems
    try:
        return PlanRequest(**fields), []  # type: ignore[arg-type]
    except ValidationError as err:
        from measurements.validation import messages

        return None, messages(err)
    except ValueError as err:
        return None, [str(err)]


def plan_from_text(text: str) -> Answer:
    """Answer a free-text fine-tuning question, e.g. 'LoRA or QLoRA for OLMo-7B on a 24GB GPU, budget $20'."""
    req, problems = request_from_text(text)
    if req is None:
        ans = _error(None, "; ".join(problems))
        ans.query = {"text": text}
        return ans
    ans = plan(req)
    ans.query["text"] = text
    return ans


def run(query) -> Answer:  # query: advisor.query.Query
    """The protocols dispatcher's entry: the parsed question, fine-tuning fields included."""
    req, problems = request_from_query(query)
    if req is None:
        ans = _error(None, For(query.lang).join(problems, "clause"), query.lang)
        ans.query = {"text": query.text}
        return ans
    ans = plan(req)
    ans.query["text"] = query.text
    return ans
