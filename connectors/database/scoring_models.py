"""Tables of reliability scoring: score history, reasons, registry cache, outcomes, events."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name: declared with ours, so this module imported alone
# is a schema SQLAlchemy can order a flush and resolve keys in (see the package).
from connectors.database import ingest_models  # noqa: F401
from connectors.database.base import Base, utcnow


class ScoreReason(Base):
    """One explanation (codes, readable text, skipped factors), stored once.

    A million contacts share a few thousand explanations; storing the ~700 characters
    with every score made the text most of what a scoring run wrote. ``digest`` (sha256
    of the three texts) is the natural key that lets runs reuse an explanation.
    """

    __tablename__ = "score_reasons"
    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    reason_codes: Mapped[str] = mapped_column(Text)
    reasons: Mapped[str] = mapped_column(Text)
    skipped_codes: Mapped[str | None] = mapped_column(Text)


class ProspectScore(Base):
    """Every score ever given, so a band change can be explained after the fact.

    Lookups by contact use the unique key, whose first column is ``contact_id``: a
    separate index on it would only be maintained, never read.
    """

    __tablename__ = "prospect_scores"
    __table_args__ = (UniqueConstraint("contact_id", "as_of", "scorecard_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    as_of: Mapped[datetime]
    score: Mapped[float]
    band: Mapped[str] = mapped_column(String(4))
    scorecard_version: Mapped[str] = mapped_column(String(64))
    reason_id: Mapped[int] = mapped_column(ForeignKey("score_reasons.id"))
    input_fingerprint: Mapped[int | None] = mapped_column(BigInteger)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RegistryCacheEntry(Base):
    __tablename__ = "registry_cache"
    tax_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    legal_status: Mapped[str | None] = mapped_column(String(64))
    founded: Mapped[date | None]
    size: Mapped[str | None] = mapped_column(String(32))
    fetched_at: Mapped[datetime]
    last_unavailable_reason: Mapped[str | None] = mapped_column(String(64))


class Outcome(Base):
    """What became of a prospect (won/lost, paid/defaulted): the ground truth for calibration."""

    __tablename__ = "outcomes"
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    source: Mapped[str | None] = mapped_column(String(64))


class AppEvent(Base):
    """Domain events (``prospect.band.changed``, ...), keyed so a rerun emits nothing new."""

    __tablename__ = "app_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
