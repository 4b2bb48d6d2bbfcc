"""Capacity and the full monthly cost: throughput needed, GPU-hours, GPUs (replicas x GPUs per
replica), rental + electricity; latency targets exclude configurations that miss them."""

from __future__ import annotations

import pytest

from advisor.api import answer_query
from advisor.protocols import common as c
from advisor.query import from_fields
from measurements import catalog


def _table(ans, title):
    return next(t for t in ans.tables if t.title.startswith(title))


def test_a_million_mistral_requests_on_one_a800_at_batch_1_need_more_than_a_month():
    q = from_fields("estimate", model_id="mistralai/Mistral-7B-Instruct-v0.2", hardware_platform="a800",
                    requests_per_month=1_000_000, batch_size=1)
    ans = answer_query(q)
    cur = ans.extra["capacity"][0]
    # 1e6 requests x 256 tokens / 36.2 tok/s (measured) / 3,600 s/h
    assert cur["gpu_hours"] == pytest.approx(1e6 * 256 / 36.2 / 3600, rel=0.01)
    assert cur["gpu_hours"] > c.hours_per_month() and cur["serves"] is False and cur["gpus"] == 3
    assert "more than the 730 in a month" in ans.headline and "1,965 GPU-hours" in ans.headline
    t = _table(ans, "Capacity and full cost")
    labels = [r[0] for r in t.rows]
    for needed in ("GPU-hours per month", "GPUs needed (replicas x GPUs each)", "GPU rental ($/month)",
                   "electricity x PUE ($/month)", "total ($/month)"):
        assert needed in labels
    assert any("cannot serve this workload alone" in x for x in ans.caveats)


@pytest.mark.parametrize("protocol", ["estimate", "optimize"])
def test_rental_plus_electricity_is_the_total(protocol):
    q = from_fields(protocol, model_id="Qwen/Qwen2.5-7B", hardware_platform="h100_sxm", requests_per_month=5_000_000)
    ans = answer_query(q)
    for cap in ans.extra["capacity"]:
        assert cap["rental_usd"] is not None and cap["rental_usd"] > 0
        assert cap["total_usd"] == pytest.approx(cap["rental_usd"] + cap["electricity_usd"])
        price = c.rental_price("h100_sxm")[0]
        assert cap["rental_usd"] == pytest.approx(cap["gpu_hours"] * price)
        assert cap["gpus"] >= 1 and cap["replicas"] >= 1


def test_rental_price_is_the_median_listing():
    vals = sorted(p.usd_per_hour for p in catalog.gpu_prices() if p.gpu == "h100_sxm")
    med, basis, cites = c.rental_price("h100_sxm")
    n = len(vals)
    assert med == (vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2)
    assert "median" in basis and cites
    assert c.rental_price("a800") is None


def test_a_latency_target_excludes_the_configurations_that_miss_it():
    base = dict(model_id="Qwen/Qwen2.5-7B", hardware_platform="h200", requests_per_month=1_000_000)
    free = answer_query(from_fields("optimize", **base))
    tight = answer_query(from_fields("optimize", **base, itl_target_ms=40))
    assert tight.extra["best"]["batch_size"] <= free.extra["best"]["batch_size"]
    assert any("latency target" in x for x in tight.caveats)
    t = _table(tight, "Ranked configurations")
    for row in t.rows:
        bs, tput = row[2], row[4]
        if str(row[0]) != "-":
            assert 1000 * bs / tput <= 40 + 1e-6
