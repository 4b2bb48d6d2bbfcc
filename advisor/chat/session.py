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

import contextlib
import difflib
import os
import re
import shlex
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from advisor.limits import MAX_CODE_CHARS, MAX_QUESTION_CHARS, MAX_UNREADABLE_SHARE
from advisor.textcheck import unreadable_count

Lang = Literal["en", "zh"]
Fmt = Literal["rich", "markdown", "json"]
FORMATS: tuple[str, ...] = ("rich", "markdown", "json")
LANGS: tuple[str, ...] = ("en", "zh")

# Input limits (advisor.limits, shared with the parser and the MCP server): beyond them the input
# is refused with a message instead of being parsed.
# History entries longer than this (big pastes) are not written to the history file.
MAX_HISTORY_ENTRY_CHARS = 20_000
# A history file larger than this is not loaded (it is read whole at start): ~50,000 questions.
MAX_HISTORY_FILE_BYTES = 50_000_000
# Answers never get wider than this, even in a wide terminal: long lines are hard to read.
MAX_WIDTH = 100
MIN_WIDTH = 40
# /data prints at most this many rows; the rest is counted and `ecolobster data list` shown.
DATA_ROWS_SHOWN = 25

HISTORY_FILE = "chat_history"
PROMPT_NAME = "ecolobster"  # the prompt reads "ecolobster> "

