"""SLA clocks from event histories: pauses, responses, resolutions, reopenings, tiers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from config.policy_loader import PolicyError, load_policy
from config.settings import CONFIG_DIR
from config.sla_policy import SlaPolicy, SlaTarget
from config.team_policy import WorkingHours
from tasks.complaints.business_hours import BusinessCalendar, HolidaySource
from tasks.complaints.sla_clock import (
    ComplaintClock,
    evaluate_clocks,
    evaluate_complaint,
    team_calendars,
)

NINE_TO_FIVE = WorkingHours(**{d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")})
CAL = BusinessCalendar.from_hours("utc", "UTC", NINE_TO_FIVE)
POLICY = SlaPolicy(
    targets={
        s: SlaTarget(first_response_minutes=120, resolution_minutes=960)
        for s in ("low", "medium", "high", "critical")
    },
    tiers={"gold": {"high": SlaTarget(first_response_minutes=30, resolution_minutes=240)}},
)


def t(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in the week of Monday 30 November 2026 (UTC)."""
    return (
        datetime(2026, 11, 30 + day, hour, minute, tzinfo=UTC)
        if day < 1
        else datetime(2026, 12, day, hour, minute, tzinfo=UTC)
    )


def clock(
    history: list[tuple[str, datetime]], as_of: datetime, tier: str | None = None
) -> ComplaintClock:
    return evaluate_complaint(history, "high", POLICY, CAL, as_of, tier=tier)


def test_running_clock_reports_used_time_and_due_times() -> None:
    c = clock([("created", t(1, 10))], as_of=t(1, 11))
    assert c.first_response.used_minutes == 60
    assert c.first_response.state == "ok"
    assert c.first_response.due_at == t(1, 12)
    assert c.resolution.due_at == t(3, 10)  # 16 business hours: 7 today, 8 tomorrow, 1 more
    assert c.is_open


def test_clock_turns_warning_at_75_percent_and_breached_at_the_due_minute() -> None:
    history = [("created", t(1, 10))]
    assert clock(history, as_of=t(1, 11, 29)).first_response.state == "ok"
    assert clock(history, as_of=t(1, 11, 30)).first_response.state == "warning"
    assert clock(history, as_of=t(1, 11, 59)).first_response.state == "warning"
    assert clock(history, as_of=t(1, 12, 0)).first_response.state == "breached"


def test_clock_does_not_run_at_night() -> None:
    c = clock([("created", t(1, 16))], as_of=t(2, 9, 30))
    assert c.first_response.used_minutes == 90
    assert c.first_response.due_at == t(2, 10)


def test_waiting_on_client_pauses_both_clocks_until_resumed() -> None:
    history = [("created", t(1, 10)), ("waiting_on_client", t(1, 10, 30))]
    paused = clock(history, as_of=t(1, 15))
    assert paused.first_response.state == "paused"
    assert paused.first_response.used_minutes == 30
    assert paused.first_response.due_at is None
    resumed = clock([*history, ("resumed", t(1, 14))], as_of=t(1, 15))
    assert resumed.first_response.used_minutes == 90
    assert resumed.first_response.due_at == t(1, 15, 30)  # 3.5 h later than unpaused


def test_first_response_stops_the_response_clock_but_not_resolution() -> None:
    c = clock([("created", t(1, 10)), ("responded", t(1, 11))], as_of=t(1, 15))
    assert c.first_response.state == "met"
    assert c.first_response.used_minutes == 60
    assert not c.first_response.running
    assert c.resolution.used_minutes == 300
    assert c.resolution.running


def test_a_late_response_leaves_the_response_clock_breached() -> None:
    c = clock([("created", t(1, 10)), ("responded", t(1, 13))], as_of=t(1, 15))
    assert c.first_response.state == "breached"
    assert c.first_response.due_at == t(1, 12)


def test_resolution_stops_the_clock_and_reopening_continues_where_it_stopped() -> None:
    history = [("created", t(1, 10)), ("responded", t(1, 10, 5)), ("resolved", t(1, 12))]
    done = clock(history, as_of=t(3, 12))
    assert done.resolution.state == "resolved"
    assert done.resolution.used_minutes == 120
    assert not done.is_open
    reopened = clock([*history, ("reopened", t(3, 10))], as_of=t(3, 12))
    assert reopened.resolution.used_minutes == 240  # the two days resolved do not count
    assert reopened.resolution.state == "ok"
    assert reopened.is_open
    assert reopened.first_response.state == "met"


def test_resuming_a_resolved_complaint_does_not_restart_its_clock() -> None:
    history = [("created", t(1, 10)), ("resolved", t(1, 11)), ("resumed", t(1, 12))]
    c = clock(history, as_of=t(1, 16))
    assert c.resolution.state == "resolved"
    assert c.resolution.used_minutes == 60


def test_events_after_as_of_are_not_yet_known() -> None:
    history = [("created", t(1, 10)), ("responded", t(1, 14))]
    assert clock(history, as_of=t(1, 13)).first_response.state == "breached"
    assert clock(history, as_of=t(1, 13)).first_response.running


def test_client_tier_overrides_the_severity_target() -> None:
    c = clock([("created", t(1, 10))], as_of=t(1, 10, 20), tier="gold")
    assert c.first_response.target_minutes == 30
    assert c.first_response.due_at == t(1, 10, 30)
    assert (
        clock(
            [("created", t(1, 10))], as_of=t(1, 10, 20), tier="silver"
        ).first_response.target_minutes
        == 120
    )


