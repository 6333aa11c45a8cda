"""Hand rendered emails to an SMTP server, and say for each exactly what became of it.

The outbox needs more than "it raised": a message the server refused for good must not
be retried, a deferral must be, and a message whose DATA went out but whose reply never
came back may already be in a mailbox, so it is ``unknown`` and is never resent by a
machine. The SMTP dialogue is therefore driven step by step (MAIL, RCPT, DATA, payload,
final reply) instead of through ``smtplib.sendmail``, which hides where a failure struck.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from config.settings import SmtpSettings


class SendOutcome(StrEnum):
    SENT = "sent"
    FAILED_PERMANENT = "failed_permanent"
    RETRY = "retry"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendResult:
    """What one send attempt established; maps 1:1 onto an outbox row's new state."""

    outbox_id: int
    outcome: SendOutcome
    provider_id: str | None = None
    code: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class OutgoingEmail:
    """A rendered message with its envelope.

    ``raw`` is the exact byte stream that goes on the wire (CRLF line ends, 7-bit); the
    envelope sender is the VERP return path, which is why it is carried apart from the
    headers (the receiving MTA writes Return-Path from it).
    """

    outbox_id: int
    raw: bytes
    envelope_from: str
    recipients: tuple[str, ...]
    message_id: str

    @cached_property
    def message(self) -> EmailMessage:
        """The message as an ``EmailMessage`` (parsed on first use, for inspection)."""
        parsed = BytesParser(policy=policy.SMTP).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed


class MailSender(Protocol):
    def send(
        self, messages: Sequence[OutgoingEmail], while_waiting: Callable[[], None] | None = None
    ) -> list[SendResult]:
        """One result per message, in order. ``while_waiting`` is called once per message
        while the peer digests it (after the payload, before the verdict is read): the
        caller's next piece of work then overlaps the server's instead of following it.
        It must not raise."""
        ...


_LINE_END = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def _data_payload(raw: bytes) -> bytes:
    """CRLF-normalised, dot-stuffed payload ending in the terminator (RFC 5321 4.5.2)."""
    payload = _LEADING_DOT.sub(b"..", _LINE_END.sub(b"\r\n", raw))
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload + b".\r\n"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _classify(outbox_id: int, code: int, reply: bytes | str) -> SendResult:
    """A negative reply before the message was accepted: 5xx is final, anything else retries."""
    outcome = SendOutcome.FAILED_PERMANENT if 500 <= code < 600 else SendOutcome.RETRY
    return SendResult(outbox_id, outcome, code=code, detail=_text(reply))


class _Dropped(Exception):
    """The connection is unusable; carries the result for the message in flight.

    ``stale`` marks a connection found closed at MAIL, before this message was offered.
    """

    def __init__(self, result: SendResult, *, stale: bool = False) -> None:
        super().__init__(result.detail)
        self.result = result
        self.stale = stale


