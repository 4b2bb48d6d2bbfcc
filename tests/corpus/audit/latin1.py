# Résumé du modèle (latin-1 comment)
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-7B-Instruct", torch_dtype="auto")
m.generate(max_new_tokens=8, use_cache=False)
