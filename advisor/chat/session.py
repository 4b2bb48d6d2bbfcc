"""The EcoLobster chat: a prompt-toolkit session that carries context from one question to the next.

Two ways in, one brain:

- interactive (stdin is a terminal): a `PromptSession` with persistent history, suggestions from
  history, completion of slash commands and of model, GPU and precision names from the catalogs,
  multi-line input (an open ``` fence keeps Enter inserting lines; Esc-Enter always does), and a
  bottom toolbar showing the carried context and the lobster's mood;
- piped (stdin is not a terminal): one question per line, or blocks separated by blank lines
  (code blocks are kept whole and audited), answers printed as they come.

Both feed `Chat.handle(text)`, which answers a question through `advisor.api.ask`, audits pasted
code through `advisor.protocols.audit`, or runs a slash command. Nothing here computes a figure:
every number shown comes from an Answer (and so from the measurements) or from the dataset rows.

Start-up is kept short by importing only the standard library at module level: prompt-toolkit is
imported when the interactive session starts, the advisor (pydantic, the dataset, rich) when the
first question is answered, and in the background as soon as the first prompt is on screen.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from advisor.api import unreadable_count
from advisor.chat import commands
from advisor.chat.commands import COMMAND_NAMES, COMMANDS, FORMATS, NotReady, need, short
from advisor.chat.history import history_path, make_history
from advisor.chat.input import clean_text, extract_code, fence_open, iter_units
from advisor.chat.messages import EXAMPLES, LANGS, Lang, color_enabled, env_lang, msg, wrap
from advisor.limits import MAX_CODE_CHARS, MAX_QUESTION_CHARS, MAX_UNREADABLE_SHARE

Fmt = Literal["rich", "markdown", "json"]

# Answers never get wider than this, even in a wide terminal: long lines are hard to read.
MAX_WIDTH = 100
MIN_WIDTH = 40
PROMPT_NAME = "ecolobster"  # the prompt reads "ecolobster> "

# Context slots shown in the toolbar and by /context, in this order, with short labels.
CONTEXT_LABELS: tuple[tuple[str, str], ...] = (
    ("model", "model"),
    ("gpu", "gpu"),
    ("precision", "precision"),
    ("batch_size", "batch"),
    ("prompt_tokens", "prompt tok"),
    ("gen_tokens", "gen tok"),
    ("workload", "workload"),
    ("requests_per_month", "requests/month"),
    ("tokens_per_month", "tokens/month"),
    ("job_tokens", "job tokens"),
    ("hours_per_day", "hours/day"),
    ("region", "region"),
    ("price_usd_kwh", "$/kWh"),
    ("pue", "PUE"),
    ("use_case", "use case"),
    ("model_params_b", "params (B)"),
)
# Slots the toolbar leaves out (they show in /context); slots nobody needs to see at all.
TOOLBAR_SKIP: frozenset[str] = frozenset({
    "prompt_tokens", "gen_tokens", "use_case", "model_params_b", "requests_per_month", "tokens_per_month",
    "job_tokens", "hours_per_day", "price_usd_kwh", "pue",
})
CONTEXT_HIDDEN: frozenset[str] = frozenset({"lang", "last_protocol"})


# --------------------------------------------------------------------------------------------
# The chat: state plus one handler shared by the interactive and the piped modes.
# --------------------------------------------------------------------------------------------


@dataclass
class ChatState:
    context: Any = None  # advisor.query.Context once a question has been answered
    lang: Lang = "en"
    lang_forced: bool = False
    fmt: Fmt = "rich"
    last_answer: Any = None  # advisor.answer.Answer
    answers: list[Any] = field(default_factory=list)  # every answer shown, for /report
    turns: int = 0


class Chat:
    """Answers one input at a time; writes everything through `write`.

    `write` receives finished text (ending with a newline); `width` says how wide answers may be;
    `color` whether rich output may carry colour.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        lang: Lang | None = None,
        fmt: Fmt = "rich",
        width: Callable[[], int] | None = None,
        color: bool = False,
    ) -> None:
        self._write = write
        self._width = width or (lambda: 80)
        self.color = color
        self.state = ChatState(lang=lang or env_lang(), lang_forced=lang is not None, fmt=fmt)
        self.had_error = False

    # ---- output -------------------------------------------------------------------------

    def attach(self, write: Callable[[str], None], width: Callable[[], int]) -> None:
        """Send output somewhere else (the interactive session writes through prompt-toolkit)."""
        self._write, self._width = write, width

    def say(self, text: str, *, wrapped: bool = True) -> None:
        """Write a message of the chat's own, wrapped to the width (answers come pre-rendered)."""
        if wrapped:
            text = wrap(text.rstrip("\n"), self.width())
        self._write(text if text.endswith("\n") else text + "\n")

    def t(self, key: str, **kw: Any) -> str:
        return msg(self.state.lang, key, **kw)

    def width(self) -> int:
        try:
            w = int(self._width())
        except Exception:  # a terminal that cannot say its size
            w = 80
        return max(MIN_WIDTH, min(w, MAX_WIDTH))

    def welcome(self) -> str:
        lang = self.state.lang
        lines = [msg(lang, "welcome"), "", msg(lang, "try")]
        lines += [f"  • {q}" for q in EXAMPLES[lang]]
        lines += ["", msg(lang, "tail")]
        return wrap("\n".join(lines), self.width()) + "\n"

    @property
    def mood(self) -> str | None:
        ans = self.state.last_answer
        return getattr(ans, "mood", None) if ans is not None else None

    def context_items(self, brief: bool = False) -> list[tuple[str, str]]:
        """(label, value) of the context slots that hold something, in display order.

        `brief` keeps to what the toolbar has room for; otherwise every slot is listed, including
        ones added to Context after this was written."""
        ctx = self.state.context
        if ctx is None:
            return []
        data = ctx.model_dump(exclude_none=True) if hasattr(ctx, "model_dump") else dict(vars(ctx))
        out: list[tuple[str, str]] = []
        for key, label in CONTEXT_LABELS:
            value = data.get(key)
            if value not in (None, "", [], {}) and not (brief and key in TOOLBAR_SKIP):
                out.append((label, short(value)))
        if brief:
            return out
        known = {k for k, _ in CONTEXT_LABELS} | CONTEXT_HIDDEN
        for key, value in data.items():
            if key not in known and value not in (None, "", [], {}, False):
                out.append((key.replace("_", " "), short(value)))
        return out

    # ---- the one entry point ------------------------------------------------------------

    def handle(self, text: str) -> bool:
        """Answer one input. False means the user asked to leave."""
        bad = unreadable_count(text)
        if bad and bad > MAX_UNREADABLE_SHARE * max(len(text), 1):
            self.say(self.t("binary", n=bad))
            return True
        text = clean_text(text).strip()
        if not text:
            return True
        try:
            if text.startswith("/") and not text.startswith("//"):
                return commands.dispatch(self, text)
            code = extract_code(text)
            if code is not None:
                if len(code) > MAX_CODE_CHARS:
                    self.say(self.t("code_too_long", n=len(code), max=MAX_CODE_CHARS))
                    return True
                self._audit_code(code, text)
                return True
            if len(text) > MAX_QUESTION_CHARS:
                self.say(self.t("too_long", n=len(text), max=MAX_QUESTION_CHARS))
                return True
            self._ask(text)
        except KeyboardInterrupt:
            raise
        except NotReady as err:
            self.say(self.t("not_ready", what=self.t(err.what), reason=err.reason))
        except Exception as err:  # the session survives any bug in one answer
            self.had_error = True
            self.say(self.t("internal_error", err=f"{type(err).__name__}: {err}"))
        return True

    # ---- answering ----------------------------------------------------------------------

    def _ask(self, text: str, protocol: str | None = None) -> None:
        api = need("advisor.api", "part_api")
        lang = self.state.lang if self.state.lang_forced else None
        answer, context = api.ask(text, self.state.context, lang=lang, protocol=protocol)
        if context is not None:
            self.state.context = context
        self.show(answer)

    def _audit_code(self, code: str, text: str = "") -> None:
        api = need("advisor.api", "part_audit")
        # the words around the pasted code ("帮我看看这段代码") set the language, as a question's do
        words = "\n".join(ln for ln in text.replace(code, " ").splitlines() if not ln.strip().startswith("```"))
        lang = self.state.lang if self.state.lang_forced or not words.strip() else api.detect_lang(words)
        answer = api.audit_code(code, filename="<pasted>", gpu=self._ctx("gpu"), lang=lang)
        self.show(answer)

    def show(self, answer: Any) -> None:
        """Render an Answer in the current format and remember it for /save and the toolbar."""
        render = need("advisor.render", "part_render")
        lang = getattr(answer, "lang", None)
        if lang in LANGS and not self.state.lang_forced:
            self.state.lang = lang
        self.state.last_answer = answer
        self.state.answers.append(answer)
        self.state.turns += 1
        if getattr(answer, "protocol", None) == "error":
            self.had_error = True
        # rich answers open with the first screen; /more shows the rest
        out = render.render(answer, self.state.fmt, width=self.width(), color=self.color, detail="brief",
                            more_hint="/more")
        self.say(out.rstrip("\n"), wrapped=False)
    def _ctx(self, slot: str) -> Any:
        return getattr(self.state.context, slot, None) if self.state.context is not None else None

