"""The transactional outbox: one row per (campaign, contact, step), sent at most once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from connectors.database.base import Base, utcnow


class OutboxItem(Base):
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    campaign: Mapped[str] = mapped_column(String(120), index=True)
    step: Mapped[int]
    channel: Mapped[str] = mapped_column(String(16))  # email | fax | invitation
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    message_id: Mapped[str] = mapped_column(String(300))
    language: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(320))
    envelope_from: Mapped[str | None] = mapped_column(String(320))
    # planned | sending | sent | retry | failed_permanent | unknown | suppressed | skipped
    status: Mapped[str] = mapped_column(String(24), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    sent_at: Mapped[datetime | None]
    provider_id: Mapped[str | None] = mapped_column(String(300))
    last_code: Mapped[int | None]
    last_detail: Mapped[str | None] = mapped_column(Text)
    final_status: Mapped[str | None] = mapped_column(String(32))
    final_status_at: Mapped[datetime | None]
    preview_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_outbox_status_due", OutboxItem.status, OutboxItem.next_attempt_at)


class DeliveryEvent(Base):
    """What a provider later said about a sent item (fax callbacks and polls, DSNs)."""

    __tablename__ = "delivery_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    provider_id: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(32))
    error_type: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
