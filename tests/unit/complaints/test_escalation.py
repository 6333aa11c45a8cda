"""The escalation ladder, idempotency keys, absence delegation, hand-overs and ownership."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from config.policy_loader import PolicyError, load_policy
from config.sla_policy import CalendarSpec, SlaPolicy, SlaTarget
from config.team_policy import TeamPolicy
from tasks.complaints.escalation import (
    assign_owners,
    decide_escalations,
    escalation_message,
    level_recipients,
    plan_handovers,
    resolve_delegate,
)
from tasks.complaints.sla_clock import evaluate_clocks, team_calendars

TEAM_YAML = {
    "head": "boss",
    "managers": [
        {"id": "boss", "name": "Head", "timezone": "UTC", "takes_new_accounts": False},
        {
            "id": "ana",
            "name": "Ana",
            "timezone": "UTC",
            "deputy": "bia",
            "team_lead": "lead",
            "territories": ["BR-SP"],
            "accounts": ["ACME"],
            "absences": [{"start": "2026-12-07", "end": "2026-12-11", "reason": "vacation"}],
        },
        {
            "id": "bia",
            "name": "Bia",
            "timezone": "UTC",
            "deputy": "caio",
            "absences": [{"start": "2026-12-09", "end": "2026-12-10", "reason": "sick"}],
        },
        {
            "id": "caio",
            "name": "Caio",
            "timezone": "UTC",
            "deputy": "ana",
            "absences": [{"start": "2026-12-10", "end": "2026-12-10", "reason": "training"}],
        },
        {"id": "lead", "name": "Lead", "timezone": "Asia/Tokyo", "deputy": "boss"},
    ],
}
POLICY = SlaPolicy(
    targets={
        s: SlaTarget(first_response_minutes=60, resolution_minutes=480)
        for s in ("low", "medium", "high", "critical")
    },
    default_calendar=CalendarSpec(timezone="UTC"),
)


@pytest.fixture
def team(tmp_path: Path) -> TeamPolicy:
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(TEAM_YAML))
    return load_policy(path, TeamPolicy)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def escalations(
    team: TeamPolicy,
    history: list[tuple[str, datetime]],
    as_of: datetime,
    owner: str | None = "ana",
) -> pd.DataFrame:
    complaints = pd.DataFrame({"complaint_id": [42], "severity": ["high"], "calendar": ["default"]})
    events = pd.DataFrame(
        {
            "complaint_id": 42,
            "kind": [k for k, _ in history],
            "at": pd.to_datetime([t for _, t in history], utc=True),
        }
    )
    clocks = evaluate_clocks(complaints, events, POLICY, team_calendars(team, POLICY), as_of)
    return decide_escalations(clocks, pd.Series([owner]), POLICY, team, as_of).to_frame()


def test_each_ladder_step_comes_due_in_order_with_its_own_recipient(team: TeamPolicy) -> None:
    created = [("created", at(1, 9))]  # Tuesday; 60 min to respond, 480 to resolve
    assert escalations(team, created, at(1, 9, 44)).empty
    warn = escalations(team, created, at(1, 9, 45))
    assert list(zip(warn.clock, warn.level, warn.kind, warn.recipient_id, strict=True)) == [
        ("first_response", 1, "warning", "ana")
    ]
    late = escalations(team, created, at(2, 10))  # 10 business hours in: 1.5 x 8 h not yet
    assert set(zip(late.clock, late.level, late.kind, late.recipient_id, strict=True)) == {
        ("first_response", 1, "warning", "ana"),
        ("first_response", 2, "breach", "lead"),
        ("resolution", 1, "warning", "ana"),
        ("resolution", 2, "breach", "lead"),
    }
    later = escalations(team, created, at(3, 12))
    assert ("resolution", 3, "breach", "boss") in set(
        zip(later.clock, later.level, later.kind, later.recipient_id, strict=True)
    )


def test_reruns_yield_the_same_keys_and_later_runs_only_add_new_ones(team: TeamPolicy) -> None:
    created = [("created", at(1, 9))]
    first = escalations(team, created, at(2, 10))
    again = escalations(team, created, at(2, 10))
    later = escalations(team, created, at(3, 12))
    assert list(first.idempotency_key) == list(again.idempotency_key)
    assert set(first.idempotency_key) < set(later.idempotency_key)
    assert later.idempotency_key.is_unique
    assert "complaint:42:first_response:l2:breach" in set(first.idempotency_key)


def test_crossing_recorded_but_not_notified_once_the_client_was_answered(team: TeamPolicy) -> None:
    history = [("created", at(1, 9)), ("responded", at(1, 9, 50))]
    got = escalations(team, history, at(1, 10))
    assert list(got.kind) == ["warning"]
    assert not got.notify.iloc[0]
    assert escalations(team, [("created", at(1, 9))], at(1, 10)).notify.all()


def test_a_paused_complaint_does_not_escalate_while_waiting_on_the_client(team: TeamPolicy) -> None:
    history = [("created", at(1, 9)), ("waiting_on_client", at(1, 9, 30))]
    assert escalations(team, history, at(4, 16)).empty


def test_absent_owner_hands_level_one_to_the_deputy(team: TeamPolicy) -> None:
    assert level_recipients(team, "ana", at(8, 10)) == {1: "bia", 2: "lead", 3: "boss"}
    assert level_recipients(team, "ana", at(4, 10)) == {1: "ana", 2: "lead", 3: "boss"}


def test_absent_deputy_passes_on_to_the_deputys_deputy(team: TeamPolicy) -> None:
    d = resolve_delegate(team, "ana", at(9, 10))
    assert (d.assignee_id, d.chain, d.reason) == ("caio", ("ana", "bia", "caio"), "deputy")


def test_a_deputy_loop_with_everyone_away_falls_back_to_the_head(team: TeamPolicy) -> None:
    d = resolve_delegate(team, "ana", at(10, 10))  # ana, bia and caio all away: ana→bia→caio→ana
    assert d.assignee_id == "boss"
    assert d.reason == "deputy_cycle"
    assert d.chain == ("ana", "bia", "caio", "boss")


def test_absence_is_judged_on_the_managers_own_calendar_day() -> None:
    team = TeamPolicy.model_validate(
        {
            "head": "h",
            "managers": [
                {"id": "h", "name": "H"},
                {
                    "id": "jp",
                    "name": "JP",
                    "timezone": "Asia/Tokyo",
                    "deputy": "h",
                    "absences": [{"start": "2026-12-08", "end": "2026-12-08", "reason": "dentist"}],
                },
            ],
        }
    )
    assert resolve_delegate(team, "jp", at(7, 16)).assignee_id == "h"  # 01:00 on the 8th in Tokyo
    assert resolve_delegate(team, "jp", at(8, 16)).assignee_id == "jp"  # already the 9th there


def test_unowned_complaints_escalate_to_the_head(team: TeamPolicy) -> None:
    got = escalations(team, [("created", at(1, 9))], at(1, 9, 50), owner=None)
    assert list(got.recipient_id) == ["boss"]


def test_handovers_follow_absences_and_return_ownership(team: TeamPolicy) -> None:
    rows = pd.DataFrame(
        {"complaint_id": [1, 2], "owner_id": ["ana", "lead"], "assignee_id": ["ana", "lead"]}
    )
    away = plan_handovers(rows, team, at(8, 10))
    assert away[["complaint_id", "from_id", "to_id", "reason"]].values.tolist() == [
        [1, "ana", "bia", "owner_absent"]
    ]
    rows.loc[0, "assignee_id"] = "bia"
    assert plan_handovers(rows, team, at(8, 11)).empty  # recorded once, not every run
    moved_on = plan_handovers(rows, team, at(9, 10))
    assert moved_on[["from_id", "to_id", "reason"]].values.tolist() == [
        ["bia", "caio", "delegate_absent"]
    ]
    rows.loc[0, "assignee_id"] = "caio"
    back = plan_handovers(rows, team, at(14, 9))
    assert back[["from_id", "to_id", "reason"]].values.tolist() == [
        ["caio", "ana", "owner_returned"]
    ]


def test_new_accounts_go_by_account_then_territory_then_round_robin_of_present_managers(
    team: TeamPolicy,
) -> None:
    accounts = pd.DataFrame(
        {
            "account_id": ["ACME", "x1", "x2", "x3", "x4"],
            "territory": ["DE", "BR-SP", None, "FR", "US"],
        }
    )
    got, cursor = assign_owners(accounts, team, at(8, 10))  # ana away: not in the rotation
    assert got.values.tolist() == [
        ["ACME", "ana", "account"],
        ["x1", "ana", "territory"],
        ["x2", "bia", "round_robin"],
        ["x3", "caio", "round_robin"],
        ["x4", "lead", "round_robin"],
    ]
    assert cursor == 3
    more, _ = assign_owners(pd.DataFrame({"account_id": ["x5"]}), team, at(8, 10), cursor)
    assert more.owner_id.tolist() == ["bia"]


def test_webhook_message_names_the_step_and_recipient(team: TeamPolicy) -> None:
    first = escalations(team, [("created", at(1, 9))], at(1, 9, 50)).iloc[0]
    row = {str(k): v for k, v in first.items()}
    message = escalation_message(row, team)
    assert message["text"] == (
        "Complaint 42: first response SLA warning (level 1, 75% of the time used) for Ana."
    )


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda t: t["managers"][1].update(deputy="ana"), "own deputy"),
        (lambda t: t["managers"][1].update(deputy="zed"), "deputy 'zed' is not a known manager"),
        (lambda t: t.update(head="zed"), "head 'zed'"),
        (lambda t: t["managers"][1].update(timezone="Mars/Olympus"), "unknown time zone"),
        (lambda t: t["managers"][1].update(working_hours={"mon": ["18:00-09:00"]}), "end after"),
        (
            lambda t: t["managers"][1].update(
                working_hours={"mon": ["09:00-13:00", "12:00-14:00"]}
            ),
            "overlap",
        ),
        (lambda t: t["managers"][1].update(working_hours={}), "at least one working span"),
        (
            lambda t: t["managers"][2].update(
                absences=[{"start": "2026-12-09", "end": "2026-12-01", "reason": "x"}]
            ),
            "before it starts",
        ),
        (
            lambda t: t["managers"][2].update(
                absences=[{"start": "2026-12-09", "end": "2026-12-10"}]
            ),
            "reason",
        ),
        (lambda t: t["managers"][2].update(territories=["BR-SP"]), "claimed by both"),
        (
            lambda t: t["managers"][2].update(holiday_country="BR", holiday_subdivision="XX"),
            "no holiday subdivision 'XX'",
        ),
        (lambda t: t["managers"].append({"id": "ana", "name": "Ana 2"}), "unique"),
    ],
)
def test_invalid_team_policy_is_refused_with_the_reason(
    tmp_path: Path,
    change: Callable[[dict[str, Any]], object],
    complaint: str,
) -> None:
    data = yaml.safe_load(yaml.safe_dump(TEAM_YAML))
    change(data)
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match=complaint):
        load_policy(path, TeamPolicy)
