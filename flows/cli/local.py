"""What the CLI keeps running between commands: the local Prefect server (run history and
the UI), the served deployments and the demo's SMTP sink, each recorded under the data dir.

Imported on every command before Prefect is: standard library, pydantic settings and the
process records only.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from connectors import local_prefect
from connectors.background import (
    ProcessRecord,
    free_port,
    live_record,
    port_answers,
    spawn,
    stop_recorded,
)

SERVE_RECORD = "serve.json"
SINK_RECORD = "smtp-sink.json"
SERVE_MARKERS = ("flows.cli", "serve")


def data_dir() -> Path:
    from config.settings import get_settings

    return get_settings().data_dir.resolve()


@dataclass
class PrefectTarget:
    """Where this process's runs go: the local server, a server the user configured, or
    (neither) Prefect's temporary one."""

    api_url: str | None = None
    local: bool = False

    @property
    def ui_url(self) -> str | None:
        return self.api_url.removesuffix("/api") if self.api_url else None


TARGET = PrefectTarget()


def use_local_server(announce: bool = True) -> PrefectTarget:
    """Point this process's Prefect at the local server when it is up.

    Must run before Prefect is imported (its settings are read then). A PREFECT_API_URL
    the user set wins; a record of a server that is gone is removed and said so.
    """
    TARGET.api_url, TARGET.local = None, False
    if os.environ.get("PREFECT_API_URL"):
        TARGET.api_url, TARGET.local = os.environ["PREFECT_API_URL"], False
        return TARGET
    current = local_prefect.state(data_dir())
    if current.cleaned and announce:
        typer.echo(f"Prefect: {current.cleaned}; its record was removed", err=True)
    if current.status == "starting":
        current, _ = local_prefect.start(data_dir())
    if current.status == "up" and current.api_url:
        _point_at(current.api_url)
        if announce:
            typer.echo(f"Prefect: runs go to the local server, UI at {current.url}", err=True)
    return TARGET


def _point_at(api_url: str) -> None:
    os.environ["PREFECT_API_URL"] = api_url
    TARGET.api_url, TARGET.local = api_url, True


def start_server() -> tuple[local_prefect.ServerState, bool]:
    """The local server, started if it is not up, and this process pointed at it."""
    current, started = local_prefect.start(data_dir())
    assert current.api_url is not None
    _point_at(current.api_url)
    return current, started


def ensure_sink(answers: Path) -> ProcessRecord:
    """The demo's SMTP sink, started if it is not running; waits until it listens."""
    record_path = data_dir() / SINK_RECORD
    record = live_record(record_path)
    if record is not None and record.port and port_answers("127.0.0.1", record.port):
        return record
    stop_recorded(record_path)
    port = free_port()
    folder = data_dir() / "smtp-sink"
    command = [sys.executable, "-m", "connectors.smtp_sink", "--dir", str(folder)]
    command += ["--port", str(port), "--answers", str(answers)]
    record = spawn(
        "smtp-sink",
        command,
        record_path=record_path,
        log_path=data_dir() / "logs" / "smtp-sink.log",
        markers=("connectors.smtp_sink",),
        url=f"smtp://127.0.0.1:{port}",
        port=port,
        extra={"folder": str(folder)},
    )
    deadline = time.monotonic() + 30
    while not port_answers("127.0.0.1", port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the SMTP sink did not listen: {data_dir() / 'logs'}")
        time.sleep(0.1)
    return record


def sink_env(port: int) -> dict[str, str]:
    """Settings that send every mail of this process (and its children) to the sink."""
    return {
        "ACCOUNTFLOW_SMTP__HOST": "127.0.0.1",
        "ACCOUNTFLOW_SMTP__PORT": str(port),
        "ACCOUNTFLOW_SMTP__STARTTLS": "false",
        "ACCOUNTFLOW_SMTP__SSL": "false",
        "ACCOUNTFLOW_OUTREACH_MAIL_TRANSPORT": "smtp",
    }


def ensure_serving(extra_env: dict[str, str]) -> ProcessRecord:
    """`accountflow serve` in the background against the local server (its deployments,
    schedules and forms in the UI), started if it is not running."""
    record_path = data_dir() / SERVE_RECORD
    record = live_record(record_path)
    if record is not None:
        return record
    env = {**os.environ, **extra_env, "ACCOUNTFLOW_DATA_DIR": str(data_dir())}
    return spawn(
        "serve",
        [sys.executable, "-m", "flows.cli", "serve"],
        record_path=record_path,
        log_path=data_dir() / "logs" / "serve.log",
        markers=SERVE_MARKERS,
        env=env,
        url=TARGET.api_url,
    )


def stop_all() -> list[str]:
    """Stop what the CLI left running (served deployments, SMTP sink, Prefect server);
    returns what was stopped."""
    stopped = []
    for name in (SERVE_RECORD, SINK_RECORD):
        record = stop_recorded(data_dir() / name)
        if record is not None:
            stopped.append(f"{record.name} (pid {record.pid})")
    server = local_prefect.stop(data_dir())
    if server is not None:
        stopped.append(f"Prefect server at {server.url} (pid {server.pid})")
    return stopped


def running() -> dict[str, ProcessRecord | None]:
    return {
        "serve": live_record(data_dir() / SERVE_RECORD),
        "smtp-sink": live_record(data_dir() / SINK_RECORD),
    }