# --------------------------------------------------------------------------------------------
# Words the chat itself says (answers bring their own words). English and Chinese.
# --------------------------------------------------------------------------------------------

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "welcome": "🦞 Hi, I'm EcoLobster. Ask me how to run or fine-tune a model on a GPU with the least "
                   "energy and money; every figure I show comes from a measurement you can look up.",
        "try": "Try one of these:",
        "tail": "/help lists the commands · Tab completes names · Esc-Enter adds a line · Ctrl-D leaves.",
        "bye": "🦞 Bye! Stay cool.",
        "line_cancelled": "(Line cleared. Ctrl-D or /quit leaves the chat.)",
        "answer_cancelled": "Stopped. Ask again, or try something else.",
        "too_long": "That input is {n:,} characters long; I read questions of up to {max:,} characters. "
                    "To check a large file, use /audit PATH.",
        "code_too_long": "That code is {n:,} characters long; I audit pasted code of up to {max:,} "
                         "characters. Save it to a file and use /audit PATH.",
        "binary": "That looks like binary data ({n:,} unreadable characters), not a question. "
                  "Type a question in English or Chinese, or /help.",
        "unknown_cmd": "Unknown command {cmd}.",
        "path_hint": "{path} is a path, not a command. To check it for energy traps: /audit {path}",
        "did_you_mean": " Did you mean {near}?",
        "help_hint": " /help lists the commands.",
        "lang_set": "Language: English. I'll answer in English from now on.",
        "lang_usage": "Usage: /lang en|zh (now: {lang}).",
        "format_set": "Answers are now shown as {fmt}.",
        "format_usage": "Usage: /format rich|markdown|json (now: {fmt}).",
        "saved": "Saved the last answer as Markdown to {path}.",
        "save_usage": "Usage: /save FILE, e.g. /save answer.md",
        "nothing_to_save": "There is no answer to save yet: ask a question first.",
        "nothing_more": "There is nothing more to show: ask a question first.",
        "save_failed": "Could not write {path}: {reason}.",
        "reported": "Saved {n} answer(s) of this conversation as one HTML page: {path}.",
        "report_usage": "Usage: /report FILE, e.g. /report session.html (every answer of this conversation, "
                        "charts drawn)",
        "context_empty": "No context yet. Name a model and a GPU in a question and I'll remember them.",
        "context_title": "Carried over to the next question:",
        "session_title": "Session:",
        "carried_title": "Carried into the last answer from earlier questions:",
        "standalone_note": "The last question was a general one: it did not use this context.",
        "why_none": "No question answered yet: ask one, then /why shows how it was read.",
        "reset_done": "Context cleared; the next question starts fresh.",
        "history_fallback": "The history file {path} can't be used ({reason}). This session keeps its "
                            "history in memory only.",
        "history_off": "History is off for this session.",
        "audit_usage": "Usage: /audit PATH [PATH ...] (Python files or folders). To audit a snippet, "
                       "paste it inside ``` fences.",
        "audit_missing": "No such file or folder: {path}.",
        "bench_missing": "Measuring needs the engine extra (PyTorch, transformers, NVML). Install it with:\n"
                         "  pip install \"ecolobster[engine]\"\n"
                         "then run /bench again (or `ecolobster bench --help`).",
        "bench_failed": "The benchmark stopped with exit code {rc}.",
        "plan_missing": "Fine-tuning planning is not part of this installation yet.",
        "plan_usage": "Usage: /plan QUESTION, e.g. /plan LoRA or QLoRA for Mistral-7B on a 24 GB GPU",
        "not_ready": "{what} is not available in this installation ({reason}).",
        "internal_error": "Something went wrong inside EcoLobster while answering ({err}). The chat keeps "
                          "going; please report this.",
        "bad_args": "Could not read the arguments: {reason}.",
        "data_none": "No rows match {filters}.",
        "data_title": "{n} measurement rows{filters}",
        "data_more": "{more} more rows: `ecolobster data list{args}` shows them all.",
        "data_unknown": "I don't know '{word}' as a GPU, model, precision, kind (measured, simulated, "
                        "derived) or task (inference, finetune).{hint}",
        "data_failed": "The dataset does not load: {err}",
        "data_summary": "The dataset: {n} rows ({measured} measured, {simulated} simulated). "
                        "Filter with words, e.g. /data a800 int8_pure, or ask a question.",
        "help_title": "Ask in plain English or Chinese; follow-ups keep the model, GPU, precision, batch "
                      "size, workload and region. Paste code (inside ``` fences) to have it audited.",
        "help_commands": "Commands:",
        "ask_usage": "Usage: {cmd} QUESTION (or just ask the question).",
        "no_answer_yet": "none yet",
        "part_api": "Answering questions",
        "part_audit": "The code auditor",
        "part_render": "Rendering answers",
        "mood": "mood",
    },
    "zh": {
        "welcome": "🦞 你好，我是 EcoLobster（节能龙虾）。问我怎样在 GPU 上以最少的电和钱运行或微调模型；"
                   "我给出的每个数字都来自可以查证的测量。",
        "try": "试试这些问题：",
        "tail": "/help 列出命令 · Tab 补全名称 · Esc-Enter 换行 · Ctrl-D 退出。",
        "bye": "🦞 再见！保持清凉。",
        "line_cancelled": "（已清空本行。按 Ctrl-D 或输入 /quit 退出。）",
        "answer_cancelled": "已停止。可以重新提问，或者问点别的。",
        "too_long": "这段输入有 {n:,} 个字符；问题最多读取 {max:,} 个字符。检查大文件请用 /audit 路径。",
        "code_too_long": "这段代码有 {n:,} 个字符；粘贴的代码最多审查 {max:,} 个字符。请保存为文件后用 /audit 路径。",
        "binary": "这看起来是二进制数据（{n:,} 个无法识别的字符），不是问题。请用中文或英文提问，或输入 /help。",
        "unknown_cmd": "未知命令 {cmd}。",
        "path_hint": "{path} 是一个路径，不是命令。要检查其中的能耗陷阱：/audit {path}",
        "did_you_mean": "你是想用 {near} 吗？",
        "help_hint": "输入 /help 查看所有命令。",
        "lang_set": "语言：中文。之后我用中文回答。",
        "lang_usage": "用法：/lang en|zh（当前：{lang}）。",
        "format_set": "回答现在以 {fmt} 格式显示。",
        "format_usage": "用法：/format rich|markdown|json（当前：{fmt}）。",
        "saved": "已将上一个回答以 Markdown 保存到 {path}。",
        "save_usage": "用法：/save 文件名，例如 /save answer.md",
        "nothing_to_save": "还没有可保存的回答，请先提问。",
        "nothing_more": "没有更多内容可显示，请先提问。",
        "save_failed": "无法写入 {path}：{reason}。",
        "reported": "已将本次对话的 {n} 个回答保存为一个 HTML 页面：{path}。",
        "report_usage": "用法：/report 文件名，例如 /report session.html（本次对话的全部回答，含图表）",
        "context_empty": "还没有上下文。在问题里说出模型和 GPU，我就会记住。",
        "context_title": "下一个问题会沿用：",
        "session_title": "会话：",
        "carried_title": "上一个回答沿用了之前问题的：",
        "standalone_note": "上一个问题是一般性问题，没有使用这些上下文。",
        "why_none": "还没有回答过问题：先问一个，然后 /why 会显示它是如何被理解的。",
        "reset_done": "上下文已清空，下一个问题从头开始。",
        "history_fallback": "历史文件 {path} 无法使用（{reason}）。本次会话的历史只保存在内存中。",
        "history_off": "本次会话不保存历史。",
        "audit_usage": "用法：/audit 路径 [路径 ...]（Python 文件或文件夹）。审查代码片段可以直接粘贴在 ``` 之间。",
        "audit_missing": "找不到文件或文件夹：{path}。",
        "bench_missing": "测量需要安装引擎扩展（PyTorch、transformers、NVML）：\n"
                         "  pip install \"ecolobster[engine]\"\n"
                         "安装后再运行 /bench（或 `ecolobster bench --help`）。",
        "bench_failed": "基准测试以退出码 {rc} 结束。",
        "plan_missing": "当前安装还不包含微调规划功能。",
        "plan_usage": "用法：/plan 问题，例如 /plan 在 24 GB 显卡上微调 Mistral-7B 用 LoRA 还是 QLoRA",
        "not_ready": "当前安装中没有 {what}（{reason}）。",
        "internal_error": "EcoLobster 内部出错了（{err}）。会话继续；请报告这个问题。",
        "bad_args": "无法读取参数：{reason}。",
        "data_none": "没有符合 {filters} 的数据行。",
        "data_title": "{n} 条测量数据{filters}",
        "data_more": "还有 {more} 条：`ecolobster data list{args}` 可显示全部。",
        "data_unknown": "无法识别 '{word}'：它不是 GPU、模型、精度、类型（measured、simulated、derived）"
                        "或任务（inference、finetune）。{hint}",
        "data_failed": "数据集无法加载：{err}",
        "data_summary": "数据集：共 {n} 行（{measured} 行实测，{simulated} 行模拟）。"
                        "可以用词筛选，例如 /data a800 int8_pure，或者直接提问。",
        "help_title": "用中文或英文提问；追问会沿用模型、GPU、精度、批大小、负载和地区。"
                      "把代码粘贴在 ``` 之间即可审查。",
        "help_commands": "命令：",
        "ask_usage": "用法：{cmd} 问题（也可以直接提问）。",
        "no_answer_yet": "暂无",
        "part_api": "问答功能",
        "part_audit": "代码审查功能",
        "part_render": "回答的显示功能",
        "mood": "心情",
    },
}

