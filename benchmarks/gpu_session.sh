#!/usr/bin/env bash
# One call on the device machine (README, Benchmarks): install the carried wheels,
# then run the named steps in order, each logging into $OUT. The inference step's time budget is
# what is left of LIMIT_S after the earlier steps, less a margin for the configuration in flight.
#
#   bash benchmarks/gpu_session.sh gpu-tests accuracy inference     # first call
#   bash benchmarks/gpu_session.sh inference                        # later calls resume .gpu/inference.jsonl
#   WHEELS=.whlmcp bash benchmarks/gpu_session.sh mcp-test          # the MCP server's GPU test
#
# Issue 15/21 plan (concurrency C sends 4 x C requests per load test, at least 16; each step resumes from its results file in .gpu/, so a step cut off at the call's
# time limit is continued by running it again; MODELS=... narrows a step to some models):
#   bash benchmarks/gpu_session.sh gpu-tests quant-build               # new paths' gpu tests; NF4/INT8 build time
#   bash benchmarks/gpu_session.sh serve                                # hf-continuous-batching, c 1 8 64 256
#   bash benchmarks/gpu_session.sh static fp8-static                   # hf-static-cache vs eager (ABAB), FP8 + graphs
#   bash benchmarks/gpu_session.sh fp8                                 # torchao FP8 weight-only and dynamic
#   bash benchmarks/gpu_session.sh tp                                  # on nvidia-h200-x4: 32B/72B at TP 1, 2, 4
#
# WHEELS is the carried wheel folder (default .whl, from ../shared/tools/device-wheels.sh). The MCP
# test needs the mcp SDK and its dependencies (cryptography among them) but not bitsandbytes; the
# two sets together exceed the 64 MiB the device call carries, so they travel in separate calls.
set -u
OUT=${OUT:-out}
LIMIT_S=${LIMIT_S:-600}
MARGIN_S=${MARGIN_S:-90}
ORDER=${ORDER:-h200}
WHEELS=${WHEELS:-.whl}
mkdir -p "$OUT" .gpu
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
  >"$OUT/session.log" 2>&1 || { echo "wheel install failed"; tail "$OUT/session.log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv >>"$OUT/session.log" 2>&1
for step in "$@"; do
  echo "[$SECONDS s] $step" | tee -a "$OUT/session.log"
  case $step in
    fp8)  # 2026-12-02: both torchao FP8 schemes (weight-only and dynamic) on this GPU
      budget=$((LIMIT_S - MARGIN_S - SECONDS))
      python3 benchmarks/engine_dataset.py inference --fp8 --out "$OUT" --reruns 0 --budget-s "$budget" \
        >"$OUT/fp8.log" 2>&1
      echo "fp8 exit $? (budget $budget s)" | tee -a "$OUT/session.log" ;;
    gpu-tests)
      timeout 300 python3 -m pytest -q -p no:cacheprovider -rA -m gpu tests/test_gpu_engine.py \
        >"$OUT/pytest_gpu.log" 2>&1
      echo "pytest exit $?: $(tail -1 "$OUT/pytest_gpu.log")" | tee -a "$OUT/session.log" ;;
    mcp-test)
      timeout 200 python3 -m pytest -q -p no:cacheprovider -rA -m gpu tests/test_mcp.py >"$OUT/pytest_mcp_gpu.log" 2>&1
      echo "pytest exit $?: $(tail -1 "$OUT/pytest_mcp_gpu.log")" | tee -a "$OUT/session.log" ;;
    accuracy)
      timeout 180 python3 benchmarks/engine_accuracy.py measure --out "$OUT" --blocks "${BLOCKS:-20}" \
        >"$OUT/accuracy.log" 2>&1
      echo "accuracy exit $?" | tee -a "$OUT/session.log" ;;
    inference)
      budget=$((LIMIT_S - MARGIN_S - SECONDS))
      resume=(); [ -f .gpu/inference.jsonl ] && resume=(--resume .gpu/inference.jsonl)
      python3 benchmarks/engine_dataset.py inference --out "$OUT" --order "$ORDER" --reruns 0 \
        --budget-s "$budget" "${resume[@]}" >"$OUT/inference.log" 2>&1
      echo "inference exit $? (budget $budget s)" | tee -a "$OUT/session.log" ;;
    quant-build)  # issue 15 item 4: synthetic 7B NF4/INT8 built in memory vs saved and reloaded
      timeout 400 python3 - >"$OUT/quant_build.log" 2>&1 <<'PY'
import json, os, tempfile, time
os.environ.setdefault("ECOLOBSTER_SCRATCH", tempfile.mkdtemp())
from engine.models import free_memory, load_model
out = {}
for prec in ("nf4", "int8_pure"):
    for build in ("memory", "checkpoint", "checkpoint"):  # the second checkpoint load reuses the saved file
        t = time.perf_counter()
        lm = load_model("qwen2.5-7b", prec, "cuda", quant_build=build)
        out.setdefault(prec, []).append({"build": build, "s": round(time.perf_counter() - t, 2)})
        del lm
        free_memory()
