"""Reads and writes for the competitor watch; the only module that speaks SQL for it.

A run's results are saved in chunks, each in its own transaction: a page's new validators
(ETag, Last-Modified), its snapshot, its change and its fetch-log row commit together, so a
crash mid-run leaves every page either wholly saved or untouched (refetched next run, and
compared with the snapshot that was saved).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from connectors.database.competitors_models import (
    CompetitorChange,
    CompetitorFetch,
    CompetitorPage,
    CompetitorSnapshot,
)


@dataclass(frozen=True)
class PageState:
    """What the fetcher needs to know of a page: its validators and its current text."""

    id: int
    competitor_id: str
    url: str
    etag: str | None
    last_modified: str | None
    snapshot_id: int | None
    content_hash: str | None
    text: str | None


@dataclass(frozen=True)
class PageRecord:
    """Everything one fetch of one page leaves behind (see ``tasks.competitors.watching``)."""

    page_id: int
    competitor_id: str
    outcome: str
    http_status: int | None
    reason: str | None
    elapsed_ms: int | None
    etag: str | None
    last_modified: str | None
    # A new snapshot (text changed): its hash, text and kind (html | pdf).
    snapshot: tuple[str, str, str] | None = None
    # The change against the previous snapshot: material, points, summary, details, diff.
    change: dict[str, Any] | None = None
    previous_snapshot_id: int | None = None


def sync_pages(session: Session, pages: Sequence[dict[str, Any]]) -> None:
    """Make the watched pages those of the policy file (``competitor_id``, ``url``, ``label``,
    ``points``); pages no longer listed stay, inactive, with their history."""
    existing = {p.url: p for p in session.scalars(select(CompetitorPage))}
    listed = set()
    for page in pages:
        listed.add(page["url"])
        row = existing.get(page["url"])
        if row is None:
            session.add(CompetitorPage(**page, active=True, consecutive_failures=0))
        else:
            row.competitor_id = page["competitor_id"]
            row.label = page["label"]
            row.points = list(page["points"])
            row.active = True
    for url, row in existing.items():
        if url not in listed:
            row.active = False
    session.flush()


def active_pages(session: Session) -> list[PageState]:
    stmt = (
        select(
            CompetitorPage.id,
            CompetitorPage.competitor_id,
            CompetitorPage.url,
            CompetitorPage.etag,
            CompetitorPage.last_modified,
            CompetitorPage.current_snapshot_id,
            CompetitorSnapshot.content_hash,
            CompetitorSnapshot.text,
        )
        .outerjoin(CompetitorSnapshot, CompetitorSnapshot.id == CompetitorPage.current_snapshot_id)
        .where(CompetitorPage.active.is_(True))
        .order_by(CompetitorPage.id)
    )
    return [PageState(*row) for row in session.execute(stmt)]


def record_results(session: Session, run_at: datetime, records: Sequence[PageRecord]) -> list[int]:
    """Save one chunk of a run's results; returns the ids of the changes recorded."""
    change_ids: list[int] = []
    for r in records:
        page = session.get(CompetitorPage, r.page_id, with_for_update=True)
        if page is None:
            continue
        snapshot_id = None
        if r.snapshot is not None and (r.previous_snapshot_id == page.current_snapshot_id):
            digest, text, kind = r.snapshot
            snap = CompetitorSnapshot(
                page_id=page.id,
                content_hash=digest,
                fetched_at=run_at,
                http_status=r.http_status or 200,
                kind=kind,
                text=text,
            )
            session.add(snap)
            session.flush()
            snapshot_id = snap.id
            if r.change is not None and page.current_snapshot_id is not None:
                change = CompetitorChange(
                    page_id=page.id,
                    competitor_id=r.competitor_id,
                    old_snapshot_id=page.current_snapshot_id,
                    new_snapshot_id=snap.id,
                    detected_at=run_at,
                    notify_state="pending" if r.change["material"] else None,
                    **r.change,
                )
                session.add(change)
                session.flush()
                change_ids.append(change.id)
            page.current_snapshot_id = snap.id
            page.last_changed_at = run_at
        if r.outcome in ("fetched", "not_modified"):
            page.etag, page.last_modified = r.etag, r.last_modified
            page.consecutive_failures = 0
        else:
            page.consecutive_failures += 1
        page.last_outcome, page.last_reason = r.outcome, r.reason
        page.last_http_status, page.last_fetched_at = r.http_status, run_at
        session.add(
            CompetitorFetch(
                page_id=page.id,
                run_at=run_at,
                outcome=r.outcome,
                http_status=r.http_status,
                reason=r.reason,
                elapsed_ms=r.elapsed_ms,
                snapshot_id=snapshot_id,
            )
        )
    session.flush()
    return change_ids


