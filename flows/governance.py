"""Flows of governance: the weekly freshness check of the client database."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from connectors.database.migrate import ensure_schema
from tasks.governance.freshness import FreshnessSummary, check_contact_freshness


@flow(name="check-freshness", flow_run_name="check-freshness-{as_of}", log_prints=False)
def check_freshness(as_of: datetime | None = None) -> FreshnessSummary:
    """Which contacts' fields went stale, per owner; the share of fresh values as a table."""
    ensure_schema()
    return check_contact_freshness((as_of or datetime.now(UTC)).astimezone(UTC))
