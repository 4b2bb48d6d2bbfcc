"""Free text -> Query: run every reader, pick the protocol, merge over the chat context."""

from __future__ import annotations

import re
from typing import Any

from advisor.limits import MAX_QUESTION_CHARS
from advisor.messages import t
from advisor.query.draft import _Draft
from advisor.query.finetune import read_finetune
from advisor.query.finish import _finish
from advisor.query.lookup import _is_catalog_model
from advisor.query.read_names import (
    _STATED_EXTRAS,
    _read_flags,
    _read_framework,
    _read_gpu,
    _read_model,
    _read_precisions,
    _read_region,
    _read_use_case,
)
from advisor.query.read_numbers import (
    _leftover_facts,
    _read_batch_and_lengths,
    _read_latency,
    _read_money_and_grid,
    _read_ownership,
    _read_reported,
    _read_workload,
)
from advisor.query.slots import QUERY_PROTOCOLS, SLOTS, Context, Query, QueryError, Reading
from advisor.query.text import _detect_lang, clean_text, has_cjk
from advisor.query.vocab import _CUE_RES
from advisor.textcheck import looks_binary, unreadable_count


def _states_something(d: _Draft) -> bool:
    return bool(d.slots) or any(d.extra.get(k) for k in _STATED_EXTRAS)


def _not_a_follow_up(d: _Draft, last_protocol: str) -> str:
    shown = d.raw.strip()
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if has_cjk(d.raw):
        return (f"没看懂“{shown}”：它没有提到模型、GPU、精度、批大小、地区或负载，所以无法接着上一个问题（{last_protocol}）回答。"
                "可以这样追问：“批大小 16 呢？”、“换成 NF4 呢？”、“换成 A800 呢？”，或者问一个新问题，"
                "例如“RTX 4090 上 Qwen2.5-7B 最省电的配置是什么？”")
    return (f"I did not understand \"{shown}\": it names no model, GPU, precision, batch size, region or workload, "
            f"so it cannot change the last question ({last_protocol}). Follow up with e.g. \"what about batch 16?\", "
            "\"and on an A800?\", \"switch to NF4\" or \"in France?\", or ask a new question such as "
            "\"greenest config for Qwen2.5-7B on an RTX 4090D\".")


def _classify(d: _Draft, context: Context | None) -> tuple[str | None, bool]:
    t = d.t
    hit = {k: any(rx.search(t) for rx in rxs) for k, rxs in _CUE_RES.items()}
    hit["plan"] = bool(_CUE_RES["plan"][0].search(d.norm))  # "QLoRA" was read as a precision already
    explain = hit["explain"] and not re.search(r"\bwhy\s+(?:is|does)\s+my|为什么我的", t)
    if hit["audit"]:
        return "audit", explain
    # a fine-tuning method or word decides, even in a comparison ("LoRA vs QLoRA", "H100 vs A100 for LoRA")
    if hit["plan"] and (not hit["compare"] or _FINETUNE_RE.search(t)):
        return "plan", explain
    reported = d.extra.get("reported_tok_s") or d.extra.get("reported_power_w")
    if (hit["compare"] or d.extra.get("all_precisions") or len(d.extra.get("gpus", [])) > 1
            or (len(d.extra.get("precisions", [])) > 1 and not hit["diagnose"] and not reported)):
        return "compare", explain
    if explain:
        # a "why" about a format is answered with the evidence across model sizes
        return ("compare" if not (d.extra.get("symptoms") or reported) else "diagnose"), True
    has_workload = any(k in d.slots for k in ("requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day"))
    trap_config = d.slots.get("precision") in ("int8_mixed", "fp8") and re.search(r"\b(?:i'?m|i am|my|we)\b|我", t)
    if hit["diagnose"] or (d.extra.get("reported_tok_s") or d.extra.get("reported_power_w")) or (
            trap_config and d.extra.get("symptoms")):
        return "diagnose", False
    if hit["worth"] and d.slots.get("precision") not in (None, "fp16", "bf16"):
        return "compare", False
    if hit["estimate"] and (has_workload or not hit["optimize"]):
        return "estimate", False
    if re.search(r"\bshould\s+i\s+use|要不要用|该不该用|应该用", t) and d.extra.get("precisions") and "model" not in d.slots:
        return "compare", True
    if hit["optimize"]:
        return "optimize", False
    if has_workload:
        return "estimate", False
    if context is not None and context.last_protocol:
        # a follow-up keeps the last protocol only when it changes something; words that state
        # nothing ("foo bar") must not silently repeat the previous answer
        if _states_something(d):
            return context.last_protocol, False
        raise QueryError([_not_a_follow_up(d, context.last_protocol)])
    if "model" in d.slots or "gpu" in d.slots or "precision" in d.slots:
        return "optimize", False
    return None, explain


_FINETUNE_RE = re.compile(r"fine[\s-]?tun|\bq?lora\b|微调|全参数|全量")
# words that point back at the conversation's configuration
_REFERS_RE = re.compile(r"\b(?:this|that|the\s+same|my|our|the\s+above|current)\s+(?:model|gpu|card|setup|config\w*|"
                        r"deployment|one|case)\b|\bfor\s+(?:it|them)\b|\bhere\b|这个模型|该模型|这张卡|这个配置|同样的|上面的")


