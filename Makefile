# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck check bench clean install system-deps assets

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Console assets (Chart.js) from npm into cloudsms/admin/node_modules (ignored by git).
ASSETS := cloudsms/admin/node_modules/.package-lock.json
$(ASSETS): cloudsms/admin/package.json cloudsms/admin/package-lock.json
	npm ci --prefix cloudsms/admin --no-audit --no-fund --loglevel=error
assets: $(ASSETS)

## Run the platform: SQLite file store, built-in SMSC simulator, a demo customer printed with curl.
run: $(STAMP) $(ASSETS)
	$(BIN)/cloudsms demo

## System packages the tests need (Debian, as root): Net::SMPP and Kannel for SMPP interop,
## Chromium for the console's browser tests, wrk for the benchmarks.
system-deps:
	@(perl -MNet::SMPP -e1 2>/dev/null && command -v chromium >/dev/null && command -v wrk >/dev/null \
	  && test -x /usr/sbin/bearerbox && test -x /usr/sbin/smsbox) || \
	 (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  libnet-smpp-perl chromium wrk kannel >/dev/null)

## Install everything and run the whole test suite (lint and types first).
test: $(STAMP) $(ASSETS) system-deps
	$(BIN)/ruff check cloudsms sdk tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check cloudsms sdk tests bench
	$(BIN)/ruff format --check cloudsms sdk tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
