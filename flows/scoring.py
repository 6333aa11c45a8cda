"""Flows: reliability scoring of prospects, and the target-audience report."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from flows.common.api_client import one_sync_client
from flows.common.run_names import as_of_stamp
from tasks.scoring.pipeline import (
    AudienceSummary,
    ScoringSummary,
    build_audience_report,
    emit_band_events,
    publish_audience_report,
    publish_scoring_summary,
    refresh_registry,
    score_contacts,
)


@flow(name="score-prospects", flow_run_name=lambda: f"score-{as_of_stamp()}", log_prints=False)
async def score_prospects(as_of: datetime | None = None, full: bool = False) -> ScoringSummary:
    """Score contacts whose inputs changed since their last score (all with ``full``)."""
    with one_sync_client():
        registry = refresh_registry()
        summary = score_contacts(as_of, full, registry)
        summary = emit_band_events(summary)
        publish_scoring_summary(summary)
        return summary


@flow(name="analyze-audience", flow_run_name=lambda: f"audience-{as_of_stamp()}", log_prints=False)
async def analyze_audience_flow(as_of: datetime | None = None) -> AudienceSummary:
    """Segment the scored prospects; markdown artifact plus a standalone HTML report."""
    with one_sync_client():
        summary = build_audience_report(as_of)
        publish_audience_report(summary)
        return summary
