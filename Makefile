# Two commands for a newcomer: `make run` and `make test`. Everything else is for maintainers.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
MODEL := classifier/models/default.skops

.PHONY: run test model evaluate bench lint peer isso bench-peer clean fuzz

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

# Production-like: migrations, then gunicorn with gunicorn.conf.py on 127.0.0.1:8000 (PORT or
# GUNICORN_BIND change it). APP_ENV=production needs a SECRET_KEY; nothing is generated.
.PHONY: serve worker serve-env
serve: serve-env $(BIN)/.installed
	APP_ENV=$${APP_ENV:-production} DATABASE_STATEMENT_TIMEOUT_MS=0 $(BIN)/flask --app wsgi db upgrade
	APP_ENV=$${APP_ENV:-production} $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

serve-env:
	@if [ -z "$$SECRET_KEY" ] && [ "$${APP_ENV:-production}" = production ]; then \
	  echo "make serve runs with APP_ENV=production, which needs SECRET_KEY (32+ random characters):" >&2; \
	  echo "  export SECRET_KEY=\$$(python3 -c 'import secrets; print(secrets.token_hex(32))')" >&2; \
	  echo "Keep it stable across restarts (sessions and IP hashes depend on it); see docs/deployment.md." >&2; \
	  exit 1; fi

# The RQ worker for background jobs (needs REDIS_URL). Its statement timeout is longer than
# the web's: retraining and digests read more rows than a request does.
worker: $(BIN)/.installed
	DATABASE_STATEMENT_TIMEOUT_MS=$${WORKER_STATEMENT_TIMEOUT_MS:-60000} $(BIN)/flask --app wsgi jobs worker

# The whole suite on SQLite, then the database tests again on PostgreSQL + Redis, as deployed
# (CI always runs that pass; a laptop without the servers skips it, or Redis, with a message).
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/14
test: $(BIN)/.installed
	$(BIN)/python -m pytest -m "not postgres_only"
	@if [ "$$CI" = "true" ] || $(BIN)/python -c "import psycopg; psycopg.connect('$(subst +psycopg,,$(PG_TEST_URL))', connect_timeout=3).close()" 2>/dev/null; then \
	  if [ "$$CI" = "true" ] || $(BIN)/python -c "import redis; redis.Redis.from_url('$(REDIS_TEST_URL)', socket_connect_timeout=3).ping()" 2>/dev/null; then \
	    echo "== PostgreSQL + Redis pass =="; redis="$(REDIS_TEST_URL)"; \
	  else echo "== PostgreSQL pass (Redis is not reachable at $(REDIS_TEST_URL); CI uses it) =="; redis=""; fi; \
	  TEST_DATABASE_URL=$(PG_TEST_URL) TEST_REDIS_URL=$$redis $(BIN)/python -m pytest tests/moderation tests/auth; \
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

# The JSON API fuzzed against its OpenAPI document: every operation, valid and invalid requests,
# FUZZ_EXAMPLES each (make test sends a few; see bench/fuzz_api.py). Exit 1 on any failure.
FUZZ_EXAMPLES ?= 500
fuzz: $(BIN)/.installed
	$(BIN)/python bench/fuzz_api.py --examples $(FUZZ_EXAMPLES) $(FUZZ_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The peer model pins its own scikit-learn, so it lives in a virtualenv of its own.
peer: .venv-peer/bin/.installed
.venv-peer/bin/.installed: bench/peer-requirements.txt
	$(PYTHON) -m venv .venv-peer && .venv-peer/bin/pip install -q -r bench/peer-requirements.txt
	touch $@

# Isso, the peer comment server of the load comparison, in a virtualenv of its own.
isso: .venv-isso/bin/.installed
.venv-isso/bin/.installed: bench/isso-requirements.txt
	$(PYTHON) -m venv .venv-isso && .venv-isso/bin/pip install -q -r bench/isso-requirements.txt
	touch $@

# Our service and Isso under the same load, one after the other, side by side (SQLite;
# PEER_ARGS="--db postgres --redis" for PostgreSQL + Redis).
bench-peer: $(BIN)/.installed isso
	$(BIN)/python bench/peer_load.py $(PEER_ARGS)

clean:
	rm -rf $(VENV) .venv-peer reports .pytest_cache
