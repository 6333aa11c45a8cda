"""The local Prefect server: the embedded default's UI and run history.

Prefect's temporary server costs about 10 s to start on every command and forgets most of
a run when the command ends. The local server is `prefect server start --background` with
its home (and so its SQLite database) under the data dir, on a free loopback port, its UI
pointed at that port; its URL is recorded in ``<data dir>/prefect-server.json`` so every
command finds it and sends its runs there.

Standard library only: the CLI consults the record before Prefect is imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from connectors.background import (
    ProcessRecord,
    free_port,
    is_running,
    port_answers,
    read_record,
    terminate,
    write_record,
)

RECORD_FILE = "prefect-server.json"
HOME_DIR = "prefect"
# The command line of the server process `--background` starts (uvicorn on Prefect's app).
MARKERS = ("uvicorn", "prefect.server.api.server:create_app")
# Prefect's own pid file in PREFECT_HOME; `prefect server start --background` refuses to
# start while it exists, so a crash's leftover is removed with our record.
PID_FILE = "server.pid"
HOST = "127.0.0.1"
# How long a server may take to answer after its start before a record of it is stale
# (about 13 s here when idle; much more while the test suite loads both cores).
START_TIMEOUT_SECONDS = 180.0

Status = Literal["up", "starting", "down"]


class ServerError(RuntimeError):
    """The local server could not be started; the message says why and where its log is."""


@dataclass(frozen=True)
class ServerState:
    status: Status
    record: ProcessRecord | None = None
    # Set when a record of a server that is gone (or hung) was found and removed.
    cleaned: str | None = None

    @property
    def url(self) -> str | None:
        return self.record.url if self.record else None

    @property
    def api_url(self) -> str | None:
        return f"{self.record.url}/api" if self.record else None


def record_path(data_dir: Path) -> Path:
    return data_dir / RECORD_FILE


def home(data_dir: Path) -> Path:
    return (data_dir / HOME_DIR).resolve()


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """Whether the API answers its health check."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{api_url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _clean(data_dir: Path) -> None:
    record_path(data_dir).unlink(missing_ok=True)
    (home(data_dir) / PID_FILE).unlink(missing_ok=True)


def state(data_dir: Path, now: datetime | None = None) -> ServerState:
    """Is the recorded server up? A record whose process is gone, or whose port has not
    opened within the start timeout, is stale: it is removed (a hung server of ours is
    stopped).

    Up means the port accepts connections: uvicorn opens it once the app has started, and
    a connect costs a fraction of a millisecond where a health request to a busy server can
    take seconds (every command asks). A slow server is busy, not stale.
    """
    record = read_record(record_path(data_dir))
    if record is None:
        return ServerState("down")
    if not is_running(record.pid, record.markers):
        _clean(data_dir)
        return ServerState("down", cleaned=f"the server recorded at {record.url} is gone")
    if record.port and port_answers(HOST, record.port):
        return ServerState("up", record)
    if record.age_seconds(now) < START_TIMEOUT_SECONDS:
        return ServerState("starting", record)
    terminate(record.pid)
    _clean(data_dir)
    return ServerState("down", cleaned=f"the server recorded at {record.url} never opened its port")


def server_env(api_url: str, prefect_home: Path) -> dict[str, str]:
    """The environment the server runs with: its home under the data dir, and its UI told
    where its API is (without PREFECT_UI_API_URL the UI calls port 4200)."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_API_URL=api_url,
        PREFECT_UI_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return env


def start(data_dir: Path, timeout: float = START_TIMEOUT_SECONDS) -> tuple[ServerState, bool]:
    """The local server, started if it is not up; returns its state and whether this call
    started it. Waits until it answers."""
    current = state(data_dir)
    if current.status == "up":
        return current, False
    if current.status == "starting" and current.record is not None:
        return _wait(data_dir, current.record, timeout), False
    prefect_home = home(data_dir)
    prefect_home.mkdir(parents=True, exist_ok=True)
    (prefect_home / PID_FILE).unlink(missing_ok=True)
    port = free_port(HOST)
    url = f"http://{HOST}:{port}"
    log = prefect_home / "server-start.log"
    command = [sys.executable, "-m", "prefect", "server", "start", "--background"]
    command += ["--host", HOST, "--port", str(port)]
    with log.open("wb") as out:
        done = subprocess.run(
            command,
            env=server_env(f"{url}/api", prefect_home),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    pid_text = (prefect_home / PID_FILE).read_text().strip() if done.returncode == 0 else ""
    if not pid_text.isdigit():
        raise ServerError(
            f"`prefect server start --background` failed ({done.returncode}): "
            f"{log.read_text()[-1500:]}"
        )
    record = ProcessRecord(
        name="prefect-server",
        pid=int(pid_text),
        started_at=datetime.now(UTC).isoformat(),
        markers=MARKERS,
        url=url,
        port=port,
        extra={"home": str(prefect_home)},
    )
    write_record(record_path(data_dir), record)
    return _wait(data_dir, record, timeout), True


def _wait(data_dir: Path, record: ProcessRecord, timeout: float) -> ServerState:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if record.url and healthy(f"{record.url}/api"):
            return ServerState("up", record)
        if not is_running(record.pid, record.markers):
            _clean(data_dir)
            raise ServerError(
                f"the Prefect server (pid {record.pid}) exited while starting; "
                f"try `{sys.executable} -m prefect server start` in the foreground to see why"
            )
        time.sleep(0.25)
    raise ServerError(f"the Prefect server at {record.url} did not answer in {timeout:.0f} s")


def stop(data_dir: Path) -> ProcessRecord | None:
    """Stop the recorded server (only if the process is still ours); returns its record."""
    record = read_record(record_path(data_dir))
    if record is not None and is_running(record.pid, record.markers):
        terminate(record.pid)
    _clean(data_dir)
    return record
