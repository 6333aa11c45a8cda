"""Which steps are due and who a stop condition ends, with no database and no Prefect."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

import pytest

from config.campaign_policy import CAMPAIGNS_DIR, Campaign, load_campaign
from config.scoring_policy import AudiencePolicy
from connectors.smtp_sender import SendOutcome, SendResult
from tasks.outreach.dispatch import failure_reason, outcome_update
from tasks.outreach.planning import StopSignals, plan_due_steps, with_segments
from tasks.outreach.rendering import idempotency_key, message_id_for

MONDAY_10_SP = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    """The sample campaign, narrowed so every audience filter has something to exclude."""
    sample = load_campaign(CAMPAIGNS_DIR / "welcome-fair.yaml")
    audience = sample.audience.model_copy(
        update={"segments": ["distributor", "retailer"], "source_events": ["feira-sp-2026"]}
    )
    return sample.model_copy(update={"audience": audience})


def person(cid: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "contact_id": cid, "full_name": "Ana Souza", "email": f"ana{cid}@cliente.com.br",
        "country": "BR", "band": "A", "source_event": "feira-sp-2026",
        "segment": "distributor", "tags": "", "timezone": "America/Sao_Paulo",
        "fax": "(11) 3333-4444", **extra,
    }  # fmt: skip


def no_holidays(country: str | None, year: int) -> frozenset[date]:
    return frozenset()


def plan(campaign: Campaign, contacts: list[dict[str, Any]], progress: Any = None,
         signals: StopSignals | None = None, at: datetime = MONDAY_10_SP) -> Any:  # fmt: skip
    return plan_due_steps(
        campaign, contacts, progress or {}, signals or StopSignals(), at, holidays=no_holidays
    )


def test_first_step_row_carries_the_stable_key_and_message_id(campaign: Campaign) -> None:
    [row] = plan(campaign, [person()]).rows
    key = idempotency_key("welcome-fair", 1, "intro")
    assert row["idempotency_key"] == key
    assert row["message_id"] == message_id_for(key, "acme.example.com")
    assert (row["step"], row["channel"], row["language"]) == (0, "email", "pt")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ({"segment": "competitor-shop"}, "audience:segment"),
        ({"band": "D"}, "audience:band"),
        ({"country": "JP"}, "audience:country"),
        ({"source_event": "other-fair"}, "audience:source_event"),
        ({"tags": "vip, competitor"}, "audience:exclude_tags"),
    ],
)
def test_audience_filters_name_the_filter_that_excluded(
    campaign: Campaign, edit: dict[str, Any], reason: str
) -> None:
    result = plan(campaign, [person(**edit)])
    assert result.rows == []
    assert dict(result.counts) == {reason: 1}


def test_someone_contacted_by_another_campaign_is_not_new(campaign: Campaign) -> None:
    result = plan(campaign, [person()], signals=StopSignals(contacted_elsewhere={1}))
    assert dict(result.counts) == {"audience:already_contacted": 1}


def test_next_step_waits_three_business_days_over_the_weekend(campaign: Campaign) -> None:
    sent_friday = datetime(2026, 3, 6, 13, 0)  # naive UTC, 10:00 local
    progress = {1: {0: ("sent", sent_friday)}}
    tuesday = plan(campaign, [person()], progress, at=datetime(2026, 3, 10, 13, 0, tzinfo=UTC))
    assert dict(tuesday.counts) == {"waiting": 1}
    [row] = plan(campaign, [person()], progress, at=datetime(2026, 3, 11, 13, 0, tzinfo=UTC)).rows
    assert (row["step"], row["channel"]) == (1, "invitation")


@pytest.mark.parametrize(
    ("signals", "band", "reason"),
    [
        (StopSignals(last_reply_at={1: datetime(2026, 3, 3, 12)}), "A", "stopped:replied"),
        (StopSignals(suppression_reasons={1: {"hard_bounce"}}), "A", "stopped:bounced"),
        (StopSignals(suppression_reasons={1: {"opt_out"}}), "A", "stopped:opted_out"),
        (StopSignals(open_complaints={1}), "A", "stopped:complaint_open"),
        (StopSignals(), "D", "stopped:band_dropped"),
    ],
)
def test_each_stop_condition_ends_the_sequence(
    campaign: Campaign, signals: StopSignals, band: str, reason: str
) -> None:
    progress = {1: {0: ("sent", datetime(2026, 3, 2, 13, 0))}}
    result = plan(campaign, [person(band=band)], progress, signals,
                  at=datetime(2026, 3, 9, 13, 0, tzinfo=UTC))  # fmt: skip
    assert result.rows == []
    assert dict(result.counts) == {reason: 1}


def test_a_reply_before_the_first_send_does_not_stop_it(campaign: Campaign) -> None:
    progress = {1: {0: ("sent", datetime(2026, 3, 2, 13, 0))}}
    signals = StopSignals(last_reply_at={1: datetime(2026, 2, 1, 12)})
    later = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    assert len(plan(campaign, [person()], progress, signals, at=later).rows) == 1


def test_an_unsettled_step_holds_the_sequence(campaign: Campaign) -> None:
    for status in ("retry", "unknown", "failed_permanent", "suppressed"):
        progress = {1: {0: (status, None)}}
        later = datetime(2026, 4, 1, 13, tzinfo=UTC)
        assert plan(campaign, [person()], progress, at=later).rows == []


def test_outside_the_local_window_nothing_is_planned(campaign: Campaign) -> None:
    night_in_sao_paulo = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    assert dict(plan(campaign, [person()], at=night_in_sao_paulo).counts) == {"skipped_window": 1}


def test_a_deferral_is_pushed_into_the_next_window_and_gives_up_at_max_attempts(
    campaign: Campaign,
) -> None:
    row = {"id": 5, "attempts": 1, "timezone": "America/Sao_Paulo", "country": "BR"}
    friday_evening = datetime(2026, 3, 6, 20, 28, tzinfo=UTC)  # 17:28 local, window ends 17:30
    deferral = SendResult(5, SendOutcome.RETRY, code=451, detail="451 try later")
    update = outcome_update(row, deferral, friday_evening, campaign, random.Random(1))
    assert update["status"] == "retry"
    assert update["next_attempt_at"] >= datetime(2026, 3, 9, 12, 0)  # Monday 09:00 local
    last = outcome_update({**row, "attempts": campaign.max_attempts}, deferral,
                          friday_evening, campaign, random.Random(1))  # fmt: skip
    assert last["status"] == "failed_permanent"
    assert last["last_detail"].startswith(f"gave up after {campaign.max_attempts} attempts")
    assert failure_reason("fax", 503, "") == "http 503"


def test_a_contact_without_a_profile_segment_takes_its_companys_industry() -> None:
    policy = AudiencePolicy(
        industry_keywords={"logistics": ["transportes"], "finance": ["banco"]},
        industry_by_company={"Acme Holding": "retail"},
        need_tags={},
    )
    contacts = [
        {"contact_id": 1, "company": "Transportes Rápidos", "segment": None},
        {"contact_id": 2, "company": "Banco do Norte", "segment": "logistics"},
        {"contact_id": 3, "company": "ACME holding", "segment": ""},
        {"contact_id": 4, "company": None},
    ]

    segments = {c["contact_id"]: c["segment"] for c in with_segments(contacts, policy)}

    assert segments == {1: "logistics", 2: "logistics", 3: "retail", 4: "(unknown)"}
