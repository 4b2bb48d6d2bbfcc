"""Multi-turn conversations through the real prompt-toolkit session and the real advisor.

Key strokes go in through prompt-toolkit's pipe input; what the application draws (prompt,
answers, bottom toolbar) is captured from a vt100 output and read back without ANSI codes.
"""

from __future__ import annotations

import io
import json
import re

import pytest

from advisor.chat import session as chat_session
from tests.test_repl import CaptureOutput, drive, flat, new_chat, plain

ENTER = "\r"
CTRL_D = "\x04"


def paste(text: str) -> str:
    """A bracketed paste, as terminals send pasted text (newlines included, Enter not)."""
    return f"\x1b[200~{text}\x1b[201~"


def body(text: str) -> str:
    """Panel text without its frame, wrapped lines joined: for phrases that a wrap may split."""
    return flat(re.sub(r"[│╭╮╰╯─┃┏┓┗┛━┡┩╇┳┻┣┫╋]", " ", text))


def segment(screen: str, typed: str, until: str) -> str:
    """What was drawn after the line `typed` was accepted, up to the next `until` line."""
    start = screen.index(f"ecolobster> {typed}\r\n") + len(f"ecolobster> {typed}\r\n")
    end = screen.find(f"ecolobster> {until}\r\n", start)
    return screen[start:end if end >= 0 else len(screen)]


def test_a_conversation_carries_context_switches_language_saves_and_resets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saved = tmp_path / "answer.md"
    lines = [
        "What's the greenest way to serve Mistral-7B on an A800?",
        "what about batch 16?",
        "and on an RTX 4090D?",
        "/context",
        "/save answer.md",
        "换成 NF4 呢？",
        "/context",
        "/lang en",
        "what about batch 8?",
        "/reset",
        "/context",
    ]
    screen, chat = drive(ENTER.join(lines) + ENTER + CTRL_D, history=tmp_path / "hist")

    first = segment(screen, lines[0], lines[1])
    assert "OPTIMIZE" in first and "Mistral-7B-Instruct-v0.2 on NVIDIA A800" in first
    assert re.search(r"mood: (green|yellow|orange|red)", first)

    # Follow-ups keep the model and GPU and change only what they name.
    batch16 = segment(screen, lines[1], lines[2])
    assert "A800" in batch16 and "batch size 16" in body(batch16)
    on_4090d = segment(screen, lines[2], lines[3])
    assert "Mistral-7B-Instruct-v0.2 on NVIDIA GeForce RTX 4090 D" in body(on_4090d)

    context = segment(screen, lines[3], lines[4])
    assert re.search(r"model\s+mistral-7b-v0\.2", context)
    assert re.search(r"gpu\s+rtx4090d", context) and re.search(r"batch\s+16", context)

    # /save wrote the last answer (the RTX 4090D one) as Markdown.
    assert "Saved the last answer as Markdown to answer.md." in flat(segment(screen, lines[4], lines[5]))
    md = saved.read_text(encoding="utf-8")
    assert md.startswith("## ") and "RTX 4090 D" in md and "|---|" in md

    # A Chinese follow-up: the answer and the chat's own words switch to Chinese; context stays.
    zh = segment(screen, lines[5], lines[6])
    # (the first screen: the Chinese persona line opens it; its sign-off is behind /more)
    assert "龙虾壳" in zh and "NF4" in zh and "/more" in zh
    zh_context = segment(screen, lines[6], lines[7])
    assert "下一个问题会沿用" in zh_context and re.search(r"precision\s+nf4", zh_context)
    assert re.search(r"gpu\s+rtx4090d", zh_context) and re.search(r"batch\s+16", zh_context)

    # /lang en forces English even though the conversation went Chinese.
    assert "Language: English" in segment(screen, lines[7], lines[8])
    en = segment(screen, lines[8], lines[9])
    assert "*shell" in en and "龙虾壳" not in en and "batch size 8" in body(en)

    assert "Context cleared" in segment(screen, lines[9], lines[10])
    assert "No context yet" in segment(screen, lines[10], "")
    assert chat.state.context is None and chat.state.lang == "en"
    assert "Bye!" in screen


