"""Flows of outreach: dispatch a campaign through the transactional outbox (at most once per
step), report failed outreach, and redrive chosen rows from the UI's form."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow
from prefect.states import Completed, Failed, State

from config.settings import get_outreach_settings, get_settings
from connectors.database.migrate import ensure_schema
from connectors.database.outreach_store import dispatcher_lease
from connectors.link_secrets import require_safe_link_secret
from flows.common.api_client import one_sync_client
from flows.common.run_names import as_of_stamp
from tasks.outreach.dispatch import (
    DispatchSummary,
    dispatch_batch,
    dispatch_note,
    elapsed_since,
    ensure_throttles,
    get_campaign,
    plan_campaign,
    poll_fax_statuses,
    preview_campaign,
    publish_dispatch_summary,
    recover_abandoned,
)
from tasks.outreach.failed import REDRIVE_FLOW, REPORT_FLOW, RedriveChoiceError, check_choice
from tasks.outreach.reports import publish_failed_outreach, redrive_rows


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    mode = "-dry-run" if params.get("dry_run") else ""
    return f"dispatch-{params.get('campaign', 'campaign')}{mode}-{as_of_stamp()}"


@flow(name="dispatch-campaign", flow_run_name=_run_name, log_prints=False)
async def dispatch_campaign(
    campaign: str,
    dry_run: bool = False,
    as_of: datetime | None = None,
    batch_size: int | None = None,
) -> DispatchSummary:
    """Plan the due steps, then claim, send and record batches until none is left.

    A run in which messages failed ends ``Completed with failures``, its message saying
    how many and with which codes ("6 of 13 failed: 4 x 550, 2 x 554"), so the run list
    tells it from a clean run; callers still get the summary as the run's result.

    The dispatcher holds a lease (an advisory lock or a file lock) for the whole run, so
    the next run can tell rows it left ``sending`` from rows a live dispatcher is sending.

    Async only so that Prefect lets its heartbeat thread go at the end instead of joining
    it (up to a second; see ``flows.daily``): the body and its tasks are sync and run in
    turn on this thread.
    """
    with one_sync_client():
        started = time.perf_counter()
        when = (as_of or datetime.now(UTC)).astimezone(UTC)
        ensure_schema()
        # Resolved once, here: a missing or invalid campaign is refused before anything else.
        resolved = get_campaign(campaign)
        if dry_run:
            summary = preview_campaign(resolved, when)
        else:
            require_safe_link_secret(get_settings())  # links in real mail must be unforgeable
            ensure_throttles(resolved)
            summary = DispatchSummary(campaign=campaign, as_of=when)
            size = batch_size or get_outreach_settings().batch_size
            with dispatcher_lease(get_settings().data_dir) as lease:
                summary.recovered_unknown = recover_abandoned(lease.token, when)
                summary.fax_statuses_polled = poll_fax_statuses()
                summary.planned, summary.not_planned = plan_campaign(resolved, when)
                while True:
                    batch = dispatch_batch(resolved, when, lease.token, size)
                    summary.add(batch)
                    if batch.exhausted:
                        break
        summary.seconds = elapsed_since(started)
        publish_dispatch_summary(summary)
        if not dry_run:
            publish_failed_outreach()
        return _final_state(summary)  # type: ignore[return-value]


def _final_state(summary: DispatchSummary) -> State[DispatchSummary]:
    """Completed, named for what went wrong when something did; the summary is its data."""
    note = dispatch_note(summary)
    if note is None:
        return Completed(data=summary, message=f"{summary.sent} sent")
    return Completed(data=summary, name="Completed with failures", message=note)


@flow(name=REPORT_FLOW, flow_run_name=lambda: f"report-failed-outreach-{as_of_stamp()}")
async def report_failed_outreach(as_of: datetime | None = None) -> int:
    """Refresh the `failed-outreach` table and its redrive links; returns its row count.

    ``as_of`` only names the run: the table is the outbox as it is now.
    """
    with one_sync_client():
        return publish_failed_outreach()


@flow(name=REDRIVE_FLOW, log_prints=False)
async def redrive_outreach(
    ids: list[int] | None = None,
    campaign: str | None = None,
    confirm_unknown: bool = False,
    requested_by: str = "",
) -> State[dict[str, object]]:
    """Make chosen failed rows due again (by outbox ``ids`` from the failed-outreach table,
    and/or a whole ``campaign``); the next dispatch run sends them.

    The rules of `accountflow outreach retry`: rows whose send may have arrived
    (``unknown``) are resent only with ``confirm_unknown``; bounced rows never are.

    Args:
        ids: Outbox ids, from the `id` column of the failed-outreach table.
        campaign: Every failed row of this campaign (with ids: only those of it).
        confirm_unknown: Also resend rows whose first send may have arrived (checked).
        requested_by: Your name, for the audit trail (the UI has no login, so it is
            recorded as declared, with this run).
    """
    with one_sync_client():
        try:
            check_choice(campaign, ids)
        except RedriveChoiceError as exc:
            return Failed(message=str(exc))
        result = redrive_rows(campaign, ids, confirm_unknown, requested_by)
        publish_failed_outreach()
        data = {
            "redriven": result.redriven,
            "unknown_left_for_review": result.unknown_left_for_review,
        }
        return Completed(data=data, message=result.message())
