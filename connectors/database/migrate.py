"""Schema upgrades through Alembic, callable from the CLI and on first use."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from connectors.database.engine import get_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 727000  # beside the ingestion lock (727001) in ingest_store


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(revision: str = "heads") -> str:
    """Bring the configured database to ``revision``; returns the revisions now in force.

    "heads" rather than "head": each capability may add its own branch of migrations.
    """
    cfg = alembic_config()
    with get_engine().begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two workers starting their first runs on a new database: the second waits,
            # then finds the schema current, instead of failing on "table exists".
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return ",".join(sorted(current_revisions()))


def current_revisions() -> set[str]:
    with get_engine().connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


@lru_cache(maxsize=1)
def _script_heads() -> frozenset[str]:
    """The heads of the migrations shipped with this code, read once per process: Alembic
    compiles every migration script to find them (about 30 ms), and every flow asks."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def ensure_schema() -> None:
    """Upgrade only when behind, so ordinary commands pay one cheap query."""
    if current_revisions() != _script_heads():
        upgrade()
