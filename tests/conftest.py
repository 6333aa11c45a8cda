"""Shared fixtures: real databases (SQLite in a temp dir, PostgreSQL on 127.0.0.1:5432),
the Prefect test harness, and the peers in tests/peers.

On CI (``CI=true``) a missing peer fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
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
    from config.policies import get_ingest_policies
    from config.settings import get_settings
    from connectors.database.engine import reset_engine

    reset_engine()
    get_settings.cache_clear()
    get_ingest_policies.cache_clear()


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings pointed at a temp data dir (SQLite there unless a test sets a URL)."""
    monkeypatch.setenv("ACCOUNTFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ACCOUNTFLOW_DATABASE_URL", raising=False)
    _reset_caches()
    yield tmp_path / "data"
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


@pytest.fixture(params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh, migrated application database: SQLite, then PostgreSQL."""
    url = None
    if request.param == "postgres":
        url = _create_postgres_database()
        monkeypatch.setenv("ACCOUNTFLOW_DATABASE_URL", url)
        _reset_caches()
    from connectors.database.migrate import upgrade

    upgrade()
    yield request.param
    _reset_caches()
    if url is not None:
        _drop_postgres_database(url)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the session (flows, artifacts, task runs)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
