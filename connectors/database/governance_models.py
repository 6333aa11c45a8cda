"""Governance: who may act (member tokens), what the team became (changes over the seed
``config/team.yaml``), who took over what (hand-overs), and who changed what (audit)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name: declared with ours, so this module imported alone
# is a schema SQLAlchemy can order a flush and resolve keys in (see the package).
from connectors.database import (
    ingest_models,  # noqa: F401
    outreach_models,  # noqa: F401
)
from connectors.database.base import Base, utcnow


class MemberToken(Base):
    """An API token of a team member; only its SHA-256 is stored, never the token."""

    __tablename__ = "member_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(120))
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class TeamChange(Base):
    """One applied change to the team (appoint, dismiss, set_deputy, absence), with its
    author and time; the effective team is the seed with every change applied in id order."""

    __tablename__ = "team_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[str] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, object]] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class OwnershipHandover(Base):
    """A piece of open work moved from a dismissed manager to another, by which change."""

    __tablename__ = "ownership_handovers"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("team_changes.id"), index=True)
    # company | complaint | contract | obligation | notice | escalation | action | talk | cadence
    item_kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int]
    from_id: Mapped[str] = mapped_column(String(64))
    to_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditRecord(Base):
    """Append-only: who did what to which thing, when, with the state before and after.

    The migration adds triggers refusing UPDATE and DELETE on both databases.
    """

    __tablename__ = "audit_records"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(120))
    before: Mapped[dict[str, object] | None] = mapped_column(JSON)
    after: Mapped[dict[str, object] | None] = mapped_column(JSON)


class GovernanceSetting(Base):
    """Small installation-wide values, such as the salt of erased identities' hashes."""

    __tablename__ = "governance_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(300))


class ContactSource(Base):
    """Where a contact was first collected and the lawful basis we hold them on (LGPD art. 7,
    GDPR art. 6), set at ingestion: the fair scan (event, file, row) or the inbound mail
    (its Message-ID). A later sighting may raise the basis (a consent column, a contract),
    never replace the first source."""

    __tablename__ = "contact_sources"
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    lawful_basis: Mapped[str] = mapped_column(String(32), index=True)
    basis_rule: Mapped[str] = mapped_column(String(120))  # which rule gave the basis
    source_kind: Mapped[str] = mapped_column(String(16))  # exhibition | inbox | unknown
    source_event: Mapped[str | None] = mapped_column(String(200))
    source_file: Mapped[str | None] = mapped_column(String(500))
    source_row_id: Mapped[int | None]
    source_row_number: Mapped[int | None]
    message_id: Mapped[str | None] = mapped_column(String(998))
    inbound_message_id: Mapped[int | None]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactConfirmation(Base):
    """The person confirmed the details we hold are right (a re-verification email's link):
    every field holding a value counts as confirmed at that instant."""

    __tablename__ = "contact_confirmations"
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    confirmed_at: Mapped[datetime] = mapped_column(default=utcnow)
