"""Flows: contracts and their fulfilment events in, the hourly obligations watch, account
health with the next best actions."""

from __future__ import annotations

import time
from datetime import datetime

from prefect import flow

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
    aware,
    emit_account_band_events,
    evaluate_watch_task,
    import_contracts_file,
    import_events_file,
    notify_obligations,
    propose_talk_task,
    publish_accounts,
    publish_plan,
    publish_watch,
    score_accounts_task,
    send_talk_proposals,
    sync_talk_replies_task,
    write_account_plan_task,
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
        summary = evaluate_watch_task(aware(as_of))
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
        summary = score_accounts_task(aware(as_of))
        summary = emit_account_band_events(summary)
        publish_accounts(summary)
        return summary


@flow(name="account-plan", flow_run_name="account-plan-{company}")
def account_plan(company: str, as_of: datetime | None = None) -> PlanResult:
    """The account plan of ``company`` as HTML and PDF, linked from a markdown artifact."""
    result = write_account_plan_task(company, aware(as_of))
    publish_plan(result)
    return result


@flow(name="propose-talk", flow_run_name="propose-talk-{company}")
def propose_talk(
    company: str, contact: str | None = None, as_of: datetime | None = None
) -> TalkResult:
    """A meeting proposal with 2-3 slots, each an invitation, sent at most once."""
    talk = propose_talk_task(company, contact, aware(as_of))
    sent = send_talk_proposals(aware(None))
    if talk.email_outcome is None and sent["sent"]:
        talk.email_outcome = "sent"
    return talk


@flow(name="sync-talk-replies")
def sync_talk_replies() -> TalkSync:
    """The RSVPs the inbox recognised, applied to their talks (run after `ingest-inbox`)."""
    return sync_talk_replies_task()
