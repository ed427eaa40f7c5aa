# Correlator - one entry point for developers and CI.
#   make run     the whole system locally (moto as the embedded AWS), no AWS account needed; state kept
#   make clean-state   forget the local stack's saved state (the next `make run` starts fresh)
#   make test    lint + every test (unit, integration, local stack, template/build)
#   make lint    ruff, mypy, cfn-lint, checkov (template.yaml; findings not fixed are suppressed in place)
#   make build   sam build (python3.13/arm64 wheels, no Docker)
#   make bench   benchmark figures (ratios against a baseline measured in the same run; BENCH_LOCAL_EVENTS=0
#                skips the local stack's load figure)
#   make deploy  sam build && sam deploy (uses samconfig.toml; add --guided the first time)

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
# checkov pins its own boto3: it gets a virtualenv of its own, like the SAM CLI.
CHECKOV_VENV ?= .venv-checkov
PY := $(VENV)/bin/python
comma := ,
SAM := $(SAM_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0
export SAM_CLI := $(abspath $(SAM))
export PYTHONPATH := $(CURDIR)/layers/core:$(CURDIR)

.PHONY: run clean-state test lint format build bench deploy openapi core-schemas sam-env clean

# Installs into virtualenv $(1) with uv when it can be had (seconds, where pip takes minutes): the uv on PATH,
# else uv fetched from PyPI into .uv/ by pip; with pip otherwise. $(2): what to install (pip arguments).
define venv_install
	@uv=$$(command -v uv || true); \
	if [ -z "$$uv" ]; then \
	  [ -x .uv/bin/uv ] || $(PYTHON) -m pip install --quiet --target .uv uv >/dev/null 2>&1 || true; \
	  if [ -x .uv/bin/uv ]; then uv="$(CURDIR)/.uv/bin/uv"; fi; \
	fi; \
	if [ -n "$$uv" ]; then \
	  echo "installing $(2) into $(1) with uv"; \
	  [ -x $(1)/bin/python ] || "$$uv" venv --quiet --seed --python $(PYTHON) $(1); \
	  "$$uv" pip install --quiet --python $(1)/bin/python $(2); \
	else \
	  echo "installing $(2) into $(1) with pip (no uv)"; \
	  [ -x $(1)/bin/python ] || $(PYTHON) -m venv $(1); \
	  $(1)/bin/pip install --quiet $(2); \
	fi
endef

# `make run` needs only requirements-run.txt; the dev tools (requirements-dev.txt) come on top for lint/test.
$(VENV)/.run-installed: requirements-run.txt layers/core/requirements.txt $(wildcard functions/*/requirements.txt)
	$(call venv_install,$(VENV),-r requirements-run.txt)
	touch $@

$(VENV)/.installed: $(VENV)/.run-installed requirements-dev.txt
	$(call venv_install,$(VENV),-r requirements-dev.txt)
	touch $@

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet "checkov>=3.3,<3.4"
	touch $@

$(SAM_VENV)/.installed:
	$(call venv_install,$(SAM_VENV),'aws-sam-cli>=1.170$(comma)<2')
	touch $@

# The local stack (ARGS: e.g. -v for the handlers' logs on the console, --fresh to ignore the saved state).
# Its state (moto: buckets, queues, rules, tables...) is kept in CORRELATOR_STATE_DIR (default .local-state/).
run: $(VENV)/.run-installed
	$(PY) -m local $(ARGS)

clean-state:
	rm -rf "$${CORRELATOR_STATE_DIR:-.local-state}"

lint: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
		--skip-download --compact --quiet

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

core-schemas: $(VENV)/.installed  # the compiled schemas of tools.coreschema (a test fails when one is stale)
	$(PY) -m tools.coreschema

sam-env: $(VENV)/.installed  # local/sam-env.json: sam local --env-vars pointing the functions at make run's moto
	$(PY) -m local.sam_local

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .uv
