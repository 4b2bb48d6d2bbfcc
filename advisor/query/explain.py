"""What the parser understood, in words: every slot with the words it came from, what carried over
from earlier questions, the defaults applied, the conversions and what was not understood. Shown by
`ecolobster ask --explain-parse "..."` and the chat's `/why`."""

from __future__ import annotations

from typing import Any

from advisor.messages import LANGS
from advisor.messages import t as msg

# slot order for the listing: the configuration first, then the workload, then the rest
_ORDER = ("model", "model_params_b", "gpu", "gpu_count", "framework", "precision", "fp8_mode", "batch_size", "prompt_tokens",
          "gen_tokens", "requests_per_month", "tokens_per_month", "job_tokens", "hours_per_day", "workload", "use_case",
          "region", "price_usd_kwh", "grid_gco2_kwh", "pue", "own_gpus", "gpu_lifetime_years", "gpu_purchase_usd", "itl_target_ms", "itl_percentile", "e2e_target_s",
          "reported_tok_s", "reported_power_w", "reported_j_per_1k_tok")

# the listing's headings are the catalog's [explain] section (advisor/messages)
_HEADINGS = ("stated", "carried", "defaults", "conversions", "not_understood", "protocol", "none", "compare", "finetune",
             "standalone")


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if v >= 100 and v == int(v) else f"{v:,.4g}"
    return str(v)


def explain_parse(query: Any, lang: str | None = None) -> str:
    """Plain text (no markup) of what `query` (a Query, or an Answer's query dict) was read as."""
    q = query.model_dump() if hasattr(query, "model_dump") else dict(query)
    lang = lang if lang in LANGS else (q.get("lang") or "en")
    t = {k: msg(lang, f"explain.{k}") for k in _HEADINGS}
    words: dict[str, str] = q.get("stated_words") or {}
    carried = set(q.get("carried") or [])
    defaulted = set(q.get("defaulted") or []) | {line.split(":", 1)[0].replace(" ", "_")
                                                 for line in q.get("defaults_applied") or []}
    lines = [f"{t['protocol']}: {q.get('protocol', '?')}" + (f" ({t['standalone']})" if q.get("standalone") else "")]
    stated = [k for k in _ORDER if q.get(k) is not None and k not in carried and k not in defaulted
              and (k in words or k.startswith("reported_"))]
    stated += [k for k in _ORDER if q.get(k) is not None and k not in stated and k not in carried
               and k not in defaulted and k in words]
    col = max([len(k) for k in stated + sorted(carried)] + [10]) + 2
    lines += ["", t["stated"] + ":"]
    lines += [f"  {k:<{col}}{_value(q[k]):<22} <- \"{words.get(k, '')}\"" for k in stated] or [f"  {t['none']}"]
    if q.get("compare_precisions") or q.get("compare_gpus"):
        lines.append(f"  {t['compare'] + ':':<{col}}{', '.join(q.get('compare_precisions') or q.get('compare_gpus'))}")
    ft = q.get("finetune") or {}
    if ft:
        lines += ["", t["finetune"] + ":"]
        lines += [f"  {k:<{col}}{_value(v):<22} <- \"{words.get('finetune.' + k, '')}\"" for k, v in ft.items()]
    if carried:
        lines += ["", t["carried"] + ":"]
        lines += [f"  {k:<{col}}{_value(q.get(k))}" for k in _ORDER if k in carried]
    for key in ("defaults_applied", "conversions", "not_understood"):
        items = q.get(key) or []
        title = t["defaults" if key == "defaults_applied" else key]
        lines += ["", title + ":"] + ([f"  - {x}" for x in items] or [f"  {t['none']}"])
    return "\n".join(lines) + "\n"
