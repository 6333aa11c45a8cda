"""The `accountflow` command: the same flows as the deployments, from a terminal."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from prefect.states import State

# The network here is closed to everything but package registries: Prefect's telemetry would
# only log a failure on every run.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The ephemeral API's default 20 s start-up budget is too short on a busy 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

app = typer.Typer(no_args_is_help=True, help="Account management pipelines (Prefect 3).")
db_app = typer.Typer(no_args_is_help=True, help="Application database.")
ingest_app = typer.Typer(no_args_is_help=True, help="Bring leads in.")
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]

# Each capability adds its commands from its own module: ``register(app)``.
CAPABILITY_COMMANDS = (
    "flows.cli_inbox",
    "flows.cli_scoring",
    "flows.cli_outreach",
    "flows.cli_complaints",
)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the application schema to the latest revision."""
    from connectors.database.migrate import upgrade

    typer.echo(f"database at revision {upgrade()}")


@ingest_app.command("exhibition")
def ingest_exhibition(
    files: Annotated[list[Path], typer.Argument(help="CSV/XLSX exports, processed in order.")],
    event: Annotated[str | None, typer.Option(help="Event (fair) name for these files.")] = None,
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
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
    else:
        from flows.reporting import render_ingest_summary

        typer.echo(render_ingest_summary(summary))
    if any(f.status == "rejected" for f in summary.files):
        raise typer.Exit(code=1)


@app.command("export")
def export(
    kind: Annotated[
        str, typer.Argument(help="rows | contacts | quarantine | messages | complaints | outbox")
    ],
    fmt: Annotated[str, typer.Option("--format", help="csv | json")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Write to this file (default stdout).")] = None,
) -> None:
    """Export a table; CSV cells a spreadsheet would execute are neutralised."""
    from connectors.database.migrate import ensure_schema
    from tasks.exports import export_frame, write_export

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
    from flows.daily import DailySummary, daily_pipeline
    from flows.reporting import render_daily_summary

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


def _register_capabilities() -> None:
    for name in CAPABILITY_COMMANDS:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(app)


_register_capabilities()

if __name__ == "__main__":
    app()
