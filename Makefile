# Two commands on a fresh machine (python3 + make): `make run`, `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# the detection core compiled with mypyc (tools/native.py); optional: a
# failed build leaves pure Python, and the stamp is made either way
NATIVE  := build/native.stamp

.PHONY: run check test lint typecheck bench evaluate clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NATIVE): $(STAMP) $(wildcard detectors/*.py detectors/*/*.py) $(wildcard detectors/*.c)
	$(BIN)/python -m tools.native build
	@mkdir -p build && touch $(NATIVE)

run: $(STAMP) $(NATIVE)
	$(BIN)/distillwatch run

# the edit loop, in under a minute: the unit tier (tests/ without the
# integration, reliability and oracle tiers, nor the oracle comparison still in
# test_detectors_core; not the slow whole-run replays) and the doctests of detectors/
check: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --ignore=tests/integration \
		--ignore=tests/reliability --ignore=tests/oracles tests detectors

# everything, as CI runs it (the tiers, the doctests of detectors/, streams/,
# simulator/): most of it on TEST_JOBS processes (each its own embedded broker;
# a file stays on one process so module fixtures run once), then the tests
# marked `serial` alone, because they calibrate rates or hold deadlines that a
# busy neighbour would shift. Both passes run; either failing fails the target.
TEST_JOBS ?= 2
test: $(STAMP) $(NATIVE)
	@rc=0; \
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile -m "not serial" || rc=$$?; \
	$(BIN)/python -m pytest -m serial || rc=$$?; \
	exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check streams detectors simulator benchmarks tests tools
	$(BIN)/mypy

bench: $(STAMP) $(NATIVE)
	$(BIN)/distillwatch bench

evaluate: $(STAMP) $(NATIVE)
	$(BIN)/distillwatch evaluate --hours 24 --accounts 1000

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info detectors/_native
