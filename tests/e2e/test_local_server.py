"""The local Prefect server as a user meets it: `accountflow server start` starts it once
and reuses it, every command sends its runs there and says so, a record left by a crash
is recognised and cleaned, and `accountflow server stop` stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connectors.background import is_running
from connectors.local_prefect import MARKERS, RECORD_FILE
from flows.ingest import sample_exports


def _cli(data: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    env["ACCOUNTFLOW_DATA_DIR"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "data"
    yield folder
    _cli(folder, "server", "stop")


def test_server_starts_once_is_reused_by_commands_and_stops(data: Path) -> None:
    first = _cli(data, "server", "start", "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    started = json.loads(first.stdout)
    assert started["started"] is True and started["url"].startswith("http://127.0.0.1:")
    # Its home and SQLite database are under the data dir.
    assert (data / "prefect" / "prefect.db").is_file()
    # The UI is told where its API is (not port 4200).
    settings = requests.get(f"{started['url']}/ui-settings", timeout=10).json()
    assert settings["api_url"] == f"{started['url']}/api"

    again = _cli(data, "server", "start", "--json")
    assert json.loads(again.stdout) == {**started, "started": False}
    assert _cli(data, "server", "status").returncode == 0

    ingest = _cli(data, "ingest", "exhibition", *sample_exports(), "--event", "local-server")
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    assert f"runs go to the local server, UI at {started['url']}" in ingest.stderr
    runs = requests.post(f"{started['url']}/api/flow_runs/filter", json={}, timeout=30).json()
    assert [(r["name"], r["state"]["type"]) for r in runs] == [
        (next(r["name"] for r in runs), "COMPLETED")
    ]
    assert runs[0]["name"].startswith("ingest-exhibition-local-server")

    stopped = _cli(data, "server", "stop")
    assert "Prefect server at" in stopped.stdout
    assert not (data / RECORD_FILE).exists()
    deadline = time.monotonic() + 20
    while is_running(started["pid"], MARKERS) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not is_running(started["pid"], MARKERS)
    status = _cli(data, "server", "status")
    assert status.returncode == 1 and "down" in status.stdout


def test_a_record_left_by_a_crashed_server_is_cleaned_and_a_new_one_starts(data: Path) -> None:
    crashed = json.loads(_cli(data, "server", "start", "--json").stdout)
    os.kill(crashed["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while is_running(crashed["pid"], MARKERS) and time.monotonic() < deadline:
        time.sleep(0.2)

    # A command that runs no flow notices, says so, and runs without it.
    listed = _cli(data, "outreach", "failed")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert f"the server recorded at {crashed['url']} is gone" in listed.stderr
    assert not (data / RECORD_FILE).exists()
    assert not (data / "prefect" / "server.pid").exists()

    restarted = _cli(data, "server", "start", "--json")
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    fresh = json.loads(restarted.stdout)
    assert fresh["started"] is True and fresh["pid"] != crashed["pid"]
    assert requests.get(f"{fresh['url']}/api/health", timeout=10).ok
