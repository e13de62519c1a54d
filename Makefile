# make run: install what the hub needs and serve the demo at http://127.0.0.1:8000 (PORT=8611 for another port)
# make staff: an admin's set-up link for the demo's console
# make test: install everything and run every check and test (browser tests included)
# make bench: run the benchmarks (JSON on stdout)
# make mutation: mutation testing of hub/rules/ (not part of make test; about half an hour on 2 cores)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# PostgreSQL tests run when a server answers on 127.0.0.1:5432 (CI has one).
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
PG_UP := $(shell $(PYTHON) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null && echo yes)

.PHONY: run staff test check bench mutation install chromium clean

# Runtime dependencies only for the demo; the test tools (mypy, ruff, Playwright, schemathesis) for check and test.
# setuptools announces every editable install with an "Editable installation" warning; it is for information only.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"
$(BIN)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(QUIET_EDITABLE) $(BIN)/pip install --quiet -e .
	touch $@

$(BIN)/.installed: $(BIN)/.runtime
	$(QUIET_EDITABLE) $(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed node_modules/.installed

# Debian's Chromium for the browser tests; never a downloaded browser.
chromium:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# make run PORT=8611 serves the demo there, with its links and dev outbox on that port.
run: $(BIN)/.runtime node_modules/.installed
	$(BIN)/python -m hub demo $(if $(PORT),--port $(PORT))

# An admin's one-time set-up link for the demo's console (make staff STAFF=jsmith ROLE=agent for others).
# The demo's admin is hub-wide; others work for the demo's trust (ORG=CODE for another).
staff: $(BIN)/.runtime
	HUB_DEMO=true $(if $(PORT),HUB_BASE_URL=http://127.0.0.1:$(PORT)) $(BIN)/python -m hub create-staff \
		--username $(or $(STAFF),admin) --role $(or $(ROLE),admin) \
		$(if $(filter admin,$(or $(ROLE),admin)),$(if $(ORG),--organisation $(ORG),--hub-wide),--organisation $(or $(ORG),RAL))

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: check chromium
	$(if $(PG_UP),HUB_TEST_DATABASE_URL=$(PG_URL)) $(BIN)/pytest

# Benchmarks print JSON (and keep a copy in bench/results/); targets live here, never in timed unit tests.
bench: install
	$(BIN)/python -m bench.import_bench
	$(BIN)/python -m bench.api_bench
	$(BIN)/python -m bench.notify_bench
	$(BIN)/python -m bench.journey_bench
	$(BIN)/python -m bench.burst_bench
	$(BIN)/python -m bench.sweep_bench
	$(BIN)/python -m bench.hl7_bench
	$(BIN)/python -m bench.slots_bench
	$(BIN)/python -m bench.page_weight
	$(BIN)/python -m bench.signin_timing_bench

# Mutants of the pure rules (hub/rules/), each run against the tests in tests/rules that reach it (see [tool.mutmut] in
# pyproject.toml); the kill rate and the survivors as JSON, failing below 90%. Equivalent mutants: docs/mutation.md.
mutation: install
	rm -rf mutants && mkdir -p var
	HUB_FUZZ_EXAMPLES=30 nice -n 10 $(BIN)/mutmut run --max-children 2 > var/mutation.log 2>&1 || (tail -40 var/mutation.log; exit 1)
	$(BIN)/python -m tests.mutation

clean:
	rm -rf $(VENV) node_modules var mutants .pytest_cache .mypy_cache .ruff_cache .hypothesis
