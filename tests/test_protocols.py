"""The protocols end to end through `ask` (and the CLI), asserting on the JSON of the Answer: the
seven "Try It Now" prompts of seed 003 in English and Chinese, the parameter guide's examples,
and the behaviours each protocol promises."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from advisor import derive
from advisor.answer import mood_for_waste
from advisor.api import answer_query, ask
from advisor.cli import main
from advisor.messages import t as msg
from advisor.query import from_fields
from advisor.render import to_json
from measurements import catalog, store

PROMPTS = {
    "optimize_3b": ("Lobster, I want to deploy Qwen2.5-3B on an RTX 5090. What's the greenest config?",
                    "我想在RTX 5090上部署Qwen2.5-3B，最省电的配置是什么？"),
    "estimate_mistral": ("How much will Mistral-7B on A800 cost me for 1 million requests per month?",
                         "Mistral-7B 在 A800 上每月100万次请求要花多少钱？"),
    "compare_7b": ("Compare all 5 precisions for Qwen2.5-7B on RTX 5090.", "对比Qwen2.5-7B在RTX 5090上的全部5种精度"),
    "int8": ("I'm running load_in_8bit=True and my GPU bill is crazy high. Help!", "我用了load_in_8bit=True，GPU电费高得离谱，怎么办？"),
    "fp8": ("Should I use FP8 on my Blackwell GPU? I heard it's faster.", "我的Blackwell显卡应该用FP8吗？听说更快。"),
    "nf4_why": ("Lobster, tell me why 4-bit quantization is sometimes WORSE for energy.", "为什么4位量化有时候反而更费电？"),
    "wan_zi": ("I want to run 100 wan zi through Yi-6B. How much does that cost?", "我想用Yi-6B跑100万字，要花多少钱？"),
}


def answer_json(text: str) -> dict:
    ans, _ = ask(text)
    return json.loads(to_json(ans))


def table(a: dict, startswith: str) -> dict:
    return next(t for t in a["tables"] if t["title"].startswith(startswith))


LANGS = [pytest.param(0, id="en"), pytest.param(1, id="zh")]


@pytest.mark.parametrize("i", LANGS)
def test_optimize_qwen_3b_on_5090(i):
    a = answer_json(PROMPTS["optimize_3b"][i])
    assert a["protocol"] == "optimize" and a["lang"] == ("en", "zh")[i]
    best = a["extra"]["best"]
    # FP16 is the measured best precision for a 3B model on this GPU (3,504 J/1k tok at BS=1)
    assert best["precision"] == "fp16" and best["batch_size"] > 1
    assert a["extra"]["current"]["j_per_1k_tok"] == 3504
    assert "seed003-rtx5090-qwen2.5-3b-fp16-bs1" in {c["ref"] for c in a["citations"]}
    # no configuration was stated, so no bar says "you are here" (issue 22)
    assert a["charts"] and not any(it["current"] for it in a["charts"][0]["items"])
    assert len(a["costs"]) == 2 and a["costs"][1]["usd"] < a["costs"][0]["usd"]
    assert a["mood"] == "green" and a["waste_pct"] == 0.0  # nothing of the user's to judge
    assert any(r.get("code") and "torch.float16" in r["code"] for r in a["recommendations"])
    assert a["extra"]["bench_commands"]  # the batch figure is not measured: say how to measure it


@pytest.mark.parametrize("i", LANGS)
def test_estimate_mistral_a800_one_million_requests(i):
    a = answer_json(PROMPTS["estimate_mistral"][i])
    assert a["protocol"] == "estimate"
    cur = a["costs"][0]
    gen = int(catalog.factor("default_gen_tokens"))
    us = catalog.resolve_region("us")
    kwh = 4334 * 1_000_000 * gen / 1000 / 3.6e6  # the measured A800 FP16 BS=1 row
    assert cur["kwh"] == pytest.approx(kwh)
    assert cur["usd"] == pytest.approx(kwh * us.price_usd_kwh)
    assert cur["kg_co2"] == pytest.approx(kwh * us.grid_gco2_kwh / 1000)
    assert cur["equivalents"]["km_driven"] == pytest.approx(cur["kg_co2"] * catalog.factor("km_driven_per_kgco2"))
    assert a["costs"][1]["kwh"] < cur["kwh"]
    assert "seed003-a800-mistral-7b-fp16-bs1" in {c["ref"] for c in a["citations"]}
    assert any("3,600,000 J/kWh" in c for c in a["conversions"])
    rows = {r[0]: r for r in table(a, ("Monthly estimate", "月度估算")[i])["rows"]}
    assert rows["J/1k tok"][1] == 4334


@pytest.mark.parametrize("i", LANGS)
def test_compare_five_precisions_qwen_7b_5090(i):
    a = answer_json(PROMPTS["compare_7b"][i])
    assert a["protocol"] == "compare"
    lg = ("en", "zh")[i]
    t = a["tables"][0]
    cols = t["columns"]
    delta, rank = msg(lg, "compare.col_delta_fp16"), msg(lg, "compare.col_rank")
    assert cols[:4] == [msg(lg, "col.precision"), msg(lg, "compare.col_throughput"), "J/1k tok", delta]
    assert {"tok/J", msg(lg, "col.memory_gb"), msg(lg, "col.power_w"), rank} <= set(cols)
    if lg == "en":
        assert cols[:4] == ["precision", "throughput tok/s", "J/1k tok", "Δ energy vs FP16"]
    # rows are labelled with the precision's name in the answer's language
    by = {p: next(r for r in t["rows"] if r[0].startswith(msg(lg, f"precision.{p}"))) for p in
          ("fp16", "fp8", "nf4", "int8_mixed", "int8_pure")}
    published = {"fp16": 5331, "fp8": 42711, "nf4": 4718, "int8_mixed": 9280, "int8_pure": 5822}
    for name, j in published.items():
        assert by[name][cols.index("J/1k tok")] == j
    assert by["fp8"][cols.index(delta)] == "+701%"
    assert by["nf4"][cols.index(delta)] == "-11.5%"
    ranks = {n: by[n][cols.index(rank)] for n in published}
    assert ranks == {"nf4": 1, "fp16": 2, "int8_pure": 3, "int8_mixed": 4, "fp8": 5}
    assert a["extra"]["recommended"]["precision"] == "nf4"
    assert all(p["tier"] == "measured" for p in a["provenance"])
    assert len(a["charts"][0]["items"]) == 5


@pytest.mark.parametrize("i", LANGS)
def test_load_in_8bit_bill_is_diagnosed_as_the_int8_paradox(i):
    a = answer_json(PROMPTS["int8"][i])
    assert a["protocol"] == "diagnose"
    assert a["alerts"][0]["code"] == "INT8_MIXED"
    assert a["alerts"][0]["fix"] == "BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=0.0)"
    assert a["mood"] in ("orange", "red")
    assert "llm_int8_threshold=0.0" in a["recommendations"][0]["code"]
    ev = table(a, ("Evidence", "依据")[i])
    # one evidence row per configuration (GPU, model, batch, lengths) measured in INT8 mixed and in
    # one of its fixes (pure INT8, FP16, BF16): the pairs of measurements.select
    rows = [r for r in store.load_rows() if r.task == "inference" and r.kind == "measured"
            and r.energy_j_per_1k_tok is not None and r.framework == "hf-eager"]

    def key(r):
        return (r.gpu, r.model_id, r.batch_size, r.prompt_tokens, r.gen_tokens)

    pairs = {key(r) for r in rows if r.precision == "int8_mixed"} & {
        key(r) for r in rows if r.precision in ("int8_pure", "fp16", "bf16")}
    assert len(ev["rows"]) == len(pairs) >= 9 and all(r[-1].startswith("+") for r in ev["rows"])
    assert a["extra"]["matched"][0] == "INT8_MIXED"


@pytest.mark.parametrize("i", LANGS)
def test_fp8_on_blackwell_raises_the_red_alert_from_the_5090_rows(i):
    a = answer_json(PROMPTS["fp8"][i])
    assert a["alerts"][0]["code"] == "FP8_EAGER" and a["alerts"][0]["mood"] == "red"
    assert a["mood"] == "red"
    t = a["tables"][0]
    deltas = [r[t["columns"].index(msg(("en", "zh")[i], "compare.col_delta"))] for r in t["rows"]]
    assert deltas == ["+158%", "+259%", "+376%", "+701%"]
    assert {c["ref"] for c in a["citations"]} >= {"seed003-rtx5090-qwen2.5-7b-fp8-bs1", "seed003-rtx5090-qwen2.5-0.5b-fp8-bs1"}
    assert "torch.compile" in a["alerts"][0]["fix"]


@pytest.mark.parametrize("i", LANGS)
def test_why_four_bit_is_sometimes_worse(i):
    a = answer_json(PROMPTS["nf4_why"][i])
    assert a["protocol"] == "compare" and a["extra"]["focus"] == "nf4"
    t = a["tables"][0]
    deltas = {(r[0], r[1], r[3]): r[6] for r in t["rows"]}
    assert deltas[("RTX 5090", "Qwen/Qwen2.5-0.5B", 1)] == "+55.1%"
    assert deltas[("RTX 5090", "Qwen/Qwen2-1.5B", 1)] == "+29.5%"
    # board energy, 4,691.4 (the memo's row; seed 003's superseded 4,233) vs 6,260
    assert deltas[("RTX 4090 D", "mistralai/Mistral-7B-Instruct-v0.2", 1)] == "-25.1%"
    assert 2 < a["extra"]["crossover_params_b"] < 8
    rec = a["recommendations"][0]
    assert ("dequantization", "反量化")[i] in rec["title"] and ("expands them to FP16", "还原成 FP16")[i] in rec["detail"]
    assert a["charts"]


@pytest.mark.parametrize("i", LANGS)
def test_hundred_wan_zi_through_yi_6b(i):
    a = answer_json(PROMPTS["wan_zi"][i])
    assert a["protocol"] == "estimate"
    cpt = catalog.factor("chinese_chars_per_token")
    tokens = 1_000_000 / cpt
    assert a["extra"]["tokens"] == pytest.approx(tokens) and a["extra"]["period"] == "job"
    chars, toks = (("1,000,000 Chinese characters", "500,000 tokens"), ("1,000,000 个中文字符", "500,000 个 token"))[i]
    assert any(chars in c and toks in c for c in a["conversions"])
    cur = a["costs"][0]
    assert cur["kwh"] == pytest.approx(5206 * tokens / 1000 / 3.6e6)  # Yi-1.5-6B FP16 on the default 4090D (gross)
    assert cur["basis"].endswith(("per job", "每次任务")[i])


@pytest.mark.parametrize("i", LANGS)
def test_voice_matches_the_language(i):
    a = answer_json(PROMPTS["int8"][i])
    assert a["voice"]
    if i == 1:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in a["voice"][0])
    else:
        assert a["voice"][0].isascii()


def test_parameter_guide_example_1_defaults_and_recommendations():
    a = answer_query(from_fields("optimize", model_id="Qwen/Qwen2-7B"))
    assert a.protocol == "optimize"
    assert any(d.startswith("gpu: rtx4090d") for d in a.defaults_applied)
    # Qwen2-7B is measured now (the seed author's RTX 5090 rows), so no "no measurements yet"
    # warning; a model with no rows still gets one.
    assert not any("no measurements yet" in w for w in a.warnings)
    unmeasured = answer_query(from_fields("optimize", model_id="Qwen/Qwen2.5-32B"))
    assert any("no measurements yet" in w for w in unmeasured.warnings)
    titles = [r.title for r in a.recommendations]
    assert any("batch size" in t for t in titles) and "Tell me your GPU" in titles


def test_parameter_guide_example_2_uses_the_measured_bs32_row():
    q = from_fields("optimize", model_id="mistralai/Mistral-7B-Instruct-v0.2", hardware_platform="a800",
                    quantization="int8_pure", batch_size=32, sequence_length=1024, generation_length=512)
    a = answer_query(q)
    assert a.errors == [] and a.warnings == []
    assert a.extra["current"]["j_per_1k_tok"] == 295 and a.extra["current"]["tier"] == "measured"
    assert any("independent of length" in c for c in a.caveats)


def test_parameter_guide_example_3_errors_exit_2(capsys):
    rc = main(["optimize", "--model", "", "--gpu", "gtx1080", "--precision", "int4", "--batch-size", "8192",
               "--prompt-tokens", "-1"])
    err = capsys.readouterr().err
    assert rc == 2
    for needle in ("model is required", "gtx1080", "Did you mean 'nf4'", "exceeds the maximum", "prompt_tokens must be >= 1"):
        assert needle in err


def test_parameter_guide_example_4_nf4_small_and_bs1_alerts():
    # The guide's example runs on an A800; since the seed author's A800 NF4/FP16 pairs of 2026-02-26
    # (7-15B, NF4 at or below FP16) entered the data, the A800 estimate for a 1.5B model extrapolates
    # an NF4 saving, so the example is checked on the RTX 4090 D, whose small-model pairs are measured.
    a = answer_query(from_fields("optimize", model_id="Qwen/Qwen2-1.5B", hardware_platform="rtx4090d",
                                 quantization="nf4", batch_size=1))
    codes = [al.code for al in a.alerts]
    assert {"NF4_SMALL", "BS1_PRODUCTION"} <= set(codes)
    nf4 = next(al for al in a.alerts if al.code == "NF4_SMALL")
    assert nf4.impact_pct > 0 and nf4.mood == mood_for_waste(nf4.impact_pct)
    assert a.extra["best"]["precision"] == "fp16" and a.extra["best"]["batch_size"] > 1
    assert a.mood == mood_for_waste(a.waste_pct) and a.waste_pct > 100


def test_diagnose_compares_reported_throughput_with_the_data():
    a, _ = ask("Mistral-7B with load_in_8bit on my RTX 4090D only gets 8 tok/s, why so slow?")
    assert a.protocol == "diagnose" and a.alerts[0].code == "INT8_MIXED"
    rep = next(t for t in a.tables if t.title.startswith("Reported vs expected"))
    assert rep.rows[0][:3] == ["throughput tok/s", "8.0", "7.9"]
    matched = next(t for t in a.tables if t.title == "Matched traps")
    assert matched.rows[0][1] == "high"
    assert any(r.title == "Verify with a measurement" for r in a.recommendations)
    assert a.costs and a.costs[1].usd < a.costs[0].usd


def test_diagnose_without_a_known_trap_says_so():
    a, _ = ask("is FP16 Qwen2.5-7B on an RTX 5090 for an interactive chat a problem?")
    assert a.protocol == "diagnose" and a.alerts == [] and a.mood == "green"


def test_a_reported_throughput_far_below_the_configuration_is_said_with_what_to_check():
    """12 tok/s where the configuration gives about 29: batching is still the lever for energy, but
    the gap itself is beyond what the configuration explains, and the answer says so and how to look."""
    a, _ = ask("I get 12 tok/s with Qwen2.5-7B NF4 on an RTX 3090, is that normal?")
    exp = next(t for t in a.tables if t.title.startswith("Reported vs expected")).rows[0]
    assert a.protocol == "diagnose" and exp[1] == "12.0"
    assert f"should give about {exp[2]} tok/s" in a.headline and "more than the configuration explains" in a.headline
    check = next(r for r in a.recommendations if r.title.startswith("Find what slows the run"))
    assert "clocks_throttle_reasons" in (check.code or "") and "hf_device_map" in check.detail
    # no trap, a large shortfall: neither green nor silent
    b, _ = ask("Qwen2.5-7B NF4 at batch size 8 on my RTX 3090 only gets 20 tok/s, is that normal?")
    assert b.alerts == [] and "should give about" in b.headline and b.mood != "green"
    # close to the expected figure: no shortfall line
    c, _ = ask(f"I get {float(exp[2]):.0f} tok/s with Qwen2.5-7B NF4 on an RTX 3090, is that normal?")
    assert "should give about" not in c.headline


def test_nightly_build_is_flagged_gray():
    a, _ = ask("my Qwen2.5-7B FP16 on RTX 5090 is slow with torch 2.12.0.dev20260315 nightly")
    assert "NIGHTLY_BUILD" in [al.code for al in a.alerts]


def test_compare_gpus_and_batch_sizes():
    a, _ = ask("compare RTX 4090D vs A800 for Mistral-7B in FP16")
    assert a.protocol == "compare" and a.query["compare_axis"] == "gpu"
    rows = {r[0]: r for r in a.tables[0].rows}
    assert rows["A800 80GB"][2] == 4334 and rows["RTX 4090 D"][2] == "6,260 ± 143"
    b, _ = ask("compare batch sizes for Mistral-7B pure int8 on A800")
    assert b.query["compare_axis"] == "batch_size"
    js = {r[0]: r[2] for r in b.tables[0].rows}
    assert js["BS=1"] == 5781 and js["BS=64"] == 248


def test_follow_up_changes_only_the_gpu():
    a1, ctx = ask("greenest config for Mistral-7B on an RTX 4090D?")
    a2, ctx2 = ask("and on an A800?", ctx)
    assert a2.protocol == "optimize" and a2.query["gpu"] == "a800" and a2.query["model"] == "mistral-7b-v0.2"
    assert ctx2.gpu == "a800"


def test_bad_text_is_an_error_answer_not_an_exception():
    a, ctx = ask("please compare int4 on a gtx 1080")
    assert a.protocol == "error" and a.mood == "gray" and len(a.errors) == 2
    assert a.voice and ctx.model is None


def test_every_monthly_figure_comes_from_derive():
    a, _ = ask("Qwen2.5-7B on RTX 5090, NF4, batch size 1, 300k requests per month in France, cost?")
    fr = catalog.resolve_region("france")
    gen = int(catalog.factor("default_gen_tokens"))
    line = derive.cost_line("x", 4718, 300_000 * gen, fr.price_usd_kwh, fr.grid_gco2_kwh, derive.pue_for(fr))
    assert a.costs[0].kwh == pytest.approx(line.kwh) and a.costs[0].usd == pytest.approx(line.usd)


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_ask_json_and_markdown(capsys):
    assert main(["ask", "Compare all 5 precisions for Qwen2.5-7B on RTX 5090.", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "compare"
    assert main(["ask", "how much will Mistral-7B on A800 cost for 1M requests a month?", "--format", "markdown",
                 "--lang", "zh"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("## 估算") and "节能龙虾" in md


def test_cli_structured_forms(capsys):
    assert main(["estimate", "--model", "mistral-7b", "--gpu", "a800", "--requests-per-month", "1000000",
                 "--format", "json"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert a["costs"][0]["kwh"] == pytest.approx(4334 * 1e6 * int(catalog.factor("default_gen_tokens")) / 1000 / 3.6e6)
    assert main(["compare", "--model", "mistral-7b", "--gpus", "rtx4090d,a800", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["query"]["compare_axis"] == "gpu"
    # a warning does not change the exit code
    assert main(["optimize", "--model", "mistral-7b", "--gpu", "a800", "--batch-size", "5", "--format", "json"]) == 0
    assert "not a power of 2" in capsys.readouterr().err


def test_cli_ask_error_exits_2(capsys):
    assert main(["ask", "tell me about int4 on a gtx 1080"]) == 2
    assert "INT4 is not measured" in capsys.readouterr().err


def test_cold_process_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "advisor.cli", "ask", "Compare all 5 precisions for Qwen2.5-7B on RTX 5090.",
                        "--format", "markdown"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "42,711" in r.stdout


def test_seed_example_conversation_int8_on_4090d_uses_the_measured_rows():
    a, _ = ask("I'm running Mistral-7B with load_in_8bit=True on an RTX 4090D and my energy usage seems really high.")
    assert a.protocol == "diagnose" and a.alerts[0].code == "INT8_MIXED"
    # as board energy FP16 is the best alternative on the 4090D too (the seed's figures are net of idle)
    assert a.alerts[0].impact_pct == pytest.approx((9555 / 6260 - 1) * 100)
    row = next(t for t in a.tables if t.title == "Matched traps").rows[0]
    assert row[3:5] == ["9,555", "6,260"]
    assert {"seed003-rtx4090d-mistral-7b-int8_mixed-bs1", "seed003-rtx4090d-mistral-7b-fp16-bs1"} <= {
        c.ref for c in a.citations}
    assert a.costs[0].kwh / a.costs[1].kwh == pytest.approx(9555 / 6260)


def test_a_precision_never_measured_on_the_gpu_is_only_suggested_for_measurement():
    a, _ = ask("greenest config for Mistral-7B on an A800?")
    assert a.extra["best"]["precision"] in ("fp16", "int8_pure")  # both measured on the A800
    worth = [r for r in a.recommendations if r.title.startswith("Worth measuring")]
    if worth:
        assert worth[0].code.startswith("ecolobster bench") and "never measured" in worth[0].detail


def test_a_model_that_fits_nowhere_says_so_with_the_memory_needed():
    a, _ = ask("greenest config for Llama-3.1-70B on an RTX 4090D")
    assert a.protocol == "optimize" and a.mood == "gray" and "does not fit" in a.headline
    need = {r[0]: r[1] for r in a.tables[0].rows}
    assert need["NF4 (4-bit)"] > 24 and need["FP16"] > need["NF4 (4-bit)"]


def test_mixture_of_experts_uses_active_parameters_for_energy():
    a, _ = ask("Mixtral-8x7B on A100 in NF4, cost of 1M requests a month?")
    arch = catalog.resolve_model("mixtral-8x7b")
    assert a.protocol == "estimate"
    assert any("mixture of experts" in c for c in a.caveats)
    assert a.provenance[0].subject.startswith("a100_80gb / mixtral-8x7b / nf4")
    dense, _ = ask("Qwen2.5-14B on A100 in NF4, cost of 1M requests a month?")  # ~ the active size, dense
    assert arch.active_params_b < 14.77 < arch.params_b
    assert a.costs[0].kwh < 2 * dense.costs[0].kwh


def test_int8_trap_on_a800_is_measured_against_fp16_the_best_alternative():
    """Pure INT8 still spends more than FP16 on the A800 and, as board energy, on the RTX 4090D, so
    the waste (and mood) of default INT8 is against FP16, and the first fix says so."""
    a = json.loads(to_json(answer_query(from_fields("diagnose", model="mistral-7b", gpu="a800",
                                                      precision="int8_mixed", batch_size=1,
                                                      use_case="interactive_chat"))))
    assert a["waste_pct"] == pytest.approx(derive.waste_pct(9608, 4334))
    assert a["mood"] == mood_for_waste(a["waste_pct"]) == "red"
    assert a["recommendations"][0]["title"].startswith("1. Load in FP16")
    b = json.loads(to_json(answer_query(from_fields("diagnose", model="mistral-7b", gpu="rtx4090d",
                                                      precision="int8_mixed", batch_size=1,
                                                      use_case="interactive_chat"))))
    # counted as board energy, FP16 beats pure INT8 on the 4090D as well (9,555 vs 6,260 vs 6,452)
    assert b["waste_pct"] == pytest.approx(derive.waste_pct(9555, 6260))
    assert b["recommendations"][0]["title"].startswith("1. Load in FP16")


def test_compare_ranks_bf16_where_it_was_measured_for_the_model():
    a = answer_json("compare precisions for qwen2.5-7b on h200")
    t = a["tables"][0]
    cols = t["columns"]
    by = {r[0].split(" (")[0]: r for r in t["rows"]}
    assert set(by) == {"FP16", "BF16", "NF4", "INT8 pure", "INT8 mixed", "FP8"}
    want = {r.precision: r.energy_j_per_1k_tok for r in store.load_rows(include_local=False)
            if r.id.startswith("h200-syn-qwen2.5-7b-") and r.batch_size == 1}
    for name, prec in (("BF16", "bf16"), ("FP16", "fp16")):  # cells read "4,375 ± 675" where rows have spread
        assert by[name][cols.index("J/1k tok")].startswith(f"{want[prec]:,.0f} ± ")
    assert all(p["tier"] == "measured" for p in a["provenance"])
    # No BF16 row of the model on the GPU: BF16 would be FP16 relabelled (A800) or extrapolated
    # across sizes (H100 7B; its BF16 rows are 0.5B and 1.5B), so it is not ranked there.
    for q in ("compare precisions for mistral-7b on a800", "compare precisions for qwen2.5-7b on h100"):
        assert "BF16" not in {r[0].split(" (")[0] for r in answer_json(q)["tables"][0]["rows"]}, q
    assert "BF16" in {r[0].split(" (")[0] for r in answer_json("compare precisions for qwen2.5-1.5b on h100")["tables"][0]["rows"]}


@pytest.mark.parametrize(("question", "who"), [
    ("How much will Mistral-7B on A800 cost me for 1 million requests per month?", ("default baseline", "默认基线")),
    ("estimate Mistral-7B on A800 in fp16 at batch size 4, 1M requests per month", ("current", "当前")),
])
@pytest.mark.parametrize("i", LANGS)
def test_estimate_calls_only_a_stated_configuration_current(question, who, i):
    # an unstated precision and batch size is the default baseline, not "your current" setup (issue 22)
    a, _ = ask(question, lang=("en", "zh")[i])
    table = a.tables[0]
    assert table.columns[1] == who[i] and table.notes[0].startswith(who[i])


def test_a_figure_comparing_two_estimates_is_as_direct_as_the_weaker():
    from advisor import estimate as E

    assert E.weaker_tier("measured", "extrapolated") == "extrapolated"
    assert E.weaker_tier("interpolated", "measured") == "interpolated"
    assert E.weaker_tier("measured", "measured") == "measured"
    # Qwen2.5-7B LLM.int8() on the RTX 4090 D is measured; its pure-INT8 fix is not: the alert's
    # "x vs y with the fix" is an estimate, not a measurement
    a = answer_json("I run Qwen2.5-7B in INT8 on an RTX 4090 D at batch 1, is that wasteful?")
    alert = next(x for x in a["alerts"] if x["code"] == "INT8_MIXED")
    assert "with the fix" in alert["message"]
    tail = alert["message"].split("with the fix", 1)[1]
    assert "measured)" not in tail and ("extrapolated)" in tail or "interpolated)" in tail)


def test_a_tiny_reported_figure_is_shown_as_reported_not_as_zero():
    from advisor.protocols.common import fnum

    assert fnum(1e-9, 1) == "1e-09" and fnum(0.04, 1) == "0.04"
    assert fnum(12.34, 1) == "12.3" and fnum(0.0, 1) == "0.0" and fnum(1234.5) == "1,234"
    a = ask("my llama-3.1-8b on an a100 runs at 0.000000001 tok/s at batch size 1, why so slow?")
    a = a[0] if isinstance(a, tuple) else a
    assert "You report 1e-09 tok/s" in a.headline and "0.0 tok/s" not in a.headline
