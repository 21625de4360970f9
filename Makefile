# Mutualis — the README's commands. `make run` and `make test` do all the set-up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# axe-core, which the browser tests inject into each page (from the npm registry, served locally)
AXE := tests/e2e/browser/node_modules/axe-core/axe.min.js

.PHONY: run test unit integration e2e bench drills lint format migrate seed check-broker clean browser-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

$(AXE): tests/e2e/browser/package.json tests/e2e/browser/package-lock.json
	npm ci --prefix tests/e2e/browser --no-audit --no-fund --silent
	@touch $@

browser-deps: $(AXE)

check-broker: $(STAMP)
	@$(BIN)/python -m mutualis.preflight

migrate: check-broker
	$(BIN)/mutualis migrate

seed: migrate
	$(BIN)/mutualis seed

run: seed
	@$(BIN)/python -m mutualis.preflight --banner
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

test: $(STAMP) $(AXE)
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP) $(AXE)
	$(BIN)/pytest -q tests/e2e

bench: $(STAMP)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.billing
	$(BIN)/python -m bench.ramp

drills: $(STAMP)
	$(BIN)/python -m bench.drills

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var test-output tests/e2e/browser/node_modules
