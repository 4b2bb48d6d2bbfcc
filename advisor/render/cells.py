"""The one formatter of a measurement row's cells in a table (data list, the chat's /data):
"-" for an empty field, thousands separated, fewer decimals as the value grows."""

from __future__ import annotations

from typing import Any


def row_cell(v: Any, *, decimals: int = 2, whole_from: float = 100) -> str:
    """`v` as a table cell: floats with `decimals` places below `whole_from`, whole numbers from it."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{decimals}f}" if abs(v) < whole_from else f"{v:,.0f}"
    return str(v)
