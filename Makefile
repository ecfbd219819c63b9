# Two entry points for a fresh machine (Python 3.11+, make):
#   make sample   set up, build the 2d-multimodal config from the built-in sample, show what it wrote
#   make test     set up, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= crema-d-datasets

.PHONY: setup sample test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

sample: setup
	$(BIN)/crema-tools build --variant 2d-multimodal --out $(OUT)
	$(BIN)/crema-tools inspect $(OUT) --variant 2d-multimodal

test: setup
	$(BIN)/python -m pytest -q -ra

bench: setup
	$(BIN)/python bench/bench_build_2d.py

clean:
	rm -rf $(OUT) .pytest_cache
