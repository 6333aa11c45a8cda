"""Commands that run the whole: the schema, exports, the demo, the web service, serving."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.options import JsonOpt, group

if TYPE_CHECKING:
    from prefect.states import State

    from flows.daily import DailySummary


def _scalars(summary: dict[str, Any]) -> str:
    parts = [
        f"{k.replace('_', ' ')} {v}"
        for k, v in summary.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("seconds",)
    ]
    return ", ".join(parts[:10])


def render_daily_summary(summary: DailySummary) -> str:
    """Each stage in a line (ingestion in full), then where to find what the run left."""
    from config.settings import get_settings
    from flows.cli.ingest import render_ingest_summary
    from tasks.ingest.pipeline import IngestSummary

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


def register(app: typer.Typer) -> None:
    db_app = group(app, "db", "Application database.")

    @db_app.command("upgrade")
    def db_upgrade() -> None:
        """Create or migrate the application schema to the latest revision."""
        from connectors.database.migrate import upgrade

        typer.echo(f"database at revision {upgrade()}")

    @app.command("export")
    def export(
        kind: Annotated[
            str,
            typer.Argument(
                help="rows | contacts | quarantine | messages | complaints | outbox"
                " | contracts | obligations"
            ),
        ],
        fmt: Annotated[str, typer.Option("--format", help="csv | json")] = "csv",
        out: Annotated[
            Path | None, typer.Option(help="Write to this file (default stdout).")
        ] = None,
    ) -> None:
        """Export a table; CSV cells a spreadsheet would execute are neutralised."""
        from connectors.database.migrate import ensure_schema
        from tasks.common.exports import export_frame, write_export

        ensure_schema()
        try:
            frame = export_frame(kind)
            write_export(frame, fmt, out if out is not None else sys.stdout)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        if out is not None:
            typer.echo(f"wrote {len(frame)} {kind} to {out}", err=True)

    @app.command("demo")
    def demo(as_json: JsonOpt = False) -> None:
        """Run the daily pipeline on the bundled sample data with embedded defaults."""
        from flows.daily import daily_pipeline

        async def run() -> State[DailySummary]:
            return await daily_pipeline(demo=True, return_state=True)

        state = asyncio.run(run())
        if not state.is_completed():
            typer.echo(f"daily pipeline failed: {state.message}", err=True)
            raise typer.Exit(code=1)
        summary = state.result()
        typer.echo(summary.model_dump_json(indent=2) if as_json else render_daily_summary(summary))

    @app.command("web")
    def web(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    ) -> None:
        """Serve the HTTP endpoints (unsubscribe, provider callbacks, complaint intake)."""
        import uvicorn

        from flows.web import create_app

        uvicorn.run(create_app(), host=host, port=port, log_level="info")

    @app.command("serve")
    def serve() -> None:
        """Serve every deployment with its schedule (needs PREFECT_API_URL for a real server)."""
        from prefect import serve as prefect_serve

        from connectors.database.migrate import ensure_schema
        from flows.automations import ensure_automations
        from flows.deployments import build_deployments

        ensure_schema()
        ensure_automations()
        prefect_serve(*build_deployments())
