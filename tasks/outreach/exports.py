"""`accountflow export outbox`: every outbox row with its state, for review outside the UI."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectors.database.outreach_models import OutboxItem


def outbox_query() -> Any:
    """One line per (campaign, contact, step) with where it stands and why."""
    return select(
        OutboxItem.id.label("outbox_id"),
        OutboxItem.campaign,
        OutboxItem.step,
        OutboxItem.step_name,
        OutboxItem.channel,
        OutboxItem.contact_id,
        OutboxItem.recipient,
        OutboxItem.language,
        OutboxItem.status,
        OutboxItem.attempts,
        OutboxItem.due_at,
        OutboxItem.next_attempt_at,
        OutboxItem.sent_at,
        OutboxItem.provider_id,
        OutboxItem.last_code,
        OutboxItem.last_detail,
        OutboxItem.final_status,
        OutboxItem.message_id,
        OutboxItem.idempotency_key,
    ).order_by(OutboxItem.id)
