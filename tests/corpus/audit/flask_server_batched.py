"""Flask front end; a worker thread batches queued prompts (pure INT8: no decomposition)."""
import queue
import threading

import torch
from flask import Flask, jsonify, request
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

MODEL = "01-ai/Yi-1.5-6B"
THRESHOLD = 0.0
BNB_KWARGS = {"load_in_8bit": True, "llm_int8_threshold": THRESHOLD}
MAX_BATCH = 16

app = Flask(__name__)
tok = AutoTokenizer.from_pretrained(MODEL, padding_side="left")
model = AutoModelForCausalLM.from_pretrained(MODEL, quantization_config=BitsAndBytesConfig(**BNB_KWARGS),
                                             device_map="auto")
jobs: "queue.Queue[tuple[str, queue.Queue]]" = queue.Queue()


def worker() -> None:
    while True:
        batch = [jobs.get()]
        while len(batch) < MAX_BATCH and not jobs.empty():
            batch.append(jobs.get())
        enc = tok([p for p, _ in batch], return_tensors="pt", padding=True).to("cuda")
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=128)
        for (_, reply), seq in zip(batch, out):
            reply.put(tok.decode(seq, skip_special_tokens=True))


@app.route("/v1/complete", methods=["POST"])
def complete():
    reply: queue.Queue = queue.Queue()
    jobs.put((request.json["prompt"], reply))
    return jsonify({"text": reply.get(timeout=60)})


threading.Thread(target=worker, daemon=True).start()
