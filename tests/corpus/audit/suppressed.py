"""Suppressions: by code, bare, and a wrong code that does not silence."""
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

cfg = BitsAndBytesConfig(load_in_8bit=True)  # eco: ignore[ECO101]
model = AutoModelForCausalLM.from_pretrained(  # eco: ignore
    "Qwen/Qwen2.5-0.5B", load_in_4bit=True)
other = BitsAndBytesConfig(load_in_8bit=True)  # eco: ignore[ECO102]
out = model.generate(max_new_tokens=5, use_cache=False)  # eco: ignore[ECO101, ECO106]
