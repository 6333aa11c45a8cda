"""Schema upgrades through Alembic, callable from the CLI and on first use."""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError

from connectors.database.engine import get_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 727000  # beside the ingestion lock (727001) in ingest_store


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(revision: str = "heads") -> str:
    """Bring the configured database to ``revision``; returns the revisions now in force.

    "heads" rather than "head": each capability may add its own branch of migrations.
    A database already at the shipped heads is answered from one query, without Alembic,
    whose import alone costs more than the rest of `accountflow db upgrade`.
    """
    if revision == "heads":
        current = current_revisions()
        if current == _script_heads():
            return ",".join(sorted(current))
    from alembic import command

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
    """The revisions the database is at (none for a new database)."""
    with get_engine().connect() as conn:
        try:
            return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        except (OperationalError, ProgrammingError):  # no such table: a new database
            return set()


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


@lru_cache(maxsize=1)
def _script_heads() -> frozenset[str]:
    """The heads of the migrations shipped with this code: revisions no other revision
    names as its parent.

    Read from the scripts' ``revision``/``down_revision`` lines rather than through
    Alembic, whose import alone costs more than the rest of a command that only reads
    (`accountflow outreach failed`, exports, `db upgrade` on a current schema); tests
    check both agree.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text()))
        if "revision" not in found:
            continue
        revisions.add(ast.literal_eval(found["revision"]))
        down = ast.literal_eval(found.get("down_revision", "None"))
        parents.update([down] if isinstance(down, str) else (down or ()))
    return frozenset(revisions - parents)


def ensure_schema() -> None:
    """Upgrade only when behind, so ordinary commands pay one cheap query."""
    upgrade()
