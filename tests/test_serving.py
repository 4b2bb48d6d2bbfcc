"""Serving answers (issue #14): vLLM rows answer vLLM questions, the serving model covers the rest
with named methods, and OPTIMIZE ranks framework x precision x concurrency x GPU count."""

from __future__ import annotations

import math
import statistics

import pytest

from advisor import api
from advisor import estimate as E
from advisor.estimate import serve_estimate, serving
from measurements import catalog, store

ROWS = store.load_rows(include_local=False)
VLLM = [r for r in ROWS if r.framework == "vllm"]


def _row(model_id: str, gpu: str, n: int, seqs: int, precision: str = "bf16"):
    return next(r for r in VLLM if r.model_id == model_id and r.gpu == gpu and r.gpu_count == n
                and r.max_num_seqs == seqs and r.precision == precision)


def cfg(model: str, gpu: str, bs: int, n: int = 1, precision: str = "bf16", **kw) -> E.Config:
    a = catalog.resolve_model(model)
    return E.Config(gpu=gpu, model=a.key, params_b=a.params_b, precision=precision, batch_size=bs, gpu_count=n,
                    framework="vllm", **kw)


def test_every_serving_row_is_an_observation_and_the_fit_is_shipped():
    obs = serving.observations(ROWS)
    assert len(obs) == len(VLLM) == 504
    p = serving.shipped_params()["vllm"]
    for k, (lo, hi) in serving.LIMITS.items():
        if k in p:
            assert lo * 0.999 <= p[k] <= hi * 1.001, k
    # the shipped calibration reproduces the rows it was fitted on (in-sample median, J/token: 13.9%
    # on 2026-12-02, 15.9% before the fit ran to convergence)
    assert serving.fit_error(obs, p) < 15


def test_experts_touched_follow_uniform_routing():
    # top-1 of 128 at 128 tokens: 128 x (1 - (127/128)^128) = 81.0 distinct experts, not all 128
    assert serving.experts_touched(128, 1, 128) == pytest.approx(128 * (1 - (127 / 128) ** 128))
    assert serving.experts_touched(128, 1, 128) == pytest.approx(81.0, abs=0.1)
    assert serving.experts_touched(128, 8, 1) == pytest.approx(8.0)  # one token: its own k
    assert serving.experts_touched(128, 8, 4096) == pytest.approx(128.0)  # many tokens: all of them
    assert serving.experts_touched(1, 1, 64) == 1.0  # a dense model reads its one MLP


def test_data_parallel_replicas_run_the_prompts_in_lockstep():
    """DP attention replicas step together (the expert layers synchronise them): the prompts' tokens
    cost the compute of dp replicas' worth, the decode tokens do not."""
    a = catalog.resolve_model("qwen3-coder-480b-a35b")
    base = serving.Setup(gpu=catalog.resolve_gpu("b200"), arch=a, fmt=catalog.formats()["fp8"], gpu_count=8,
                         concurrency=64, workload="code-completion", gen_tokens=250.0, prompt_tokens=1000.0)
    p = serving.shipped_params()["vllm"]
    one, eight = serving.predict(base, p), serving.predict(serving.replace(base, data_parallel=8), p)
    pre = 64 * 1000.0 / 250.0  # prompt tokens per step
    att = 4 * a.layers * a.heads * a.head_dim * (1000.0 + 125.0) * 64
    flops = 2 * a.active_params_b * 1e9
    want = (flops * (64 + 8 * pre) + att) / (flops * (64 + pre) + att)
    assert eight.t_compute_s / one.t_compute_s == pytest.approx(want)
    # without prompts the replicas cost no extra compute
    nil = serving.replace(base, prompt_tokens=0.0)
    assert serving.predict(serving.replace(nil, data_parallel=8), p).t_compute_s == pytest.approx(
        serving.predict(nil, p).t_compute_s)


def test_the_serving_fit_runs_until_a_sweep_gains_little():
    obs = [o for o in serving.observations(ROWS) if o.gpu == "h100_sxm" and o.model == "llama-3.1-8b"]
    four = serving.fit(obs, sweeps=4, tol=0.0)
    done = serving.fit(obs)
    assert serving._loss(obs, done) < serving._loss(obs, four)


