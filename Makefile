# Two entry points for a fresh machine (Python 3.11+, make):
#   make sample   set up, build the 2d-multimodal config from the built-in sample, show what it wrote
#   make test     set up, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= crema-d-datasets

.PHONY: setup sample test lint bench clean

setup: $(VENV)/.installed

# exactly the tested set (constraints.txt) of the ranges pyproject.toml declares
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

sample: setup
	$(BIN)/crema-tools build --variant 2d-multimodal --out $(OUT)
	$(BIN)/crema-tools inspect $(OUT) --variant 2d-multimodal

test: setup lint
	$(BIN)/python -m pytest -q -ra

lint: setup
	$(BIN)/ruff check crema_tools model_zoo tests bench scripts

bench: setup
	$(BIN)/python bench/bench_build.py

clean:
	rm -rf $(OUT) .pytest_cache
