"""Contracts, their obligations and fulfilment events, obligation notices; account health,
next best actions and preliminary talks.

Every row that someone is answerable for carries ``owner_id`` (a team member id, as on
complaints), so a hand-over of a dismissed manager's work is one UPDATE per table.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name: declared with ours, so this module imported alone
# is a schema SQLAlchemy can order a flush and resolve keys in (see the package).
from connectors.database import (
    inbox_models,  # noqa: F401
    ingest_models,  # noqa: F401
)
from connectors.database.base import Base, utcnow


class Contract(Base):
    __tablename__ = "contracts"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)  # CT-...
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    start_date: Mapped[date]
    end_date: Mapped[date | None]
    renewal_date: Mapped[date | None]
    notice_days: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(300))  # file name or "api"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Obligation(Base):
    """Something the contract commits us to, with the state the last watch found it in."""

    __tablename__ = "obligations"
    __table_args__ = (UniqueConstraint("contract_id", "ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    ref: Mapped[str] = mapped_column(String(200))  # unique within the contract
    # delivery | service_level | report | payment_terms | price_review | renewal | notice
    kind: Mapped[str] = mapped_column(String(16))
    item: Mapped[str | None] = mapped_column(String(300))
    quantity: Mapped[float | None]
    metric: Mapped[str | None] = mapped_column(String(32))  # response | resolution | uptime
    target: Mapped[str | None] = mapped_column(String(300))
    due_date: Mapped[date | None]
    derived: Mapped[bool] = mapped_column(default=False)  # renewal/notice from contract dates
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str | None] = mapped_column(String(16), index=True)
    state_as_of: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What all of its events say, kept in step by the store whenever events are stored, so
    # the hourly watch reads one row per obligation instead of grouping every event.
    ev_delivered: Mapped[float] = mapped_column(default=0.0)  # delivered quantities
    ev_credited_qty: Mapped[float] = mapped_column(default=0.0)  # quantities credited back
    ev_completed: Mapped[bool] = mapped_column(default=False)
    ev_sla_missed: Mapped[bool] = mapped_column(default=False)
    ev_invoiced: Mapped[int] = mapped_column(default=0)  # invoices issued
    ev_credited: Mapped[int] = mapped_column(default=0)  # credit notes issued
    ev_last_at: Mapped[datetime | None]  # the latest event's instant
    # When the state can next change: its next boundary (due soon, late, period over), or
    # at once when events were stored; None when only an event can change it. The watch
    # reads just the obligations whose instant has come (and new ones).
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)


class ObligationEvent(Base):
    """A fulfilment fact: from a file, the API, or derived from a complaint's SLA breach."""

    __tablename__ = "obligation_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(200), unique=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), index=True)
    # delivered | partially_delivered | invoiced | credited | sla_met | sla_missed | completed
    kind: Mapped[str] = mapped_column(String(24))
    quantity: Mapped[float | None]
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(300))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ObligationNotice(Base):
    """One notification per (obligation, state, due date): the key makes reruns silent."""

    __tablename__ = "obligation_notices"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    due_date: Mapped[date | None]
    owner_id: Mapped[str] = mapped_column(String(64))
    recipient_id: Mapped[str] = mapped_column(String(64))
    delegation: Mapped[str] = mapped_column(String(16))  # present | deputy | no_deputy | ...
    as_of: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    notified_at: Mapped[datetime | None]
    email_outcome: Mapped[str | None] = mapped_column(String(32))
    webhook_outcome: Mapped[str | None] = mapped_column(String(32))
    webhook_attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


Index("ix_obligation_notices_pending", ObligationNotice.email_outcome)


class AccountHealth(Base):
    """Every health score given to a company, so a band change can be explained later."""

    __tablename__ = "account_health"
    __table_args__ = (UniqueConstraint("company_id", "as_of"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    as_of: Mapped[datetime]
    score: Mapped[float]
    band: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[str] = mapped_column(Text)
    factors: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccountAction(Base):
    """The next best action each scoring run gave an account, with its reason and owner."""

    __tablename__ = "account_actions"
    __table_args__ = (UniqueConstraint("company_id", "as_of"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    as_of: Mapped[datetime] = mapped_column(index=True)
    rule: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    due_date: Mapped[date]
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    assignee_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Talk(Base):
    """A preliminary talk: the proposal (2-3 slots, each an invitation), the answer the inbox
    recognised, and the outcome the manager recorded. The proposal email is claimed
    ``sending`` and committed before it goes out, so it goes at most once."""

    __tablename__ = "talks"
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    recipient: Mapped[str] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))  # the client's
    slots: Mapped[list[Any]] = mapped_column(JSON)  # ISO 8601 UTC starts
    duration_minutes: Mapped[int]
    message_id: Mapped[str] = mapped_column(String(300), index=True)
    # proposed | accepted | tentative | declined | held | no_show | cancelled | won | lost
    status: Mapped[str] = mapped_column(String(16), index=True)
    email_outcome: Mapped[str | None] = mapped_column(String(32))
    accepted_slot: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    proposed_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
