"""Schema upgrades through Alembic, callable from the CLI and on first use."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from connectors.database.engine import get_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 727000  # beside the ingestion lock (727001) in leads_store


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


def ensure_schema() -> None:
    """Upgrade only when behind, so ordinary commands pay one cheap query."""
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    if current_revisions() != heads:
        upgrade()
