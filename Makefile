# Trainyard. `make demo` runs the main job end to end on real data; `make test` runs the tests.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2

# Tests run against real PostgreSQL and Redis (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/trainyard
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

# Requirements: requirements/{web,worker,dev}.in, locked by `make lock` to *.lock (pip-tools).
# web: the web tier, no TensorFlow; worker: web + TensorFlow; dev: worker + test and lint
# tools. `make setup` installs the dev lock, since the test suite exercises all of it.
LOCKS := requirements/web.lock requirements/worker.lock requirements/dev.lock
PIP_TOOLS := var/pip-tools
PIP_COMPILE := $(PIP_TOOLS)/bin/pip-compile -q --strip-extras --allow-unsafe --no-emit-index-url \
	--no-emit-find-links

.PHONY: setup lock migrate run worker worker-maintenance demo test test-fast lint format bench \
	bench-serving hub-module chaos clean

$(STAMP): requirements/dev.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/dev.lock
	touch $(STAMP)

setup: $(STAMP)

# Re-lock after editing a requirements/*.in (pins already in a lock are kept; add
# --upgrade-package NAME to move one). pip-tools lives in its own venv, not in .venv. In
# order: worker.in is constrained by web.lock and dev.in by worker.lock, so the three agree.
lock:
	test -x $(PIP_TOOLS)/bin/pip-compile || \
		{ $(PY) -m venv $(PIP_TOOLS) && $(PIP_TOOLS)/bin/pip install -q pip-tools; }
	$(PIP_COMPILE) --output-file requirements/web.lock requirements/web.in
	$(PIP_COMPILE) --output-file requirements/worker.lock requirements/worker.in
	$(PIP_COMPILE) --output-file requirements/dev.lock requirements/dev.in

migrate: setup
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python scripts/run.py

# The pool child is replaced once it passes this RSS (KiB) or this many tasks: TensorFlow grows
# with every job (scripts/stack.py has the same defaults and why).
TRAINYARD_TRAINING_MAX_MEMORY_PER_CHILD_KIB ?= 1048576
TRAINYARD_TRAINING_MAX_TASKS_PER_CHILD ?= 100
worker: setup
	$(BIN)/celery -A workers.celery_app worker -Q training-cpu -c 1 --loglevel INFO \
		--max-memory-per-child $(TRAINYARD_TRAINING_MAX_MEMORY_PER_CHILD_KIB) \
		--max-tasks-per-child $(TRAINYARD_TRAINING_MAX_TASKS_PER_CHILD)

# Celery beat and its periodic tasks, on their own worker (never behind a training job).
worker-maintenance: setup
	$(BIN)/celery -A workers.celery_app worker -Q maintenance -c 1 -B \
		--schedule var/celerybeat-schedule --loglevel INFO

demo: migrate
	$(BIN)/python scripts/demo.py

# tests/browser (the console in Chromium on pytest-django's live server) runs in a pytest
# process of its own: its live-server flush left later serialized_rollback tests with
# duplicate content types when they shared one.
test: setup
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q \
		--ignore=tests/browser $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q tests/browser \
		$(PYTEST_ARGS)

test-fast: setup
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q -m "not e2e" $(PYTEST_ARGS)

# CI runs this before `make test`. import-linter checks the layer rules of DESIGN §5, mypy the
# types (both configured in pyproject.toml). mypy's Django plugin imports saas.settings, which
# needs no environment: without DATABASE_URL it falls back to SQLite and connects to nothing.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python bench/train_defaults.py
	$(BIN)/python bench/apikey_auth.py
	$(BIN)/python bench/dashboard_render.py
	$(BIN)/python bench/control_plane.py

# Trainyard's data plane vs BentoML and KServe on the same SavedModel (issue 10): trains on its
# own database (BENCH_DATABASE_URL, default trainyard_bench) and Redis db 4, installs the peers
# into var/bench/venvs/, drives all with wrk; BENCH_SECONDS a cell (default 8). Not run by CI.
bench-serving: setup
	$(BIN)/python bench/serving.py

hub-module: setup
	$(BIN)/python manage.py build_hub_module var/hub/mobilenet_v2

clean:
	rm -rf var

# Trainyard under faults (issue 11): a private PostgreSQL and Redis under var/chaos, the stack on
# loopback, 3 tenants, CHAOS_JOBS trainings and a prediction stream while workers, the data plane,
# Redis and PostgreSQL are killed; prints a table of checks and figures, exits 1 when one fails.
# CHAOS_SHORT=1 is the CI-sized run. Not run by CI's `make test`.
chaos: setup
	$(BIN)/python scripts/chaos.py
