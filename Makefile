# The README's commands. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint format lock bench

$(VENV)/.installed: requirements.lock $(wildcard locale/*/LC_MESSAGES/*.po)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python scripts/compile_messages.py
	touch $@

install: $(VENV)/.installed

run: install
	scripts/run.sh

test: install
	scripts/redis.sh ensure
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks print one JSON line each. Use PostgreSQL: DATABASE_URL=postgres://… make bench
BENCH_RECIPIENTS ?= 50000
bench: install
	scripts/redis.sh ensure
	$(BIN)/python manage.py bench_send --recipients $(BENCH_RECIPIENTS) --esp postmark
	$(BIN)/python manage.py bench_send --recipients $(BENCH_RECIPIENTS) --esp smtp
	$(BIN)/python manage.py bench_sign --requests 20000 --concurrency 50
	$(BIN)/python manage.py bench_sign --requests 5000 --concurrency 50 --returning 0.5
	$(BIN)/python manage.py bench_sign --requests 5000 --concurrency 50 --server gunicorn

# Re-resolve exact versions after changing pyproject.toml's dependencies.
lock: install
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
