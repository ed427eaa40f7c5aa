# Correlator - one entry point for developers and CI.
#   make run     the whole system locally (moto as the embedded AWS), no AWS account needed
#   make test    lint + every test (unit, integration, local stack, template/build)
#   make lint    ruff, mypy, cfn-lint
#   make build   sam build (python3.13/arm64 wheels, no Docker)
#   make bench   benchmark figures (ratios against a baseline measured in the same run)
#   make deploy  sam build && sam deploy (uses samconfig.toml; add --guided the first time)

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0
export SAM_CLI := $(abspath $(SAM))
export PYTHONPATH := $(CURDIR)/layers/core:$(CURDIR)

.PHONY: run test lint format build bench deploy openapi clean

$(VENV)/.installed: requirements-dev.txt layers/core/requirements.txt $(wildcard functions/*/requirements.txt)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet "aws-sam-cli>=1.170,<2"
	touch $@

run: $(VENV)/.installed
	$(PY) -m local

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml

test: lint $(SAM_VENV)/.installed
	$(VENV)/bin/pytest

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

build: $(SAM_VENV)/.installed
	$(SAM) build

bench: $(VENV)/.installed
	$(PY) -m bench

deploy: build
	$(SAM) deploy

openapi: $(VENV)/.installed
	$(PY) -m docs.openapi

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
