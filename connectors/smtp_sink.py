"""A local SMTP sink (aiosmtpd): the demo's mail server.

It accepts mail on loopback and writes every message it takes into a Maildir-style folder
(``tmp/`` then renamed into ``new/``, one ``.eml`` per message and recipient list), and
answers chosen recipients as a real server would refuse (550 user unknown, 554 policy) or
defer (451) them, so the demo sends for real and its failures are true ones.

Run as ``python -m connectors.smtp_sink --dir DIR --port P [--answers FILE]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

MARKERS = ("connectors.smtp_sink",)


def load_answers(path: Path | None) -> dict[str, str]:
    """Recipient (lower case) -> the reply line the sink gives at RCPT: the ``refuse`` and
    ``defer`` maps of a YAML file; an empty map without one."""
    if path is None:
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    answers: dict[str, str] = {}
    for section in ("refuse", "defer"):
        for address, reply in (doc.get(section) or {}).items():
            code = str(reply).split(" ", 1)[0]
            if not (code.isdigit() and code[0] in "45" and len(code) == 3):
                raise ValueError(f"{path}: {section}.{address}: not an SMTP reply: {reply!r}")
            answers[str(address).lower()] = str(reply)
    return answers


class SinkHandler:
    """aiosmtpd handler: scripted refusals at RCPT, everything else written to disk."""

    def __init__(self, folder: Path, answers: Mapping[str, str]) -> None:
        self.folder = folder
        self.answers = dict(answers)
        for sub in ("tmp", "new"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self._count = 0
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.answers.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self._count += 1
            name = f"{time.time_ns()}.{os.getpid()}.{self._count}.eml"
        header = "".join(f"Delivered-To: {r}\r\n" for r in envelope.rcpt_tos)
        header += f"Return-Path: <{envelope.mail_from}>\r\n"
        content = envelope.original_content or b""
        tmp = self.folder / "tmp" / name
        tmp.write_bytes(header.encode() + content)
        tmp.replace(self.folder / "new" / name)
        return f"250 2.0.0 Ok: queued as {name.removesuffix('.eml')}"


@contextmanager
def running_sink(
    folder: Path, answers: Mapping[str, str], host: str = "127.0.0.1"
) -> Iterator[int]:
    """The sink in this process for the duration of a block; yields its port."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    controller = Controller(
        SinkHandler(folder, answers), hostname=host, port=port, ready_timeout=10.0
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def received(folder: Path) -> list[Path]:
    """The messages the sink took, oldest first."""
    new = folder / "new"
    return sorted(new.glob("*.eml")) if new.is_dir() else []


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--answers", type=Path)
    args = parser.parse_args(argv)
    handler = SinkHandler(args.dir, load_answers(args.answers))
    controller = Controller(handler, hostname=args.host, port=args.port, ready_timeout=10.0)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    controller.start()
    print(f"smtp sink on {args.host}:{args.port}, writing to {args.dir / 'new'}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
