"""Failed outreach in the database: the rows ops review, and making them due again.

Apart from the dispatch's store so that the failed-outreach report (`accountflow outreach
failed`, the artifact) declares the outbox and the tables it names, not every table the
dispatch reads for planning and suppression.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.orm import Session

from connectors.database.base import naive_utc
from connectors.database.outreach_models import OutboxItem

outbox = cast(Table, OutboxItem.__table__)


def failed_rows(
    session: Session, campaign: str | None = None, *, deferred: bool = False
) -> list[dict[str, Any]]:
    """Failed, unknown and bounced rows; with ``deferred``, also rows tried at least once
    and waiting for their next attempt (a 4xx answer, or redriven by ops)."""
    wanted: list[Any] = [
        outbox.c.status.in_(("failed_permanent", "unknown")),
        # Sent once, then bounced: not redriven (the address is suppressed), but shown.
        outbox.c.final_status == "hard_bounce",
    ]
    if deferred:
        wanted.append(and_(outbox.c.status == "retry", outbox.c.attempts > 0))
    query = select(
        outbox.c.id,
        outbox.c.campaign,
        outbox.c.step_name,
        outbox.c.channel,
        outbox.c.contact_id,
        outbox.c.recipient,
        outbox.c.status,
        outbox.c.attempts,
        outbox.c.last_code,
        outbox.c.last_detail,
        outbox.c.final_status,
        outbox.c.updated_at,
        outbox.c.next_attempt_at,
    ).where(or_(*wanted))
    if campaign:
        query = query.where(outbox.c.campaign == campaign)
    return [dict(r._mapping) for r in session.execute(query.order_by(outbox.c.id))]


def redrive(
    session: Session,
    now: datetime,
    *,
    campaign: str | None,
    ids: Iterable[int] | None,
    include_unknown: bool,
) -> dict[str, int]:
    """Make failed (and, if confirmed, unknown) rows due again; returns counts by status."""
    statuses = ["failed_permanent", "retry"] + (["unknown"] if include_unknown else [])
    conditions: list[Any] = [outbox.c.status.in_(statuses)]
    if campaign:
        conditions.append(outbox.c.campaign == campaign)
    id_list = sorted(set(ids or []))
    if id_list:
        conditions.append(outbox.c.id.in_(id_list))
    chosen = list(session.execute(select(outbox.c.id, outbox.c.status).where(and_(*conditions))))
    counts: dict[str, int] = {}
    for _, status in chosen:
        counts[status] = counts.get(status, 0) + 1
    if chosen:
        session.execute(
            update(outbox)
            .where(outbox.c.id.in_([i for i, _ in chosen]))
            .values(
                status="retry",
                next_attempt_at=naive_utc(now),
                last_detail=func.coalesce(outbox.c.last_detail, "") + " [redriven by ops]",
                updated_at=naive_utc(now),
            )
        )
    return counts


def skipped_unknown(session: Session, ids: Iterable[int]) -> int:
    id_list = sorted(set(ids))
    if not id_list:
        return 0
    return int(
        session.execute(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.id.in_(id_list), outbox.c.status == "unknown")
        ).scalar_one()
    )
