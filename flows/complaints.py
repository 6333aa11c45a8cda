"""Flows: complaint intake from files, the escalation pass and the weekly analysis."""

from __future__ import annotations

import time
from datetime import datetime

from prefect import flow

from flows.common.api_client import one_sync_client
from flows.common.run_names import as_of_stamp
from tasks.common.clock import as_utc
from tasks.complaints.pipeline import (
    AnalysisSummary,
    EscalationSummary,
    IntakeSummary,
    analyze,
    evaluate_escalations_task,
    import_complaints_file,
    notify_escalations,
    publish_escalation_summary,
)


@flow(name="import-complaints")
def import_complaints(path: str) -> IntakeSummary:
    """Rows in = created + duplicates (same external ref) + rejected (with the reason)."""
    return import_complaints_file(path)


@flow(
    name="escalate-complaints",
    flow_run_name=lambda: f"escalate-complaints-{as_of_stamp('%Y-%m-%dT%H:%M')}",
)
async def escalate_complaints(as_of: datetime | None = None) -> EscalationSummary:
    """Clocks at ``as_of`` → escalations (once each) → hand-overs → notifications."""
    with one_sync_client():
        started = time.perf_counter()
        summary = evaluate_escalations_task(as_utc(as_of))
        summary = notify_escalations(summary)
        summary.seconds = round(time.perf_counter() - started, 3)
        publish_escalation_summary(summary)
        return summary


@flow(name="analyze-complaints")
def analyze_complaints(as_of: datetime | None = None, days: int = 90) -> AnalysisSummary:
    """Markdown artifact over the complaints created in the ``days`` before ``as_of``."""
    return analyze(as_utc(as_of), days)
