"""A sentence kept as its catalog key and fields, worded in a language only when it is shown.

Code that builds a sentence long before anyone knows who reads it (the auditor's findings, the
reasons a value cannot be read, the impact of a trap) keeps a `Msg` instead of a string: the
key of a template in `en.toml`/`zh.toml` and its fields, where a field may itself be a `Msg` (a
reason inside a finding). `msg.render(lang)` words it; `str(msg)` is the English, so a `Msg` can
go wherever English text went (SARIF, the concise and GitHub formats, JSON's `message`).
A pydantic model, so a Finding that carries one stays JSON and caches as it did.
"""

from __future__ import annotations

from typing import Union

from pydantic import BaseModel, ConfigDict

from advisor.messages import For, has, t

Field = Union[str, int, float, "Msg", list["Msg"]]


class Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    fields: dict[str, Field] = {}

    def render(self, lang: str | None) -> str:
        """The sentence in `lang` (nested messages in the same language; a list of messages joined
        the way the language joins clauses)."""
        m = For(lang)
        vals = {k: _value(v, m) for k, v in self.fields.items()}
        return t(m.lang, self.key, **vals) if vals else t(m.lang, self.key)

    def __str__(self) -> str:
        return self.render("en")

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _value(v: Field, m: For) -> str | int | float:
    if isinstance(v, Msg):
        return v.render(m.lang)
    if isinstance(v, list):
        return m.join([x.render(m.lang) for x in v], "clause")
    return v


def msg(key: str, /, **fields: Field) -> Msg:
    """`Msg(key, fields)`, checked: the key must be in the catalog (a typo fails where it is made)."""
    if not has(key):
        raise KeyError(f"no message '{key}' in advisor/messages/en.toml")
    return Msg(key=key, fields=fields)


def word(group: str, value: str) -> Msg | str:
    """A value word of the catalog (`[group] value = ...`) as a message, or the value itself when
    the catalog has no entry for it (a name, which reads the same in both languages)."""
    return msg(f"{group}.{value}") if has(f"{group}.{value}") else value


def shown(text: str | Msg, lang: str | None) -> str:
    """Text that may be a message, in `lang`."""
    return text.render(lang) if isinstance(text, Msg) else text


Msg.model_rebuild()
