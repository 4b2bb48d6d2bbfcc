"""The chat's slash commands: the table (/help, completion) and one function per command.

Each handler takes the Chat and the text after the command and returns False only to leave."""

from __future__ import annotations

import difflib
import os
import shlex
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.chat.messages import LANGS, cell_width, wrap

if TYPE_CHECKING:
    from advisor.chat.session import Chat

FORMATS: tuple[str, ...] = ("rich", "markdown", "json")
# /data prints at most this many rows; the rest is counted and `ecolobster data list` shown.
DATA_ROWS_SHOWN = 25


@dataclass(frozen=True)
class Command:
    name: str
    args: str
    help_en: str
    help_zh: str
    aliases: tuple[str, ...] = ()


COMMANDS: tuple[Command, ...] = (
    Command("/help", "", "this list", "显示本列表", ("/?",)),
    Command("/optimize", "[QUESTION]", "the greenest configuration for the model and GPU in context",
            "为当前模型和 GPU 找最省电的配置"),
    Command("/compare", "[QUESTION]", "compare precisions, GPUs or batch sizes", "比较精度、GPU 或批大小"),
    Command("/estimate", "[QUESTION]", "energy, cost and CO2 of a workload", "估算负载的电量、费用和碳排放"),
    Command("/diagnose", "[QUESTION]", "why inference is slow or the bill is high", "诊断推理慢或电费高的原因"),
    Command("/plan", "QUESTION", "plan a fine-tuning run (LoRA, QLoRA, full)", "规划微调（LoRA、QLoRA、全参数）"),
    Command("/audit", "PATH ...", "audit Python files or folders for energy traps", "审查 Python 文件或文件夹中的能耗陷阱"),
    Command("/bench", "ARGS", "measure on this machine's GPU (`ecolobster bench ARGS`)",
            "在本机 GPU 上测量（`ecolobster bench 参数`）"),
    Command("/data", "[WORDS]", "the measurement rows, filtered by GPU, model, precision...",
            "查看测量数据，可按 GPU、模型、精度等筛选"),
    Command("/lang", "en|zh", "answer in English or Chinese", "切换回答语言"),
    Command("/format", "rich|markdown|json", "how answers are shown", "回答的显示格式"),
    Command("/more", "", "the rest of the last answer (tables, chart, code, provenance)",
            "上一个回答的其余内容（表格、图表、代码、来源）"),
    Command("/save", "FILE", "save the last answer as Markdown", "把上一个回答保存为 Markdown"),
    Command("/report", "FILE", "save this conversation's answers as one HTML page with charts",
            "把本次对话的所有回答保存为带图表的 HTML 页面"),
    Command("/context", "", "what carries over to the next question", "显示会沿用的上下文"),
    Command("/why", "", "how the last question was read: slots, their words, defaults, what was not used",
            "上一个问题是如何被理解的：槽位、来源词、默认值、未使用的信息"),
    Command("/reset", "", "forget the context", "清空上下文"),
    Command("/quit", "", "leave (Ctrl-D works too)", "退出（也可以按 Ctrl-D）", ("/exit", "/q")),
)
COMMAND_NAMES: tuple[str, ...] = tuple(c.name for c in COMMANDS)
_ALIASES: dict[str, str] = {a: c.name for c in COMMANDS for a in c.aliases}

# The protocol slash commands force their protocol on the question, so it goes there even when
# the words alone would read as another one ("/diagnose ... compare ...").
SLASH_PROTOCOLS: dict[str, str] = {
    "/optimize": "optimize", "/compare": "compare", "/estimate": "estimate", "/diagnose": "diagnose",
}


def cmd_more(chat: Chat, rest: str) -> bool:
    if chat.state.last_answer is None:
        chat.say(chat.t("nothing_more"))
        return True
    render = need("advisor.render", "part_render")
    out = render.render(chat.state.last_answer, chat.state.fmt, width=chat.width(), color=chat.color, detail="rest")
    chat.say(out.rstrip("\n"), wrapped=False)
    return True

def dispatch(chat: Chat, text: str) -> bool:
    """Run one slash command (aliases allowed); an unknown one gets the nearest names."""
    head, _, rest = text.partition(" ")
    name = head.lower()
    name = _ALIASES.get(name, name)
    handler = HANDLERS.get(name)
    if handler is None:
        if "/" in head[1:] and Path(head).expanduser().exists():  # a path typed on its own
            chat.say(chat.t("path_hint", path=head))
            return True
        candidates = list(COMMAND_NAMES) + list(_ALIASES)
        near = difflib.get_close_matches(name, candidates, n=2, cutoff=0.5)
        near = list(dict.fromkeys(_ALIASES.get(n, n) for n in near))
        line = chat.t("unknown_cmd", cmd=head)
        if near:
            line += chat.t("did_you_mean", near=" or ".join(near) if chat.state.lang == "en" else "、".join(near))
        chat.say(line + chat.t("help_hint"))
        return True
    return handler(chat, rest.strip())

