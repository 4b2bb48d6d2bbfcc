"""One piece of code per piece of logic: one validation-error formatter, one precision vocabulary,
one set of input limits, one row-cell formatter (issue #19)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for top in ("advisor", "engine", "measurements") for p in sorted((ROOT / top).rglob("*.py"))]


def _where(pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return sorted(p.relative_to(ROOT).as_posix() for p in SOURCES if rx.search(p.read_text(encoding="utf-8")))


def test_validation_errors_are_read_in_one_place():
    assert _where(r"\.errors\(") == ["measurements/validation.py"]


def test_the_precision_list_is_written_once():
    # the whole list (not a subset such as the quantised formats) is written only there
    assert _where(r"""["']fp32["'],\s*["']fp16["'],\s*["']bf16["'],\s*["']fp8["'],\s*["']nf4["']""") == [
        "measurements/vocab.py"]


def test_input_limits_are_defined_once_in_advisor_limits():
    names = ("MAX_QUESTION_CHARS", "MAX_CODE_CHARS", "MAX_HISTORY_ENTRY_CHARS", "MAX_HISTORY_FILE_BYTES",
             "MAX_NAME_CHARS", "MAX_ARGUMENTS_BYTES", "MAX_AUDIT_FILES", "MAX_ROWS", "MIN_WIDTH", "MAX_WIDTH")
    for name in names:
        defined = _where(rf"(?m)^{name}\b[^=\n]*= *\d|^[A-Z_, ]*\b{name}\b[A-Z_, ]*= *\d")
        # the chat's own answer width (40-100 columns) is a layout choice of the chat, not an input limit
        defined = [p for p in defined if not (p == "advisor/chat/session.py" and name in ("MIN_WIDTH", "MAX_WIDTH"))]
        assert defined == ["advisor/limits.py"], name


def test_the_formatter_keeps_each_wording():
    from measurements.validation import describe, messages

    class M(BaseModel):
        batch_size: int = Field(ge=1)
        name: str

    try:
        M(batch_size=0)  # type: ignore[call-arg]
    except ValidationError as err:
        assert messages(err) == ["batch_size: Input should be greater than or equal to 1", "name: Field required"]
        assert describe(err, "field '{where}': {msg}", whole="row") == (
            "field 'batch_size': Input should be greater than or equal to 1; field 'name': Field required")
        assert messages(err, "--{where}: {msg}")[0].startswith("--batch_size: ")


def test_one_row_cell_formatter():
    from advisor.render.cells import row_cell

    assert (row_cell(None), row_cell(12.345), row_cell(1234.5), row_cell(7)) == ("-", "12.35", "1,234", "7")
    assert (row_cell(123.45, decimals=1, whole_from=1000), row_cell(12_345.6, decimals=1, whole_from=1000)) == (
        "123.5", "12,346")
