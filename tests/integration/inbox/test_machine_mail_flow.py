"""Machine mail through the `ingest-inbox` flow: bounces that name a recipient only by its
local part, feedback-loop reports, rejections that say nothing bad about the address, and
mailer-daemons that must never become contacts (real SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from config.settings import get_settings
from connectors.database.complaints_models import Complaint
from connectors.database.engine import session_scope
from connectors.database.inbox_models import InboundMessage, SoftBounce, Suppression
from connectors.database.ingest_models import Contact
from connectors.database.outreach_models import OutboxItem
from connectors.link_secrets import rotate_generated_secret
from flows.inbox import ingest_inbox as ingest_inbox_flow
from tasks.outreach.rendering import LinkSigning, return_path_for
from tests.flow_runs import run_to_end

pytestmark = pytest.mark.usefixtures("prefect_harness")
ingest_inbox = run_to_end(ingest_inbox_flow)


def _count(model: Any) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _suppressions() -> dict[str, tuple[str, int | None]]:
    with session_scope() as s:
        return {
            r.address: (r.reason, r.inbound_message_id)
            for r in s.execute(select(Suppression)).scalars()
        }


def _outbox_item(recipient: str, message_id: str) -> int:
    with session_scope() as s:
        contact = Contact(email=recipient, full_name="Fred Bloggs")
        s.add(contact)
        s.flush()
        item = OutboxItem(
            idempotency_key=f"k-{recipient}", campaign="spring", step=1, channel="email",
            contact_id=contact.id, message_id=message_id, language="en",
            recipient=recipient, status="sent", due_at=datetime(2026, 3, 1),
        )  # fmt: skip
        s.add(item)
        s.flush()
        return item.id


def _local_dsn(to: str, status: str, diagnostic: str) -> bytes:
    """A report naming the recipient only as ``LOCAL;<f.b>``, without From, without the
    original attached: only the VERP address it was sent back to says which mail it was."""
    return (
        "Return-Path: <>\r\n"
        f"To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <local-dsn@mx.a.b.c>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nLOCAL module(account f.b) reports.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.a.b.c\r\n\r\n"
        f"Final-Recipient: LOCAL;<f.b>\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n--b--\r\n"
    ).encode()


ARF = (
    b"From: fbl@isp.example\r\nTo: abuse@accountflow.example\r\nSubject: Abuse report\r\n"
    b"Message-ID: <arf-1@isp.example>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
    b"--f\r\nContent-Type: text/plain\r\n\r\nA user marked your mail as spam.\r\n"
    b"--f\r\nContent-Type: message/feedback-report\r\n\r\n"
    b"Feedback-Type: abuse\r\nVersion: 1\r\nOriginal-Rcpt-To: <reader@isp.example>\r\n\r\n"
    b"--f\r\nContent-Type: text/rfc822-headers\r\n\r\n"
    b"From: vendas@accountflow.example\r\nTo: reader@isp.example\r\n"
    b"Message-ID: <campaign-9@accountflow.example>\r\n\r\n--f--\r\n"
)

SPAM_REJECTION = (
    b"From: Mail Delivery System <MAILER-DAEMON@mx.client.example>\r\n"
    b"To: vendas@accountflow.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b"Message-ID: <spam-rej@mx.client.example>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
    b"Final-Recipient: rfc822; good@client.example\r\nAction: failed\r\nStatus: 5.7.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.7.1 Message rejected as spam by the content filter\r\n"
    b"\r\n--b--\r\n"
)

DAEMON_NOTICE = (
    b"From: MAILER-DAEMON@mx.client.example\r\nTo: vendas@accountflow.example\r\n"
    b"Subject: Warning from the mail system\r\nMessage-ID: <notice@mx.client.example>\r\n\r\n"
    b"We are interested in your price list. This mailbox is not monitored.\r\n"
)


def test_machine_mail_suppresses_who_it_should_and_never_becomes_a_contact(
    database: str, tmp_path: Path
) -> None:
    outbox_id = _outbox_item("f.b@a.b.c", "<campaign-7@accountflow.example>")
    secret = LinkSigning.from_settings(get_settings()).secret
    verp = return_path_for(outbox_id, "bounces", "mail.accountflow.example", secret)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "local.eml").write_bytes(_local_dsn(verp, "5.1.1", "550 5.1.1 user unknown"))
    (folder / "arf.eml").write_bytes(ARF)
    (folder / "spam.eml").write_bytes(SPAM_REJECTION)
    (folder / "notice.eml").write_bytes(DAEMON_NOTICE)
    contacts_before = _count(Contact)

    summary = ingest_inbox(eml_dir=str(folder))

    assert summary.by_class == {"bounce": 3, "auto_reply": 1}
    assert summary.malformed_by_reason == {}  # a DSN without From is a DSN
    with session_scope() as s:
        ids = {m.source.rsplit(":", 1)[-1]: m.id for m in s.scalars(select(InboundMessage))}
    suppressions = _suppressions()
    # The address we mailed, not the local part the report named, with the report as evidence.
    assert suppressions["f.b@a.b.c"] == ("hard_bounce", ids["local.eml"])
    assert "f.b" not in suppressions
    assert suppressions["reader@isp.example"] == ("complaint", ids["arf.eml"])
    # A spam rejection says nothing bad about the address: counted, not suppressed.
    assert "good@client.example" not in suppressions
    with session_scope() as s:
        assert s.get(SoftBounce, "good@client.example") is not None
    assert _count(Contact) == contacts_before and _count(Complaint) == 0


def test_a_bounce_to_a_verp_address_signed_before_a_rotation_still_finds_its_mail(
    database: str, tmp_path: Path
) -> None:
    """A bounce comes back days after the send; a rotation in between must not cut it off
    from its outbox row, until the retired secret's grace is over."""
    grace = timedelta(days=get_settings().unsubscribe_secret_grace_days)
    recent = _outbox_item("recent@a.b.c", "<campaign-recent@accountflow.example>")
    stale = _outbox_item("stale@a.b.c", "<campaign-stale@accountflow.example>")
    first = LinkSigning.from_settings(get_settings()).secret
    stale_verp = return_path_for(stale, "bounces", "mail.accountflow.example", first)
    # The secret that signed the stale address was retired longer ago than the grace.
    rotate_generated_secret(get_settings(), datetime.now(UTC) - grace - timedelta(days=1))
    second = LinkSigning.from_settings(get_settings()).secret
    recent_verp = return_path_for(recent, "bounces", "mail.accountflow.example", second)
    rotate_generated_secret(get_settings())  # retires `second` now: within its grace
    assert LinkSigning.from_settings(get_settings()).secret not in (first, second)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "recent.eml").write_bytes(_local_dsn(recent_verp, "5.1.1", "550 5.1.1 unknown"))
    (folder / "stale.eml").write_bytes(_local_dsn(stale_verp, "5.1.1", "550 5.1.1 unknown"))

    summary = ingest_inbox(eml_dir=str(folder))

    assert summary.by_class == {"bounce": 2}
    suppressions = _suppressions()
    assert suppressions["recent@a.b.c"][0] == "hard_bounce"
    # Past its grace the old secret proves nothing: a forged bounce must not suppress.
    assert "stale@a.b.c" not in suppressions
    assert "f.b" not in suppressions
