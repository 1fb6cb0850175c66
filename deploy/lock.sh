#!/usr/bin/env bash
# `make lock`: the image's lock files, for linux/amd64 and Python 3.11, every file pinned by
# sha256 (the Dockerfile installs them with --require-hashes):
#   requirements.lock       the CPU build of torch (torch==V+cpu, from the PyTorch CPU index)
#   requirements-cuda.lock  the CUDA build of torch from PyPI, with its nvidia-* wheels
# Versions are the ones the test suite runs with (.venv), so the image runs what was tested;
# run it after changing dependencies or TORCH in the Makefile, and commit both files.
# TORCH_CPU_WHEELS: where the +cpu wheel is listed (default: the PyTorch index's torch page;
# a local folder of wheels works too).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
TORCH_VERSION=${TORCH_VERSION:?set TORCH_VERSION, e.g. 2.13.0}
TORCH_CPU_WHEELS=${TORCH_CPU_WHEELS:-https://download.pytorch.org/whl/cpu/torch/}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the tested versions, torch aside (each lock pins its own build of it)
"$BIN/python" -m pip freeze --exclude-editable | grep -iv '^torch==' > "$tmp/tested.txt"
echo "torch==${TORCH_VERSION}+cpu" > "$tmp/cpu.txt"
echo "torch==${TORCH_VERSION}" > "$tmp/cuda.txt"
common=(--quiet --generate-hashes --no-annotate --python-version 3.11 --python-platform x86_64-manylinux_2_28
        --custom-compile-command "make lock" --constraint "$tmp/tested.txt"
        pyproject.toml requirements.in)
"$BIN/uv" pip compile "${common[@]}" --constraint "$tmp/cpu.txt" \
  --find-links "$TORCH_CPU_WHEELS" --output-file requirements.lock
"$BIN/uv" pip compile "${common[@]}" --constraint "$tmp/cuda.txt" \
  --output-file requirements-cuda.lock
echo "written requirements.lock and requirements-cuda.lock (torch ${TORCH_VERSION})"
