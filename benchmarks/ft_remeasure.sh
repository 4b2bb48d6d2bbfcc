#!/usr/bin/env bash
# H200 fine-tuning re-measurement, run from the repository root on the device machine (issue 13 item 7): micro-batch 1, 2, 4 at 512 tokens and micro-batch 1
# at 2048 tokens (checkpointing on and off), full protocol: 3 warm-up steps, 10 measured, up to 2 re-runs.
set -u
OUT=${OUT:-out}; LIMIT_S=${LIMIT_S:-590}; MARGIN_S=${MARGIN_S:-60}
mkdir -p "$OUT" .gpu
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >"$OUT/session.log" 2>&1 || { echo "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
IFS=';' read -ra LIST <<< "${SPECS:-qwen2.5-1.5b lora qlora;phi-3-mini lora}"
for spec in "${LIST[@]}"; do
  IFS=' ' ; set -- $spec; m=$1; shift; methods="$*"
  IFS=';' read -ra GRIDS <<< "${GRIDS:-512 off|1 2 4;2048 on off|1}"
  for grid in "${GRIDS[@]}"; do
    seq=${grid%% *}; rest=${grid#* }; gc=${rest%%|*}; bs=${rest#*|}
    left=$((LIMIT_S - MARGIN_S - SECONDS)); [ $left -le 30 ] && { echo "out of time before $m s$seq" | tee -a "$OUT/session.log"; break 2; }
    timeout $left python3 -m advisor.cli bench --finetune --model "$m" --synthetic --method $methods --seq-len "$seq" \
      --batch-size $bs --grad-checkpointing $gc --steps ${STEPS:-20} --warmup 3 --pause 3 --idle 1 --max-reruns ${RERUNS:-1} --no-carbon \
      --out ".gpu/ft-$m.jsonl" --format json >>"$OUT/ft-$m.log" 2>&1
    echo "[$SECONDS s] finetune $m s$seq exit $?" | tee -a "$OUT/session.log"
    cp ".gpu/ft-$m.jsonl" "$OUT/" 2>/dev/null
  done
done
tar -czf "$OUT/ft-traces.tar.gz" -C .gpu $(cd .gpu && ls -d ft-*-traces 2>/dev/null) 2>/dev/null
echo "[$SECONDS s] done" | tee -a "$OUT/session.log"