def cmd_help(chat: Chat, rest: str) -> bool:
    lang = chat.state.lang
    width = chat.width()
    lines = [wrap(chat.t("help_title"), width), "", chat.t("help_commands")]
    for c in COMMANDS:
        usage = f"{c.name} {c.args}".strip()
        line = f"  {usage:<28} {c.help_zh if lang == 'zh' else c.help_en}"
        lines.append(wrap(line, width, indent=31))
    chat.say("\n".join(lines), wrapped=False)
    return True

def cmd_protocol(chat: Chat, name: str, rest: str) -> bool:
    if not rest and chat.state.context is None:
        chat.say(chat.t("ask_usage", cmd=name))
        return True
    chat._ask(rest, protocol=SLASH_PROTOCOLS[name])
    return True

def cmd_plan(chat: Chat, rest: str) -> bool:
    import importlib.util

    if importlib.util.find_spec("advisor.protocols.plan") is None:
        chat.say(chat.t("plan_missing"))
        return True
    if not rest:
        chat.say(chat.t("plan_usage"))
        return True
    from advisor.api import plan_from_text

    chat.show(plan_from_text(rest))
    return True

def _args(chat: Chat, rest: str) -> list[str] | None:
    try:
        return shlex.split(rest)
    except ValueError as err:
        chat.say(chat.t("bad_args", reason=err))
        return None

def cmd_audit(chat: Chat, rest: str) -> bool:
    args = _args(chat, rest)
    if args is None:
        return True
    if not args:
        chat.say(chat.t("audit_usage"))
        return True
    paths = [str(Path(a).expanduser()) for a in args]
    for p in paths:
        if not Path(p).exists():
            chat.say(chat.t("audit_missing", path=p))
            return True
    audit_paths = need("advisor.api", "part_audit", "audit_paths")
    chat.show(audit_paths(paths, gpu=chat._ctx("gpu"), lang=chat.state.lang))
    return True

def cmd_bench(chat: Chat, rest: str) -> bool:
    import importlib.util

    args = _args(chat, rest)
    if args is None:
        return True
    if importlib.util.find_spec("torch") is None:
        chat.say(chat.t("bench_missing"))
        return True
    import subprocess

    env = dict(os.environ)
    if not chat.color:
        env["NO_COLOR"] = "1"
    # A child process: the engine's imports (torch) stay out of the chat, and Ctrl-C stops it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "advisor.cli", "bench", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True, encoding="utf-8", errors="replace", env=env,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            chat._write(line)
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    if rc:
        chat.had_error = True
        chat.say(chat.t("bench_failed", rc=rc))
    return True

def _choice(chat: Chat, rest: str, accepted: Iterable[str], aliases: dict[str, str], usage: str,
            **fields: object) -> str | None:
    """The setting a command's argument names (an alias read as its value), or None after saying
    the command's usage when it names none of `accepted`."""
    choice = rest.strip().lower()
    choice = aliases.get(choice, choice)
    if choice not in accepted:
        chat.say(chat.t(usage, **fields))
        return None
    return choice


def cmd_lang(chat: Chat, rest: str) -> bool:
    choice = _choice(chat, rest, LANGS, {"cn": "zh", "zh-cn": "zh", "中文": "zh", "chinese": "zh", "english": "en"},
                     "lang_usage", lang=chat.state.lang)
    if choice is None:
        return True
    chat.state.lang = choice  # type: ignore[assignment]
    chat.state.lang_forced = True
    ctx = chat.state.context
    if ctx is not None and hasattr(ctx, "model_copy") and "lang" in getattr(type(ctx), "model_fields", {}):
        chat.state.context = ctx.model_copy(update={"lang": choice})
    chat.say(chat.t("lang_set"))
    return True

def cmd_format(chat: Chat, rest: str) -> bool:
    choice = _choice(chat, rest, FORMATS, {"md": "markdown"}, "format_usage", fmt=chat.state.fmt)
    if choice is None:
        return True
    chat.state.fmt = choice  # type: ignore[assignment]
    chat.say(chat.t("format_set", fmt=choice))
    return True

