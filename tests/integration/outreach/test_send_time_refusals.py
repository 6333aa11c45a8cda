"""The bounce table at send time: what a real SMTP server's refusal means for the address
and for our sending host (aiosmtpd peer on loopback, the dispatch flow end to end)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.database.engine import session_scope
from connectors.database.inbox_models import Suppression
from connectors.database.outreach_models import OutboxItem
from connectors.database.outreach_store import load_planning_inputs
from connectors.smtp_sender import SendOutcome, SendResult
from flows.outreach import dispatch_campaign as dispatch_campaign_flow
from tasks.outreach.dispatch import Refusal, _bounce_table, refusal_of
from tests.flow_runs import run_to_end
from tests.integration.outreach.support import (
    seed_contacts,
    use_campaigns,
    use_smtp,
    write_campaign,
)
from tests.peers.smtp import SmtpPeer

pytestmark = pytest.mark.usefixtures("prefect_harness")
MONDAY_10_SP = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
dispatch_campaign = run_to_end(dispatch_campaign_flow)


@pytest.fixture
def campaigns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "campaigns"
    use_campaigns(monkeypatch, folder)
    return folder


@pytest.fixture
def smtp(smtp_peer: SmtpPeer, monkeypatch: pytest.MonkeyPatch) -> SmtpPeer:
    use_smtp(monkeypatch, smtp_peer.host, smtp_peer.port)
    return smtp_peer


def _suppressions() -> dict[str, tuple[str, str | None, int | None]]:
    with session_scope() as s:
        return {
            r.address: (r.reason, r.source, r.contact_id)
            for r in s.execute(select(Suppression)).scalars()
        }


def _statuses(campaign: str) -> dict[int, str]:
    with session_scope() as s:
        found = s.execute(select(OutboxItem).where(OutboxItem.campaign == campaign)).scalars()
        return {r.contact_id: r.status for r in found}


def test_user_unknown_at_rcpt_suppresses_the_address_like_a_hard_bounce(
    database: str, campaigns: Path, smtp: SmtpPeer
) -> None:
    name = write_campaign(campaigns)
    seed_contacts(4)
    smtp.answer("550", recipient="c2@client2.example.org")  # 550 5.1.1 No such user

    summary = dispatch_campaign(name, as_of=MONDAY_10_SP)

    assert (summary.sent, summary.failed) == (3, 1)
    assert _statuses(name)[2] == "failed_permanent"
    assert _suppressions() == {"c2@client2.example.org": ("hard_bounce", "smtp", 2)}
    # Planning sees a bounced contact, as it would after a hard DSN.
    with session_scope() as s:
        assert load_planning_inputs(s, name).suppression_reasons[2] == {"hard_bounce"}


def test_client_host_blocked_pauses_the_sender_and_suppresses_nobody(
    database: str, campaigns: Path, smtp: SmtpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    name = write_campaign(campaigns)
    seed_contacts(6)
    smtp.answer("554")  # every recipient: our host is on a blocklist

    summary = dispatch_campaign(name, as_of=MONDAY_10_SP)

    assert summary.sent == 0 and summary.failed == 0
    assert _suppressions() == {}
    statuses = _statuses(name)
    # The refused message waits for a retry; the rest of the batch was never offered.
    assert sorted(statuses.values()).count("retry") >= 1
    assert "failed_permanent" not in statuses.values()
    assert smtp.connections == 1
    assert any(
        r.levelname == "WARNING" and "refused our sending host" in r.getMessage()
        for r in caplog.records
    )

    smtp.reset()  # the blocklisting is lifted: everyone is still mailable
    later = dispatch_campaign(name, as_of=MONDAY_10_SP.replace(hour=18))
    assert later.sent == 6


@pytest.mark.parametrize(
    ("code", "reply", "expected"),
    [
        (550, "5.1.1 <a@b.example>: Recipient address rejected: User unknown", "suppress"),
        (550, "5.2.1 The email account that you tried to reach is disabled", "suppress"),
        (
            554,
            "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using bl.example",
            "pause",
        ),
        (550, "5.7.1 Rejected: your IP has a poor reputation", "pause"),
        (552, "5.2.2 Mailbox full", None),
        (554, "5.7.1 Message rejected as spam by content filter", None),
        (452, "4.1.1 <a@b.example>: user unknown, try later", None),
    ],
)
def test_refusals_mean_what_the_bounce_table_says(
    code: int, reply: str, expected: str | None
) -> None:
    result = SendResult(1, SendOutcome.FAILED_PERMANENT if code >= 500 else SendOutcome.RETRY,
                        code=code, detail=reply)  # fmt: skip
    found = refusal_of("email", result, _bounce_table())
    assert (found.action if isinstance(found, Refusal) else None) == expected
