"""A real `prefect server start` on loopback, for tests that exercise deployments and the UI.

The server keeps its state in a fresh PostgreSQL database, as production does (README,
"Running on several machines"); PREFECT_HOME is a temp dir. PREFECT_API_URL is exported for
the server itself too, otherwise its UI calls the API on port 4200.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class PrefectServer:
    url: str  # http://127.0.0.1:P
    api_url: str
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_prefect_server(home: Path) -> Iterator[PrefectServer]:
    """`prefect server start` on a free port with its own PostgreSQL database."""
    from tests.conftest import _create_postgres_database, _drop_postgres_database

    database = _create_postgres_database()
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": api,
        "PREFECT_API_DATABASE_CONNECTION_URL": make_url(database)
        .set(drivername="postgresql+asyncpg")
        .render_as_string(hide_password=False),
    }
    log = home / "server.log"
    with log.open("wb") as out:
        command = [sys.executable, "-m", "prefect", "server", "start"]
        proc = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # About 13 s when the machine is idle; minutes when parallel suites load both cores.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{api}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        else:
            pytest.fail("prefect server did not become healthy in 240 s")
        yield PrefectServer(url=f"http://127.0.0.1:{port}", api_url=api, env=env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        _drop_postgres_database(database)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with running_prefect_server(tmp_path_factory.mktemp("prefect-home")) as server:
        yield server
