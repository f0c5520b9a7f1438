# One entry point for people and CI: `make demo` runs the app, `make test` runs the tests.
# Both create .venv and install what they need on a fresh machine.

# Prefer python3.12 (the Lambda runtime), also where pyenv has it but does not expose it.
PYTHON ?= $(shell for p in python3.12 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 python3; do \
	$$p -c 'import sys' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
export CRIMECAST_DATA_DIR ?= $(abspath ../shared/data)
# pytest-xdist workers for the main suite: one per core (this machine and CI have 2).
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: venv test pytest lint unit demo demo-fresh accuracy bench clean sam-tools validate build layer layer-test sam-layer-test

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check shared functions local tests bench
	cd shared && ../$(BIN)/lint-imports ../pyproject.toml

# Template checks, sam build, the layer tests and the browser tests first; the main suite
# last, so its summary is the closing line.
# The steps, in order, are TEST_STEPS (bench/test_suite.py times each).
TEST_STEPS := lint validate build layer-test sam-layer-test e2e pytest
test:
	@for step in $(TEST_STEPS); do $(MAKE) --no-print-directory $$step || exit 1; done

pytest: venv
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

unit: venv
	$(BIN)/pytest -q tests/unit

# The whole service on one machine: embedded AWS (moto), resources from template.yaml,
# data from the snapshot, every series trained, API + web UI on http://127.0.0.1:$${CRIMECAST_PORT:-3000}.
demo: venv
	$(BIN)/python -m local.stack

# The same, training every series even when an earlier start's models fit the data and code.
demo-fresh: venv
	$(BIN)/python -m local.stack --fresh

accuracy: venv
	$(BIN)/python bench/accuracy.py

# Each benchmark writes bench/results/<name>.json (figures, commit, load) and prints it.
bench: venv layer
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/cold_import.py
	$(BIN)/python bench/layer.py

# --- AWS SAM: template checks, sam build and the Prophet layer (no Docker, no AWS account) ---
# aws-sam-cli pins its own boto3/click: it lives in its own virtualenv.
SAM_VENV := .venv-sam
SAM_BIN := $(SAM_VENV)/bin
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}
# The 3.12 interpreter found above, if it is one: `sam build` needs python3.12 on PATH.
PY312 := $(shell $(PYTHON) -c 'import sys; print(sys.executable if sys.version_info[:2] == (3, 12) else "")' 2>/dev/null)
LAYER_DIR := out/layer/prophet

$(SAM_BIN)/.installed:
	test -x $(SAM_BIN)/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_BIN)/python -m pip install -qq --upgrade pip
	$(SAM_BIN)/python -m pip install -qq aws-sam-cli cfn-lint
	touch $@

sam-tools: $(SAM_BIN)/.installed

validate: sam-tools
	$(SAM_BIN)/cfn-lint template.yaml
	$(SAM_ENV) $(SAM_BIN)/sam validate --lint --template-file template.yaml

build: sam-tools
	@if [ -z "$(PY312)" ]; then \
		echo "sam build skipped: no python3.12 interpreter found (the Lambda runtime; PYTHON=$(PYTHON))"; \
	else \
		echo "sam build with $(PY312)"; \
		PATH="$(dir $(PY312)):$$PATH" $(SAM_ENV) $(SAM_BIN)/sam build --cached --parallel --template-file template.yaml; \
	fi

# The Prophet layer without SAM, as Lambda would unzip it, into $(LAYER_DIR)/python.
layer: $(LAYER_DIR)/.built

$(LAYER_DIR)/.built: layers/prophet/Makefile layers/prophet/requirements.txt
	rm -rf $(LAYER_DIR)
	$(MAKE) --no-print-directory -C layers/prophet build-ProphetLayer ARTIFACTS_DIR=$(abspath $(LAYER_DIR)) PYTHON312=$(PY312)
	touch $@

layer-test: venv layer
	CRIMECAST_LAYER_DIR=$(abspath $(LAYER_DIR)) $(BIN)/pytest -q -m layer tests/infra/test_prophet_layer.py

# The same checks on what `sam build` made, i.e. what `sam deploy` uploads (skipped without a build).
SAM_LAYER_DIR := .aws-sam/build/ProphetLayer
sam-layer-test: venv
	@if [ -d $(SAM_LAYER_DIR)/python ]; then \
		CRIMECAST_LAYER_DIR=$(abspath $(SAM_LAYER_DIR)) $(BIN)/pytest -q -m layer tests/infra/test_prophet_layer.py; \
	else echo "sam-layer-test skipped: no $(SAM_LAYER_DIR) (run make build)"; fi

clean:
	rm -rf $(VENV) .pytest_cache

# --- Browser tests of the web page (web/) against a fake API (tests/e2e/fake_api.py) ---
# Debian's chromium, installed if missing, driven by the npm package playwright-core: no browser
# download. The fake API needs only the standard library: the venv's python if there is one.
E2E_DIR := tests/e2e
CHROMIUM := /usr/bin/chromium
.PHONY: e2e
e2e:
	@test -x $(CHROMIUM) || { echo "Installing Debian's chromium"; apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }
	cd $(E2E_DIR) && npm ci --no-audit --no-fund
	PYTHON=$$(test -x $(BIN)/python && echo $(abspath $(BIN)/python) || echo python3) node --test $(E2E_DIR)/
