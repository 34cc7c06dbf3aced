# Fresh-machine entry points. Each target bootstraps .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= fast
ARGS   ?=

.PHONY: help venv test lint conformance bench clean

help:
	@echo "make conformance   run the conformance job (PROFILE=$(PROFILE), built-in emulated cluster)"
	@echo "make test          run the harness's own tests"
	@echo "make lint          ruff"
	@echo "make bench         every benchmark in benchmarks/ (each prints its ratios)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check harness tests benchmarks

conformance: $(STAMP)
	$(BIN)/harness conformance --profile $(PROFILE) $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/kpa_simulate.py
	$(BIN)/python benchmarks/emulator_throughput.py
	$(BIN)/python benchmarks/ingress_latency.py
	$(BIN)/python benchmarks/load_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
