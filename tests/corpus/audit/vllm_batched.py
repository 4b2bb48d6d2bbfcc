"""vLLM offline batch: the engine batches the whole list (continuous batching)."""
from vllm import LLM, SamplingParams

llm = LLM(model="Qwen/Qwen2.5-7B-Instruct", dtype="bfloat16")
prompts = [line.strip() for line in open("prompts.txt")]
outputs = llm.generate(prompts, SamplingParams(max_tokens=256))
for out in outputs:
    print(out.outputs[0].text)
