# observe: the two commands a fresh machine needs are `make demo` and `make test`.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install browser demo serve test test-fast lint format bench clean

install: $(INSTALLED)

# pip looks for torch in the machine's local wheel folder first (see pip config); nothing here
# asks for a CUDA build.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## Headless Chromium for the browser tests: Debian's chromium and chromium-driver, installed
## when missing and we are root (as in CI); otherwise say how, and the browser tests skip.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver for the browser tests ..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver >/dev/null; \
	else \
		echo "no /usr/bin/chromium or /usr/bin/chromedriver: the browser tests are skipped;" \
			"install them with: sudo apt-get install chromium chromium-driver"; \
	fi

## Build the demo data set in the embedded SQLite database, then serve the API and UI.
demo: install
	$(BIN)/observe demo

serve: install
	$(BIN)/observe serve

## Run every test, on SQLite and (when one answers locally or OBSERVE_TEST_DATABASE_URL is set)
## on Postgres.
test: install browser
	@url="$${OBSERVE_TEST_DATABASE_URL:-$$(.ci/test-database --if-available)}"; \
	if [ -n "$$url" ]; then echo "Postgres tests on $$url"; \
	else echo "no Postgres found: its tests are skipped (see .ci/test-database)"; fi; \
	OBSERVE_TEST_DATABASE_URL="$$url" $(BIN)/pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check observe collectors analyzers dashboards migrations tests benchmarks
	$(BIN)/ruff format --check observe collectors analyzers dashboards migrations tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix observe collectors analyzers dashboards migrations tests benchmarks
	$(BIN)/ruff format observe collectors analyzers dashboards migrations tests benchmarks

## Benchmarks against their peers, each printing a table (see benchmarks/README.md).
bench: install
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/traces.py
	$(BIN)/python benchmarks/profiles.py
	$(BIN)/python benchmarks/changepoints.py
	$(BIN)/python benchmarks/prometheus_parse.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/diagnosis.py
	$(BIN)/python benchmarks/ui.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
