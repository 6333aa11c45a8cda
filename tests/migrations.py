"""Moving the test database across one migration, to test what that migration does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command

from connectors.database.engine import get_engine
from connectors.database.migrate import alembic_config, upgrade


def downgrade_before(revision: str) -> None:
    """The configured database, migrated down to the revision before ``revision`` on its
    branch (the other branches stay where they are)."""
    cfg = alembic_config()
    with get_engine().begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, f"{revision}-1")


@contextmanager
def before_migration(revision: str) -> Iterator[None]:
    """The database one revision before ``revision`` inside, upgraded back after."""
    downgrade_before(revision)
    try:
        yield
    finally:
        upgrade()
