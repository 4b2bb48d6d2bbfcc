"""`ecolobster schema` prints JSON Schemas generated from the pydantic models; real output of the
commands must validate against them (and a broken output must not)."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from advisor.cli import main
from advisor.mcp import tools as mcp_tools
from measurements.store import load_rows


def run_json(capsys, *argv: str):
    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    assert rc == 0, f"ecolobster {' '.join(argv)} exited {rc}: {out.err}"
    return json.loads(out.out)


@pytest.fixture(scope="module")
def schemas() -> dict:
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["schema"]) == 0
    return json.loads(buf.getvalue())


def validator(schema: dict) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_prints_every_schema_as_valid_draft_2020_12(schemas):
    assert set(schemas) == {"outputs", "inputs"}
    assert set(schemas["outputs"]) == {"answer", "query", "measurement", "measurements"}
    assert set(schemas["inputs"]) >= {s.name for s in mcp_tools.tool_specs(include_benchmark=True)}
    for group in schemas.values():
        for name, schema in group.items():
            assert schema["$schema"].endswith("2020-12/schema"), name
            validator(schema)


def test_one_schema_by_name_equals_the_full_listing(capsys, schemas):
    assert run_json(capsys, "schema", "answer") == schemas["outputs"]["answer"]
    assert run_json(capsys, "schema", "query-measurements") == schemas["inputs"]["query_measurements"]


def test_unknown_name_is_refused_with_the_names(capsys):
    assert main(["schema", "answr"]) == 2
    err = capsys.readouterr().err
    assert "no schema named 'answr'" in err and "Did you mean answer" in err and "measurements" in err


def test_list_names_every_schema(capsys, schemas):
    listed = run_json(capsys, "schema", "--list", "--format", "json")
    assert {e["name"] for e in listed} == set(schemas["outputs"]) | set(schemas["inputs"])


def test_data_commands_validate(capsys, schemas):
    rows = run_json(capsys, "data", "list", "--format", "json")
    assert len(rows) == len(load_rows())
    validator(schemas["outputs"]["measurements"]).validate(rows)
    one = run_json(capsys, "data", "show", rows[0]["id"], "--format", "json")
    validator(schemas["outputs"]["measurement"]).validate(one)
    exported = run_json(capsys, "data", "export", "--format", "json")
    validator(schemas["outputs"]["measurements"]).validate(exported)


QUESTIONS = [
    ["ask", "greenest way to serve mistral-7b on an rtx 4090d for a chat app"],
    ["ask", "在A800上运行Qwen2.5-7B每月一亿个token要多少电费"],
    ["optimize", "--model", "mistral-7b", "--gpu", "4090d", "--use-case", "interactive_chat", "--requests-per-day", "5000"],
    ["compare", "--model", "mistral-7b", "--gpu", "a800", "--axis", "precision"],
    ["compare", "--model", "mistral-7b", "--axis", "gpu", "--gpus", "rtx4090d,a800"],
    ["estimate", "--model", "qwen2.5-7b", "--gpu", "a800", "--precision", "nf4", "--tokens-per-month", "50000000",
     "--region", "eu"],
    ["diagnose", "--model", "mistral-7b", "--gpu", "a800", "--precision", "int8_mixed", "--reported-tok-s", "10"],
    ["plan", "--model", "olmo-7b", "--examples", "20000", "--avg-tokens", "512", "--gpu", "4090d", "--budget-usd", "20"],
]


@pytest.mark.parametrize("argv", QUESTIONS, ids=lambda a: a[0] + ":" + (a[1] if a[0] == "ask" else a[2]))
def test_question_commands_print_valid_answers(capsys, schemas, argv):
    answer = run_json(capsys, *argv, "--format", "json")
    validator(schemas["outputs"]["answer"]).validate(answer)
    assert answer["protocol"] != "error", answer["errors"]
    if argv[0] != "ask":
        assert answer["protocol"] == argv[0]
    assert answer["provenance"], "an answer with figures names their provenance"


def test_audit_and_error_answers_validate(capsys, schemas, tmp_path):
    v = validator(schemas["outputs"]["answer"])
    src = tmp_path / "serve.py"
    src.write_text("from transformers import AutoModelForCausalLM\n"
                   "m = AutoModelForCausalLM.from_pretrained('mistralai/Mistral-7B-Instruct-v0.2', load_in_8bit=True)\n")
    capsys.readouterr()
    rc = main(["audit", str(src), "--format", "json"])
    assert rc == 1  # a finding at or above the default --fail-on
    report = json.loads(capsys.readouterr().out)
    assert report["findings"][0]["code"] == "ECO101"  # CI reads findings at top level
    audit = report["answer"]
    v.validate(audit)
    assert audit["protocol"] == "audit" and audit["alerts"]
    assert main(["ask", "qwzx plfm", "--format", "json"]) == 2
    error = json.loads(capsys.readouterr().out)
    v.validate(error)
    assert error["protocol"] == "error" and error["errors"]


def test_schema_catches_a_broken_answer(schemas):
    v = validator(schemas["outputs"]["answer"])
    ok = {"protocol": "data", "title": "t"}
    v.validate(ok)
    for bad in ({**ok, "mood": "purple"}, {**ok, "surprise": 1}, {"title": "no protocol"},
                {**ok, "provenance": [{"subject": "s", "tier": "guessed", "method": "m", "confidence": "high"}]},
                {**ok, "costs": [{"label": "x", "kwh": -1, "usd": 0, "kg_co2": 0}]}):
        assert list(v.iter_errors(bad)), bad


def test_input_schemas_agree_with_the_models(schemas):
    """What the schema accepts the model accepts, and unknown fields fail both."""
    for spec in mcp_tools.tool_specs(include_benchmark=True):
        v = validator(schemas["inputs"][spec.name])
        sample = SAMPLES.get(spec.name)
        if sample is None:
            continue
        v.validate(sample)
        spec.input_model.model_validate(sample)
        extra = {**copy.deepcopy(sample), "unexpected": True}
        assert list(v.iter_errors(extra))
        with pytest.raises(ValueError):
            spec.input_model.model_validate(extra)


SAMPLES = {
    "ask": {"text": "greenest way to serve mistral-7b on a 4090d", "lang": "en"},
    "audit": {"code": "import torch\n", "filename": "a.py", "gpu": "4090d"},
    "query_measurements": {"gpu": "a800", "precision": "int8_pure", "limit": 5},
    "optimize": {"model": "mistral-7b", "gpu": "4090d", "use_case": "interactive_chat", "requests_per_day": 1000},
    "compare": {"model": "mistral-7b", "gpu": "rtx5090", "compare_precisions": ["fp16", "nf4", "int8_pure"]},
    "estimate": {"model": "mistral-7b", "tokens_per_month": 1e8, "region": "eu"},
    "diagnose": {"model": "mistral-7b", "precision": "int8_mixed", "symptoms": ["slow", "high_bill"]},
    "plan_finetune": {"model": "olmo-7b", "examples": 20000, "method": "qlora", "gpus": ["4090d"], "budget_usd": 20},
}


def test_every_tool_has_a_sample_here():
    assert set(SAMPLES) >= {s.name for s in mcp_tools.tool_specs(include_benchmark=True)} - {"benchmark"}


def _format_choices(parser) -> list[str] | None:
    action = parser._option_string_actions.get("--format")
    return list(action.choices) if action is not None and action.choices else None


def test_every_command_takes_format_json():
    """JSON everywhere: each command (and each `data` action) accepts --format json."""
    from advisor.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    missing = []
    for name, sp in subs.items():
        nested = next((a for a in sp._actions if a.__class__.__name__ == "_SubParsersAction"), None)
        for label, p in ([(f"{name} {n}", q) for n, q in nested.choices.items()] if nested else [(name, sp)]):
            if "json" not in (_format_choices(p) or []):
                missing.append(label)
    assert not missing, f"commands without --format json: {missing}"
    assert {"ask", "optimize", "compare", "estimate", "diagnose", "audit", "plan", "bench", "chat", "data", "schema", "mcp"} <= set(subs)


def test_the_answer_schema_shows_the_resolved_query_fields(schemas):
    answer = schemas["outputs"]["answer"]
    fields = answer["properties"]["query"]["properties"]
    for name in ("gpu_count", "framework", "requests_per_month", "prompt_tokens", "gen_tokens", "reported_tok_s",
                 "reported_power_w", "not_understood", "stated_words"):
        assert name in fields, name
    assert "not_understood" in answer["properties"]
    assert set(fields) == set(schemas["outputs"]["query"]["properties"])
