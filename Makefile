# Two commands for a newcomer: `make run` and `make test`. Everything else is for maintainers.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
MODEL := classifier/models/default.skops

.PHONY: run test model evaluate bench lint peer clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Migrate, seed the demo newspaper once, and serve it (PORT overrides 5000).
PORT ?= 5000
run: $(BIN)/.installed
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi demo seed
	$(BIN)/flask --app wsgi run --host 127.0.0.1 --port $(PORT)

# The whole suite on SQLite, then the database tests again on PostgreSQL (CI always runs that
# pass; a laptop without a PostgreSQL server skips it with a message).
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
test: $(BIN)/.installed
	$(BIN)/python -m pytest -m "not postgres_only"
	@if [ "$$CI" = "true" ] || $(BIN)/python -c "import psycopg; psycopg.connect('$(subst +psycopg,,$(PG_TEST_URL))', connect_timeout=3).close()" 2>/dev/null; then \
	  echo "== PostgreSQL pass =="; \
	  TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest tests/moderation tests/auth; \
	else echo "PostgreSQL is not reachable at $(PG_TEST_URL): skipping the PostgreSQL pass (CI runs it)"; fi

# Reproduces the shipped model (fixed seeds: the same data gives the same version).
model: $(BIN)/.installed
	$(BIN)/python -m classifier train --data $(DATA) --out $(MODEL) --with-metrics

# The full evaluation: held-out split, leave-one-source-out, baseline, peer, robustness, curves.
evaluate: $(BIN)/.installed peer
	mkdir -p reports
	$(BIN)/python -m classifier evaluate --model $(MODEL) --data $(DATA) --out reports/evaluation > reports/evaluation.json

bench: $(BIN)/.installed
	$(BIN)/python -m classifier bench --data $(DATA)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The peer model pins its own scikit-learn, so it lives in a virtualenv of its own.
peer: .venv-peer/bin/.installed
.venv-peer/bin/.installed: bench/peer-requirements.txt
	$(PYTHON) -m venv .venv-peer && .venv-peer/bin/pip install -q -r bench/peer-requirements.txt
	touch $@

clean:
	rm -rf $(VENV) .venv-peer reports .pytest_cache
