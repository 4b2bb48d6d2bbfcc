# Two entry points, both idempotent on a fresh machine:
#   make chat  - sets up the advisor (no torch) and starts the EcoLobster chat
#   make test  - sets up the test environment (CPU torch pinned) and runs the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch for tests; an unpinned torch would pull a multi-GB CUDA build.
TORCH_CPU := torch==2.13.0

.PHONY: chat test lint bench clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH_CPU)
	$(BIN)/python -m pip install -q -e ".[dev,engine,mcp,cluster,report]" $(TORCH_CPU)
	touch $@ $(VENV)/.core

chat: $(VENV)/.core
	$(BIN)/ecolobster chat

# The HTML report tests open pages in headless Chromium (Debian's chromium package): installed
# here, only where it is missing, so `make test` works on a fresh machine.
chromium:
	@command -v chromium >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }

test: $(VENV)/.dev chromium
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not gpu"

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.dev
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
