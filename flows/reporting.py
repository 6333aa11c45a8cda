"""Human summaries printed by the CLI (the JSON form is the models themselves)."""

from __future__ import annotations

from typing import Any

from config.settings import get_settings
from tasks.ingest import IngestSummary


def render_ingest_summary(s: IngestSummary) -> str:
    lines = [
        f"Exhibition ingestion, batch {s.batch_id}" + (f" ({s.event})" if s.event else ""),
        f"  rows in      {s.rows_in:>8}",
        f"  accepted     {s.accepted:>8}",
        f"  duplicates   {s.duplicates:>8}",
        f"  quarantined  {s.quarantined:>8}"
        + (
            "  (" + ", ".join(f"{k}: {v}" for k, v in sorted(s.quarantined_by_reason.items())) + ")"
            if s.quarantined_by_reason
            else ""
        ),
        f"  contacts     {s.new_contacts} new, {s.updated_contacts} updated, "
        f"{s.matched_existing} matched existing; companies {s.new_companies} new",
        f"  reconciles   {'yes' if s.reconciles else 'NO'}   ({s.seconds:.2f} s)",
    ]
    for f in s.files:
        status = f.status + (f": {f.error}" if f.error else "")
        lines.append(f"  file {f.name}: {f.rows_in} rows, {status}")
    return "\n".join(lines)


def render_daily_summary(summary: dict[str, Any]) -> str:
    settings = get_settings()
    out = ["accountflow daily pipeline", ""]
    ingest = summary.get("ingest")
    if isinstance(ingest, IngestSummary):
        out.append(render_ingest_summary(ingest))
    elif isinstance(ingest, dict):
        out.append(render_ingest_summary(IngestSummary.model_validate(ingest)))
    out += [
        "",
        f"Database: {settings.resolved_database_url().split('///')[-1]}",
        "See: `accountflow export rows|contacts|quarantine` and the run's artifacts in the "
        "Prefect UI (start `prefect server start` and set PREFECT_API_URL to keep them).",
    ]
    return "\n".join(out)
