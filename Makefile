# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test test-slow lint docs bench gpu-check clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# runs/ is git-ignored: the demo leaves the clone unmodified (results/demo is the committed copy)
demo: $(BIN)/.installed
	$(BIN)/jepa-flow demo --out runs/demo --force

# every benchmark script, 5 runs each: results/bench/<device>.json (median and spread);
# make bench PRECISION="float64 float32" runs them in both precisions
PRECISION ?= float64
bench: $(BIN)/.installed
	$(BIN)/python scripts/bench_all.py --precision $(PRECISION)

# The numerical core tests (float64 and float32) and the benchmarks at accelerator sizes
# in one command, for a GPU: results/bench/<device>.json ("gpu_check"). SMALL=1 runs the
# same code at CPU sizes (CI's second tier) into runs/gpu-check/.
SMALL ?=
gpu-check: $(BIN)/.installed
	$(BIN)/python scripts/gpu_check.py $(if $(SMALL),--small)

# Two pytest workers (pytest-xdist), one test file each at a time: most of the suite's
# time is single-threaded XLA compilation, so two workers use both cores of the
# 2-core CI machine. TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 2
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The second tier: tests marked slow (the documentation's long examples at tiny
# sizes, every reproduce experiment, the benchmark scripts at small sizes, the
# kill-and-rerun checks of tests/test_interrupt.py, and reproduce's training-heavy
# experiments 4-9 at the tiny level, tests/test_reproduce_training.py, the checks
# that start several devices or processes in subprocesses, and the full-matrix
# flow's dense-buffer rerun).
test-slow: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m slow

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site (mkdocs-material + mkdocstrings) into site/.
$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $@

docs: $(BIN)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache site .cache/mkdocs-jupyter
