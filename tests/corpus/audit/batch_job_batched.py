"""Batched offline generation in FP16; 4-bit only for the 7B model; a short warm-up first."""
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

BATCH = 32
SMALL = "Qwen/Qwen2.5-1.5B-Instruct"
LARGE = "Qwen/Qwen2.5-7B-Instruct"

tok = AutoTokenizer.from_pretrained(SMALL, padding_side="left")
small = AutoModelForCausalLM.from_pretrained(SMALL, torch_dtype=torch.float16, device_map="auto")
large = AutoModelForCausalLM.from_pretrained(LARGE, load_in_4bit=True, device_map="auto")
prompts = [f"Summarise item {i}" for i in range(1000)]

warm = tok(["warm-up"], return_tensors="pt").to("cuda")
for _ in range(3):
    small.generate(**warm, max_new_tokens=8)

outputs = []
for i in range(0, len(prompts), BATCH):
    chunk = prompts[i:i + BATCH]
    enc = tok(chunk, return_tensors="pt", padding=True).to("cuda")
    outputs.extend(small.generate(**enc, max_new_tokens=128))

for batch in [prompts[:64], prompts[64:128]]:
    enc = tok(batch, return_tensors="pt", padding=True).to("cuda")
    outputs.extend(large.generate(**enc, max_new_tokens=128))

pipe = pipeline("text-generation", model=SMALL, torch_dtype="auto", device_map="auto", batch_size=16)
outputs.extend(pipe(prompts, max_new_tokens=64))
