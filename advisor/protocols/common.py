"""Helpers every protocol shares: configurations from a query, estimates, workloads, money and
carbon (through advisor.derive only), the energy-trap detectors, charts and citations."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from advisor import derive
from advisor.answer import (
    Alert,
    Answer,
    BarItem,
    Chart,
    Citation,
    CostLine,
    Mood,
    Recommendation,
    Table,
    mood_for_waste,
)
from advisor.estimate import Config, Dataset, Estimate, dataset, estimate, fp8_default, serving, weaker_tier
from advisor.messages import For
from advisor.messages.derivation import derivation_text
from advisor.query import Query
from measurements import catalog, select

# Product policy (like the mood thresholds in advisor.answer), not measured figures: which batch
# sizes count as "the same job" for each use case. Interactive chat can only batch the few users
# who arrive together; an API server batches concurrent requests; offline jobs batch freely up to
# the catalog's max_batch_size.
# batch caps per use case and the production minimum come from factors.csv (seed 003's batch guide)
USE_CASE_MAX_BATCH_FACTOR = {"interactive_chat": "chat_max_batch_size", "production_api": "api_max_batch_size"}
# Precisions the advisor ranks everywhere. BF16 joins them where it was measured for the model on
# the GPU (H100 and H200 rows): elsewhere it is FP16 relabelled or extrapolated across sizes, which
# could put a guess ahead of a measurement of the same job. FP32 is answered on request only.
RANKED_PRECISIONS = ("fp16", "nf4", "int8_pure", "int8_mixed", "fp8")
# The basis for monthly figures when the question states no workload: per million requests.
DEFAULT_MONTHLY_REQUESTS = int(catalog.factor("default_monthly_requests"))


def ds() -> Dataset:
    return dataset()


def ranked_precisions(q: Query) -> list[str]:
    """The precisions ranked for a question: RANKED_PRECISIONS, with BF16 after FP16 where the
    dataset has a BF16 row of this model on this GPU."""
    precs = list(RANKED_PRECISIONS)
    model = config(q).model
    if q.gpu and any(p.model == model for p in ds().by_gp.get((q.gpu, "bf16"), [])):
        precs.insert(1, "bf16")
    return precs


def gpu_of(key: str | None):
    if not key:
        return None
    try:
        return catalog.resolve_gpu(key)
    except catalog.UnknownName:
        return None


def arch_of(q: Query):
    if not q.model or not q.model_known:
        return None
    try:
        return catalog.resolve_model(q.model)
    except catalog.UnknownName:
        return None


def model_label(q: Query) -> str:
    a = arch_of(q)
    if a is not None:
        return a.name
    m = For(q.lang)
    return q.model_name or (m("common.a_model", size=q.model_params_b) if q.model_params_b else m("common.your_model"))


def gpu_label(key: str | None, lang: str | None = "en") -> str:
    g = gpu_of(key)
    return g.name if g else (key or For(lang)("common.any_gpu"))


def gpu_short(key: str | None) -> str:
    """The GPU's name without the vendor words, for table cells."""
    return gpu_label(key).replace("NVIDIA ", "").replace("GeForce ", "")


def plabel(p: str, lang: str | None = "en") -> str:
    return For(lang).word("precision", p)


def use_case_label(use_case: str | None, lang: str | None = "en") -> str:
    return For(lang).word("use_case", use_case or "")


def config(q: Query, **over) -> Config:
    # energy and speed follow the parameters a token actually touches: the active ones of a
    # mixture-of-experts model (memory still counts them all, in advisor.estimate.memory_gb)
    a = arch_of(q)
    params = a.active_params_b if a is not None else q.model_params_b
    vals = dict(gpu=q.gpu, model=q.model, params_b=params, precision=q.precision, batch_size=q.batch_size,
                prompt_tokens=q.prompt_tokens, gen_tokens=q.gen_tokens, gpu_count=q.gpu_count or 1)
    if q.framework:
        vals["framework"] = q.framework
    vals.update(over)
    if vals.get("precision") == "fp8" and q.fp8_mode and "fp8_mode" not in over:
        vals["fp8_mode"] = q.fp8_mode  # the FP8 implementation the question named (else the GPU's default)
    if vals.get("framework") in serving.SERVING_FRAMEWORKS:
        # a serving engine's figures follow its task's measured lengths unless the user stated them
        vals["params_b"] = a.params_b if a is not None else q.model_params_b
        for slot in ("prompt_tokens", "gen_tokens"):
            if slot in q.defaulted and slot not in over:
                vals[slot] = None
    return Config(**vals)


def est(q: Query, **over) -> Estimate | None:
    e = estimate(config(q, **over), itl_percentile=q.itl_percentile)
    a = arch_of(q)
    if e is not None and a is not None and a.active_params_b < a.params_b:
        e.notes.append(For(q.lang)("common.moe_note", active=a.active_params_b, total=a.params_b))
    return e


def production_min_batch() -> int:
    return int(catalog.factor("production_min_batch_size"))


def max_batch() -> int:
    return int(catalog.factor("max_batch_size"))


def batch_candidates(use_case: str | None) -> list[int]:
    key = USE_CASE_MAX_BATCH_FACTOR.get(use_case or "")
    top = int(catalog.factor(key)) if key else max_batch()
    top = min(top, max_batch())
    out, b = [], 1
    while b <= top:
        out.append(b)
        b *= 2
    return out


def est_fitting(q: Query, **over) -> Estimate | None:
    """The estimate at the GPU count the user stated; where none was stated and one GPU cannot hold
    the model, at the smallest tensor-parallel count that can (a replica of N GPUs)."""
    e = est(q, **over)
    if e is None or e.fits or q.gpu_count or not e.min_gpu_count:
        return e
    return est(q, **over, gpu_count=e.min_gpu_count)


def replica_label(e: Estimate, label: str) -> str:
    return f"{e.config.gpu_count}x {label}" if e.config.gpu_count > 1 else label


