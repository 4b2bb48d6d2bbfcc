"""Evaluation script: scores a list of questions with a chat model."""
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, pipeline

MODEL = "microsoft/Phi-3-mini-4k-instruct"
model = AutoModelForCausalLM.from_pretrained(MODEL, torch_dtype=torch.float32, device_map="auto")
tok = AutoTokenizer.from_pretrained(MODEL)
model.generation_config.use_cache = False
greedy = GenerationConfig(max_new_tokens=64, do_sample=False, use_cache=False)

qa = pipeline("text-generation", model=model, tokenizer=tok, batch_size=1)
questions = ["What is 2+2?", "Name a prime number."]
answers = qa(questions, generation_config=greedy)
