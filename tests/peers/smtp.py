"""A real SMTP server on loopback (aiosmtpd) whose answers a test can script.

Each recipient (or every recipient) can be told to get 250, 421, 451, 550, 552, 554, a
stall or a dropped connection, either at RCPT (before the message is offered) or after
DATA (once the server holds the whole message), which are the two moments the sender must
tell apart. Accepted messages are recorded with their envelope.

Use it by importing the fixture into a test module:
``from tests.peers.smtp import smtp_peer_fixture``; tests then ask for ``smtp_peer``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Reply = Literal["250", "421", "451", "550", "552", "554", "stall", "drop"]
Stage = Literal["rcpt", "data"]
Security = Literal["plain", "starttls", "ssl"]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (cert and key PEM files) to test TLS against."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "peer-cert.pem", directory / "peer-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


_TEXT = {
    "250": "250 2.0.0 Ok",
    "421": "421 4.3.2 Service shutting down",
    "451": "451 4.3.0 Try again later",
    "550": "550 5.1.1 No such user",
    # A permanent refusal of the message, not of the address.
    "552": "552 5.3.4 Message size exceeds fixed limit",
    # A refusal of the sending host, not of the recipient (an IP blocklisting).
    "554": "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org",
}


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    queue_id: str

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.SMTP).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def _answer(self, server: SMTP, stage: Stage, recipients: list[str]) -> str | None:
        reply = self.peer.reply_for(stage, recipients)
        if reply == "250" or reply is None:
            return None
        if reply == "stall":
            await asyncio.sleep(self.peer.stall_seconds)
            return "451 4.4.2 stalled"
        if reply == "drop":
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 dropped"
        if reply == "421":
            # RFC 5321 3.8: the server closes the channel after a 421.
            transport = server.transport
            assert transport is not None
            asyncio.get_running_loop().call_soon(transport.close)
        return _TEXT[reply]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        verdict = await self._answer(server, "rcpt", [address])
        if verdict is not None:
            return verdict
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        recipients = list(envelope.rcpt_tos)
        verdict = await self._answer(server, "data", recipients)
        if verdict is not None:
            return verdict
        content = envelope.original_content or b""
        with self.peer.lock:
            queue_id = f"Q{len(self.peer.received) + 1:06d}"
            self.peer.received.append(
                Received(str(envelope.mail_from), tuple(recipients), content, queue_id)
            )
        return f"250 2.0.0 Ok: queued as {queue_id}"


class _CountingController(Controller):
    def __init__(self, peer: SmtpPeer, **kwargs: Any) -> None:
        super().__init__(_Handler(peer), **kwargs)
        self.peer = peer

    def factory(self) -> SMTP:
        peer = self.peer

        class _Server(SMTP):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                with peer.lock:
                    peer.connections += 1
                    peer.transports.append(transport)
                super().connection_made(transport)

        return _Server(self.handler, **self.SMTP_kwargs)


class SmtpPeer:
    """The running server plus its script and its record of what arrived."""

    def __init__(
        self,
        stall_seconds: float = 3.0,
        *,
        security: Security = "plain",
        certificate: tuple[Path, Path] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.connections = 0
        self.transports: list[asyncio.BaseTransport] = []
        self.logins: list[str] = []
        self.stall_seconds = stall_seconds
        self._rules: dict[tuple[Stage, str | None], Reply] = {}
        self._credentials = credentials
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.host = "127.0.0.1"
        kwargs: dict[str, Any] = {}
        if security != "plain":
            assert certificate is not None, "TLS needs a certificate"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*certificate)
            if security == "ssl":
                kwargs["ssl_context"] = context
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        if credentials is not None:
            # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; under implicit
            # TLS the whole session is encrypted anyway.
            kwargs.update(authenticator=self._authenticate, auth_require_tls=security == "starttls")
        self._controller = _CountingController(
            self, hostname=self.host, port=self.port, ready_timeout=5.0, **kwargs
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self._credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        if ok:
            with self.lock:
                self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    def answer(self, reply: Reply, *, at: Stage = "rcpt", recipient: str | None = None) -> None:
        """Script the reply at a stage, for one recipient or (``None``) for everyone."""
        with self.lock:
            self._rules[(at, recipient.lower() if recipient else None)] = reply

    def reset(self) -> None:
        with self.lock:
            self._rules.clear()
            self.received.clear()
            self.connections = 0

    def reply_for(self, stage: Stage, recipients: list[str]) -> Reply | None:
        with self.lock:
            for recipient in recipients:
                rule = self._rules.get((stage, recipient.lower()))
                if rule is not None:
                    return rule
            return self._rules.get((stage, None))

    def drop_connections(self) -> None:
        """Close every open session server-side, as an idle timeout would."""
        with self.lock:
            transports, self.transports = self.transports, []
        done = threading.Event()

        def close_all() -> None:
            for transport in transports:
                transport.close()
            done.set()

        self._controller.loop.call_soon_threadsafe(close_all)
        done.wait(5)

    def start(self) -> None:
        self._controller.start()
        # Controller.start() opens one probe connection of its own; don't count it.
        with self.lock:
            self.connections = 0
            self.transports.clear()

    def stop(self) -> None:
        self._controller.stop()


@pytest.fixture(name="smtp_peer")
def smtp_peer_fixture() -> Iterator[SmtpPeer]:
    peer = SmtpPeer()
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(name="smtp_peer_factory")
def smtp_peer_factory_fixture() -> Iterator[Callable[..., SmtpPeer]]:
    """Start peers with other settings (TLS, AUTH); all are stopped after the test."""
    started: list[SmtpPeer] = []

    def start(**kwargs: Any) -> SmtpPeer:
        peer = SmtpPeer(**kwargs)
        peer.start()
        started.append(peer)
        return peer

    try:
        yield start
    finally:
        for peer in started:
            peer.stop()
