# The two commands of the README: `make demo` (the main job on built-in demo data) and
# `make test` (the test suite). Both do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo
# Pinned so set-up is fast and repeatable: pip takes the CPU wheel where one is on disk (CI) and
# PyPI's CUDA build elsewhere. pyproject.toml accepts any torch 2.x.
TORCH ?= 2.13.0
# Debian packages the tests need: a browser for the dashboard tests, Java for the Spark test
SYSTEM_DEPS := chromium fonts-dejavu-core openjdk-17-jre-headless

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==$(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# DASHBOARD=0 skips serving the dashboard at the end (it runs until Ctrl-C)
DASHBOARD ?= 1

demo: $(VENV)/.installed
	$(BIN)/distillguard demo --out $(DEMO)
ifeq ($(DASHBOARD),1)
	$(BIN)/distillguard dashboard --warehouse $(DEMO)/warehouse.duckdb
endif

test: $(VENV)/.installed
	bash scripts/system-deps.sh $(SYSTEM_DEPS)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_ingest.py

clean:
	rm -rf $(VENV) $(DEMO)