def parse(text: str, context: Context | None = None, protocol: str | None = None, lang: str | None = None) -> Query:
    """Read a question in English or Chinese; merge it over `context` (the previous slots). `lang`
    (en or zh) sets the answer's language instead of the question's (`--lang`, the chat's /lang).
    `protocol` (one of QUERY_PROTOCOLS) forces the protocol, as the chat's /compare etc. do; with a
    context the text may then be empty ("run the last configuration through this protocol")."""
    asked = lang if lang in ("en", "zh") else None
    if not isinstance(text, str):
        raise QueryError([t(asked, "error.not_text", kind=type(text).__name__)])
    # the language the readings and errors are worded in: the one asked for, else the question's
    lang = asked or _detect_lang(text[:MAX_QUESTION_CHARS])
    if protocol is not None and protocol not in QUERY_PROTOCOLS:
        raise QueryError([t(lang, "error.unknown_protocol", protocol=protocol, accepted=", ".join(QUERY_PROTOCOLS))])
    if len(text) > MAX_QUESTION_CHARS:
        raise QueryError([t(lang, "error.too_long", n=f"{len(text):,}", top=f"{MAX_QUESTION_CHARS:,}")])
    if looks_binary(text):
        raise QueryError([t(lang, "error.binary", n=f"{unreadable_count(text):,}")])
    text = clean_text(text)
    long_number = re.search(r"\d{25,}", text)
    if long_number:  # checked first: no reader should spend time on a 400-digit "quantity"
        raise QueryError([t(lang, "error.long_number", head=long_number.group(0)[:12], n=len(long_number.group(0)))])
    d = _Draft(text, lang)
    forced = protocol
    if not d.t and not (forced and context is not None):
        raise QueryError([d.m("error.empty")])
    try:
        _read_flags(d)
        if forced == "plan" or (not forced and _CUE_RES["plan"][0].search(d.t)):
            read_finetune(d)  # first: "140 examples of 1,500 tokens" is a dataset, not a workload
        _read_precisions(d)
        _read_reported(d)
        _read_money_and_grid(d)
        _read_ownership(d)
        _read_latency(d)
        _read_batch_and_lengths(d)
        _read_workload(d)
        _read_framework(d)
        _read_gpu(d)
        _read_model(d)
        _read_region(d)
        _read_use_case(d)
        if forced:
            # the reader functions ran: the slots are known; the words only still decide "why?"
            explain = bool(_CUE_RES["explain"][0].search(d.t)) and not re.search(r"\bwhy\s+(?:is|does)\s+my|为什么我的", d.t)
            protocol = forced
        else:
            protocol, explain = _classify(d, context)
    except QueryError:
        raise
    except (ValueError, OverflowError, ArithmeticError) as err:  # a number too odd to use
        raise QueryError([f"could not read a number in the question ({err})"]) from None
    sizes = d.extra.get("batch_sizes") or []
    compared = len(d.extra.get("gpus", [])) > 1 or len(d.extra.get("precisions", [])) > 1
    if len(sizes) > 1 and (protocol != "compare" or compared):
        d.errors.insert(0, d.m("error.several_bs", values=", ".join(map(str, sizes))))
    if protocol is None:
        d.errors.append(d.m("error.nothing"))
    if d.errors:
        raise QueryError(d.errors)
    d.not_understood += _leftover_facts(d.t, d.m.lang)
    base: dict[str, Any] = {}
    # a general "why" about a format or a paradox stands alone: the chat's model and GPU are not its
    # subject unless it points at them ("for this model")
    standalone = bool(context is not None and not forced and explain and "model" not in d.slots
                      and "gpu" not in d.slots and not _REFERS_RE.search(d.norm))
    if context is not None and not standalone:
        base = {k: v for k, v in context.model_dump().items() if k in SLOTS and v is not None}
        # a new model invalidates the old size
        if "model" in d.slots:
            base.pop("model_params_b", None)
        # a new workload replaces the old one whole
        if any(k in d.slots for k in ("requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day")):
            for k in ("requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day", "workload"):
                base.pop(k, None)
    merged = {**base, **d.slots}
    carried = [k for k in base if k not in d.slots and k != "model_params_b"]
    if asked is None:  # the answer's language: a follow-up without words of its own keeps the chat's
        lang = context.lang if (context is not None and context.lang and not has_cjk(text)
                                and _detect_lang(text) == "en" and not re.search(r"[a-z]{3}", d.t)) else _detect_lang(text)
    extra = d.extra
    model_known = extra.get("model_known")
    if model_known is None and merged.get("model"):
        model_known = _is_catalog_model(merged["model"])
    return _finish(protocol, merged, lang, text, Reading(  # type: ignore[arg-type]
        warnings=d.warnings, conversions=d.conversions, not_understood=d.not_understood, words=d.words, explain=explain,
        precisions=extra.get("precisions", []), all_precisions=bool(extra.get("all_precisions")),
        gpus=extra.get("gpus", []), symptoms=extra.get("symptoms", []), reported_tok_s=extra.get("reported_tok_s"),
        reported_power_w=extra.get("reported_power_w"), reported_j_per_1k_tok=extra.get("reported_j_per_1k_tok"),
        nightly=bool(extra.get("nightly")), compiled=bool(extra.get("compiled")), model_name=extra.get("model_name"),
        model_known=bool(model_known), finetune=extra.get("finetune", {}), carried=carried, standalone=standalone,
        batch_sizes=sizes if len(sizes) > 1 else [], frameworks=extra.get("frameworks", []),
        axis="batch_size" if len(sizes) > 1 or re.search(r"batch\s*sizes|批大小|不同批", d.norm) and not compared else None))
