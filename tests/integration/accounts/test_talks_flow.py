"""The preliminary-talk loop through real peers: the proposal goes through the outreach
outbox to a real SMTP server at most once (even when the dispatcher dies after the send),
the client accepts one slot from their mail client, the reply lands in a real dovecot
mailbox, `ingest-inbox` reads it over IMAP, and `talks sync` moves the talk to accepted
with that slot; the manager then records the outcome."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email import policy

import pytest
from icalendar import Calendar
from typer.testing import CliRunner

from config.accounts_policy import clear_accounts_caches
from connectors.database.accounts_models import Talk
from connectors.database.engine import session_scope
from flows.accounts import propose_talk, send_talk_proposals, sync_talk_replies
from flows.cli import app
from flows.inbox import ingest_inbox as ingest_inbox_flow
from tasks.complaints.intake import ComplaintIn
from tasks.complaints.pipeline import store_complaints
from tasks.complaints.policies import clear_caches
from tests.flow_runs import run_to_end
from tests.integration.complaints.support import at, complaint_policies  # noqa: F401
from tests.integration.outreach.support import use_smtp
from tests.peers.dovecot import DovecotServer
from tests.peers.smtp import SmtpPeer

pytestmark = [pytest.mark.usefixtures("prefect_harness", "complaint_policies")]
ingest_inbox = run_to_end(ingest_inbox_flow)


@pytest.fixture
def talk_env(
    database: str, dovecot: DovecotServer, smtp_peer: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SmtpPeer]:
    values = {
        "HOST": dovecot.host, "PORT": str(dovecot.port), "USERNAME": dovecot.username,
        "PASSWORD": dovecot.password, "SECURITY": "plain", "TIMEOUT_SECONDS": "10",
    }  # fmt: skip
    for key, value in values.items():
        monkeypatch.setenv(f"ACCOUNTFLOW_IMAP__{key}", value)
    use_smtp(monkeypatch, smtp_peer.host, smtp_peer.port)
    clear_caches()
    clear_accounts_caches()
    yield smtp_peer
    clear_accounts_caches()


def interested_client() -> None:
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


def outbox_statuses() -> list[tuple[str, str]]:
    from sqlalchemy import select

    from connectors.database.engine import session_scope
    from connectors.database.outreach_models import OutboxItem

    with session_scope() as s:
        return [tuple(r) for r in s.execute(select(OutboxItem.campaign, OutboxItem.status))]  # type: ignore[misc]


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
    talk_env: SmtpPeer, dovecot: DovecotServer
) -> None:
    interested_client()
    talk = propose_talk("Cliente Ltda", as_of=at(7, 12))
    assert talk.created and talk.owner_id == "ana" and len(talk.slots) == 3
    assert talk.email_outcome == "sent"
    again = propose_talk("Cliente Ltda", as_of=at(7, 15))  # same day: the same talk, not resent
    assert (again.talk_id, again.created) == (talk.talk_id, False)
    assert send_talk_proposals(as_of=at(7, 16))["sent"] == 0
    assert len(talk_env.received) == 1
    assert talk_env.received[0].rcpt_tos == ("joana@cliente.example",)
    assert outbox_statuses() == [("talks", "sent")]
    proposal = email.message_from_bytes(talk_env.received[0].data, policy=policy.default)

    dovecot.append("INBOX", reply(proposal, 1, "ACCEPTED"))
    summary = ingest_inbox(imap=True)
    assert summary.stored == 1
    with session_scope() as s:  # the inbox run moved the talk: no `talks sync` needed
        moved = s.get(Talk, talk.talk_id)
        assert moved is not None and moved.status == "accepted"
    synced = sync_talk_replies()
    assert (synced.rsvps_seen, synced.talks_updated) == (1, 0)  # applied once, by the inbox

    runner = CliRunner()
    shown = runner.invoke(app, ["talks", "record", str(talk.talk_id), "--outcome", "held",
                                "--note", "wants a quote for 200 kits"])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert f"talk {talk.talk_id} with Cliente Ltda" in shown.output and ": held;" in shown.output
    with session_scope() as s:
        stored = s.get(Talk, talk.talk_id)
        assert stored is not None
        assert stored.accepted_slot is not None
        assert stored.accepted_slot.replace(tzinfo=talk.slots[1].tzinfo) == talk.slots[1]
        assert stored.outcome_note == "wants a quote for 200 kits"
        assert stored.status == "held"
    bad = runner.invoke(app, ["talks", "record", str(talk.talk_id), "--outcome", "maybe"])
    assert bad.exit_code == 1 and "unknown outcome 'maybe'" in bad.output


def test_a_dispatcher_killed_after_the_send_never_sends_the_proposal_again(
    talk_env: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.database import outreach_store

    interested_client()

    def die(*args: object, **kwargs: object) -> None:
        raise SystemExit("killed after the SMTP server took the message")

    # The process dies between the server's 250 and the commit of the result: the outbox
    # row stays `sending`, only the dispatcher's journal knows the message went out.
    with monkeypatch.context() as m:
        m.setattr(outreach_store, "finish_sends", die)
        with pytest.raises(BaseException, match="killed"):
            propose_talk("Cliente Ltda", as_of=at(7, 12))
    assert len(talk_env.received) == 1
    assert outbox_statuses() == [("talks", "sending")]

    again = send_talk_proposals(as_of=at(7, 13))
    assert again["recovered_unknown"] == 0 and again["sent"] == 0
    talk = propose_talk("Cliente Ltda", as_of=at(7, 14))  # the manager tries again
    assert len(talk_env.received) == 1  # the peer still has exactly one message
    assert outbox_statuses() == [("talks", "sent")]  # settled from the journal
    assert talk.email_outcome == "sent"


def test_a_proposal_to_a_suppressed_address_is_never_sent(
    talk_env: SmtpPeer,
) -> None:
    from connectors.database import outreach_store
    from connectors.database.engine import session_scope

    interested_client()
    with session_scope() as s:
        outreach_store.suppress(
            s,
            [{"channel": "email", "address": "joana@cliente.example", "reason": "opt_out",
              "source": "test", "contact_id": None}],
        )  # fmt: skip
    talk = propose_talk("Cliente Ltda", as_of=at(7, 12))
    assert talk.email_outcome == "suppressed"
    assert talk_env.received == []


def test_a_proposal_made_at_night_waits_for_the_clients_morning(talk_env: SmtpPeer) -> None:
    interested_client()
    talk = propose_talk("Cliente Ltda", as_of=at(7, 23))  # 20:00 in Sao Paulo
    assert talk.email_outcome == "planned" and talk_env.received == []
    assert send_talk_proposals(as_of=at(8, 12))["sent"] == 1  # 09:00 the next day
    assert len(talk_env.received) == 1


def test_a_dispatcher_killed_with_sigkill_mid_send_never_sends_the_proposal_twice(
    talk_env: SmtpPeer,
) -> None:
    """The real CLI in a child process, killed the instant the peer has the message: the
    result may or may not have been committed; either way a rerun sends nothing more."""
    from prefect.settings import PREFECT_API_URL

    from tasks.accounts.pipeline import propose_talk as create_talk

    interested_client()
    talk = create_talk("Cliente Ltda", None, at(7, 12))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    child = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "talks", "send", "--as-of", at(7, 12).isoformat()],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not talk_env.received and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)
    killed = child.poll() is None  # it still has its result to keep and Prefect to close
    if killed:
        os.kill(child.pid, signal.SIGKILL)
    _, err = child.communicate(timeout=60)
    assert killed and len(talk_env.received) == 1, err.decode()[-2000:]

    after = send_talk_proposals(as_of=at(7, 13))
    assert after["sent"] == 0
    assert send_talk_proposals(as_of=at(7, 14))["sent"] == 0
    assert len(talk_env.received) == 1
    [(_, status)] = outbox_statuses()
    # `sent` from its journal, or `unknown` (for a person) if the kill beat the journal.
    assert status in ("sent", "unknown")
    with session_scope() as s:
        stored = s.get(Talk, talk.talk_id)
        assert stored is not None and stored.email_outcome == status
