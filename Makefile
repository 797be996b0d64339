# Each target bootstraps its own virtual environment from nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-quick test-calendar fuzz lint tools demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "statreport needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict core staff customers ingest phonehome analytics scheduler webhooks console statreport tests benchmarks docs

# The Debian package the tests drive: chromium (the console in a real browser; Playwright
# never downloads one). Without it a developer's machine skips those tests, loudly; CI
# (CI=true) fails them.
tools:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the console's browser tests"; \
	    apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; } || \
	      echo "could not install chromium: the browser tests will be skipped (failed under CI=true)"; \
	  else \
	    echo "chromium is missing: the browser tests will be skipped (sudo apt-get install chromium)"; \
	  fi; \
	fi

test: lint tools
	$(BIN)/pytest
	$(MAKE) --no-print-directory test-calendar

test-quick: lint tools
	$(BIN)/pytest -m "not slow"

# The suite on another day: every test but the slow fault ones, with the clock 400 days
# ahead for this process, the servers it starts and Chromium (libfaketime, tests/clock.py).
# DAYS=3650 tries ten years on. On DuckDB: the calendar is the same on both engines, whose
# clocks are the servers' own (core/postgres_store.py); make test runs both.
DAYS ?= 400
test-calendar: $(STAMP) tools
	@echo "the suite with the clock $(DAYS) days ahead"
	STATREPORT_TEST_ENGINE=duckdb $(BIN)/python -m tests.clock +$(DAYS)d $(BIN)/pytest -m "not slow" -q -p no:cacheprovider

# The API fuzz test of make test, with 20 times the examples (about 6 minutes).
fuzz: $(STAMP)
	STATREPORT_FUZZ_EXAMPLES=500 $(BIN)/pytest tests/fuzz -v --timeout 3600

demo: $(STAMP)
	$(BIN)/statreport demo

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) statreport-demo .pytest_cache .mypy_cache .ruff_cache
