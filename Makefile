# opkit developer entry points. Everything installs what it needs into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv tools test lint typecheck unit bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

tools:
	bash scripts/tools.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

typecheck: venv
	$(VENV)/bin/mypy

test: lint tools
	$(PY) -m pytest $(PYTEST_ARGS)

unit: venv
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

bench: venv tools
	$(PY) bench/run_all.py --write

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
