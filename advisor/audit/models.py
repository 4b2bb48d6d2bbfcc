"""The auditor's boundary types: a finding, a per-file diagnostic, the impact behind a finding and
the report of a whole run. Pydantic models, so the JSON and SARIF writers and the chat all read
the same fields."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor.answer import MOOD_ORDER, Confidence, Mood
from advisor.messages.text import Msg

Basis = Literal["measured", "best practice"]
DiagLevel = Literal["error", "warning", "info"]


# Characters that change how a terminal or a Markdown viewer shows the text around them: controls
# (ANSI escapes start with ESC) and Unicode bidi overrides/isolates (a file named with U+202E reads
# backwards, "Trojan Source"). Shown as \uXXXX in human-readable output.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def printable(text: str) -> str:
    """`text` with control and bidi characters escaped, for the rich and Markdown reports."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Impact(_Model):
    """What a finding costs, and how we know.

    `basis` is "measured" when the figures are paired rows of the measurements dataset (their ids
    in `row_ids`), "best practice" when the dataset holds no evidence for this trap yet.
    """

    basis: Basis
    text: str = Field(description="in English (SARIF, the concise and GitHub formats)")
    msg: Msg | None = Field(default=None, description="the same as a catalog message, worded in the answer's language")
    waste_pct: float | None = Field(default=None, description="extra energy vs the fix, percent (drives severity)")
    low_pct: float | None = None
    high_pct: float | None = None
    row_ids: list[str] = Field(default_factory=list)
    scope: str = Field(default="", description="the GPUs / configurations the figures cover")


class Finding(_Model):
    code: str
    name: str
    title: str
    severity: Mood
    confidence: Confidence
    path: str
    line: int = Field(ge=1)
    col: int = Field(default=1, ge=1)
    end_line: int | None = None
    cell: int | None = Field(default=None, description="notebook cell (1-based); line is then within the cell")
    message: str = Field(description="in English (SARIF, the concise and GitHub formats, baselines)")
    text: Msg | None = Field(default=None, description="the message as a catalog message, worded when shown")
    fix: str
    fix_text: Msg | None = Field(default=None, description="a fix of this finding's own (not the rule's) as a message")
    impact: Impact
    snippet: str = ""
    suppressed_by: str | None = Field(default=None, description="the comment that silenced it (line: text)")
    file_line: int | None = Field(default=None, description="notebooks: the line in the .ipynb file itself")

    @property
    def location(self) -> str:
        """Where, as people read it (control and bidi characters of the path escaped)."""
        path = printable(self.path)
        if self.cell is not None:
            return f"{path}:cell {self.cell}:{self.line}"
        return f"{path}:{self.line}"

    def at_or_above(self, threshold: Mood) -> bool:
        return self.severity != "gray" and MOOD_ORDER[self.severity] >= MOOD_ORDER[threshold]


class Diagnostic(_Model):
    """Something about a file that stopped or limited the audit of it (never a crash)."""

    path: str
    level: DiagLevel
    message: str
    text: Msg | None = None  # the message as a catalog message, where it has one
    line: int | None = None


def diagnostic(path: str, level: DiagLevel, text: Msg, line: int | None = None) -> Diagnostic:
    """A diagnostic whose message is a catalog message (its English in `message`)."""
    return Diagnostic(path=path, level=level, message=str(text), text=text, line=line)


class AuditReport(_Model):
    findings: list[Finding] = Field(default_factory=list)
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    files_scanned: int = 0
    lines_scanned: int = 0
    suppressed: int = 0
    suppressed_findings: list[Finding] = Field(default_factory=list, description="kept for SARIF `suppressions`")
    unused_suppressions: list[Diagnostic] = Field(default_factory=list)
    baselined: int = Field(default=0, description="findings left out because the baseline holds them")
    files_given: int = Field(default=0, description="files the run tried to audit (read or not)")
    rules: list[str] = Field(default_factory=list, description="codes of the rules that ran")
    gpu: str | None = None
    elapsed_s: float = 0.0

    def worst(self) -> Mood:
        from advisor.answer import worst_mood

        if not self.findings:
            return "green"
        return worst_mood(*(f.severity for f in self.findings))

    @property
    def nothing_audited(self) -> bool:
        """Not one file could be read and parsed: a run that checked nothing must not look clean."""
        return self.files_scanned == 0

    def failing(self, threshold: Mood) -> list[Finding]:
        return [f for f in self.findings if f.at_or_above(threshold)]


def shown(text: Msg | None, english: str, lang: str | None) -> str:
    """A finding's, impact's or diagnostic's text in `lang` (its English where it has no message),
    with control and bidi characters escaped."""
    return printable(text.render(lang) if text is not None else english)
