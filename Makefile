# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck check bench clean install system-deps

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Run the platform: SQLite file store, built-in SMSC simulator, a demo customer printed with curl.
run: $(STAMP)
	$(BIN)/cloudsms demo

## System packages the interop tests need: Net::SMPP (Perl) for SMPP interop (Debian, as root).
system-deps:
	@perl -MNet::SMPP -e1 2>/dev/null || (apt-get update -qq && apt-get install -y -qq libnet-smpp-perl)

## Install everything and run the whole test suite (lint and types first).
test: $(STAMP) system-deps
	$(BIN)/ruff check cloudsms tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check cloudsms tests bench
	$(BIN)/ruff format --check cloudsms tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
