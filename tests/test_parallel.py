"""Tensor-parallel inference (`bench --tp N`) on CPU: transformers' tp_plan='auto' in gloo ranks
started by torch.distributed.run, the ranks kept in lockstep, rank 0's results into the store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.protocol import ProtocolSettings, RunMeasurement, run_protocol

TINY = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 512}
OV = [x for k, v in TINY.items() for x in ("--arch-override", f"{k}={v}")]


def _bench(capsys: Any, tmp_path: Any, *extra: str) -> tuple[int, dict[str, Any]]:
    from advisor.cli import main

    rc = main(["bench", "--model", "qwen2.5-0.5b", "--synthetic", *OV, "--precision", "fp32", "--prompt-tokens", "8",
               "--gen-tokens", "6", "--runs", "2", "--warmup", "1", "--pause", "0", "--device", "cpu", "--no-carbon",
               "--out", str(tmp_path / "tp.jsonl"), "--format", "json", *extra])
    out = capsys.readouterr().out
    return rc, json.loads(out[out.index("{"):]) if rc == 0 else {}


@pytest.mark.parametrize("tp", [1, 2])
def test_tensor_parallel_bench_on_gloo_ranks_into_the_store(tp, capsys, tmp_path, monkeypatch):
    from measurements.store import load_rows

    monkeypatch.setenv("ECOLOBSTER_SCRATCH", str(tmp_path / "scratch"))
    # Two batch sizes and a window repeated to 0.2 s: the ranks must agree on re-runs and on the
    # number of calls per window, or their collectives part ways and the run hangs or aborts.
    rc, rep = _bench(capsys, tmp_path, "--tp", str(tp), "--batch-size", "1", "2", "--min-window", "0.2")
    assert rc == 0
    assert rep["stored_rows"] == 2
    rows = [r for r in load_rows() if r.id in rep["row_ids"]]
    assert sorted(r.batch_size for r in rows) == [1, 2]
    for r in rows:
        assert r.tensor_parallel == tp and r.gpu == "cpu" and r.gpu_count == 1 and r.framework == "hf-eager"
        assert f"tensor parallel over {tp} CPU processes (gloo)" in r.notes and "energy unavailable" in r.notes
        assert r.throughput_tok_s > 0 and r.n_runs == 2 and f"-tp{tp}-" in r.id
        # DTensor parameters count globally: the whole tiny model, not a shard and not tp times it.
        # Per layer q/o 64x64, k/v 64x32, their 128 biases, MLP 3 x 64x128, two norms; tied embedding 512x64.
        per_layer = 2 * 64 * 64 + 2 * 64 * 32 + 128 + 3 * 64 * 128 + 2 * 64
        assert r.params_b == pytest.approx((2 * per_layer + 512 * 64 + 64) / 1e9)
    assert not list(tmp_path.glob("tp.jsonl.rank*"))  # the other ranks' files are removed
    # Run again: everything is in the results file, no rank is started.
    rc, rep = _bench(capsys, tmp_path, "--tp", str(tp), "--batch-size", "1", "2", "--min-window", "0.2")
    assert rc == 0 and rep["stored_rows"] == 0


def test_ranks_follow_one_verdict_on_re_runs():
    values = iter([100.0, 50.0, 150.0] * 4)

    def once(i: int) -> RunMeasurement:
        return RunMeasurement(next(values), 1.0, None)

    s = ProtocolSettings(warmup=0, runs=3, pause_s=0, idle_s=0, max_reruns=2)
    heard: list[bool] = []

    def rank0_says_stop(mine: bool) -> bool:
        heard.append(mine)
        return False

    r = run_protocol(once, s, agree=rank0_says_stop)
    assert heard == [True] and r.attempts == 1 and r.gate_failed  # this rank wanted a re-run; rank 0 did not


def test_parallel_flags_are_checked(capsys):
    from advisor.cli import main

    base = ["bench", "--model", "qwen2.5-0.5b", "--synthetic", "--device", "cpu", "--precision", "fp32"]
    for extra, msg in (
        (["--tp", "0"], "--tp must be >= 1"),
        (["--gpus", "2", "--tp", "4"], "data parallelism is not"),
        (["--tp", "2", "--serve", "--concurrency", "2"], "tensor-parallel serve is not built yet"),
        (["--tp", "2", "--precision", "nf4"], "fp32, fp16 or bf16"),
    ):
        assert main(base + extra) == 2, extra
        assert msg in capsys.readouterr().err, extra