# --------------------------------------------------------------------------------------------
# The interactive session.
# --------------------------------------------------------------------------------------------


def _completer(chat: Chat) -> Any:
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    paths = PathCompleter(expanduser=True)
    word_re = re.compile(r"[\w.\-/]+$")
    vocab: list[tuple[str, str]] = []

    def vocabulary() -> list[tuple[str, str]]:
        if not vocab:
            vocab.extend(completion_words())
        return vocab

    by_name = {c.name: c for c in COMMANDS}

    class ChatCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
            text = document.text_before_cursor
            if text.startswith("/") and " " not in text:
                for name in COMMAND_NAMES:
                    if name.startswith(text.lower()):
                        c = by_name[name]
                        meta = c.help_zh if chat.state.lang == "zh" else c.help_en  # follows /lang
                        yield Completion(name, start_position=-len(text), display_meta=meta)
                return
            if text.startswith("/"):
                cmd, _, rest = text.partition(" ")
                fixed = {"/lang": LANGS, "/format": FORMATS}.get(cmd.lower())
                if fixed is not None:
                    for choice in fixed:
                        if choice.startswith(rest.strip()):
                            yield Completion(choice, start_position=-len(rest.lstrip()))
                    return
                if cmd.lower() in ("/audit", "/save", "/report"):
                    last = rest.split(" ")[-1]
                    yield from paths.get_completions(Document(last, len(last)), complete_event)
                    return
            m = word_re.search(text)
            if not m:
                return
            word = m.group(0).lower()
            seen: set[str] = set()
            for candidate, kind in vocabulary():
                if candidate.lower().startswith(word) and candidate.lower() != word and candidate not in seen:
                    seen.add(candidate)
                    yield Completion(candidate, start_position=-len(word), display_meta=kind)

    return ChatCompleter()


