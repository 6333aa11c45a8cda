"""Flows: contracts and their fulfilment events in, the hourly obligations watch."""

from __future__ import annotations

import time
from datetime import datetime

from prefect import flow

from flows.common.api_client import one_sync_client
from flows.common.run_names import as_of_stamp
from tasks.accounts.pipeline import (
    ContractImportSummary,
    EventImportSummary,
    WatchSummary,
    aware,
    evaluate_watch_task,
    import_contracts_file,
    import_events_file,
    notify_obligations,
    publish_watch,
)


@flow(name="import-contracts")
def import_contracts(path: str) -> ContractImportSummary:
    """Rows in = accepted + rejected (each with file, row and field)."""
    return import_contracts_file(path)


@flow(name="import-contract-events")
def import_contract_events(path: str) -> EventImportSummary:
    """Rows in = recorded + duplicates (same event again) + rejected."""
    return import_events_file(path)


@flow(
    name="watch-obligations",
    flow_run_name=lambda: f"watch-obligations-{as_of_stamp('%Y-%m-%dT%H:%M')}",
)
async def watch_obligations(as_of: datetime | None = None) -> WatchSummary:
    """States at ``as_of`` → notices (once per state) → email/webhook → table artifacts."""
    with one_sync_client():
        started = time.perf_counter()
        summary = evaluate_watch_task(aware(as_of))
        summary = notify_obligations(summary)
        summary.seconds = round(time.perf_counter() - started, 3)
        publish_watch(summary)
        return summary
