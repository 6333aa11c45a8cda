"""Flows of governance: the weekly freshness check and retention of the client database."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from connectors.database.migrate import ensure_schema
from tasks.governance.freshness import (
    FreshnessSummary,
    check_contact_freshness,
    drop_old_raw_values,
)
from tasks.governance.provenance import refresh_lawful_bases
from tasks.governance.reverification import enqueue_reverification


@flow(name="check-freshness", flow_run_name="check-freshness-{as_of}", log_prints=False)
def check_freshness(as_of: datetime | None = None) -> FreshnessSummary:
    """Which contacts' fields went stale, per owner; the share of fresh values as a table;
    a re-verification email in the outbox for each stale contact not asked this period
    (sent by the next dispatch of the re-verification campaign); the raw cells of source
    rows past their retention dropped (counts kept); and contacts of companies that
    signed a contract since raised to the contract basis."""
    ensure_schema()
    when = (as_of or datetime.now(UTC)).astimezone(UTC)
    summary, stale_contacts = check_contact_freshness(when)
    summary.reverification_emails_enqueued = enqueue_reverification(stale_contacts, when)
    summary.raw_values_dropped = drop_old_raw_values(when)  # retention runs on the same beat
    summary.bases_raised_to_contract = refresh_lawful_bases()
    return summary
