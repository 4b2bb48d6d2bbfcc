"""The serving levers every protocol shares: which frameworks, formats, concurrencies and GPU
counts a question's candidates range over, and how a configuration is named.

A serving engine (vLLM) is one more regime beside HF generate: its candidates are estimated by
advisor.estimate.serve_estimate from its own rows and model, never from HF rows.
"""

from __future__ import annotations

import math

from advisor.estimate import Estimate, serve_estimate, serving
from advisor.messages import For, has
from advisor.protocols import common as c
from advisor.query import Query

FRAMEWORK_LABEL = {"hf-eager": "HF generate (eager)", "hf-static-cache": "HF generate (static cache)",
                   "hf-continuous-batching": "HF continuous batching", "vllm": "vLLM", "sglang": "SGLang",
                   "tgi": "TGI", "trt-llm": "TensorRT-LLM", "llama.cpp": "llama.cpp"}


def plabel(fw: str, precision: str, lang: str | None = "en") -> str:
    """A format's name; a serving engine's own names where they differ (its FP8 is W8A8)."""
    m = For(lang)
    if is_serving(fw) and has(f"serving_precision.{precision}"):
        return m(f"serving_precision.{precision}")
    return c.plabel(precision, lang)


def fw_label(fw: str) -> str:
    return FRAMEWORK_LABEL.get(fw, fw)


def is_serving(fw: str | None) -> bool:
    return fw in serving.SERVING_FRAMEWORKS


def calibrated_serving() -> list[str]:
    """Serving frameworks with a calibration (their rows exist)."""
    got = serving.shipped_params()
    return [fw for fw in serving.SERVING_FRAMEWORKS if fw in got]


def frameworks_for(q: Query) -> list[str]:
    """The framework the user named; else HF generate and every calibrated serving engine measured
    on this GPU (elsewhere a serving engine's figures would all be cross-GPU transfers: it is
    answered when named, never slipped into a ranking of measured HF rows)."""
    if q.framework:
        return [q.framework]
    return ["hf-eager", *[fw for fw in calibrated_serving()
                          if serve_estimate.measured_concurrency(fw, q.gpu) is not None]]


def _obs(fw: str):
    return serve_estimate.observations(c.ds().rows, fw)


def precisions_for(q: Query, fw: str) -> list[str]:
    """The formats a serving engine is ranked in: the one named; else BF16, the formats this model
    was measured in under `fw`, and FP8 where the GPU has FP8 tensor cores."""
    if q.precision and "precision" not in q.defaulted:
        return [q.precision]
    mine = {o.setup.fmt.key for o in _obs(fw) if o.model == c.config(q).model}
    out = ["bf16"] if not mine or "bf16" in mine else []
    out += sorted(mine - {"bf16"})
    g = c.gpu_of(q.gpu)
    if g is not None and g.fp8_support and "fp8" not in out and "mxfp4" not in mine:
        out.append("fp8")
    return out


def gpu_counts_for(q: Query) -> list[int]:
    if q.gpu_count:
        return [q.gpu_count]
    from advisor.estimate import physics

    return list(physics.TP_SIZES)


def _levels(q: Query, fw: str, precision: str, gpu_count: int) -> list[int]:
    return _concurrencies(q, fw, precision, gpu_count) if is_serving(fw) else c.batch_candidates(q.use_case)


def load_concurrency(q: Query, fw: str, precision: str, gpu_count: int) -> int | None:
    """The batch or concurrency each replica of this configuration (any framework) runs at under the
    stated load (None without one; common.load_level)."""
    got = c.load_level(q, _levels(q, fw, precision, gpu_count), lambda b: estimate(q, fw, precision, b, gpu_count))
    return got[0] if got else None


def load_cap(q: Query, fw: str, precision: str, gpu_count: int) -> tuple[int, int] | None:
    """(the batch or concurrency a stated live load keeps in flight on a replica, the largest level
    it caps) for one configuration of any framework; None without a stated load, with a stated
    batch, for offline batch work (it queues into full batches) or where the load fills them all.
    Requests share a step only when they are in flight together (common.load_level): a larger
    level fills only from a queue, so a live service is ranked at this one."""
    if "batch_size" not in q.defaulted:
        return None
    levels = _levels(q, fw, precision, gpu_count)
    top = load_concurrency(q, fw, precision, gpu_count)
    if top is None or not levels or top >= max(levels):
        return None
    return top, max(levels)


def capped_levels(q: Query, fw: str, precision: str, gpu_count: int, levels: list[int]) -> list[int]:
    """`levels` under a stated live load: those below what it keeps in flight, and that level."""
    cap = load_cap(q, fw, precision, gpu_count)
    if cap is None:
        return levels
    return [b for b in levels if b < cap[0]] + [cap[0]]


def current(q: Query) -> Estimate | None:
    """The configuration as stated; where no GPU count was stated and one GPU cannot hold the model,
    a replica of the smallest tensor-parallel count that can (common.est_fitting: a baseline that
    cannot run is never costed). A serving engine whose concurrency was not stated runs at the one
    its stated load keeps in flight (not at one sequence: it batches whatever is in flight)."""
    e = c.est_fitting(q)
    if e is None or not is_serving(e.config.framework) or "batch_size" not in q.defaulted:
        return e
    top = load_concurrency(q, e.config.framework, e.config.precision, e.config.gpu_count)
    if top is None or top == e.config.batch_size:
        return e
    return estimate(q, e.config.framework, e.config.precision, top, e.config.gpu_count) or e