def test_batch_rows_match_one_by_one_evaluation_across_calendars() -> None:
    berlin = BusinessCalendar.from_hours("de", "Europe/Berlin", NINE_TO_FIVE, HolidaySource("DE"))
    calendars = {"utc": CAL, "de": berlin}
    histories: dict[int, list[tuple[str, datetime]]] = {
        1: [("created", t(1, 8))],
        2: [("created", t(1, 9)), ("waiting_on_client", t(1, 9, 40)), ("resumed", t(2, 9))],
        3: [("created", t(1, 15)), ("responded", t(2, 9)), ("resolved", t(2, 10))],
        4: [("created", t(2, 16)), ("resolved", t(2, 16, 30)), ("reopened", t(3, 9))],
    }
    complaints = pd.DataFrame(
        {
            "complaint_id": [1, 2, 3, 4],
            "severity": ["high", "low", "critical", "medium"],
            "tier": [None, "gold", None, None],
            "calendar": ["de", "utc", "de", "utc"],
        }
    )
    events = pd.DataFrame(
        [(cid, kind, at) for cid, h in histories.items() for kind, at in h],
        columns=["complaint_id", "kind", "at"],
    ).sample(frac=1.0, random_state=3)  # input order must not matter
    events["at"] = pd.to_datetime(events["at"], utc=True)
    as_of = t(3, 12)
    batch = evaluate_clocks(complaints, events, POLICY, calendars, as_of).to_frame()
    for i, (cid, severity, tier, calendar) in enumerate(
        zip(
            complaints.complaint_id,
            complaints.severity,
            complaints.tier,
            complaints.calendar,
            strict=True,
        )
    ):
        one = evaluate_complaint(
            histories[int(cid)],
            str(severity),
            POLICY,
            calendars[str(calendar)],
            as_of,
            tier=None if tier is None else str(tier),
        )
        got = batch.iloc[i]
        assert got["resolution_used_min"] == one.resolution.used_minutes
        assert got["first_response_state"] == one.first_response.state
        assert got["resolution_state"] == one.resolution.state


def test_a_complaint_on_berlin_time_is_due_by_berlin_working_hours() -> None:
    berlin = BusinessCalendar.from_hours("de", "Europe/Berlin", NINE_TO_FIVE)
    c = evaluate_complaint([("created", t(1, 15))], "high", POLICY, berlin, t(1, 15, 5))
    assert c.first_response.due_at == t(2, 9)  # 16:00-17:00 Berlin today, 1 h from 08:00 UTC


def test_unknown_event_kinds_and_calendars_are_refused() -> None:
    complaints = pd.DataFrame({"complaint_id": [1], "severity": ["low"], "calendar": ["nowhere"]})
    events = pd.DataFrame({"complaint_id": [1], "kind": ["created"], "at": [t(1, 9)]})
    with pytest.raises(KeyError, match="nowhere"):
        evaluate_clocks(complaints, events, POLICY, {"utc": CAL}, t(1, 10))
    complaints["calendar"] = "utc"
    events["kind"] = "escalated"
    with pytest.raises(ValueError, match="escalated"):
        evaluate_clocks(complaints, events, POLICY, {"utc": CAL}, t(1, 10))


def test_shipped_sla_and_team_policies_load_and_give_every_manager_a_calendar() -> None:
    from config.team_policy import TeamPolicy

    sla = load_policy(CONFIG_DIR / "sla.yaml", SlaPolicy)
    team = load_policy(CONFIG_DIR / "team.yaml", TeamPolicy)
    calendars = team_calendars(team, sla)
    assert set(calendars) == {"default"} | {m.id for m in team.managers}
    assert sla.target_for("critical", "key_account").first_response_minutes == 30


ALL_TARGETS = (
    "targets: {"
    + ", ".join(
        f"{s}: {{first_response_minutes: 5, resolution_minutes: 10}}"
        for s in ("low", "medium", "high", "critical")
    )
    + "}\n"
)


@pytest.mark.parametrize(
    ("yaml_text", "complaint"),
    [
        ("targets: {low: {first_response_minutes: 5, resolution_minutes: 10}}", "missing"),
        (
            "targets: {low: {first_response_minutes: 50, resolution_minutes: 10}}",
            "resolution_minutes must not be shorter",
        ),
        (
            ALL_TARGETS + "ladder: {resolution: [{at_fraction: 1.0, kind: breach, level: 2},"
            " {at_fraction: 0.75, kind: warning, level: 1}]}",
            "strictly increase",
        ),
        (
            ALL_TARGETS + "ladder: {resolution: [{at_fraction: 0.9, kind: breach, level: 2}]}",
            "breach exactly when",
        ),
        (ALL_TARGETS + "holiday_calendars: {XX: {}}", "no holiday calendar"),
    ],
)
def test_invalid_sla_policy_is_reported_with_file_and_reason(
    tmp_path: Path, yaml_text: str, complaint: str
) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text(yaml_text)
    with pytest.raises(PolicyError, match=complaint) as err:
        load_policy(path, SlaPolicy)
    assert str(path) in str(err.value)