def test_a_measured_multi_gpu_row_answers_as_measured():
    r = _row("meta-llama/Llama-3.1-70B-Instruct", "h100_sxm", 4, 128)
    e = E.estimate(cfg("llama-3.1-70b", "h100_sxm", 128, n=4))
    assert e.tier == "measured" and e.row_ids == [r.id]
    assert e.j_per_1k_tok == pytest.approx(r.energy_j_per_1k_tok)
    assert e.throughput_tok_s == pytest.approx(r.throughput_tok_s)
    assert e.itl_ms == pytest.approx(r.itl_p50_ms)
    assert e.output_tokens == pytest.approx(r.mean_output_tokens)


def test_fp16_is_answered_from_the_bf16_rows_and_percentiles_come_from_the_row():
    r = _row("meta-llama/Llama-3.1-8B-Instruct", "h100_sxm", 1, 256)
    e = E.estimate(cfg("llama-3.1-8b", "h100_sxm", 256, precision="fp16"), itl_percentile=99)
    assert e.tier == "measured" and e.j_per_1k_tok == pytest.approx(r.energy_j_per_1k_tok)
    assert e.itl_ms == pytest.approx(r.itl_p99_ms) and e.itl_percentile == 99
    assert any("BF16" in n for n in e.notes)


def test_between_measured_concurrencies_is_a_log_log_interpolation():
    lo = _row("meta-llama/Llama-3.1-8B-Instruct", "h100_sxm", 1, 96)
    hi = _row("meta-llama/Llama-3.1-8B-Instruct", "h100_sxm", 1, 128)
    e = E.estimate(cfg("llama-3.1-8b", "h100_sxm", 112))
    assert e.tier == "interpolated" and set(e.row_ids) == {lo.id, hi.id}
    w = math.log(112 / 96) / math.log(128 / 96)
    want = math.exp(math.log(lo.energy_j_per_1k_tok) * (1 - w) + math.log(hi.energy_j_per_1k_tok) * w)
    assert e.j_per_1k_tok == pytest.approx(want)


def test_beyond_the_measured_concurrencies_extrapolates_with_a_note():
    e = E.estimate(cfg("llama-3.1-8b", "h100_sxm", 4096))
    top = _row("meta-llama/Llama-3.1-8B-Instruct", "h100_sxm", 1, 768)
    assert e is not None and e.tier == "extrapolated" and e.row_ids == [top.id]
    assert any("outside the measured range" in n for n in e.notes)
    # physics: never beyond the bound, power within [idle, limit]
    g = catalog.resolve_gpu("h100_sxm")
    assert e.throughput_tok_s <= e.bound_tok_s + 1e-6
    assert g.idle_power_w <= e.power_w <= g.tdp_w


def test_a_gpu_without_serving_rows_gets_a_named_cross_gpu_transfer():
    e = E.estimate(cfg("llama-3.1-8b", "a100_80gb", 64))
    assert e is not None and e.j_per_1k_tok > 0 and e.throughput_tok_s > 0
    assert "cross-GPU transfer" in e.method and e.tier == "extrapolated" and e.confidence == "low"
    # anchored on the same model's vLLM row on another GPU, never on an HF row
    assert e.row_ids and all(i.startswith("mlenergy-") for i in e.row_ids)
    g = catalog.resolve_gpu("a100_80gb")
    assert g.idle_power_w <= e.power_w <= g.tdp_w


def test_a_model_without_serving_rows_comes_from_the_serving_model_only():
    e = E.estimate(cfg("qwen2.5-7b", "h100_sxm", 64))
    assert e is not None and e.tier == "extrapolated" and not e.row_ids
    assert "serving performance model" in e.method
    # the figure is the serving model's for this setup (chat, the chat rows' median output length)
    obs = serving.observations(ROWS)
    gen, _ = serve_estimate.gen_tokens_for(obs, "qwen2.5-7b", "chat")
    s = serving.Setup(gpu=catalog.resolve_gpu("h100_sxm"), arch=catalog.resolve_model("qwen2.5-7b"),
                      fmt=catalog.formats()["bf16"], gpu_count=1, concurrency=64, workload="chat", gen_tokens=gen)
    assert e.j_per_1k_tok == pytest.approx(serving.predict(s, serving.shipped_params()["vllm"]).j_per_1k)


