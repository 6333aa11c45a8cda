"""Migrations are the schema: upgrading builds exactly what the models declare."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import connectors.database.models  # noqa: F401  (registers every table)
from connectors.database.base import Base
from connectors.database.engine import get_engine
from connectors.database.migrate import _script_heads, current_revisions, ensure_schema, upgrade
from tests.conftest import _create_postgres_database, _drop_postgres_database
from tests.migrations import downgrade_before


def test_migrations_build_exactly_the_declared_models(database: str) -> None:
    with get_engine().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrading_twice_changes_nothing(database: str) -> None:
    first = upgrade()
    ensure_schema()
    assert upgrade() == first


def test_a_database_one_migration_behind_is_brought_to_the_heads(database: str) -> None:
    """Being at the heads is answered without Alembic; one revision short is not."""
    downgrade_before("0009_accounts")
    assert "0009_accounts" not in current_revisions()
    assert upgrade() == ",".join(sorted(_script_heads()))
    assert current_revisions() == _script_heads()
    with get_engine().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_two_processes_migrating_a_new_postgresql_database_at_once_both_succeed(
    app_env: object,
) -> None:
    """Two workers' first runs on a new database: one migrates, the other waits and finds
    the schema current, instead of failing on a table that now exists."""
    url = _create_postgres_database()
    try:
        env = {**os.environ, "ACCOUNTFLOW_DATABASE_URL": url}
        script = "from connectors.database.migrate import upgrade; print(upgrade())"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
        assert [p.returncode for p in procs] == [0, 0]
        assert outputs[0] == outputs[1] != ""
    finally:
        _drop_postgres_database(url)
