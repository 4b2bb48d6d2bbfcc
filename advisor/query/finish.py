"""Defaults, range checks and warnings shared by free text and named fields; builds the Query."""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import ValidationError

from advisor.messages import For
from advisor.query.lookup import _catalog, _defaults, _factor, _measured_models
from advisor.query.slots import (
    DEFAULT_GPU,
    DEFAULT_PRECISION,
    DEFAULT_REGION,
    DEFAULT_USE_CASE,
    SLOTS,
    Query,
    QueryError,
    Reading,
)
from advisor.query.text import _fmt
from advisor.query.vocab import _COMPILED_FRAMEWORKS
from measurements.validation import messages


def _serving_framework(fw: str | None) -> bool:
    from advisor.estimate import serving

    return fw in serving.SERVING_FRAMEWORKS


def _bf16_gpu(gpu: str | None) -> bool:
    """Whether a serving engine would run BF16 on this GPU (FP16 where the GPU has no BF16)."""
    if not gpu:
        return True
    try:
        return _catalog().resolve_gpu(gpu).bf16_support
    except _catalog().UnknownName:
        return True


def _serving_frameworks() -> tuple[str, ...]:
    from advisor.estimate import serving

    return serving.SERVING_FRAMEWORKS


def _serving_range(fw: str, gpu: str | None) -> tuple[float, float] | None:
    from advisor.estimate import serve_estimate

    return serve_estimate.measured_concurrency(fw, gpu)


def _serving_models(fw: str) -> set[str]:
    from advisor.estimate import serve_estimate

    return serve_estimate.measured_models(fw)


def _range_errors(s: dict[str, Any], lang: str = "en") -> list[str]:
    """Out-of-range values: batch size within 1..max_batch_size, positive lengths, PUE >= 1."""
    m = For(lang)
    errors: list[str] = []
    top_bs = int(_factor("max_accepted_batch_size"))
    bs = s.get("batch_size")
    if bs is not None:
        if bs < 1:
            errors.append(m("error.bs_low", bs=bs))
        elif bs > top_bs:
            errors.append(m("error.bs_high", bs=bs, top=top_bs))
    top_tok = _factor("max_query_tokens")
    for slot in ("prompt_tokens", "gen_tokens"):
        v = s.get(slot)
        typical = m(f"error.typical_{slot}")
        if v is not None and v < 1:
            errors.append(m("error.tokens_low", slot=slot, v=v, typical=typical))
        elif v is not None and v > top_tok:
            errors.append(m("error.tokens_high", slot=slot, v=_fmt(v) if v < 1e30 else "1e30+", top=_fmt(top_tok),
                            typical=typical))
    gc = s.get("gpu_count")
    top_gc = _max_gpu_count()
    if gc is not None and not 1 <= gc <= top_gc:
        errors.append(m("error.gpu_count", top=top_gc, gc=gc))
    top_rate = _factor("max_monthly_requests")
    for slot in ("requests_per_month", "tokens_per_month", "job_tokens"):
        v = s.get(slot)
        if v is not None and (not math.isfinite(v) or v < 0):
            errors.append(m("error.negative", slot=slot, v=v))
        elif v is not None and v > top_rate * (1 if slot == "requests_per_month" else 1e4):
            errors.append(m("error.beyond", slot=slot, v=f"{v:.3g}",
                            bound=f"{top_rate * (1 if slot == 'requests_per_month' else 1e4):.0e}"))
    if s.get("pue") is not None and s["pue"] < 1:
        errors.append(m("error.pue", v=s["pue"]))
    h = s.get("hours_per_day")
    if h is not None and not 0 < h <= 24:
        errors.append(m("error.hours", h=f"{h:g}"))
    for slot in ("price_usd_kwh", "grid_gco2_kwh"):
        v = s.get(slot)
        if v is not None and (not math.isfinite(v) or v < 0 or (slot == "price_usd_kwh" and v == 0)):
            errors.append(m("error.positive", slot=slot, v=v))
    return errors


def _max_gpu_count() -> int:
    """The estimator's own bound on GPUs per replica (one source for both)."""
    from advisor.estimate import Config

    for m in Config.model_fields["gpu_count"].metadata:
        if getattr(m, "le", None) is not None:
            return int(m.le)
    return 64


