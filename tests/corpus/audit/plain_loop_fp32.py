"""Hand-written fine-tuning loop (full fine-tuning of a small GPT-2)."""
import torch
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("openai-community/gpt2").cuda()
opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
loader = DataLoader(torch.load("tokens.pt"), batch_size=8, shuffle=True)

step = 0
for epoch in range(3):
    for batch in loader:
        batch = {k: v.cuda() for k, v in batch.items()}
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        step += 1
        if step % 10 == 0:
            torch.save(model.state_dict(), f"ckpt-{step}.pt")
