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
