"""The one precision vocabulary, without pydantic so the command line can name it at start-up.

`BENCH_PRECISIONS` are the formats the engine measures (and the MCP tools and `bench` accept);
`PRECISIONS` adds those only published data has: mxfp4, the OCP microscaling 4-bit float format
(gpt-oss ships its expert weights in it), served by vLLM; the HF engine here does not build it."""

from __future__ import annotations

from typing import Literal, get_args

BenchPrecision = Literal["fp32", "fp16", "bf16", "fp8", "nf4", "int8_mixed", "int8_pure"]
Precision = Literal[BenchPrecision, "mxfp4"]
BENCH_PRECISIONS: tuple[str, ...] = get_args(BenchPrecision)
PRECISIONS: tuple[str, ...] = get_args(Precision)

# FP8 has two implementations with different costs (torchao's configs, the engine's --fp8-mode):
# 'dynamic' quantises each activation to FP8 on the fly and runs FP8 tensor-core matmuls
# (Float8DynamicActivationFloat8WeightConfig; vLLM's W8A8 FP8); 'weight_only' stores the weights in
# FP8 and dequantises them to 16 bits for a 16-bit matmul (Float8WeightOnlyConfig).
Fp8Mode = Literal["dynamic", "weight_only"]
FP8_MODES: tuple[str, ...] = get_args(Fp8Mode)
# The performance model's formats (measurements/catalog/formats.csv): one per precision, FP8's
# weight-only path a format of its own ('fp8' is the dynamic path, the one with FP8 matmuls).
FormatKey = Literal[Precision, "fp8_weight_only"]
FORMAT_KEYS: tuple[str, ...] = get_args(FormatKey)


def format_key(precision: str, fp8_mode: str | None) -> str:
    """The formats.csv key of a precision run in an FP8 mode (the mode matters only for fp8)."""
    return "fp8_weight_only" if precision == "fp8" and fp8_mode == "weight_only" else precision


def fp8_mode_of(key: str) -> str | None:
    """The FP8 mode a format key stands for (None: not an FP8 format)."""
    return "weight_only" if key == "fp8_weight_only" else "dynamic" if key == "fp8" else None