def note_gpu_count(defaults: list[str], q: Query, e: Estimate | None) -> None:
    """Where `current` took more than one GPU because one cannot hold the model, the defaults say
    so (and why), as every other default is said."""
    if e is None or q.gpu_count or e.config.gpu_count <= 1:
        return
    m = For(q.lang)
    g = c.gpu_of(e.config.gpu)
    defaults.append(m("query.default", slot=m.word("slot", "gpu_count"), value=e.config.gpu_count,
                      why=m("serving.why_gpu_count", model=c.model_label(q),
                            prec=plabel(e.config.framework, e.config.precision, q.lang),
                            need=c.fnum(e.mem_need_gb or 0.0), vram=c.fnum(g.vram_gb if g else 0.0))))


def note_load_concurrency(defaults: list[str], q: Query, e: Estimate | None) -> None:
    """Where the load set a serving engine's concurrency (`current`), the defaults line says so in
    place of the parser's one-sequence default."""
    if e is None or not is_serving(e.config.framework) or "batch_size" not in q.defaulted \
            or e.config.batch_size == q.batch_size or not e.throughput_tok_s:
        return
    need = c.load_tok_s(q, e)
    if need is None:
        return
    m = For(q.lang)
    was = m("query.default", slot=m.word("slot", "batch_size"), value=q.batch_size,
            why=m("query.why_batch_size", fw=q.framework or ""))
    replicas = max(1, math.ceil(need / e.throughput_tok_s - 1e-9))
    now = m("serving.load_concurrency", bs=e.config.batch_size, fw=fw_label(e.config.framework),
            need=c.fnum(need, 1), per=c.fnum(need / replicas, 1), replicas=replicas,
            itl=c.fnum(c.token_time_s(e) * 1000.0, 1))
    c.replace_default(defaults, was, now)


def concurrencies_for(q: Query, fw: str, precision: str | None = None, gpu_count: int | None = None) -> list[int]:
    """The concurrency the user named; else the concurrencies this configuration (model, GPU, format,
    GPU count) was measured at; else powers of two from 8 to the largest concurrency the framework
    was measured at on this GPU (on any GPU where it has none)."""
    if "batch_size" not in q.defaulted:
        return [q.batch_size]
    return _concurrencies(q, fw, precision, gpu_count)


def _concurrencies(q: Query, fw: str, precision: str | None, gpu_count: int | None) -> list[int]:
    if precision is not None:
        model = c.config(q).model
        mine = sorted({int(o.setup.concurrency) for o in _obs(fw) if o.model == model and o.gpu == q.gpu
                       and o.setup.gpu_count == (gpu_count or 1) and serve_estimate._same_fmt(o, precision)})
        if mine:
            return mine
    rng = serve_estimate.measured_concurrency(fw, q.gpu) or serve_estimate.measured_concurrency(fw, None)
    lo, hi = (8, 512) if rng is None else (int(rng[0]), int(rng[1]))
    out, b = [], 1
    while b <= hi:
        if b >= lo:
            out.append(b)
        b *= 2
    return out


def estimate(q: Query, fw: str, precision: str, batch: int, gpu_count: int) -> Estimate | None:
    return c.est(q, framework=fw, precision=precision, batch_size=batch, gpu_count=gpu_count)


def candidates(q: Query, fw: str, missed: list[str] | None = None) -> list[Estimate]:
    """Every (format x concurrency x GPU count) of serving framework `fw` that fits and meets the
    latency target, a concurrency above what a stated load keeps in flight taken at that load's;
    those that miss the target are listed in `missed`."""
    out = []
    for prec in precisions_for(q, fw):
        for n in gpu_counts_for(q):
            for bs in capped_levels(q, fw, prec, n, concurrencies_for(q, fw, prec, n)):
                e = estimate(q, fw, prec, bs, n)
                if e is None or not c.fits(e):
                    continue
                why = c.latency_miss(e, q)
                if why:
                    if missed is not None:
                        missed.append(For(q.lang)("serving.missed", label=label(e, q.lang), why=why))
                    continue
                out.append(e)
    return out


def label(e: Estimate, lang: str | None = "en") -> str:
    """'vLLM BF16, concurrency 256, 1 GPU' or 'HF generate (eager) FP16, batch size 32'."""
    m = For(lang)
    cf = e.config
    prec = plabel(cf.framework, cf.precision, lang)
    if is_serving(cf.framework):
        gpus = m("serving.gpus_one") if cf.gpu_count == 1 else m("serving.gpus_many", n=cf.gpu_count)
        return m("serving.label", fw=fw_label(cf.framework), prec=prec, bs=cf.batch_size, gpus=gpus)
    tail = m("serving.tail_gpus", n=cf.gpu_count) if cf.gpu_count > 1 else ""
    return m("serving.label_hf", fw=fw_label(cf.framework), prec=prec, bs=cf.batch_size, tail=tail)


def measured_here(e: Estimate) -> bool:
    """Whether the framework has rows of this format on this GPU (a serving candidate's own)."""
    return any(o.gpu == e.config.gpu and o.setup.fmt.key == e.config.precision for o in _obs(e.config.framework))



def serve_command(e: Estimate, hub_id: str | None) -> str:
    """The vLLM command line of a serving configuration (tensor parallel over its GPUs)."""
    cf = e.config
    parts = [f"vllm serve {hub_id or cf.model}", f"--max-num-seqs {cf.batch_size}"]
    if cf.gpu_count > 1:
        parts.append(f"--tensor-parallel-size {cf.gpu_count}")
    parts.append("--dtype bfloat16" if cf.precision in ("bf16", "fp16") else f"--quantization {cf.precision}")
    return " ".join(parts)
