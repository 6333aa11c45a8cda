"""Flow: exhibition badge-scan exports into the client database."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from config.settings import get_settings
from flows.common.api_client import one_sync_client
from flows.common.run_names import as_of_stamp
from tasks.ingest.pipeline import (
    IngestSummary,
    publish_summary,
    register_files,
    resolve_and_store,
    stage_files,
)


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    event = params.get("event") or "files"
    return f"ingest-exhibition-{event}-{as_of_stamp()}"


@flow(name="ingest-exhibition-leads", flow_run_name=_run_name, log_prints=False)
async def ingest_exhibition_leads(
    files: list[str],
    event: str | None = None,
    source: str | None = None,
    timezone: str | None = None,
) -> IngestSummary:
    """Ingest exports in the order given; rows in = accepted + duplicates + quarantined."""
    with one_sync_client():
        staging = str(get_settings().data_dir.resolve() / "staging")
        registered = register_files(files, event)
        staged = stage_files(registered, source, staging, timezone)
        summary = resolve_and_store(staged, event)
        publish_summary(summary)
        return summary


def export_files(folder: Path) -> list[str]:
    """The CSV/XLSX exports in ``folder``, in name order (none if it does not exist)."""
    if not folder.is_dir():
        return []
    return [str(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in (".csv", ".xlsx")]


def sample_exports() -> list[str]:
    """The bundled badge-scan exports the demo ingests."""
    return export_files(get_settings().config_dir / "samples" / "exhibitions")
