"""Human summaries printed by the CLI (the JSON form is the models themselves)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config.settings import get_settings
from tasks.ingest import IngestSummary

if TYPE_CHECKING:
    from flows.daily import DailySummary


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


def _scalars(summary: dict[str, Any]) -> str:
    parts = [
        f"{k.replace('_', ' ')} {v}"
        for k, v in summary.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("seconds",)
    ]
    return ", ".join(parts[:10])


def render_daily_summary(summary: DailySummary) -> str:
    settings = get_settings()
    out = [f"accountflow daily pipeline (as of {summary.as_of:%Y-%m-%d %H:%M} UTC)", ""]
    for name, stage in summary.stages.items():
        if name == "ingest" and stage.status == "completed":
            out.append(render_ingest_summary(IngestSummary.model_validate(stage.summary)))
            continue
        detail = _scalars(stage.summary) if stage.status == "completed" else (stage.error or "")
        out.append(f"{name:<11} {stage.status:<10} {detail}")
    data_dir = settings.data_dir.resolve()
    out += [
        "",
        f"Database:  {settings.resolved_database_url().split('///')[-1]}",
        f"Reports:   {data_dir / 'reports'}   Outgoing mail (demo): {data_dir / 'outbox'}",
        "Exports:   accountflow export rows|contacts|quarantine|messages|complaints|outbox",
        "Prefect UI: start `prefect server start`, export PREFECT_API_URL, and rerun to keep"
        " run history and artifacts.",
    ]
    return "\n".join(out)
