# Set-up and entry points. Each target builds the virtual environment it needs on
# first use (and again whenever pyproject.toml changes), so a second run starts at once.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Extra arguments for the trainer, e.g. make train ARGS="--preset quick".
ARGS ?=

.PHONY: train test test-fast lint format bench report clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[train,dev]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e ".[train,dev,bench]"
	touch $@

train: $(VENV)/.installed-dev
	$(BIN)/python -m train $(ARGS)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(ARGS)

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-bench
	$(BIN)/python scripts/bench_activations.py $(ARGS)
	$(BIN)/python scripts/bench_train.py $(ARGS)

report: $(VENV)/.installed-dev
	$(BIN)/python scripts/report.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
