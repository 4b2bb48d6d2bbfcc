"""False alarms seen on real public training and inference code (issue #16), each on a file
written here: git installs of pure-Python packages, endpoints handing requests to a batching
engine, prediction-only and smoke-test configs, 8-bit bases, LLaMA-Factory's pure_bf16 and its
v1 recipes. Each test also shows the trap that must still be reported."""

from __future__ import annotations

from advisor.audit import Auditor, AuditSettings


def codes(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return [(f.code, f.line) for f in Auditor(AuditSettings()).audit_paths([str(p)]).findings]


def test_git_installs_of_pure_python_packages_are_not_dev_builds(tmp_path):
    req = ("git+https://github.com/huggingface/peft.git\n"
           "transformers @ git+https://github.com/huggingface/transformers\n"
           "torchao @ git+https://github.com/pytorch/ao\n")
    assert codes(tmp_path, "requirements.txt", req) == [("ECO104", 3)]


def test_an_endpoint_that_hands_requests_to_vllm_is_batched(tmp_path):
    body = ("from fastapi import FastAPI\napp = FastAPI()\n@app.post('/generate')\n"
            "async def gen(req):\n    return await engine.generate(req.prompt)\n")
    assert codes(tmp_path, "plain.py", "import torch\n" + body) == [("ECO105", 6)]
    assert codes(tmp_path, "served.py", "from vllm import AsyncLLMEngine\n" + body) == []


def test_prediction_only_and_smoke_configs_are_not_fp32_training(tmp_path):
    base = "model_name_or_path: Qwen/Qwen2.5-7B\nstage: sft\nper_device_train_batch_size: 4\nlearning_rate: 1.0e-4\n"
    assert codes(tmp_path, "train.yaml", base) == [("ECO202", 1)]
    assert codes(tmp_path, "predict.yaml", base + "do_predict: true\n") == []
    assert codes(tmp_path, "smoke.yaml", base + "max_steps: 10\n") == []
    assert codes(tmp_path, "galore.yaml", base + "pure_bf16: true\n") == []


def test_llamafactory_v1_recipes_are_not_read_as_axolotl(tmp_path):
    v1 = "model: Qwen/Qwen3-4B\nmodel_class: llm\npeft_config:\n  name: lora\nmicro_batch_size: 1\nlearning_rate: 1.0e-4\n"
    assert codes(tmp_path, "v1.yaml", v1) == []


def test_an_8bit_base_trained_without_fp16_flags_is_not_fp32_training(tmp_path):
    head = "from transformers import AutoModelForCausalLM, TrainingArguments\n"
    args = "TrainingArguments(output_dir='o', learning_rate=2e-4, num_train_epochs=3)\n"
    assert codes(tmp_path, "a.py", head + args) == [("ECO202", 2)]
    assert [c for c in codes(tmp_path, "b.py", head + "m = AutoModelForCausalLM.from_pretrained('x-7b', "
                                               "load_in_8bit=True, llm_int8_threshold=0.0)\n" + args)
            if c[0] == "ECO202"] == []
