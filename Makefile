# Mutualis — the README's commands. `make run` and `make test` do all the set-up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# installs come from the lock (exact versions with hashes), so the stamp follows it
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | sha1sum | cut -c1-12)
# `make lock` resolves with uv, kept in a venv of its own so that the project's never holds it
LOCK_VENV := .venv-lock
UV := $(LOCK_VENV)/bin/uv
UV_VERSION := 0.13.9
# one resolution for every platform (CI and the image on Linux, laptops on macOS), Python 3.11
LOCK_COMPILE := $(UV) pip compile pyproject.toml --quiet --generate-hashes --universal \
	--python-version 3.11 --custom-compile-command "make lock"
# axe-core, which the browser tests inject into each page (from the npm registry, served locally)
AXE := tests/e2e/browser/node_modules/axe-core/axe.min.js

.PHONY: run test unit integration e2e test-clock bench bench-scale bench-lag drills drills-short lint format migrate seed check-broker clean browser-deps diagram lock mutation

$(STAMP): requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet "uv==$(UV_VERSION)"

# Refresh the locks after editing pyproject.toml's dependencies: every pin that still fits is
# kept; `make lock LOCK_FLAGS=--upgrade` takes the newest versions the ranges allow. The
# runtime lock (the image's) is the dev lock's runtime part, at the same versions.
lock: $(UV)
	$(LOCK_COMPILE) $(LOCK_FLAGS) --extra dev -o requirements-dev.lock
	$(LOCK_COMPILE) $(LOCK_FLAGS) -c requirements-dev.lock -o requirements.lock

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
	GATEWAY_DEMO_MODE=true PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

# two workers (pytest-xdist): the suite mostly waits (stacks starting, brokers, databases);
# the tests sharing a stack run in one worker (tests/conftest.py's groups)
test: $(STAMP) $(AXE)
	$(BIN)/pytest -q -n 2 --dist loadgroup

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP) $(AXE)
	$(BIN)/pytest -q tests/e2e

# The unit and integration tests at the communes' awkward instants, one pytest run each, the
# test process's clock moved there (tests/awkward_clock.py; not the e2e stack's, nor
# PostgreSQL's now()), the next ones after today (tests/awkward_clock.py says which and why):
# Sunday 23:30 UTC, 31 December 23:30 UTC, the spring clock change's night, 1 May 06:30 Paris.
# About 7 minutes an instant (6 of them integration), so not in `make test`;
# `CLOCK_INSTANTS=... make test-clock` for others, `CLOCK_TESTS=tests/unit` for the unit tests.
# (`python -m pytest`: the plugin is imported before any conftest puts the project on the path)
CLOCK_INSTANTS ?= $(shell $(BIN)/python -m tests.awkward_clock)
CLOCK_TESTS ?= tests/unit tests/integration
test-clock: $(STAMP)
	@test -n "$(strip $(CLOCK_INSTANTS))" || { echo "no instant to run at (python -m tests.awkward_clock)"; exit 1; }
	@failed=; for at in $(CLOCK_INSTANTS); do \
		echo "== MUTUALIS_TEST_AT=$$at"; \
		MUTUALIS_TEST_AT=$$at $(BIN)/python -m pytest -q -p tests.awkward_clock $(CLOCK_TESTS) \
			|| failed="$$failed $$at"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed at:$$failed"; exit 1; fi

# every bench (bench.summary's BENCHES), then the table of targets first and their output below
bench: $(STAMP)
	$(BIN)/python -m bench.summary --run

# the cost of search, matching, a billing run and a netting as the data grows tenfold twice
# (10k, 100k, then 1M listings): long and memory-hungry, so not part of CI nor of `make bench`
bench-scale: $(STAMP)
	SCALE_STEPS=$${SCALE_STEPS:-10k,100k,1M} $(BIN)/python -m bench.scale
	$(BIN)/python -m bench.summary

# the event lag alone (commit to handler's commit, broker floor, classic vs quorum);
# LAG_COMPARE=1 also measures the relays' former pace, interleaved
bench-lag: $(STAMP)
	$(BIN)/python -m bench.lag

drills: $(STAMP)
	$(BIN)/python -m bench.drills

# the short replica drill as a test (two of every process, one of each killed in turn): a few
# minutes of both cores, so not part of `make test`
drills-short: $(STAMP)
	$(BIN)/pytest -q -m drill tests/e2e/test_replicas.py

# Mutation score of every domain module and of the bookings' emergency rules (mutmut,
# configured in pyproject's [tool.mutmut]): 4,796 mutants in about 10 minutes on the 2 shared
# cores (9 min 34 s measured; the target is 15),
# so not part of `make test`. The domain's unit tests run without any conftest.py
# (--noconftest: no eventlet monkey-patching, no broker, no database) and with hypothesis'
# "mutation" profile (20 fixed examples a property, tests/unit/__init__.py); a mutant that
# loops is stopped after 3 × (its tests' time + 1 s). Starts afresh each time, so that no
# result cached before a test changed is reported; mutmut's log goes to
# test-output/mutation/mutmut.log, each module's target (met or not) and the table to
# test-output/mutation/summary.md.
mutation: $(STAMP)
	@rm -rf mutants && mkdir -p test-output/mutation
	HYPOTHESIS_PROFILE=mutation $(BIN)/mutmut run --max-children 2 \
		> test-output/mutation/mutmut.log 2>&1 \
		|| { tail -n 40 test-output/mutation/mutmut.log; exit 1; }
	$(BIN)/python -m bench.mutation

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the processes-and-events diagram of docs/architecture.md, drawn again from contracts/topology.py
diagram: $(STAMP)
	$(BIN)/python -m contracts.diagram

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var test-output mutants tests/e2e/browser/node_modules $(LOCK_VENV)
