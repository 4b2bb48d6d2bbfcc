"""Named fields (CLI flags, MCP tool arguments, the seed's JSON requests) -> Query."""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from advisor.messages import For
from advisor.query.finish import _finish, _range_errors
from advisor.query.lookup import _catalog, _dpm, _factor, _gpu_list, _is_catalog_model, _near
from advisor.query.slots import SLOTS, USE_CASES, Context, Query, QueryError, Reading
from advisor.query.text import _fmt
from advisor.query.vocab import _ACCEPTED_PRECISIONS, _BAD_PRECISION, _FRAMEWORK_RES
from measurements.schema import FRAMEWORKS, PRECISIONS
from measurements.vocab import FP8_MODES

_FIELD_ALIASES = {
    "model_id": "model", "hardware_platform": "gpu", "hardware": "gpu", "quantization": "quantization",
    "sequence_length": "prompt_tokens", "seq_len": "prompt_tokens", "input_tokens": "prompt_tokens",
    "generation_length": "gen_tokens", "max_new_tokens": "gen_tokens", "output_tokens": "gen_tokens",
    "bs": "batch_size", "price": "price_usd_kwh", "grid_intensity": "grid_gco2_kwh", "carbon_intensity": "grid_gco2_kwh",
    # the serving flags' names (--latency-target-ms, MCP latency_target_ms) for the per-token target
    "latency_target_ms": "itl_target_ms", "latency_percentile": "itl_percentile",
}


_COMPUTE_DTYPES = {"fp16", "bf16", "fp32", "tf32"}


_PRECISION_ALIASES = {
    "int8_default": "int8_mixed", "int8-default": "int8_mixed", "int8_mix": "int8_mixed", "int8-mixed": "int8_mixed",
    "llm.int8": "int8_mixed", "load_in_8bit": "int8_mixed", "int8-pure": "int8_pure", "pure_int8": "int8_pure",
    "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float32": "fp32", "4bit": "nf4", "4-bit": "nf4",
    "load_in_4bit": "nf4", "qlora": "nf4", "float8": "fp8",
}


def _norm_precision(value: Any, field: str, errors: list[str], m: For | None = None) -> str | None:
    m = m or For("en")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    v = str(value).strip().lower()
    v = _PRECISION_ALIASES.get(v, v)
    if v in PRECISIONS:
        return v
    if v in _BAD_PRECISION:
        if v == "int8" and field == "precision":
            errors.append(m("fields.int8_precision"))
        else:
            errors.append(m("fields.bad_precision", field=field, value=value, why=m(f"bad_precision.{v}"),
                            accepted=_ACCEPTED_PRECISIONS))
        return None
    near = difflib.get_close_matches(v, list(PRECISIONS) + list(_PRECISION_ALIASES), n=2, cutoff=0.5)
    hint = m("error.near", names=", ".join(repr(_PRECISION_ALIASES.get(n, n)) for n in near)) if near else ""
    errors.append(m("fields.unknown_precision", field=field, value=value, hint=hint, accepted=_ACCEPTED_PRECISIONS))
    return None


def _norm_framework(value: Any) -> str | None:
    v = str(value).strip().lower()
    if v in FRAMEWORKS:
        return v
    for rx, key, _note in _FRAMEWORK_RES:
        if rx.fullmatch(v) or rx.search(v):
            return key
    return None


def _number(value: Any, name: str, errors: list[str], m: For | None, *, whole: bool) -> float | None:
    """A structured field's number (None when it is left empty); one that is not a finite number
    (with `whole`, not a whole one) adds an error, in `m`'s language, that quotes the value given."""
    m = m or For("en")
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        errors.append(m("fields.whole" if whole else "fields.number", name=name, value=repr(value)))
        return None
    if not math.isfinite(f) or (whole and f != int(f)):
        errors.append(m("fields.whole" if whole else "fields.finite", name=name, value=repr(value)))
        return None
    return f


def _int_field(value: Any, name: str, errors: list[str], m: For | None = None) -> int | None:
    f = _number(value, name, errors, m, whole=True)
    return None if f is None else int(f)


def _float_field(value: Any, name: str, errors: list[str], m: For | None = None) -> float | None:
    return _number(value, name, errors, m, whole=False)


