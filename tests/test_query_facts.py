"""Every fact a user states is used or reported (issue #12), and odd values are clear errors, never
tracebacks or silent defaults (the parser cases of issue #17). The issue's own examples run through
the CLI's JSON output."""

from __future__ import annotations

import json

import pytest

from advisor.cli import main
from advisor.query import QueryError, from_fields, parse


def ask_json(capsys, text: str) -> dict:
    assert main(["ask", text, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_issue_example_vllm_at_40_requests_per_second(capsys):
    a = ask_json(capsys, "I serve Mistral-7B on an A100 at 40 requests per second with vLLM, prompts of 1500 tokens "
                         "and 300 token answers")
    q = a["query"]
    assert q["model"] == "mistral-7b-v0.2" and q["gpu"] == "a100_80gb"
    assert q["framework"] == "vllm" and q["compiled"] is True
    assert q["prompt_tokens"] == 1500 and q["gen_tokens"] == 300
    assert q["requests_per_month"] == pytest.approx(40 * 86400 * 30.4375)
    assert any("40 requests per second" in c and "requests/month" in c for c in a["conversions"])
    assert "$0.01" not in a["headline"]


@pytest.mark.parametrize(("text", "gpu"), [("Llama-3.1-8B on an NVIDIA L4", "l4"), ("Qwen2.5-7B on a T4", "t4"),
                                           ("Mistral-7B on an NVIDIA Tesla T4 16GB", "t4"), ("mistral 7b on 2 L4s", "l4"),
                                           ("Qwen2.5-7B on an L40S", "l40s"), ("qwen2.5-7b on an a10g", "a10g")])
def test_a_stated_gpu_is_never_replaced(text, gpu):
    q = parse(text)
    assert q.gpu == gpu and "gpu" not in q.defaulted


def test_every_catalog_gpu_is_read_by_its_names():
    from measurements import catalog

    for g in catalog.gpus():
        for name in (g.name, *g.aliases):
            q = parse(f"greenest config for Qwen2.5-7B on {name}")
            assert q.gpu == g.key, (name, q.gpu)


def test_bf16_on_a_t4_warns(capsys):
    a = ask_json(capsys, "fp16 vs bf16 on a T4")
    assert a["query"]["gpu"] == "t4"
    assert any("BF16 is not supported natively on NVIDIA T4" in w for w in a["warnings"])


@pytest.mark.parametrize("text", ["Qwen2.5-7B on a mars gpu", "Qwen2.5-7B on a GTX 1080", "mistral 7b on an h70"])
def test_an_unknown_gpu_is_an_error_never_the_default(text):
    with pytest.raises(QueryError) as ei:
        parse(text)
    assert "not supported" in ei.value.errors[0] and "rtx4090d" in ei.value.errors[0]


def test_chat_requests_per_day_and_rates_of_every_period():
    q = parse("Mistral-7B, about 50,000 chat requests per day, what does it cost?")
    assert q.requests_per_month == pytest.approx(50000 * 30.4375)
    assert q.use_case == "interactive_chat"
    for text, per_month in (("Mistral-7B on A800 at 40 QPS", 40 * 86400 * 30.4375),
                            ("Mistral-7B on A800, peak RPS of 12", 12 * 86400 * 30.4375),
                            ("Mistral-7B on A800, 600 requests a minute", 600 * 1440 * 30.4375),
                            ("Mistral-7B on A800, 2,000 requests per hour", 2000 * 24 * 30.4375),
                            ("Mistral-7B on A800, 70k requests per week", 70000 * 30.4375 / 7),
                            ("Mistral-7B on A800, 12M requests a year", 1e6),
                            ("Mistral-7B on A800, 1e6 requests per month", 1e6),
                            ("Mistral-7B on A800, 1.5e6 requests per month", 1.5e6),
                            ("Mistral-7B 在 A800 上每秒 10 个请求", 10 * 86400 * 30.4375),
                            ("Mistral-7B on A800: 200 users each sending 20 messages a day", 200 * 20 * 30.4375)):
        q = parse(text)
        assert q.requests_per_month == pytest.approx(per_month), text
        assert "requests_per_month" not in q.defaulted


@pytest.mark.parametrize(("text", "prompt", "gen"), [
    ("Mistral-7B on A800 with 1,500-token prompts and ~300 token answers", 1500, 300),
    ("Mistral-7B on A800, 8k context", 8000, None),
    ("Mistral-7B on A800, input 2k output 500", 2000, 500),
    ("Mistral-7B on A800, prompts of about 1200 tokens, responses of 400 tokens", 1200, 400),
    ("Mistral-7B on A800, 2048 input tokens and 128 output tokens", 2048, 128),
    ("Mistral-7B 在 A800 上，输入 1500 token，输出 300 token", 1500, 300),
])
def test_lengths_in_any_phrasing(text, prompt, gen):
    q = parse(text)
    assert q.prompt_tokens == prompt and "prompt_tokens" not in q.defaulted
    if gen is not None:
        assert q.gen_tokens == gen and "gen_tokens" not in q.defaulted


@pytest.mark.parametrize(("text", "count"), [("70B on 2x H100", 2), ("Llama 70B on 8 GPUs, tensor parallel 8, H100", 8),
                                             ("Llama-3.1-70B on a node of 8 A100s", 8), ("Qwen2.5-72B, tensor parallel 4 on H100", 4),
                                             ("Qwen2.5-72B on two H100s", 2), ("Qwen2.5-72B 用 4 张 A800", 4),
                                             ("Qwen2.5-72B on 8 H100, tp=4", 4)])
def test_gpu_count(text, count):
    assert parse(text).gpu_count == count


def test_a_gpu_count_the_answer_cannot_use_is_reported_and_the_mood_is_gray(capsys):
    a = ask_json(capsys, "70B on 2x H100")
    assert a["query"]["gpu_count"] == 2
    if a["not_understood"]:  # until the estimator models several GPUs, it says so before the answer
        assert a["mood"] == "gray" and any("gpu_count" in n for n in a["not_understood"])


@pytest.mark.parametrize(("text", "framework", "compiled"), [
    ("Mistral-7B on A100 with vLLM", "vllm", True), ("Mistral-7B on A100 served by TGI", "tgi", True),
    ("Mistral-7B on A100 with SGLang", "sglang", True), ("Mistral-7B on an H100 with TensorRT-LLM", "trt-llm", True),
    ("Mistral-7B on an RTX 4090 with llama.cpp", "llama.cpp", False), ("Mistral-7B with Ollama on an RTX 4090", "llama.cpp", False),
    ("Mistral-7B with HF transformers on an A100", "hf-eager", False),
    ("Mistral-7B on an A100 with static cache and CUDA graphs", "hf-static-cache", True),
])
def test_frameworks(text, framework, compiled):
    q = parse(text)
    assert q.framework == framework and q.compiled is compiled


def test_structured_framework_and_gpu_count():
    q = from_fields("optimize", model="mistral-7b", gpu="h100", framework="vLLM", gpu_count=2)
    assert q.framework == "vllm" and q.gpu_count == 2 and q.compiled
    with pytest.raises(QueryError, match="framework 'deepspeed-mii'"):
        from_fields("optimize", model="mistral-7b", framework="deepspeed-mii")


def test_region_only_when_stated():
    assert parse("Qwen2.5-7B on A800, the ops team told us the bill is high").region == "us"  # the default...
    q = parse("Qwen2.5-7B on A800, the ops team told us the bill is high")
    assert "region" in q.defaulted  # ...applied as a default, not read from the pronoun
    q2 = parse("Our region is China, Qwen2.5-7B on A800, the ops team told us the bill is high")
    assert q2.region == "china" and "region" not in q2.defaulted
    assert parse("Mistral-7B on A800 in the US, cost of 1M requests").region == "us"
    assert parse("Mistral-7B on A800 in the US, cost of 1M requests").defaulted.count("region") == 0
    with pytest.raises(QueryError, match="region 'mars'"):
        parse("Mistral-7B on A800, region mars, 1M requests a month cost")
    assert "region" in parse("Mistral-7B on an A100 80 GB, 1M requests a month cost").defaulted


def test_precision_lists_compare_both_int8_variants():
    q = parse("FP16, NF4 or INT8, which uses the least energy?")
    assert q.protocol == "compare"
    assert q.compare_precisions == ["fp16", "nf4", "int8_mixed", "int8_pure"]
    assert any("both bitsandbytes INT8 variants" in c for c in q.conversions)


def test_unmeasured_formats_one_message_and_comparisons_on_the_nearest():
    with pytest.raises(QueryError) as ei:
        parse("GPTQ / AWQ int4 for Mistral-7B")
    assert len(ei.value.errors) == 1
    assert all(w in ei.value.errors[0] for w in ("GPTQ", "AWQ", "INT4", "not measured", "NF4"))
    q = parse("compare fp16 vs GPTQ for Mistral-7B on A800")
    assert q.compare_precisions == ["fp16", "nf4"]
    assert any("GPTQ" in w and "nearest measured" in w for w in q.warnings)
    assert any("GPTQ" in n for n in q.not_understood)


def test_latency_targets():
    q = parse("Mistral-7B on A100 with vLLM, p90 under 50 ms per token and under 2 s per answer")
    assert q.itl_target_ms == 50 and q.itl_percentile == 90 and q.e2e_target_s == 2


def test_a_second_model_and_leftover_quantities_are_reported():
    q = parse("Mistral-7B or Qwen2.5-7B on A800, budget of 500 euros")
    assert q.model == "mistral-7b-v0.2"
    assert any("Qwen2.5-7B" in n and "second model" in n for n in q.not_understood)
    assert any("500 euros" in n for n in q.not_understood)


def test_moe_names_are_kept_never_swapped():
    q = parse("greenest config for Qwen2-57B-A14B on an H100")
    assert q.model == "qwen2-57b-a14b" and q.model_params_b == 57 and not q.model_known
    assert any("14B active" in n for n in q.not_understood)
    # a mixture of experts the catalog holds (ML.ENERGY measured it) resolves with its exact size
    q = parse("greenest config for Qwen3-30B-A3B on an H100")
    assert q.model == "qwen3-30b-a3b" and q.model_known and q.model_params_b == 30.532
    assert parse("Mixtral-8x7B on 2x A100").model == "mixtral-8x7b"


# --- bad values (issue #17, the parser's cases) -------------------------------------------------------

@pytest.mark.parametrize(("text", "needle"), [
    ("greenest config for a " + "9" * 400 + "B model on an A100", "too long"),
    ("Mistral-7B on A800 seq len " + "9" * 400, "too long"),
    ("Mistral-7B on A800, batch 1e9", "batch_size=1000000000 exceeds the maximum accepted"),
    ("Mistral-7B on A800, batch 8.9", "whole number"),
    ("Mistral-7B on A800, batch size 0", "batch_size must be >= 1"),
    ("Mistral-7B on A800, 1e300 requests per month cost", "beyond any real workload"),
])
def test_odd_numbers_are_clear_errors(text, needle):
    with pytest.raises(QueryError) as ei:
        parse(text)
    assert any(needle in e for e in ei.value.errors), ei.value.errors


def test_batch_up_to_4096_is_accepted_with_an_extrapolation_warning():
    # the measured range is the framework's on that GPU: HF generate up to 64, vLLM on an H100 up to 2048
    q = parse("Mistral-7B on an H100, batch 1024")
    assert q.batch_size == 1024
    assert any("beyond the measured range (up to 64)" in w for w in q.warnings)
    q = parse("Mistral-7B on an H100 with vLLM, batch 4096")
    assert q.batch_size == 4096
    assert any("beyond the measured range of vllm on this GPU (8-2048)" in w for w in q.warnings)
    q = parse("Mistral-7B on an H100 with vLLM, batch 1024")
    assert not any("beyond the measured range" in w for w in q.warnings)
    assert any("no vllm measurements" in w for w in q.warnings)


@pytest.mark.parametrize(("argv", "needle"), [
    (["estimate", "--model", "mistral-7b", "--requests-per-month", "1e308"], "beyond any real workload"),
    (["estimate", "--model", "mistral-7b", "--requests-per-month", "1000", "--requests-per-day", "10"], "both given"),
    (["diagnose", "--model", "mistral-7b", "--reported-tok-s", "-8"], "reported_tok_s must be a positive number"),
])
def test_structured_bad_values_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_a_misspelt_model_is_answered_as_typed_with_did_you_mean(capsys):
    assert main(["optimize", "--model", "mistrall-7b", "--gpu", "a800", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "Did you mean 'mistral-7b-v0.2'" in captured.err
    assert json.loads(captured.out)["query"]["model"] == "mistrall-7b"


def test_a_lone_surrogate_with_json_output_is_no_traceback(capsys):
    rc = main(["ask", "greenest config for Mistral-7B on an A800 \udcff", "--format", "json"])
    out = capsys.readouterr().out
    assert rc == 0
    assert json.loads(out)["query"]["gpu"] == "a800"


def test_a_latency_target_with_its_percentile_is_used_together():
    from advisor.api import ask

    a, _ = ask("Qwen2.5-7B on an H100, 5M requests a month, p90 under 50 ms per token")
    assert a.query["itl_target_ms"] == 50 and a.query["itl_percentile"] == 90
    assert not any("percentile" in n for n in a.not_understood)