def test_the_bottom_toolbar_shows_context_and_mood():
    screen, chat = drive(["What's the greenest way to serve Mistral-7B on an A800?\r", "what about batch 16?\r",
                          CTRL_D], pause=0.6)
    assert chat.mood in ("green", "yellow", "orange", "red")
    assert re.search(rf"🦞 {chat.mood} +model mistral-7b-v0\.2 · gpu a800 · batch 16 +\[en · rich\]", screen)
    # Before the first answer the toolbar says there is no context yet.
    assert re.search(r"🦞 +No context yet +\[en · rich\]", screen)


def test_unknown_models_and_gpus_get_a_clear_answer_and_the_session_goes_on():
    lines = ["greenest for Mistral-7B on a GTX 9999", "/context", "greenest for Mistral-7B on an A800"]
    screen, chat = drive(ENTER.join(lines) + ENTER + CTRL_D)
    bad = flat(segment(screen, lines[0], lines[1]))
    assert "GPU 'gtx 9999' is not supported" in bad and "a800" in bad and "mood: gray" in bad
    assert "No context yet" in segment(screen, lines[1], lines[2])
    assert chat.state.context is not None and chat.state.context.gpu == "a800"


def test_ctrl_c_during_an_answer_stops_it_and_the_next_question_works(monkeypatch):
    import advisor.api

    real_ask = advisor.api.ask
    calls = {"n": 0}

    def interrupted_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread while an answer runs
        return real_ask(*args, **kwargs)

    monkeypatch.setattr(advisor.api, "ask", interrupted_once)
    lines = ["greenest for Mistral-7B on an A800", "greenest for Mistral-7B on an A800"]
    screen, chat = drive(ENTER.join(lines) + ENTER + CTRL_D)
    assert "Stopped. Ask again" in screen
    assert screen.count("OPTIMIZE") == 1 and chat.state.context.gpu == "a800"


def test_a_100kb_paste_and_binary_garbage_get_messages_not_crashes():
    garbage = bytes(range(1, 32)).decode() * 40  # control bytes only, as from `cat binary`
    keys = paste("a" * 102_400) + ENTER + paste(garbage.replace("\x1b", "")) + ENTER + "/context" + ENTER + CTRL_D
    screen, _ = drive(keys)
    text = flat(screen)
    assert "That input is 102,400 characters long" in text
    assert "binary data" in text
    assert "No context yet" in text


def test_markdown_format_in_the_session():
    lines = ["/format markdown", "greenest for Mistral-7B on an A800"]
    screen, chat = drive(ENTER.join(lines) + ENTER + CTRL_D)
    out = segment(screen, lines[1], "")
    assert "## Greenest configuration: Mistral-7B-Instruct-v0.2 on NVIDIA A800 80GB" in out
    assert "╭" not in out and chat.state.fmt == "markdown"


# ---- piped (non-interactive) use, through chat_session.main ----------------------------------------

class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_main(stdin_text: str, stdout: io.StringIO | None = None, **kw) -> tuple[int, str]:
    stdout = stdout if stdout is not None else io.StringIO()
    rc = chat_session.main(stdin=io.StringIO(stdin_text), stdout=stdout, **kw)
    return rc, stdout.getvalue()


def test_pipe_mode_answers_each_line_and_carries_context():
    rc, out = run_main("greenest for Mistral-7B on an A800\n\nwhat about batch 16?\n/context\n")
    assert rc == 0
    assert out.count("╭─ EcoLobster - OPTIMIZE") == 2
    assert "> what about batch 16?" in out and re.search(r"batch\s+16", out)
    assert "\x1b[" not in out


def test_pipe_mode_json_is_a_stream_of_answer_objects():
    rc, out = run_main("greenest for Mistral-7B on an A800\nand on an RTX 4090D?\n", fmt="json")
    assert rc == 0
    decoder, pos, docs = json.JSONDecoder(), 0, []
    while pos < len(out.rstrip()):
        doc, pos = decoder.raw_decode(out, pos)
        docs.append(doc)
        while pos < len(out) and out[pos].isspace():
            pos += 1
    assert [d["query"]["gpu"] for d in docs] == ["a800", "rtx4090d"]
    assert all(d["protocol"] == "optimize" for d in docs)


