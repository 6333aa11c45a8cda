# The README's two commands are `make demo` and `make test`; both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv installs the exact versions of uv.lock (the whole environment, dev tools included);
# pyproject.toml keeps the ranges. uv itself comes from the package index, pinned here.
# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (CI images, some
# shells), Python would otherwise recompile Prefect, pandas and SQLAlchemy on every command,
# seconds of each command's start.
UV_VERSION := 0.13.8
UV := UV_PROJECT_ENVIRONMENT=$(VENV) UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 $(BIN)/uv

.PHONY: setup system-deps demo test lint lock upgrade-deps bench bench-quick bench-outreach \
	bench-cli crash-outreach server-stop clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "uv==$(UV_VERSION)"

# --locked: a pyproject.toml changed without `make lock` is an error, not a silent drift.
# The Makefile is a prerequisite too, so a change to how we install reaches existing venvs.
$(STAMP): pyproject.toml uv.lock Makefile | $(BIN)/uv
	@$(UV) sync --locked --extra dev --inexact --quiet || { \
	  echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock" >&2; \
	  exit 1; }
	touch $(STAMP)

setup: $(STAMP)

# After changing dependencies in pyproject.toml: re-resolve the lock, keeping every pin
# that still fits, and install it.
lock: | $(BIN)/uv
	$(UV) lock
	$(UV) sync --locked --extra dev --inexact --quiet
	touch $(STAMP)

# Every dependency to the newest version its range allows, then the checks on them.
upgrade-deps: | $(BIN)/uv
	$(UV) lock --upgrade
	$(UV) sync --locked --extra dev --inexact --quiet
	touch $(STAMP)
	$(MAKE) lint test

# Debian packages the tests talk to (an IMAP server, a headless browser); needs root or sudo.
system-deps:
	@missing=""; \
	command -v dovecot >/dev/null 2>&1 || missing="$$missing dovecot-imapd"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v soffice >/dev/null 2>&1 || missing="$$missing libreoffice-calc-nogui"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
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

bench-cli: setup
	$(BIN)/python -m benchmarks.bench_cli

# The local Prefect server, the demo's SMTP sink and served deployments, if running.
server-stop:
	@if [ -x $(BIN)/accountflow ]; then $(BIN)/accountflow server stop; fi

clean: server-stop
	rm -rf $(VENV) .accountflow .pytest_cache .mypy_cache .ruff_cache
