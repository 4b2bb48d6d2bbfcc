"""FP8 with torchao, compiled: the production path."""
import torch
from torchao.quantization import Float8WeightOnlyConfig, quantize_
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-7B-Instruct", torch_dtype=torch.bfloat16, device_map="cuda")
quantize_(model, Float8WeightOnlyConfig())
model.forward = torch.compile(model.forward, mode="max-autotune")
