"""What the chat itself says, in English and Chinese (answers bring their own words), and how its
lines are laid out on a terminal: wrapping by display width, colour, the user's language."""

from __future__ import annotations

import os
import re
import unicodedata
from typing import Any, Literal

Lang = Literal["en", "zh"]
LANGS: tuple[str, ...] = ("en", "zh")

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
