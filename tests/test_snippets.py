"""Code snippets are what users copy: every Python snippet an answer shows parses, uses only names
it defines or imports, loads the model once, and one configuration has one snippet everywhere."""

from __future__ import annotations

import ast
import builtins

import pytest

from advisor.api import ask
from advisor.protocols import common
from measurements.schema import PRECISIONS

QUESTIONS = [
    "Lobster, I want to deploy Qwen2.5-3B on an RTX 5090. What's the greenest config?",
    "How much will Mistral-7B on A800 cost me for 1 million requests per month?",
    "Compare all 5 precisions for Qwen2.5-7B on RTX 5090.",
    "I'm running load_in_8bit=True and my GPU bill is crazy high. Help!",
    "Should I use FP8 on my Blackwell GPU? I heard it's faster.",
    "Lobster, tell me why 4-bit quantization is sometimes WORSE for energy.",
    "I want to run 100 wan zi through Yi-6B. How much does that cost?",
    "my mistral-7b on a 4090d at batch 1 in production is slow, 8 tok/s",
    "greenest config for a 7B model on an A800 for an offline batch job",
    "LoRA or QLoRA for Llama-3.1-8B on a 24GB GPU?",
]


def undefined_names(code: str) -> set[str]:
    tree = ast.parse(code)
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return used - bound


def model_loads(code: str) -> int:
    n = 0
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            if (name == "from_pretrained" and owner.startswith("AutoModel")) or name == "LLM":
                n += 1
    return n


def python_snippets(question: str) -> list[str]:
    a, _ = ask(question)
    return python_snippets_of(a)


@pytest.mark.parametrize("question", QUESTIONS)
def test_answer_snippets_parse_define_their_names_and_load_once(question):
    for code in python_snippets(question):
        assert not undefined_names(code), code
        assert model_loads(code) <= 1, code


@pytest.mark.parametrize("prec", PRECISIONS)
@pytest.mark.parametrize("bs", [1, 16])
def test_every_configuration_snippet_is_complete(prec, bs):
    code = common.config_code(prec, "Qwen/Qwen2.5-7B-Instruct", bs)
    assert not undefined_names(code) and model_loads(code) == 1
    assert f"* {bs}" in code and "Qwen/Qwen2.5-7B-Instruct" in code


def test_the_detector_catches_what_it_should():
    assert undefined_names("model = AutoModelForCausalLM.from_pretrained(model_id)") == {"AutoModelForCausalLM", "model_id"}
    assert model_loads("from vllm import LLM\nfrom transformers import AutoModelForCausalLM as A\n"
                       "m = AutoModelForCausalLM.from_pretrained('x')\nllm = LLM(model='x')") == 2


def test_one_configuration_one_snippet_across_protocols():
    # both answers recommend FP16 at the same batch size for this job: the snippet is the same text
    opt, _ = ask("greenest config for Mistral-7B on an A800 for a production API at 1 million requests per month?")
    est, _ = ask("How much will Mistral-7B on A800 cost me for 1 million requests per month?")
    (code_opt,) = python_snippets_of(opt)
    (code_est,) = python_snippets_of(est)
    assert f"* {opt.extra['best']['batch_size']}" in code_opt
    assert code_opt == code_est


def python_snippets_of(a) -> list[str]:
    return [r.code for r in a.recommendations if r.code and r.language == "python"]