print(json.dumps(out))
PY
      echo "quant-build exit $?: $(tail -1 "$OUT/quant_build.log")" | tee -a "$OUT/session.log" ;;
    serve)  # issue 15 item 5: continuous batching under load, bf16, prompts 64-512, outputs 128
      for m in ${MODELS:-qwen2.5-0.5b qwen2.5-3b qwen2.5-7b qwen2.5-14b qwen2.5-32b}; do
        timeout $((LIMIT_S - MARGIN_S - SECONDS)) python3 -m advisor.cli bench --serve --model "$m" --synthetic \
          --precision bf16 --concurrency 1 8 64 256 --prompt-dist uniform:64:512 --gen-tokens 128 \
          --runs 2 --warmup 1 --pause 10 --max-reruns 1 --no-carbon --out ".gpu/serve-$m.jsonl" --format json \
          >"$OUT/serve-$m.log" 2>&1
        echo "serve $m exit $?" | tee -a "$OUT/session.log"
        cp ".gpu/serve-$m.jsonl" "$OUT/" 2>/dev/null; tar -czf "$OUT/serve-$m-traces.tar.gz" -C .gpu "serve-$m-traces" 2>/dev/null
      done ;;
    static)  # issue 15 items 2-3: static cache (CUDA graphs) vs eager, interleaved ABAB, batch 1 and 8
      for m in ${MODELS:-qwen2.5-0.5b qwen2.5-3b qwen2.5-7b qwen2.5-14b qwen2.5-32b}; do
        timeout $((LIMIT_S - MARGIN_S - SECONDS)) python3 -m advisor.cli bench --model "$m" --synthetic \
          --precision bf16 --batch-size 1 8 --cache dynamic static --interleave --prompt-tokens 128 --gen-tokens 64 \
          --runs 5 --warmup 2 --pause 10 --min-window 1 --no-carbon --out ".gpu/static-$m.jsonl" --format json \
          >"$OUT/static-$m.log" 2>&1
        echo "static $m exit $?" | tee -a "$OUT/session.log"
        cp ".gpu/static-$m.jsonl" "$OUT/" 2>/dev/null; tar -czf "$OUT/static-$m-traces.tar.gz" -C .gpu "static-$m-traces" 2>/dev/null
      done ;;
    fp8-static)  # issue 15 item 5: the path the seeds could not measure, FP8 (torchao) with CUDA graphs
      timeout $((LIMIT_S - MARGIN_S - SECONDS)) python3 -m advisor.cli bench --model qwen2.5-7b --synthetic \
        --precision fp8 --compute-dtype bf16 --batch-size 1 8 --static-cache --prompt-tokens 128 --gen-tokens 64 \
        --runs 5 --warmup 2 --pause 10 --min-window 1 --no-carbon --out .gpu/fp8-static.jsonl --format json \
        >"$OUT/fp8-static.log" 2>&1
      echo "fp8-static exit $?" | tee -a "$OUT/session.log"
      cp .gpu/fp8-static.jsonl "$OUT/" 2>/dev/null ;;
    finetune)  # issue 13 item 7: micro-batch 2 and 4 at 2048 tokens (checkpointing on and off) and at 512
      # tokens with checkpointing (512 without it was measured on 2026-12-02); Phi-3-mini LoRA on the full grid
      for spec in "qwen2.5-7b lora qlora" "qwen2.5-1.5b lora qlora" "phi-3-mini lora"; do
        set -- $spec; m=$1; shift
        for grid in "2048 on off" "512 on"; do
          set -- $grid; seq=$1; shift
          [ "$m" = phi-3-mini ] && [ "$seq" = 512 ] && set -- on off
          timeout $((LIMIT_S - MARGIN_S - SECONDS)) python3 -m advisor.cli bench --finetune --model "$m" --synthetic \
            --method ${spec#* } --seq-len "$seq" --batch-size 2 4 --grad-checkpointing "$@" \
            --runs 5 --warmup 2 --pause 1 --idle 1 --max-reruns 0 --no-carbon --out ".gpu/ft-$m.jsonl" \
            --format json >>"$OUT/ft-$m.log" 2>&1
          echo "finetune $m s$seq exit $?" | tee -a "$OUT/session.log"
        done
        cp ".gpu/ft-$m.jsonl" "$OUT/" 2>/dev/null
      done
      tar -czf "$OUT/ft-traces.tar.gz" -C .gpu $(cd .gpu && ls -d ft-*-traces 2>/dev/null) 2>/dev/null ;;
    tp)  # issue 21: tensor parallel on the multi-GPU kind; 72B bf16 (145 GB) does not fit one H200: TP 2 and 4
      n=$(nvidia-smi -L | wc -l)
      for spec in "qwen2.5-32b 1" "qwen2.5-32b 2" "qwen2.5-32b 4" "qwen2.5-72b 2" "qwen2.5-72b 4"; do
        set -- $spec
        [ "$2" -le "$n" ] || { echo "tp $1 x$2 skipped: $n GPU(s)" | tee -a "$OUT/session.log"; continue; }
        timeout $((LIMIT_S - MARGIN_S - SECONDS)) python3 -m advisor.cli bench --model "$1" --synthetic --tp "$2" \
          --precision bf16 --batch-size 1 8 64 --prompt-tokens 128 --gen-tokens 64 --runs 3 --warmup 1 --pause 10 \
          --min-window 1 --no-carbon --out ".gpu/tp-$1-tp$2.jsonl" --format json >"$OUT/tp-$1-tp$2.log" 2>&1
        echo "tp $1 x$2 exit $?" | tee -a "$OUT/session.log"
        cp ".gpu/tp-$1-tp$2.jsonl" "$OUT/" 2>/dev/null
      done ;;
    *) echo "unknown step $step (accepted: fp8, gpu-tests, mcp-test, accuracy, inference, quant-build, serve, static, fp8-static, finetune, tp)"; exit 2 ;;
  esac
done
echo "[$SECONDS s] done" | tee -a "$OUT/session.log"
