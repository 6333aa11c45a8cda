"""An append-only record of what one dispatcher put on the wire, beside its lease.

The outbox marks a whole batch ``sending`` in one commit and then sends message by message.
Writing each outcome to the database would cost a commit per message (it capped dispatch
at a third of the bare SMTP rate); instead each send is bracketed by two appends to this
file, "starting id" before the first byte goes out and "result for id" after the reply,
and the results reach the database in one commit per batch.

An append is a ``write(2)`` into the page cache: it survives the process being killed
(kill -9, OOM) without an fsync, which would cost as much as the send itself. So a run that
finds a dead dispatcher's rows still ``sending`` reads its journal and knows, row by row:
a recorded result stands; a started send without a result is the one message whose fate is
unknown; a row never started did not reach the wire and can be queued again. The absence
of a record is evidence only while the page cache is known to be intact, that is on the
same machine in the same boot; otherwise (an OS crash, another host) every row without a
result becomes ``unknown``: more rows for review, never a second send.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

_VERSION = 1
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str | None:
    """This kernel's boot id (Linux); ``None`` where there is none to compare."""
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"not journalable: {type(value).__name__}")


# Built once: json.dumps with options builds an encoder per call, a cost paid per send.
_ENCODER = json.JSONEncoder(default=_encode, separators=(",", ":"), ensure_ascii=True)


def _decode(obj: dict[str, Any]) -> Any:
    if obj.keys() == {"$dt"}:
        return datetime.fromisoformat(obj["$dt"])
    return obj


@dataclass
class JournalReading:
    """What a journal proves about the rows its dispatcher was sending.

    ``complete`` says whether a row missing from ``started`` is proof that its send never
    began (same host, same boot, every line intact).
    """

    complete: bool = False
    started: set[int] = field(default_factory=set)
    results: dict[int, dict[str, Any]] = field(default_factory=dict)


class SendJournal:
    """The journal a dispatcher writes while it sends one batch; removed once the batch's
    results are committed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        header = {"journal": _VERSION, "host": socket.gethostname(), "boot": boot_id()}
        self._append(header)

    def _append(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise RuntimeError("journal is not open")
        line = _ENCODER.encode(record) + "\n"
        # One write per record: a kill lands before or after it, never inside it.
        os.write(self._fd, line.encode("utf-8"))

    def started(self, outbox_id: int) -> None:
        """Call before the message's first byte is sent."""
        self._append({"s": outbox_id})

    def finished(self, values: dict[str, Any]) -> None:
        """Call with the row's result columns (``b_id`` + the outbox result columns)."""
        self._append({"r": values})

    def discard(self) -> None:
        """Close and remove: every result it holds is in the database."""
        self.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def read_journal(path: Path) -> JournalReading:
    """Parse a dead dispatcher's journal; a missing or foreign one proves nothing."""
    reading = JournalReading()
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError:
        return reading
    intact = lines[-1] == b""  # the last record ends with its newline
    records = []
    for line in lines[:-1]:
        try:
            records.append(json.loads(line, object_hook=_decode))
        except ValueError:
            intact = False
    if not records or records[0].get("journal") != _VERSION:
        return reading
    header, body = records[0], records[1:]
    for record in body:
        if "s" in record:
            reading.started.add(int(record["s"]))
        elif "r" in record:
            reading.results[int(record["r"]["b_id"])] = record["r"]
    here = boot_id()
    reading.complete = (
        intact
        and here is not None
        and header.get("boot") == here
        and header.get("host") == socket.gethostname()
    )
    return reading
