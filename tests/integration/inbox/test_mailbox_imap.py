"""IMAP reading against a real dovecot on loopback: checkpoints, crashes, UIDVALIDITY, caps."""

from __future__ import annotations

import ssl

import pytest

from config.settings import ImapSettings
from connectors.mailbox import ImapBatch, ImapCheckpoint, ImapReader, RawMessage
from tests.peers import dovecot as peer
from tests.peers.dovecot import DovecotServer

# Fixtures from the peer module, exposed here because tests/conftest.py is not ours to edit.
dovecot = peer.dovecot
dovecot_server = peer.dovecot_server


def _msg(n: int, body: str = "Hello") -> bytes:
    return (
        f"From: sender{n}@example.test\r\nTo: inbox@example.test\r\nSubject: message {n}\r\n"
        f"Message-ID: <m{n}@example.test>\r\n\r\n{body} {n}\r\n"
    ).encode()


def _settings(server: DovecotServer, **overrides: object) -> ImapSettings:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "password": server.password,
        "security": "plain",
        "timeout_seconds": 10.0,
    }
    values.update(overrides)
    return ImapSettings.model_validate(values)


def _subjects(messages: list[RawMessage]) -> list[str]:
    out = []
    for m in messages:
        assert m.raw is not None
        out.append(m.raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode())
    return out


def _drain(
    server: DovecotServer, checkpoint: ImapCheckpoint | None, **overrides: object
) -> tuple[list[ImapBatch], ImapCheckpoint | None]:
    with ImapReader(_settings(server, **overrides)) as reader:
        batches = list(reader.batches(checkpoint, batch_size=3))
    return batches, (batches[-1].checkpoint if batches else checkpoint)


def test_rerun_from_checkpoint_fetches_only_new_messages(dovecot: DovecotServer) -> None:
    for n in range(1, 6):
        dovecot.append("INBOX", _msg(n))
    batches, checkpoint = _drain(dovecot, None)
    assert [m.uid for b in batches for m in b.messages] == [1, 2, 3, 4, 5]
    assert checkpoint is not None and checkpoint.last_uid == 5

    again, same = _drain(dovecot, checkpoint)
    assert again == [] and same == checkpoint  # "6:*" matches UID 5 on the wire; filtered

    dovecot.append("INBOX", _msg(6))
    dovecot.append("INBOX", _msg(7))
    new, checkpoint = _drain(dovecot, checkpoint)
    assert _subjects([m for b in new for m in b.messages]) == ["message 6", "message 7"]
    assert checkpoint is not None and checkpoint.last_uid == 7


def test_crash_mid_fetch_then_rerun_neither_skips_nor_repeats(dovecot: DovecotServer) -> None:
    dovecot.deliver([_msg(n) for n in range(1, 9)])
    stored: list[str] = []
    committed: ImapCheckpoint | None = None
    with ImapReader(_settings(dovecot)) as reader:
        for index, batch in enumerate(reader.batches(None, batch_size=3)):
            if index == 1:
                break  # crash: the second batch was fetched but never persisted
            stored.extend(_subjects(list(batch.messages)))  # persist + commit together
            committed = batch.checkpoint
    assert committed is not None and committed.last_uid == 3

    batches, _ = _drain(dovecot, committed)
    stored.extend(_subjects([m for b in batches for m in b.messages]))
    assert stored == [f"message {n}" for n in range(1, 9)]


def test_uidvalidity_change_restarts_from_zero_and_is_reported(dovecot: DovecotServer) -> None:
    dovecot.append("Leads", _msg(1))
    dovecot.append("Leads", _msg(2))
    _, checkpoint = _drain(dovecot, None, mailbox="Leads")
    assert checkpoint is not None and checkpoint.last_uid == 2

    conn = dovecot.client()
    conn.delete('"Leads"')
    conn.logout()
    dovecot.append("Leads", _msg(3))  # recreated: new UIDVALIDITY, UIDs restart at 1

    batches, new = _drain(dovecot, checkpoint)
    assert batches[0].uidvalidity_reset is True
    assert batches[0].previous_uidvalidity == checkpoint.uidvalidity
    assert new is not None and new.uidvalidity != checkpoint.uidvalidity
    assert _subjects(list(batches[0].messages)) == ["message 3"]
    assert all(not b.uidvalidity_reset for b in batches[1:])


