# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-sqlite test-postgres lint typecheck lock clean bench

$(STAMP): pyproject.toml constraints.txt examples/santana-example-plugin/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/pip install --quiet -e examples/santana-example-plugin
	touch $(STAMP)

## Serve the gateway on SQLite with demo data and GraphiQL at http://127.0.0.1:8000/graphql
run: $(STAMP)
	$(BIN)/santana migrate
	$(BIN)/santana seed-demo
	$(BIN)/santana serve

## Run the whole suite (SQLite, and PostgreSQL when it answers; CI requires it)
test: $(STAMP)
	$(BIN)/pytest

test-sqlite: $(STAMP)
	$(BIN)/pytest --db sqlite

test-postgres: $(STAMP)
	$(BIN)/pytest --db postgres

lint: $(STAMP)
	$(BIN)/ruff check gateway schema plugins tests benchmarks examples
	$(BIN)/ruff format --check gateway schema plugins tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy gateway schema

## Load benchmark against PostGraphile v5 (a few minutes; writes benchmarks/RESULTS.md)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

## Refresh constraints.txt from what is installed
lock: $(STAMP)
	( echo '# Exact versions the Makefile installs with (pip -c). Regenerate: make lock'; \
	  $(BIN)/pip freeze --exclude-editable ) > constraints.txt

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
