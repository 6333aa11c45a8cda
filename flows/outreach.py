"""Flow: dispatch one campaign through the transactional outbox, at most once per step."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow

from config.settings import get_outreach_settings, get_settings
from connectors.database.migrate import ensure_schema
from connectors.database.outreach_store import dispatcher_lease
from connectors.link_secrets import require_safe_link_secret
from flows.common.api_client import one_sync_client
from flows.common.run_names import as_of_stamp
from tasks.outreach.dispatch import (
    DispatchSummary,
    dispatch_batch,
    elapsed_since,
    ensure_throttles,
    get_campaign,
    plan_campaign,
    poll_fax_statuses,
    preview_campaign,
    publish_dispatch_summary,
    recover_abandoned,
)


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
        return summary
