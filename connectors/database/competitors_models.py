"""Competitor pages we watch, their text snapshots, every fetch, and the changes between."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from connectors.database.base import Base, utcnow


class CompetitorPage(Base):
    """A watched URL and what the last fetch established (validators for the next one)."""

    __tablename__ = "competitor_pages"
    id: Mapped[int] = mapped_column(primary_key=True)
    competitor_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    points: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    # fetched | not_modified | failed | blocked | unreadable
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    last_reason: Mapped[str | None] = mapped_column(Text)
    last_http_status: Mapped[int | None]
    last_fetched_at: Mapped[datetime | None]
    last_changed_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    # The latest snapshot; no FOREIGN KEY because snapshots point back here (as complaints
    # and inbound messages do), and SQLite cannot add the second half of such a cycle.
    current_snapshot_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CompetitorSnapshot(Base):
    """A page's main text, stored only when it differs from the page's previous snapshot."""

    __tablename__ = "competitor_snapshots"
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("competitor_pages.id"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    fetched_at: Mapped[datetime]
    http_status: Mapped[int]
    kind: Mapped[str] = mapped_column(String(8))  # html | pdf
    text: Mapped[str] = mapped_column(Text)


class CompetitorFetch(Base):
    """One attempt at one page in one run: the fault log the report and export read."""

    __tablename__ = "competitor_fetches"
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("competitor_pages.id"), index=True)
    run_at: Mapped[datetime] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(Text)
    elapsed_ms: Mapped[int | None]
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("competitor_snapshots.id"))


class CompetitorChange(Base):
    """The difference between two consecutive snapshots of a page, and what was done about it.

    ``new_snapshot_id`` is unique: a snapshot is compared with its predecessor once, so a
    rerun neither records nor announces a change twice.
    """

    __tablename__ = "competitor_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("competitor_pages.id"), index=True)
    competitor_id: Mapped[str] = mapped_column(String(64), index=True)
    old_snapshot_id: Mapped[int] = mapped_column(ForeignKey("competitor_snapshots.id"))
    new_snapshot_id: Mapped[int] = mapped_column(ForeignKey("competitor_snapshots.id"), unique=True)
    detected_at: Mapped[datetime] = mapped_column(index=True)
    material: Mapped[bool] = mapped_column(index=True)
    points: Mapped[list[str]] = mapped_column(JSON, default=list)
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    diff: Mapped[str] = mapped_column(Text)
    event_emitted_at: Mapped[datetime | None]
    # pending | sending | sent | failed | skipped | unknown (None: nothing to tell)
    notify_state: Mapped[str | None] = mapped_column(String(16), index=True)
    notified_at: Mapped[datetime | None]
    notify_error: Mapped[str | None] = mapped_column(Text)
