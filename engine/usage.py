"""The error for bad `ecolobster bench` arguments. The engine has its own (it never imports the
advisor): the bench command prints it as `error: ...` and exits with 2, as every command does."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: what was wrong and what is accepted."""