class SmtpSender:
    """One SMTP connection reused for many messages, reopened when the server drops it.

    Use as a context manager (or call ``close``) so the session ends with QUIT.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context`` defaults to the system trust store with hostname checks; pass
        one only to trust a private CA (tests, internal relays), never to disable checks."""
        self._settings = settings
        self._local_hostname = local_hostname
        self._ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self.connections_opened = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _connect(self) -> smtplib.SMTP:
        cfg = self._settings
        # Built only when TLS is used: loading the trust store costs ~30 ms per connection.
        context = (
            self._ssl_context or ssl.create_default_context() if cfg.ssl or cfg.starttls else None
        )
        smtp: smtplib.SMTP
        if cfg.ssl:
            smtp = smtplib.SMTP_SSL(
                cfg.host,
                cfg.port,
                local_hostname=self._local_hostname,
                timeout=cfg.timeout_seconds,
                context=context,
            )
        else:
            smtp = smtplib.SMTP(
                cfg.host, cfg.port, local_hostname=self._local_hostname, timeout=cfg.timeout_seconds
            )
        try:
            smtp.ehlo()
            if cfg.starttls and not cfg.ssl:
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.username:
                password = cfg.password.get_secret_value() if cfg.password else ""
                smtp.login(cfg.username, password)
        except BaseException:
            smtp.close()
            raise
        self.connections_opened += 1
        return smtp

    def send(
        self, messages: Sequence[OutgoingEmail], while_waiting: Callable[[], None] | None = None
    ) -> list[SendResult]:
        """Send each message in turn; one result per message, in order, never raising.

        If the server cannot be reached at all, the rest of the batch is marked ``retry``
        at once rather than waiting out one connect timeout per message.
        """
        results: list[SendResult] = []
        for index, item in enumerate(messages):
            try:
                results.append(self._send_one(item, while_waiting))
            except (smtplib.SMTPException, OSError) as exc:
                # Connect/EHLO/TLS/login failed, so nothing of the rest reached the server.
                # Bad credentials land here too: that is config to fix, not the
                # recipients' fault, so their rows wait for a retry rather than failing.
                code = getattr(exc, "smtp_code", None)
                detail = f"connect failed: {type(exc).__name__}: {exc}"
                results.extend(
                    SendResult(rest.outbox_id, SendOutcome.RETRY, code=code, detail=detail)
                    for rest in messages[index:]
                )
                break
        return results

    def _send_one(
        self, item: OutgoingEmail, while_waiting: Callable[[], None] | None
    ) -> SendResult:
        reused = self._smtp is not None
        try:
            return self._transaction(item, while_waiting)
        except _Dropped as dropped:
            self._discard()
            if reused and dropped.stale:
                # A reused connection found dead before MAIL was accepted is the server's
                # idle timeout, not a verdict on this message: reopen once and go again.
                try:
                    return self._transaction(item, while_waiting)
                except _Dropped as again:
                    self._discard()
                    return again.result
            return dropped.result

    def _transaction(
        self, item: OutgoingEmail, while_waiting: Callable[[], None] | None
    ) -> SendResult:
        if self._smtp is None:
            self._smtp = self._connect()
        smtp = self._smtp
        oid = item.outbox_id
        phase = "MAIL"
        try:
            code, reply = smtp.mail(item.envelope_from)
            if code == 421:
                # Often an idle-timeout notice the server sent while we were away,
                # read now as the answer to MAIL: the message itself was never offered.
                raise _Dropped(_classify(oid, code, reply), stale=True)
            if code != 250:
                return self._refused(oid, code, reply)
            phase = "RCPT"
            for recipient in item.recipients:
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    return self._refused(oid, code, reply)
            phase = "DATA"
            code, reply = smtp.docmd("DATA")
            if code != 354:
                return self._refused(oid, code, reply)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            stale = phase == "MAIL" and not isinstance(exc, TimeoutError)
            raise _Dropped(
                SendResult(oid, SendOutcome.RETRY, detail=f"{phase}: {type(exc).__name__}: {exc}"),
                stale=stale,
            ) from exc
        # From here the server may have the whole message: a failure is "unknown".
        try:
            smtp.send(_data_payload(item.raw))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise self._after_data(oid, exc) from exc
        if while_waiting is not None:
            while_waiting()  # outside the try: its errors are not the connection's
        try:
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise self._after_data(oid, exc) from exc
        if code == 250:
            return SendResult(oid, SendOutcome.SENT, provider_id=_text(reply), code=code)
        if code == 421:
            self._discard()
        return _classify(oid, code, reply)

    @staticmethod
    def _after_data(outbox_id: int, exc: Exception) -> _Dropped:
        detail = f"after DATA: {type(exc).__name__}: {exc}"
        return _Dropped(SendResult(outbox_id, SendOutcome.UNKNOWN, detail=detail))

    def _refused(self, outbox_id: int, code: int, reply: bytes) -> SendResult:
        """Reset the transaction after a refusal so the connection serves the next message."""
        result = _classify(outbox_id, code, reply)
        if code == 421 or code == -1:
            # 421: the server is closing the channel (RFC 5321 3.8); don't talk to it again.
            self._discard()
            return result
        if self._smtp is not None:
            try:
                self._smtp.rset()
            except (smtplib.SMTPException, OSError):
                self._discard()
        return result


class OutboxDirSender:
    """Writes each message to ``<directory>/<outbox id>.eml``: the demo's default sender.

    The file name is the outbox id, so a rerun overwrites rather than duplicates, and the
    envelope is recorded in X-Envelope-* lines ahead of the message for inspection.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def send(
        self, messages: Sequence[OutgoingEmail], while_waiting: Callable[[], None] | None = None
    ) -> list[SendResult]:
        self._directory.mkdir(parents=True, exist_ok=True)
        results = []
        for item in messages:
            path = self._directory / f"{item.outbox_id}.eml"
            envelope = (
                f"X-Envelope-From: <{item.envelope_from}>\r\n"
                f"X-Envelope-To: {', '.join(f'<{r}>' for r in item.recipients)}\r\n"
            ).encode("ascii")
            temporary = path.with_suffix(".eml.tmp")
            temporary.write_bytes(envelope + item.raw)
            temporary.replace(path)
            results.append(
                SendResult(item.outbox_id, SendOutcome.SENT, provider_id=f"file:{path.name}")
            )
            if while_waiting is not None:
                while_waiting()
        return results
