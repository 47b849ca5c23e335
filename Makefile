# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

.PHONY: serve test lint bench install
install: $(STAMP)

serve: $(STAMP)
	$(BIN)/jobyard serve

# Without a PostgreSQL at JOBYARD_TEST_PG, tests/pg_throwaway.py runs the suite on a
# throw-away one (see there); with one, or with JOBYARD_TEST_BACKENDS=sqlite, it just runs it.
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m mypy
	$(BIN)/python tests/pg_throwaway.py $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m mypy

bench: $(STAMP)
	for f in bench/bench_*.py; do $(BIN)/python $$f || exit 1; done
