"""prefect.yaml as a second machine would use it: a Prefect server on PostgreSQL, the
deployments created with `prefect deploy --all`, and a process worker that runs one of them
against the application database on PostgreSQL, starting from a new, empty database."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from sqlalchemy import create_engine, text

from flows.ingest import sample_exports
from tests.conftest import _create_postgres_database, _drop_postgres_database
from tests.peers.prefect_server import PrefectServer, running_prefect_server

REPO = Path(__file__).resolve().parents[2]
POOL = "accountflow-process"


@pytest.fixture(scope="module")
def pool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A server of its own: `prefect deploy` would otherwise replace the served deployments
    of the same names that test_served_deployments.py checks."""
    with running_prefect_server(tmp_path_factory.mktemp("pool-prefect-home")) as server:
        yield server


@pytest.fixture
def app_database() -> Iterator[str]:
    url = _create_postgres_database()
    yield url
    _drop_postgres_database(url)


def _prefect(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _post(server: PrefectServer, path: str, body: dict[str, object]) -> object:
    response = requests.post(f"{server.api_url}{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def test_a_process_worker_runs_a_deployment_from_prefect_yaml_on_a_new_database(
    pool_server: PrefectServer, app_database: str, tmp_path: Path
) -> None:
    env = {
        **pool_server.env,
        "ACCOUNTFLOW_HOME": str(REPO),
        "ACCOUNTFLOW_TIMEZONE": "America/Sao_Paulo",
        "ACCOUNTFLOW_DATA_DIR": str(tmp_path / "data"),
        "ACCOUNTFLOW_DATABASE_URL": app_database,
    }
    _prefect(env, REPO, "work-pool", "create", POOL, "--type", "process")
    _prefect(env, REPO, "--no-prompt", "deploy", "--all")

    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    found = _post(pool_server, "/deployments/filter", {})
    assert isinstance(found, list)
    assert len(found) == len(declared)
    assert {d["work_pool_name"] for d in found} == {POOL}
    ingest = next(d for d in found if d["entrypoint"] == "flows.ingest:ingest_exhibition_leads")
    run = _post(
        pool_server,
        f"/deployments/{ingest['id']}/create_flow_run",
        {"parameters": {"files": sample_exports(), "event": "worker-fair"}},
    )
    assert isinstance(run, dict)

    # The worker starts from elsewhere: the pull step moves to the checkout; the flow
    # brings the new database to the current schema before its first write.
    _prefect(env, tmp_path, "worker", "start", "--pool", POOL, "--run-once")
    deadline, state = time.monotonic() + 120, {}
    while time.monotonic() < deadline:
        state = requests.get(f"{pool_server.api_url}/flow_runs/{run['id']}", timeout=10).json()
        if state["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(1)
    assert state["state"]["type"] == "COMPLETED", state["state"]
    assert state["name"].startswith("ingest-exhibition-worker-fair-")

    engine = create_engine(app_database)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT disposition, count(*) FROM source_rows GROUP BY disposition")
        ).all()
    engine.dispose()
    assert sum(n for _, n in rows) == 21
