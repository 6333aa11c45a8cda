"""Flow: the daily pipeline, one subflow per stage so a failed stage shows where it failed."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.ingest import ingest_exhibition_leads, sample_exports


@flow(name="daily-pipeline")
def daily_pipeline(demo: bool = False, event: str | None = None) -> dict[str, Any]:
    """Ingest, then (as later stages land) score, dispatch and escalate."""
    files = sample_exports() if demo else []
    summary: dict[str, Any] = {}
    if files:
        summary["ingest"] = ingest_exhibition_leads(
            files, event=event or ("demo" if demo else None)
        )
    return summary
