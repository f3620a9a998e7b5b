# Every target brings its own virtualenv, so a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
AZ_CLI := $(VENV)/azure-cli/bin/az
PORT   ?= 8000
# `make run` binds VOICEBRIDGE_HOST (default 127.0.0.1, loopback only); HOST=0.0.0.0 make run overrides it.
HOST   ?=

.PHONY: run emulator test test-py test-js test-repeat bench lint system-deps refresh-test-data clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.runtime

# The real Azure CLI, so tests/infra can ask its parser about every az command the deploy scripts use. Its own
# environment inside .venv: azure-cli pins azure-keyvault-secrets 4.7 and the app needs 4.9 or later.
$(AZ_CLI): tests/infra/azure-cli.txt | $(VENV)/bin/python
	$(PYTHON) -m venv $(VENV)/azure-cli
	$(VENV)/azure-cli/bin/python -m pip install -q --disable-pip-version-check -r tests/infra/azure-cli.txt
	touch $@

# axe-core for the browser tests' accessibility checks, pinned by tests/browser/package-lock.json.
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.runtime
	$(PY) -m voicebridge serve $(if $(HOST),--host $(HOST)) --port $(PORT)

emulator: $(VENV)/.runtime
	$(PY) -m voicebridge emulator $(if $(HOST),--host $(HOST)) --port $${EMULATOR_PORT:-8765}

# Debian: apt installs what is missing. Elsewhere: says what is missing and how to get it; test-py then
# runs everything but the browser tests and says so.
system-deps:
	VENV=$(VENV) bash scripts/install-system-deps.sh

test: $(VENV)/.dev system-deps test-js test-py

test-js:
	@if [ -d tests/js ]; then node --test tests/js/; fi

# TESTS narrows the run, e.g. `make test-py TESTS=tests/browser`.
TESTS ?=
test-py: $(VENV)/.dev $(AZ_CLI) $(AXE)
	VENV=$(VENV) PY=$(PY) bash scripts/test-python.sh $(TESTS)

# The stability proof: the suite N times in a row, stopping at the first failure,
# e.g. `make test-repeat N=20 TESTS=tests/browser`.
N ?= 5
test-repeat: $(VENV)/.dev $(AZ_CLI) $(AXE) system-deps
	@for i in $$(seq 1 $(N)); do \
	  echo "== run $$i of $(N)"; \
	  if [ -z "$(TESTS)" ]; then $(MAKE) --no-print-directory test-js || { echo "== run $$i of $(N) failed"; exit 1; }; fi; \
	  VENV=$(VENV) PY=$(PY) bash scripts/test-python.sh -q -p no:cacheprovider $(TESTS) || { echo "== run $$i of $(N) failed"; exit 1; }; \
	done; echo "== $(N) of $(N) runs passed"

bench: $(VENV)/.dev system-deps
	$(PY) -m benchmarks

# tests/infra/data from a full copy of the upstream data (CHECK=1 compares only); see its SOURCE.md.
refresh-test-data: $(VENV)/.dev
	bash scripts/refresh-test-data.sh $(if $(CHECK),--check)

lint: $(VENV)/.dev
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache tests/browser/node_modules
