"""The one formatter of pydantic validation errors: each error as where (the dotted field path)
and what, in the wording each caller needs (a CSV line, a flag, a tool argument, a question)."""

from __future__ import annotations

from typing import NamedTuple

from pydantic import ValidationError


class FieldError(NamedTuple):
    loc: tuple[int | str, ...]  # the path as pydantic gives it
    where: str  # the path joined, "" for the input as a whole
    kind: str  # pydantic's error type, e.g. "missing", "extra_forbidden"
    msg: str


def field_errors(err: ValidationError, loc_sep: str = ".") -> list[FieldError]:
    return [FieldError(tuple(e["loc"]), loc_sep.join(str(x) for x in e["loc"]), e["type"], e["msg"])
            for e in err.errors(include_url=False)]


def messages(err: ValidationError, template: str = "{where}: {msg}", *, whole: str = "",
             loc_sep: str = ".") -> list[str]:
    """One line per error, `template` filled with `where` (or `whole` for the input itself) and `msg`."""
    return [template.format(where=e.where or whole, msg=e.msg) for e in field_errors(err, loc_sep)]


def describe(err: ValidationError, template: str = "{where}: {msg}", *, whole: str = "", sep: str = "; ") -> str:
    return sep.join(messages(err, template, whole=whole))