def completion_words() -> list[tuple[str, str]]:
    """(word, kind) for completion: model and GPU names from the catalogs, and the precisions.

    When a catalog cannot be read, the names in the dataset rows stand in, so completion still
    offers what the answers know about.
    """
    words: list[tuple[str, str]] = []
    try:
        from advisor.api import catalog

        for m in catalog.models():
            words += [(m.hub_id.split("/", 1)[1], "model"), (m.key, "model"), (m.hub_id, "model")]
        for g in catalog.gpus():
            words += [(g.key, "GPU"), (g.name.replace("NVIDIA ", "").replace("GeForce ", ""), "GPU")]
            words += [(a, "GPU") for a in g.aliases if " " not in a]
    except Exception:
        try:
            from advisor.api import load_rows

            rows = load_rows()
            words += sorted({(r.model_id.split("/", 1)[-1], "model") for r in rows})
            words += sorted({(r.gpu, "GPU") for r in rows})
        except Exception:
            pass
    try:
        from advisor.api import PRECISIONS
    except Exception:
        PRECISIONS = ()  # noqa: N806 - the same name as the schema's constant, on purpose
    words += [(p, "precision") for p in PRECISIONS]
    unique: dict[str, tuple[str, str]] = {}
    for word, kind in words:  # "Qwen2.5-7B" and "qwen2.5-7b" complete the same thing: keep the first
        unique.setdefault(word.lower(), (word, kind))
    return list(unique.values())


MOOD_STYLES: dict[str, str] = {
    "green": "bg:ansigreen fg:ansiblack",
    "yellow": "bg:ansiyellow fg:ansiblack",
    "orange": "bg:#ff8700 fg:ansiblack",
    "red": "bg:ansired fg:ansiwhite",
    "gray": "bg:ansigray fg:ansiblack",
}


def toolbar_fragments(chat: Chat, columns: int = 80) -> list[tuple[str, str]]:
    """The bottom toolbar: the lobster's mood, then the carried context, cut to the width."""
    mood = chat.mood
    mood_text = f" 🦞 {mood} " if mood else " 🦞 "
    items = chat.context_items(brief=True)
    ctx = " · ".join(f"{label} {value}" for label, value in items) if items else chat.t("context_empty").split(".")[0]
    tail = f"  [{chat.state.lang} · {chat.state.fmt}] /help "
    room = max(columns - len(mood_text) - 2 - len(tail) - 2, 10)
    if len(ctx) > room:
        ctx = ctx[: room - 1] + "…"
    return [(f"class:mood.{mood or 'none'}", mood_text), ("class:bottom-toolbar.text", f" {ctx}"),
            ("class:bottom-toolbar.dim", tail)]


