# Two commands that do all set-up and can be run again:
#   make run    creates .venv if missing, installs, builds the demo index on first run, serves
#   make test   the same set-up, then the tests (what CI runs, from .ci/run)
# People who manage their own environment: `make run VENV=` (or the plain pip commands in the README)
# uses the python3 on PATH instead of .venv.
PYTHON ?= python3
VENV ?= .venv
INDEX ?= indexes/default
HOST ?= 127.0.0.1
PORT ?= 7860

ifeq ($(strip $(VENV)),)
PY := $(PYTHON)
STAMP := .installed
else
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
endif

.PHONY: setup index run test clean

setup: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# (re)install when pyproject.toml changes; the CPU torch wheel first, so nothing pulls a CUDA build; then
# pgvector and postgres_fdw built for this CPU into the test PostgreSQL (scripts/pgserver-extensions.sh)
$(STAMP): pyproject.toml $(if $(strip $(VENV)),$(VENV)/bin/python)
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test]"
	scripts/pgserver-extensions.sh $(PY)
	@touch $@

$(INDEX)/CURRENT: | $(STAMP)
	$(PY) -m askcolleague index build ingest/demo --index $(INDEX)

index: $(INDEX)/CURRENT

run: setup index
	$(PY) -m askcolleague serve --index $(INDEX) --host $(HOST) --port $(PORT)

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .installed
