"""`ecolobster plan` and the PLAN protocol, asserted on the JSON Answer: seed 004's OLMo-7B scenario,
a run timed straight from a measured row, a model that fits nowhere, budget limits, free text."""

from __future__ import annotations

import json
import statistics

import pytest

from advisor.cli import main
from advisor.finetune_time import calibrations, estimate_step
from advisor.protocols.plan import PlanRequest, plan, plan_from_text, request_from_text
from measurements import catalog
from measurements.store import load_rows


def plan_json(capsys, *args: str) -> dict:
    assert main(["plan", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_seed004_scenario_olmo7b(capsys):
    """Seed 004: OLMo-7B, ~140 examples of ~1,500 tokens, sequence 2,048, 2 epochs, LoRA vs QLoRA."""
    a = plan_json(capsys, "--model", "olmo-7b", "--examples", "140", "--avg-tokens", "1500", "--seq-len", "2048",
                  "--epochs", "2")
    assert a["protocol"] == "plan" and not a["errors"]
    assert a["query"]["trained_tokens"] == 140 * 1500 * 2
    fit = a["extra"]["fit_matrix"]
    dev = a["extra"]["device_gb"]
    # The document says LoRA runs out of memory on 24 GB cards; with checkpointing it fits.
    assert fit["rtx4090"]["lora"] == "fits" and dev["lora"]["rtx4090"] < 24
    assert fit["rtx4090"]["qlora"] == "fits" and 7 < dev["qlora"]["rtx4090"] < 12
    assert fit["rtx4090"]["full"] == "OOM" and fit["t4"]["lora"] == "OOM" and fit["t4"]["qlora"] == "fits"
    rec = a["extra"]["recommended"]
    assert rec["strategy"] in ("lora", "qlora") and rec["kwh"] > 0 and rec["usd"] > 0
    assert rec["tier"] in ("measured", "interpolated")
    # every priced run is consistent: cloud cost = hours x the cheapest catalog price for that GPU
    for r in a["extra"]["runs"]:
        prices = [p.usd_per_hour for p in catalog.gpu_prices() if p.gpu == r["gpu"]]
        if prices:
            assert r["rental_usd"] == pytest.approx(r["hours"] * min(prices))
    # the ready configuration and where we differ from the document
    codes = {rc["language"]: rc["code"] for rc in a["recommendations"] if rc.get("code")}
    assert "get_peft_model" in codes["python"] and "'q_proj'" in codes["python"]
    assert "target_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]" in codes["yaml"]
    seed = [c for c in a["caveats"] if "Seed 004" in c]
    assert len(seed) >= 4 and any("32" in c and "50 layers" in c for c in seed)
    assert {al["code"] for al in a["alerts"]} >= {"FT_QLORA_SLOWER"}
    titles = [t["title"] for t in a["tables"]]
    assert titles[:3] == ["VRAM breakdown (GB), OLMo-7B", "GPU fit matrix", "Per run where it fits"]


def test_seed004_scenario_on_a_24gb_card_from_text():
    a = plan_from_text("LoRA or QLoRA for OLMo-7B on a 24GB GPU, 140 examples of ~1,500 tokens, seq 2048, "
                       "2 epochs, budget $20").model_dump()
    assert a["protocol"] == "plan" and not a["errors"]
    assert a["query"]["vram_gb"] == 24 and a["query"]["budget_usd"] == 20
    fit_table = next(t for t in a["tables"] if t["title"] == "GPU fit matrix")
    yours = [row[0] for row in fit_table["rows"] if "(yours)" in row[0]]
    assert len(yours) >= 4  # every 24 GB catalog GPU
    rec = a["extra"]["recommended"]
    assert catalog.resolve_gpu(rec["gpu"]).vram_gb == 24 and rec["usd"] <= 20


def test_a_run_timed_straight_from_a_measured_row(capsys):
    a = plan_json(capsys, "--model", "qwen2.5-7b", "--method", "qlora", "--seq-len", "512", "--gpu", "h100_sxm",
                  "--grad-checkpointing", "on", "--double-quant", "off", "--examples", "1000", "--avg-tokens", "512")
    (run,) = a["extra"]["runs"]
    assert run["tier"] == "measured"
    row = next(r for r in load_rows() if r.id == run["row_ids"][0])
    assert (row.method, row.precision, row.seq_len, row.lora_rank, row.grad_checkpointing) == ("qlora", "nf4", 512, 16,
                                                                                                True)
    tokens = 1000 * 512
    assert run["hours"] == pytest.approx(tokens / row.throughput_tok_s / 3600)
    # your own GPU: the cost is its electricity (region us, PUE 1 for a local machine)
    region = catalog.resolve_region("us")
    kwh = row.energy_j_per_step / (row.batch_size * row.seq_len) * tokens / 3.6e6
    assert run["kwh"] == pytest.approx(kwh)
    assert run["usd"] == pytest.approx(kwh * region.price_usd_kwh)
    # the same configuration with LoRA was measured too, and uses less energy: the answer says so
    lora = next(r for r in load_rows() if r.id == row.id.replace("qlora-nf4", "lora"))
    waste = row.energy_j_per_step / lora.energy_j_per_step * 100 - 100
    assert waste > 30
    alert = next(al for al in a["alerts"] if al["code"] == "FT_GREENER_METHOD")
    assert alert["impact_pct"] == pytest.approx(waste) and a["waste_pct"] == pytest.approx(waste)
    assert a["mood"] == ("orange" if waste < 100 else "red")


def test_a_model_that_fits_nowhere(capsys):
    a = plan_json(capsys, "--model", "llama-3.1-70b", "--method", "full", "--tokens", "1000000")
    assert a["extra"]["recommended"] is None
    assert all(v == {"full": "OOM"} for v in a["extra"]["fit_matrix"].values())
    alert = next(al for al in a["alerts"] if al["code"] == "FT_NO_FIT")
    assert "QLoRA with gradient checkpointing would need" in alert["fix"]
    assert a["errors"] == ["no strategy fits the available GPUs"]
    need = float(a["headline"].split("needs at least ")[1].split(" GB")[0])
    assert need > 141  # more than the largest catalog GPU (H200)


def test_budget_limits_the_plan(capsys):
    args = ["--model", "qwen2.5-7b", "--tokens", "50000000", "--epochs", "3"]
    free = plan_json(capsys, *args)["extra"]
    cheapest = min(r["usd"] for r in free["runs"] if r["usd"] is not None)
    # a budget below every priced run: nothing to recommend, the cheapest is named
    a = plan_json(capsys, *args, "--budget-usd", f"{cheapest * 0.5:.2f}")
    assert a["extra"]["recommended"] is None and a["mood"] == "red"
    assert f"${cheapest:,.2f}" in a["headline"]
    # a budget between the cheapest and the rest: the plan stays within it and says what it left out
    budget = cheapest * 1.05
    b = plan_json(capsys, *args, "--budget-usd", f"{budget:.2f}")
    rec = b["extra"]["recommended"]
    assert rec is not None and rec["usd"] <= budget
    over = next(al for al in b["alerts"] if al["code"] == "FT_BUDGET")
    n_over = sum(1 for r in free["runs"] if r["usd"] is not None and r["usd"] > round(budget, 2))
    assert over["message"].startswith(f"{n_over} of ")


def test_protocols_dispatcher_runs_plan():
    from advisor.protocols import run
    from advisor.query import parse

    q = parse("LoRA or QLoRA for Mistral-7B on an RTX 4090, budget $50", protocol="plan")
    a = run(q)
    assert a.protocol == "plan" and a.query["model_key"] == "mistral-7b-v0.2"
    assert a.extra["fit_matrix"]["rtx4090"]["qlora"] == "fits"


def test_free_text_fields():
    req, problems = request_from_text("fine-tune Qwen2.5-7B with QLoRA on an RTX 4090 and an A100 80GB, "
                                      "140 examples of 1,500 tokens, 2 epochs, seq 2048, r=64, batch size 2")
    assert not problems
    assert (req.model, req.method, req.rank, req.examples, req.avg_tokens, req.epochs, req.seq_len, req.batch_size) == \
        ("qwen2.5-7b", "qlora", 64, 140, 1500, 2, 2048, 2)
    assert req.gpus == ["rtx4090", "a100_80gb"]
    req, _ = request_from_text("LoRA for Mistral-7B on 50M tokens, 3 epochs, budget $20 with gradient checkpointing")
    assert (req.tokens, req.budget_usd, req.grad_checkpointing, req.method) == (50e6, 20, True, "lora")
    # the same question in Chinese: "fine-tune OLMo-7B on a 24GB card, LoRA or QLoRA? budget $20"
    req, problems = request_from_text("在24GB显卡上微调OLMo-7B，用LoRA还是QLoRA？预算20美元")
    assert not problems
    assert (req.model, req.vram_gb, req.budget_usd, req.method) == ("olmo-7b", 24, 20, "compare")


def test_bad_input_is_named(capsys):
    a = plan(PlanRequest(model="gpt-17"))
    assert a.errors and "Unknown model 'gpt-17'" in a.errors[0] and "Accepted:" in a.errors[0]
    assert main(["plan", "--model", "olmo-7b", "--rank", "0"]) == 2
    assert "--rank: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert main(["plan", "--model", "olmo-7b", "--seq-len", "9000"]) == 2
    assert "longer than OLMo-7B's context of 2048" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plan", "--model", "olmo-7b", "--grad-checkpointing", "maybe"])
    assert "accepted on, off or auto" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown optimizer"):
        PlanRequest(model="olmo-7b", optimizer="lion")


def test_step_time_transfer_between_measured_rows():
    """Leave-one-out on the measured rows: each row's step time predicted from the others."""
    cal = calibrations()
    assert len(cal) >= 20
    errors = []
    for c in cal:
        others = [o for o in cal if o.row_id != c.row_id and not (o.arch == c.arch and o.setup == c.setup)]
        est = estimate_step(catalog.resolve_model(c.arch), c.setup, catalog.resolve_gpu(c.gpu), others)
        assert est is not None and est.tier != "measured"
        errors.append(abs(est.step_time_s / c.step_time_s - 1))
    assert statistics.median(errors) < 0.15
    assert max(errors) < 0.5


def test_finetune_heldout_accuracy_stays_within_bounds():
    """benchmarks/finetune_accuracy.py's held-out figures, guarded (measured with the 2026-12-02 20-step H200
    rows, the lm_head in the activation bytes and the anchor row chosen by micro-batch and sequence length
    apart: configuration 6.8/8.4%, token count 9.9/9.7%, model 12.3/13.3%; micro-batch 2-4 from micro-batch 1,
    9.5/7.4% on 49 rows, the issue's contract of under 10% on both; H100 from the other GPUs 10.1/8.0%;
    H200 micro-batch 2-4 from the H100 only 9.9/8.7%)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "finetune_accuracy.py"
    spec = importlib.util.spec_from_file_location("finetune_accuracy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = {r["split"]: r for r in mod.run()}
    cfg, model = res["leave-one-configuration-out"], res["leave-one-model-out"]
    tokens = res["leave-one-token-count-out"]
    assert cfg["n"] >= 80
    assert cfg["throughput_median_pct"] < 7.5 and cfg["j_per_token_median_pct"] < 9
    assert tokens["throughput_median_pct"] < 10.5 and tokens["j_per_token_median_pct"] < 10.5
    assert model["throughput_median_pct"] < 13 and model["j_per_token_median_pct"] < 14
    micro = res["micro-batch held out (2, 4)"]
    assert micro["n"] == 49 and micro["throughput_median_pct"] < 10 and micro["j_per_token_median_pct"] < 8
    h100, h200 = res["H100 from the other GPUs"], res["H200 mb 2, 4 from the H100"]
    assert h100["n"] == 45 and h100["throughput_median_pct"] < 10.5 and h100["j_per_token_median_pct"] < 8.5
    assert h200["n"] == 49 and h200["throughput_median_pct"] < 10 and h200["j_per_token_median_pct"] < 9.5


def test_training_law_keeps_the_host_floor_at_512_tokens_and_grows_with_tokens_at_2048():
    """The H200's measured step at micro-batch 4 over micro-batch 1 (512 tokens, no checkpointing) is
    0.91-1.32 (over micro-batch 2 with checkpointing 0.76-1.08): the per-step host floor; at 2,048 tokens
    micro-batch 4 over 2 is 1.19-1.91, the GPU's work.
    The shipped law (no row anchoring) gives each ratio within 0.3 (512) and 0.45 (2,048) of the measured
    (the worst: Qwen2.5-1.5B LoRA at 2,048 tokens, 1.44 against 1.83, whose micro-batch 2 step of 0.192 s is
    no longer than its 512-token steps)."""
    from advisor.finetune_time import _law, shipped_fits

    h200, fits = catalog.resolve_gpu("h200"), shipped_fits()
    rows = {(c.arch, c.method, c.setup.seq_len, c.setup.batch_size, c.setup.grad_checkpointing): c
            for c in calibrations() if c.gpu == "h200"}
    seen = 0
    for (arch_key, method, seq, bs, gc), c in rows.items():
        base_bs = 1 if seq == 512 and not gc else 2
        base = rows.get((arch_key, method, seq, base_bs, gc))
        if bs != 4 or base is None:
            continue
        arch = catalog.resolve_model(arch_key)
        law = _law(arch, c.setup, h200, fits[method])[0] / _law(arch, base.setup, h200, fits[method])[0]
        measured = c.step_time_s / base.step_time_s
        assert abs(law - measured) <= (0.3 if seq == 512 else 0.45), (arch_key, method, seq, gc, law, measured)
        if seq == 512 and not gc:
            assert law < 1.6  # four times the tokens, far less than four times the time
        seen += 1
    assert seen == 19  # the 20-step rows of 2026-12-02 stand in for the 5-step ones of the same configuration


def test_training_law_on_a_gpu_without_finetune_rows_stays_inside_physics():
    """A100, L4 and T4 have no fine-tuning rows: throughput never above the dense peak over the training
    FLOPs per token, power between idle and the limit, a step never shorter than the weights' read, and a
    larger micro-batch never a shorter step."""
    from advisor.finetune_memory import TrainSetup
    from advisor.finetune_time import flops_per_token, memory_floor_s, peak_flops

    have = {c.gpu for c in calibrations()}
    arch = catalog.resolve_model("qwen2.5-7b")
    for key in ("a100_80gb", "l4", "t4"):
        gpu = catalog.resolve_gpu(key)
        assert gpu.key not in have
        for method in ("lora", "qlora"):
            for seq, gc in ((512, False), (2048, True)):
                last = 0.0
                for bs in (1, 2, 4, 8):
                    setup = TrainSetup(method=method, lora_rank=16, seq_len=seq, batch_size=bs,
                                       grad_checkpointing=gc)
                    est = estimate_step(arch, setup, gpu)
                    assert est is not None and est.tier == "extrapolated"
                    assert est.tokens_per_s <= peak_flops(gpu, setup) / flops_per_token(arch, setup) * (1 + 1e-9)
                    assert gpu.idle_power_w - 1e-9 <= est.power_w <= gpu.tdp_w + 1e-9
                    assert est.step_time_s >= memory_floor_s(arch, setup, gpu) - 1e-12
                    assert est.step_time_s >= last
                    last = est.step_time_s


def test_shipped_training_law_is_the_fit_of_the_shipped_rows():
    """finetune_params.csv holds the law fitted on the shipped rows (python -m advisor.finetune_time)."""
    from advisor.finetune_time import TRAIN_PARAMS, fit_training, shipped_fits
    from measurements.store import load_rows

    fits = fit_training(calibrations(load_rows(include_local=False)))
    shipped = shipped_fits()
    assert set(shipped) == set(fits) == {"full", "lora", "qlora"}
    for m, f in fits.items():
        assert shipped[m].n_rows == f.n_rows and shipped[m].borrowed_from == f.borrowed_from
        for name in TRAIN_PARAMS:
            assert getattr(shipped[m], name) == pytest.approx(getattr(f, name), rel=0.05, abs=1e-6), (m, name)
        assert shipped[m].host_factor == pytest.approx(f.host_factor, rel=0.02)
    assert shipped["lora"].fit_median_pct_err < 15 and shipped["qlora"].fit_median_pct_err < 15


def test_training_law_uses_the_gpu_and_stays_inside_physics():
    """Another GPU's estimate comes from its own peak and limit: power never above the limit,
    a step never below the weights' read time at peak bandwidth."""
    from advisor.finetune_time import fit_training, memory_floor_s

    cal = calibrations()
    fits = fit_training(cal)
    assert fits["lora"].borrowed_from is None and 0 < fits["lora"].eff <= 1
    assert fits["full"].borrowed_from == "lora"  # two full rows cannot fit three unknowns
    c = next(c for c in cal if c.method == "qlora" and c.arch == "qwen2.5-7b")
    arch = catalog.resolve_model(c.arch)
    for g in catalog.gpus():
        est = estimate_step(arch, c.setup, g, cal)
        assert est is not None and est.power_w <= g.tdp_w + 1e-9
        assert est.step_time_s >= memory_floor_s(arch, c.setup, g) - 1e-12
        if g.key not in {x.gpu for x in cal}:  # a GPU with no fine-tuning rows of its own
            assert est.tier == "extrapolated" and "training performance model" in est.method
    t4, h100 = catalog.resolve_gpu("t4"), catalog.resolve_gpu("h100_sxm")
    assert estimate_step(arch, c.setup, t4, cal).step_time_s > estimate_step(arch, c.setup, h100, cal).step_time_s