def from_fields(protocol: str, **slots: Any) -> Query:
    """Build a Query from named fields (CLI flags, MCP tool arguments, the seed's JSON requests).

    Accepts the seed's field names too (model_id, hardware_platform, quantization,
    sequence_length, generation_length) and per-day workloads (requests_per_day, users_per_day).
    Every problem is collected, so one call reports all of them.
    """
    errors: list[str] = []
    warnings: list[str] = []
    conversions: list[str] = []
    # the answer's language words the errors, warnings and conversions too (an unknown one: English)
    ctx0 = slots.get("context")
    lang = slots.get("lang") or (getattr(ctx0, "lang", None) if ctx0 is not None else None) or "en"
    m = For(lang if lang in ("en", "zh") else "en")
    known_protocols = ("optimize", "diagnose", "compare", "estimate", "audit", "plan")
    if protocol not in known_protocols:
        errors.append(m("error.unknown_protocol", protocol=protocol, accepted=", ".join(known_protocols)))
    given: dict[str, Any] = {}
    for k, v in slots.items():
        k2 = _FIELD_ALIASES.get(k, k)
        if v is None:
            continue
        given[k2] = v
    accepted = set(SLOTS) | {"quantization", "requests_per_day", "users_per_day", "tokens_per_day", "lang", "symptoms",
                             "reported_tok_s", "reported_power_w", "compare_axis", "compare_gpus", "compare_precisions",
                             "compare_batch_sizes", "compare_frameworks", "nightly", "compiled", "explain", "characters", "chinese_characters",
                             "text_gb", "context"}
    unknown = sorted(set(given) - accepted)
    if unknown:
        errors.append(m("fields.unknown_fields", names=unknown, accepted=", ".join(sorted(accepted - {"context"}))))
    cat = _catalog()
    out: dict[str, Any] = {}
    ctx: Context | None = given.pop("context", None)
    model_name, model_known = None, False
    if "model" in given:
        name = str(given["model"]).strip()
        if not name:
            errors.append(m("fields.model_required"))
        else:
            try:
                arch = cat.resolve_model(name)
                out["model"], out["model_params_b"], model_name, model_known = arch.key, arch.params_b, arch.name, True
            except cat.UnknownName as err:
                sm = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z0-9])", name.split("/")[-1])
                if sm and float(sm.group(1)) > 0:
                    out["model"], out["model_params_b"], model_name = name, float(sm.group(1)), name
                    if err.nearest:  # a typo of a catalog name is answered as typed, never swapped: say so
                        warnings.append(m("fields.model_uncatalogued", name=name, size=sm.group(1),
                                          near=_near(err, m.lang)))
                elif given.get("model_params_b"):
                    out["model"], model_name = name, name
                else:
                    errors.append(m("fields.model_unknown", name=name, near=_near(err, m.lang),
                                    models=", ".join(mm.key for mm in cat.models())))
    if "model_params_b" in given:
        p = _float_field(given["model_params_b"], "model_params_b", errors, m)
        if p is not None and p <= 0:
            errors.append(m("fields.params", value=p))
        elif p is not None:
            out["model_params_b"] = p
            if "model" not in out:
                out["model"], model_name = f"{_fmt(p)}B model", f"a {_fmt(p)}B model"
    if "gpu" in given:
        name = str(given["gpu"]).strip()
        try:
            out["gpu"] = cat.resolve_gpu(name).key
        except cat.UnknownName as err:
            errors.append(m("fields.gpu", name=name, near=_near(err, m.lang), supported=_gpu_list()))
    prec = _norm_precision(given.get("precision"), "precision", errors, m)
    quant = _norm_precision(given.get("quantization"), "quantization", errors, m)
    if prec and quant and prec != quant:
        if prec in _COMPUTE_DTYPES and quant not in _COMPUTE_DTYPES:
            if prec == "fp32" and quant == "nf4":
                warnings.append(m("fields.nf4_fp32"))
            out["precision"] = quant
        elif quant in _COMPUTE_DTYPES and prec not in _COMPUTE_DTYPES:
            out["precision"] = prec
        else:
            errors.append(m("fields.conflict", prec=prec, quant=quant))
    elif prec or quant:
        out["precision"] = quant or prec
    if "fp8_mode" in given:
        # FP8's implementation: dynamic (FP8 matmuls) or weight-only, for precision fp8 only
        mode = str(given["fp8_mode"]).strip().lower().replace("-", "_")
        if mode not in FP8_MODES or out.get("precision") != "fp8":
            errors.append(m("fields.fp8_mode", value=given["fp8_mode"], accepted=", ".join(FP8_MODES)))
        else:
            out["fp8_mode"] = mode
    for name in ("batch_size", "prompt_tokens", "gen_tokens", "gpu_count"):
        if name in given:
            v = _int_field(given[name], name, errors, m)
            if v is not None:
                out[name] = v
    if "framework" in given:
        fw = _norm_framework(given["framework"])
        if fw is None:
            errors.append(m("fields.framework", value=given["framework"], accepted=", ".join(FRAMEWORKS)))
        else:
            out["framework"] = fw
    rates = [n for n in ("requests_per_month", "requests_per_day", "users_per_day", "tokens_per_month", "tokens_per_day")
             if n in given]
    if len(rates) > 1:
        errors.append(m("fields.rates", names=m.join(rates)))
    for name in ("requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day", "price_usd_kwh",
                 "grid_gco2_kwh", "pue", "reported_tok_s", "reported_power_w", "itl_target_ms", "itl_percentile",
                 "e2e_target_s"):
        if name in given:
            v = _float_field(given[name], name, errors, m)
            if v is not None and name.startswith(("reported_", "itl_", "e2e_")) and v <= 0:
                errors.append(m("fields.positive", name=name, value=repr(given[name])))
            elif v is not None:
                out[name] = v
    for name, slot, label in (("requests_per_day", "requests_per_month", "requests"), ("tokens_per_day", "tokens_per_month", "tokens")):
        if name in given:
            v = _float_field(given[name], name, errors, m)
            if v is not None:
                out[slot] = v * _dpm()
                out["workload"] = m(f"fields.{label}_day", n=_fmt(v))
                conversions.append(m(f"fields.{label}_day_conv", n=_fmt(v), dpm=f"{_dpm():.2f}", total=_fmt(out[slot])))
    if "users_per_day" in given:
        v = _float_field(given["users_per_day"], "users_per_day", errors, m)
        if v is not None:
            rpu = _factor("requests_per_user_day")
            out["requests_per_month"] = v * rpu * _dpm()
            out["workload"] = m("fields.users_day", n=_fmt(v))
            conversions.append(m("fields.users_day_conv", n=_fmt(v), rpu=_fmt(rpu), dpm=f"{_dpm():.2f}",
                                 total=_fmt(out["requests_per_month"])))
    for name, key, which in (("characters", "english_chars_per_token", "english"),
                             ("chinese_characters", "chinese_chars_per_token", "chinese")):
        if name in given:
            v = _float_field(given[name], name, errors, m)
            if v is not None:
                cpt = _factor(key)
                out["job_tokens"] = v / cpt
                out["workload"] = m("fields.chars", n=_fmt(v), which=m(f"reading.{which}"))
                conversions.append(m("fields.chars_conv", n=_fmt(v), which=m(f"reading.{which}"), cpt=_fmt(cpt), key=key,
                                     tokens=_fmt(out["job_tokens"])))
    if "text_gb" in given:
        v = _float_field(given["text_gb"], "text_gb", errors, m)
        if v is not None:
            tpg = _factor("english_tokens_per_gb")
            out["job_tokens"] = v * tpg
            out["workload"] = m("fields.text_gb", n=_fmt(v))
            conversions.append(m("fields.text_gb_conv", n=_fmt(v), tpg=_fmt(tpg), tokens=_fmt(out["job_tokens"])))
    if "region" in given:
        try:
            out["region"] = cat.resolve_region(str(given["region"])).key
        except cat.UnknownName as err:
            errors.append(m("error.region", region=given["region"], near=_near(err, m.lang),
                            accepted=", ".join(x.key for x in cat.regions())))
    if "use_case" in given:
        uc = str(given["use_case"]).strip().lower().replace(" ", "_").replace("-", "_")
        uc = {"production": "production_api", "api": "production_api", "chat": "interactive_chat",
              "interactive": "interactive_chat", "batch": "offline_batch", "offline": "offline_batch"}.get(uc, uc)
        if uc in USE_CASES:
            out["use_case"] = uc
        else:
            errors.append(m("fields.use_case", value=given["use_case"], accepted=", ".join(USE_CASES)))
    if "workload" in given:
        out["workload"] = str(given["workload"])
    if "own_gpus" in given:
        v = given["own_gpus"]
        word = str(v).strip().lower()
        if isinstance(v, bool) or word in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            out["own_gpus"] = v if isinstance(v, bool) else word in ("true", "yes", "1", "on")
        else:
            errors.append(m("fields.own_gpus", value=repr(v)))
    for name, top in (("gpu_lifetime_years", 20), ("gpu_purchase_usd", 1_000_000)):
        if name in given:
            v = _float_field(given[name], name, errors, m)
            if v is not None and not 0 < v <= top:
                errors.append(m("fields.between", name=name, top=f"{top:,}", value=repr(given[name])))
            elif v is not None:
                out[name] = v
    if lang not in ("en", "zh"):
        errors.append(m("fields.lang", value=lang))
        lang = "en"
    errors += _range_errors(out, lang)
    if errors:
        raise QueryError(errors)
    base = {k: v for k, v in (ctx.model_dump().items() if ctx else []) if k in SLOTS and v is not None}
    axis = given.get("compare_axis")
    precs: list[str] = []
    for p in given.get("compare_precisions") or []:
        q = _norm_precision(p, "compare_precisions", errors, m)
        if q:
            precs.append(q)
    gpus_l: list[str] = []
    for g in given.get("compare_gpus") or []:
        try:
            gpus_l.append(cat.resolve_gpu(str(g)).key)
        except cat.UnknownName as err:
            errors.append(m("fields.gpu", name=g, near=_near(err, m.lang), supported=_gpu_list()))
    fws_l: list[str] = []
    for f in given.get("compare_frameworks") or []:
        fw = _norm_framework(f)
        if fw is None:
            errors.append(m("fields.compare_framework", value=f, accepted=", ".join(FRAMEWORKS)))
        elif fw not in fws_l:
            fws_l.append(fw)
    if fws_l and len(fws_l) < 2:
        errors.append(m("fields.two_frameworks"))
    if fws_l:
        axis = axis or "framework"
        out.setdefault("framework", fws_l[0])
    if errors:
        raise QueryError(errors)
    if axis is not None and axis not in ("precision", "gpu", "batch_size", "model_size", "framework"):
        raise QueryError([m("fields.axis", axis=axis)])
    if axis == "framework" and len(fws_l) < 2:
        raise QueryError([m("fields.axis_framework")])
    if "model" not in out and "model" not in base and protocol in ("optimize", "estimate"):
        raise QueryError([m("fields.model_required")])
    return _finish(protocol, {**base, **out}, lang, "", Reading(
        warnings=warnings, conversions=conversions, explain=bool(given.get("explain")),
        words={k: f"{k}={given[k]!r}" for k in out if k in given},
        precisions=precs or ([out["precision"]] if "precision" in out else []),
        all_precisions=axis == "precision" and not precs, gpus=gpus_l or ([out["gpu"]] if "gpu" in out else []),
        symptoms=list(given.get("symptoms") or []), reported_tok_s=out.get("reported_tok_s"),
        reported_power_w=out.get("reported_power_w"), nightly=bool(given.get("nightly")),
        compiled=bool(given.get("compiled")), model_name=model_name,
        model_known=model_known or bool(base.get("model") and _is_catalog_model(base["model"])), axis=axis,
        batch_sizes=[int(b) for b in given.get("compare_batch_sizes") or []], frameworks=fws_l))


