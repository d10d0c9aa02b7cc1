# Two commands on a fresh machine (python3 + make): `make run`, `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# the detection core compiled with mypyc (tools/native.py); optional: a
# failed build leaves pure Python, and the stamp is made either way
NATIVE  := build/native.stamp

.PHONY: run test lint typecheck bench evaluate clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NATIVE): $(STAMP) $(wildcard detectors/*.py) $(wildcard detectors/*.c)
	$(BIN)/python -m tools.native build
	@mkdir -p build && touch $(NATIVE)

run: $(STAMP) $(NATIVE)
	$(BIN)/distillwatch run

test: $(STAMP) $(NATIVE)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check streams detectors simulator benchmarks tests tools
	$(BIN)/mypy

bench: $(STAMP) $(NATIVE)
	$(BIN)/distillwatch bench

evaluate: $(STAMP) $(NATIVE)
	$(BIN)/distillwatch evaluate --hours 24 --accounts 1000

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info detectors/_native
