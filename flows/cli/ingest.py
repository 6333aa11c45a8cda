"""`accountflow ingest exhibition`: run the `ingest-exhibition-leads` flow from a terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.options import JsonOpt, group

if TYPE_CHECKING:  # importing the tasks pulls in Prefect and pandas: not for `--help`
    from tasks.ingest.pipeline import IngestSummary


def render_ingest_summary(s: IngestSummary) -> str:
    """The run in a few lines: rows in, what they became, and each file's fate."""
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


def register(app: typer.Typer) -> None:
    ingest_app = group(app, "ingest", "Bring leads in.")

    @ingest_app.command("exhibition")
    def ingest_exhibition(
        files: Annotated[list[Path], typer.Argument(help="CSV/XLSX exports, processed in order.")],
        event: Annotated[
            str | None, typer.Option(help="Event (fair) name for these files.")
        ] = None,
        source: Annotated[
            str | None, typer.Option(help="Named column mapping from config/sources.yaml.")
        ] = None,
        timezone: Annotated[
            str | None,
            typer.Option(help="Zone of the scan times (default: the source's or settings')."),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Run the `ingest-exhibition-leads` flow."""
        from flows.ingest import ingest_exhibition_leads

        summary = asyncio.run(
            ingest_exhibition_leads(
                [str(f) for f in files], event=event, source=source, timezone=timezone
            )
        )
        typer.echo(summary.model_dump_json(indent=2) if as_json else render_ingest_summary(summary))
        if any(f.status == "rejected" for f in summary.files):
            raise typer.Exit(code=1)
