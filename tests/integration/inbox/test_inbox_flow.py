"""The `ingest-inbox` flow end to end: real dovecot, real SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from config.settings import get_settings
from connectors.database.complaints_models import Complaint, ComplaintEvent
from connectors.database.engine import session_scope
from connectors.database.inbox_models import (
    Bounce,
    ImapCheckpoint,
    InboundMessage,
    SoftBounce,
    Suppression,
)
from connectors.database.ingest_models import Contact
from connectors.database.outreach_models import DeliveryEvent, OutboxItem
from flows.cli import app
from flows.inbox import ingest_inbox as ingest_inbox_flow
from flows.inbox import sample_inbox
from tasks.common.exports import export_frame
from tests.flow_runs import run_to_end
from tests.peers.dovecot import DovecotServer

pytestmark = pytest.mark.usefixtures("prefect_harness")
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mail"


ingest_inbox = run_to_end(ingest_inbox_flow)


def rows(model: Any) -> list[Any]:
    with session_scope() as s:
        return list(s.scalars(select(model).order_by(*model.__table__.primary_key.columns)))


def by_source() -> dict[str, InboundMessage]:
    return {m.source: m for m in rows(InboundMessage)}


def count(model: Any) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def mail(
    n: int,
    subject: str = "Quote request",
    body: str = "Could you send us a quotation for 20 units?",
    sender: str = "buyer{n}@client{n}.example",
    headers: str = "",
) -> bytes:
    return (
        f"From: Buyer {n} <{sender.format(n=n)}>\r\nTo: vendas@accountflow.example\r\n"
        f"Subject: {subject}\r\nDate: Tue, 03 Mar 2026 10:{n % 60:02d}:00 -0300\r\n"
        f"Message-ID: <t{n}@client.example>\r\n{headers}\r\n{body}\r\n"
    ).encode()


def dsn(n: int, recipient: str, status: str, original: str) -> bytes:
    action = "failed" if status.startswith("5") else "delayed"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.accountflow.example>\r\n"
        "To: vendas@accountflow.example\r\nSubject: Delivery Status Notification\r\n"
        f"Message-ID: <dsn{n}@mx.accountflow.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nDelivery problem.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.accountflow.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: vendas@accountflow.example\r\nTo: {recipient}\r\nMessage-ID: {original}\r\n\r\n"
        "--b--\r\n"
    ).encode()


def write_eml(folder: Path, messages: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in messages.items():
        (folder / name).write_bytes(raw)
    return folder


# --- folders -----------------------------------------------------------------------------------


def test_sample_inbox_lands_once_with_every_message_accounted_for(database: str) -> None:
    summary = ingest_inbox(eml_dir=sample_inbox())
    assert summary.reconciles and summary.stored == summary.messages_in == 13
    assert summary.by_class == {
        "lead": 4, "rsvp": 1, "complaint": 4, "auto_reply": 1, "bounce": 1, "unsubscribe": 1,
        "malformed": 1,
    }  # fmt: skip
    assert (summary.new_complaints, summary.attached_followups) == (3, 1)
    assert summary.suppressions_by_reason == {"hard_bounce": 1, "opt_out": 1}
    assert summary.malformed_by_reason == {"header_injection": 1}

    msgs = by_source()
    mark = msgs["eml:01_lead_en.eml"].contact_id
    assert mark is not None and msgs["eml:13_lead_again_en.eml"].contact_id == mark
    claudia = msgs["eml:06_complaint_pt.eml"]
    assert msgs["eml:08_complaint_followup_pt.eml"].contact_id == claudia.contact_id
    people = [m.contact_id for m in msgs.values() if m.label in ("lead", "complaint", "rsvp")]
    assert count(Contact) == summary.new_contacts == len(set(people)) == 7

    again = ingest_inbox(eml_dir=sample_inbox())
    assert again.stored == 0 and again.already_stored == 13 and again.reconciles
    assert count(InboundMessage) == 13 and count(Contact) == 7 and count(Complaint) == 3


def test_each_fixture_message_gets_its_labelled_class_severity_and_reference(
    database: str,
) -> None:
    summary = ingest_inbox(eml_dir=str(FIXTURES), batch_size=50)
    with (FIXTURES / "labels.csv").open(encoding="utf-8") as fh:
        labels = {f"eml:{r['file']}": r for r in csv.DictReader(fh)}
    msgs = by_source()
    assert set(msgs) == set(labels) and summary.stored == len(labels)
    for source, want in labels.items():
        got = msgs[source]
        assert got.label == want["class"], source
        if want["class"] == "complaint":
            assert (got.severity, got.reference or "") == (want["severity"], want["reference"])
    seen = Counter((m.label, labels[s]["language"]) for s, m in msgs.items())
    for cls in ("lead", "complaint", "auto_reply", "bounce", "unsubscribe", "spam"):
        assert all(seen[(cls, lang)] > 0 for lang in ("pt", "es", "en")), cls
    rsvp = [m for s, m in msgs.items() if "rsvp_" in s]
    assert {m.rsvp_answer for m in rsvp} == {"accepted"}


def test_every_malformed_message_is_kept_with_reason_and_hash_and_feeds_nothing(
    database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    for path in (FIXTURES / "malformed").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    summary = ingest_inbox(eml_dir=str(folder))
    with (FIXTURES / "labels.csv").open(encoding="utf-8") as fh:
        reasons = {
            f"eml:{r['file'].split('/')[1]}": r["reference"]
            for r in csv.DictReader(fh)
            if r["class"] == "malformed"
        }
    msgs = by_source()
    assert {s: m.malformed_reason for s, m in msgs.items()} == reasons
    for source, m in msgs.items():
        raw = (folder / source.removeprefix("eml:")).read_bytes()
        assert m.label == "malformed" and m.sha256 == hashlib.sha256(raw).hexdigest()
        assert m.from_address is None and m.contact_id is None and m.subject is None
    assert summary.malformed_by_reason == dict(Counter(reasons.values()))
    assert count(Contact) == count(Suppression) == count(Complaint) == 0


def test_hard_bounce_suppresses_and_points_at_the_outbox_item_it_answers(
    database: str, tmp_path: Path
) -> None:
    with session_scope() as s:
        contact = Contact(email="gone@client.example", full_name="Gone Person")
        s.add(contact)
        s.flush()
        s.add(
            OutboxItem(
                idempotency_key="k1", campaign="spring", step=1, channel="email",
                contact_id=contact.id, message_id="<campaign-1@accountflow.example>",
                language="en", recipient="gone@client.example", status="sent",
                due_at=datetime(2026, 3, 1),
            )
        )  # fmt: skip
    folder = write_eml(
        tmp_path / "in",
        {"hard.eml": dsn(1, "gone@client.example", "5.1.1", "<campaign-1@accountflow.example>")},
    )
    summary = ingest_inbox(eml_dir=str(folder))
    assert (summary.hard_bounces, summary.bounces_matched_to_outbox) == (1, 1)
    [bounce] = rows(Bounce)
    [item] = rows(OutboxItem)
    assert (bounce.kind, bounce.recipient, bounce.outbox_id) == (
        "hard",
        "gone@client.example",
        item.id,
    )
    [sup] = rows(Suppression)
    [msg] = rows(InboundMessage)
    assert (sup.channel, sup.address, sup.reason) == ("email", "gone@client.example", "hard_bounce")
    assert sup.inbound_message_id == msg.id and msg.suppressed_address == "gone@client.example"
    # The outbox row keeps "sent" (it went out once) and says it never arrived ...
    assert (item.status, item.final_status) == ("sent", "hard_bounce")
    [event] = rows(DeliveryEvent)
    assert (event.outbox_id, event.status, event.error_code) == (item.id, "hard_bounce", "5.1.1")
    # ... so ops find it among the failed outreach.
    failed = CliRunner().invoke(app, ["outreach", "failed", "--json"])
    assert failed.exit_code == 0, failed.output
    assert [(r["id"], r["final_status"]) for r in json.loads(failed.stdout)] == [
        (item.id, "hard_bounce")
    ]


def test_soft_bounces_are_counted_and_suppress_only_at_the_configured_limit(
    database: str, tmp_path: Path
) -> None:
    address, original = "full@busy.example", "<campaign-2@accountflow.example>"
    for n in (1, 2):
        ingest_inbox(
            eml_dir=str(
                write_eml(tmp_path / f"r{n}", {f"s{n}.eml": dsn(n, address, "4.2.2", original)})
            )
        )
    [tally] = rows(SoftBounce)
    assert tally.count == 2 and count(Suppression) == 0  # limit is 3 in config/inbox.yaml

    summary = ingest_inbox(
        eml_dir=str(write_eml(tmp_path / "r3", {"s3.eml": dsn(3, address, "4.2.2", original)}))
    )
    assert summary.suppressions_by_reason == {"soft_bounce_limit": 1}
    [sup] = rows(Suppression)
    assert sup.address == address and rows(SoftBounce)[0].count == 3


def test_opt_out_suppresses_the_sender_with_the_message_as_evidence(
    database: str, tmp_path: Path
) -> None:
    folder = write_eml(
        tmp_path / "in",
        {
            "optout.eml": mail(
                1, "Remover", "Por favor, parem de me enviar e-mails.", "ana@cliente.example"
            )
        },
    )
    ingest_inbox(eml_dir=str(folder))
    [msg] = rows(InboundMessage)
    [sup] = rows(Suppression)
    assert msg.label == "unsubscribe" and msg.suppressed_address == "ana@cliente.example"
    assert (sup.reason, sup.source, sup.inbound_message_id) == ("opt_out", "inbox", msg.id)


def test_mail_that_is_no_request_goes_to_review_as_other_without_a_contact(
    database: str, tmp_path: Path
) -> None:
    folder = write_eml(
        tmp_path / "in",
        {
            "thanks.eml": mail(
                1, "Lunch", "Thanks for lunch yesterday, lovely to catch up. Happy holidays!"
            ),
            "minutes.eml": mail(2, "Minutes", "FYI, minutes of Tuesday attached, no action."),
            "lead.eml": mail(3),
        },
    )
    summary = ingest_inbox(eml_dir=str(folder))
    msgs = {s.removeprefix("eml:"): m for s, m in by_source().items()}
    assert msgs["thanks.eml"].label == msgs["minutes.eml"].label == "other"
    assert msgs["thanks.eml"].contact_id is None and msgs["minutes.eml"].contact_id is None
    assert msgs["lead.eml"].label == "lead" and msgs["lead.eml"].contact_id is not None
    assert summary.by_class == {"other": 2, "lead": 1} and summary.new_contacts == 1
    assert count(Contact) == 1 and count(Complaint) == 0 and count(Suppression) == 0
    assert any(e["rule"].startswith("model:") for e in msgs["thanks.eml"].evidence)
    out = CliRunner().invoke(app, ["export", "messages", "--format", "csv"])
    listed = {r["source"]: r for r in csv.DictReader(io.StringIO(out.output))}
    assert listed["eml:thanks.eml"]["class"] == "other"
    assert listed["eml:thanks.eml"]["contact_id"] == ""


def test_follow_ups_join_the_complaint_they_answer_instead_of_opening_one(
    database: str, tmp_path: Path
) -> None:
    complaint = "This is unacceptable, the order 48213 arrived damaged and nobody answered."
    first = write_eml(
        tmp_path / "day1",
        {
            "a.eml": mail(1, "Complaint about order 48213", complaint),
            "b.eml": mail(2),  # a lead: replies to it are not part of any complaint
        },
    )
    ingest_inbox(eml_dir=str(first))
    [opened] = rows(Complaint)
    second = write_eml(
        tmp_path / "day2",
        {
            # References only (no In-Reply-To): still the same thread.
            "c.eml": mail(3, "Re: Complaint", "Still broken, this is a complaint again.",
                          headers="References: <t1@client.example>\r\n"),
            "d.eml": mail(4, "Re: Re: Complaint", "Any news?",
                          headers="In-Reply-To: <t3@client.example>\r\n"),
            "e.eml": mail(5, "Re: Quote", "Wrong quote and a defective product: a complaint.",
                          headers="In-Reply-To: <t2@client.example>\r\n"),
            "f.eml": mail(6, "Complaint", "Terrible service, refund me now."),
            "g.eml": mail(7, "Re: Complaint", "I complain again: unacceptable.",
                          headers="In-Reply-To: <t6@client.example>\r\n"),
        },
    )  # fmt: skip
    summary = ingest_inbox(eml_dir=str(second))
    msgs = {s.removeprefix("eml:"): m for s, m in by_source().items()}
    assert msgs["c.eml"].complaint_id == msgs["d.eml"].complaint_id == opened.id
    assert msgs["c.eml"].thread_parent_id == msgs["a.eml"].id
    assert msgs["d.eml"].thread_parent_id == msgs["c.eml"].id
    assert msgs["e.eml"].thread_parent_id == msgs["b.eml"].id
    assert msgs["g.eml"].complaint_id == msgs["f.eml"].complaint_id  # same batch, one complaint
    assert (summary.new_complaints, summary.attached_followups) == (2, 3)
    complaints = rows(Complaint)
    assert len(complaints) == 3 and {c.status for c in complaints} == {"open"}
    assert all(c.source == "inbox" and c.contact_id for c in complaints)
    events = rows(ComplaintEvent)
    assert sorted(e.complaint_id for e in events) == sorted(c.id for c in complaints)
    assert {e.kind for e in events} == {"created"}
    assert events[0].at == datetime(2026, 3, 3, 13, 1)  # the message's Date, in UTC


def test_cli_ingests_a_folder_and_exports_messages_with_their_outcome(database: str) -> None:
    runner = CliRunner()
    both = runner.invoke(app, ["ingest", "inbox", "--imap", "--eml-dir", sample_inbox()])
    assert both.exit_code != 0 and "exactly one" in both.output
    result = runner.invoke(app, ["ingest", "inbox", "--eml-dir", sample_inbox(), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["stored"] == 13
    human = runner.invoke(app, ["ingest", "inbox", "--eml-dir", sample_inbox()])
    assert "13 already stored" in human.output

    frame = export_frame("messages")
    wanted = ["source", "message_id", "class", "severity", "reference", "contact_id",
              "suppressed_address"]  # fmt: skip
    assert list(frame.columns[:7]) == wanted and len(frame) == 13
    out = runner.invoke(app, ["export", "messages", "--format", "csv"])
    lines = {r["source"]: r for r in csv.DictReader(io.StringIO(out.output))}
    assert lines["eml:10_hard_bounce.eml"]["suppressed_address"] == "nobody@gone.example"
    assert lines["eml:06_complaint_pt.eml"]["severity"] == "critical"
    assert lines["eml:06_complaint_pt.eml"]["reference"] == "CT-2025-0201"
    assert lines["eml:01_lead_en.eml"]["contact_id"]


# --- IMAP --------------------------------------------------------------------------------------


@pytest.fixture
def imap(database: str, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> DovecotServer:
    """Settings pointing at a fresh dovecot user over plaintext loopback."""
    values = {
        "HOST": dovecot.host, "PORT": str(dovecot.port), "USERNAME": dovecot.username,
        "PASSWORD": dovecot.password, "SECURITY": "plain", "TIMEOUT_SECONDS": "10",
    }  # fmt: skip
    for key, value in values.items():
        monkeypatch.setenv(f"ACCOUNTFLOW_IMAP__{key}", value)
    get_settings.cache_clear()
    return dovecot


def _uidvalidity(server: DovecotServer, mailbox: str = "INBOX") -> int:
    conn = server.client()
    conn.select(f'"{mailbox}"', readonly=True)
    _, data = conn.response("UIDVALIDITY")
    conn.logout()
    return int(data[-1])


def _uids() -> list[int]:
    return sorted(m.uid for m in rows(InboundMessage) if m.uid is not None)


def test_crash_mid_fetch_then_rerun_stores_every_message_exactly_once(
    imap: DovecotServer,
) -> None:
    imap.deliver([mail(n) for n in range(1, 9)])
    uidvalidity = _uidvalidity(imap)
    # A row already holding UID 5's key under another name: the second batch (UIDs 4-6)
    # fails inside its transaction, as a crash between fetch and commit would.
    with session_scope() as s:
        s.add(InboundMessage(source="poison", mailbox="INBOX", uidvalidity=uidvalidity, uid=5,
                             sha256="0" * 64, size=0, label="malformed"))  # fmt: skip
    with pytest.raises(IntegrityError):
        ingest_inbox(imap=True, batch_size=3)
    assert _uids() == [1, 2, 3, 5]
    [checkpoint] = rows(ImapCheckpoint)
    assert (checkpoint.uidvalidity, checkpoint.last_uid) == (uidvalidity, 3)

    with session_scope() as s:
        s.execute(delete(InboundMessage).where(InboundMessage.source == "poison"))
    summary = ingest_inbox(imap=True, batch_size=3)
    assert summary.stored == 5 and _uids() == list(range(1, 9))
    assert rows(ImapCheckpoint)[0].last_uid == 8
    assert count(InboundMessage) == 8
    sources = [m.source for m in rows(InboundMessage)]
    assert sources[0] == f"imap:INBOX:{uidvalidity}:1"


def test_uidvalidity_change_reads_the_recreated_mailbox_from_the_start(
    imap: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNTFLOW_IMAP__MAILBOX", "Leads")
    get_settings.cache_clear()
    imap.append("Leads", mail(1))
    imap.append("Leads", mail(2))
    assert ingest_inbox(imap=True).stored == 2
    old = rows(ImapCheckpoint)[0].uidvalidity

    conn = imap.client()
    conn.delete('"Leads"')
    conn.logout()
    imap.append("Leads", mail(3))  # recreated: new UIDVALIDITY, UIDs restart at 1
    summary = ingest_inbox(imap=True)
    assert summary.uidvalidity_reset and summary.stored == 1
    [checkpoint] = rows(ImapCheckpoint)
    assert checkpoint.uidvalidity != old and checkpoint.last_uid == 1
    assert count(InboundMessage) == 3


def test_oversize_message_is_recorded_without_its_body_and_not_fetched_again(
    imap: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNTFLOW_IMAP__MAX_MESSAGE_BYTES", "2000")
    get_settings.cache_clear()
    imap.append("INBOX", mail(1))
    imap.append("INBOX", mail(2, body="x" * 5000))
    summary = ingest_inbox(imap=True)
    assert summary.oversize == 1 and summary.malformed_by_reason == {"oversize": 1}
    big = [m for m in rows(InboundMessage) if m.oversize]
    assert len(big) == 1 and big[0].sha256 is None and big[0].size > 5000
    assert big[0].label == "malformed" and big[0].message_id is None
    assert ingest_inbox(imap=True).messages_in == 0


def test_password_from_a_prefect_secret_block_and_processed_mail_is_moved(
    imap: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    Secret(value=imap.password).save("accountflow-test-imap", overwrite=True)
    monkeypatch.delenv("ACCOUNTFLOW_IMAP__PASSWORD")
    monkeypatch.setenv("ACCOUNTFLOW_IMAP__PASSWORD_BLOCK", "accountflow-test-imap")
    monkeypatch.setenv("ACCOUNTFLOW_IMAP__MOVE_TO", "Processed")
    get_settings.cache_clear()
    imap.append("INBOX", mail(1))
    imap.append("INBOX", mail(2))
    summary = ingest_inbox(imap=True)
    assert summary.stored == 2 and summary.moved == 2
    conn = imap.client()
    conn.select("INBOX", readonly=True)
    _, left = conn.uid("SEARCH", "ALL")
    conn.select('"Processed"', readonly=True)
    _, moved = conn.uid("SEARCH", "ALL")
    conn.logout()
    assert left == [b""] and len(moved[0].split()) == 2
