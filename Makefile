# One entry point for people and CI: `make demo` runs the app, `make test` runs the tests.
# Both create .venv and install what they need on a fresh machine.

# python3.12 (the Lambda runtime, and the Python the lock files are resolved for), also where
# pyenv has it but does not expose it.
PYTHON ?= $(shell for p in python3.12 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
export CRIMECAST_DATA_DIR ?= $(abspath ../shared/data)
# pytest-xdist workers for the main suite: one per core (this machine and CI have 2).
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: lock upgrade venv test pytest lint unit demo demo-fresh accuracy bench clean sam-tools validate build layer layer-test sam-layer-test scan-tools scan

# Every install comes from a lock file with hashes (requirements/*.lock, made by `make lock`):
# a fresh clone gets exactly what the last green run tested. pip-sync semantics: --no-deps,
# so nothing outside the lock slips in.
PIP_LOCKED = python -m pip install --quiet --require-hashes --no-deps --only-binary=:all:

$(BIN)/.installed: requirements/dev.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3.12 not found (the Lambda runtime; the lock files are for it)"; exit 1; }
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_LOCKED) -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check shared functions local tests bench
	$(BIN)/lint-imports pyproject.toml

# Template checks, sam build, the layer tests and the browser tests first; the main suite
# last, so its summary is the closing line.
# The steps, in order, are TEST_STEPS (bench/test_suite.py times each).
TEST_STEPS := lint scan validate build layer-test sam-layer-test e2e pytest
test:
	@for step in $(TEST_STEPS); do $(MAKE) --no-print-directory $$step || exit 1; done

# CRIMECAST_CHECK_ROLES=1: at the end, every grant of template.yaml must have been used by an AWS
# call recorded under IAM during the run (local/aws/iam_calls.py; it takes the whole suite).
# The layer tests are left out here: layer-test and sam-layer-test run them on the built layers.
pytest: venv
	CRIMECAST_CHECK_ROLES=1 $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not layer"

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

$(SAM_BIN)/.installed: requirements/sam.lock
	test -x $(SAM_BIN)/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_BIN)/$(PIP_LOCKED) -r requirements/sam.lock
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

# --- Scanners: known vulnerabilities in every lock, the template's checks, the code's ---
# pip-audit, checkov and bandit, from requirements/scan.lock, in their own virtualenv (.venv-scan):
# checkov pins many packages (boto3, pydantic ...) that must not move the app's or SAM's.
# Quiet when all is well: one line per scanner. Every exception is explained where it is made:
# checkov's in template.yaml (Metadata checkov skip, with its reason), bandit's on the line
# (`# nosec BXXX - reason`), pip-audit's in AUDIT_IGNORE below (one `--ignore-vuln ID` a line,
# with its reason in a comment above it).
SCAN_VENV := .venv-scan
SCAN_BIN := $(SCAN_VENV)/bin
LOCK_FILES := requirements/dev.lock requirements/sam.lock requirements/scan.lock \
	layers/prophet/requirements.txt shared/requirements.txt
# ecdsa (scan.lock only, a dependency of checkov): CVE-2024-23342, a Minerva timing side channel
# on P-256 signing that its maintainers will not fix. The scanners' venv signs nothing; neither
# the app nor a Lambda layer has ecdsa.
AUDIT_IGNORE := --ignore-vuln CVE-2024-23342
# pip-audit's PyPI service reads https://pypi.org/pypi/<name>/<version>/json; where that does not
# answer (a registry mirror that serves only the project pages) nothing can be audited: the step
# says so and goes on, unless CRIMECAST_REQUIRE_AUDIT=1 (GitHub's CI), where it fails.
AUDIT_PROBE := https://pypi.org/pypi/pip/24.0/json

$(SCAN_BIN)/.installed: requirements/scan.lock
	test -x $(SCAN_BIN)/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_BIN)/$(PIP_LOCKED) -r requirements/scan.lock
	touch $@

scan-tools: $(SCAN_BIN)/.installed

