"""Engines and sessions for the application database (SQLite embedded, PostgreSQL in prod).

The ORM is imported with the first session: `accountflow db upgrade` on a current schema
needs an engine and one query, not SQLAlchemy's ORM.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from config.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (exports, the UI's reports) run while a flow writes; the busy
    # timeout turns a brief writer collision into a wait instead of "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # 64 MB of page cache instead of 2 MB: an ingestion's inserts touch every index of
    # contacts, source rows and identifiers, and with 2 MB the pages of those B-trees are
    # written out and read back mid-transaction.
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # pysqlite's default deferred BEGIN lets two writers both read then collide on upgrade
    # to a write lock; BEGIN IMMEDIATE serialises writers at the start, which is what the
    # outbox and inbox claims rely on for "safe on SQLite".
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """Create an engine with the per-dialect settings this application relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True)


@lru_cache
def get_engine() -> Engine:
    """The engine for the configured database, created once per process."""
    return make_engine(get_settings().resolved_database_url())


def reset_engine() -> None:
    """Forget the cached engine (tests switch databases by changing settings)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    from sqlalchemy.orm import sessionmaker

    session = sessionmaker(get_engine(), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
