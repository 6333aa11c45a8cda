"""Commands that run no flow import only what they use: no Prefect, no pandas, no Alembic on
a current schema, and only the tables their queries name (what keeps them quick)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from connectors.database.migrate import upgrade

# Runs the command in a fresh interpreter, then lists what it imported.
_RUN = """
import json, sys
from flows.cli import app
try:
    app({argv!r})
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(sys.modules)))
"""
HEAVY = {"prefect", "pandas", "alembic"}


def _imported(argv: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN.format(argv=argv)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def _tables(modules: set[str]) -> set[str]:
    return {
        m.removeprefix("connectors.database.").removesuffix("_models")
        for m in modules
        if m.startswith("connectors.database.") and m.endswith("_models")
    }


@pytest.fixture
def current_schema(database: str) -> str:
    upgrade()
    return database


@pytest.mark.usefixtures("current_schema")
def test_the_failed_outreach_report_declares_the_outbox_and_what_it_names_only() -> None:
    modules = _imported(["outreach", "failed"])
    assert not HEAVY & modules
    assert _tables(modules) == {"outreach", "ingest", "scoring"}


@pytest.mark.usefixtures("current_schema")
def test_a_csv_export_is_written_without_pandas() -> None:
    modules = _imported(["export", "contacts"])
    assert not HEAVY & modules
    assert _tables(modules) == {"ingest", "scoring"}


@pytest.mark.usefixtures("current_schema")
def test_upgrading_a_current_schema_needs_neither_alembic_nor_the_orm() -> None:
    modules = _imported(["db", "upgrade"])
    assert not (HEAVY | {"sqlalchemy.orm"}) & modules
    assert not _tables(modules)
