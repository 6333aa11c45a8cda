"""Alembic environment: runs on the connection handed in by ``migrate.upgrade``."""

from alembic import context

import connectors.database.models  # noqa: F401  (registers every table on Base.metadata)
from connectors.database.base import Base
from connectors.database.engine import get_engine

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        with get_engine().begin() as conn:
            _run(conn)
    else:
        _run(connection)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
