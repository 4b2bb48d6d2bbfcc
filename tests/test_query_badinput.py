"""Bad input to the question parser (issue #12 and the parser cases of #17): empty, huge, binary,
emoji-only, contradictory and pathological questions get a clear error naming each problem, never a
crash. How fast they parse is measured by benchmarks/answer_speed.py (not a timed test)."""

from __future__ import annotations

import random

import pytest

from advisor.limits import MAX_QUESTION_CHARS
from advisor.query import QueryError, parse


def errors_of(text: str) -> list[str]:
    with pytest.raises(QueryError) as ei:
        parse(text)
    return ei.value.errors


@pytest.mark.parametrize(("text", "needle"), [
    ("", "empty"), ("  \n\t ", "empty"),
    ("x" * 100_000, f"more than the {MAX_QUESTION_CHARS:,} accepted"),
    ("".join(chr(random.Random(1).randrange(0, 32)) for _ in range(2000)) + "mistral 7b", "not text"),
    ("🦞🔥💸" * 40, "could not find a configuration"),
    ("9" * 400, "400 digits"),
])
def test_bad_questions_are_clear_errors(text, needle):
    assert any(needle in e for e in errors_of(text))


def test_a_contradictory_question_names_each_problem():
    errs = errors_of("on a T4 and an H100 at batch 0 and 9999")
    assert any("several values (0, 9999)" in e for e in errs)
    assert any("batch_size must be >= 1, got 0" in e for e in errs)
    assert any("batch_size=9999 exceeds the maximum accepted" in e for e in errs)


def test_several_batch_sizes_in_a_comparison_are_compared():
    q = parse("compare batch sizes 1, 8 and 32 for Qwen2.5-7B on an A100")
    assert q.compare_axis == "batch_size" and q.compare_batch_sizes == [1, 8, 32]


PIECES = ["a-", "x/", "$1 ", "batch ", "per ", "1e5 ", "p90 ", "ms ", "gpu ", "9 s ", "1,000 ", "input ", "tokens ",
          "users each ", "2x ", "h100 ", "lora ", "~", "k ", "- ", ". ", "1.5", "mistral-", "qwen2.5-7b ", "region ",
          "tp ", "每天", "1万", "次", "token ", "of ", "about ", "50 ms per token ", "under ", "requests ", "daily ",
          "us ", "the ", "9" * 20, "1." * 10, "1," * 10]


def test_pathological_questions_at_the_length_limit_never_crash():
    rng = random.Random(7)
    texts = [(p * MAX_QUESTION_CHARS)[:MAX_QUESTION_CHARS] for p in PIECES]
    texts += ["".join(rng.choice(PIECES) for _ in range(2000))[:MAX_QUESTION_CHARS] for _ in range(20)]
    for text in texts:
        try:
            q = parse(text)
        except QueryError as err:
            assert err.errors and all(isinstance(e, str) and e for e in err.errors)
        else:
            assert q.protocol in ("optimize", "diagnose", "compare", "estimate", "audit", "plan")