def test_pipe_mode_reports_errors_in_the_exit_status_and_keeps_going():
    rc, out = run_main("greenest for Mistral-7B on a GTX 9999\ngreenest for Mistral-7B on an A800\n")
    assert rc == 1
    assert "is not supported" in out and "OPTIMIZE" in out


def test_pipe_mode_reads_binary_input_without_crashing():
    raw = io.BytesIO(b"\xff\xfe\x00\x01" * 200 + b"\n/context\n")
    wrapper = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
    stdout = io.StringIO()
    rc = chat_session.main(stdin=wrapper, stdout=stdout)
    assert rc == 0
    assert "binary data" in stdout.getvalue() and "No context yet" in stdout.getvalue()


@pytest.mark.parametrize("no_color", [True, False])
def test_colour_follows_the_terminal_and_no_color(monkeypatch, no_color):
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    rc, out = run_main("greenest for Mistral-7B on an A800\n", stdout=FakeTTY())
    assert rc == 0 and "OPTIMIZE" in plain(out)
    assert ("\x1b[" in out) is (not no_color)


def test_answers_fit_an_80_column_terminal():
    from prompt_toolkit.utils import get_cwidth

    out = CaptureOutput(columns=80)
    chat = new_chat()
    from prompt_toolkit.input import create_pipe_input

    with create_pipe_input() as inp:
        inp.send_text("compare precisions for Qwen2.5-7B on an RTX 5090\r换成 NF4 呢？\r\x04")
        chat_session.run_interactive(chat, history=None, input=inp, output=out, warm_up=False)
    for line in re.split(r"[\r\n]", plain(out.buffer.getvalue())):
        assert get_cwidth(line.rstrip()) <= 80, line


INT8_CODE = (
    "from transformers import AutoModelForCausalLM, BitsAndBytesConfig\n"
    "\n"
    "model = AutoModelForCausalLM.from_pretrained(\n"
    "    \"mistralai/Mistral-7B-Instruct-v0.2\",\n"
    "    quantization_config=BitsAndBytesConfig(load_in_8bit=True),\n"
    ")\n"
)


