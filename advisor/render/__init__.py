"""Render an Answer three ways: rich (terminal), Markdown (reports) and JSON (the model itself).

Renderers are generic: whatever a protocol puts in the Answer (alerts, tables, charts, costs,
recommendations, provenance, caveats, citations) is shown in the same order, so new protocols
need no renderer code."""

from __future__ import annotations

from typing import Any, Literal

from advisor.answer import Answer
from advisor.render.json_render import to_json
from advisor.render.markdown import to_markdown

Format = Literal["rich", "markdown", "json", "html"]
FORMATS: tuple[str, ...] = ("rich", "markdown", "json")  # the text formats (the chat's /format)
# The formats of the answering commands' --format: html is a page with the charts drawn
# (advisor.render.html; matplotlib, imported only then).
CLI_FORMATS: tuple[str, ...] = (*FORMATS, "html")

__all__ = ["CLI_FORMATS", "FORMATS", "Format", "print_answer", "render", "to_json", "to_markdown"]


Detail = Literal["brief", "full"]
DETAILS: tuple[str, ...] = ("brief", "full")


def render(answer: Answer, fmt: Format = "rich", width: int | None = None, color: bool | None = None,
           detail: str = "full", more_hint: str = "--detail full") -> str:
    """The answer as text. `width=None` means the terminal's width (COLUMNS when set, else the
    terminal, else 100 columns); `color=None` means automatic: off when NO_COLOR is set or stdout
    is not a terminal. `detail` applies to rich output: "brief" is the first screen (the point and
    one table, ending with `more_hint`), "rest" what brief left out, "full" everything; JSON and
    Markdown always keep everything."""
    if fmt == "json":
        return to_json(answer)
    if fmt == "markdown":
        return to_markdown(answer)
    if fmt == "html":
        from advisor.render.html import to_html

        return to_html(answer)
    if fmt == "rich":
        from advisor.render.rich_render import to_rich

        if width is None:
            import shutil

            width = shutil.get_terminal_size((100, 24)).columns
        return to_rich(answer, width=width, color=color, detail=detail, more_hint=more_hint)
    raise ValueError(f"unknown format '{fmt}'. Accepted: {', '.join(CLI_FORMATS)}")


def print_answer(answer: Answer, fmt: Format = "rich", console: Any = None) -> None:
    """Print to a rich Console (given, or a new one on stdout) or, for Markdown/JSON, plain stdout."""
    if fmt == "rich":
        from rich.console import Console

        from advisor.render.rich_render import renderable

        console = console or Console(highlight=False, emoji=False)
        console.print(renderable(answer, console.width))
        return
    text = render(answer, fmt)
    if console is not None:
        console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)
    else:
        import sys

        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def write_answer(answer: Answer, fmt: Format, width: int | None = None, detail: str = "brief") -> None:
    """What the CLI commands print: rich at the terminal's width unless one is given (the first
    screen unless `detail` is "full"), else the text of the format (JSON ends with a newline)."""
    import sys

    if fmt == "rich" and width is None:
        import shutil

        from advisor.limits import clamp_width

        width = clamp_width(shutil.get_terminal_size((100, 24)).columns)  # COLUMNS=99999999 too
    sys.stdout.write(render(answer, fmt, width=width or 100, detail=detail))
    if fmt == "json":
        sys.stdout.write("\n")