def run_interactive(
    chat: Chat,
    *,
    history: Path | None,
    input: Any = None,  # noqa: A002 - prompt-toolkit's own name for it
    output: Any = None,
    warm_up: bool = True,
) -> int:
    """Run the prompt-toolkit session until Ctrl-D or /quit; returns the exit status."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.application.current import get_app
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.filters import Condition
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.output import create_output
    from prompt_toolkit.styles import Style

    out = output if output is not None else create_output()

    def write(text: str) -> None:
        out.write_raw(text)
        out.flush()

    chat.attach(write, lambda: out.get_size().columns)

    hist, problem = make_history(history)
    chat.say(chat.welcome())
    if problem:
        chat.say(chat.t("history_fallback", path=history, reason=problem))

    kb = KeyBindings()

    @kb.add("enter", filter=Condition(lambda: fence_open(get_app().current_buffer.text)))
    def _newline_in_fence(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    @kb.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    style = Style.from_dict({
        "prompt": "bold fg:ansired",
        "bottom-toolbar": "noreverse bg:#303030 fg:#d0d0d0",
        "bottom-toolbar.dim": "fg:#8a8a8a",
        **{f"mood.{k}": v for k, v in MOOD_STYLES.items()},
        "mood.none": "bg:#444444 fg:ansiwhite",
    })
    def toolbar() -> Any:  # prompt-toolkit's formatted text: (style, text) fragments
        return toolbar_fragments(chat, out.get_size().columns)

    session: Any = PromptSession(
        message=[("class:prompt", PROMPT_NAME), ("", "> ")],
        history=hist,
        auto_suggest=AutoSuggestFromHistory(),
        completer=_completer(chat),
        complete_while_typing=Condition(lambda: get_app().current_buffer.text.startswith("/")),
        bottom_toolbar=toolbar,
        key_bindings=kb,
        style=style,
        prompt_continuation=lambda width, line_number, is_soft_wrap: "." * (width - 1) + " ",
        input=input,
        output=out,
    )

    import threading

    warm_thread: list[threading.Thread] = []

    def warm(_app: Any = None) -> None:
        # After the first prompt is drawn (not before: the imports would hold the GIL while it
        # renders), load the advisor in the background so the first answer does not pay for it.
        if warm_thread or not warm_up:
            return

        def load() -> None:
            try:
                import advisor.api  # noqa: F401
                import advisor.render  # noqa: F401
            except Exception:
                pass  # reported when the first answer needs them

        warm_thread.append(threading.Thread(target=load, name="ecolobster-warm-up", daemon=True))
        warm_thread[0].start()

    session.app.after_render += warm

    hinted = False
    while True:
        try:
            text = session.prompt()
        except KeyboardInterrupt:
            if not hinted:
                chat.say(chat.t("line_cancelled"))
                hinted = True
            continue
        except EOFError:
            break
        try:
            if not chat.handle(text):
                break
        except KeyboardInterrupt:
            chat.say(chat.t("answer_cancelled"))
    chat.say(chat.t("bye"))
    if warm_thread:
        # Leaving while the advisor still loads: let the import finish rather than stopping the
        # interpreter in the middle of it.
        warm_thread[0].join()
    return 0


def run_pipe(chat: Chat, stream: Any) -> int:
    """Answer each question read from a non-terminal stdin; 1 when any answer was an error."""
    echo = chat.state.fmt != "json"
    for unit in iter_units(_lines(stream)):
        if echo:
            first = unit.splitlines()[0] if unit else ""
            more = " …" if "\n" in unit else ""
            shown = f"{first[:200]}{'…' if len(first) > 200 else ''}{more}"
            # The question as a header line, so a saved transcript reads as a conversation.
            chat.say(f"**> {shown}**\n" if chat.state.fmt == "markdown" else f"> {shown}", wrapped=False)
        if not chat.handle(unit):
            break
        if echo:
            chat.say("")
    return 1 if chat.had_error else 0


def _lines(stream: Any) -> Iterator[str]:
    """Lines of text from stdin, decoded forgivingly (bad bytes become U+FFFD, then refused)."""
    binary = getattr(stream, "buffer", None)
    if binary is not None:
        for raw in binary:
            yield raw.decode("utf-8", errors="replace")
    else:
        yield from stream


def main(
    *,
    lang: Lang | None = None,
    fmt: Fmt = "rich",
    history_file: Path | None = None,
    no_history: bool = False,
    stdin: Any = None,
    stdout: Any = None,
) -> int:
    """`ecolobster chat`: interactive on a terminal, one question per line otherwise."""
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    if not (stdin.isatty() and stdout.isatty()):
        def write(text: str) -> None:
            stdout.write(text)
            stdout.flush()

        import shutil

        chat = Chat(write, lang=lang, fmt=fmt, color=color_enabled(stdout),
                    width=lambda: shutil.get_terminal_size((80, 24)).columns)
        return run_pipe(chat, stdin)
    chat = Chat(lambda s: None, lang=lang, fmt=fmt, color=color_enabled(stdout))
    path = None if no_history else (history_file or history_path())
    return run_interactive(chat, history=path)
