"""Commands that run the whole: the schema, exports, the demo, the web service, serving."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class UiPages:
    """Where the demo's run can be seen: the UI of the server its runs went to."""

    ui: str
    run: str | None
    deployments: str
    failed_outreach: str
    local: bool


def render_daily_summary(
    summary: DailySummary, pages: UiPages | None = None, sink_folder: Path | None = None
) -> str:
    """Each stage in a line (ingestion in full), then where to find what the run left."""
    from config.settings import get_settings
    from flows.cli.ingest import render_ingest_summary
    from tasks.common.exports import KINDS
    from tasks.ingest.pipeline import IngestSummary

    settings = get_settings()
    out = [f"accountflow daily pipeline (as of {summary.as_of:%Y-%m-%d %H:%M} UTC)", ""]
    for name, stage in summary.stages.items():
        if name == "ingest" and stage.status == "completed":
            out.append(render_ingest_summary(IngestSummary.model_validate(stage.summary)))
            continue
        detail = _scalars(stage.summary) if stage.status == "completed" else (stage.error or "")
        out.append(f"{name:<11} {stage.status:<10} {detail}")
        if stage.note:
            out.append(f"{'':<11} {'':<10} {stage.note}")
    data_dir = settings.data_dir.resolve()
    mail = (
        f"Mail sent:  {sink_folder} (the demo's SMTP sink)"
        if sink_folder
        else f"Outgoing mail (demo): {data_dir / 'outbox'}"
    )
    out += [
        "",
        f"Database:  {settings.resolved_database_url().split('///')[-1]}",
        f"Reports:   {data_dir / 'reports'}   {mail}",
        f"Exports:   accountflow export {'|'.join(KINDS)}",
    ]
    if pages is None:
        out.append(
            "Prefect UI: these runs went to Prefect's temporary server and are gone; "
            "`accountflow server start` keeps them (every command then uses it)."
        )
        return "\n".join(out)
    owner = (
        "the local Prefect server; `accountflow server stop` stops it"
        if pages.local
        else ("PREFECT_API_URL")
    )
    out += [
        f"Prefect UI: {pages.ui}  ({owner})",
        f"  this run:         {pages.run or '(run id unknown)'}",
        f"  deployments:      {pages.deployments}   (redrive-outreach has the redrive form)",
        f"  failed outreach:  {pages.failed_outreach}",
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
                " | contracts | obligations | competitor-changes | audit"
            ),
        ],
        fmt: Annotated[str, typer.Option("--format", help="csv | json")] = "csv",
        out: Annotated[
            Path | None, typer.Option(help="Write to this file (default stdout).")
        ] = None,
    ) -> None:
        """Export a table; CSV cells a spreadsheet would execute are neutralised."""
        from connectors.database.migrate import ensure_schema
        from tasks.common.exports import write_export

        ensure_schema()
        try:
            written = write_export(kind, fmt, out if out is not None else sys.stdout)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        if out is not None:
            typer.echo(f"wrote {written} {kind} to {out}", err=True)

    @app.command("demo")
    def demo(
        as_json: JsonOpt = False,
        no_server: Annotated[
            bool,
            typer.Option(
                "--no-server", help="Use Prefect's temporary server (runs are gone afterwards)."
            ),
        ] = False,
    ) -> None:
        """The daily pipeline on the bundled samples, sending for real to a local SMTP sink.

        Starts (or reuses) the local Prefect server, the sink and the served deployments,
        so the runs, the failed outreach and the redrive form stay in the UI afterwards.
        """
        from flows.cli import local

        if not no_server and local.TARGET.api_url is None and not _prefect_configured():
            typer.echo(
                "Prefect: starting the local server (once; later commands reuse it)", err=True
            )
            server, _ = local.start_server()
            typer.echo(f"Prefect: runs go to the local server, UI at {server.url}", err=True)
        answers = get_demo_answers()
        folder = local.data_dir() / "smtp-sink"
        with ExitStack() as stack:
            if local.TARGET.local:
                # Served deployments (a redrive, then a dispatch) send to it later too.
                port = local.ensure_sink(answers).port or 0
                local.ensure_serving(local.sink_env(port))
            else:
                from connectors.smtp_sink import load_answers, running_sink

                port = stack.enter_context(running_sink(folder, load_answers(answers)))
            stack.enter_context(_environment(local.sink_env(port)))
            _clear_settings()
            _record_demo_suppressions(answers)
            if local.TARGET.local and local.TARGET.api_url:
                _wait_for_deployment(local.TARGET.api_url, "redrive-outreach/manual")
            state = asyncio.run(_run_demo_pipeline())
        if not state.is_completed():
            typer.echo(f"daily pipeline failed: {state.message}", err=True)
            raise typer.Exit(code=1)
        summary = state.result()
        if as_json:
            typer.echo(summary.model_dump_json(indent=2))
            return
        pages = None
        ui = local.TARGET.ui_url or _configured_ui()
        if ui:
            run_id = state.state_details.flow_run_id
            pages = UiPages(
                ui=ui,
                run=f"{ui}/v2/runs/flow-run/{run_id}" if run_id else None,
                deployments=f"{ui}/v2/deployments",
                failed_outreach=_latest_artifact_page(ui, "failed-outreach"),
                local=local.TARGET.local,
            )
        typer.echo(render_daily_summary(summary, pages, folder / "new"))

    @app.command("web")
    def web(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    ) -> None:
        """Serve the HTTP endpoints (unsubscribe, provider callbacks, complaint intake)."""
        import uvicorn

        from config.settings import get_settings
        from connectors.link_secrets import InsecureLinkSecretError, require_safe_link_secret
        from flows.web import create_app

        try:
            require_safe_link_secret(get_settings(), exposed_host=host)
        except InsecureLinkSecretError as exc:
            typer.echo(f"refusing to serve on {host}: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        uvicorn.run(create_app(), host=host, port=port, log_level="info")

    @app.command("serve")
    def serve() -> None:
        """Serve every deployment with its schedule, on the local Prefect server unless
        PREFECT_API_URL names another (the local one is started if it is down)."""
        from flows.cli import local

        if local.TARGET.api_url is None:
            server, _ = local.start_server()
            typer.echo(f"Prefect: serving on the local server, UI at {server.url}", err=True)
        from prefect import serve as prefect_serve

        from connectors.database.migrate import ensure_schema
        from flows.automations import ensure_automations
        from flows.deployments import build_deployments

        ensure_schema()
        ensure_automations()
        prefect_serve(*build_deployments())

    server_app = group(app, "server", "The local Prefect server: run history and the UI.")

    @server_app.command("start")
    def server_start(as_json: JsonOpt = False) -> None:
        """Start the local Prefect server in the background (or find it running)."""
        from connectors.local_prefect import ServerError
        from flows.cli import local

        try:
            current, started = local.start_server()
        except ServerError as exc:
            typer.echo(f"server not started: {exc}", err=True)
            raise typer.Exit(code=1) from exc
        record = current.record
        assert record is not None
        if as_json:
            typer.echo(json.dumps({"status": "up", "url": record.url, "pid": record.pid,
                                   "started": started}))  # fmt: skip
            return
        verb = "started" if started else "already running"
        typer.echo(f"Prefect server {verb}: UI at {record.url}, API at {record.url}/api")
        typer.echo("Every accountflow command now sends its runs there; stop it with "
                   "`accountflow server stop`.")  # fmt: skip

    @server_app.command("stop")
    def server_stop() -> None:
        """Stop the local Prefect server, the served deployments and the demo's SMTP sink."""
        from flows.cli import local

        stopped = local.stop_all()
        typer.echo("stopped: " + ", ".join(stopped) if stopped else "nothing was running")

    @server_app.command("status")
    def server_status(as_json: JsonOpt = False) -> None:
        """Whether the local Prefect server is up, and where; exit code 1 when it is not."""
        from connectors import local_prefect
        from flows.cli import local

        current = local_prefect.state(local.data_dir())
        others = local.running()
        if as_json:
            typer.echo(json.dumps({
                "status": current.status, "url": current.url,
                "pid": current.record.pid if current.record else None,
                "cleaned": current.cleaned,
                **{name: (r.pid if r else None) for name, r in others.items()},
            }))  # fmt: skip
        else:
            if current.cleaned:
                typer.echo(f"{current.cleaned}: its record was removed")
            where = f" at {current.url} (pid {current.record.pid})" if current.record else ""
            typer.echo(f"Prefect server: {current.status}{where}")
            for name, record in others.items():
                if record is not None:
                    typer.echo(f"{name}: running (pid {record.pid})")
        if current.status != "up":
            raise typer.Exit(code=1)

    @app.callback()
    def _prefect_target(ctx: typer.Context) -> None:
        """Account management pipelines (Prefect 3)."""
        if ctx.invoked_subcommand == "server":
            return  # the server commands say where it is themselves
        from flows.cli import local

        local.use_local_server()


def _prefect_configured() -> bool:
    """Whether Prefect already has an API to use (a profile's PREFECT_API_URL, a test
    harness): the demo then sends its runs there instead of starting the local server.

    Prefect is not imported to find out: it fixes its settings when first imported, and
    the local server's URL is set in the environment after this question.
    """
    if "prefect.settings" in sys.modules:  # already imported, e.g. by a test harness
        from prefect.settings import get_current_settings

        return bool(get_current_settings().api.url)
    return _profile_api_url() is not None


def _profile_api_url() -> str | None:
    """PREFECT_API_URL of the active Prefect profile, read from its profiles file."""
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml")).expanduser()
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or doc.get("active") or "ephemeral"
    url = (doc.get("profiles") or {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def _configured_ui() -> str | None:
    from prefect.settings import get_current_settings

    api = get_current_settings().api.url
    return api.removesuffix("/api") if api else None


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """These environment variables for a block (settings re-read inside), then as before."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _clear_settings()


def get_demo_answers() -> Path:
    from config.settings import get_settings

    return get_settings().config_dir / "samples" / "demo_recipients.yaml"


def _clear_settings() -> None:
    from config.settings import get_complaint_settings, get_outreach_settings, get_settings

    get_settings.cache_clear()
    get_outreach_settings.cache_clear()
    get_complaint_settings.cache_clear()


def _record_demo_suppressions(answers: Path) -> None:
    """The demo's do-not-contact entries (an opt-out taken by phone), recorded once."""
    import yaml

    from connectors.database import outreach_store as store
    from connectors.database.engine import session_scope
    from connectors.database.migrate import ensure_schema

    addresses = (yaml.safe_load(answers.read_text()) or {}).get("suppress") or []
    ensure_schema()
    with session_scope() as s:
        store.suppress(
            s,
            [{"channel": "email", "address": str(a).lower(), "reason": "manual",
              "source": "demo"} for a in addresses],
        )  # fmt: skip


def _wait_for_deployment(api_url: str, name: str, timeout: float = 180.0) -> bool:
    """Wait until the served deployments are registered (the links artifact names them)."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{api_url}/deployments/name/{name}", timeout=5).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(1)
    typer.echo(f"the served deployments did not appear in {timeout:.0f} s", err=True)
    return False


def _latest_artifact_page(ui: str, key: str) -> str:
    """The page of the latest version of an artifact (its rows), else the key's history."""
    import requests

    try:
        found = requests.post(
            f"{ui}/api/artifacts/latest/filter",
            json={"artifacts": {"key": {"any_": [key]}}},
            timeout=10,
        ).json()
        return f"{ui}/v2/artifacts/artifact/{found[0]['latest_id']}"
    except (requests.RequestException, ValueError, LookupError, TypeError):
        return f"{ui}/v2/artifacts/key/{key}"


async def _run_demo_pipeline() -> State[DailySummary]:
    from flows.daily import daily_pipeline

    return await daily_pipeline(demo=True, send=True, return_state=True)
