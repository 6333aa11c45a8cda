"""`accountflow export messages`: one line per inbound message, with what it became."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectors.database.inbox_models import InboundMessage as M


def messages_query() -> Any:
    """Provenance, class and outcome per message; no body text (it stays in the mailbox)."""
    return select(
        M.source,
        M.message_id,
        M.label.label("class"),
        M.severity,
        M.reference,
        M.contact_id,
        M.suppressed_address,
        M.complaint_id,
        M.thread_parent_id,
        M.rsvp_answer,
        M.malformed_reason,
        M.sha256,
        M.oversize,
        M.from_address,
        M.subject,
        M.received_at,
        M.ingested_at,
    ).order_by(M.id)
