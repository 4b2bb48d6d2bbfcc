"""The chat's parts that need no answer: input handling, history, completion, toolbar, commands."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from advisor.chat import commands as chat_commands
from advisor.chat import history as chat_history
from advisor.chat import input as chat_input
from advisor.chat import session as chat_session

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]")


def plain(text: str) -> str:
    return ANSI.sub("", text)


def flat(text: str) -> str:
    """Messages are wrapped to the terminal width: compare them with the line breaks undone."""
    return " ".join(text.split())


def new_chat(write=lambda s: None, lang: str = "en", **kw) -> chat_session.Chat:
    """A chat that starts in `lang` but, like a user's, follows the language of the questions
    (passing lang= to Chat would pin it, as `ecolobster chat --lang` does)."""
    chat = chat_session.Chat(write, **kw)
    chat.state.lang = lang  # type: ignore[assignment]
    return chat


def make_chat(lang: str = "en", fmt: str = "rich") -> tuple[chat_session.Chat, list[str]]:
    out: list[str] = []
    return new_chat(out.append, lang=lang, fmt=fmt, width=lambda: 80), out


class CaptureOutput(Vt100_Output):
    """A vt100 output into a string, for a terminal whose prompt starts at the top row.

    Knowing the rows below the cursor lets prompt-toolkit draw the bottom toolbar, as it does
    on a real terminal once the cursor position report arrives."""

    def __init__(self, columns: int = 80, rows: int = 40):
        self.buffer = io.StringIO()
        super().__init__(self.buffer, lambda: Size(rows=rows, columns=columns), term="xterm")
        self._rows = rows

    def get_rows_below_cursor_position(self) -> int:
        return self._rows


def drive(keys: str | list[str], chat: chat_session.Chat | None = None, history: Path | None = None,
          columns: int = 80, pause: float = 0.15) -> tuple[str, chat_session.Chat]:
    """Run the real prompt-toolkit session on key strokes; return what it drew, plainly.

    `keys` is one string, or chunks typed one after another with a pause between (so history
    suggestions and answers have time to appear, as when a person types)."""
    out = CaptureOutput(columns=columns)
    chat = chat or new_chat()
    chunks = [keys] if isinstance(keys, str) else keys
    with create_pipe_input() as inp:
        def typist() -> None:
            for chunk in chunks:
                time.sleep(pause)
                inp.send_text(chunk)

        thread = threading.Thread(target=typist, daemon=True)
        thread.start()
        rc = chat_session.run_interactive(chat, history=history, input=inp, output=out, warm_up=False)
        thread.join(timeout=10)
    assert rc == 0
    return plain(out.buffer.getvalue()), chat


# ---- input: code detection, cleaning, splitting -------------------------------------------

def test_fenced_code_is_extracted_without_the_fences():
    text = "please review\n```python\nimport torch\nx = 1\n```\nthanks"
    assert chat_input.extract_code(text) == "import torch\nx = 1"


def test_unfenced_python_of_two_lines_is_code_but_prose_and_one_liners_are_not():
    assert chat_input.extract_code("import torch\nmodel = load(1)") == "import torch\nmodel = load(1)"
    assert chat_input.extract_code("what about batch 16?") is None
    assert chat_input.extract_code("bs=16") is None  # one line: a question, not a paste
    assert chat_input.extract_code("what about batch 16?\nand on an A800?") is None


def test_broken_python_that_reads_like_code_is_still_code():
    text = "from transformers import AutoModel\nmodel = AutoModel.from_pretrained('x', load_in_8bit=True\n"
    assert chat_input.extract_code(text) == text


def test_fence_open_counts_fences():
    assert chat_input.fence_open("```python\nimport x")
    assert not chat_input.fence_open("```python\nimport x\n```")
    assert not chat_input.fence_open("plain question")


def test_clean_text_drops_control_characters_but_keeps_lines():
    assert chat_input.clean_text("a\x00b\x07c\r\nd\te") == "abc\nd\te"


def test_unreadable_count_sees_replacement_and_control_characters():
    garbage = bytes(range(256)).decode("utf-8", errors="replace")
    assert chat_session.unreadable_count(garbage) > 100
    assert chat_session.unreadable_count("换成 NF4 呢？ and plain English\n") == 0


def test_iter_units_one_question_per_line_and_code_blocks_whole():
    lines = [
        "greenest for mistral-7b on a800\n",
        "what about batch 16?\n",
        "\n",
        "import torch\n",
        "from transformers import BitsAndBytesConfig\n",
        "\n",
        "cfg = BitsAndBytesConfig(load_in_8bit=True)\n",
        "and on an A800?\n",
        "```\n",
        "x = 1\n",
        "\n",
        "y = 2\n",
        "```\n",
        "/context\n",
    ]
    units = list(chat_input.iter_units(lines))
    assert units == [
        "greenest for mistral-7b on a800",
        "what about batch 16?",
        "import torch\nfrom transformers import BitsAndBytesConfig\n\ncfg = BitsAndBytesConfig(load_in_8bit=True)",
        "and on an A800?",
        "```\nx = 1\n\ny = 2\n```",
        "/context",
    ]


def test_iter_units_yields_a_plain_line_before_reading_the_next():
    # Streaming: a scripted session gets its answer before it sends the next line.
    def lines():
        yield "first question\n"
        raise AssertionError("read past the first line before answering it")

    it = chat_input.iter_units(lines())
    assert next(it) == "first question"


# ---- the chat without answers: commands and bad input --------------------------------------

def test_empty_and_whitespace_input_say_nothing():
    chat, out = make_chat()
    assert chat.handle("") and chat.handle("   \n\t") and chat.handle("\n\n")
    assert out == []


def test_binary_garbage_is_refused_with_a_message():
    chat, out = make_chat()
    garbage = bytes(range(256)).decode("utf-8", errors="replace") * 4
    assert chat.handle(garbage)
    assert "looks like binary data" in out[-1]


def test_a_100kb_line_is_refused_with_the_limit_and_the_way_out():
    chat, out = make_chat()
    assert chat.handle("what " * 20_480)  # 102,400 characters, not code
    assert "102,400 characters" in out[-1] or "102,399 characters" in out[-1]
    assert f"{chat_session.MAX_QUESTION_CHARS:,}" in out[-1] and "/audit PATH" in out[-1]


def test_unknown_command_suggests_the_nearest():
    chat, out = make_chat()
    chat.handle("/comprae mistral")
    assert out[-1].startswith("Unknown command /comprae.") and "Did you mean /compare" in out[-1]
    chat.handle("/xyzzy")
    assert "Did you mean" not in out[-1] and "/help lists the commands" in out[-1]


def test_quit_and_aliases_end_the_session():
    chat, _ = make_chat()
    assert chat.handle("/quit") is False
    assert chat.handle("/exit") is False
    assert chat.handle("/q") is False


def test_lang_and_format_validate_their_argument():
    chat, out = make_chat()
    chat.handle("/lang fr")
    assert out[-1].strip() == "Usage: /lang en|zh (now: en)."
    chat.handle("/lang zh")
    assert chat.state.lang == "zh" and chat.state.lang_forced and "中文" in out[-1]
    assert not make_chat()[0].state.lang_forced and chat_session.Chat(print, lang="en").state.lang_forced
    chat.handle("/format yaml")
    assert "rich|markdown|json" in out[-1] and chat.state.fmt == "rich"
    chat.handle("/format md")
    assert chat.state.fmt == "markdown"


def test_help_lists_every_command_in_the_current_language():
    chat, out = make_chat(lang="zh")
    chat.handle("/help")
    for name in chat_commands.COMMAND_NAMES:
        assert name in out[-1]
    assert "清空上下文" in out[-1]


def test_save_without_an_answer_and_with_bad_arguments():
    chat, out = make_chat()
    chat.handle("/save")
    assert out[-1].startswith("Usage: /save FILE")
    chat.handle("/save a.md")
    assert "no answer to save yet" in out[-1]
    chat.handle('/save "unclosed')
    assert "Could not read the arguments" in out[-1]


def test_audit_of_a_missing_path_names_it(tmp_path):
    chat, out = make_chat()
    missing = tmp_path / "nope.py"
    chat.handle(f"/audit {missing}")
    assert flat(out[-1]) == f"No such file or folder: {missing}."
    chat.handle("/audit")
    assert out[-1].startswith("Usage: /audit PATH")


def test_bench_without_the_engine_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    chat, out = make_chat()
    chat.handle("/bench --model qwen2.5-0.5b")
    assert 'pip install "ecolobster[engine]"' in out[-1]


def test_data_filters_rows_by_words_and_names_unknown_words():
    chat, out = make_chat()
    chat.handle("/data a800 int8_pure")
    text = out[-1]
    # seed 003's seven plus the seed author's three of 2026-02-26 (Mistral-7B-v0.1, Qwen2.5-14B, Yi-1.5-9B)
    assert text.startswith("10 measurement rows (gpu=a800, precision=int8_pure)")
    assert "seed003-a800-mistral-7b-int8_pure-bs16" in text and "rtx4090d" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    chat.handle("/data a8000")
    assert "I don't know 'a8000'" in out[-1] and "a800" in out[-1]
    chat.handle("/data")
    assert re.match(r"The dataset: \d+ rows \(\d+ measured, \d+ simulated\)", out[-1])


def test_data_json_format_is_a_json_array():
    import json

    chat, out = make_chat(fmt="json")
    chat.handle("/data a800 fp16")
    rows = json.loads(out[-1])
    assert {r["gpu"] for r in rows} == {"a800"} and {r["precision"] for r in rows} == {"fp16"}


def test_a_bug_inside_an_answer_does_not_end_the_session(monkeypatch):
    chat, out = make_chat()

    def boom(text: str) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(chat, "_ask", boom)
    assert chat.handle("greenest for mistral-7b on a800") is True
    assert "RuntimeError: kaput" in out[-1] and "keeps going" in out[-1]


def test_welcome_has_three_examples_in_the_users_language(monkeypatch):
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    chat = chat_session.Chat(lambda s: None)
    text = chat.welcome()
    assert chat.state.lang == "zh" and "你好" in text
    assert sum(line.startswith("  • ") for line in text.splitlines()) == 3
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert "Try one of these" in chat_session.Chat(lambda s: None).welcome()


def test_welcome_and_help_fit_80_columns():
    from prompt_toolkit.utils import get_cwidth

    for lang in ("en", "zh"):
        chat, out = make_chat(lang=lang)
        chat.handle("/help")
        for line in (chat.welcome() + out[-1]).splitlines():
            assert get_cwidth(line) <= 80, line


# ---- history --------------------------------------------------------------------------------

def test_history_goes_to_xdg_state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert chat_history.history_path() == tmp_path / "state" / "ecolobster" / "chat_history"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("ECOLOBSTER_DATA_DIR", str(tmp_path / "data"))
    assert chat_history.history_path() == tmp_path / "data" / "chat_history"


def test_history_that_is_a_folder_falls_back_to_memory(tmp_path):
    path = tmp_path / "hist"
    path.mkdir()
    hist, problem = chat_history.make_history(path)
    assert isinstance(hist, InMemoryHistory) and problem == "it is a folder"


def test_history_whose_folder_cannot_be_made_falls_back_to_memory(tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")
    hist, problem = chat_history.make_history(blocker / "ecolobster" / "chat_history")
    assert isinstance(hist, InMemoryHistory) and problem == f"{blocker} is a file, not a folder"


def test_history_file_that_cannot_be_opened_falls_back_to_memory(tmp_path, monkeypatch):
    path = tmp_path / "hist"
    path.write_text("+hello\n")
    real_open = Path.open

    def deny(self, mode="r", *a, **kw):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, mode, *a, **kw)

    monkeypatch.setattr(Path, "open", deny)
    hist, problem = chat_history.make_history(path)
    assert isinstance(hist, InMemoryHistory) and problem == "Permission denied"


def test_corrupt_history_still_loads_what_it_can(tmp_path):
    path = tmp_path / "hist"
    path.write_bytes(b"\xff\xfe\x00garbage\n+what about batch 16?\n\n# x\n+\xc3\x28bad utf8\n" + bytes(range(256)))
    hist, problem = chat_history.make_history(path)
    assert problem is None and isinstance(hist, FileHistory)
    loaded = list(hist.load_history_strings())
    assert "what about batch 16?" in loaded


def test_history_skips_huge_entries(tmp_path):
    path = tmp_path / "hist"
    hist, _ = chat_history.make_history(path)
    hist.store_string("x" * (chat_history.MAX_HISTORY_ENTRY_CHARS + 1))
    hist.store_string("/context")
    assert list(hist.load_history_strings()) == ["/context"]


def test_session_starts_with_a_folder_as_history_and_says_so(tmp_path):
    path = tmp_path / "hist"
    path.mkdir()
    screen, _ = drive("/context\r\x04", history=path)
    assert f"The history file {path} can't be used (it is a folder)" in flat(screen)
    assert "No context yet" in screen and "Bye!" in screen


def test_history_persists_between_sessions_and_suggests(tmp_path):
    path = tmp_path / "state" / "hist"
    drive("/context\r\x04", history=path)
    assert "+/context" in path.read_text()
    # In a second session, typing "/con" shows the rest of the earlier line as a suggestion,
    # and the right arrow accepts it.
    screen, _ = drive(["/con", "\x1b[C", "\r\x04"], history=path)
    assert "Unknown command /con" not in screen
    assert "No context yet. Name a model" in screen


# ---- completion and toolbar -----------------------------------------------------------------

def completions(text: str, chat: chat_session.Chat | None = None) -> list[str]:
    completer = chat_session._completer(chat or make_chat()[0])
    return [c.text for c in completer.get_completions(Document(text, len(text)), CompleteEvent(completion_requested=True))]


def test_completes_slash_commands_and_their_arguments():
    assert completions("/co") == ["/compare", "/context"]
    assert completions("/lang ") == ["en", "zh"]
    assert completions("/format m") == ["markdown"]


def test_completes_models_gpus_and_precisions_from_the_catalogs():
    from measurements import catalog

    assert "Mistral-7B-Instruct-v0.2" in completions("greenest for Mistr")
    assert "a800" in completions("and on an a8")
    assert set(completions("use int8")) == {"int8_mixed", "int8_pure"}
    keys = {g.key for g in catalog.gpus()}
    assert "rtx4090d" in keys and "rtx4090d" in completions("on rtx40")


def test_completes_paths_for_audit(tmp_path):
    (tmp_path / "serve_model.py").write_text("x = 1\n")
    got = completions(f"/audit {tmp_path}/serve_")
    assert got == ["model.py"]


def test_toolbar_without_context_and_cut_to_width():
    chat, _ = make_chat()
    frags = chat_session.toolbar_fragments(chat, 80)
    text = "".join(t for _, t in frags)
    assert "No context yet" in text and "[en · rich]" in text
    assert frags[0][0] == "class:mood.none"


def test_bench_with_the_engine_installed_runs_ecolobster_bench():
    import importlib.util

    assert importlib.util.find_spec("torch") is not None, "the dev environment installs the engine extra"
    chat, out = make_chat()
    chat.handle("/bench --help")
    text = "".join(out)
    assert "usage: ecolobster bench" in text and "--model" in text
    assert not chat.had_error
    chat.handle("/bench --precision fp99")  # argparse rejects it: the chat reports the exit status
    assert "exit code 2" in out[-1] and chat.had_error


def test_iter_units_keeps_a_piped_python_file_whole_up_to_the_next_question():
    code = (
        "from transformers import AutoModelForCausalLM, BitsAndBytesConfig\n"
        "\n"
        "model = AutoModelForCausalLM.from_pretrained(\n"
        "    \"mistralai/Mistral-7B-Instruct-v0.2\",\n"
        "\n"
        "    quantization_config=BitsAndBytesConfig(load_in_8bit=True),\n"
        ")\n"
        "model.eval()\n"
        "print(model)\n"
    )
    text = code + "and on an A800?\n" + code + "greenest for Mistral-7B on an A800\n换成 NF4 呢\n"
    units = list(chat_input.iter_units(text.splitlines(keepends=True)))
    assert units == [code.rstrip("\n"), "and on an A800?", code.rstrip("\n"), "greenest for Mistral-7B on an A800",
                     "换成 NF4 呢"]
    assert chat_input.extract_code(units[0]) == units[0]


def test_a_path_typed_alone_points_to_audit(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text("x = 1\n")
    chat, out = make_chat()
    chat.handle(str(script))
    assert flat(out[-1]) == f"{script} is a path, not a command. To check it for energy traps: /audit {script}"
