"""Migrations are the schema: upgrading builds exactly what the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import connectors.database.models  # noqa: F401  (registers every table)
from connectors.database.base import Base
from connectors.database.engine import get_engine
from connectors.database.migrate import ensure_schema, upgrade


def test_migrations_build_exactly_the_declared_models(database: str) -> None:
    with get_engine().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrading_twice_changes_nothing(database: str) -> None:
    first = upgrade()
    ensure_schema()
    assert upgrade() == first
