"""Answer -> JSON: the Answer model itself, so agents and tests read the same fields."""

from __future__ import annotations

from advisor.answer import Answer


def to_json(answer: Answer, indent: int | None = 2) -> str:
    return answer.model_dump_json(indent=indent)
