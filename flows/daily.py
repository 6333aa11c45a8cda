"""Flow: the daily pipeline. Each stage is a task run of the pipeline's flow run, so a
failed stage shows where it failed in the UI while the others still run and report.

A stage runs the body of the flow that does that job on its own (``ingest-exhibition-leads``,
``score-prospects``, ...), whose tasks appear nested under the stage. A task run, not a
subflow: on a Prefect server on PostgreSQL a subflow costs about 120 ms of API round trips
before and after its body (tracking task run, lookup, flow registration, flow run, name,
states, read-back), a task run about 3 ms, its states travelling as events; over a day's
stages that is most of the pipeline's orchestration overhead (``benchmarks/bench_daily.py``).
The stage flows stay deployments of their own.

The pipeline and the stage bodies are ``async`` with sync insides: they call sync tasks
in turn, on one thread. That is for Prefect's sake: it joins a sync flow's heartbeat thread
when the flow ends, and that thread sleeps in whole seconds, which an async flow does not
wait for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Completed
from pydantic import BaseModel

from config.settings import get_settings
from flows.common.api_client import one_sync_client
from flows.common.progress import RunProgress
from flows.common.run_names import as_of_stamp
from flows.complaints import escalate_complaints
from flows.inbox import ingest_inbox, sample_inbox
from flows.ingest import export_files, ingest_exhibition_leads, sample_exports
from flows.outreach import dispatch_campaign
from flows.scoring import analyze_audience_flow, score_prospects
from tasks.common.incoming import archive_incoming, pending_exports
from tasks.outreach.dispatch import get_campaign, plan_campaign

# The bundled samples are fairs of March-April 2026; the demo's day is the Tuesday after,
# late morning in São Paulo, Madrid and Miami alike, so send windows are open.
DEMO_AS_OF = datetime(2026, 4, 7, 14, 0, tzinfo=UTC)


class StageResult(BaseModel):
    status: str  # completed | failed | skipped
    summary: dict[str, Any] = {}
    error: str | None = None
    # What a stage that completed says went wrong ("4 of 12 failed: 3 x 550, 1 x 554").
    note: str | None = None


class DailySummary(BaseModel):
    as_of: datetime
    stages: dict[str, StageResult]

    @property
    def failed(self) -> list[str]:
        return [name for name, stage in self.stages.items() if stage.status == "failed"]


@task(name="stage", task_run_name="{name}", cache_policy=NO_CACHE)
async def run_stage(name: str, body: Callable[[], Awaitable[Any]]) -> Any:
    """One stage: a stage flow's body with its arguments bound."""
    return await body()


async def _run(name: str, body: Callable[[], Awaitable[Any]]) -> StageResult:
    """Run one stage to its end; its failure is recorded, not raised, so later stages run."""
    # An async task called for its state returns a coroutine; Prefect's stubs say State.
    state = await cast(Awaitable[State[Any]], run_stage(name, body, return_state=True))
    if state.is_completed():
        result = await state.aresult()
        summary = result.model_dump(mode="json") if isinstance(result, BaseModel) else {}
        note = state.message if state.name != "Completed" else None
        return StageResult(status="completed", summary=summary, note=note)
    get_run_logger().error("stage %s failed: %s", name, state.message)
    return StageResult(status="failed", error=str(state.message))


def _inbox_stage(demo: bool, imap_configured: bool) -> Callable[[], Awaitable[Any]] | str:
    """The sample inbox for the demo, else IMAP when an account is set, else why not."""
    if demo:
        return partial(ingest_inbox.fn, eml_dir=sample_inbox())
    if imap_configured:
        return partial(ingest_inbox.fn, imap=True)
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
    # Each stage is a stage flow's body to run, or the reason it is skipped today.
    plan: list[tuple[str, Callable[[], Awaitable[Any]] | str]] = [
        (
            "ingest",
            partial(ingest_exhibition_leads.fn, files, event="demo" if demo else None)
            if files
            else "no new export files",
        ),
        ("inbox", _inbox_stage(demo, bool(settings.imap.username))),
        ("score", partial(score_prospects.fn, as_of=as_of)),
    ]
    if campaign:
        plan.append(
            ("campaign", partial(dispatch_campaign.fn, campaign, dry_run=not send, as_of=as_of))
        )
    plan.append(("complaints", partial(escalate_complaints.fn, as_of=as_of)))
    if demo:
        plan.append(("audience", partial(analyze_audience_flow.fn, as_of=as_of)))

    progress = RunProgress(len(plan), "daily-pipeline-progress", f"Daily pipeline {as_of:%Y-%m-%d}")
    await progress.start()
    stages: dict[str, StageResult] = {}
    with one_sync_client():
        for name, stage in plan:
            stages[name] = (
                StageResult(status="skipped", error=stage)
                if isinstance(stage, str)
                else await _run(name, stage)
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
    notes = [f"{name}: {stage.note}" for name, stage in stages.items() if stage.note]
    if notes:
        # The run list tells a day with failed outreach from a clean one.
        return Completed(  # type: ignore[return-value]
            data=summary, name="Completed with failures", message="; ".join(notes)
        )
    return summary


class IncomingSummary(BaseModel):
    files: list[str] = []
    ingest: dict[str, Any] = {}
    scored: int = 0
    planned: int = 0
    campaign: str | None = None


@flow(name="ingest-incoming", flow_run_name=lambda: f"incoming-{as_of_stamp('%Y-%m-%d-%H%M')}")
async def ingest_incoming(
    campaign: str | None = "welcome-fair",
    folder: str | None = None,
    as_of: datetime | None = None,
) -> IncomingSummary:
    """New exports dropped into ``<data dir>/incoming``: ingested, scored and planned into
    ``campaign`` minutes after they arrive, each file once (moved to processed/ after).

    Planning only: the campaign's sends go out with its next dispatch. A step is planned
    when it is due inside the campaign's send window, so a file dropped at night is planned
    by the first dispatch run of the morning. ``as_of`` (default now) is the instant scores
    and plans are made for.
    """
    where = Path(folder) if folder else get_settings().data_dir / "incoming"
    files = [str(p) for p in pending_exports(where)]
    if not files:
        return IncomingSummary(campaign=campaign)
    now = as_of or datetime.now(UTC)
    with one_sync_client():
        ingested = await ingest_exhibition_leads.fn(files)
        scored = await score_prospects.fn(as_of=now)
        planned = plan_campaign(get_campaign(campaign), now)[0] if campaign else 0
        archive_incoming(files, str(where))
    return IncomingSummary(
        files=[Path(f).name for f in files],
        ingest=ingested.model_dump(mode="json"),
        scored=scored.scored,
        planned=planned,
        campaign=campaign,
    )
