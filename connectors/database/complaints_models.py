"""Complaints, the events that drive their SLA clocks, escalations and hand-overs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name: declared with ours, so this module imported alone
# is a schema SQLAlchemy can order a flush and resolve keys in (see the package).
from connectors.database import ingest_models  # noqa: F401
from connectors.database.base import Base, utcnow


class Complaint(Base):
    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # inbox | import | api
    external_ref: Mapped[str | None] = mapped_column(String(200), unique=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    # The message that opened it; no FOREIGN KEY because inbound_messages points back here
    # (complaint_id), and SQLite cannot add the second half of such a cycle later.
    inbound_message_id: Mapped[int | None]
    category: Mapped[str | None] = mapped_column(String(64))
    root_cause: Mapped[str | None] = mapped_column(String(120))
    severity: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str | None] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(120))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)  # account manager
    assignee_id: Mapped[str | None] = mapped_column(String(64), index=True)  # owner or stand-in
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | waiting | resolved
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    # SLA state cached by the last `escalate-complaints` run (as of ``sla_as_of``), so that
    # exports and reports read due times without re-running the clocks.
    response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    response_state: Mapped[str | None] = mapped_column(String(16))
    resolution_state: Mapped[str | None] = mapped_column(String(16))
    sla_state: Mapped[str | None] = mapped_column(String(16), index=True)
    sla_as_of: Mapped[datetime | None]


class ComplaintEvent(Base):
    __tablename__ = "complaint_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    # created | responded | waiting_on_client | resumed | resolved | reopened
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)


class ComplaintEscalation(Base):
    __tablename__ = "complaint_escalations"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    clock: Mapped[str] = mapped_column(String(32))
    level: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))  # warning | breach
    at_fraction: Mapped[float]
    due_at: Mapped[datetime]
    owner_id: Mapped[str | None] = mapped_column(String(64))
    recipient_id: Mapped[str] = mapped_column(String(64))
    notify: Mapped[bool] = mapped_column(default=True)
    as_of: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    notified_at: Mapped[datetime | None]
    webhook_outcome: Mapped[str | None] = mapped_column(String(32))
    webhook_attempts: Mapped[int] = mapped_column(default=0)
    email_outcome: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)


class ComplaintHandover(Base):
    __tablename__ = "complaint_handovers"
    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    owner_id: Mapped[str | None] = mapped_column(String(64))
    from_id: Mapped[str | None] = mapped_column(String(64))
    to_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    chain: Mapped[str | None] = mapped_column(String(300))
    at: Mapped[datetime]


class OwnershipState(Base):
    """Small key/value state such as the round-robin cursor for account ownership."""

    __tablename__ = "ownership_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(300))
