"""SmtpSender against a real aiosmtpd server on loopback, scripted per recipient."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.campaign_policy import CAMPAIGNS_DIR, Campaign, load_campaign
from config.settings import SmtpSettings
from connectors.smtp_sender import OutboxDirSender, OutgoingEmail, SendOutcome, SmtpSender
from tasks.outreach.rendering import (
    Contact,
    LinkSigning,
    OutboxItem,
    TemplateStore,
    idempotency_key,
    parse_return_path,
    render_email,
)
from tests.peers.smtp import (  # noqa: F401  (fixtures)
    SmtpPeer,
    self_signed_certificate,
    smtp_peer_factory_fixture,
    smtp_peer_fixture,
)

SECRET = SecretStr("test-secret-0123456789")
LINKS = LinkSigning(SECRET, "https://acme.example.com")
NOW = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(CAMPAIGNS_DIR / "welcome-fair.yaml")


@pytest.fixture(scope="module")
def templates() -> TemplateStore:
    return TemplateStore()


def _email(campaign: Campaign, templates: TemplateStore, n: int) -> OutgoingEmail:
    step = campaign.steps[0]
    return render_email(
        campaign,
        step,
        Contact(n, f"Contato {n}", f"c{n}@client.example.org", language="pt"),
        OutboxItem(
            1000 + n, campaign.name, step.name, idempotency_key(campaign.name, n, step.name)
        ),
        date=NOW,
        links=LINKS,
        templates=templates,
    )


def _sender(peer: SmtpPeer, timeout: float = 5.0) -> SmtpSender:
    return SmtpSender(SmtpSettings(host=peer.host, port=peer.port, timeout_seconds=timeout))


def test_many_messages_go_over_one_connection_with_verp_envelope(
    smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore
) -> None:
    emails = [_email(campaign, templates, n) for n in range(5)]
    with _sender(smtp_peer) as sender:
        results = sender.send(emails)
    assert [r.outcome for r in results] == [SendOutcome.SENT] * 5
    assert [r.outbox_id for r in results] == [e.outbox_id for e in emails]
    assert results[0].provider_id is not None and "queued as Q000001" in results[0].provider_id
    assert smtp_peer.connections == 1
    assert len(smtp_peer.received) == 5
    first = smtp_peer.received[0]
    assert parse_return_path(first.mail_from, SECRET) == emails[0].outbox_id
    assert first.message["Message-ID"] == emails[0].message_id
    assert first.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_550_is_permanent_with_code_and_text_and_the_connection_serves_the_rest(
    smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore
) -> None:
    emails = [_email(campaign, templates, n) for n in range(3)]
    smtp_peer.answer("550", recipient="c1@client.example.org")
    with _sender(smtp_peer) as sender:
        results = sender.send(emails)
    assert [r.outcome for r in results] == [
        SendOutcome.SENT,
        SendOutcome.FAILED_PERMANENT,
        SendOutcome.SENT,
    ]
    assert results[1].code == 550 and "No such user" in results[1].detail
    assert smtp_peer.connections == 1
    assert [r.rcpt_tos for r in smtp_peer.received] == [
        ("c0@client.example.org",),
        ("c2@client.example.org",),
    ]


def test_451_is_retry(smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore) -> None:
    smtp_peer.answer("451")
    with _sender(smtp_peer) as sender:
        [result] = sender.send([_email(campaign, templates, 0)])
    assert result.outcome is SendOutcome.RETRY and result.code == 451
    assert smtp_peer.received == []


def test_421_is_retry_and_the_next_message_goes_over_a_new_connection(
    smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore
) -> None:
    smtp_peer.answer("421", recipient="c0@client.example.org")
    with _sender(smtp_peer) as sender:
        results = sender.send([_email(campaign, templates, 0), _email(campaign, templates, 1)])
    assert [r.outcome for r in results] == [SendOutcome.RETRY, SendOutcome.SENT]
    assert results[0].code == 421
    assert smtp_peer.connections == 2


def test_550_after_data_is_permanent(
    smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore
) -> None:
    smtp_peer.answer("550", at="data")
    with _sender(smtp_peer) as sender:
        [result] = sender.send([_email(campaign, templates, 0)])
    assert result.outcome is SendOutcome.FAILED_PERMANENT and result.code == 550


def test_stall_before_data_times_out_as_retry_and_the_sender_recovers(
    smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore
) -> None:
    smtp_peer.answer("stall", recipient="c0@client.example.org")
    with _sender(smtp_peer, timeout=0.3) as sender:
        results = sender.send([_email(campaign, templates, 0), _email(campaign, templates, 1)])
    assert [r.outcome for r in results] == [SendOutcome.RETRY, SendOutcome.SENT]
    assert "RCPT" in results[0].detail
    assert smtp_peer.connections == 2


def test_stall_after_data_is_unknown_never_retry(
    smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore
) -> None:
    smtp_peer.answer("stall", at="data", recipient="c0@client.example.org")
    with _sender(smtp_peer, timeout=0.3) as sender:
        results = sender.send([_email(campaign, templates, 0), _email(campaign, templates, 1)])
    assert [r.outcome for r in results] == [SendOutcome.UNKNOWN, SendOutcome.SENT]
    assert "after DATA" in results[0].detail


def test_connection_dropped_after_data_is_unknown(
    smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore
) -> None:
    smtp_peer.answer("drop", at="data")
    with _sender(smtp_peer) as sender:
        [result] = sender.send([_email(campaign, templates, 0)])
    assert result.outcome is SendOutcome.UNKNOWN


def test_connection_dropped_before_data_is_retry(
    smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore
) -> None:
    smtp_peer.answer("drop", at="rcpt", recipient="c0@client.example.org")
    with _sender(smtp_peer) as sender:
        results = sender.send([_email(campaign, templates, 0), _email(campaign, templates, 1)])
    assert [r.outcome for r in results] == [SendOutcome.RETRY, SendOutcome.SENT]


def test_a_connection_closed_while_idle_is_reopened_without_failing_the_message(
    smtp_peer: SmtpPeer, campaign: Campaign, templates: TemplateStore
) -> None:
    with _sender(smtp_peer) as sender:
        [first] = sender.send([_email(campaign, templates, 0)])
        smtp_peer.drop_connections()
        [second] = sender.send([_email(campaign, templates, 1)])
    assert (first.outcome, second.outcome) == (SendOutcome.SENT, SendOutcome.SENT)
    assert smtp_peer.connections == 2
    assert len(smtp_peer.received) == 2


def test_unreachable_server_marks_the_whole_batch_retry(
    campaign: Campaign, templates: TemplateStore
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connection refused
        sender = SmtpSender(SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=1))
        results = sender.send([_email(campaign, templates, n) for n in range(3)])
    assert [r.outcome for r in results] == [SendOutcome.RETRY] * 3
    assert all("connect failed" in r.detail for r in results)


def test_lines_starting_with_a_dot_arrive_intact(smtp_peer: SmtpPeer) -> None:
    raw = (
        b"From: a@acme.example.com\r\nTo: b@client.example.org\r\nSubject: dots\r\n"
        b"Message-ID: <dots@acme.example.com>\r\n\r\n.\r\n..two\r\n.hidden line\r\nend"
    )
    email = OutgoingEmail(
        7, raw, "bounces@acme.example.com", ("b@client.example.org",), "<dots@acme.example.com>"
    )
    with _sender(smtp_peer) as sender:
        [result] = sender.send([email])
    assert result.outcome is SendOutcome.SENT
    assert smtp_peer.received[0].data.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n") + b"\n"


def test_outbox_dir_sender_writes_one_file_per_outbox_row_and_reruns_overwrite(
    tmp_path: Path, campaign: Campaign, templates: TemplateStore
) -> None:
    emails = [_email(campaign, templates, n) for n in range(2)]
    sender = OutboxDirSender(tmp_path)
    sender.send(emails)
    results = sender.send(emails)
    assert [r.outcome for r in results] == [SendOutcome.SENT] * 2
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["1000.eml", "1001.eml"]
    assert (tmp_path / "1000.eml").read_bytes().endswith(emails[0].raw)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login_use_the_password_from_settings(
    tmp_path: Path,
    smtp_peer_factory: Callable[..., SmtpPeer],
    campaign: Campaign,
    templates: TemplateStore,
    security: str,
) -> None:
    certificate = self_signed_certificate(tmp_path)
    peer = smtp_peer_factory(
        security=security, certificate=certificate, credentials=("mailer", "s3cret")
    )
    settings = SmtpSettings(
        host=peer.host,
        port=peer.port,
        username="mailer",
        password=SecretStr("s3cret"),
        starttls=security == "starttls",
        ssl=security == "ssl",
        timeout_seconds=5,
    )
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with SmtpSender(settings, ssl_context=trust) as sender:
        results = sender.send([_email(campaign, templates, n) for n in range(2)])
    assert [r.outcome for r in results] == [SendOutcome.SENT] * 2
    assert peer.logins == ["mailer"]
    assert len(peer.received) == 2


def test_a_wrong_password_leaves_the_batch_for_retry_with_the_server_code(
    tmp_path: Path,
    smtp_peer_factory: Callable[..., SmtpPeer],
    campaign: Campaign,
    templates: TemplateStore,
) -> None:
    certificate = self_signed_certificate(tmp_path)
    peer = smtp_peer_factory(
        security="starttls", certificate=certificate, credentials=("mailer", "s3cret")
    )
    settings = SmtpSettings(
        host=peer.host,
        port=peer.port,
        username="mailer",
        password=SecretStr("wrong"),
        starttls=True,
        timeout_seconds=5,
    )
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with SmtpSender(settings, ssl_context=trust) as sender:
        results = sender.send([_email(campaign, templates, n) for n in range(2)])
    assert [(r.outcome, r.code) for r in results] == [(SendOutcome.RETRY, 535)] * 2
    assert "wrong" not in results[0].detail
    assert peer.received == []


def test_an_untrusted_certificate_is_refused(
    tmp_path: Path,
    smtp_peer_factory: Callable[..., SmtpPeer],
    campaign: Campaign,
    templates: TemplateStore,
) -> None:
    peer = smtp_peer_factory(security="starttls", certificate=self_signed_certificate(tmp_path))
    settings = SmtpSettings(host=peer.host, port=peer.port, starttls=True, timeout_seconds=5)
    with SmtpSender(settings) as sender:  # system trust store: the test CA is unknown
        [result] = sender.send([_email(campaign, templates, 0)])
    assert result.outcome is SendOutcome.RETRY and "SSLCertVerificationError" in result.detail
    assert peer.received == []
