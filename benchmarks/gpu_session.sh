#!/usr/bin/env bash
# One call on the device machine (README, Benchmarks): install the carried wheels,
# then run the named steps in order, each logging into $OUT. The inference step's time budget is
# what is left of LIMIT_S after the earlier steps, less a margin for the configuration in flight.
#
#   bash benchmarks/gpu_session.sh gpu-tests accuracy inference     # first call
#   bash benchmarks/gpu_session.sh inference                        # later calls resume .gpu/inference.jsonl
#   WHEELS=.whlmcp bash benchmarks/gpu_session.sh mcp-test          # the MCP server's GPU test
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
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
  >"$OUT/session.log" 2>&1 || { echo "wheel install failed"; tail "$OUT/session.log"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm --format=csv >>"$OUT/session.log" 2>&1
for step in "$@"; do
  echo "[$SECONDS s] $step" | tee -a "$OUT/session.log"
  case $step in
    gpu-tests)
      timeout 200 python3 -m pytest -q -p no:cacheprovider -rA -m gpu tests/test_gpu_engine.py \
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
    *) echo "unknown step $step (accepted: gpu-tests, mcp-test, accuracy, inference)"; exit 2 ;;
  esac
done
echo "[$SECONDS s] done" | tee -a "$OUT/session.log"
