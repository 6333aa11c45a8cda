"""The transactional outbox: one row per (campaign, contact, step), sent at most once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name: declared with ours, so this module imported alone
# is a schema SQLAlchemy can order a flush and resolve keys in (see the package).
from connectors.database import ingest_models  # noqa: F401
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
    # Copied from the plan so a claim or a retry needs no join: the step's name, the
    # recipient's zone and country (send window, holidays) and the sender (daily cap).
    step_name: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    sender_address: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


Index("ix_outbox_status_due", OutboxItem.status, OutboxItem.next_attempt_at)
Index("ix_outbox_sender_claimed", OutboxItem.sender_address, OutboxItem.claimed_at)


class OutreachProfile(Base):
    """What outreach needs about a contact that ingestion does not record.

    Segment and tags feed campaign audiences; zone and language pick the send window and
    the template; the fax number is kept apart from the phone so a voice line is never
    faxed by accident. Contacts without a profile fall back to country-based defaults.
    """

    __tablename__ = "outreach_profiles"
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    segment: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[str | None] = mapped_column(Text)  # comma-separated, lower case
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    fax: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


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
