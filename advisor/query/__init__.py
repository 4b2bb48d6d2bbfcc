"""Understanding a question: free text (English or Chinese) or structured fields -> a validated Query.

The parser is rule-based (regular expressions over a normalised text plus catalog lookups): fast,
deterministic, it explains every assumption it makes and never crashes on odd input. Every fact a
question states either fills a slot or is listed in `Query.not_understood`; what cannot be answered
at all becomes a `QueryError` whose messages say what was wrong and what is accepted.

Modules: `slots` (the typed models), `text` (normalising, numbers), `vocab` (the words known),
`lookup` (catalog names and factors), `read_names` / `read_numbers` (one reader per kind of fact),
`parse` (free text), `fields` (named fields), `finish` (defaults and checks shared by both),
`finetune` (the fine-tuning planner's request), `explain` (what was read from which words).

Public API (other modules code against these names):
- `Context`: the slots carried from one question to the next (the chat's follow-ups).
- `Query`: a Context plus the protocol, what was defaulted, warnings, unit conversions and
  `not_understood`.
- `QueryError(ValueError)` with `.errors: list[str]`.
- `parse(text, context=None, protocol=None) -> Query` (`protocol` forces the protocol instead of
  reading it from the words) and `from_fields(protocol, **slots) -> Query`.
"""

from __future__ import annotations

from advisor.query.fields import flags_context, from_fields
from advisor.query.parse import parse
from advisor.query.slots import (
    DEFAULT_GPU,
    DEFAULT_PRECISION,
    DEFAULT_REGION,
    DEFAULT_USE_CASE,
    PRECISION_LABEL,
    QUERY_PROTOCOLS,
    SLOTS,
    USE_CASE_LABEL,
    USE_CASES,
    CompareAxis,
    Context,
    Lang,
    Query,
    QueryError,
    QueryProtocol,
    UseCase,
)
from advisor.query.text import _detect_lang, clean_text, has_cjk, normalize_text

detect_lang = _detect_lang

__all__ = [
    "DEFAULT_GPU", "DEFAULT_PRECISION", "DEFAULT_REGION", "DEFAULT_USE_CASE", "PRECISION_LABEL", "QUERY_PROTOCOLS",
    "SLOTS", "USE_CASES", "USE_CASE_LABEL", "CompareAxis", "Context", "Lang", "Query", "QueryError", "QueryProtocol",
    "UseCase", "clean_text", "detect_lang", "flags_context", "from_fields", "has_cjk", "normalize_text", "parse",
]
