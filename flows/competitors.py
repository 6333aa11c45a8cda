"""Flows: the daily competitor-page watch and the weekly comparison report."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from flows.common.api_client import one_sync_client
from flows.common.run_names import as_of_stamp
from tasks.common.clock import as_utc
from tasks.competitors.pipeline import (
    CompetitorReportSummary,
    WatchSummary,
    announce_changes,
    build_competitor_report,
    notify_changes,
    publish_competitor_report,
    publish_watch_summary,
    watch_pages,
)


@flow(name="watch-competitors", flow_run_name=lambda: f"watch-competitors-{as_of_stamp()}")
async def watch_competitors(as_of: datetime | None = None) -> WatchSummary:
    """Pages → snapshots when the text changed → classified changes → events → emails."""
    with one_sync_client():
        summary = watch_pages(as_utc(as_of))
        summary = announce_changes(summary)
        summary = notify_changes(summary)
        publish_watch_summary(summary)
        return summary


@flow(name="report-competitors", flow_run_name=lambda: f"report-competitors-{as_of_stamp()}")
async def report_competitors(
    as_of: datetime | None = None, days: int = 7
) -> CompetitorReportSummary:
    """Us vs each competitor per policy point, the period's changes and a timeline."""
    with one_sync_client():
        summary = build_competitor_report(as_utc(as_of), days)
        publish_competitor_report(summary)
        return summary
