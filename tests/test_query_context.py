"""Chat context that follows the conversation (issue #12): follow-ups change only what they name, a
new question replaces what it states, a general question does not inherit the chat's model and GPU;
/context shows what carried over, /why and `ask --explain-parse` show what was read from which words."""

from __future__ import annotations

import json

from advisor import api
from advisor.chat import session as chat_session
from advisor.cli import main
from advisor.query import parse


def test_a_follow_up_changes_only_what_it_names():
    q1 = parse("Mistral-7B on an A800 with NF4, batch 8, 1M requests a month: cost?")
    q2 = parse("and on an H100?", q1.to_context())
    assert (q2.model, q2.gpu, q2.precision, q2.batch_size, q2.requests_per_month) == (
        "mistral-7b-v0.2", "h100_sxm", "nf4", 8, 1e6)
    assert set(q2.carried) >= {"model", "precision", "batch_size", "requests_per_month"} and "gpu" not in q2.carried


def test_a_new_complete_question_replaces_what_it_states():
    q1 = parse("Mistral-7B on an A800 with NF4, 1M requests a month: cost?")
    q2 = parse("Qwen2.5-7B on an RTX 4090 in fp16 at 40 QPS, cost?", q1.to_context())
    assert (q2.model, q2.gpu, q2.precision) == ("qwen2.5-7b", "rtx4090", "fp16")
    assert q2.requests_per_month == 40 * 86400 * 30.4375
    assert "model" not in q2.carried and "gpu" not in q2.carried


def test_a_general_question_does_not_inherit_and_does_not_stick():
    ans1, ctx1 = api.ask("greenest config for Mistral-7B on an A800, 1M requests a month")
    ans2, ctx2 = api.ask("why is 4-bit sometimes WORSE?", ctx1)
    assert ans2.query.get("model") is None and ans2.query.get("standalone") is True
    assert ans2.query.get("gpu") != "a800"
    # its NF4 does not stick: the next cost answer is for the earlier configuration
    assert ctx2 == ctx1
    ans3, _ = api.ask("what does it cost per month?", ctx2)
    assert ans3.query["model"] == "mistral-7b-v0.2" and ans3.query["gpu"] == "a800"
    assert ans3.query.get("precision") != "nf4"


def test_a_general_question_that_points_at_the_context_inherits_it():
    ctx = parse("greenest config for Mistral-7B on an A800").to_context()
    q = parse("why is 4-bit sometimes worse for this model?", ctx)
    assert q.model == "mistral-7b-v0.2" and q.gpu == "a800" and not q.standalone


def test_chat_context_shows_what_carried_over_and_why_shows_the_words():
    out: list[str] = []
    chat = chat_session.Chat(out.append, fmt="markdown", width=lambda: 100)
    chat.handle("greenest config for Mistral-7B on an A800 with vLLM, prompts of 1500 tokens")
    chat.handle("and with NF4?")
    out.clear()
    chat.handle("/context")
    text = "\n".join(out)
    assert "Carried into the last answer from earlier questions:" in text
    assert "gpu" in text and "a800" in text
    out.clear()
    chat.handle("/why")
    why = "\n".join(out)
    assert 'precision' in why and '<- "nf4"' in why
    assert "Carried over from earlier questions:" in why and "prompt_tokens" in why


def test_why_before_any_answer():
    out: list[str] = []
    chat = chat_session.Chat(out.append, fmt="markdown", width=lambda: 100)
    chat.handle("/why")
    assert "No question answered yet" in "\n".join(out)


def test_explain_parse_prints_slots_words_defaults_and_not_understood(capsys):
    assert main(["ask", "--explain-parse", "Mistral-7B on 2x A100 at 40 requests per second with vLLM, "
                 "prompts of 1500 tokens, budget 300 euros"]) == 0
    out = capsys.readouterr().out
    for needle in ('gpu_count           2', '<- "2 a100"', 'framework', '<- "vllm"', '<- "prompts of 1500 tokens"',
                   "Defaults applied:", "precision: bf16", "Stated but not used:", "'300 euros'",
                   "40 requests per second x 2,629,800 seconds/month"):
        assert needle in out, needle
    assert main(["ask", "--explain-parse", "--format", "json", "Mistral-7B on an L4"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["gpu"] == "l4" and q["stated_words"]["gpu"] == "l4"
    assert main(["ask", "--explain-parse", "Mistral-7B on a mars gpu"]) == 2