def fits(e: Estimate) -> bool:
    """Does the configuration fit in VRAM x GPU count (advisor.estimate's memory fit)? A configuration
    that does not is never ranked or recommended."""
    return e.fits


def fit_advice(e: Estimate, lang: str | None = "en") -> str:
    """What would make a configuration that does not fit fit: more GPUs (tensor parallel) or a format."""
    m = For(lang)
    g = gpu_of(e.config.gpu)
    vram = f"{g.vram_gb:g} GB" if g else m("common.its_memory")
    need = m("common.fit_needs", need=f"{e.mem_need_gb:,.0f}", vram=vram) if e.mem_need_gb else m("common.fit_not")
    ways = []
    if e.min_gpu_count:
        ways.append(m("common.fit_tp", n=e.min_gpu_count))
    if e.formats_that_fit:
        # the format's short name (the label without its parenthesis)
        formats = "/".join(re.split(r" \(|（", plabel(f, lang))[0] for f in e.formats_that_fit)
        ways.append(m("common.fit_formats_or" if ways else "common.fit_formats", formats=formats))
    fix = m("common.fit_with", ways=" ".join(ways)) if ways else m("common.fit_never")
    return f"{need}{fix}"


# ---------------------------------------------------------------------------------------------
# numbers as text


def fnum(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if digits == 0 and abs(x) < 10 and x != 0:
        return f"{x:,.2g}" if abs(x) < 1 else f"{x:,.1f}"
    if x != 0 and round(abs(x), digits) == 0:
        return f"{x:.2g}"  # a small figure keeps two significant digits: 1e-9 tok/s is not "0.0"
    return f"{x:,.{digits}f}"


def fpct(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:+.1f}%" if abs(x) < 100 else f"{x:+.0f}%"


def fusd(x: float) -> str:
    return f"${x:,.2f}" if x < 100 else f"${x:,.0f}"


def delta_pct(value: float, base: float) -> float:
    return (value / base - 1.0) * 100.0


# ---------------------------------------------------------------------------------------------
# workload, money, carbon


@dataclass
class Workload:
    tokens: float
    period: str  # "month" or "job"
    label: str
    requests: float | None
    conversions: list[str]
    defaulted: bool = False
    lang: str = "en"  # the language of the labels (and of the tables built from this workload)
    gen: float | None = None  # generated tokens per request where the workload counts requests


def workload(q: Query, e: Estimate | None) -> Workload:
    """Generated tokens per month (or for a one-off job) from what the user said."""
    m = For(q.lang)
    gen = answer_length(q)
    conv: list[str] = []
    if q.job_tokens is not None:
        return Workload(q.job_tokens, "job", m("common.wl_job", tokens=fnum(q.job_tokens),
                                               what=q.workload or m("common.one_job")), None, conv, lang=m.lang)
    if q.tokens_per_month is not None:
        return Workload(q.tokens_per_month, "month", m("common.wl_tokens", tokens=fnum(q.tokens_per_month)), None, conv,
                        lang=m.lang)
    if q.requests_per_month is not None:
        toks = q.requests_per_month * gen
        conv.append(m("common.conv_requests", requests=fnum(q.requests_per_month), gen=gen, tokens=fnum(toks)))
        return Workload(toks, "month", m("common.wl_requests", requests=fnum(q.requests_per_month)),
                        q.requests_per_month, conv, lang=m.lang, gen=gen)
    if q.hours_per_day is not None and e is not None and e.throughput_tok_s:
        dpm = catalog.factor("days_per_month")
        toks = e.throughput_tok_s * q.hours_per_day * 3600 * dpm
        conv.append(m("common.conv_hours", tok_s=fnum(e.throughput_tok_s, 1), hours=q.hours_per_day, dpm=dpm,
                      tokens=fnum(toks)))
        return Workload(toks, "month", m("common.wl_hours", hours=q.hours_per_day), None, conv, lang=m.lang)
    toks = DEFAULT_MONTHLY_REQUESTS * gen
    conv.append(m("common.conv_default", requests=fnum(DEFAULT_MONTHLY_REQUESTS), gen=gen, tokens=fnum(toks)))
    return Workload(toks, "month", m("common.wl_basis", requests=fnum(DEFAULT_MONTHLY_REQUESTS)),
                    DEFAULT_MONTHLY_REQUESTS, conv, defaulted=True, lang=m.lang, gen=gen)


def answer_length(q: Query) -> int:
    """Generated tokens per request, one figure for the whole answer: the stated length; else, for a
    model with serving rows, the measured mean answer length of its task under the serving engine
    (the length those rows ran at; a light load's concurrency and the month's tokens follow from
    it), whichever GPU is asked about; else the catalog's default."""
    if q.gen_tokens and "gen_tokens" not in q.defaulted:
        return q.gen_tokens
    a = arch_of(q)
    got = _serving_length(a.key if a is not None else q.model, id(ds().rows))
    return got if got is not None else q.gen_tokens or int(catalog.factor("default_gen_tokens"))


@lru_cache(maxsize=256)
def _serving_length(model: str | None, _rows: int) -> int | None:
    """The measured mean answer length of `model`'s task under a serving engine (None without
    serving rows); cached per dataset (`_rows`: its identity), since every cost line asks."""
    from advisor.estimate import serve_estimate
    from advisor.protocols import serving as sv

    for fw in sv.calibrated_serving():
        obs = serve_estimate.observations(ds().rows, fw)
        if any(o.model == model for o in obs):
            return round(serve_estimate.gen_tokens_for(obs, model, serve_estimate.default_workload(obs, model))[0])
    return None


def note_answer_length(defaults: list[str], q: Query, w: Workload) -> None:
    """Where the model's serving rows set the answer length (answer_length), the defaults line says
    the length used, not the parser's default it replaced."""
    if w.gen is None or "gen_tokens" not in q.defaulted or round(w.gen) == q.gen_tokens:
        return
    m = For(q.lang)
    was = m("query.default", slot=m.word("slot", "gen_tokens"), value=q.gen_tokens, why=m("query.why_gen_tokens"))
    now = m("query.default", slot=m.word("slot", "gen_tokens"), value=round(w.gen), why=m("common.why_gen_task"))
    replace_default(defaults, was, now)


def replace_default(defaults: list[str], was: str, now: str) -> None:
    """The defaults line `was` (the parser's) replaced by `now` (what the answer used), or `now` added."""
    defaults[:] = [now if d == was else d for d in defaults]
    if now not in defaults:
        defaults.append(now)


@dataclass
class Grid:
    price: float
    gco2: float
    pue: float
    label: str
    citations: list[Citation]
    lang: str = "en"


def grid(q: Query) -> Grid:
    region = None
    if q.region:
        try:
            region = catalog.resolve_region(q.region)
        except catalog.UnknownName:
            region = None
    price = q.price_usd_kwh if q.price_usd_kwh is not None else (region.price_usd_kwh if region else None)
    gco2 = q.grid_gco2_kwh if q.grid_gco2_kwh is not None else (region.grid_gco2_kwh if region else None)
    if price is None or gco2 is None:  # an explicit price without a region: carbon from the default region
        fallback = catalog.resolve_region("us")
        price = price if price is not None else fallback.price_usd_kwh
        gco2 = gco2 if gco2 is not None else fallback.grid_gco2_kwh
        region = region or fallback
    pue = derive.pue_for(region, q.pue)
    cites = []
    if region is not None:
        cites.append(Citation(kind="catalog", ref=f"regions/{region.key}",
                              detail=f"price: {region.price_source}; carbon: {region.carbon_source}"))
    pue_key = None if q.pue is not None else ("pue_cloud" if region is not None and region.kind == "cloud" else "pue_local")
    if pue_key:
        cites.append(Citation(kind="factor", ref=pue_key, detail=catalog.factors()[pue_key].source))
    m = For(q.lang)
    label = m("common.grid", region=region_name(region, m.lang) if region else m("common.custom_region"), price=price,
              gco2=gco2, pue=pue)
    return Grid(price, gco2, pue, label, cites, lang=m.lang)


def region_name(region: catalog.Region, lang: str | None = "en") -> str:
    """A region's name in the answer's language (regions.csv's name_zh for Chinese, where it has one)."""
    return region.name_zh if lang == "zh" and region.name_zh else region.name


def per_word(w: Workload) -> str:
    """'month' or 'job' in the workload's language."""
    return For(w.lang)("word.month" if w.period == "month" else "word.job")


def cost(label: str, e: Estimate, w: Workload, g: Grid) -> CostLine:
    m = For(w.lang)
    per = m("common.per_month" if w.period == "month" else "common.per_job")
    return derive.cost_line(label, e.j_per_1k_tok, w.tokens, g.price, g.gco2, g.pue,
                            basis=m("common.basis", workload=w.label, grid=g.label, per=per))


def named_cost(who: str, e: Estimate, w: Workload, g: Grid, by_framework: bool) -> CostLine:
    """A configuration's cost line, labelled `who` and the configuration: its framework and GPU count
    (`by_framework`, when a serving engine is among those compared), else its precision and batch."""
    from advisor.protocols import serving as sv

    m = For(w.lang)
    label = (m("common.cost_label_fw", who=who, label=sv.label(e, m.lang)) if by_framework
             else m("common.cost_label", who=who, prec=plabel(e.config.precision, m.lang), bs=e.config.batch_size))
    return cost(label, e, w, g)


def cost_conversions(e: Estimate, w: Workload, g: Grid, line: CostLine) -> list[str]:
    """The arithmetic behind a cost line, in the order derive.py does it."""
    m = For(w.lang)
    j = derive.energy_j(e.j_per_1k_tok, w.tokens)
    eq = line.equivalents
    kwh, co2 = f"{line.kwh:,.3g}", f"{line.kg_co2:,.3g}"
    return [
        m("common.conv_energy", tokens=fnum(w.tokens), j=fnum(e.j_per_1k_tok), joules=fnum(j)),
        m("common.conv_kwh", joules=fnum(j), pue=g.pue, kwh=kwh),
        m("common.conv_usd", kwh=kwh, price=g.price, usd=fusd(line.usd)),
        m("common.conv_co2", kwh=kwh, gco2=g.gco2, co2=co2),
        m("common.conv_equiv", co2=co2, km_per=catalog.factor("km_driven_per_kgco2"),
          km=f"{eq.get('km_driven', 0):,.3g}", kwh=kwh, phone=catalog.factor("smartphone_charge_kwh"),
          phones=f"{eq.get('smartphone_charges', 0):,.3g}"),
    ]


def factor_citations(*keys: str) -> list[Citation]:
    f = catalog.factors()
    return [Citation(kind="factor", ref=k, detail=f[k].source) for k in keys if k in f]


# ---------------------------------------------------------------------------------------------
# code snippets (what to type, per precision)

_LOAD = "model = AutoModelForCausalLM.from_pretrained(model_id, {args}, device_map=\"auto\")"


_PLACEHOLDER_MODEL = "your-org/your-model"
_DTYPE = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


def _load_lines(prec: str) -> list[str]:
    """The lines that load `model` in one format (after `model_id` is defined): one load only."""
    if prec in _DTYPE:
        return [f'model = AutoModelForCausalLM.from_pretrained(model_id, dtype=torch.{_DTYPE[prec]}, device_map="auto")']
    bnb = {
        "nf4": ['bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",',
                "                         bnb_4bit_compute_dtype=torch.float16)"],
        # threshold 0.0 turns off the outlier decomposition that makes default 8-bit slow
        "int8_pure": ["bnb = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=0.0)  # pure INT8"],
        "int8_mixed": ["bnb = BitsAndBytesConfig(load_in_8bit=True)  # default threshold 6.0: mixed decomposition"],
    }[prec]
    return [*bnb, 'model = AutoModelForCausalLM.from_pretrained(model_id, quantization_config=bnb, device_map="auto")']


def config_code(prec: str, model_id: str | None = None, batch_size: int = 1, gen_tokens: int = 256) -> str:
    """One runnable snippet for one configuration, the same wherever an answer shows it: it
    defines every name it uses and loads the model once. Transformers `generate` on a padded
    batch is the regime the shipped rows measured; FP8 goes through vLLM because only a compiled
    stack avoids the eager-mode FP8 trap."""
    mid = model_id if model_id and model_id != "model_id" else _PLACEHOLDER_MODEL
    prompts = f'prompts = ["Summarise the energy cost of this request."] * {batch_size}'
    if prec in ("fp8", "mxfp4"):
        # MXFP4 checkpoints (gpt-oss) carry their quantisation: vLLM serves them as published,
        # which is the regime the ML.ENERGY rows measured
        head = ("# FP8 through a compiled serving stack (vLLM) instead of torchao eager mode" if prec == "fp8"
                else "# an MXFP4 checkpoint served by vLLM (the format is read from the checkpoint)")
        quant = ', quantization="fp8"' if prec == "fp8" else ""
        return "\n".join([
            head,
            "from vllm import LLM, SamplingParams", "",
            f'model_id = "{mid}"',
            prompts,
            f'llm = LLM(model=model_id{quant}, max_num_seqs={max(batch_size, 1)})',
            f"outputs = llm.generate(prompts, SamplingParams(max_tokens={gen_tokens}))",
        ])
    imports = ["import torch"] if prec in _DTYPE or prec == "nf4" else []
    imports.append("from transformers import AutoModelForCausalLM, AutoTokenizer"
                   + (", BitsAndBytesConfig" if prec not in _DTYPE else ""))
    lines = [*imports, "", f'model_id = "{mid}"',
             'tokenizer = AutoTokenizer.from_pretrained(model_id, padding_side="left")',
             "tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token",
             *_load_lines(prec), ""]
    if batch_size > 1:
        lines.append(f"# {batch_size} requests per generate call: batching is the largest lever at small batch")
    lines += [prompts,
              'batch = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)',
              f"outputs = model.generate(**batch, max_new_tokens={gen_tokens})"]
    return "\n".join(lines)


def hub_id(q: Query) -> str | None:
    a = arch_of(q)
    return a.hub_id if a is not None else None


# ---------------------------------------------------------------------------------------------
# the energy traps


def evidence_rows() -> list:
    """The measurement rows behind the estimator (shipped + local), for the evidence layer."""
    return ds().rows


def pair_stats(a: str, b: str | tuple[str, ...], gpu: str | None = None, params_b: float | None = None):
    """Precision `a` against `b` (or the best of several) over measured pairs of the same
    configuration: measurements.select.penalty, on the GPU named when it has pairs, else every GPU."""
    return select.penalty(evidence_rows(), a, (b,) if isinstance(b, str) else b, gpu=gpu, params_b=params_b)


def _row_cites(ids: Iterable[str], limit: int = 12) -> list[Citation]:
    out, seen = [], set()
    for i in ids:
        if i in seen:
            continue
        seen.add(i)
        out.append(Citation(kind="row", ref=i))
        if len(out) >= limit:
            break
    return out


def _penalty_text(pen, fix_label: str, lang: str | None = "en") -> str:
    """One measured penalty in words: the nearest pair, the range, where it comes from."""
    m = For(lang)
    ch = pen.chosen
    where = m("alert.penalty_where", gpus=", ".join(pen.gpus)) if pen.fallback else ""
    return m("alert.penalty", pct=fpct(pen.waste_pct), fix=fix_label, model=ch.model_id, size=ch.params_b,
             bs=ch.batch_size, gpu=gpu_short(ch.gpu), low=fpct(pen.low), high=fpct(pen.high), n=len(pen.pairs),
             where=where)


def crossover_text(cross: select.Crossover, lang: str | None = "en") -> str:
    """Where a format starts saving energy (measurements.select.Crossover), in the answer's language."""
    m = For(lang)
    if not cross.kind:
        return cross.describe()
    method = m(f"cross.method_{cross.kind}", n=len(cross.pairs), lo=cross.losing_up_to or 0, hi=cross.saving_from or 0)
    if cross.params_b is None:
        return m("cross.none", upto=cross.losing_up_to)
    if cross.losing_up_to is None:
        return m("cross.at_most", size=f"{cross.params_b:.1f}", method=method)
    return m("cross.bracket", size=f"{cross.params_b:.1f}", method=method, lo=cross.losing_up_to, hi=cross.saving_from)


def crossover_method(cross: select.Crossover, lang: str | None = "en") -> str:
    """How the crossover was placed, in the answer's language."""
    if not cross.kind:
        return cross.method
    return For(lang)(f"cross.method_{cross.kind}", n=len(cross.pairs), lo=cross.losing_up_to or 0,
                     hi=cross.saving_from or 0)


def crossover_fallback(cross: select.Crossover, lang: str | None = "en") -> str:
    """Why the crossover uses every GPU's pairs, in the answer's language ('' when it does not)."""
    if not cross.fallback:
        return ""
    m = For(lang)
    return m(f"cross.fallback_{cross.fallback_kind}") if cross.fallback_kind else cross.fallback


def _impact(q: Query, trap: str, fix: dict) -> tuple[float | None, Estimate | None, Estimate | None]:
    if not q.model_params_b or not q.gpu:
        return None, None, None
    cur = est(q)
    alt = est(q, **fix)
    if cur is None or alt is None:
        return None, cur, alt
    return derive.waste_pct(cur.j_per_1k_tok, alt.j_per_1k_tok), cur, alt


def detect_traps(q: Query) -> list[Alert]:
    """The alerts a configuration triggers, worst first. Each carries the measured or estimated
    extra energy against its fix."""
    m = For(q.lang)
    alerts: list[Alert] = []
    where = m("alert.where", gpu=gpu_label(q.gpu, m.lang)) if q.gpu else ""
    mlabel = model_label(q)
    rows = evidence_rows()
    if q.precision == "int8_mixed" and "precision" not in q.defaulted:
        _, cur, alt = _impact(q, "INT8_MIXED", {"precision": "int8_pure"})
        pen = select.int8_mixed_penalty(rows, q.gpu, q.model_params_b)
        pure = select.int8_mixed_vs_pure(rows, q.gpu, q.model_params_b)
        imp = pen.waste_pct if pen else None
        msg = m("alert.int8_msg")
        if pen:
            msg += m("alert.measured", text=_penalty_text(pen, m("alert.int8_fix_label"), m.lang))
        if pure:
            msg += m("alert.int8_pure", low=fpct(pure.low), high=fpct(pure.high))
        if cur and alt:
            msg += m("alert.int8_est", model=mlabel, where=where, cur=fnum(cur.j_per_1k_tok), alt=fnum(alt.j_per_1k_tok),
                     pct=fpct(derive.waste_pct(cur.j_per_1k_tok, alt.j_per_1k_tok)), tier=m.word("tier", weaker_tier(cur.tier, alt.tier)))
        alerts.append(Alert(code="INT8_MIXED", title=m("alert.int8_title"), mood=mood_for_waste(imp) if imp is not None else "orange",
                            message=msg, fix="BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=0.0)",
                            impact_pct=imp, citations=_row_cites((pen.row_ids if pen else []) + (cur.row_ids if cur else []))))
    if q.precision == "fp8" and "precision" not in q.defaulted and not q.compiled:
        _, cur, alt = _impact(q, "FP8_EAGER", {"precision": "fp16"})
        # the two FP8 implementations fail for different reasons: the alert speaks of the one asked about
        mode = q.fp8_mode or fp8_default(q.gpu or "", ds())[0]
        pen = select.fp8_penalty(rows, q.gpu, q.model_params_b, mode=mode)
        imp = pen.waste_pct if pen else None
        msg = m("alert.fp8_msg" if mode == "weight_only" else "alert.fp8_msg_dynamic")
        if pen:
            msg += m("alert.fp8_measured", text=_penalty_text(pen, m("alert.fix_16bit"), m.lang))
        if cur and alt:
            msg += m("alert.fp8_est", model=mlabel, where=where, cur=fnum(cur.j_per_1k_tok), alt=fnum(alt.j_per_1k_tok),
                     pct=fpct(derive.waste_pct(cur.j_per_1k_tok, alt.j_per_1k_tok)))
        alerts.append(Alert(code="FP8_EAGER", title=m("alert.fp8_title"), mood=mood_for_waste(imp) if imp is not None else "red",
                            message=msg, fix=m("alert.fp8_fix"), impact_pct=imp,
                            citations=_row_cites((pen.row_ids if pen else []) + (cur.row_ids if cur else []))))
    if q.precision == "nf4" and "precision" not in q.defaulted and q.model_params_b:
        cross = select.nf4_crossover(rows, q.gpu)
        bound = select.nf4_bound(cross)
        _, cur, alt = _impact(q, "NF4_SMALL", {"precision": "fp16"})
        pen = select.nf4_penalty(rows, q.gpu, q.model_params_b, max_params=bound) if bound else None
        if cross is not None and bound is not None and pen is not None and q.model_params_b <= bound:
            imp = pen.waste_pct
            where_x = m("alert.paren", text=crossover_fallback(cross, m.lang)) if cross.fallback else ""
            msg = m("alert.nf4_msg", model=mlabel, size=q.model_params_b, cross=crossover_text(cross, m.lang), where=where_x,
                    text=_penalty_text(pen, m("alert.fix_16bit"), m.lang))
            if cur and alt:
                msg += m("alert.nf4_est", cur=fnum(cur.j_per_1k_tok), alt=fnum(alt.j_per_1k_tok),
                         pct=fpct(derive.waste_pct(cur.j_per_1k_tok, alt.j_per_1k_tok)))
            alerts.append(Alert(code="NF4_SMALL", title=m("alert.nf4_title"), mood=mood_for_waste(imp),
                                message=msg, fix=m("alert.nf4_fix"), impact_pct=imp,
                                citations=_row_cites(pen.row_ids + cross.row_ids)))
    if q.batch_size == 1 and "batch_size" not in q.defaulted and q.use_case != "interactive_chat":
        target = min(production_min_batch(), max(batch_candidates(q.use_case)))
        imp, cur, alt = _impact(q, "BS1_PRODUCTION", {"batch_size": target})
        msg = m("alert.bs1_msg", use_case=m.word("use_case", q.use_case or "production"))
        if imp is not None and cur and alt:
            msg += m("alert.bs1_est", bs=target, alt=fnum(alt.j_per_1k_tok), cur=fnum(cur.j_per_1k_tok),
                     pct=fpct(-100 + 100 * alt.j_per_1k_tok / cur.j_per_1k_tok),
                     tier=m.word("tier", weaker_tier(cur.tier, alt.tier)))
        alerts.append(Alert(code="BS1_PRODUCTION", title=m("alert.bs1_title"), mood=mood_for_waste(imp) if imp is not None else "yellow",
                            message=msg, fix=m("alert.bs1_fix", bs=target),
                            impact_pct=imp, citations=_row_cites((cur.row_ids if cur else []) + (alt.row_ids if alt else []))))
    if q.nightly:
        alerts.append(Alert(code="NIGHTLY_BUILD", title=m("alert.nightly_title"), mood="gray",
                            message=m("alert.nightly_msg"), fix=m("alert.nightly_fix")))
    order = {"red": 0, "orange": 1, "yellow": 2, "green": 3, "gray": 4}
    alerts.sort(key=lambda a: (order[a.mood], -(a.impact_pct or 0)))
    return alerts


# ---------------------------------------------------------------------------------------------
# charts, citations, provenance


def bar_chart(title: str, items: Sequence[tuple[str, float, bool, str]], metric: str | None = None,
              unit: str = "J/1k tok", lang: str | None = "en") -> Chart:
    """items: (label, value, is_current, annotation); each bar's mood is its waste vs the best."""
    metric = metric or For(lang)("common.chart_energy")
    best = min(v for _, v, _, _ in items)
    bars = [BarItem(label=lbl, value=v, mood=mood_for_waste(derive.waste_pct(v, best)), annotation=ann, current=cur)
            for lbl, v, cur, ann in items]
    return Chart(title=title, metric=metric, unit=unit, lower_is_better=True, items=bars)


def cite_estimates(ans: Answer, ests: Iterable[Estimate], limit: int = 40) -> None:
    seen = {c.ref for c in ans.citations}
    for e in ests:
        for i in e.row_ids:
            if i not in seen and len(seen) < limit:
                ans.citations.append(Citation(kind="row", ref=i))
                seen.add(i)


def add_provenance(ans: Answer, ests: Iterable[Estimate]) -> None:
    subjects = {p.subject for p in ans.provenance}
    for e in ests:
        p = e.provenance()
        if ans.lang != "en":
            p = p.model_copy(update={"method": derivation_text(p.method, ans.lang),
                                     "note": derivation_text(p.note, ans.lang)})
        if p.subject not in subjects:
            ans.provenance.append(p)
            subjects.add(p.subject)


# a recommendation to measure already in the answer ("Measure it", "Measure ... on your GPU") makes
# the bench hint redundant; the words it starts with in each language
MEASURE_TITLE_STARTS = {"en": "Measure", "zh": "实测"}


def add_bench_hints(ans: Answer, ests: Iterable[Estimate], limit: int = 3) -> None:
    """For figures that are not measured, the `ecolobster bench` command that would measure them."""
    cmds = ans.extra.setdefault("bench_commands", [])
    for e in ests:
        if e.bench_command and e.bench_command not in cmds and len(cmds) < limit:
            cmds.append(e.bench_command)
    m = For(ans.lang)
    if cmds and not any(r.title.startswith(MEASURE_TITLE_STARTS[m.lang]) for r in ans.recommendations):
        ans.recommendations.append(Recommendation(title=m("common.bench_title"), detail=m("common.bench_detail"),
                                                  code="\n".join(cmds), language="bash"))


def _weak(e: Estimate | None) -> bool:
    """Too weak to set a mood: extrapolated without a single row of the GPU in question."""
    if e is None:
        return True
    if e.tier != "extrapolated":
        return False
    gpus = {p.gpu for p in ds().points if p.id in set(e.row_ids)}
    return e.config.gpu not in gpus


def mood_of(waste: float | None, *ests: Estimate | None) -> Mood:
    weak = bool(ests) and all(_weak(e) for e in ests)
    return mood_for_waste(waste, evidence_ok=not weak)


def config_stated(q: Query) -> bool:
    """Did the user state a configuration (precision or batch size)? If not, there is nothing of
    theirs to judge: the mood is the recommendation's, and the default baseline is only a reference."""
    return "precision" not in q.defaulted or "batch_size" not in q.defaulted


def judge(ans: Answer, q: Query, current: Estimate, best: Estimate) -> None:
    """Set the answer's waste and mood: against the best alternative when the user stated a
    configuration, else the recommendation's own (the default baseline's waste goes in extra)."""
    waste = derive.waste_pct(current.j_per_1k_tok, best.j_per_1k_tok)
    if config_stated(q):
        ans.waste_pct = waste
        ans.mood = mood_of(waste, current, best)
    else:
        ans.waste_pct = 0.0
        ans.mood = mood_of(0.0, best)
        ans.extra["default_baseline_waste_pct"] = waste


class Opening(NamedTuple):
    """What a protocol's answer starts from (see `opening`)."""

    m: For
    lg: str
    mlabel: str
    glabel: str
    ans: Answer


def opening(q: Query, protocol: str, title_key: str, *, traps: bool = True, **title: object) -> Opening:
    """The words of the question's language, the model and GPU labels, and the Answer titled by
    `title_key` (filled with model, gpu and `title`) holding the traps the question shows, unless
    the protocol finds its own (`traps=False`)."""
    m = For(q.lang)
    mlabel, glabel = model_label(q), gpu_label(q.gpu, m.lang)
    ans = base_answer(q, protocol, m(title_key, model=mlabel, gpu=glabel, **title))
    if traps:
        ans.alerts = detect_traps(q)
    return Opening(m, m.lang, mlabel, glabel, ans)


def base_answer(q: Query, protocol: str, title: str) -> Answer:
    ans = Answer(protocol=protocol, title=title, lang=q.lang or "en",  # type: ignore[arg-type]
                 query=q.model_dump(exclude={"defaulted"}, exclude_none=True), defaults_applied=list(q.defaults_applied),
                 warnings=list(q.warnings), conversions=list(q.conversions))
    return ans


def method_text(e: Estimate, lang: str | None = "en") -> str:
    """How an estimate was derived, in the answer's language (the estimator words it in English)."""
    return derivation_text(e.method, lang)


def data_caveats(ests: Iterable[Estimate], lang: str | None = "en") -> list[str]:
    out = []
    for e in ests:
        for n in e.notes:
            n = derivation_text(n, lang)
            if n not in out:
                out.append(n)
    return out


# ---------------------------------------------------------------------------------------------
# capacity and the full monthly cost


def hours_per_month() -> float:
    return catalog.factor("days_per_month") * 24


def rental_price(gpu: str, lang: str | None = "en") -> tuple[float, str, list[Citation]] | None:
    """The hourly rental of one GPU: the median of the listings in gpu_prices.csv, with their range."""
    prices = sorted((p for p in catalog.gpu_prices() if p.gpu == gpu), key=lambda p: p.usd_per_hour)
    if not prices:
        return None
    vals = [p.usd_per_hour for p in prices]
    n = len(vals)
    med = vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2
    m = For(lang)
    basis = (m("common.rental_basis", med=med, n=n, listings=m("common.listings" if n > 1 else "common.listing"))
             + (m("common.rental_range", low=vals[0], high=vals[-1]) if n > 1
                else m("common.rental_one", provider=prices[0].provider, as_of=prices[0].as_of)))
    cites = [Citation(kind="catalog", ref=f"gpu_prices/{p.gpu}/{p.provider}", detail=p.source) for p in prices[:4]]
    return med, basis, cites


@dataclass(frozen=True)
class Ownership:
    """The user's own GPUs: the purchase price spread evenly (straight line, no resale value) over a
    lifetime, instead of rental."""

    lifetime_years: float
    lifetime_stated: bool
    purchase_usd: float | None  # one GPU, as the user stated it (else the catalog's)


def ownership(q: Query) -> Ownership | None:
    """The question's ownership (own_gpus, gpu_lifetime_years, gpu_purchase_usd), None when renting."""
    if not q.own_gpus:
        return None
    years = q.gpu_lifetime_years
    return Ownership(years or catalog.factor("gpu_lifetime_years"), years is not None, q.gpu_purchase_usd)


def ownership_notes(own: Ownership | None, lang: str | None = "en") -> list[str]:
    """The default the ownership took (the lifetime), for the answer's defaults applied."""
    if own is None or own.lifetime_stated:
        return []
    return [For(lang)("common.default_lifetime", years=f"{own.lifetime_years:g}")]


def purchase_price(gpu: str, own: Ownership, lang: str | None = "en") -> tuple[float, str, list[Citation]] | None:
    """What one GPU costs to buy: the user's figure, else gpu_purchase_prices.csv; None without either."""
    m = For(lang)
    if own.purchase_usd is not None:
        return own.purchase_usd, m("common.purchase_stated", usd=fusd(own.purchase_usd)), []
    rows = [p for p in catalog.gpu_purchase_prices() if p.gpu == gpu]
    if not rows:
        return None
    p = max(rows, key=lambda r: r.as_of)
    cites = [Citation(kind="catalog", ref=f"gpu_purchase_prices/{p.gpu}", detail=p.source)]
    return p.usd, m("common.purchase_catalog", usd=fusd(p.usd), as_of=p.as_of), cites


@dataclass
class FullCost:
    """What serving a workload at one configuration takes: throughput, GPU-hours, GPUs, money."""

    label: str
    e: Estimate
    period: str
    tok_s_needed: float | None      # average generated tokens/s a month's volume needs
    replica_hours: float | None     # hours one replica spends generating the workload
    gpu_hours: float | None
    replicas: int | None
    gpus: int | None
    serves: bool                    # one replica's month (or the job) covers the workload
    rental_usd: float | None
    rental_basis: str
    electricity: CostLine
    citations: list[Citation]
    owned: bool = False
    ownership_usd: float | None = None  # own GPUs: the purchase price's share of the month (or the job)
    ownership_basis: str = ""

    @property
    def gpu_usd(self) -> float | None:
        """What the GPUs themselves cost for the period: the amortised purchase when owned, else rental."""
        return self.ownership_usd if self.owned else self.rental_usd

    @property
    def total_usd(self) -> float:
        return self.electricity.usd + (self.gpu_usd or 0.0)


def full_cost(label: str, e: Estimate, w: Workload, g: Grid, own: Ownership | None = None) -> FullCost:
    """Throughput needed, GPU-hours, GPUs (replicas x GPUs per replica), the GPUs' cost (rental, or
    for owned GPUs the purchase amortised over the lifetime) and electricity x PUE for a workload at
    configuration `e`."""
    m = For(w.lang)
    line = cost(label, e, w, g)
    n = e.config.gpu_count
    tput = e.throughput_tok_s
    hpm = hours_per_month()
    if not tput:
        return FullCost(label, e, w.period, None, None, None, None, None, True, None, m("common.no_throughput"), line,
                        [], owned=own is not None)
    replica_h = w.tokens / tput / 3600.0
    if w.period == "month":
        need = w.tokens / (hpm * 3600.0)
        replicas = max(1, math.ceil(need / tput - 1e-9))
        serves = replicas == 1
    else:
        need, replicas, serves = None, 1, True
    gpu_h = replica_h * n
    price = rental_price(e.config.gpu, w.lang)
    rental = gpu_h * price[0] if price else None
    basis = price[1] if price else m("common.no_rental", gpu=gpu_short(e.config.gpu))
    cites = price[2] if price else []
    own_usd, own_basis = None, ""
    if own is not None:
        buy = purchase_price(e.config.gpu, own, w.lang)
        months = own.lifetime_years * 12
        if buy is None:
            own_basis = m("common.no_purchase", gpu=gpu_short(e.config.gpu))
        elif w.period == "month":
            # bought GPUs cost their share of the month whether busy or not
            own_usd = replicas * n * buy[0] / months
            own_basis = m("common.own_month", gpus=replicas * n, buy=buy[1], years=f"{own.lifetime_years:g}",
                          months=fnum(months), usd=fusd(buy[0] / months))
        else:
            # a one-off job on GPUs that exist anyway: its share of their lifetime hours
            own_usd = gpu_h * buy[0] / (months * hpm)
            own_basis = m("common.own_job", buy=buy[1], years=f"{own.lifetime_years:g}",
                          hours=fnum(months * hpm), usd=f"{buy[0] / (months * hpm):.3f}")
        cites = buy[2] if buy else []
    return FullCost(label, e, w.period, need, replica_h, gpu_h, replicas, replicas * n, serves, rental, basis, line,
                    cites, owned=own is not None, ownership_usd=own_usd, ownership_basis=own_basis)


def capacity_table(fcs: Sequence[FullCost], w: Workload, g: Grid) -> Table:
    m = For(w.lang)
    per = per_word(w)
    owned = any(x.owned for x in fcs)
    hpm = hours_per_month()

    def col(f) -> list:  # noqa: ANN001
        return [f(x) for x in fcs]

    rows = []
    if w.period == "month":
        rows.append([m("common.cap_need"), *col(lambda x: fnum(x.tok_s_needed, 1))])
    rows += [
        [m("common.cap_one"), *col(lambda x: fnum(x.e.throughput_tok_s, 1))],
        [m("common.cap_hours", per=per), *col(lambda x: fnum(x.replica_hours, 1))],
        [m("common.cap_gpu_hours", per=per), *col(lambda x: fnum(x.gpu_hours, 1))],
        [m("common.cap_gpus"), *col(lambda x: f"{x.gpus} ({x.replicas} x {x.e.config.gpu_count})" if x.gpus else "-")],
        [m("common.cap_owned" if owned else "common.cap_rental", per=per),
         *col(lambda x: fusd(x.gpu_usd) if x.gpu_usd is not None else m("word.no_price"))],
        [m("common.cap_power", per=per), *col(lambda x: fusd(x.electricity.usd))],
        [m("common.cap_total", per=per), *col(lambda x: fusd(x.total_usd))],
    ]
    notes = [m("common.cap_note_hours", hpm=f"{hpm:,.1f}"),
             m("common.cap_note_owned") if owned else m("common.cap_note_rental", hpm=f"{hpm:,.0f}"),
             m("common.cap_note_grid", grid=g.label)]
    if owned:
        notes += [m("common.cap_note_purchase", who=x.label, basis=x.ownership_basis) for x in fcs]
        notes += [m("common.cap_note_vs_rental", who=x.label, usd=fusd(x.rental_usd), basis=x.rental_basis)
                  for x in fcs if x.rental_usd is not None]
    else:
        notes += [m("common.cap_note_price", who=x.label, basis=x.rental_basis) for x in fcs]
    return Table(title=m("common.cap_title", workload=w.label), columns=["", *[x.label for x in fcs]], rows=rows,
                 notes=notes)


def capacity_caveats(fcs: Sequence[FullCost], lang: str | None = "en") -> list[str]:
    m = For(lang)
    hpm = hours_per_month()
    out = []
    for x in fcs:
        if not x.serves and x.replica_hours:
            out.append(m("common.cap_caveat", who=x.label, n=x.e.config.gpu_count, gpu=gpu_short(x.e.config.gpu),
                         tok_s=fnum(x.e.throughput_tok_s, 1), hours=fnum(x.replica_hours), hpm=f"{hpm:,.0f}",
                         replicas=x.replicas, gpus=x.gpus))
    return out


def itl_s(e: Estimate) -> float:
    """Inter-token latency in seconds: a serving estimate's own (measured at the percentile asked
    where the rows have it); otherwise one step of the batch, batch size / throughput."""
    return e.itl_ms / 1000.0 if e.itl_ms is not None else e.config.batch_size / e.throughput_tok_s


def token_time_s(e: Estimate) -> float:
    """A running sequence's mean time per generated token, batch / throughput: prefill pauses
    included, which the median ITL leaves out, so a replica at the load's level carries its share."""
    return e.config.batch_size / e.throughput_tok_s


def load_tok_s(q: Query, e: Estimate) -> float | None:
    """The generated tokens per second a stated monthly load asks for (at `e`'s answer length where
    the question left it to the task), averaged over the month; None for a one-off job, offline batch
    work (it can be queued into batches of any size), or no stated load."""
    if q.use_case == "offline_batch" or q.hours_per_day is not None:
        return None
    w = workload(q, e)
    if w.period != "month" or w.defaulted:
        return None
    return w.tokens / (hours_per_month() * 3600.0)


def load_level(q: Query, levels: Sequence[int], at: Callable[[int], Estimate | None]) -> tuple[int, int] | None:
    """(batch size or concurrency per replica, replicas) that a stated load runs at, over the
    candidate `levels` of one configuration estimated by `at`; None without a stated load. Requests
    only share a step when they are in flight together, so a light load never fills a large batch:
    per replica, in flight = tokens/s x step time at that batch (Little's law, derive.load_concurrency),
    iterated to its fixed point and rounded up so the replica carries its share. Replicas: as few as
    carry the load at the largest level that fits in memory."""
    if q.job_tokens is not None or (q.requests_per_month is None and q.tokens_per_month is None):
        return None  # no stated monthly load (load_tok_s would say so after every level's estimate)
    fit = [(b, x) for b in levels if (x := at(b)) is not None and fits(x) and x.throughput_tok_s]
    if not fit:
        return None
    cap, top = max(fit, key=lambda t: t[0])
    need = load_tok_s(q, top)
    if need is None:
        return None
    replicas = max(1, math.ceil(need / top.throughput_tok_s - 1e-9))
    b = 1
    for _ in range(12):  # the step time grows slowly with the batch: a few rounds settle it
        e = at(b)
        if e is None or not e.throughput_tok_s:
            return None
        # the load at this estimate's own answer length, as the capacity table counts it
        share = (load_tok_s(q, e) or need) / replicas
        nb = min(cap, max(1, math.ceil(derive.load_concurrency(share, token_time_s(e)) - 1e-9)))
        if nb == b:
            break
        b = nb
    return b, replicas


def latency_miss(e: Estimate, q: Query) -> str | None:
    """Why a configuration misses the user's latency target (None when it meets it or none is set).
    Inter-token latency of a sequence ~ batch size / throughput; end-to-end ~ generated tokens x that."""
    if not e.throughput_tok_s:
        return None
    itl_ms = itl_s(e) * 1000.0
    gen = e.config.gen_tokens or e.output_tokens or q.gen_tokens or int(catalog.factor("default_gen_tokens"))
    m = For(q.lang)
    if q.itl_target_ms is not None and itl_ms > q.itl_target_ms:
        itl = f"{itl_ms:,.1f}" + (m("common.measured_pct", pct=f"{e.itl_percentile:g}") if e.itl_percentile else "")
        return m("common.miss_itl", itl=itl, target=q.itl_target_ms)
    if q.e2e_target_s is not None and itl_ms * gen / 1000.0 > q.e2e_target_s:
        return m("common.miss_e2e", e2e=f"{itl_ms * gen / 1000.0:,.1f}", gen=gen, target=q.e2e_target_s)
    return None
