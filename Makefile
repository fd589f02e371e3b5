# The README's commands. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# The Debian packages each command needs, installed when missing (as root; otherwise it says
# what to install). A command lists them before `install`, which may need python3-venv.
SYSTEM_PACKAGES := system-packages-install system-packages-run system-packages-test \
	system-packages-bench
.PHONY: install run test lint format lock bench $(SYSTEM_PACKAGES)
$(SYSTEM_PACKAGES): system-packages-%:
	scripts/system_packages.sh $*

# requirements.lock is what production runs (the Dockerfile); requirements-dev.lock adds the
# `dev` extra, with the same versions of everything both hold.
# Order-only: python3-venv must be there before the venv is made, even under `make -j`.
$(VENV)/.installed: requirements.lock requirements-dev.lock $(wildcard locale/*/LC_MESSAGES/*.po) \
		| system-packages-install
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python scripts/compile_messages.py
	touch $@

install: system-packages-install $(VENV)/.installed

run: system-packages-run install
	scripts/run.sh

test: system-packages-test install
	scripts/redis.sh ensure
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks print one JSON line each. Use PostgreSQL: DATABASE_URL=postgres://… make bench
BENCH_RECIPIENTS ?= 50000
bench: system-packages-bench install
	scripts/redis.sh ensure
	$(BIN)/python manage.py bench_send --recipients $(BENCH_RECIPIENTS) --esp postmark --baseline
	$(BIN)/python manage.py bench_send --recipients $(BENCH_RECIPIENTS) --esp smtp --baseline
	$(BIN)/python manage.py bench_audience --repeat 20
	$(BIN)/python manage.py bench_sign --requests 20000 --concurrency 50
	$(BIN)/python manage.py bench_sign --requests 5000 --concurrency 50 --returning 0.5
	$(BIN)/python manage.py bench_sign --requests 5000 --concurrency 50 --server gunicorn
	$(BIN)/python manage.py bench_webhooks --events 20000 --concurrency 50
	$(BIN)/python manage.py bench_report --deliveries 1000000 --events 200000
	$(BIN)/python manage.py bench_import --rows 1000000 --supporters 2000000
	$(BIN)/python manage.py bench_api --supporters 2000000 --requests 2000 --signups 6000 --concurrency 20

# Re-resolve exact versions after changing pyproject.toml's dependencies. Versions already in
# a lock file are kept; the dev lock is constrained by the runtime one, so they never disagree.
PIP_COMPILE := $(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links
lock: install
	$(BIN)/python -m pip install --quiet pip-tools
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra dev --constraint requirements.lock --output-file requirements-dev.lock pyproject.toml
