# Everything runs from a virtual environment in .venv/ at the repository root.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup quickstart test test-fast lint bench

$(BIN)/python:
	$(PY) -m venv $(VENV)

setup: $(BIN)/python
	# torch first, pinned: a looser spec would pull a CUDA build of several GB
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'

quickstart: setup
	$(BIN)/sarpipe run pipelines/quickstart.yaml

test: setup
	$(BIN)/python -m pytest -n 2 -q

# the fast tier for development: everything not marked slow (under 2 minutes here)
test-fast: setup
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

lint: setup
	$(BIN)/ruff check sarpipe tests benchmarks
	$(BIN)/ruff format --check sarpipe tests benchmarks

bench: setup
	$(BIN)/python benchmarks/focus.py
