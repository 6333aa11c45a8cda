"""Tables of the inbox: every message with its provenance and class, suppression, bounces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name: declared with ours, so this module imported alone
# is a schema SQLAlchemy can order a flush and resolve keys in (see the package).
from connectors.database import (
    complaints_models,  # noqa: F401
    ingest_models,  # noqa: F401
    outreach_models,  # noqa: F401
)
from connectors.database.base import Base, utcnow


class InboundMessage(Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(500), unique=True)  # file name or mailbox:UID
    mailbox: Mapped[str | None] = mapped_column(String(300))
    uidvalidity: Mapped[int | None]
    uid: Mapped[int | None]
    # None only for a message too big to download: we never saw its bytes to hash them.
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int]
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)
    from_address: Mapped[str | None] = mapped_column(String(320), index=True)
    from_name: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime | None]
    label: Mapped[str] = mapped_column(String(32), index=True)  # the message's class
    severity: Mapped[str | None] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(120))
    evidence: Mapped[list[Any] | None] = mapped_column(JSON)
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    malformed_reason: Mapped[str | None] = mapped_column(String(64))
    malformed_detail: Mapped[str | None] = mapped_column(Text)
    oversize: Mapped[bool] = mapped_column(default=False)
    rsvp_answer: Mapped[str | None] = mapped_column(String(32))
    rsvp_uid: Mapped[str | None] = mapped_column(String(300))
    thread_parent_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaints.id"), index=True)
    suppressed_address: Mapped[str | None] = mapped_column(String(320))
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImapCheckpoint(Base):
    """Last UID stored per mailbox and UIDVALIDITY; committed with the messages it covers."""

    __tablename__ = "imap_checkpoints"
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    username: Mapped[str] = mapped_column(String(320), primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(300), primary_key=True)
    uidvalidity: Mapped[int]
    last_uid: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """An address (email or E.164 phone) that must not be contacted on a channel."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "address"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | fax
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(32))  # opt_out | hard_bounce | complaint | manual
    source: Mapped[str | None] = mapped_column(String(64))  # inbox | token | mailto | fax_callback
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SoftBounce(Base):
    __tablename__ = "soft_bounces"
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Bounce(Base):
    __tablename__ = "bounces"
    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_message_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(8))  # hard | soft
    status: Mapped[str | None] = mapped_column(String(16))
    original_message_id: Mapped[str | None] = mapped_column(String(998))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))


Index("ix_suppressions_address", Suppression.address)
