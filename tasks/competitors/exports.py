"""`accountflow export competitor-changes`: every change seen, with its diff and outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectors.database.competitors_models import CompetitorChange, CompetitorPage


def competitor_changes_query() -> Any:
    return (
        select(
            CompetitorChange.id.label("change_id"),
            CompetitorChange.competitor_id,
            CompetitorPage.url,
            CompetitorChange.detected_at,
            CompetitorChange.material,
            CompetitorChange.points,
            CompetitorChange.summary,
            CompetitorChange.diff,
            CompetitorChange.event_emitted_at,
            CompetitorChange.notify_state,
            CompetitorChange.notified_at,
        )
        .join(CompetitorPage, CompetitorPage.id == CompetitorChange.page_id)
        .order_by(CompetitorChange.detected_at, CompetitorChange.id)
    )
