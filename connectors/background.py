"""Processes that outlive the command that started them (the local Prefect server, the
served deployments, the demo's SMTP sink), each known by a small JSON record under the
data dir.

Standard library only: the CLI reads these records before Prefect, pandas or SQLAlchemy is
imported, on every command.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProcessRecord:
    """What a background process's record says about it."""

    name: str
    pid: int
    started_at: str  # ISO 8601, UTC
    # Words of its command line, to tell our process from another that reuses its pid.
    markers: tuple[str, ...]
    url: str | None = None
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def age_seconds(self, now: datetime | None = None) -> float:
        started = datetime.fromisoformat(self.started_at)
        return ((now or datetime.now(UTC)) - started).total_seconds()


def read_record(path: Path) -> ProcessRecord | None:
    """The record at ``path``; None when there is none or it is unreadable (a torn write
    after a crash is as good as none)."""
    try:
        raw = json.loads(path.read_text())
        raw["markers"] = tuple(raw.get("markers", ()))
        return ProcessRecord(**raw)
    except (OSError, ValueError, TypeError):
        return None


def write_record(path: Path, record: ProcessRecord) -> None:
    """Write the record atomically: a reader sees the old one or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2))
    tmp.replace(path)


def is_running(pid: int, markers: Sequence[str] = ()) -> bool:
    """Whether ``pid`` is alive and its command line has every marker.

    A pid is reused after its process ends; the markers keep a stale record from adopting
    (or, worse, stopping) an unrelated process. A zombie (ended, not yet reaped) is gone.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's: the markers decide
    proc = Path(f"/proc/{pid}")
    try:
        if " Z " in (proc / "stat").read_text().rsplit(")", 1)[-1][:3]:
            return False
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return not markers  # no /proc: trust the pid alone only when nothing is asked
    return all(m in cmdline for m in markers)


def terminate(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_running(pid):
            return
        time.sleep(0.1)
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect a child of ours that ended, so it does not linger as a zombie."""
    with suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the OS's choice)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def spawn(
    name: str,
    command: Sequence[str],
    *,
    record_path: Path,
    log_path: Path,
    markers: Sequence[str],
    env: Mapping[str, str] | None = None,
    url: str | None = None,
    port: int | None = None,
    extra: dict[str, Any] | None = None,
) -> ProcessRecord:
    """Start ``command`` in a session of its own (so it survives the terminal's Ctrl-C and
    this process), its output in ``log_path``, and record it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = ProcessRecord(
        name=name,
        pid=proc.pid,
        started_at=datetime.now(UTC).isoformat(),
        markers=tuple(markers),
        url=url,
        port=port,
        extra=extra or {},
    )
    write_record(record_path, record)
    return record


def stop_recorded(record_path: Path, timeout: float = 20.0) -> ProcessRecord | None:
    """Stop the process a record names (if it is still ours) and remove the record;
    returns the record that was there."""
    record = read_record(record_path)
    if record is not None and is_running(record.pid, record.markers):
        terminate(record.pid, timeout)
    record_path.unlink(missing_ok=True)
    return record


def live_record(record_path: Path) -> ProcessRecord | None:
    """The record if its process is still ours and alive; a stale one is removed."""
    record = read_record(record_path)
    if record is None:
        return None
    if is_running(record.pid, record.markers):
        return record
    record_path.unlink(missing_ok=True)
    return None