EXAMPLES: dict[str, tuple[str, ...]] = {
    "en": (
        "What's the greenest way to serve Mistral-7B on an A800?",
        "Compare the precisions for Qwen2.5-7B on an RTX 5090.",
        "How much do 1 million requests to Yi-6B on an RTX 4090D cost per month?",
    ),
    "zh": (
        "在 A800 上部署 Mistral-7B，最省电的配置是什么？",
        "比较 Qwen2.5-7B 在 RTX 5090 上的各种精度。",
        "用 RTX 4090D 跑 Yi-6B，每月 100 万次请求要花多少钱？",
    ),
}


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


def msg(language: str, key: str, **kw: Any) -> str:
    table = MESSAGES.get(language, MESSAGES["en"])
    return table.get(key, MESSAGES["en"][key]).format(**kw)


def cell_width(text: str) -> int:
    """Terminal columns `text` takes: wide (CJK, emoji) characters take two, combining ones none."""
    n = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        n += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return n


_WRAP_TOKEN = re.compile(r"\s+|[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+")


def wrap(text: str, width: int, indent: int | None = None) -> str:
    """Wrap each line to `width` terminal columns; Chinese may break between any two characters.

    Continuation lines are indented like the line they continue (plus the bullet, if any), or by
    `indent` when given."""
    out: list[str] = []
    for line in text.split("\n"):
        if cell_width(line) <= width:
            out.append(line)
            continue
        lead = len(line) - len(line.lstrip(" "))
        hang = indent if indent is not None else lead + (2 if line.lstrip(" ").startswith("• ") else 0)
        current, used = "", 0
        for token in _WRAP_TOKEN.findall(line):
            w = cell_width(token)
            if used + w > width and current.strip():
                out.append(current.rstrip())
                current, used = " " * hang, hang
                if token.isspace():
                    continue
            current += token
            used += w
        if current.strip():
            out.append(current.rstrip())
    return "\n".join(out)


