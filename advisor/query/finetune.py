"""The fine-tuning reader: what a PLAN question states about the run (method, examples and their
length, tokens, sequence length, epochs, LoRA rank, batch, accumulation, checkpointing, optimizer,
VRAM, budget). It runs before the other readers on a fine-tuning question, so "140 examples of
1,500 tokens" is read as a dataset, not as a workload, and what it takes is not reported as
unused. The result is `Query.finetune`: the fields of `advisor.protocols.plan.PlanRequest`."""

from __future__ import annotations

import re
from typing import Any

from advisor.query.draft import _Draft
from advisor.query.text import _blank, _number

_FT_NUM = r"(?<![\d.,])((?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?)\s*(k|m|b|thousand|million|billion|万|千)?(?![a-z])"


def _n(value: str, mult: str | None) -> float:
    return _number(value, mult)


def read_finetune(d: _Draft) -> None:
    """Fill d.extra["finetune"] (PlanRequest fields) and blank what was read."""
    t = d.t
    fields: dict[str, Any] = {}

    def take(key: str, value: Any, m: re.Match[str]) -> None:
        nonlocal t
        fields[key] = value
        d.words[f"finetune.{key}"] = " ".join(m.group(0).split())
        t = _blank(t, m)

    methods = [m for m, pat in (("qlora", r"\bq-?lora\b"), ("lora", r"(?<![q-])\blora\b"),
                                ("full", r"\bfull(?:[\s-]+(?:fine[\s-]?tun\w*|parameter\w*|ft))|全参数|全量"))
               if re.search(pat, t)]
    method_or = r"(?:q?lora|full[\w\s-]{0,20})\s*(?:,|or|vs\.?|versus)\s*(?:q?lora|full)|compare|还是|对比"
    if len(methods) == 1 and not re.search(method_or, t):
        fields["method"] = methods[0]
    # (?![a-z]) rather than \b: in "24gb显卡" the CJK character is a word character too
    if m := re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(?:gb|g)(?![a-z])\s*(?:of\s+)?(?:的\s*)?(?:vram|gpu|card|graphics|显卡|显存)", t):
        take("vram_gb", _number(m.group(1)), m)
    if m := re.search(r"(?:budget|under|at most|max(?:imum)?|预算)\D{0,12}?\$?\s*(?<![\d.,])((?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?)\s*(?:usd|dollars?|美元)?", t) or \
            re.search(r"\$\s*(?<![\d.,])((?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?)\s*(?:budget)?", t):
        take("budget_usd", _number(m.group(1)), m)
    if m := re.search(_FT_NUM + r"\s*(?:training\s+)?(?:examples|samples|rows|conversations|dialogues|tickets|documents|docs|records|pairs|instructions|texts|条(?:样本|数据)?|个样本|条)", t):
        take("examples", int(_n(m.group(1), m.group(2))), m)
    if m := re.search(r"(?:of|averag\w*|avg|~|about|每条)\s*~?\s*" + _FT_NUM + r"\s*tokens?", t):
        take("avg_tokens", _n(m.group(1), m.group(2)), m)
    elif "examples" not in fields and (m := re.search(_FT_NUM + r"\s*tokens?\b", t)):
        take("tokens", _n(m.group(1), m.group(2)), m)
    if m := re.search(r"(?:seq(?:uence)?(?:[\s_-]*len(?:gth)?)?|max[\s_-]*len(?:gth)?|context|序列长度)\s*(?:of|=|:)?\s*((?:\d{1,3}(?:,\d{3})+(?!\d)|\d+))", t):
        take("seq_len", int(_number(m.group(1))), m)
    if m := re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(?:epochs?|轮)", t):
        take("epochs", _number(m.group(1)), m)
    if m := re.search(r"\b(?:r|rank)\s*(?:=|of)?\s*(\d+)", t):
        take("rank", int(_number(m.group(1))), m)
    if m := re.search(r"(?:batch(?:[\s_-]*size)?|bs)\s*(?:=|of)?\s*(\d+)", t):
        take("batch_size", int(_number(m.group(1))), m)
    if m := re.search(r"(?:grad(?:ient)?[\s_-]*accum\w*|accumulation)\s*(?:=|of)?\s*(\d+)", t):
        take("grad_accum", int(_number(m.group(1))), m)
    if m := re.search(r"(?:no|without)\s+(?:gradient\s+|activation\s+)?checkpointing", t):
        take("grad_checkpointing", False, m)
    elif m := re.search(r"(?:gradient|activation)[\s_-]*checkpointing", t):
        take("grad_checkpointing", True, m)
    if m := re.search(r"\b(paged[\s_-]*adamw[\s_-]*(?:8|32)bit|adamw[\s_-]*8bit|adam8bit|8[\s-]*bit adam\w*|sgd)\b", t):
        take("optimizer", "adamw_8bit" if "8" in m.group(1) and "paged" not in m.group(1) else m.group(1), m)
    d.t = t
    d.extra["finetune"] = fields
