# Each target bootstraps its own virtual environment from nothing but Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-quick fuzz lint browser demo bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "statreport needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict core customers ingest phonehome analytics scheduler console statreport tests benchmarks docs

# The console's browser tests drive Debian's chromium (Playwright never downloads a browser).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the console's browser tests"; \
	    apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; } || \
	      echo "could not install chromium: the console's browser tests will be skipped"; \
	  else \
	    echo "chromium is missing: the console's browser tests will be skipped (sudo apt-get install chromium)"; \
	  fi; \
	fi

test: lint browser
	$(BIN)/pytest

test-quick: lint browser
	$(BIN)/pytest -m "not slow"

# The API fuzz test of make test, with 20 times the examples (about 6 minutes).
fuzz: $(STAMP)
	STATREPORT_FUZZ_EXAMPLES=500 $(BIN)/pytest tests/fuzz -v --timeout 3600

demo: $(STAMP)
	$(BIN)/statreport demo

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) statreport-demo .pytest_cache .mypy_cache .ruff_cache
