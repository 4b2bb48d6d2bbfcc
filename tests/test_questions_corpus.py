"""The question corpus (tests/data/questions.yaml, issue #12): every question is parsed; at least 97% of
the expected slots must be right, and no question may be read for a GPU, rate, length or region other
than the one it states. `python tests/test_questions_corpus.py` prints the accuracy and the misses."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import yaml

from advisor.query import QueryError, parse
from measurements import catalog

CORPUS = Path(__file__).parent / "data" / "questions.yaml"
# slots where a wrong value means the answer is for another situation: never allowed
CRITICAL = {"gpu", "compare_gpus", "rpm", "tpm", "requests_per_month", "tokens_per_month", "prompt_tokens",
            "gen_tokens", "region", "gpu_count"}


def per_month(spec: str) -> float:
    """'40/second' -> requests per month, with the calendar's own units (days per month from the catalog)."""
    value, period = spec.split("/")
    dpm = catalog.factor("days_per_month")
    days = {"second": 1 / 86400, "minute": 1 / 1440, "hour": 1 / 24, "day": 1.0, "week": 7.0}
    n = float(value)
    if period == "month":
        return n
    if period == "year":
        return n / 12
    return n * dpm / days[period]


def same(expected: Any, got: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected == got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(float(expected), float(got), rel_tol=1e-3)
    return expected == got


def check(item: dict) -> tuple[int, int, list[str], list[str]]:
    """(slots right, slots expected, misses, critical misses) for one corpus entry."""
    text, want = item["q"], item.get("p")
    try:
        q = parse(text)
    except QueryError as err:
        if want == "error":
            ok = item.get("err", "") in " ".join(err.errors)
            return int(ok), 1, ([] if ok else [f"error without '{item.get('err')}': {err.errors}"]), []
        return 0, 1 + len(item.get("s") or {}), [f"refused: {err.errors}"], \
            [f"refused a question stating {sorted(set(item.get('s') or {}) & CRITICAL)}"] \
            if set(item.get("s") or {}) & CRITICAL else []
    if want == "error":
        return 0, 1, [f"answered ({q.protocol}) instead of an error with '{item.get('err')}'"], []
    right, total, misses, critical = int(q.protocol == want), 1, [], []
    if q.protocol != want:
        misses.append(f"protocol {q.protocol} != {want}")
    for key, expected in (item.get("s") or {}).items():
        total += 1
        if key == "rpm":
            got, expected = q.requests_per_month, per_month(expected)
        elif key == "tpm":
            got, expected = q.tokens_per_month, per_month(expected)
        elif key.startswith("ft."):
            got = q.finetune.get(key[3:])
        else:
            got = getattr(q, key)
        stated = key not in q.defaulted
        if same(expected, got) and stated:
            right += 1
        else:
            misses.append(f"{key}: got {got!r}{'' if stated else ' (a default)'}, expected {expected!r}")
            if key in CRITICAL:
                critical.append(f"{key}: got {got!r}, expected {expected!r}")
    if "nu" in item:
        total += 1
        if any(item["nu"] in n for n in q.not_understood):
            right += 1
        else:
            misses.append(f"not_understood lacks '{item['nu']}': {q.not_understood}")
    for key, value in (item.get("not") or {}).items():  # a value the question must NOT be read as stating
        total += 1
        if getattr(q, key) == value and key not in q.defaulted:
            misses.append(f"{key} read as {value!r}, which the question does not state")
            critical.append(misses[-1])
        else:
            right += 1
    return right, total, misses, critical


def run_corpus() -> tuple[float, int, list[str], list[str], float]:
    items = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    right = total = 0
    misses: list[str] = []
    critical: list[str] = []
    slowest = 0.0
    for item in items:
        t0 = time.perf_counter()
        r, n, m, c = check(item)
        slowest = max(slowest, time.perf_counter() - t0)
        right, total = right + r, total + n
        misses += [f"{item['q'][:70]!r}: {x}" for x in m]
        critical += [f"{item['q'][:70]!r}: {x}" for x in c]
    return right / total, len(items), misses, critical, slowest


def test_the_corpus_is_big_and_varied():
    items = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    assert len(items) >= 300
    zh = [i for i in items if any("\u4e00" <= ch <= "\u9fff" for ch in i["q"])]
    assert len(zh) >= 40
    assert {i["p"] for i in items} >= {"optimize", "estimate", "diagnose", "compare", "plan", "error"}
    assert len({i["q"] for i in items}) == len(items), "duplicate questions"


def test_slot_accuracy_and_no_question_answered_for_something_else():
    accuracy, n, misses, critical, _ = run_corpus()
    assert not critical, "answered for another GPU/rate/length/region:\n" + "\n".join(critical)
    assert accuracy >= 0.97, f"slot accuracy {accuracy:.1%} over {n} questions; misses:\n" + "\n".join(misses)


if __name__ == "__main__":
    acc, n, miss, crit, slow = run_corpus()
    print(f"{n} questions, slot accuracy {acc:.2%}, slowest parse {slow * 1000:.1f} ms")
    for line in crit:
        print("CRITICAL", line)
    for line in miss:
        print("miss", line)
