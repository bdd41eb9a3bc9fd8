# multicloud-dr: the two commands of the quick start are `make demo` and `make test`.
# Both install what they need first and are safe to run again (a second install takes seconds).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
AZURITE_VERSION := 3.35.0
DEBIAN_PACKAGES := mariadb-server mariadb-client postgresql zstd nodejs npm libmariadb-dev pkg-config gcc faketime chromium chromium-driver redis-server
INSTALLED := $(VENV)/.installed
AZURITE := .tools/azurite/.installed-$(AZURITE_VERSION)

.PHONY: help install system-packages demo failover-demo scaleout-demo test lint bench lab-up lab-down lab-status airflow

help:
	@echo "make demo     bring the local DR lab up and run the main DAG on it"
	@echo "make failover-demo  an emergency failover of the lab by Airflow, approved by a second user"
	@echo "make scaleout-demo  the DAGs on Airflow with the CeleryExecutor (PostgreSQL, Redis, two workers)"
	@echo "make test     ruff + the whole test suite (unit, integration on the lab, e2e with dag.test())"
	@echo "make install  .venv with the pinned packages, Debian packages, Azurite (done by demo/test)"
	@echo "make bench    benchmarks: ratios against baselines measured in the same run (bench/README.md)"
	@echo "make lab-up | lab-down | lab-status | airflow"

install: system-packages $(INSTALLED) $(AZURITE)
	@scripts/install-checkov.sh

system-packages:
	@scripts/install-system-packages.sh $(DEBIAN_PACKAGES)

# Airflow's constraints file is not reachable here, so requirements*.txt pin every version and
# uv installs exactly those; --compile-bytecode cuts `import airflow` from ~7 s to ~3 s.
$(INSTALLED): requirements.txt requirements-dev.txt pyproject.toml | system-packages
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "): set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -q --no-deps -e .
	@touch $@

# Project-local, not global: Azurite 3.35.0 is the last release that runs on Node 20.
$(AZURITE): | system-packages
	@mkdir -p .tools/azurite
	npm install --prefix .tools/azurite --no-audit --no-fund --loglevel=error azurite@$(AZURITE_VERSION)
	@touch $@

demo: install
	$(BIN)/drctl demo

failover-demo: install
	$(BIN)/drctl failover-demo

scaleout-demo: install
	$(BIN)/drctl scaleout-demo

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest

# Not part of `make test`: speed claims are measured here, as ratios, never asserted by timed tests.
bench: install
	$(BIN)/python bench/backup.py $(BENCH_ARGS)
	$(BIN)/python bench/restore.py $(BENCH_ARGS)
	$(BIN)/python bench/binlog.py

lab-up: install
	$(BIN)/drctl lab up

lab-down:
	@if [ -x $(BIN)/drctl ]; then $(BIN)/drctl lab down; else echo "no .venv: nothing of the lab can be running"; fi

lab-status: install
	$(BIN)/drctl lab status

# The Airflow UI on the lab: scheduler, dag-processor, triggerer and api-server with SQLite.
airflow: lab-up
	@. .lab/env; echo "Airflow UI: $$AIRFLOW__API__BASE_URL  user admin, password in $$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
	exec $(BIN)/drctl lab airflow
