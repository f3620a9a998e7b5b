# Every target brings its own virtualenv, so a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
AZ_CLI := $(VENV)/azure-cli/bin/az
PORT   ?= 8000
HOST   ?= 127.0.0.1

.PHONY: run emulator test test-py test-js bench lint system-deps clean

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

run: $(VENV)/.runtime
	$(PY) -m voicebridge serve --host $(HOST) --port $(PORT)

emulator: $(VENV)/.runtime
	$(PY) -m voicebridge emulator --host $(HOST) --port $${EMULATOR_PORT:-8765}

# Debian: apt installs what is missing. Elsewhere: says what is missing and how to get it; test-py then
# runs everything but the browser tests and says so.
system-deps:
	VENV=$(VENV) bash scripts/install-system-deps.sh

test: $(VENV)/.dev system-deps test-js test-py

test-js:
	@if [ -d tests/js ]; then node --test tests/js/; fi

test-py: $(VENV)/.dev $(AZ_CLI)
	VENV=$(VENV) PY=$(PY) bash scripts/test-python.sh

bench: $(VENV)/.dev system-deps
	$(PY) -m benchmarks

lint: $(VENV)/.dev
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
