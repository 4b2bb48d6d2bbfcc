"""Property tests: random text, random bytes and mutations of the corpus never crash the auditor
(no exception escapes; every finding is well-formed and points inside the file)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.audit import Auditor, AuditSettings
from advisor.audit.sources import decode

CORPUS = Path(__file__).parent / "corpus" / "audit"
SEEDS = [p for p in sorted(CORPUS.rglob("*")) if p.is_file() and p.name != "expected.json"]
KINDS = ["python", "notebook", "requirements", "pyproject", "yaml", "json", "shell", "dockerfile"]
AUDITOR = Auditor(AuditSettings())
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments that steer random text toward what the rules look at.
TOKENS = st.sampled_from([
    "from transformers import BitsAndBytesConfig as B\n", "B(load_in_8bit=True", ", llm_int8_threshold=", "0.0",
    "**kw", ")", "(", "\n", "    ", "for p in prompts:\n", "model.generate(", "use_cache=False", "torch.float32",
    "TrainingArguments(", "save_steps=", "1", "per_device_train_batch_size=", "\"Qwen/Qwen2.5-0.5B\"", "kw = {",
    "}", "[", "]", ":", "=", "!pip install --pre torch", "quantize_(m, Float8WeightOnlyConfig())", "# eco: ignore",
    "@app.post('/x')\ndef f():\n", "if step % 10 == 0:\n    torch.save(m, 'x')\n", "lambda: ", "yield ", "\\", "'", '"',
])


def check(text: str, name: str, kind: str | None = None) -> None:
    res = AUDITOR.audit_text(text, name, kind)
    n_lines = max(1, len(text.splitlines()))
    for f in res.findings:
        assert f.code.startswith("ECO") and f.line >= 1
        if f.cell is None:
            assert f.line <= n_lines + 1, (f.code, f.line, n_lines)
    for d in res.diagnostics:
        assert "internal error" not in d.message, d.message


@FUZZ
@given(st.lists(TOKENS, max_size=60).map("".join), st.sampled_from(KINDS))
def test_token_soup_never_crashes(text, kind):
    check(text, "fuzz", kind)


@FUZZ
@given(st.text(max_size=2000), st.sampled_from(KINDS))
def test_random_text_never_crashes(text, kind):
    check(text, "fuzz", kind)


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from(KINDS))
def test_random_bytes_never_crash(data, kind):
    text, _ = decode(data, "fuzz", kind)
    if text is not None:
        check(text, "fuzz", kind)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_corpus_never_crashes(path, data):
    from advisor.audit.sources import kind_for

    lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["drop", "dup", "swap", "cut", "insert", "indent"]))
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap" and len(lines) > 1:
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "cut":
            k = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k]
        elif op == "insert":
            lines.insert(i, data.draw(TOKENS))
        else:
            lines[i] = "    " + lines[i]
    check("".join(lines), path.name, kind_for(path.name))


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=30))
def test_random_json_notebooks_and_configs_never_crash(obj):
    text = json.dumps(obj)
    check(text, "x.ipynb", "notebook")
    check(text, "x.json", "json")
    check(json.dumps({"cells": [{"cell_type": "code", "source": obj}]}), "y.ipynb", "notebook")
