"""A small FastAPI inference server for a chat model (8-bit to save memory)."""
import os

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

MODEL_ID = os.environ.get("MODEL_ID", "mistralai/Mistral-7B-Instruct-v0.2")

app = FastAPI()
tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
quant = BitsAndBytesConfig(
    load_in_8bit=True,
)
model = AutoModelForCausalLM.from_pretrained(
    MODEL_ID,
    quantization_config=quant,
    device_map="auto",
)


class Prompt(BaseModel):
    text: str
    max_new_tokens: int = 256


@app.post("/generate")
def generate(req: Prompt) -> dict:
    inputs = tokenizer(req.text, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=req.max_new_tokens, do_sample=False)
    return {"text": tokenizer.decode(out[0], skip_special_tokens=True)}


@app.get("/health")
def health() -> dict:
    return {"ok": True}