def test_a_format_the_serving_law_has_no_efficiencies_for_gets_no_serving_figure():
    """vLLM's law is fitted for 16-bit, FP8 and MXFP4 rows; an NF4 or INT8 figure would borrow the
    16-bit kernels' efficiency with 4-bit bytes (Yi-1.5-6B NF4 came out at 44 J/1k tok)."""
    p = serving.shipped_params()["vllm"]
    assert serve_estimate.calibrated_formats(p) >= {"bf16", "fp16", "fp8", "mxfp4"}
    for prec in ("nf4", "int8_pure", "int8_mixed"):
        assert prec not in serve_estimate.calibrated_formats(p)
        assert E.estimate(cfg("yi-1.5-6b", "h100_sxm", 64, precision=prec)) is None
    assert E.estimate(cfg("yi-1.5-6b", "h100_sxm", 64, precision="fp8")) is not None
    ans = api.answer_query(api.parse("What is the greenest way to run Yi-1.5-6B with NF4 on an H100?"))
    assert ans.extra["best"]["framework"] != "vllm"


def test_a_concurrency_the_kv_cache_cannot_hold_does_not_fit():
    e = E.estimate(cfg("llama-3.1-70b", "h100_sxm", 4096, n=2))
    assert e is not None and not e.fits


def test_mxfp4_is_a_catalog_format_with_its_source():
    f = catalog.formats()["mxfp4"]
    assert f.weight_bits == 4 and f.state_bits_per_weight == pytest.approx(0.25)
    assert "Microscaling" in f.source
    e = E.estimate(cfg("gpt-oss-20b", "h100_sxm", 64, precision="mxfp4", workload="reasoning"))
    assert e.tier == "measured"


def test_serving_estimates_never_use_hf_rows():
    hf_ids = {r.id for r in ROWS if r.framework != "vllm"}
    for c in (cfg("llama-3.1-8b", "h100_sxm", 64), cfg("qwen2.5-7b", "a800", 32), cfg("mistral-7b", "h200", 16, n=2)):
        e = E.estimate(c)
        if e is not None:
            assert not set(e.row_ids) & hf_ids


# offline batch work queues into full batches: the ranking is over the measured concurrencies
GREENEST = ("Greenest way to serve Llama-3.1-8B for offline batch processing of 10 million requests a month on H100s "
            "with a 50 ms per-token target")


def test_greenest_way_to_serve_end_to_end():
    ans, _ = api.ask(GREENEST)
    best = ans.extra["best"]
    # the data's answer: the least J/token among Llama-3.1-8B vLLM rows on one H100 whose median ITL <= 50 ms
    rows = [r for r in VLLM if r.model_id == "meta-llama/Llama-3.1-8B-Instruct" and r.gpu == "h100_sxm"]
    ok = [r for r in rows if r.itl_p50_ms <= 50]
    want = min(ok, key=lambda r: r.energy_j_per_1k_tok)
    assert best["framework"] == "vllm" and best["gpu_count"] == 1 and best["batch_size"] == want.max_num_seqs
    assert best["j_per_1k_tok"] == pytest.approx(want.energy_j_per_1k_tok) and best["row_ids"] == [want.id]
    assert best["itl_ms"] <= 50
    # rows over the target were left out, said so
    assert any(r.itl_p50_ms > 50 for r in rows) and any("latency target" in c for c in ans.caveats)
    # capacity and monthly cost: tokens = requests x this model's measured mean answer length for its
    # task (the median over its rows of that task: one length for the whole answer)
    cap = ans.extra["capacity"][0]
    mine = [r.mean_output_tokens for r in VLLM if r.model_id == want.model_id and r.workload == want.workload]
    tokens = 10_000_000 * round(statistics.median(mine))
    hours = catalog.factor("days_per_month") * 24
    assert cap["tok_s_needed"] == pytest.approx(tokens / (hours * 3600))
    assert cap["gpus"] == math.ceil(cap["tok_s_needed"] / want.throughput_tok_s)
    assert cap["gpu_hours"] == pytest.approx(tokens / want.throughput_tok_s / 3600)
    assert cap["total_usd"] > cap["electricity_usd"] > 0
    assert "vLLM" in ans.headline and "concurrency" in ans.headline and "1 GPU" in ans.headline
    assert not ans.not_understood


