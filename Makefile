# hepgen — set-up and the project's main commands. Everything needed is done here, from nothing but
# python3 and pip: `make demo` and `make test` create .venv and install what they need on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The tested torch: a CPU build on this platform, installed *before* the package so that pip never
# resolves `torch` to a multi-GB CUDA build on a CPU-only machine.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.hepgen-installed
BENCH_STAMP := $(VENV)/.hepgen-bench-installed
DEMO_OUT ?= demo-out
JOBS ?= 2
# extra arguments for every benchmark script: `make bench BENCH_ARGS=--quick` runs the reduced versions
BENCH_ARGS ?=

.PHONY: demo test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test,onnx]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hepgen demo --out $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(JOBS) tests

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

bench: $(BENCH_STAMP)
	@mkdir -p benchmarks/results
	@set -e; for script in benchmarks/[!_]*.py; do \
		echo "== $$script $(BENCH_ARGS)"; OMP_NUM_THREADS=2 $(BIN)/python $$script $(BENCH_ARGS); \
	done

clean:
	rm -rf $(VENV) $(DEMO_OUT) build src/*.egg-info