def test_uidvalidity_change_on_empty_mailbox_still_returns_new_checkpoint(
    dovecot: DovecotServer,
) -> None:
    dovecot.append("INBOX", _msg(1))
    _, checkpoint = _drain(dovecot, None)
    assert checkpoint is not None
    stale = ImapCheckpoint("INBOX", checkpoint.uidvalidity + 1, 99)
    batches, new = _drain(dovecot, stale)
    assert len(batches) == 1 and batches[0].uidvalidity_reset
    assert new == ImapCheckpoint("INBOX", checkpoint.uidvalidity, 1)


def test_oversized_message_is_recorded_without_body_and_not_fetched_again(
    dovecot: DovecotServer,
) -> None:
    dovecot.append("INBOX", _msg(1))
    dovecot.append("INBOX", _msg(2, body="x" * 5000))
    dovecot.append("INBOX", _msg(3))
    batches, checkpoint = _drain(dovecot, None, max_message_bytes=2000)
    messages = [m for b in batches for m in b.messages]
    assert [m.uid for m in messages] == [1, 2, 3]
    big = messages[1]
    assert big.oversize and big.raw is None and big.size > 5000
    assert big.source == f"imap:INBOX:{big.uidvalidity}:2"
    assert not messages[0].oversize and messages[0].raw is not None

    again, _ = _drain(dovecot, checkpoint, max_message_bytes=2000)
    assert again == []


def test_acknowledge_moves_processed_mail_and_is_idempotent(dovecot: DovecotServer) -> None:
    for n in range(1, 5):
        dovecot.append("INBOX", _msg(n))
    settings = _settings(dovecot, move_to="Processed")
    with ImapReader(settings) as reader:
        batches = list(reader.batches(None, batch_size=2))
        # Only what the caller committed moves: here the first batch.
        assert reader.acknowledge(batches[0].checkpoint) == 2
        assert reader.acknowledge(batches[0].checkpoint) == 0

    conn = dovecot.client()
    conn.select('"Processed"', readonly=True)
    _, moved = conn.uid("SEARCH", "ALL")
    conn.select("INBOX", readonly=True)
    _, left = conn.uid("SEARCH", "ALL")
    conn.logout()
    assert len(moved[0].split()) == 2
    assert left[0].split() == [b"3", b"4"]


def test_fetch_does_not_mark_mail_as_read(dovecot: DovecotServer) -> None:
    dovecot.append("INBOX", _msg(1))
    _drain(dovecot, None)
    conn = dovecot.client()
    conn.select("INBOX", readonly=True)
    _, unseen = conn.uid("SEARCH", "UNSEEN")
    conn.logout()
    assert unseen[0].split() == [b"1"]


def test_thousand_messages_fetched_in_one_run(dovecot: DovecotServer) -> None:
    dovecot.deliver([_msg(n) for n in range(1, 1001)])
    with ImapReader(_settings(dovecot)) as reader:
        uids = [m.uid for b in reader.batches(None, batch_size=250) for m in b.messages]
    assert uids == list(range(1, 1001))


def _trusting(server: DovecotServer) -> ssl.SSLContext:
    assert server.cert_path is not None
    return ssl.create_default_context(cafile=str(server.cert_path))


def test_implicit_tls_is_the_default_and_verifies_the_certificate(
    dovecot: DovecotServer,
) -> None:
    dovecot.append("INBOX", _msg(1))
    settings = ImapSettings(
        host="127.0.0.1", port=dovecot.tls_port, username=dovecot.username,
        password=dovecot.password, timeout_seconds=10.0,
    )  # fmt: skip
    assert settings.security == "ssl"
    with ImapReader(settings, ssl_context=_trusting(dovecot)) as reader:
        assert [m.uid for b in reader.batches() for m in b.messages] == [1]
    with pytest.raises(ssl.SSLCertVerificationError):
        ImapReader(settings).connect()  # system trust store does not know the test CA


def test_starttls_upgrades_the_plain_port(dovecot: DovecotServer) -> None:
    dovecot.append("INBOX", _msg(1))
    settings = _settings(dovecot, security="starttls")
    with ImapReader(settings, ssl_context=_trusting(dovecot)) as reader:
        assert reader.conn._tls_established
        assert [m.uid for b in reader.batches() for m in b.messages] == [1]