def test_optimize_with_a_stated_framework_and_gpu_count_ranks_only_those():
    ans, _ = api.ask("greenest way to serve Llama-3.1-70B with vLLM on 4 H100s")
    best = ans.extra["best"]
    assert best["framework"] == "vllm" and best["gpu_count"] == 4
    rows = [r for r in VLLM if r.model_id == "meta-llama/Llama-3.1-70B-Instruct" and r.gpu == "h100_sxm"]
    assert best["j_per_1k_tok"] <= min(r.energy_j_per_1k_tok for r in rows) * 1.0001
    assert not ans.not_understood


def test_serve_estimate_workload_and_output_length_defaults():
    obs = serving.observations(ROWS)
    assert serve_estimate.default_workload(obs, "gpt-oss-20b") == "reasoning"
    assert serve_estimate.default_workload(obs, "qwen2.5-7b") == "chat"
    gen, how = serve_estimate.gen_tokens_for(obs, "qwen2.5-7b", "chat")
    assert gen > 0 and "median" in how


def test_compare_frameworks_hf_generate_vs_vllm():
    ans, _ = api.ask("HF generate vs vLLM for Llama-3.1-8B on an H100")
    assert ans.protocol == "compare" and not ans.not_understood
    fw = ans.extra["frameworks"]
    assert set(fw) == {"hf-eager", "vllm"}
    rows = [r for r in VLLM if r.model_id == "meta-llama/Llama-3.1-8B-Instruct" and r.gpu == "h100_sxm"]
    best = min(rows, key=lambda r: r.energy_j_per_1k_tok)
    assert fw["vllm"]["row_ids"] == [best.id] and fw["vllm"]["j_per_1k_tok"] == pytest.approx(best.energy_j_per_1k_tok)
    # the HF figure never comes from a vLLM row
    assert not set(fw["hf-eager"]["row_ids"]) & {r.id for r in VLLM}
    assert fw["vllm"]["j_per_1k_tok"] < fw["hf-eager"]["j_per_1k_tok"]
    assert ans.extra["ranking"][0].startswith("vLLM")


def test_compare_shows_the_quality_cost_of_a_format_where_perplexity_was_measured():
    ans, _ = api.ask("compare precisions for Mistral-7B-v0.1 on an A800")
    ppl = ans.extra["perplexity"]
    rows = {r.precision: r for r in ROWS if r.model_id == "mistralai/Mistral-7B-v0.1" and r.perplexity
            and not r.double_quant}
    assert ppl["fp16"]["perplexity"] == pytest.approx(rows["fp16"].perplexity)
    assert ppl["nf4"]["perplexity"] == pytest.approx(rows["nf4"].perplexity) and ppl["nf4"]["dataset"] == "WikiText-2"
    t = next(t for t in ans.tables if t.title.startswith("Quality cost"))
    nf4 = next(r for r in t.rows if r[0].startswith("NF4"))
    want = (rows["nf4"].perplexity / rows["fp16"].perplexity - 1) * 100
    assert nf4[3] == f"{want:+.1f}%"
    assert rows["nf4"].id in {c.ref for c in ans.citations}


def test_the_issue_estimate_command_answers_with_the_measured_figures(capsys):
    import json

    from advisor.cli import main

    assert main(["estimate", "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "h100_sxm", "--gpu-count", "4",
                 "--framework", "vllm", "--batch-size", "128", "--format", "json"]) == 0
    ans = json.loads(capsys.readouterr().out)
    r = _row("meta-llama/Llama-3.1-70B-Instruct", "h100_sxm", 4, 128)
    t = next(t for t in ans["tables"] if t["title"].startswith("Monthly estimate"))
    assert t["rows"][0][1] == pytest.approx(round(r.energy_j_per_1k_tok, 1))
    assert ans["provenance"][0]["row_ids"] == [r.id] and ans["provenance"][0]["tier"] == "measured"
    assert not ans["not_understood"]


