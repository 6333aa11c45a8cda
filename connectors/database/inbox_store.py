"""Reads and writes for inbox ingestion; the only module that speaks SQL for it.

Bulk inserts reuse ``ingest_store.insert_with_ids`` / ``insert_rows`` (reserved ids, no
RETURNING). Every function runs inside the caller's transaction: a batch of messages, its
complaints, suppressions and the IMAP checkpoint that covers it commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.database.base import utcnow
from connectors.database.complaints_models import Complaint, ComplaintEvent
from connectors.database.inbox_models import (
    Bounce,
    ImapCheckpoint,
    InboundMessage,
    SoftBounce,
    Suppression,
)
from connectors.database.ingest_models import SourceFile, SourceRow
from connectors.database.ingest_store import CHUNK, insert_rows, insert_with_ids, reserve_ids
from connectors.database.outreach_models import OutboxItem
from connectors.mailbox import ImapCheckpoint as Checkpoint


@dataclass(frozen=True)
class ThreadRef:
    """A stored message a follow-up can point at, and the complaint it belongs to."""

    message_id: int
    complaint_id: int | None


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def stored_sources(session: Session, sources: Sequence[str]) -> set[str]:
    """Which of ``sources`` are already stored (a rerun stores nothing new)."""
    found: set[str] = set()
    for part in _chunks(list(sources)):
        found.update(
            session.scalars(select(InboundMessage.source).where(InboundMessage.source.in_(part)))
        )
    return found


def load_checkpoint(session: Session, host: str, username: str, mailbox: str) -> Checkpoint | None:
    row = session.get(ImapCheckpoint, (host, username, mailbox))
    if row is None:
        return None
    return Checkpoint(row.mailbox, row.uidvalidity, row.last_uid)


def save_checkpoint(session: Session, host: str, username: str, checkpoint: Checkpoint) -> None:
    """Insert or advance the checkpoint; the caller's transaction makes it atomic with the batch.

    Call it after ``ingest_store.lock_for_ingestion`` so concurrent runs take turns.
    """
    key = (host, username, checkpoint.mailbox)
    row = session.get(ImapCheckpoint, key)
    if row is None:
        session.add(
            ImapCheckpoint(
                host=host,
                username=username,
                mailbox=checkpoint.mailbox,
                uidvalidity=checkpoint.uidvalidity,
                last_uid=checkpoint.last_uid,
            )
        )
    elif row.uidvalidity != checkpoint.uidvalidity or row.last_uid < checkpoint.last_uid:
        # Never backwards within one UIDVALIDITY: a slower concurrent run committing an
        # older batch after a faster one would only cause refetches, but why pay for them.
        row.uidvalidity = checkpoint.uidvalidity
        row.last_uid = checkpoint.last_uid
        row.updated_at = utcnow()
    session.flush()


def thread_refs(session: Session, message_ids: Iterable[str]) -> dict[str, ThreadRef]:
    """Stored messages by Message-ID; the first stored wins when a Message-ID repeats."""
    wanted = sorted(set(message_ids))
    found: dict[str, ThreadRef] = {}
    for part in _chunks(wanted):
        rows = session.execute(
            select(InboundMessage.message_id, InboundMessage.id, InboundMessage.complaint_id)
            .where(InboundMessage.message_id.in_(part))
            .order_by(InboundMessage.id)
        )
        for msgid, mid, complaint_id in rows:
            if msgid is not None:
                found.setdefault(msgid, ThreadRef(mid, complaint_id))
    return found


def row_contacts(session: Session, file_sha256: str) -> dict[int, int | None]:
    """Contact id per row number of the staged file with this hash."""
    rows = session.execute(
        select(SourceRow.row_number, SourceRow.contact_id)
        .join(SourceFile, SourceFile.id == SourceRow.file_id)
        .where(SourceFile.sha256 == file_sha256)
    )
    return {number: contact for number, contact in rows}


def outbox_by_message_id(session: Session, message_ids: Iterable[str]) -> dict[str, int]:
    """Outbox row per Message-ID we sent, so a bounce points at the item it answers."""
    wanted = sorted(set(message_ids))
    found: dict[str, int] = {}
    for part in _chunks(wanted):
        rows = session.execute(
            select(OutboxItem.message_id, OutboxItem.id).where(OutboxItem.message_id.in_(part))
        )
        found.update({msgid: oid for msgid, oid in rows})
    return found


def outbox_recipients(session: Session, outbox_ids: Iterable[int]) -> dict[int, str]:
    """The address each outbox row was sent to, so a bounce that named only a local part
    (``Final-Recipient: LOCAL;<f.b>``) suppresses the address we really mailed."""
    wanted = sorted(set(outbox_ids))
    found: dict[int, str] = {}
    for part in _chunks(wanted):
        rows = session.execute(
            select(OutboxItem.id, OutboxItem.recipient).where(OutboxItem.id.in_(part))
        )
        found.update({oid: recipient.lower() for oid, recipient in rows})
    return found


def suppressed(session: Session, channel: str, addresses: Iterable[str]) -> set[str]:
    wanted = sorted(set(addresses))
    found: set[str] = set()
    for part in _chunks(wanted):
        found.update(
            session.scalars(
                select(Suppression.address).where(
                    Suppression.channel == channel, Suppression.address.in_(part)
                )
            )
        )
    return found


def soft_bounce_counts(session: Session, addresses: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(addresses))
    found: dict[str, int] = {}
    for part in _chunks(wanted):
        rows = session.execute(
            select(SoftBounce.address, SoftBounce.count).where(SoftBounce.address.in_(part))
        )
        found.update({address: count for address, count in rows})
    return found


def save_soft_bounces(
    session: Session, counts: dict[str, tuple[int, str | None, int]], existing: set[str]
) -> None:
    """Write address -> (count, last status, last message id); ``existing`` are updates."""
    now = utcnow()
    new = [
        {"address": a, "count": c, "last_status": st, "last_message_id": m, "updated_at": now}
        for a, (c, st, m) in counts.items()
        if a not in existing
    ]
    insert_rows(session, SoftBounce, new)
    for address, (count, status, message) in counts.items():
        if address in existing:
            session.execute(
                update(SoftBounce)
                .where(SoftBounce.address == address)
                .values(count=count, last_status=status, last_message_id=message, updated_at=now)
            )


def reserve_message_ids(session: Session, count: int) -> list[int]:
    return reserve_ids(session, InboundMessage, count)


def reserve_complaint_ids(session: Session, count: int) -> list[int]:
    return reserve_ids(session, Complaint, count)


def insert_messages(session: Session, values: list[dict[str, Any]]) -> None:
    """Rows carry their reserved ``id`` (follow-ups point at earlier ids in the same batch)."""
    insert_rows(session, InboundMessage, values)


def insert_complaints(
    session: Session, complaints: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    insert_rows(session, Complaint, complaints)
    insert_with_ids(session, ComplaintEvent, events)


def insert_suppressions(session: Session, values: list[dict[str, Any]]) -> None:
    insert_with_ids(session, Suppression, values)


def insert_bounces(session: Session, values: list[dict[str, Any]]) -> None:
    insert_with_ids(session, Bounce, values)


__all__ = [
    "ThreadRef",
    "insert_bounces",
    "insert_complaints",
    "insert_messages",
    "insert_suppressions",
    "load_checkpoint",
    "outbox_by_message_id",
    "reserve_complaint_ids",
    "reserve_message_ids",
    "row_contacts",
    "save_checkpoint",
    "save_soft_bounces",
    "soft_bounce_counts",
    "stored_sources",
    "suppressed",
    "thread_refs",
]
