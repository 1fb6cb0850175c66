# vaewatch — the two commands first: `make run`, `make test`.
# Every target sets itself up: a .venv with the pinned CPU torch, then the project.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?= --profile
GPU_ARGS ?=
STATE_ARGS ?=

.PHONY: run run-readme test lint typecheck pytest install bench bench-threads bench-gpu bench-quality bench-state soak audit lock schemas clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the pinned CPU build first: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with dev extras

run: $(STAMP)  ## the main job on embedded defaults (broker, train if needed, worker, replay, summary)
	$(BIN)/python -m vaewatch.demo

run-readme: $(STAMP)  ## make run from a fresh model, and put its summary into README.md
	rm -rf models/default
	$(BIN)/python -m vaewatch.demo --update-readme

test: lint typecheck pytest  ## the whole suite: ruff, lint-imports, mypy, unit + integration tests against a real broker

lint: $(STAMP)  ## ruff, ruff format --check, and the import-layer contracts (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	# pytest exits 5 when it collects nothing: that is a failure here, never a pass
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

schemas: $(STAMP)  ## re-export the JSON Schemas of the wire formats into schemas/json/
	$(BIN)/vaewatch schemas export --out schemas/json

bench: $(STAMP)  ## speed: ceilings, worker windows/s + latency, py-spy stage shares, torch threads 1/2/auto
	$(BIN)/python -m benchmarks.speed $(BENCH_ARGS)

bench-threads: $(STAMP)  ## only the torch-threads comparison of `make bench` (1 vs 2 vs auto, quiet and busy; ~4 min)
	$(BIN)/python -m benchmarks.speed --threads-only

bench-gpu: $(STAMP)  ## GPU speed: fp32/bf16 compute ceiling, copy share, 1 and N workers (GPU_ARGS="--device cpu --quick")
	$(BIN)/python -m benchmarks.gpu $(GPU_ARGS)

bench-quality: $(STAMP)  ## detection quality on ../shared/data against baselines
	$(BIN)/python -m benchmarks.quality

bench-state: $(STAMP)  ## restore time of one partition's per-series state (10,000 series; STATE_ARGS="--series 1000")
	$(BIN)/python -m benchmarks.state_restore $(STATE_ARGS)

soak: $(STAMP)  ## hour at 50% of max rate, kills + promotions (not in CI; needs a real cluster for an hour)
	$(BIN)/pytest -m slow -p no:cacheprovider -s tests/soak

audit: $(STAMP)  ## known vulnerabilities in the installed dependencies (needs the PyPI JSON API or OSV)
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/pip-audit --strict --progress-spinner off

# where the CPU torch wheel is listed for `make lock` (a local wheel folder works too)
TORCH_CPU_WHEELS ?= https://download.pytorch.org/whl/cpu/torch/

lock: $(STAMP)  ## requirements.lock + requirements-cuda.lock for the image: the tested versions, sha256-pinned
	$(BIN)/python -m pip install --quiet uv
	TORCH_VERSION=$(subst torch==,,$(TORCH)) TORCH_CPU_WHEELS=$(TORCH_CPU_WHEELS) bash deploy/lock.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
