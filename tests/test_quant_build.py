"""Synthetic quantised models built in memory: the module swap on CPU with a fake quantised layer
(bitsandbytes' layers need a GPU; tests/test_gpu_engine.py checks them against the checkpoint path)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from engine.models import build_synthetic, quantise_in_memory
from measurements.catalog import resolve_model

TINY = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 512}


class FakeQuantLinear(nn.Module):
    """Stands in for Linear4bit: keeps a rounded copy of the weight (a crude 'quantisation')."""

    def __init__(self, lin: nn.Linear):
        super().__init__()
        self.register_buffer("q", (lin.weight.data * 16).round().to(torch.int8))
        self.bias = lin.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.q.to(x.dtype) / 16, self.bias)


def test_every_linear_but_the_head_is_swapped_once_and_the_model_still_runs():
    from engine.models import apply_overrides

    arch = apply_overrides(resolve_model("qwen2.5-0.5b"), TINY)
    model = build_synthetic(arch, "fp32", "cpu")
    head = model.get_output_embeddings()
    linears = {n for n, m in model.named_modules() if type(m) is nn.Linear and m is not head}
    assert len(linears) == 2 * 7  # q k v o gate up down per layer
    originals = {id(m) for n, m in model.named_modules() if n in linears}
    seen: list[str] = []

    def make(name: str, lin: nn.Linear) -> Any:
        seen.append(name)
        return FakeQuantLinear(lin)

    swapped = quantise_in_memory(model, "nf4", "fp32", False, "cpu", make=make)
    assert set(swapped) == linears and sorted(seen) == sorted(swapped)  # each exactly once
    assert model.get_output_embeddings() is head and type(head) is nn.Linear  # the head stays 16-bit
    left = [n for n, m in model.named_modules() if type(m) is nn.Linear]
    assert left == [n for n, m in model.named_modules() if m is head]
    assert not originals & {id(m) for m in model.modules()}  # the float layers are gone
    assert getattr(model, "is_loaded_in_4bit", True) is True
    ids = torch.randint(100, 512, (1, 6))
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, min_new_tokens=3,
                             do_sample=False, pad_token_id=0)
    assert out.shape == (1, 9)
    # A second pass swaps nothing: only plain nn.Linear are replaced.
    assert quantise_in_memory(model, "nf4", "fp32", False, "cpu", make=make) == []
