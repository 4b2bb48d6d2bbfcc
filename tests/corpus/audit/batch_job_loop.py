#!/usr/bin/env python3
"""Nightly summarisation job: reads prompts from a JSONL file and writes completions."""
import json
import sys

import transformers as tf
from transformers import BitsAndBytesConfig as BNB

SMALL_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
nf4 = BNB(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype="float16")


def main(path: str) -> None:
    tokenizer = tf.AutoTokenizer.from_pretrained(SMALL_MODEL)
    model = tf.AutoModelForCausalLM.from_pretrained(SMALL_MODEL, quantization_config=nf4, device_map="cuda")
    with open(path) as fh:
        prompts = [json.loads(line)["prompt"] for line in fh]
    results = []
    for prompt in prompts:
        enc = tokenizer(prompt, return_tensors="pt").to("cuda")
        out = model.generate(**enc, max_new_tokens=200)
        results.append(tokenizer.decode(out[0], skip_special_tokens=True))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
