# Fresh-machine entry points. Each target bootstraps .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= fast
ARGS   ?=

.PHONY: help venv test lint conformance conformance-documented bench clean kind-up kind-down mutation-matrix upstream-matrix oracle upstream test-upstream images

help:
	@echo "make conformance   run the conformance job (PROFILE=$(PROFILE), built-in emulated cluster; CLUSTER=upstream: real Kubernetes + Knative + KServe)"
	@echo "make conformance-documented  every suite, slow ones included, PROFILE=coreweave on the emulator (~40 min)"
	@echo "make test          run the harness's own tests"
	@echo "make lint          ruff"
	@echo "make bench         every benchmark in benchmarks/ (each prints its ratios)"
	@echo "make mutation-matrix  every check vs every emulator mutation, live (~10 min)"
	@echo "make upstream-matrix  every check vs a change to the real cluster's configuration (root; one upstream cluster, ~10 min)"
	@echo "make oracle        20,000 random scenarios: reference model vs Knative's own code (needs Go)"
	@echo "make upstream      build etcd, the Kubernetes control plane, CoreDNS, Knative Serving and KServe from their Go modules"
	@echo "make test-upstream the tests against a live upstream cluster (root, Linux; builds first)"
	@echo "make images        the node agent's image environments (storage initializer: ~2 min once)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check harness tests benchmarks

# Emulator + every suite (CLUSTER=local|kind|current|upstream; upstream: the real Kubernetes,
# Knative and KServe started and torn down by the run, root on Linux; ARGS: more options,
# "-- -k panic" to pytest)
conformance: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/harness conformance --profile $(PROFILE) --cluster $(or $(CLUSTER),local) $(ARGS)

# The documented profile end to end: every suite, slow ones included (the 34-minute
# scale-to-zero waits), with PROFILE=coreweave on the emulator; about 40 minutes.
conformance-documented: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/harness conformance --profile coreweave --cluster local -- -m 'slow or not slow'

# A kind cluster with Knative + Kourier + KServe (needs kind, docker, kubectl; KIND_NAME=harness)
kind-up: $(STAMP)
	PATH="$$PATH:$(CURDIR)/$(BIN)" $(BIN)/harness cluster up --kind --name $(or $(KIND_NAME),harness) --profile $(PROFILE)

kind-down: $(STAMP)
	PATH="$$PATH:$(CURDIR)/$(BIN)" $(BIN)/harness cluster down --kind --name $(or $(KIND_NAME),harness)

# The real control plane, Knative Serving and KServe from their Go modules (upstream/) into ~/.cache/harness/upstream
upstream: $(STAMP)
	$(BIN)/python -m harness.upstream.build

# The Python environments of the node agent's images (kserve/storage-initializer: kserve-storage
# from PyPI) into ~/.cache/harness/images; about 2 minutes the first time, then instant
images: $(STAMP)
	$(BIN)/python -m harness.nodeagent.images

test-upstream: upstream images
	HARNESS_UPSTREAM=1 PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest tests/upstream $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/kpa_simulate.py
	$(BIN)/python benchmarks/emulator_throughput.py
	$(BIN)/python benchmarks/ingress_latency.py
	$(BIN)/python benchmarks/load_throughput.py
	$(BIN)/python benchmarks/measurement_accuracy.py

# Live mutation matrix: each emulator mutation fails its check and no other.
# MUTATION_MATRIX_RECORD=DIR also saves each recording there (replayable).
mutation-matrix: $(STAMP)
	MUTATION_MATRIX=1 $(BIN)/python -m pytest tests/test_mutation_matrix.py -k live -s $(ARGS)

# The real mutation matrix: one upstream cluster (Knative + KServe; the host lock held),
# every configuration of harness/matrix/upstream.py recorded on it, the table printed;
# exits 1 on an unexpected cell. ARGS="--only baseline,retention", "--replay DIR".
upstream-matrix: $(STAMP) upstream
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/harness matrix --cluster upstream $(ARGS)

# Differential check against Knative Serving's own autoscaler (upstream/, built with Go on
# first use into ~/.cache/harness/oracle): prints the count and the agreement rate.
oracle: $(STAMP)
	$(BIN)/python -m harness.kpa.differential --count $(or $(COUNT),20000) --shrink

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