def test_pasted_code_is_audited_with_the_gpu_in_context(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    keys = ("greenest for Mistral-7B on an A800" + ENTER
            + paste(INT8_CODE) + ENTER
            + "/more" + ENTER  # the first screen holds the finding; the rest holds the paired rows
            + "/save audit.md" + ENTER + CTRL_D)
    screen, chat = drive(keys)
    assert "AUDIT: Audit of <pasted>" in screen
    assert "ECO101" in screen and "llm_int8_threshold=0.0" in body(screen)
    assert "A800" in body(screen.split("AUDIT: Audit of <pasted>")[1])  # impact judged on the GPU in context
    # orange since the A800's nearest INT8 pair is Mistral-7B-v0.1 (+56%, the seed author's 2026-02-26 rows)
    assert chat.state.last_answer.protocol == "audit" and chat.state.last_answer.mood in ("orange", "red")
    md = (tmp_path / "audit.md").read_text(encoding="utf-8")
    assert "ECO101" in md and "<pasted>:5" in md


def test_code_pasted_with_chinese_words_is_audited_in_chinese():
    # the words around the code set the answer's language, as a question's words do
    screen, chat = drive(paste("帮我看看这段代码有没有能耗问题：\n```python\n" + INT8_CODE + "```\n") + ENTER + CTRL_D)
    a = chat.state.last_answer
    assert a.protocol == "audit" and a.lang == "zh" and "ECO101" in screen
    assert "混合精度分解" in a.alerts[0].message and "decomposition" not in a.alerts[0].message


def test_typed_code_fence_keeps_enter_adding_lines_until_it_closes():
    # Enter inside an open ``` fence inserts a newline; the Enter after the closing fence sends.
    typed = "```python" + ENTER + INT8_CODE.replace("\n", ENTER) + "```" + ENTER + CTRL_D
    screen, chat = drive(typed)
    assert "AUDIT: Audit of <pasted>" in screen and "ECO101" in screen
    assert chat.state.turns == 1  # one input, not one per line


def test_audit_path_command_audits_files_and_folders(tmp_path):
    project = tmp_path / "my project"
    project.mkdir()
    (project / "serve.py").write_text(INT8_CODE, encoding="utf-8")
    (project / "clean.py").write_text("print('hello')\n", encoding="utf-8")
    lines = [f'/audit "{project}"', "/audit nowhere/at/all.py"]
    screen, chat = drive(ENTER.join(lines) + ENTER + CTRL_D, columns=200)
    out = flat(screen)
    assert "AUDIT" in out and "serve.py:5" in out and "ECO101" in out
    assert "No such file or folder: nowhere/at/all.py." in out
    assert chat.state.last_answer.protocol == "audit"


@pytest.mark.parametrize(("command", "protocol"), [
    ("/compare", "compare"),
    ("/estimate 1M requests a month", "estimate"),
    ("/diagnose my GPU bill is high", "diagnose"),
    ("/optimize", "optimize"),
])
def test_protocol_commands_route_to_their_protocol_with_the_context(command, protocol):
    chat = new_chat(width=lambda: 80)
    chat.handle("compare precisions for Qwen2.5-7B on an RTX 5090" if protocol != "compare"
                else "greenest for Qwen2.5-7B on an RTX 5090")
    chat.handle(command)
    answer = chat.state.last_answer
    assert answer.protocol == protocol
    assert chat.state.context.gpu == "rtx5090" and chat.state.context.model.startswith("qwen2.5-7b")


def test_protocol_command_without_context_or_question_says_how_to_use_it():
    out: list[str] = []
    chat = new_chat(out.append)
    chat.handle("/compare")
    assert flat(out[-1]) == "Usage: /compare QUESTION (or just ask the question)."


def test_plan_runs_fine_tuning_planning_when_it_is_installed(monkeypatch):
    import importlib.util

    out: list[str] = []
    chat = new_chat(out.append, width=lambda: 80)
    chat.handle("/plan")
    installed = importlib.util.find_spec("advisor.protocols.plan") is not None
    if installed:
        assert out[-1].startswith("Usage: /plan QUESTION")
        chat.handle("/plan LoRA or QLoRA for Mistral-7B on an RTX 4090, budget $50")
        assert chat.state.last_answer.protocol == "plan"
    else:
        assert "Fine-tuning planning is not part of this installation yet." in out[-1]
    # Either way, asking for it where it is missing says so plainly.
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "advisor.protocols.plan" else real(name, *a))
    chat.handle("/plan LoRA for Mistral-7B")
    assert "Fine-tuning planning is not part of this installation yet." in out[-1]


def test_tab_completes_commands_and_model_names_in_the_running_session():
    # Keys in separate chunks, as a person types them: Tab after the text it completes.
    # "Yi-1.5-6" (not "Yi-1"): the catalog holds Yi-1.5-6B and Yi-1.5-9B
    screen, chat = drive(["/con", "\t", "\r", "greenest for Yi-1.5-6", "\t", " on an RTX 4090D\r", CTRL_D], pause=0.3)
    assert "ecolobster> /context\r\n" in screen and "No context yet" in screen
    assert "ecolobster> greenest for Yi-1.5-6B on an RTX 4090D\r\n" in screen
    assert chat.state.context.model == "yi-1.5-6b" and chat.state.context.gpu == "rtx4090d"


def test_the_answer_panel_is_coloured_by_its_mood():
    out: list[str] = []
    chat = new_chat(out.append, width=lambda: 80, color=True)
    borders = {}
    # A recommendation with no stated configuration is green; load_in_8bit's default is a trap.
    for question in ("greenest for Mistral-7B on an A800",
                     "I run Mistral-7B with load_in_8bit=True on an RTX 4090D and my bill is high"):
        chat.handle(question)
        m = re.match(r"(\x1b\[[0-9;]*m)╭─", out[-1])
        assert m, repr(out[-1][:80])
        borders[chat.mood] = m.group(1)
    assert len(borders) == 2 and borders["green"] == "\x1b[32m"
    assert len(set(borders.values())) == 2  # the trap's panel has another colour
