"""Flows: contracts and their fulfilment events in, the hourly obligations watch, account
health with the next best actions."""

from __future__ import annotations

import time
from datetime import datetime

from prefect import flow

from config.accounts_policy import get_accounts_policy
from config.settings import get_outreach_settings, get_settings
from connectors.database.outreach_store import dispatcher_lease
from flows.common.api_client import one_sync_client
from flows.common.run_names import as_of_stamp
from tasks.accounts.pipeline import (
    AccountsSummary,
    ContractImportSummary,
    EventImportSummary,
    PlanResult,
    TalkResult,
    TalkSync,
    WatchSummary,
    emit_account_band_events,
    enqueue_talk_proposals,
    evaluate_watch_task,
    import_contracts_file,
    import_events_file,
    notify_obligations,
    propose_talk_task,
    publish_accounts,
    publish_plan,
    publish_watch,
    record_talk_sends,
    render_talk_proposal,
    score_accounts_task,
    sync_talk_replies_task,
    talk_email_outcome,
    write_account_plan_task,
)
from tasks.common.clock import as_utc
from tasks.outreach.dispatch import (
    DispatchSummary,
    dispatch_batch,
    ensure_throttles,
    recover_abandoned,
)


@flow(name="import-contracts")
def import_contracts(path: str) -> ContractImportSummary:
    """Rows in = accepted + rejected (each with file, row and field)."""
    return import_contracts_file(path)


@flow(name="import-contract-events")
def import_contract_events(path: str) -> EventImportSummary:
    """Rows in = recorded + duplicates (same event again) + rejected."""
    return import_events_file(path)


@flow(
    name="watch-obligations",
    flow_run_name=lambda: f"watch-obligations-{as_of_stamp('%Y-%m-%dT%H:%M')}",
)
async def watch_obligations(as_of: datetime | None = None) -> WatchSummary:
    """States at ``as_of`` → notices (once per state) → email/webhook → table artifacts."""
    with one_sync_client():
        started = time.perf_counter()
        summary = evaluate_watch_task(as_utc(as_of))
        summary = notify_obligations(summary)
        summary.seconds = round(time.perf_counter() - started, 3)
        publish_watch(summary)
        return summary


@flow(
    name="score-accounts",
    flow_run_name=lambda: f"score-accounts-{as_of_stamp('%Y-%m-%dT%H:%M')}",
)
async def score_accounts(as_of: datetime | None = None) -> AccountsSummary:
    """Health per company → band-change events → next best actions (table artifacts)."""
    with one_sync_client():
        summary = score_accounts_task(as_utc(as_of))
        summary = emit_account_band_events(summary)
        publish_accounts(summary)
        return summary


@flow(name="account-plan", flow_run_name="account-plan-{company}")
def account_plan(company: str, as_of: datetime | None = None) -> PlanResult:
    """The account plan of ``company`` as HTML and PDF, linked from a markdown artifact."""
    result = write_account_plan_task(company, as_utc(as_of))
    publish_plan(result)
    return result


def _dispatch_talks(when: datetime) -> dict[str, int]:
    """Queue new proposals in the outreach outbox and dispatch the ``talks`` campaign there:
    claimed and committed before the send, suppression checked in the claim, the send
    window and throttles applied, a dead dispatcher's rows settled from its journal."""
    campaign = get_accounts_policy().talks.campaign()
    queued = enqueue_talk_proposals()
    ensure_throttles(campaign)
    summary = DispatchSummary(campaign=campaign.name, as_of=when)
    size = get_outreach_settings().batch_size
    with dispatcher_lease(get_settings().data_dir) as lease:
        summary.recovered_unknown = recover_abandoned(lease.token, when)
        while True:
            batch = dispatch_batch(campaign, when, lease.token, size, render_talk_proposal)
            summary.add(batch)
            if batch.exhausted:
                break
    record_talk_sends()
    counts = summary.model_dump(
        include={"recovered_unknown", "sent", "retried", "failed", "unknown", "suppressed"}
    )
    return {"queued": queued, **counts, "deferred": summary.skipped_window}


@flow(name="propose-talk", flow_run_name="propose-talk-{company}")
def propose_talk(
    company: str, contact: str | None = None, as_of: datetime | None = None
) -> TalkResult:
    """A meeting proposal with 2-3 slots, each an invitation, sent through the outbox."""
    when = as_utc(as_of)
    talk = propose_talk_task(company, contact, when)
    _dispatch_talks(when)
    return talk.model_copy(update={"email_outcome": talk_email_outcome(talk.talk_id)})


@flow(
    name="send-talk-proposals",
    flow_run_name=lambda: f"send-talk-proposals-{as_of_stamp('%Y-%m-%dT%H:%M')}",
)
def send_talk_proposals(as_of: datetime | None = None) -> dict[str, int]:
    """Proposals still due (outside the client's send window before, throttled, retried)."""
    return _dispatch_talks(as_utc(as_of))


@flow(name="sync-talk-replies")
def sync_talk_replies() -> TalkSync:
    """The RSVPs the inbox recognised, applied to their talks (run after `ingest-inbox`)."""
    return sync_talk_replies_task()
