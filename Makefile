# Catalog Sync: `make demo` loads a vendor file end to end; `make test` runs every check.
# Everything a run leaves goes under var/ (gitignored); `make clean` removes it.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Renamed when the install step changes, so an existing .venv runs it again once.
STAMP  := $(VENV)/.installed-bytecode-stamp
UV_VERSION := 0.13.9

export CATALOG_SYNC_HOME ?= $(CURDIR)/var
export AIRFLOW_HOME      := $(CATALOG_SYNC_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER    := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES  := False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN := sqlite:///$(AIRFLOW_HOME)/airflow.db
export AIRFLOW__CORE__EXECUTOR := LocalExecutor
export AIRFLOW__LOGGING__BASE_LOG_FOLDER := $(AIRFLOW_HOME)/logs
export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK := False
export AIRFLOW__API__PORT ?= 8080
export PYTHONPATH := $(CURDIR)/include:$(CURDIR)/plugins:$(CURDIR)/dags

FILE ?=

WORKERS ?= 2
POSTGRES_URL ?=
REDIS_URL ?=
API_HOST ?= 127.0.0.1
STORAGE_URL ?=
STORAGE_CONN_ID ?=

.PHONY: help venv bytecode demo test lint typecheck pytest airflow cluster cluster-status cluster-down clean lock bench bench-quick

help:
	@echo "make demo    - load the sample vendor file (or FILE=path) into the ILS emulator and print the run report"
	@echo "               (ILS=folio: into the FOLIO emulator, through the demo_folio vendor)"
	@echo "make test    - ruff, mypy and pytest against real Redis, the ILS emulator and Airflow"
	@echo "make airflow - Airflow under its scheduler (LocalExecutor, SQLite) with the UI on AIRFLOW__API__PORT (8080)"
	@echo "make cluster - Airflow on CeleryExecutor (Postgres, Redis) with WORKERS=2 Celery workers, in the background"
	@echo "               [POSTGRES_URL=postgresql+psycopg2://USER:PASSWORD@HOST/airflow REDIS_URL=redis://HOST:6379]"
	@echo "               [API_HOST=address workers reach STORAGE_URL=sftp://HOST/PATH STORAGE_CONN_ID=conn]"
	@echo "make cluster-status - each cluster component up/down, the api-server's health, the workers answering"
	@echo "make cluster-down    - stop the cluster's components and workers"
	@echo "make clean   - remove var/ (Airflow home, state, staging, reports, emulator database)"

venv: $(STAMP)

# uv installs the fully pinned set in seconds; pip only bootstraps uv itself. uv writes no
# bytecode, and where PYTHONDONTWRITEBYTECODE is set (as in this project's sessions) Python
# caches none either: every Airflow task process then compiled from source whatever it imports
# that its parent had not (the DAG file's imports, the commit stack), about three times its
# start-up (bench/results/2026-12-01-startup). uv compiles what it installs; compileall then
# catches a venv installed before (uv skips the step when it installs nothing): ~1.5 s if done.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.txt -r requirements-dev.txt
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null
	touch $(STAMP)

# Re-resolve the pins after editing requirements*.in.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 requirements.in -o requirements.txt
	$(VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 requirements-dev.in -o requirements-dev.txt

# Our own modules' bytecode, for the same reason: each task process imports them when it parses
# the DAG file. Up to date it costs ~0.05 s; a stale .pyc is ignored by Python, never wrong.
bytecode: $(STAMP)
	@$(PY) -m compileall -q include/catalog_sync plugins dags

demo: $(STAMP) bytecode
	$(PY) -m catalog_sync demo $(if $(FILE),--file "$(FILE)") $(if $(ILS),--ils "$(ILS)")

# The port is the one setting: the UI, the REST API and the tasks' execution API all follow it.
airflow: $(STAMP) bytecode
	$(PY) -m catalog_sync airflow-ui --port $(AIRFLOW__API__PORT)

# In the background, as a service: `make cluster-status` and `make cluster-down` find it again
# through its pid files (var/run/), and `make clean` stops it too.
cluster: $(STAMP) bytecode
	$(PY) -m catalog_sync cluster up --workers $(WORKERS) --api-host $(API_HOST) --api-port $(AIRFLOW__API__PORT) \
		$(if $(POSTGRES_URL),--postgres-url "$(POSTGRES_URL)") $(if $(REDIS_URL),--redis-url "$(REDIS_URL)") \
		$(if $(STORAGE_URL),--storage-url "$(STORAGE_URL)") $(if $(STORAGE_CONN_ID),--storage-conn-id "$(STORAGE_CONN_ID)")

cluster-status: $(STAMP)
	$(PY) -m catalog_sync cluster status

cluster-down: $(STAMP)
	$(PY) -m catalog_sync cluster down

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) bytecode
	$(PY) -m pytest $(PYTEST_ARGS)

# The deployment tests (real schedulers, Celery workers on namespace hosts) mostly wait on
# Airflow and the ILS, so they run beside the rest instead of after it: about half the time.
SLOW_TESTS := tests/production tests/distributed
test: lint typecheck bytecode
	@mkdir -p $(CATALOG_SYNC_HOME)
	@$(PY) -m pytest $(SLOW_TESTS) $(PYTEST_ARGS) > $(CATALOG_SYNC_HOME)/deployment-tests.log 2>&1 & \
	  slow=$$!; \
	  $(PY) -m pytest $(addprefix --ignore=,$(SLOW_TESTS)) $(PYTEST_ARGS); fast=$$?; \
	  wait $$slow; slowrc=$$?; \
	  echo "---- $(SLOW_TESTS) ($(CATALOG_SYNC_HOME)/deployment-tests.log) ----"; \
	  cat $(CATALOG_SYNC_HOME)/deployment-tests.log; \
	  test $$fast -eq 0 -a $$slowrc -eq 0

bench-quick: $(STAMP) bytecode
	$(PY) bench/run.py --quick

bench: $(STAMP) bytecode
	$(PY) bench/run.py

clean:
	-$(PY) -m catalog_sync devstack down 2>/dev/null
	rm -rf var