def test_estimate_names_a_framework_switch():
    ans, _ = api.ask("what do 100 million requests a month of Llama-3.1-8B cost on an H100?")
    assert ans.protocol == "estimate"
    rec = next(r for r in ans.recommendations if r.title.startswith("Optimization"))
    assert "framework HF generate (eager) -> vLLM" in rec.title and rec.code.startswith("vllm serve")


def test_the_mcp_inputs_take_the_serving_levers():
    import typing

    from advisor.mcp import inputs
    from measurements.schema import FRAMEWORKS

    assert typing.get_args(inputs.Framework) == FRAMEWORKS
    for cls in (inputs.AskInput, inputs.OptimizeInput, inputs.CompareInput, inputs.EstimateInput, inputs.DiagnoseInput):
        assert {"framework", "gpu_count", "latency_target_ms", "latency_percentile"} <= set(cls.model_fields), cls
    from pydantic import ValidationError
    with pytest.raises(ValidationError):
        inputs.OptimizeInput(model="llama-3.1-8b", framework="foo")
    with pytest.raises(ValidationError):
        inputs.OptimizeInput(model="llama-3.1-8b", gpu_count=0)
    with pytest.raises(ValidationError):
        inputs.OptimizeInput(model="llama-3.1-8b", latency_target_ms=-1)


def test_mcp_tools_answer_with_the_serving_levers():
    from advisor.mcp import inputs, tools

    inp = inputs.OptimizeInput(model="llama-3.1-8b", gpu="h100_sxm", framework="vllm", gpu_count=1,
                               latency_target_ms=20, requests_per_month=10_000_000)
    ans = tools._tool_optimize(inp, None)
    best = ans.extra["best"]
    assert best["framework"] == "vllm" and best["gpu_count"] == 1 and best["itl_ms"] <= 20
    ok = [r for r in VLLM if r.model_id == "meta-llama/Llama-3.1-8B-Instruct" and r.gpu == "h100_sxm"
          and r.itl_p50_ms <= 20]
    # a live load of 10M requests a month keeps about a dozen sequences in flight: the ranking takes
    # each configuration at most there (common.load_level), above the full-batch minimum
    assert 8 <= best["batch_size"] < 64
    assert best["j_per_1k_tok"] > min(r.energy_j_per_1k_tok for r in ok) * 2
    inp = inputs.OptimizeInput(model="llama-3.1-8b", gpu="h100_sxm", framework="vllm", gpu_count=1,
                               latency_target_ms=20, requests_per_month=10_000_000, use_case="offline_batch")
    best = tools._tool_optimize(inp, None).extra["best"]
    assert best["j_per_1k_tok"] == pytest.approx(min(r.energy_j_per_1k_tok for r in ok))
    ans = tools._tool_ask(inputs.AskInput(text="greenest way to serve Llama-3.1-8B on an H100", framework="vllm",
                                          latency_target_ms=20), None)
    assert ans.extra["best"]["framework"] == "vllm" and ans.extra["best"]["itl_ms"] <= 20
    ans = tools._tool_compare(inputs.CompareInput(model="llama-3.1-8b", gpu="h100_sxm",
                                                  compare_frameworks=["hf-eager", "vllm"]), None)
    assert set(ans.extra["frameworks"]) == {"hf-eager", "vllm"}


