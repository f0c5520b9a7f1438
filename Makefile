# One entry point for people and CI: `make demo` runs the app, `make test` runs the tests.
# Both create .venv and install what they need on a fresh machine.

# Prefer python3.12 (the Lambda runtime), also where pyenv has it but does not expose it.
PYTHON ?= $(shell for p in python3.12 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12 python3; do \
	$$p -c 'import sys' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
export CRIMECAST_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: venv test lint unit demo accuracy bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed

lint: venv
	$(BIN)/ruff check shared tests bench

test: lint
	$(BIN)/pytest -q

unit: venv
	$(BIN)/pytest -q tests/unit

AUSTIN := $(CRIMECAST_DATA_DIR)/austin_assault_monthly_2001_2023.csv
demo: venv
	@echo "crimecast demo: the forecasting pipeline on the real data in $(CRIMECAST_DATA_DIR)."
	@echo "(The one-machine API and web page arrive with the local-stack issue.)"
	@echo "1. Yearly backtest of ASSAULT in Austin: the model against the seed's Prophet and seasonal naive"
	@mkdir -p out
	$(BIN)/python -m crimecast backtest --counts $(AUSTIN) --series Austin:ASSAULT \
		--origins 2015-12,2016-12,2017-12,2018-12,2019-12,2020-12,2021-12 --horizon 12 --json out/demo-backtest.json
	@echo "2. Forecast of ASSAULT in Austin"
	$(BIN)/python -m crimecast forecast --counts $(AUSTIN) --series Austin:ASSAULT --months 12

accuracy: venv
	$(BIN)/python bench/accuracy.py

bench: venv
	$(BIN)/python bench/speed.py

clean:
	rm -rf $(VENV) .pytest_cache
