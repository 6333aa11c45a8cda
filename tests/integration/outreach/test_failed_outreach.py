"""Failed outreach in Prefect: a dispatch with refusals says so in its final state, the
failed-outreach table lists each failed row (masked, with its code and what to do), and the
redrive flow follows the rules of `accountflow outreach retry`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.database.engine import session_scope
from connectors.database.governance_store import audit_records
from connectors.database.outreach_models import OutboxItem
from flows.outreach import dispatch_campaign, redrive_outreach
from tasks.outreach.failed import FAILED_OUTREACH_KEY, REDRIVE_LINKS_KEY
from tests.integration.outreach.support import (
    seed_contacts,
    use_campaigns,
    use_smtp,
    write_campaign,
)
from tests.peers.smtp import SmtpPeer

pytestmark = pytest.mark.usefixtures("prefect_harness")
MONDAY_10_SP = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
EMAIL_ONLY = [
    {"name": "intro", "channel": "email", "delay_business_days": 0, "template": "welcome-intro"}
]


@pytest.fixture
def campaign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_peer: SmtpPeer) -> str:
    use_campaigns(monkeypatch, tmp_path / "campaigns")
    use_smtp(monkeypatch, smtp_peer.host, smtp_peer.port)
    name = write_campaign(tmp_path / "campaigns", steps=EMAIL_ONLY)
    seed_contacts(5)
    smtp_peer.answer("550", recipient="c1@client1.example.org")
    smtp_peer.answer("550", recipient="c2@client2.example.org")
    smtp_peer.answer("451", recipient="c3@client3.example.org")
    smtp_peer.answer("stall", at="data", recipient="c4@client4.example.org")
    return name


def _latest(key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return artifact.data


def _outbox() -> dict[int, OutboxItem]:
    with session_scope() as s:
        return {r.contact_id: r for r in s.execute(select(OutboxItem)).scalars()}


def test_a_dispatch_with_refusals_completes_with_failures_naming_codes(
    database: str, campaign: str
) -> None:
    state = asyncio.run(dispatch_campaign(campaign, as_of=MONDAY_10_SP, return_state=True))
    assert state.is_completed()
    assert state.name == "Completed with failures"
    assert state.message == (
        "2 of 5 failed: 2 x 550; 1 of 5 unknown (may have arrived; review before redrive); "
        "1 deferred, retried later"
    )
    summary = state.result()
    assert (summary.sent, summary.failed, summary.unknown, summary.retried) == (1, 2, 1, 1)


def test_a_clean_dispatch_is_plainly_completed(
    database: str, campaign: str, smtp_peer: SmtpPeer
) -> None:
    smtp_peer.reset()
    state = asyncio.run(dispatch_campaign(campaign, as_of=MONDAY_10_SP, return_state=True))
    assert (state.name, state.message) == ("Completed", "5 sent")


def test_failed_outreach_table_lists_each_row_masked_with_code_and_hint(
    database: str, campaign: str
) -> None:
    asyncio.run(dispatch_campaign(campaign, as_of=MONDAY_10_SP))
    table = json.loads(_latest(FAILED_OUTREACH_KEY))
    by_status = {(r["status"], r["code"]) for r in table}
    assert by_status == {("failed", 550), ("deferred", 451), ("unknown", "")}
    assert len(table) == 4
    assert "@client" in json.dumps(table) and "c1@client1" not in json.dumps(table)
    failed = next(r for r in table if r["code"] == 550)
    assert failed["address"].startswith("c***@client")
    assert failed["redrive"] == "address refused: correct the contact's address, then redrive"
    deferred = next(r for r in table if r["status"] == "deferred")
    assert deferred["next_attempt"] and deferred["attempts"] == 1
    links = _latest(REDRIVE_LINKS_KEY)
    assert "redrive-outreach" in links and "4 messages" in links


def test_redrive_flow_needs_a_choice_and_leaves_unknown_rows_unless_confirmed(
    database: str, campaign: str
) -> None:
    asyncio.run(dispatch_campaign(campaign, as_of=MONDAY_10_SP))
    rows = _outbox()

    refused = asyncio.run(redrive_outreach(return_state=True))
    assert refused.is_failed() and "choose rows" in str(refused.message)

    chosen = [rows[1].id, rows[4].id]  # a 550 and an unknown
    state = asyncio.run(redrive_outreach(ids=chosen, return_state=True))
    assert state.is_completed()
    assert state.result() == {"redriven": {"failed_permanent": 1}, "unknown_left_for_review": 1}
    after = _outbox()
    assert (after[1].status, after[4].status, after[2].status) == (
        "retry",
        "unknown",
        "failed_permanent",
    )
    table = {r["id"]: r for r in json.loads(_latest(FAILED_OUTREACH_KEY))}
    assert table[rows[1].id]["status"] == "redriven"
    assert table[rows[4].id]["status"] == "unknown"

    confirmed = asyncio.run(redrive_outreach(ids=[rows[4].id], confirm_unknown=True))
    assert confirmed == {"redriven": {"unknown": 1}, "unknown_left_for_review": 0}
    assert _outbox()[4].status == "retry"


def test_a_redrive_from_the_ui_is_audited_with_the_declared_name_and_its_run(
    database: str, campaign: str
) -> None:
    asyncio.run(dispatch_campaign(campaign, as_of=MONDAY_10_SP))
    rows = _outbox()

    asyncio.run(redrive_outreach(ids=[rows[1].id], requested_by="  Ana   Ops "))
    asyncio.run(redrive_outreach(ids=[rows[4].id], confirm_unknown=True))

    with session_scope() as s:
        trail = [r for r in audit_records(s) if r["action"].startswith("outreach.")]
    assert [r["action"] for r in trail] == ["outreach.redrive", "outreach.confirm_unknown"]
    first, second = trail
    assert first["actor"].startswith("prefect-ui:Ana Ops (declared; flow run ")
    assert second["actor"].startswith("prefect-ui:unnamed (declared; flow run ")
    assert first["target"] == f"campaign:* ids:{rows[1].id}"
    assert first["after"] == {"redriven": {"failed_permanent": 1}}
