"""dispatch-campaign end to end: real SQLite/PostgreSQL, a scripted aiosmtpd server and a
pytest-httpserver fax gateway."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from typer.testing import CliRunner
from werkzeug import Response

from connectors.database.engine import session_scope
from connectors.database.inbox_models import InboundMessage, Suppression
from connectors.database.ingest_models import Contact
from connectors.database.outreach_models import DeliveryEvent, OutboxItem, OutreachProfile
from flows.automations import (
    FAILED_RUN_AUTOMATION,
    FAILURE_RATE_AUTOMATION,
    ZOMBIE_RUN_AUTOMATION,
    ensure_automations,
)
from flows.cli import app
from flows.outreach import dispatch_campaign as dispatch_campaign_flow
from tests.flow_runs import run_to_end
from tests.integration.outreach.support import (
    seed_contacts,
    use_campaigns,
    use_smtp,
    write_campaign,
)
from tests.peers.smtp import SmtpPeer

pytestmark = pytest.mark.usefixtures("prefect_harness")
MONDAY_10_SP = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 10:00 in São Paulo
EMAIL_ONLY = [
    {"name": "intro", "channel": "email", "delay_business_days": 0, "template": "welcome-intro"}
]


@pytest.fixture
def campaigns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "campaigns"
    use_campaigns(monkeypatch, folder)
    return folder


@pytest.fixture
def smtp(smtp_peer: SmtpPeer, monkeypatch: pytest.MonkeyPatch) -> SmtpPeer:
    use_smtp(monkeypatch, smtp_peer.host, smtp_peer.port)
    return smtp_peer


dispatch_campaign = run_to_end(dispatch_campaign_flow)


def rows(campaign: str) -> dict[int, dict[str, Any]]:
    with session_scope() as s:
        found = s.execute(select(OutboxItem).where(OutboxItem.campaign == campaign)).scalars()
        return {
            r.contact_id: {c: getattr(r, c) for c in OutboxItem.__table__.columns.keys()}  # noqa: SIM118
            for r in found
        }


def received_ids(peer: SmtpPeer) -> list[str]:
    return [str(m.message["Message-ID"]) for m in peer.received]


def test_each_smtp_answer_lands_in_its_outbox_state_and_nothing_is_sent_twice(
    database: str, campaigns: Path, smtp: SmtpPeer
) -> None:
    name = write_campaign(campaigns)
    seed_contacts(8)
    smtp.answer("550", recipient="c2@client2.example.org")
    smtp.answer("451", recipient="c3@client3.example.org")
    smtp.answer("421", recipient="c4@client4.example.org")
    smtp.answer("stall", at="data", recipient="c5@client5.example.org")

    first = dispatch_campaign(name, as_of=MONDAY_10_SP)

    assert (first.planned, first.sent, first.failed, first.retried, first.unknown) == (
        8,
        4,
        1,
        2,
        1,
    )
    assert first.failed_by_reason == {"smtp 550": 1}
    state = rows(name)
    assert {cid: r["status"] for cid, r in state.items()} == {
        1: "sent", 2: "failed_permanent", 3: "retry", 4: "retry",
        5: "unknown", 6: "sent", 7: "sent", 8: "sent",
    }  # fmt: skip
    assert state[2]["last_code"] == 550
    assert state[3]["next_attempt_at"] > MONDAY_10_SP.replace(tzinfo=None)
    # The Message-ID on the wire is the one planned, derived from the idempotency key.
    sent_ids = {state[c]["message_id"] for c in (1, 6, 7, 8)}
    assert set(received_ids(smtp)) == sent_ids
    assert all(m.mail_from.startswith("bounces+o") for m in smtp.received)

    again = dispatch_campaign(name, as_of=MONDAY_10_SP)
    assert (again.planned, again.sent) == (0, 0)

    smtp.reset()
    later = dispatch_campaign(name, as_of=MONDAY_10_SP + timedelta(hours=3))
    assert later.sent == 2  # the two deferrals; the unknown one waits for a person
    assert sorted(received_ids(smtp)) == sorted(state[c]["message_id"] for c in (3, 4))
    assert rows(name)[5]["status"] == "unknown"


def test_suppression_is_checked_at_the_claim_per_channel(
    database: str, campaigns: Path, smtp: SmtpPeer, httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from config.settings import get_settings

    monkeypatch.setenv("ACCOUNTFLOW_FAX__BASE_URL", httpserver.url_for("/v2"))
    get_settings.cache_clear()
    httpserver.expect_request("/v2/faxes", method="POST").respond_with_json(
        {"success": True, "data": {"id": "F-1"}}
    )
    no_stop = [{**EMAIL_ONLY[0], "stop_on": []}]
    mail = write_campaign(campaigns, "mail", steps=no_stop)
    fax_step = {"name": "fax", "channel": "fax", "delay_business_days": 0,
                "template": "fax-followup", "stop_on": []}  # fmt: skip
    faxes = write_campaign(
        campaigns, "faxes", steps=[fax_step], audience={"not_yet_contacted": False}
    )
    seed_contacts(2, fax=True)
    with session_scope() as s:
        s.add(Suppression(channel="fax", address="+551130000001", reason="hard_bounce"))
        s.add(Suppression(channel="email", address="c2@client2.example.org", reason="opt_out"))

    mailed = dispatch_campaign(mail, as_of=MONDAY_10_SP)
    faxed = dispatch_campaign(faxes, as_of=MONDAY_10_SP)

    assert (mailed.sent, mailed.suppressed) == (1, 1)
    assert (faxed.sent, faxed.suppressed) == (1, 1)
    assert {c: r["status"] for c, r in rows(mail).items()} == {1: "sent", 2: "suppressed"}
    assert {c: r["status"] for c, r in rows(faxes).items()} == {1: "suppressed", 2: "sent"}
    assert rows(faxes)[2]["provider_id"] == "F-1"
    assert [m.rcpt_tos for m in smtp.received] == [("c1@client1.example.org",)]
    [(request, _)] = httpserver.log
    assert request.form["to"] == "+551130000002"
    assert request.form["tag[outbox_id]"] == str(rows(faxes)[2]["id"])


def test_gateway_5xx_defers_the_fax(
    database: str, campaigns: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("ACCOUNTFLOW_FAX__BASE_URL", httpserver.url_for("/v2"))
    get_settings.cache_clear()
    httpserver.expect_request("/v2/faxes", method="POST").respond_with_data("down", status=503)
    fax_step = {
        "name": "fax",
        "channel": "fax",
        "delay_business_days": 0,
        "template": "fax-followup",
    }
    name = write_campaign(campaigns, steps=[fax_step])
    seed_contacts(1, fax=True)

    summary = dispatch_campaign(name, as_of=MONDAY_10_SP)

    assert (summary.sent, summary.retried) == (0, 1)
    assert rows(name)[1]["last_code"] == 503


def test_faxes_whose_callback_never_came_are_polled_once_for_their_final_status(
    database: str, campaigns: Path, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config.settings import get_outreach_settings, get_settings

    monkeypatch.setenv("ACCOUNTFLOW_FAX__BASE_URL", httpserver.url_for("/v2"))
    monkeypatch.setenv("ACCOUNTFLOW_OUTREACH_FAX_POLL_AFTER_MINUTES", "0")
    get_settings.cache_clear()
    get_outreach_settings.cache_clear()
    sent = iter(["F-1", "F-2", "F-3"])
    httpserver.expect_request("/v2/faxes", method="POST").respond_with_handler(
        lambda _: Response(json.dumps({"success": True, "data": {"id": next(sent)}}))
    )
    fax_step = {"name": "fax", "channel": "fax", "delay_business_days": 0,
                "template": "fax-followup", "stop_on": []}  # fmt: skip
    name = write_campaign(campaigns, steps=[fax_step])
    seed_contacts(3, fax=True)
    assert dispatch_campaign(name, as_of=MONDAY_10_SP).sent == 3
    # No callback arrives; the gateway says: delivered, busy line, still sending.
    answers = {
        "F-1": {"id": "F-1", "status": "success"},
        "F-2": {"id": "F-2", "status": "failure", "error_type": "lineError", "error_code": "busy"},
        "F-3": {"id": "F-3", "status": "inprogress"},
    }
    for fax_id, record in answers.items():
        httpserver.expect_request(f"/v2/faxes/{fax_id}", method="GET").respond_with_json(
            {"success": True, "data": record}
        )

    polled = dispatch_campaign(name, as_of=MONDAY_10_SP)

    assert polled.fax_statuses_polled == 2
    by_fax = {r["provider_id"]: r for r in rows(name).values()}
    assert (by_fax["F-1"]["status"], by_fax["F-1"]["final_status"]) == ("sent", "success")
    assert (by_fax["F-2"]["status"], by_fax["F-2"]["final_status"]) == ("retry", "failure")
    assert by_fax["F-3"]["final_status"] is None  # in flight: asked again next run
    with session_scope() as s:
        events = s.execute(select(DeliveryEvent.provider_id)).scalars().all()
    assert sorted(events) == ["F-1", "F-2"]
    gets = [r.path for r, _ in httpserver.log if r.method == "GET"]
    assert sorted(gets) == ["/v2/faxes/F-1", "/v2/faxes/F-2", "/v2/faxes/F-3"]


def test_closed_send_window_plans_nothing_until_it_opens(
    database: str, campaigns: Path, smtp: SmtpPeer
) -> None:
    window = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00",
              "skip_holidays": True, "default_timezone": "UTC"}  # fmt: skip
    name = write_campaign(campaigns, send_window=window, steps=EMAIL_ONLY)
    seed_contacts(3)  # their zone is America/Sao_Paulo
    saturday = datetime(2026, 2, 28, 13, 0, tzinfo=UTC)
    monday_8_local = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)

    assert dispatch_campaign(name, as_of=saturday).skipped_window == 0
    assert dispatch_campaign(name, as_of=saturday).not_planned == {"skipped_window": 3}
    assert dispatch_campaign(name, as_of=monday_8_local).not_planned == {"skipped_window": 3}
    assert smtp.received == []
    assert dispatch_campaign(name, as_of=MONDAY_10_SP).sent == 3


def test_dry_run_writes_previews_and_sends_and_stores_nothing(
    database: str, campaigns: Path, smtp: SmtpPeer
) -> None:
    name = write_campaign(campaigns)
    seed_contacts(4)

    summary = dispatch_campaign(name, dry_run=True, as_of=MONDAY_10_SP)

    assert (summary.planned, summary.previews, summary.sent) == (4, 4, 0)
    previews = sorted(Path(str(summary.preview_dir)).glob("*.eml"))
    assert len(previews) == 4
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in previews[0].read_bytes()
    assert smtp.received == []
    assert rows(name) == {}


def test_daily_cap_per_sender_leaves_the_rest_for_tomorrow(
    database: str, campaigns: Path, smtp: SmtpPeer
) -> None:
    throttles = {"global_per_minute": 100_000, "per_domain_per_minute": 100_000,
                 "fax_per_minute": 100, "daily_cap_per_sender": 3}  # fmt: skip
    name = write_campaign(campaigns, throttles=throttles, steps=EMAIL_ONLY)
    seed_contacts(5)

    today = dispatch_campaign(name, as_of=MONDAY_10_SP)
    tomorrow = dispatch_campaign(name, as_of=MONDAY_10_SP + timedelta(days=1))

    assert (today.sent, today.skipped_throttle) == (3, 2)
    assert tomorrow.sent == 2
    assert len(smtp.received) == 5


def test_a_reply_after_the_first_step_stops_the_sequence(
    database: str, campaigns: Path, smtp: SmtpPeer
) -> None:
    name = write_campaign(campaigns)
    seed_contacts(2)
    dispatch_campaign(name, as_of=MONDAY_10_SP)
    with session_scope() as s:
        s.add(InboundMessage(source="reply-1", sha256="0" * 64, size=10, label="lead",
                             contact_id=1, received_at=datetime(2026, 3, 3, 12)))  # fmt: skip

    later = dispatch_campaign(name, as_of=MONDAY_10_SP + timedelta(days=4))

    assert later.not_planned == {"stopped:replied": 1}
    assert (later.planned, later.sent) == (1, 1)
    assert sorted(rows(name)) == [1, 2]
    with session_scope() as s:
        steps = s.execute(
            select(OutboxItem.contact_id, func.max(OutboxItem.step)).group_by(OutboxItem.contact_id)
        ).all()
    assert dict(steps) == {1: 0, 2: 1}


def test_ops_list_failures_and_redrive_unknowns_only_when_confirmed(
    database: str, campaigns: Path, smtp: SmtpPeer
) -> None:
    name = write_campaign(campaigns, steps=EMAIL_ONLY)
    seed_contacts(3)
    # A refusal of the message (a 550 5.1.1 would suppress the address for good).
    smtp.answer("552", recipient="c1@client1.example.org")
    smtp.answer("stall", at="data", recipient="c2@client2.example.org")
    dispatch_campaign(name, as_of=MONDAY_10_SP)
    state = rows(name)
    runner = CliRunner()

    listed = runner.invoke(app, ["outreach", "failed", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {(r["contact_id"], r["status"]) for r in json.loads(listed.output)} == {
        (1, "failed_permanent"), (2, "unknown"),
    }  # fmt: skip

    ids = ["--ids", str(state[1]["id"]), "--ids", str(state[2]["id"])]
    plain = runner.invoke(app, ["outreach", "retry", *ids, "--json"])
    assert json.loads(plain.output) == {
        "redriven": {"failed_permanent": 1}, "unknown_left_for_review": 1,
    }  # fmt: skip
    confirmed = runner.invoke(app, ["outreach", "retry", "--campaign", name, "--confirm-unknown"])
    assert "2 rows due again (retry: 1, unknown: 1)" in confirmed.output

    smtp.reset()
    redriven = dispatch_campaign(name, as_of=datetime.now(UTC) + timedelta(minutes=1))
    assert redriven.sent == 2
    assert sorted(received_ids(smtp)) == sorted(state[c]["message_id"] for c in (1, 2))


def test_automations_are_created_once_however_often_setup_runs() -> None:
    from prefect.client.orchestration import get_client

    ensure_automations()
    ensure_automations()

    with get_client(sync_client=True) as client:
        automations = client.read_automations()
    names = [a.name for a in automations]
    assert names.count(FAILED_RUN_AUTOMATION) == 1
    assert names.count(FAILURE_RATE_AUTOMATION) == 1
    assert names.count(ZOMBIE_RUN_AUTOMATION) == 1
    # A run whose heartbeats stop for three periods (Prefect's default: 180 s) is crashed.
    zombie = next(a for a in automations if a.name == ZOMBIE_RUN_AUTOMATION)
    trigger: Any = zombie.trigger
    assert trigger.after == {"prefect.flow-run.heartbeat"}
    assert trigger.within.total_seconds() == 540 and trigger.for_each == {"prefect.resource.id"}
    assert [a.type for a in zombie.actions] == ["change-flow-run-state"]


def test_a_campaign_filtered_by_segment_reaches_exactly_that_segment(
    database: str, campaigns: Path, smtp: SmtpPeer
) -> None:
    from connectors.database.ingest_models import Company

    with session_scope() as s:
        s.add_all(
            [
                Company(id=1, name="Transportes Rápidos Ltda", name_key="transportes rapidos"),
                Company(id=2, name="Banco Central de Crédito", name_key="banco central"),
            ]
        )
    seed_contacts(6)
    with session_scope() as s:
        # 1-3 work for a carrier, 4-5 for a bank, 6 for nobody known; 5's profile puts
        # it in logistics whatever its company says (a profile is the operator's word).
        for cid in (1, 2, 3):
            s.get(Contact, cid).company_id = 1  # type: ignore[union-attr]
        for cid in (4, 5):
            s.get(Contact, cid).company_id = 2  # type: ignore[union-attr]
        s.get(OutreachProfile, 5).segment = "logistics"  # type: ignore[union-attr]
    name = write_campaign(
        campaigns, steps=EMAIL_ONLY, audience={"segments": ["Logistics"], "not_yet_contacted": True}
    )

    summary = dispatch_campaign(name, as_of=MONDAY_10_SP)

    assert summary.sent == 4
    assert summary.not_planned == {"audience:segment": 2}
    assert sorted(rows(name)) == [1, 2, 3, 5]
    assert sorted(m.rcpt_tos[0] for m in smtp.received) == [
        f"c{i}@client{i % 7}.example.org" for i in (1, 2, 3, 5)
    ]


def test_a_busy_recipient_domain_is_held_back_while_other_domains_go_out(
    database: str, campaigns: Path, smtp: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config.settings import get_outreach_settings

    monkeypatch.setenv("ACCOUNTFLOW_OUTREACH_THROTTLE_WAIT_SECONDS", "1")
    get_outreach_settings.cache_clear()
    # A domain no other test uses: Prefect's limits outlive a test.
    busy = f"busy-{uuid.uuid4().hex[:10]}.example.org"
    quiet = f"quiet-{uuid.uuid4().hex[:10]}.example.org"
    people = [
        {"id": 100 + i, "first_name": f"P{i}", "full_name": f"P{i} Souza", "country": "BR",
         "email": f"p{i}@{busy if i < 3 else quiet}", "band": "A"}
        for i in range(4)
    ]  # fmt: skip
    seed_contacts(0, extra=people)
    throttles = {"global_per_minute": 100_000, "per_domain_per_minute": 2,
                 "fax_per_minute": 100, "daily_cap_per_sender": 100_000}  # fmt: skip
    name = write_campaign(campaigns, throttles=throttles, steps=EMAIL_ONLY)

    summary = dispatch_campaign(name, as_of=MONDAY_10_SP)

    assert (summary.sent, summary.skipped_throttle) == (3, 1)
    domains = Counter(m.rcpt_tos[0].rpartition("@")[2] for m in smtp.received)
    assert domains == {busy: 2, quiet: 1}
    statuses = Counter(r["status"] for r in rows(name).values())
    assert statuses == {"sent": 3, "planned": 1}  # the held one waits, unattempted
