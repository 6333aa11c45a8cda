"""Tables of lead ingestion: batches, files, source rows, contacts, companies, history.

Every input row and every merge leaves a trace here: ``source_rows`` keeps the raw values,
the disposition and the rule that matched; ``contact_history`` keeps what changed.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

# The tables our foreign keys name: declared with ours, so this module imported alone
# is a schema SQLAlchemy can order a flush and resolve keys in (see the package).
from connectors.database import scoring_models  # noqa: F401
from connectors.database.base import Base, utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings with a CHECK, so adding a value is a small migration on both
    # SQLite and PostgreSQL (no ALTER TYPE).
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Disposition(enum.StrEnum):
    accepted = "accepted"
    duplicate = "duplicate"
    quarantined = "quarantined"


class FileStatus(enum.StrEnum):
    ingested = "ingested"
    rejected = "rejected"


class ImportBatch(Base):
    __tablename__ = "import_batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    summary: Mapped[dict[str, object] | None] = mapped_column(JSON)


class SourceFile(Base):
    """One input file; its content hash makes re-ingestion a no-op."""

    __tablename__ = "source_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int]
    event: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[FileStatus] = mapped_column(_enum(FileStatus))
    rows_in: Mapped[int] = mapped_column(default=0)
    detail: Mapped[dict[str, object] | None] = mapped_column(JSON)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)


class Company(Base):
    __tablename__ = "companies"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    name_key: Mapped[str] = mapped_column(String(300), index=True)
    tax_id: Mapped[str | None] = mapped_column(String(32), index=True)
    country: Mapped[str | None] = mapped_column(String(2))
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)  # account manager
    owner_rule: Mapped[str | None] = mapped_column(String(16))  # account | territory | round_robin
    tier: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


_HAS_EMAIL = text("email IS NOT NULL")
_HAS_PHONE = text("phone IS NOT NULL")


class Contact(Base):
    """A real person. Their own email and phone are on this row, and indexed: lookups by
    email or phone read these columns and ``contact_identifiers`` (see there)."""

    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_email", "email", sqlite_where=_HAS_EMAIL, postgresql_where=_HAS_EMAIL),
        Index("ix_contacts_phone", "phone", sqlite_where=_HAS_PHONE, postgresql_where=_HAS_PHONE),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    full_name: Mapped[str | None] = mapped_column(String(400))
    # No index on name_key: matching reads contacts by what they share with a batch.
    name_key: Mapped[str | None] = mapped_column(String(400))
    email: Mapped[str | None] = mapped_column(String(320))
    email_domain: Mapped[str | None] = mapped_column(String(255))
    is_free_mail: Mapped[bool] = mapped_column(default=False)
    phone: Mapped[str | None] = mapped_column(String(32))
    job_title: Mapped[str | None] = mapped_column(String(300))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    country: Mapped[str | None] = mapped_column(String(2))
    state: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(200))
    tax_id: Mapped[str | None] = mapped_column(String(32))
    lead_rating: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    source_event: Mapped[str | None] = mapped_column(String(200))
    first_seen_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    # Latest score, copied from prospect_scores so exports and audiences need no join; the
    # reasons text is shared per distinct explanation (score_reasons), not copied per row.
    score: Mapped[float | None]
    band: Mapped[str | None] = mapped_column(String(4))
    scorecard_version: Mapped[str | None] = mapped_column(String(64))
    score_reason_id: Mapped[int | None] = mapped_column(ForeignKey("score_reasons.id"))
    scored_at: Mapped[datetime | None]
    score_fingerprint: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactIdentifier(Base):
    """The emails and phones a contact was seen with besides its own (on its ``contacts``
    row), and its personal tax ids: with the row, every identifier exact matching knows.

    Not a copy of the row's own email and phone: nearly every contact has one of each, and
    writing them here as well cost an ingestion a second row, three index entries and a
    foreign-key check per identifier, 320,000 of them for 200,000 input rows.
    """

    __tablename__ = "contact_identifiers"
    # Also the index for lookups by (kind, value): its leading columns.
    __table_args__ = (UniqueConstraint("kind", "value", "contact_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactHistory(Base):
    """What a later sighting changed on a contact, and which row said so."""

    __tablename__ = "contact_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    source_row_id: Mapped[int | None] = mapped_column(ForeignKey("source_rows.id"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


_QUARANTINED = text("disposition = 'quarantined'")


class SourceRow(Base):
    __tablename__ = "source_rows"
    __table_args__ = (
        # Also the index for a file's rows: file_id leads it.
        UniqueConstraint("file_id", "row_number"),
        # The quarantine export, in its order. Partial: a row is indexed only if it is
        # quarantined (a few percent), not every row for a three-valued column.
        Index(
            "ix_source_rows_quarantined",
            "file_id",
            "row_number",
            sqlite_where=_QUARANTINED,
            postgresql_where=_QUARANTINED,
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("source_files.id"))
    row_number: Mapped[int]
    raw: Mapped[dict[str, object]] = mapped_column(JSON)
    disposition: Mapped[Disposition] = mapped_column(_enum(Disposition))
    reason: Mapped[str | None] = mapped_column(String(64))
    flags: Mapped[str | None] = mapped_column(String(300))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    match_rule: Mapped[str | None] = mapped_column(String(64))
    match_score: Mapped[float | None]
