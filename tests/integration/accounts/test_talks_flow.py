"""The preliminary-talk loop through real peers: the proposal goes out at most once, the
client accepts one slot from their mail client, the reply lands in a real dovecot mailbox,
`ingest-inbox` reads it over IMAP, and `talks sync` moves the talk to accepted with that
slot; the manager then records the outcome."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
from icalendar import Calendar
from typer.testing import CliRunner

from config.accounts_policy import clear_accounts_caches
from config.settings import get_settings
from flows.accounts import propose_talk, sync_talk_replies
from flows.cli import app
from flows.inbox import ingest_inbox as ingest_inbox_flow
from tasks.complaints.intake import ComplaintIn
from tasks.complaints.pipeline import store_complaints
from tasks.complaints.policies import clear_caches
from tests.flow_runs import run_to_end
from tests.integration.complaints.support import at, complaint_policies  # noqa: F401
from tests.peers.dovecot import DovecotServer

pytestmark = [pytest.mark.usefixtures("prefect_harness", "complaint_policies")]
ingest_inbox = run_to_end(ingest_inbox_flow)


@pytest.fixture
def talk_env(
    database: str, dovecot: DovecotServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    values = {
        "HOST": dovecot.host, "PORT": str(dovecot.port), "USERNAME": dovecot.username,
        "PASSWORD": dovecot.password, "SECURITY": "plain", "TIMEOUT_SECONDS": "10",
    }  # fmt: skip
    for key, value in values.items():
        monkeypatch.setenv(f"ACCOUNTFLOW_IMAP__{key}", value)
    monkeypatch.setenv("ACCOUNTFLOW_COMPLAINTS_EMAIL", "dir")
    monkeypatch.setenv("ACCOUNTFLOW_COMPLAINTS_OUTBOX_DIR", str(tmp_path / "sent"))
    get_settings.cache_clear()
    clear_caches()
    clear_accounts_caches()
    yield tmp_path / "sent"
    clear_accounts_caches()


def reply(proposal: email.message.Message, slot: int, partstat: str) -> bytes:
    """What a mail client sends when the invitee clicks Accept on one of the invitations."""
    invites = [p for p in proposal.walk() if p.get_content_type() == "text/calendar"]
    event = Calendar.from_ical(invites[slot].get_content()).walk("VEVENT")[0]
    return (
        "From: Joana Prado <joana@cliente.example>\r\n"
        f"To: {proposal['From']}\r\n"
        f"Subject: Accepted: {event['SUMMARY']}\r\n"
        "Date: Tue, 08 Dec 2026 10:00:00 -0300\r\n"
        "Message-ID: <rsvp-joana@cliente.example>\r\n"
        f"In-Reply-To: {proposal['Message-ID']}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nJoana has accepted.\r\n"
        "--b\r\nContent-Type: text/calendar; method=REPLY; charset=utf-8\r\n\r\n"
        "BEGIN:VCALENDAR\r\nPRODID:-//Mail//EN\r\nVERSION:2.0\r\nMETHOD:REPLY\r\n"
        f"BEGIN:VEVENT\r\nUID:{event['UID']}\r\n"
        f"ATTENDEE;PARTSTAT={partstat};CN=Joana Prado:mailto:joana@cliente.example\r\n"
        f"DTSTART:{event['DTSTART'].to_ical().decode()}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        "--b--\r\n"
    ).encode()


def test_a_proposal_goes_once_and_the_accepted_slot_comes_back_through_imap(
    talk_env: Path, dovecot: DovecotServer
) -> None:
    store_complaints(
        [
            ComplaintIn(
                email="joana@cliente.example",
                name="Joana Prado",
                company="Cliente Ltda",
                country="BR",
                state="SP",
                subject="interested in a bigger order",
                created_at=at(7, 9),
            )
        ],
        "api",
    )
    talk = propose_talk("Cliente Ltda", as_of=at(7, 12))
    assert talk.created and talk.owner_id == "ana" and len(talk.slots) == 3
    assert talk.email_outcome == "sent"
    again = propose_talk("Cliente Ltda", as_of=at(7, 15))  # same day: the same talk, not resent
    assert (again.talk_id, again.created) == (talk.talk_id, False)
    sent = sorted(talk_env.glob("*.eml"))
    assert len(sent) == 1
    proposal = email.message_from_bytes(sent[0].read_bytes(), policy=policy.default)

    dovecot.append("INBOX", reply(proposal, 1, "ACCEPTED"))
    summary = ingest_inbox(imap=True)
    assert summary.stored == 1
    synced = sync_talk_replies()
    assert (synced.rsvps_seen, synced.talks_updated) == (1, 1)
    assert sync_talk_replies().talks_updated == 0  # applied once

    runner = CliRunner()
    shown = runner.invoke(app, ["talks", "record", str(talk.talk_id), "--outcome", "held",
                                "--note", "wants a quote for 200 kits"])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert f"talk {talk.talk_id} with Cliente Ltda" in shown.output and ": held;" in shown.output
    from connectors.database.accounts_models import Talk
    from connectors.database.engine import session_scope

    with session_scope() as s:
        stored = s.get(Talk, talk.talk_id)
        assert stored is not None
        assert stored.accepted_slot is not None
        assert stored.accepted_slot.replace(tzinfo=talk.slots[1].tzinfo) == talk.slots[1]
        assert stored.outcome_note == "wants a quote for 200 kits"
    bad = runner.invoke(app, ["talks", "record", str(talk.talk_id), "--outcome", "maybe"])
    assert bad.exit_code == 1 and "unknown outcome 'maybe'" in bad.output
