"""FP8 weight-only quantization with torchao on a Blackwell card."""
import torch
from torchao.quantization import Float8WeightOnlyConfig, quantize_
from transformers import AutoModelForCausalLM, AutoTokenizer

model_id = "Qwen/Qwen2.5-3B"
model = AutoModelForCausalLM.from_pretrained(model_id, torch_dtype=torch.bfloat16, device_map="cuda")
quantize_(model, Float8WeightOnlyConfig())
tok = AutoTokenizer.from_pretrained(model_id)
batch = tok(["Hello", "Bonjour"], return_tensors="pt", padding=True).to("cuda")
print(tok.batch_decode(model.generate(**batch, max_new_tokens=64)))