def _finish(protocol: str, slots: dict[str, Any], lang: str, text: str, r: Reading) -> Query:
    """Apply the defaults, check ranges, add the catalog's warnings and build the Query."""
    warnings, explain, gpus, axis = list(r.warnings), r.explain, r.gpus, r.axis
    model_name, model_known = r.model_name, r.model_known
    cat = _catalog()
    errors: list[str] = []
    defaults = _defaults()
    defaults_applied: list[str] = []
    defaulted: list[str] = []
    s = dict(slots)

    # which comparison
    frameworks = list(r.frameworks)
    if len(frameworks) > 1 and protocol != "compare":
        for k in frameworks[1:]:
            r.not_understood.append(For(lang)("reading.second_framework", words=k, fw=frameworks[0]))
        frameworks = []
    if axis is None:
        if len(frameworks) > 1:
            axis = "framework"
        elif len(gpus) > 1:
            axis = "gpu"
        elif explain and "model" not in s:
            axis = "model_size"
        elif protocol == "compare" and re.search(r"batch\s*sizes|批大小|不同批", text.lower()):
            axis = "batch_size"
        elif protocol == "compare" and "model" not in s and not r.all_precisions:
            axis = "model_size"
        else:
            axis = "precision"
    compare_precisions = [] if r.all_precisions else list(r.precisions)

    m = For(lang)

    def default(slot: str, value: Any, why: str = "") -> None:
        # the slot named in the answer's language ([slot] of the catalog; explain_parse reads the
        # defaulted slots from `defaulted`); `why`: a message key other than the slot's own
        s[slot] = value
        defaulted.append(slot)
        defaults_applied.append(m("query.default", slot=m.word("slot", slot), value=value,
                                  why=m(why or f"query.why_{slot}", fw=s.get("framework") or "")))

    needs_model = protocol in ("optimize", "estimate")
    if needs_model and not s.get("model"):
        errors.append(m("error.model_required"))
    if ("gpu" not in s and axis != "gpu"
            and not (axis == "model_size" and protocol in ("compare", "diagnose") and "model" not in s)):
        default("gpu", DEFAULT_GPU)
    serving = _serving_framework(s.get("framework"))
    if "precision" not in s and axis != "model_size":
        if serving and _bf16_gpu(s.get("gpu")):
            default("precision", "bf16", "query.why_precision_serving")
        else:
            default("precision", DEFAULT_PRECISION)
    if "batch_size" not in s:
        default("batch_size", defaults.get("batch_size", 1))
    if "prompt_tokens" not in s:
        default("prompt_tokens", defaults["prompt_tokens"])
    if "gen_tokens" not in s:
        default("gen_tokens", defaults["gen_tokens"])
    if "use_case" not in s:
        default("use_case", DEFAULT_USE_CASE)
    if "region" not in s and ("price_usd_kwh" not in s or "grid_gco2_kwh" not in s):
        default("region", DEFAULT_REGION)

    # hard errors (the seed's parameter guide)
    errors += _range_errors(s, lang)
    bs = s.get("batch_size")
    if bs is not None and bs >= 1 and bs & (bs - 1):
        lo = 1 << (bs.bit_length() - 1)
        warnings.append(m("query.not_pow2", bs=bs, lo=lo, hi=lo * 2))
    if bs is not None and serving:
        rng = _serving_range(s["framework"], s.get("gpu"))
        if rng is not None and bs > rng[1]:
            warnings.append(m("query.beyond_serving_range", bs=bs, fw=s["framework"], lo=f"{rng[0]:g}",
                              hi=f"{rng[1]:g}"))
    elif bs is not None and defaults.get("max_batch_size") and bs > defaults["max_batch_size"]:
        warnings.append(m("query.beyond_range", bs=bs, top=defaults["max_batch_size"]))
    if errors:
        raise QueryError(errors)

    # warnings that need the catalog
    arch = None
    if s.get("model") and model_known:
        try:
            arch = cat.resolve_model(s["model"])
        except cat.UnknownName:
            arch = None
    if s.get("model") and not model_known:
        p = s.get("model_params_b")
        size = m("query.size", size=_fmt(p)) if p else ""
        warnings.append(m("query.not_measured", model=model_name or s["model"], size=size))
    if arch is not None and serving and arch.key not in _serving_models(s["framework"]):
        warnings.append(m("query.no_serving_rows", model=arch.name, fw=s["framework"]))
    elif arch is not None and not serving and arch.key not in _measured_models() \
            and any(arch.key in _serving_models(fw) for fw in _serving_frameworks()):
        warnings.append(m("query.serving_rows_only", model=arch.name,
                          fws=", ".join(fw for fw in _serving_frameworks() if arch.key in _serving_models(fw))))
    elif arch is not None and not serving and arch.key not in _measured_models():
        warnings.append(m("query.no_rows", model=arch.name, size=arch.params_b))
    if arch is not None and s.get("prompt_tokens") and s.get("gen_tokens"):
        total = s["prompt_tokens"] + s["gen_tokens"]
        if total > arch.context_length:
            warnings.append(m("query.context", total=total, model=arch.name, ctx=arch.context_length))
    gpu = None
    if s.get("gpu"):
        gpu = cat.resolve_gpu(s["gpu"])
    named = {s.get("precision"), *compare_precisions}
    if gpu is not None and "bf16" in named and not gpu.bf16_support:
        warnings.append(m("query.no_bf16", gpu=gpu.name, arch=gpu.architecture))
    if gpu is not None and "fp8" in named and not gpu.fp8_support:
        warnings.append(m("query.no_fp8", gpu=gpu.name, arch=gpu.architecture))
    if gpu is not None and s.get("model_params_b") and s.get("precision"):
        from advisor import estimate as est

        need = est.memory_need_gb(s.get("model"), s["model_params_b"], s["precision"], s.get("batch_size") or 1,
                                  (s.get("prompt_tokens") or 0) + (s.get("gen_tokens") or 0))
        n_gpu = s.get("gpu_count") or 1
        # without a stated GPU count, ESTIMATE and OPTIMIZE take the fewest GPUs that hold the model
        # (protocols.serving.current) and say so among the defaults
        picks_count = "gpu_count" not in s and protocol in ("estimate", "optimize")
        most = max(est.physics.TP_SIZES)
        if need is not None and need > gpu.vram_gb * n_gpu and not (picks_count and need <= gpu.vram_gb * most):
            have = (m("query.have_many", n=n_gpu, gpu=gpu.name, gb=gpu.vram_gb * n_gpu) if n_gpu > 1
                    else m("query.have_one", gpu=gpu.name, gb=gpu.vram_gb))
            warnings.append(m("query.too_big", model=model_name or s["model"], prec=s["precision"],
                              bs=s.get("batch_size"), need=f"{need:.1f}", have=have))
    if s.get("batch_size") == 1 and s.get("use_case") in ("production_api", "offline_batch") and "batch_size" not in defaulted:
        warnings.append(m("query.bs1", use_case=m.word("use_case", s["use_case"])))
    try:
        return Query(
            protocol=protocol,  # type: ignore[arg-type]
            text=text,
            lang=lang,  # type: ignore[arg-type]
            defaults_applied=defaults_applied,
            defaulted=defaulted,
            warnings=warnings,
            conversions=list(r.conversions),
            compare_axis=axis,  # type: ignore[arg-type]
            compare_precisions=compare_precisions,
            compare_gpus=gpus if len(gpus) > 1 else [],
            compare_batch_sizes=list(r.batch_sizes),
            compare_frameworks=frameworks,
            explain=explain,
            symptoms=list(r.symptoms),
            reported_tok_s=r.reported_tok_s,
            reported_power_w=r.reported_power_w,
            reported_j_per_1k_tok=r.reported_j_per_1k_tok,
            nightly=r.nightly,
            compiled=r.compiled or s.get("framework") in _COMPILED_FRAMEWORKS,
            model_name=model_name or (arch.name if arch else None),
            model_known=model_known,
            not_understood=list(dict.fromkeys(r.not_understood)),
            finetune=dict(r.finetune),
            carried=list(r.carried),
            standalone=r.standalone,
            stated_words={k: v for k, v in r.words.items() if k not in defaulted},
            **{k: v for k, v in s.items() if k in SLOTS},
        )
    except ValidationError as err:  # a value no rule above caught: still a clear error, never a crash
        raise QueryError(messages(err)) from None
