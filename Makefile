# Two entry points (README Quickstart): `make train` and `make test`.
# Each creates .venv/ on first use. Override TORCH for another build, e.g. on a CUDA machine:
#   make setup TORCH='torch==2.13.0'   (PyPI's default Linux wheel is the CUDA build)
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup train test lint bench clean

$(BIN)/xmem-traj: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

setup: $(BIN)/xmem-traj

train: setup
	$(BIN)/xmem-traj train $(ARGS)

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q $(ARGS)

bench: setup
	$(BIN)/python bench/xmem_bench.py
	$(BIN)/python bench/data_bench.py
	$(BIN)/python bench/train_bench.py

clean:
	rm -rf $(VENV) build src/*.egg-info