def cmd_save(chat: Chat, rest: str) -> bool:
    target = _one_path(chat, rest, "save_usage")
    if target is None:
        return True
    if chat.state.last_answer is None:
        chat.say(chat.t("nothing_to_save"))
        return True
    render = need("advisor.render", "part_render")
    path = target
    if _write(chat, path, render.to_markdown(chat.state.last_answer).rstrip("\n") + "\n"):
        chat.say(chat.t("saved", path=path))
    return True


def _one_path(chat: Chat, rest: str, usage: str) -> Path | None:
    """The one file /save or /report writes to; None (after saying why) when not exactly one."""
    args = _args(chat, rest)
    if args is None:
        return None
    if len(args) != 1:
        chat.say(chat.t(usage))
        return None
    return Path(args[0]).expanduser()


def _write(chat: Chat, path: Path, text: str) -> bool:
    """Write a file /save or /report asked for; a failure is said, and False returned."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        chat.say(chat.t("save_failed", path=path, reason=err.strerror or err))
        return False
    return True

def cmd_report(chat: Chat, rest: str) -> bool:
    target = _one_path(chat, rest, "report_usage")
    if target is None:
        return True
    if not chat.state.answers:
        chat.say(chat.t("nothing_to_save"))
        return True
    html = need("advisor.render.html", "part_render")
    plots = need("advisor.render.plots", "part_render")
    path = target
    try:
        page = html.answers_page(chat.state.answers)
    except plots.ReportUnavailable as err:
        chat.say(str(err))
        return True
    if not _write(chat, path, page):
        return True
    chat.say(chat.t("reported", n=len(chat.state.answers), path=path))
    return True

def cmd_context(chat: Chat, rest: str) -> bool:
    items = chat.context_items()
    session = [("lang", chat.state.lang), ("format", chat.state.fmt),
               (chat.t("mood"), chat.mood or chat.t("no_answer_yet"))]
    col = max(cell_width(label) for label, _ in items + session) + 2
    width = chat.width()

    def row(label: str, value: str) -> str:
        return wrap(f"  {label}{' ' * (col - cell_width(label))}{value}", width, indent=2 + col)

    lines = [chat.t("context_title") if items else chat.t("context_empty")]
    lines += [row(label, value) for label, value in items]
    last = getattr(chat.state.last_answer, "query", None) or {}
    if last.get("carried"):
        lines += ["", chat.t("carried_title")]
        lines += [row(k.replace("_", " "), short(last.get(k))) for k in last["carried"] if last.get(k) is not None]
    elif last.get("standalone"):
        lines += ["", chat.t("standalone_note")]
    lines += ["", chat.t("session_title")] + [row(label, value) for label, value in session]
    chat.say("\n".join(lines), wrapped=False)
    return True

def cmd_why(chat: Chat, rest: str) -> bool:
    last = chat.state.last_answer
    query = getattr(last, "query", None) or {}
    if not query.get("protocol"):
        chat.say(chat.t("why_none"))
        return True
    from advisor.api import explain_parse

    chat.say(explain_parse(query, chat.state.lang).rstrip("\n"), wrapped=False)
    return True

def cmd_reset(chat: Chat, rest: str) -> bool:
    chat.state.context = None
    chat.state.last_answer = None
    chat.say(chat.t("reset_done"))
    return True

def cmd_data(chat: Chat, rest: str) -> bool:
    import argparse

    from advisor.api import PRECISIONS, DataError, catalog, filter_rows, load_rows
    from advisor.limits import UsageError

    args = _args(chat, rest)
    if args is None:
        return True
    ns = argparse.Namespace(gpu=None, model=None, precision=None, source=None, kind=None, task=None)
    for word in args:
        w = word.lower()
        if w in PRECISIONS:
            ns.precision = w
        elif w in ("measured", "simulated", "derived"):
            ns.kind = w
        elif w in ("inference", "finetune"):
            ns.task = w
        else:
            hint = ""
            try:
                ns.gpu = catalog.resolve_gpu(word).key
                continue
            except (catalog.UnknownName, DataError, OSError) as err:
                near = getattr(err, "nearest", [])
            try:
                ns.model = catalog.resolve_model(word).key
                continue
            except (catalog.UnknownName, DataError, OSError) as err:
                near = near + list(getattr(err, "nearest", []))
            if any(word.lower() in r.model_id.lower() for r in load_rows()):
                ns.model = word  # a substring of a hub id also filters (as in `data list`)
                continue
            if near:
                hint = " " + chat.t("did_you_mean", near=", ".join(near)).strip()
            chat.say(chat.t("data_unknown", word=word, hint=hint))
            return True
    try:
        rows = filter_rows(ns) if args else load_rows()
    except (UsageError, DataError) as err:
        chat.say(chat.t("data_failed", err=err))
        return True
    if not args:
        chat.say(chat.t("data_summary", n=len(rows), measured=sum(r.kind == "measured" for r in rows),
                        simulated=sum(r.kind == "simulated" for r in rows)))
        return True
    _show_rows(chat, rows, ns)
    return True

def _show_rows(chat: Chat, rows: list[Any], ns: Any) -> None:
    flags = "".join(f" --{k} {v}" for k, v in vars(ns).items() if v)
    filters = ", ".join(f"{k}={v}" for k, v in vars(ns).items() if v)
    if not rows:
        chat.say(chat.t("data_none", filters=filters))
        return
    fmt = chat.state.fmt
    if fmt == "json":
        import json

        chat.say(json.dumps([r.model_dump(mode="json") for r in rows], indent=2, ensure_ascii=False),
                 wrapped=False)
        return
    rows = sorted(rows, key=lambda r: (r.gpu, r.model_id, r.precision, r.batch_size, r.id))
    # The id already names GPU, model, precision and batch; empty columns are left out.
    columns = [("id", "id"), ("throughput_tok_s", "tok/s"), ("power_w", "W"),
               ("energy_j_per_1k_tok", "J/1k tok"), ("kind", "kind")]
    columns = [(c, h) for c, h in columns if any(getattr(r, c) is not None for r in rows)]
    cols = tuple(c for c, _ in columns)
    heads = tuple(h for _, h in columns)
    shown = rows[:DATA_ROWS_SHOWN]
    title = chat.t("data_title", n=len(rows), filters=f" ({filters})" if filters else "")
    if fmt == "markdown":
        lines = [f"**{title}**", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        lines += ["| " + " | ".join(_cell(getattr(r, c)) for c in cols) + " |" for r in shown]
        text = "\n".join(lines)
    else:
        from io import StringIO

        from rich import box
        from rich.console import Console
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False)
        for h in heads:
            table.add_column(h, overflow="fold", justify="left" if h in ("id", "kind") else "right")
        for r in shown:
            table.add_row(*(_cell(getattr(r, c)) for c in cols))
        buf = StringIO()
        Console(file=buf, width=chat.width(), force_terminal=chat.color, no_color=not chat.color,
                color_system="standard" if chat.color else None, legacy_windows=False).print(table)
        body = "\n".join(line.rstrip() for line in buf.getvalue().splitlines()).strip("\n")
        text = title + "\n" + body
    if len(rows) > len(shown):
        text += "\n" + wrap(chat.t("data_more", more=len(rows) - len(shown), args=flags), chat.width())
    chat.say(text, wrapped=False)


class NotReady(Exception):
    def __init__(self, what: str, reason: str):
        super().__init__(f"{what}: {reason}")
        self.what, self.reason = what, reason


def need(module: str, what: str, attr: str | None = None) -> Any:
    """Import a part of the advisor when it is first needed (a module, or one name of it, such as
    `advisor.api`'s `audit_code`); a missing part is said plainly.

    `what` is the message key naming the part, so the user reads it in their language."""
    import importlib

    try:
        mod = importlib.import_module(module)
        return getattr(mod, attr) if attr else mod
    except ModuleNotFoundError as err:
        # the part itself (or a part behind the API) is missing, not a library it needs
        if err.name and (module.startswith(err.name) or err.name.split(".")[0] in ("advisor", "measurements")):
            raise NotReady(what, f"module {err.name} is missing") from None
        raise


def short(value: Any) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        return ", ".join(f"{k}={short(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _cell(v: Any) -> str:
    from advisor.render.cells import row_cell

    return row_cell(v, decimals=1, whole_from=1000)  # the chat's narrower table


def _protocol(name: str) -> Callable[[Chat, str], bool]:
    return lambda chat, rest: cmd_protocol(chat, name, rest)


HANDLERS: dict[str, Callable[[Chat, str], bool]] = {
    "/help": cmd_help,
    **{name: _protocol(name) for name in SLASH_PROTOCOLS},
    "/plan": cmd_plan,
    "/audit": cmd_audit,
    "/bench": cmd_bench,
    "/data": cmd_data,
    "/lang": cmd_lang,
    "/format": cmd_format,
    "/more": cmd_more,
    "/save": cmd_save,
    "/report": cmd_report,
    "/context": cmd_context,
    "/why": cmd_why,
    "/reset": cmd_reset,
    "/quit": lambda chat, rest: False,
}