@pytest.mark.parametrize(("argv", "needle"), [
    (["ask", "greenest way to serve Llama-3.1-8B", "--framework", "foo"], "framework 'foo' is not known"),
    (["ask", "greenest way to serve Llama-3.1-8B", "--gpu-count", "0"], "gpu_count must be"),
    (["optimize", "--model", "llama-3.1-8b", "--latency-target-ms", "-5"], "must be a positive number"),
    (["ask", "greenest way to serve Llama-3.1-8B", "--latency-percentile", "120"], "latency_percentile must be"),
    (["compare", "--model", "llama-3.1-8b", "--frameworks", "vllm"], "at least two different frameworks"),
])
def test_serving_flags_refuse_bad_values(capsys, argv, needle):
    from advisor.cli import main

    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_serving_flags_on_every_question_command(capsys):
    import json

    from advisor.cli import main

    for argv in (["ask", "greenest way to serve Llama-3.1-8B on an H100"],
                 ["optimize", "--model", "llama-3.1-8b", "--gpu", "h100_sxm"],
                 ["estimate", "--model", "llama-3.1-8b", "--gpu", "h100_sxm"],
                 ["compare", "--model", "llama-3.1-8b", "--gpu", "h100_sxm", "--precision", "bf16"],
                 ["diagnose", "--model", "llama-3.1-8b", "--gpu", "h100_sxm"]):
        assert main([*argv, "--framework", "vllm", "--gpu-count", "1", "--latency-target-ms", "30",
                     "--format", "json"]) == 0, argv
        ans = json.loads(capsys.readouterr().out)
        assert ans["query"]["framework"] == "vllm" and ans["query"]["gpu_count"] == 1
        assert ans["query"]["itl_target_ms"] == 30


def test_columns_and_one_configuration_give_the_same_prediction():
    """The fit evaluates the rows as numpy columns, an answer one configuration in floats: the same
    formulas, so every row's prediction agrees to rounding."""
    obs = serving.observations(ROWS)
    p = serving.shipped_params()["vllm"]
    cols = serving.evaluate(serving.Columns.of([o.setup for o in obs]), p)
    for i, o in enumerate(obs):
        one = serving.predict(o.setup, p)
        assert one.j_per_1k == pytest.approx(float(cols["j_per_1k"][i]), rel=1e-12)
        assert one.tok_s == pytest.approx(float(cols["tok_s"][i]), rel=1e-12)
        assert one.t_memory_s == pytest.approx(float(cols["t_mem"][i]), rel=1e-12)
    with pytest.raises(ValueError, match="exactly one"):
        serving.Columns.of([o.setup for o in obs[:2]], vector=False)


def test_a_gpu_without_serving_rows_gets_the_fitted_multipliers_up_to_the_peak():
    """kv:h100_sxm sits at its search limit; the transfer takes it only up to where the H100's
    product with the shared efficiency reaches the peak (the fit cannot tell larger values apart)."""
    p = serving.shipped_params()["vllm"]
    fitted = [v for k, v in p.items() if k.startswith("kv:")]
    capped = [min(v, 1 / p["eff_kv"]) for v in fitted]
    assert max(fitted) > 1 / p["eff_kv"]  # the degeneracy this guards against is in the shipped fit
    assert serving.gpu_param(p, "kv", "a100_80gb") == pytest.approx(math.prod(capped) ** (1 / len(capped)))
    assert serving.gpu_param(p, "kv", "a100_80gb") * p["eff_kv"] < 1.0
    assert serving.gpu_param(p, "kv", "h100_sxm") == p["kv:h100_sxm"]  # a fitted GPU keeps its own


def test_a_gpu_without_serving_rows_anchors_on_the_gpu_nearest_in_bandwidth():
    # Qwen3-8B chat at 64 sequences is measured on both the H100 (3.35 TB/s) and the B200 (8 TB/s):
    # an A100 (2.0 TB/s) anchors on the H100 row, a B300-like 8 TB/s part would not
    chat = [r for r in VLLM if r.model_id == "Qwen/Qwen3-8B" and r.max_num_seqs == 64 and r.workload == "chat"]
    assert {r.gpu for r in chat} == {"h100_sxm", "b200"}
    h = next(r for r in chat if r.gpu == "h100_sxm")
    e = E.estimate(cfg("qwen3-8b", "a100_80gb", 64, workload="chat"))
    assert e.tier == "extrapolated" and e.row_ids == [h.id]
    assert "cross-GPU transfer" in e.method
