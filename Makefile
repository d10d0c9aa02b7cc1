# Two commands on a fresh machine (python3 + make): `make run`, `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run test lint typecheck bench evaluate clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/distillwatch run

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check streams detectors simulator benchmarks tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/distillwatch bench

evaluate: $(STAMP)
	$(BIN)/distillwatch evaluate --hours 24 --accounts 1000

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