def flags_context(framework: Any = None, gpu_count: Any = None, latency_target_ms: Any = None,
                  latency_percentile: Any = None, base: Context | None = None, lang: str | None = None) -> Context | None:
    """The serving flags given beside a free-text question (`ecolobster ask --framework vllm ...`, the
    MCP ask tool) as stated slots of the question's context; the question's own words still win.
    Raises QueryError naming each bad value and what is accepted (in `lang`, English by default)."""
    m = For(lang)
    errors: list[str] = []
    upd: dict[str, Any] = {}
    if framework is not None:
        fw = _norm_framework(framework)
        if fw is None:
            errors.append(m("fields.framework", value=framework, accepted=", ".join(FRAMEWORKS)))
        else:
            upd["framework"] = fw
    if gpu_count is not None:
        v = _int_field(gpu_count, "gpu_count", errors, m)
        if v is not None and v < 1:
            errors.append(m("fields.gpu_count", value=repr(gpu_count)))
        elif v is not None:
            upd["gpu_count"] = v
    for name, raw, hi in (("latency_target_ms", latency_target_ms, None), ("latency_percentile", latency_percentile, 100)):
        if raw is None:
            continue
        v = _float_field(raw, name, errors, m)
        if v is not None and (v <= 0 or (hi is not None and v > hi)):
            errors.append(m("fields.above_zero_at_most", name=name, top=hi, value=repr(raw)) if hi
                          else m("fields.above_zero", name=name, value=repr(raw)))
        elif v is not None:
            upd[_FIELD_ALIASES[name]] = v
    if errors:
        raise QueryError(errors)
    if not upd:
        return base
    return (base or Context()).model_copy(update=upd)
