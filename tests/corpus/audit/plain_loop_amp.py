"""Training loop with BF16 autocast, NVML energy readings and sparse checkpoints."""
import pynvml
import torch
from transformers import AutoModelForCausalLM

pynvml.nvmlInit()
handle = pynvml.nvmlDeviceGetHandleByIndex(0)
model = AutoModelForCausalLM.from_pretrained("openai-community/gpt2").to("cuda")
opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
SAVE_EVERY = 1000
start = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)

for step, batch in enumerate(torch.load("batches.pt")):
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(**{k: v.to("cuda") for k, v in batch.items()}).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
    if step % SAVE_EVERY == 0:
        model.save_pretrained(f"ckpt-{step}")

print("joules:", (pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) - start) / 1000)
