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

.PHONY: setup migrate run worker demo test test-fast lint format bench hub-module clean

$(STAMP): requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python scripts/run.py

worker: setup
	$(BIN)/celery -A workers.celery_app worker -Q training-cpu,inference -c 1 --loglevel INFO

demo: migrate
	$(BIN)/python scripts/demo.py

test: setup
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q $(PYTEST_ARGS)

test-fast: setup
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q -m "not e2e" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python bench/train_defaults.py
	$(BIN)/python bench/apikey_auth.py
	$(BIN)/python bench/dashboard_render.py

hub-module: setup
	$(BIN)/python manage.py build_hub_module var/hub/mobilenet_v2

clean:
	rm -rf var