# --- events and notifications ----------------------------------------------------------


def _change_columns() -> tuple[Any, ...]:
    return (
        CompetitorChange.id,
        CompetitorChange.competitor_id,
        CompetitorPage.url,
        CompetitorChange.detected_at,
        CompetitorChange.points,
        CompetitorChange.summary,
        CompetitorChange.details,
        CompetitorChange.diff,
    )


def _as_dicts(session: Session, stmt: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in session.execute(stmt)]


def unannounced_changes(session: Session) -> list[dict[str, Any]]:
    """Material changes not yet emitted as Prefect events."""
    stmt = (
        select(*_change_columns())
        .join(CompetitorPage, CompetitorPage.id == CompetitorChange.page_id)
        .where(CompetitorChange.material.is_(True), CompetitorChange.event_emitted_at.is_(None))
        .order_by(CompetitorChange.id)
    )
    return _as_dicts(session, stmt)


def mark_announced(session: Session, ids: Sequence[int], at: datetime) -> None:
    if ids:
        session.execute(
            update(CompetitorChange)
            .where(CompetitorChange.id.in_(list(ids)))
            .values(event_emitted_at=at)
        )


def claim_notifications(session: Session, limit: int) -> list[dict[str, Any]]:
    """Pending notifications, marked ``sending`` (the caller commits before any send)."""
    stmt = (
        select(*_change_columns())
        .join(CompetitorPage, CompetitorPage.id == CompetitorChange.page_id)
        .where(CompetitorChange.notify_state == "pending")
        .order_by(CompetitorChange.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=CompetitorChange)
    )
    rows = _as_dicts(session, stmt)
    if rows:
        session.execute(
            update(CompetitorChange)
            .where(CompetitorChange.id.in_([r["id"] for r in rows]))
            .values(notify_state="sending")
        )
    return rows


def record_notifications(session: Session, results: Sequence[dict[str, Any]], at: datetime) -> None:
    """Each dict: ``id``, ``state`` (sent | failed | skipped | unknown | pending), ``error``."""
    for r in results:
        session.execute(
            update(CompetitorChange)
            .where(CompetitorChange.id == r["id"])
            .values(
                notify_state=r["state"],
                notify_error=r.get("error"),
                notified_at=at if r["state"] == "sent" else None,
            )
        )


def pending_notifications(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(CompetitorChange)
            .where(CompetitorChange.notify_state.in_(("pending", "sending")))
        )
        or 0
    )


# --- report ----------------------------------------------------------------------------


def changes_between(session: Session, since: datetime, until: datetime) -> list[dict[str, Any]]:
    stmt = (
        select(*_change_columns(), CompetitorChange.material)
        .join(CompetitorPage, CompetitorPage.id == CompetitorChange.page_id)
        .where(CompetitorChange.detected_at >= since, CompetitorChange.detected_at <= until)
        .order_by(CompetitorChange.detected_at, CompetitorChange.id)
    )
    return _as_dicts(session, stmt)


def current_texts(session: Session) -> list[dict[str, Any]]:
    """Each active page with its latest text (None before the first good fetch)."""
    stmt = (
        select(
            CompetitorPage.competitor_id,
            CompetitorPage.url,
            CompetitorPage.points,
            CompetitorPage.last_outcome,
            CompetitorPage.last_reason,
            CompetitorPage.last_fetched_at,
            CompetitorPage.consecutive_failures,
            CompetitorSnapshot.text,
        )
        .outerjoin(CompetitorSnapshot, CompetitorSnapshot.id == CompetitorPage.current_snapshot_id)
        .where(CompetitorPage.active.is_(True))
        .order_by(CompetitorPage.competitor_id, CompetitorPage.id)
    )
    return _as_dicts(session, stmt)