scan: scan-tools
	@if $(SCAN_BIN)/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15)' \
		$(AUDIT_PROBE) 2>/dev/null; then \
		for lock in $(LOCK_FILES); do \
			$(SCAN_BIN)/pip-audit --require-hashes --disable-pip --strict --vulnerability-service pypi \
				--progress-spinner off $(AUDIT_IGNORE) -r $$lock >/tmp/crimecast-pip-audit.$$$$ 2>&1 \
				|| { cat /tmp/crimecast-pip-audit.$$$$; rm -f /tmp/crimecast-pip-audit.$$$$; echo "pip-audit failed on $$lock"; exit 1; }; \
		done; rm -f /tmp/crimecast-pip-audit.$$$$; \
		echo "pip-audit: no known vulnerability in $(words $(LOCK_FILES)) lock files"; \
	elif [ "$$CRIMECAST_REQUIRE_AUDIT" = 1 ]; then \
		echo "pip-audit: $(AUDIT_PROBE) does not answer: the locks cannot be audited"; exit 1; \
	else \
		echo "pip-audit: NOT RUN - PyPI's per-version JSON API ($(AUDIT_PROBE)) does not answer here; the locks were not audited"; \
	fi
	@$(SCAN_BIN)/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml \
		>/tmp/crimecast-checkov.$$$$ 2>&1 \
		&& { echo "checkov: $$(grep -m1 -o 'Passed checks.*' /tmp/crimecast-checkov.$$$$)"; rm -f /tmp/crimecast-checkov.$$$$; } \
		|| { cat /tmp/crimecast-checkov.$$$$; rm -f /tmp/crimecast-checkov.$$$$; exit 1; }
	@$(SCAN_BIN)/bandit --recursive --quiet --severity-level medium --confidence-level low \
		--format custom --msg-template '{relpath}:{line}: {test_id} [{severity}/{confidence}] {msg}' \
		shared functions local && echo "bandit: no medium or high issue unexplained (shared functions local)"

# --- Browser tests of the web page (web/) against a fake API (tests/e2e/fake_api.py) ---
# Debian's chromium, installed if missing, driven by the npm package playwright-core: no browser
# download. The fake API needs only the standard library: the venv's python if there is one.
E2E_DIR := tests/e2e
CHROMIUM := /usr/bin/chromium
# Wait for another apt or dpkg (an unattended upgrade, another checkout's install) instead of failing
# at once: install waits for dpkg's lock up to 10 minutes; update takes the package lists' lock,
# which that option does not cover, so while another holds it, it is tried again every 10 s for as
# long. Any other failure of update fails at once.
APT_WAIT := -o DPkg::Lock::Timeout=600
APT_UPDATE := for try in $$(seq 60); do out=$$(apt-get $(APT_WAIT) update -qq 2>&1) && break; echo "$$out" >&2; \
	case "$$out" in *"Could not get lock"*) ;; *) exit 1;; esac; test $$try = 60 && exit 1; \
	echo "apt-get update: another apt holds its lock; trying again in 10 s"; sleep 10; done
.PHONY: e2e
e2e:
	@test -x $(CHROMIUM) || { echo "Installing Debian's chromium"; $(APT_UPDATE); \
		DEBIAN_FRONTEND=noninteractive apt-get $(APT_WAIT) install -y -qq chromium fonts-dejavu-core >/dev/null; }
	cd $(E2E_DIR) && npm ci --no-audit --no-fund
	PYTHON=$$(test -x $(BIN)/python && echo $(abspath $(BIN)/python) || echo python3) node --test $(E2E_DIR)/

# --- Lock files: requirements*.txt, requirements/*.in and the layers' requirements.in, resolved with hashes ---
# uv resolves (pinned here, in its own virtualenv); pip installs. `make lock` keeps every pin
# that still satisfies the .in files; `make upgrade` moves each to its newest release and runs
# the tests, so an upgrade is a change of its own, reviewed with its test run.
UV_VERSION := 0.13.8
TOOLS_BIN := .venv-tools/bin
UV := $(TOOLS_BIN)/uv
UV_COMPILE = $(UV) pip compile --quiet --generate-hashes --no-header --python-version 3.12 $(UV_FLAGS)
LAYER_PLATFORM := x86_64-manylinux_2_28

$(UV):
	test -x $(TOOLS_BIN)/python || $(PYTHON) -m venv .venv-tools
	$(TOOLS_BIN)/python -m pip install --quiet uv==$(UV_VERSION)

lock: $(UV)
	$(UV_COMPILE) --universal requirements-dev.txt -o requirements/dev.lock
	$(UV_COMPILE) --universal requirements/sam.in -o requirements/sam.lock
	$(UV_COMPILE) --universal requirements/scan.in -o requirements/scan.lock
# The layers run on Lambda (Linux x86_64, Python 3.12), with the versions the tests ran.
	$(UV_COMPILE) --python-platform $(LAYER_PLATFORM) -c requirements/dev.lock \
		layers/prophet/requirements.in -o layers/prophet/requirements.txt
	$(UV_COMPILE) --python-platform $(LAYER_PLATFORM) -c requirements/dev.lock \
		shared/requirements.in -o shared/requirements.txt

upgrade:
	$(MAKE) --no-print-directory lock UV_FLAGS=--upgrade
	cd $(E2E_DIR) && npm update --no-audit --no-fund
	$(MAKE) --no-print-directory test
