"""One evidence layer: ask, diagnose, compare and the auditor quote the same crossover and the
same penalty for the same configuration, on every catalog model and GPU."""

from __future__ import annotations

import pytest

from advisor.api import answer_query
from advisor.audit.evidence import Evidence
from advisor.protocols import common as c
from advisor.query import from_fields
from measurements import catalog, select, store

ROWS = store.load_rows()
GPUS = [g.key for g in catalog.gpus()]
MODELS = catalog.models()


def _alert(protocol: str, model, gpu: str, prec: str, code: str):
    q = from_fields(protocol, model_id=model.hub_id, hardware_platform=gpu, quantization=prec)
    return next((a for a in c.detect_traps(q) if a.code == code), None), q


@pytest.mark.parametrize("gpu", GPUS)
def test_int8_penalty_is_one_figure_everywhere(gpu):
    ev = Evidence(gpu=gpu, rows=ROWS)
    for m in MODELS:
        alert, q = _alert("optimize", m, gpu, "int8_mixed", "INT8_MIXED")
        audit = ev.precision("int8_mixed", select.INT8_MIXED_FIXES, params_b=q.model_params_b)
        figure = select.int8_mixed_penalty(ROWS, gpu, q.model_params_b)
        assert alert is not None and figure is not None and audit.chosen is not None
        assert alert.impact_pct == pytest.approx(figure.waste_pct) == pytest.approx(audit.chosen.waste_pct), (gpu, m.key)


@pytest.mark.parametrize("gpu", GPUS)
def test_nf4_crossover_is_one_figure_everywhere(gpu):
    ev = Evidence(gpu=gpu, rows=ROWS)
    bound, _ = ev.nf4_penalty_bound()
    cross = select.nf4_crossover(ROWS, gpu)
    assert bound == pytest.approx(select.nf4_bound(cross))
    # the crossover always lies inside the sizes measured (no "4388B")
    sizes = [r.params_b for r in ROWS if r.precision == "nf4" and r.kind == "measured"]
    assert min(sizes) <= bound <= max(sizes)
    for m in MODELS:
        alert, q = _alert("optimize", m, gpu, "nf4", "NF4_SMALL")
        assert (alert is not None) == (q.model_params_b <= bound), (gpu, m.key)
        if alert is not None:
            audit = ev.precision("nf4", select.SIXTEEN_BIT, params_b=q.model_params_b, max_params=bound)
            assert alert.impact_pct == pytest.approx(audit.chosen.waste_pct)
            assert f"{cross.params_b:.1f}B" in alert.message


def test_compare_diagnose_and_ask_quote_the_same_crossover():
    gpu = "h100_sxm"
    cross = select.nf4_crossover(ROWS, gpu)
    comp = answer_query(from_fields("compare", model_id="01-ai/Yi-1.5-6B", hardware_platform=gpu, quantization="nf4",
                                    compare_axis="model_size"))
    assert comp.extra["crossover_params_b"] == pytest.approx(cross.params_b)
    assert cross.params_b < 10  # "NF4 pays off above about 4388.3B" is gone
    diag = answer_query(from_fields("diagnose", model_id="Qwen/Qwen2.5-1.5B", hardware_platform=gpu, quantization="nf4"))
    nf4 = next(a for a in diag.alerts if a.code == "NF4_SMALL")
    assert f"{cross.params_b:.1f}B" in nf4.message
    ev = Evidence(gpu=gpu, rows=ROWS).precision("nf4", select.SIXTEEN_BIT, params_b=1.544,
                                                max_params=select.nf4_bound(cross))
    assert nf4.impact_pct == pytest.approx(ev.chosen.waste_pct)


def test_pairs_vary_one_field_only():
    for p in select.pairs(ROWS, "nf4", select.SIXTEEN_BIT):
        a, b = p.trap, p.alt
        assert (a.gpu, a.model_id, a.batch_size, a.prompt_tokens, a.gen_tokens, a.gpu_count) == \
            (b.gpu, b.model_id, b.batch_size, b.prompt_tokens, b.gen_tokens, b.gpu_count)
        assert a.precision == "nf4" and b.precision in select.SIXTEEN_BIT
    assert all(p.trap.kind != "simulated" and p.alt.kind != "simulated" for p in select.pairs(ROWS, "nf4", ("fp16",)))


def test_select_filters():
    rows = select.select(ROWS, gpu="h200", precision="nf4", task="inference")
    assert rows and all(r.gpu == "h200" and r.precision == "nf4" for r in rows)
    assert select.select(ROWS, framework="vllm") == [r for r in ROWS if select.framework_of(r) == "vllm"]


def test_every_crossover_can_be_said_in_words():
    for prec in ("nf4", "fp8", "int8_mixed", "int8_pure", "bf16"):
        for gpu in [None, *GPUS]:
            cr = select.crossover(ROWS, prec, select.SIXTEEN_BIT if prec != "bf16" else ("fp16",), gpu=gpu)
            if cr is not None:
                assert "B" in cr.describe()
