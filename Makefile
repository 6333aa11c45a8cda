# The README's two commands are `make demo` and `make test`; both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo test lint bench bench-quick bench-outreach crash-outreach clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the tests talk to (an IMAP server, a headless browser); needs root or sudo.
system-deps:
	@missing=""; \
	command -v dovecot >/dev/null 2>&1 || missing="$$missing dovecot-imapd"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; fi

demo: setup
	$(BIN)/accountflow demo

test: setup system-deps
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m benchmarks.bench_ingest --rows 200000
	$(BIN)/python -m benchmarks.dedupe_quality --rows 200000
	$(BIN)/python -m benchmarks.dedupe_quality --rows 200000 --heldout

bench-outreach: setup
	$(BIN)/python -m benchmarks.bench_dispatch throughput 10000 --rounds 5

crash-outreach: setup
	$(BIN)/python -m benchmarks.bench_dispatch crash --messages 2000 --kills 20

bench-quick: setup
	$(BIN)/python -m benchmarks.bench_ingest --rows 20000

clean:
	rm -rf $(VENV) .accountflow .pytest_cache .mypy_cache .ruff_cache
