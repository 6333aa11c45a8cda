"""Flow: the daily pipeline. Each stage is a subflow, so a failed stage shows where it
failed in the UI while the others still run and report.

The pipeline and the flows it runs as stages are ``async`` flows whose bodies are sync:
they call sync tasks in turn, on one thread. That is for Prefect's sake. It joins a sync
flow's heartbeat thread when the flow ends, and that thread sleeps in whole seconds, so
every sync run ends up to a second late (an empty sync flow takes 1.1 s on a local server,
an async one 0.2 s); an async flow's heartbeat thread is let go instead, and the
heartbeats themselves, which the zombie-run automation watches, are the same. And an async
subflow of an async flow is created on the parent's event loop and API client, where a
sync one hops to another thread and client (0.2 s per stage instead of 0.28 s measured).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.context import SettingsContext, get_settings_context
from prefect.settings import Settings, get_current_settings
from pydantic import BaseModel

from config.settings import get_settings
from flows.api_client import one_sync_client
from flows.complaints import escalate_complaints
from flows.inbox import ingest_inbox, sample_inbox
from flows.ingest import export_files, ingest_exhibition_leads, sample_exports
from flows.outreach import dispatch_campaign
from flows.progress import RunProgress
from flows.run_names import as_of_stamp
from flows.scoring import analyze_audience_flow, score_prospects

# The bundled samples are fairs of March-April 2026; the demo's day is the Tuesday after,
# late morning in São Paulo, Madrid and Miami alike, so send windows are open.
DEMO_AS_OF = datetime(2026, 4, 7, 14, 0, tzinfo=UTC)


class StageResult(BaseModel):
    status: str  # completed | failed | skipped
    summary: dict[str, Any] = {}
    error: str | None = None


class DailySummary(BaseModel):
    as_of: datetime
    stages: dict[str, StageResult]

    @property
    def failed(self) -> list[str]:
        return [name for name, stage in self.stages.items() if stage.status == "failed"]


def _without_heartbeat() -> Settings:
    """The current Prefect settings with flow heartbeats off, for the stage subflows.

    A stage lives in the pipeline's process, whose own heartbeat already tells Prefect the
    process is alive, and each heartbeat thread holds its sync flow up to a second on exit
    while it finishes a sleep. A shallow copy: ``Settings.copy_with_update`` validates the
    whole tree again from the environment (40-300 ms measured), ``model_copy`` takes 30 us.
    """
    current = get_current_settings()
    flows = current.flows.model_copy(update={"heartbeat_frequency": None})
    return current.model_copy(update={"flows": flows})


async def _run(name: str, stage: Callable[..., Any], settings: Settings) -> StageResult:
    """Run one stage subflow to its end; its failure is recorded, not raised, so later
    stages run."""
    with SettingsContext(profile=get_settings_context().profile, settings=settings):
        state = await stage(return_state=True)
    if state.is_completed():
        result = await state.aresult()
        summary = result.model_dump(mode="json") if isinstance(result, BaseModel) else {}
        return StageResult(status="completed", summary=summary)
    get_run_logger().error("stage %s failed: %s", name, state.message)
    return StageResult(status="failed", error=str(state.message))


def _inbox_stage(demo: bool, imap_configured: bool) -> Callable[[], Any] | str:
    """The sample inbox for the demo, else IMAP when an account is set, else why not."""
    if demo:
        return partial(ingest_inbox, eml_dir=sample_inbox())
    if imap_configured:
        return partial(ingest_inbox, imap=True)
    return "no IMAP account configured"


def _run_name() -> str:
    from prefect.runtime import flow_run

    if flow_run.parameters.get("demo"):
        return f"daily-pipeline-demo-{as_of_stamp(default=DEMO_AS_OF)}"
    return f"daily-pipeline-{as_of_stamp()}"


@flow(name="daily-pipeline", flow_run_name=_run_name)
async def daily_pipeline(
    demo: bool = False,
    as_of: datetime | None = None,
    exports_dir: str | None = None,
    campaign: str | None = "welcome-fair",
    send: bool = False,
) -> DailySummary:
    """Ingest exports and the inbox, score, dispatch the campaign, escalate complaints.

    ``demo`` uses the bundled sample exports and inbox (and, unless given, ``as_of`` =
    ``DEMO_AS_OF``); otherwise new files in
    ``exports_dir`` (default ``<data dir>/incoming``) and the IMAP inbox when configured.
    The campaign is a dry run unless ``send``.
    """
    as_of = as_of or (DEMO_AS_OF if demo else datetime.now(UTC))
    settings = get_settings()
    files = (
        sample_exports()
        if demo
        else export_files(Path(exports_dir) if exports_dir else settings.data_dir / "incoming")
    )
    # Each stage is a subflow to call, or the reason it is skipped today.
    plan: list[tuple[str, Callable[[], Any] | str]] = [
        (
            "ingest",
            partial(ingest_exhibition_leads, files, event="demo" if demo else None)
            if files
            else "no new export files",
        ),
        ("inbox", _inbox_stage(demo, bool(settings.imap.username))),
        ("score", partial(score_prospects, as_of=as_of)),
    ]
    if campaign:
        plan.append(
            ("campaign", partial(dispatch_campaign, campaign, dry_run=not send, as_of=as_of))
        )
    plan.append(("complaints", partial(escalate_complaints, as_of=as_of)))
    if demo:
        plan.append(("audience", partial(analyze_audience_flow, as_of=as_of)))

    progress = RunProgress(len(plan), "daily-pipeline-progress", f"Daily pipeline {as_of:%Y-%m-%d}")
    await progress.start()
    stages: dict[str, StageResult] = {}
    stage_settings = _without_heartbeat()
    with one_sync_client():
        for name, stage in plan:
            stages[name] = (
                StageResult(status="skipped", error=stage)
                if isinstance(stage, str)
                else await _run(name, stage, stage_settings)
            )
            await progress.advance(f"{name} {stages[name].status}")

    summary = DailySummary(as_of=as_of, stages=stages)
    await acreate_table_artifact(
        key="daily-pipeline",
        table=[{"stage": k, "status": v.status, "note": v.error or ""} for k, v in stages.items()],
        description=f"Daily pipeline at {as_of:%Y-%m-%d %H:%M} UTC",
    )
    if summary.failed:
        raise RuntimeError(f"stages failed: {', '.join(summary.failed)} (the others completed)")
    return summary
