"""Shared fixtures: real databases (SQLite in a temp dir, PostgreSQL on 127.0.0.1:5432),
the Prefect test harness, and the peers in tests/peers.

On CI (``CI=true``) a missing peer fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

pytest_plugins = ["tests.peers.dovecot", "tests.peers.smtp", "tests.peers.prefect_server"]

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

ON_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_ADMIN_URL = os.environ.get(
    "ACCOUNTFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def missing_peer(what: str) -> None:
    """Fail on CI, skip elsewhere: a test that silently skips on CI proves nothing."""
    if ON_CI:
        pytest.fail(f"{what} is required on CI but is not available")
    pytest.skip(f"{what} not available")


def _reset_caches() -> None:
    """Every cached settings object: a test that changed the environment must not leave
    its settings (a campaigns folder, say) to the next test on the same worker."""
    from config.policies import get_ingest_policies
    from config.settings import get_complaint_settings, get_outreach_settings, get_settings
    from connectors.database.engine import reset_engine

    reset_engine()
    get_settings.cache_clear()
    get_outreach_settings.cache_clear()
    get_complaint_settings.cache_clear()
    get_ingest_policies.cache_clear()


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings pointed at a temp data dir (SQLite there unless a test sets a URL)."""
    monkeypatch.setenv("ACCOUNTFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ACCOUNTFLOW_DATABASE_URL", raising=False)
    _reset_caches()
    yield tmp_path / "data"
    _reset_caches()


@pytest.fixture
def restored_environ() -> Iterator[None]:
    """The process environment as it was before the test, and no settings cached from it.

    For tests that drive a benchmark's scratch setup, which points this very process at
    its folders (``benchmarks.bench_dispatch.configure``): without it, a later test on the
    same worker would read that test's campaigns folder, long deleted.
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    _reset_caches()


def _create_postgres_database() -> str:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"accountflow_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any connection problem means the peer is missing
        admin.dispose()
        missing_peer(f"PostgreSQL at {POSTGRES_ADMIN_URL} ({exc.__class__.__name__})")
    admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_postgres_database(url: str) -> None:
    """Every table emptied and every identity restarted: the state a fresh migration leaves.

    Connections a previous test left behind (a killed subprocess's, a leaked engine's) are
    closed first, so TRUNCATE never waits on their locks.
    """
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        tables = conn.execute(
            text(
                "SELECT quote_ident(tablename) FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ).scalars()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@dataclass(frozen=True)
class MigratedSchemas:
    sqlite_file: Path
    postgres_url: str | None
    postgres_error: str | None


@pytest.fixture(scope="session")
def migrated_schemas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedSchemas]:
    """The migrations run once per test process, not once per test.

    SQLite: a migrated file that each test copies. PostgreSQL: one migrated database that
    each test gets emptied. The migrations themselves are tested in test_schema.py.
    """
    from connectors.database.migrate import upgrade

    folder = tmp_path_factory.mktemp("schema")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACCOUNTFLOW_DATA_DIR", str(folder))
        mp.delenv("ACCOUNTFLOW_DATABASE_URL", raising=False)
        _reset_caches()
        upgrade()
        _reset_caches()
        url = error = None
        try:
            url = _create_postgres_database()
        except pytest.skip.Exception as exc:  # the peer is missing: PostgreSQL tests skip
            error = str(exc)
        if url is not None:
            mp.setenv("ACCOUNTFLOW_DATABASE_URL", url)
            _reset_caches()
            upgrade()
            _reset_caches()
    yield MigratedSchemas(folder / "accountflow.db", url, error)
    if url is not None:
        _drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest,
    app_env: Path,
    migrated_schemas: MigratedSchemas,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A fresh, migrated application database: SQLite, then PostgreSQL."""
    if request.param == "postgres":
        if migrated_schemas.postgres_url is None:
            missing_peer(str(migrated_schemas.postgres_error))
        url = str(migrated_schemas.postgres_url)
        _empty_postgres_database(url)
        monkeypatch.setenv("ACCOUNTFLOW_DATABASE_URL", url)
    else:
        app_env.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_schemas.sqlite_file, app_env / "accountflow.db")
    _reset_caches()
    yield request.param
    _reset_caches()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the session (flows, artifacts, task runs)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
