"""Moods agree with the content: never green beside an alert or a stated waste above 5%; a
saving of cents a month is said in words and not dramatised red."""

from __future__ import annotations

import pytest

from advisor.api import answer_query, ask
from advisor.query import from_fields

QUESTIONS = [
    "I'm running load_in_8bit=True and my GPU bill is crazy high. Help!",
    "Lobster, I want to deploy Qwen2.5-3B on an RTX 5090. What's the greenest config?",
    "How much will Mistral-7B on A800 cost me for 1 million requests per month?",
    "Compare all 5 precisions for Qwen2.5-7B on RTX 5090.",
    "qwen2.5-1.5b in nf4 on h100 for a production api, 2 million requests a month",
    "estimate qwen2.5-7b fp8 on h200 at batch size 8 for 100000 requests per month",
]


@pytest.mark.parametrize("text", QUESTIONS)
def test_never_green_beside_an_alert_or_a_waste(text):
    ans, _ = ask(text)
    if ans.mood == "green":
        assert not [a for a in ans.alerts if a.mood in ("yellow", "orange", "red")]
        assert ans.waste_pct is None or ans.waste_pct < 5


def test_a_saving_of_cents_is_said_in_words_not_red():
    q = from_fields("estimate", model_id="Qwen/Qwen2.5-0.5B", hardware_platform="a800", quantization="int8_mixed",
                    requests_per_month=100)
    ans = answer_query(q)
    assert ans.mood not in ("orange", "red")
    assert any("small in absolute terms" in x for x in ans.caveats)
