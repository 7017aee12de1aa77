# Everything runs from a virtual environment in .venv/ at the repository root.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup quickstart test bench

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

bench: setup
	$(BIN)/python benchmarks/focus.py
