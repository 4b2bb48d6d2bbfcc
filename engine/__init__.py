"""The measurement engine: GPU energy (NVML), the measurement protocol, synthetic or real models,
the inference and fine-tuning benchmarks, CodeCarbon, provenance, and results -> rows.

Heavy libraries (torch, transformers, bitsandbytes, peft, torchao, codecarbon) are imported
inside the functions that need them, never at import time.
"""