def env_lang() -> Lang:
    """The user's language from the locale variables: Chinese when they say zh, else English."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def color_enabled(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or odd stream
        return False


# --------------------------------------------------------------------------------------------
# Input: cleaning, code detection, splitting piped input into questions.
# --------------------------------------------------------------------------------------------

_FENCE = "```"
_FENCED = re.compile(r"```[\w+-]*[^\S\n]*\n(.*?)(?:\n[^\S\n]*```|\Z)", re.S)
_CODE_LINE = re.compile(
    r"""^\s*(?:
        import\s+\w | from\s+[\w.]+\s+import\b | def\s+\w | class\s+\w | @\w | async\s+def\b
        | (?:if|for|while|with|try|elif|else|except|finally|return)\b.*:?\s*$
        | [A-Za-z_][\w.\[\]'"]*\s*(?:=|\+=|-=)\s*\S
        | [A-Za-z_][\w.]*\(.*\)\s*$
    )""",
    re.X,
)


def fence_open(text: str) -> bool:
    """True while a ``` code fence is open: Enter then adds a line instead of sending."""
    return text.count(_FENCE) % 2 == 1


def looks_like_code_line(line: str) -> bool:
    return bool(_CODE_LINE.match(line)) or line.lstrip().startswith(_FENCE)


def extract_code(text: str) -> str | None:
    """The code in `text` if it is (or contains) a code block, else None.

    Fenced blocks are code by declaration. Unfenced text is code when it has at least two
    non-empty lines and either parses as Python or is mostly lines that read like code (a paste
    with a syntax error is still code the auditor should see).
    """
    if _FENCE in text:
        blocks = [b.strip("\n") for b in _FENCED.findall(text)]
        blocks = [b for b in blocks if b.strip()]
        return "\n\n".join(blocks) if blocks else None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        tree = None
    if tree is not None and any(not isinstance(n, ast.Expr) for n in tree.body):
        return text
    codeish = sum(looks_like_code_line(ln) or ln[:1] in (" ", "\t") for ln in lines)
    return text if codeish * 2 > len(lines) else None


def clean_text(text: str) -> str:
    """Drop control characters (keeping newlines and tabs) and normalise line endings."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def reads_like_prose(line: str) -> bool:
    """A line that ends a code block when it follows one: a question, Chinese text, a command."""
    stripped = line.strip()
    return stripped.startswith("/") or stripped.endswith(("?", "？")) or bool(_CJK.search(stripped))


def _bracket_balance(line: str) -> int:
    code = line.split("#", 1)[0]  # rough: a '#' inside a string cuts it short, which only ends a block early
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


def _parses(text: str) -> bool:
    import ast

    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def _ends_code(block: list[str], line: str) -> bool:
    """True when `block` is complete Python and `line` would break it: the line is not code."""
    text = "\n".join(block)
    return _parses(text) and not _parses(text + "\n" + line)


def iter_units(lines: Iterable[str]) -> Iterator[str]:
    """Split piped input into questions, as it streams in.

    A plain line is a question of its own and is yielded at once. A line that opens a ``` fence
    or reads like code starts a block; the block is yielded whole (it will be audited) when the
    fence closes, or when a question, a command or, after a blank line, a line that does not read
    like code comes next (never while a bracket is still open).
    """
    block: list[str] = []
    in_fence = False
    pending_blank = False
    depth = 0

    def flush() -> Iterator[str]:
        nonlocal block, depth
        if block:
            text = "\n".join(block).strip("\n")
            block, depth = [], 0
            if text.strip():
                yield text

    for raw in lines:
        line = raw.rstrip("\r\n")
        if in_fence:
            block.append(line)
            if line.strip().startswith(_FENCE):
                in_fence = False
                yield from flush()
            continue
        if not line.strip():
            if block:
                pending_blank = True
            continue
        if block:
            codeish = (looks_like_code_line(line) or line[:1] in (" ", "\t")
                       or line.lstrip().startswith(("#", ")", "]", "}")))
            if depth > 0 or codeish or not (pending_blank or reads_like_prose(line) or _ends_code(block, line)):
                if pending_blank:
                    block.append("")
                pending_blank = False
                block.append(line)
                depth += _bracket_balance(line)
                continue
            # A question or prose after a code block: the block is done; this line is new.
            pending_blank = False
            yield from flush()
        if line.strip().startswith(_FENCE):
            block.append(line)
            in_fence = line.count(_FENCE) % 2 == 1
            if not in_fence:
                yield from flush()
            continue
        if looks_like_code_line(line) and not line.lstrip().startswith("/"):
            block.append(line)
            depth = _bracket_balance(line)
            continue
        yield line
    yield from flush()


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
        self._handlers: dict[str, Callable[[str], bool]] = {
            "/help": self._cmd_help,
            "/optimize": lambda rest: self._cmd_protocol("/optimize", rest),
            "/compare": lambda rest: self._cmd_protocol("/compare", rest),
            "/estimate": lambda rest: self._cmd_protocol("/estimate", rest),
            "/diagnose": lambda rest: self._cmd_protocol("/diagnose", rest),
            "/plan": self._cmd_plan,
            "/audit": self._cmd_audit,
            "/bench": self._cmd_bench,
            "/data": self._cmd_data,
            "/lang": self._cmd_lang,
            "/format": self._cmd_format,
            "/more": self._cmd_more,
            "/save": self._cmd_save,
            "/report": self._cmd_report,
            "/context": self._cmd_context,
            "/why": self._cmd_why,
            "/reset": self._cmd_reset,
            "/quit": lambda rest: False,
        }

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
                out.append((label, _short(value)))
        if brief:
            return out
        known = {k for k, _ in CONTEXT_LABELS} | CONTEXT_HIDDEN
        for key, value in data.items():
            if key not in known and value not in (None, "", [], {}, False):
                out.append((key.replace("_", " "), _short(value)))
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
                return self._command(text)
            code = extract_code(text)
            if code is not None:
                if len(code) > MAX_CODE_CHARS:
                    self.say(self.t("code_too_long", n=len(code), max=MAX_CODE_CHARS))
                    return True
                self._audit_code(code)
                return True
            if len(text) > MAX_QUESTION_CHARS:
                self.say(self.t("too_long", n=len(text), max=MAX_QUESTION_CHARS))
                return True
            self._ask(text)
        except KeyboardInterrupt:
            raise
        except _NotReady as err:
            self.say(self.t("not_ready", what=self.t(err.what), reason=err.reason))
        except Exception as err:  # the session survives any bug in one answer
            self.had_error = True
            self.say(self.t("internal_error", err=f"{type(err).__name__}: {err}"))
        return True

    # ---- answering ----------------------------------------------------------------------

    def _ask(self, text: str, protocol: str | None = None) -> None:
        api = _need("advisor.api", "part_api")
        lang = self.state.lang if self.state.lang_forced else None
        answer, context = api.ask(text, self.state.context, lang=lang, protocol=protocol)
        if context is not None:
            self.state.context = context
        self.show(answer)

    def _audit_code(self, code: str) -> None:
        audit = _need("advisor.protocols.audit", "part_audit")
        answer = audit.audit_code(code, filename="<pasted>", gpu=self._ctx("gpu"))
        self.show(answer)

    def show(self, answer: Any) -> None:
        """Render an Answer in the current format and remember it for /save and the toolbar."""
        render = _need("advisor.render", "part_render")
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

    def _cmd_more(self, rest: str) -> bool:
        if self.state.last_answer is None:
            self.say(self.t("nothing_more"))
            return True
        render = _need("advisor.render", "part_render")
        out = render.render(self.state.last_answer, self.state.fmt, width=self.width(), color=self.color, detail="rest")
        self.say(out.rstrip("\n"), wrapped=False)
        return True

    def _ctx(self, slot: str) -> Any:
        return getattr(self.state.context, slot, None) if self.state.context is not None else None

    # ---- slash commands -----------------------------------------------------------------

    def _command(self, text: str) -> bool:
        head, _, rest = text.partition(" ")
        name = head.lower()
        name = _ALIASES.get(name, name)
        handler = self._handlers.get(name)
        if handler is None:
            if "/" in head[1:] and Path(head).expanduser().exists():  # a path typed on its own
                self.say(self.t("path_hint", path=head))
                return True
            candidates = list(COMMAND_NAMES) + list(_ALIASES)
            near = difflib.get_close_matches(name, candidates, n=2, cutoff=0.5)
            near = list(dict.fromkeys(_ALIASES.get(n, n) for n in near))
            line = self.t("unknown_cmd", cmd=head)
            if near:
                line += self.t("did_you_mean", near=" or ".join(near) if self.state.lang == "en" else "、".join(near))
            self.say(line + self.t("help_hint"))
            return True
        return handler(rest.strip())

    def _cmd_help(self, rest: str) -> bool:
        lang = self.state.lang
        width = self.width()
        lines = [wrap(self.t("help_title"), width), "", self.t("help_commands")]
        for c in COMMANDS:
            usage = f"{c.name} {c.args}".strip()
            line = f"  {usage:<28} {c.help_zh if lang == 'zh' else c.help_en}"
            lines.append(wrap(line, width, indent=31))
        self.say("\n".join(lines), wrapped=False)
        return True

    def _cmd_protocol(self, name: str, rest: str) -> bool:
        if not rest and self.state.context is None:
            self.say(self.t("ask_usage", cmd=name))
            return True
        self._ask(rest, protocol=SLASH_PROTOCOLS[name])
        return True

    def _cmd_plan(self, rest: str) -> bool:
        import importlib.util

        if importlib.util.find_spec("advisor.protocols.plan") is None:
            self.say(self.t("plan_missing"))
            return True
        if not rest:
            self.say(self.t("plan_usage"))
            return True
        from advisor.protocols import plan

        self.show(plan.plan_from_text(rest))
        return True

    def _args(self, rest: str) -> list[str] | None:
        try:
            return shlex.split(rest)
        except ValueError as err:
            self.say(self.t("bad_args", reason=err))
            return None

    def _cmd_audit(self, rest: str) -> bool:
        args = self._args(rest)
        if args is None:
            return True
        if not args:
            self.say(self.t("audit_usage"))
            return True
        paths = [str(Path(a).expanduser()) for a in args]
        for p in paths:
            if not Path(p).exists():
                self.say(self.t("audit_missing", path=p))
                return True
        audit = _need("advisor.protocols.audit", "part_audit")
        self.show(audit.audit_paths(paths, gpu=self._ctx("gpu")))
        return True

    def _cmd_bench(self, rest: str) -> bool:
        import importlib.util

        args = self._args(rest)
        if args is None:
            return True
        if importlib.util.find_spec("torch") is None:
            self.say(self.t("bench_missing"))
            return True
        import subprocess

        env = dict(os.environ)
        if not self.color:
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
                self._write(line)
            rc = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
        if rc:
            self.had_error = True
            self.say(self.t("bench_failed", rc=rc))
        return True

    def _cmd_lang(self, rest: str) -> bool:
        choice = rest.strip().lower()
        if choice in ("cn", "zh-cn", "中文", "chinese"):
            choice = "zh"
        if choice in ("english",):
            choice = "en"
        if choice not in LANGS:
            self.say(self.t("lang_usage", lang=self.state.lang))
            return True
        self.state.lang = choice  # type: ignore[assignment]
        self.state.lang_forced = True
        ctx = self.state.context
        if ctx is not None and hasattr(ctx, "model_copy") and "lang" in getattr(type(ctx), "model_fields", {}):
            self.state.context = ctx.model_copy(update={"lang": choice})
        self.say(self.t("lang_set"))
        return True

    def _cmd_format(self, rest: str) -> bool:
        choice = rest.strip().lower()
        if choice in ("md",):
            choice = "markdown"
        if choice not in FORMATS:
            self.say(self.t("format_usage", fmt=self.state.fmt))
            return True
        self.state.fmt = choice  # type: ignore[assignment]
        self.say(self.t("format_set", fmt=choice))
        return True

    def _cmd_save(self, rest: str) -> bool:
        args = self._args(rest)
        if args is None:
            return True
        if len(args) != 1:
            self.say(self.t("save_usage"))
            return True
        if self.state.last_answer is None:
            self.say(self.t("nothing_to_save"))
            return True
        render = _need("advisor.render", "part_render")
        path = Path(args[0]).expanduser()
        try:
            path.write_text(render.to_markdown(self.state.last_answer).rstrip("\n") + "\n", encoding="utf-8")
        except OSError as err:
            self.say(self.t("save_failed", path=path, reason=err.strerror or err))
            return True
        self.say(self.t("saved", path=path))
        return True

    def _cmd_report(self, rest: str) -> bool:
        args = self._args(rest)
        if args is None:
            return True
        if len(args) != 1:
            self.say(self.t("report_usage"))
            return True
        if not self.state.answers:
            self.say(self.t("nothing_to_save"))
            return True
        html = _need("advisor.render.html", "part_render")
        plots = _need("advisor.render.plots", "part_render")
        path = Path(args[0]).expanduser()
        try:
            page = html.answers_page(self.state.answers)
        except plots.ReportUnavailable as err:
            self.say(str(err))
            return True
        try:
            path.write_text(page, encoding="utf-8")
        except OSError as err:
            self.say(self.t("save_failed", path=path, reason=err.strerror or err))
            return True
        self.say(self.t("reported", n=len(self.state.answers), path=path))
        return True

    def _cmd_context(self, rest: str) -> bool:
        items = self.context_items()
        session = [("lang", self.state.lang), ("format", self.state.fmt),
                   (self.t("mood"), self.mood or self.t("no_answer_yet"))]
        col = max(cell_width(label) for label, _ in items + session) + 2
        width = self.width()

        def row(label: str, value: str) -> str:
            return wrap(f"  {label}{' ' * (col - cell_width(label))}{value}", width, indent=2 + col)

        lines = [self.t("context_title") if items else self.t("context_empty")]
        lines += [row(label, value) for label, value in items]
        last = getattr(self.state.last_answer, "query", None) or {}
        if last.get("carried"):
            lines += ["", self.t("carried_title")]
            lines += [row(k.replace("_", " "), _short(last.get(k))) for k in last["carried"] if last.get(k) is not None]
        elif last.get("standalone"):
            lines += ["", self.t("standalone_note")]
        lines += ["", self.t("session_title")] + [row(label, value) for label, value in session]
        self.say("\n".join(lines), wrapped=False)
        return True

    def _cmd_why(self, rest: str) -> bool:
        last = self.state.last_answer
        query = getattr(last, "query", None) or {}
        if not query.get("protocol"):
            self.say(self.t("why_none"))
            return True
        from advisor.query.explain import explain_parse

        self.say(explain_parse(query, self.state.lang).rstrip("\n"), wrapped=False)
        return True

    def _cmd_reset(self, rest: str) -> bool:
        self.state.context = None
        self.state.last_answer = None
        self.say(self.t("reset_done"))
        return True

    def _cmd_data(self, rest: str) -> bool:
        import argparse

        from advisor.cli import UsageError
        from advisor.cmd_data import _filtered
        from measurements import catalog
        from measurements.schema import PRECISIONS
        from measurements.store import DataError, load_rows

        args = self._args(rest)
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
                    hint = " " + self.t("did_you_mean", near=", ".join(near)).strip()
                self.say(self.t("data_unknown", word=word, hint=hint))
                return True
        try:
            rows = _filtered(ns) if args else load_rows()
        except (UsageError, DataError) as err:
            self.say(self.t("data_failed", err=err))
            return True
        if not args:
            self.say(self.t("data_summary", n=len(rows), measured=sum(r.kind == "measured" for r in rows),
                            simulated=sum(r.kind == "simulated" for r in rows)))
            return True
        self._show_rows(rows, ns)
        return True

    def _show_rows(self, rows: list[Any], ns: Any) -> None:
        flags = "".join(f" --{k} {v}" for k, v in vars(ns).items() if v)
        filters = ", ".join(f"{k}={v}" for k, v in vars(ns).items() if v)
        if not rows:
            self.say(self.t("data_none", filters=filters))
            return
        fmt = self.state.fmt
        if fmt == "json":
            import json

            self.say(json.dumps([r.model_dump(mode="json") for r in rows], indent=2, ensure_ascii=False),
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
        title = self.t("data_title", n=len(rows), filters=f" ({filters})" if filters else "")
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
            Console(file=buf, width=self.width(), force_terminal=self.color, no_color=not self.color,
                    color_system="standard" if self.color else None, legacy_windows=False).print(table)
            body = "\n".join(line.rstrip() for line in buf.getvalue().splitlines()).strip("\n")
            text = title + "\n" + body
        if len(rows) > len(shown):
            text += "\n" + wrap(self.t("data_more", more=len(rows) - len(shown), args=flags), self.width())
        self.say(text, wrapped=False)


class _NotReady(Exception):
    def __init__(self, what: str, reason: str):
        super().__init__(f"{what}: {reason}")
        self.what, self.reason = what, reason


def _need(module: str, what: str) -> Any:
    """Import a part of the advisor when it is first needed; a missing part is said plainly.

    `what` is the message key naming the part, so the user reads it in their language."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and module.startswith(err.name):
            raise _NotReady(what, f"module {module} is missing") from None
        raise


def _short(value: Any) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


# --------------------------------------------------------------------------------------------
# History: persistent, but never allowed to stop the chat from starting.
# --------------------------------------------------------------------------------------------


def history_path() -> Path:
    """$XDG_STATE_HOME/ecolobster, else the data dir when relocated, else ~/.local/state/ecolobster."""
    state = os.environ.get("XDG_STATE_HOME")
    if state:
        return Path(state).expanduser() / "ecolobster" / HISTORY_FILE
    if os.environ.get("ECOLOBSTER_DATA_DIR"):
        from measurements.store import data_home

        return data_home() / HISTORY_FILE
    return Path.home() / ".local" / "state" / "ecolobster" / HISTORY_FILE


def check_history_file(path: Path) -> str | None:
    """Why `path` cannot serve as the history file, or None when it can (creating its folder).
    Only a regular file of at most MAX_HISTORY_FILE_BYTES is used: a device (/dev/zero) or FIFO
    would be read without end, and is never opened."""
    import stat

    try:
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    return f"{parent} is a file, not a folder"
                break
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            return "it is a folder"
        if path.exists():
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                return "it is a device, pipe or socket, not a regular file"
            if st.st_size > MAX_HISTORY_FILE_BYTES:
                return (f"it is {st.st_size / 1e6:,.0f} MB, more than the {MAX_HISTORY_FILE_BYTES / 1e6:,.0f} MB "
                        "a history file may hold")
            with path.open("rb") as fh:
                fh.read(1)
        with path.open("ab"):
            pass
    except OSError as err:
        return err.strerror or str(err)
    return None


def make_history(path: Path | None) -> tuple[Any, str | None]:
    """A history for the prompt session and a notice for the user when it had to fall back."""
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    if path is None:
        return InMemoryHistory(), None
    problem = check_history_file(path)
    if problem:
        return InMemoryHistory(), problem

    class SafeFileHistory(FileHistory):
        """FileHistory that skips huge entries and survives a file that breaks mid-session."""

        def load_history_strings(self) -> Iterable[str]:
            try:
                return list(super().load_history_strings())
            except (OSError, MemoryError):
                return []

        def store_string(self, string: str) -> None:
            if len(string) > MAX_HISTORY_ENTRY_CHARS:
                return
            # On failure the in-memory list still has it; the next start reports the file.
            with contextlib.suppress(OSError):
                super().store_string(string)

    return SafeFileHistory(str(path)), None


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
        from measurements import catalog

        for m in catalog.models():
            words += [(m.hub_id.split("/", 1)[1], "model"), (m.key, "model"), (m.hub_id, "model")]
        for g in catalog.gpus():
            words += [(g.key, "GPU"), (g.name.replace("NVIDIA ", "").replace("GeForce ", ""), "GPU")]
            words += [(a, "GPU") for a in g.aliases if " " not in a]
    except Exception:
        try:
            from measurements.store import load_rows

            rows = load_rows()
            words += sorted({(r.model_id.split("/", 1)[-1], "model") for r in rows})
            words += sorted({(r.gpu, "GPU") for r in rows})
        except Exception:
            pass
    try:
        from measurements.schema import PRECISIONS
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
    session: Any = PromptSession(
        message=[("class:prompt", PROMPT_NAME), ("", "> ")],
        history=hist,
        auto_suggest=AutoSuggestFromHistory(),
        completer=_completer(chat),
        complete_while_typing=Condition(lambda: get_app().current_buffer.text.startswith("/")),
        bottom_toolbar=lambda: toolbar_fragments(chat, out.get_size().columns),
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
