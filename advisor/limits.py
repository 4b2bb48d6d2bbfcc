"""The advisor's input limits, one set for every way in (CLI, chat, MCP, the parser), and the error
raised for input outside them. These are policy against runaway input, not measured figures: a question is a sentence or a paragraph; code
goes to the auditor, which reads whole files under its own per-file size and time budget."""

from __future__ import annotations

# A question: long paragraphs are fine (~900 words); a pasted book is not. At this length a
# pathological question parses in ~25 ms median, ~50 ms at worst, on the 2-core dev machine
# (benchmarks/answer_speed.py); at 10,000 the worst case passed 100 ms under load.
MAX_QUESTION_CHARS = 5_000
# Code pasted into the chat or sent to the MCP audit tool: a source file of a few thousand lines
# (files on disk go through the auditor's own per-file budget instead).
MAX_CODE_CHARS = 200_000
# Share of unreadable characters above which input is treated as binary data, not text.
MAX_UNREADABLE_SHARE = 0.10
# History entries longer than this (big pastes) are not written to the chat's history file.
MAX_HISTORY_ENTRY_CHARS = 20_000
# A history file larger than this is not loaded (it is read whole at start): ~50,000 questions.
MAX_HISTORY_FILE_BYTES = 50_000_000
# MCP tool calls, from an agent: a name (model, GPU, region) is short; a whole call is a megabyte of
# JSON; an audit reads a folder of at most so many files; a query lists at most so many rows.
MAX_NAME_CHARS = 200
MAX_ARGUMENTS_BYTES = 1_000_000
MAX_AUDIT_FILES = 500
MAX_ROWS = 500
DEFAULT_ROWS = 50

# Accepted --width of rich output: narrower cannot hold a table; wider than any screen only makes
# the renderer build megabytes of padding.
MIN_WIDTH, MAX_WIDTH = 20, 1000


class UsageError(Exception):
    """Bad input from the user: printed as a clear message (what was wrong, what is accepted), exit code 2."""


def clamp_width(value: int) -> int:
    """A width taken from the terminal or $COLUMNS, kept within the accepted range."""
    return min(max(value, MIN_WIDTH), MAX_WIDTH)
