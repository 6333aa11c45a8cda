"""Import validation and each obligation state, on small frames and real calendars."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.accounts_policy import ObligationPolicy
from config.sla_policy import HolidayCalendar, SlaPolicy, SlaTarget
from config.team_policy import TeamPolicy
from tasks.accounts.contracts import (
    ContractIn,
    all_obligations,
    parse_contract_records,
    parse_event_records,
)
from tasks.accounts.obligations import (
    NO_DATE,
    day_number,
    decide_notices,
    evaluate_obligations,
)
from tasks.complaints.sla_clock import team_calendars

TEAM = TeamPolicy.model_validate(
    {
        "head": "boss",
        "managers": [
            {"id": "boss", "name": "Boss", "timezone": "America/Sao_Paulo"},
            {
                "id": "ana",
                "name": "Ana",
                "timezone": "America/Sao_Paulo",
                "holiday_country": "BR",
                "deputy": "bia",
                "absences": [{"start": "2026-12-14", "end": "2026-12-18", "reason": "vacation"}],
            },
            {"id": "bia", "name": "Bia", "timezone": "America/Sao_Paulo", "deputy": "ana"},
        ],
    }
)
SLA = SlaPolicy(
    targets={
        s: SlaTarget(first_response_minutes=60, resolution_minutes=480)
        for s in ("low", "medium", "high", "critical")
    },
    holiday_calendars={"BR": HolidayCalendar(extra_dates=[date(2026, 12, 24)])},
)
CALENDARS = team_calendars(TEAM, SLA)
POLICY = ObligationPolicy(warning_business_days={"default": 3})


def frame(kind: str, due: date | None, **what: object) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "obligation_id": [1],
            "kind": [kind],
            "quantity": [what.get("quantity", np.nan)],
            "due_day": [day_number(due) if due else NO_DATE],
            "calendar": ["ana"],
            "owner_id": ["ana"],
            "stored_state": [what.get("stored_state")],
            "delivered": [what.get("delivered", 0.0)],
            "credited_qty": [what.get("credited_qty", 0.0)],
            "completed": [what.get("completed", False)],
            "sla_missed": [what.get("sla_missed", False)],
            "invoiced": [what.get("invoiced", 0)],
            "credited": [what.get("credited", 0)],
        }
    )


def state(kind: str, due: date | None, when: datetime, **what: object) -> str:
    return str(evaluate_obligations(frame(kind, due, **what), CALENDARS, POLICY, when).state[0])


def local(day: int, hour: int, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=ZoneInfo("America/Sao_Paulo"))


def test_a_delivery_is_on_track_then_due_soon_then_late_on_the_owners_local_days() -> None:
    due = date(2026, 12, 11)  # a Friday
    assert state("delivery", due, local(7, 23), quantity=10.0) == "on_track"
    assert state("delivery", due, local(8, 0), quantity=10.0) == "due_soon"  # Tue: 3 bdays
    assert state("delivery", due, local(11, 23), quantity=10.0) == "due_soon"
    assert state("delivery", due, local(12, 0), quantity=10.0) == "late"


def test_holidays_and_company_days_off_push_the_warning_earlier() -> None:
    # Due Monday 28 Dec: Fri 25 (Christmas) and Thu 24 (company day off) are not business
    # days, so three business days before are Wed 23, Tue 22 and Mon 21.
    due = date(2026, 12, 28)
    assert state("report", due, local(20, 23)) == "on_track"
    assert state("report", due, local(21, 0)) == "due_soon"


def test_deliveries_are_met_by_the_contracted_quantity_and_one_offs_by_completion() -> None:
    due = date(2026, 12, 11)
    late = local(14, 10)
    assert state("delivery", due, late, quantity=10.0, delivered=9.0) == "late"
    assert state("delivery", due, late, quantity=10.0, delivered=10.0) == "met"
    assert state("delivery", due, late, quantity=10.0, completed=True) == "met"
    assert state("renewal", due, late, completed=True) == "met"
    assert state("notice", due, late) == "late"


def test_service_levels_are_missed_by_an_event_and_met_when_the_period_ends_clean() -> None:
    end = date(2026, 12, 31)
    assert state("service_level", end, local(10, 10)) == "on_track"
    assert state("service_level", end, local(10, 10), sla_missed=True) == "missed"
    assert state("service_level", end, local(1, 10, month=1, year=2027)) == "met"
    assert state("payment_terms", None, local(10, 10)) == "on_track"


def test_an_invoice_meets_payment_terms_until_a_credit_note_cancels_it() -> None:
    due = date(2026, 12, 31)
    when = local(10, 10)
    assert state("payment_terms", due, when) == "on_track"
    assert state("payment_terms", due, when, invoiced=1) == "met"
    assert state("payment_terms", due, when, invoiced=1, credited=1) == "on_track"
    assert state("payment_terms", due, when, invoiced=2, credited=1) == "met"
    # An invoice is not a delivery nor a report.
    assert state("delivery", date(2026, 12, 4), when, quantity=5.0, invoiced=1) == "late"
    assert state("report", date(2026, 12, 4), when, invoiced=1) == "late"


def test_goods_credited_back_reopen_a_met_delivery_and_a_money_credit_does_not() -> None:
    due, when = date(2026, 12, 4), local(10, 10)
    assert state("delivery", due, when, quantity=10.0, delivered=10.0) == "met"
    assert state("delivery", due, when, quantity=10.0, delivered=10.0, credited_qty=3.0,
                 credited=1) == "late"  # fmt: skip
    assert state("delivery", due, when, quantity=10.0, completed=True, credited_qty=3.0,
                 credited=1) == "late"  # fmt: skip
    assert (
        state("delivery", due, when, quantity=10.0, delivered=13.0, credited_qty=3.0, credited=1)
        == "met"
    )  # fmt: skip (the replacement was delivered)
    assert state("delivery", due, when, quantity=10.0, delivered=10.0, credited=1) == "met"
    assert state("delivery", due, when, completed=True, credited_qty=1.0, credited=1) == "late"


def test_a_credit_note_on_a_missed_service_level_compensates_the_breach() -> None:
    end = date(2026, 12, 31)
    when = local(10, 10)
    assert state("service_level", end, when, sla_missed=True, credited=1) == "compensated"
    assert state("service_level", end, when, credited=1) == "on_track"  # goodwill, no breach


def test_a_reopened_delivery_is_notified_late_again_under_a_new_key() -> None:
    due, when = date(2026, 12, 4), local(10, 10)
    f = frame("delivery", due, quantity=10.0, delivered=10.0, credited_qty=2.0, credited=1,
              stored_state="met")  # fmt: skip
    states = evaluate_obligations(f, CALENDARS, POLICY, when)
    notices = decide_notices(f, states, TEAM, POLICY, when)
    assert notices["idempotency_key"].tolist() == ["obligation:1:late:2026-12-04:c1"]


def test_notices_go_to_the_deputy_while_the_owner_is_away_and_only_on_a_change() -> None:
    due = date(2026, 12, 18)
    when = local(15, 10)
    f = frame("report", due)
    states = evaluate_obligations(f, CALENDARS, POLICY, when)
    notices = decide_notices(f, states, TEAM, POLICY, when)
    assert notices[["state", "recipient_id", "delegation"]].values.tolist() == [
        ["due_soon", "bia", "deputy"]
    ]
    assert notices["idempotency_key"].tolist() == ["obligation:1:due_soon:2026-12-18"]
    unchanged = frame("report", due, stored_state="due_soon")
    assert decide_notices(unchanged, states, TEAM, POLICY, when).empty


def test_csv_rows_of_one_contract_must_agree_and_errors_name_file_row_and_field() -> None:
    head = {"reference": "CT-1", "company": "A", "owner": "ana", "start_date": "2026-01-01"}
    rows = [
        {**head, "kind": "delivery", "item": "x", "quantity": "2", "due_date": "2026-02-01"},
        {**head, "company": "B", "kind": "report", "due_date": "2026-03-01"},
        {"reference": "CT-2", "company": "C", "start_date": "2026-01-01", "kind": "delivery"},
        {"reference": "bad ref", "company": "D", "start_date": "2026-01-01"},
        {**head, "reference": "CT-3", "colour": "red"},
    ]
    parsed = parse_contract_records("f.csv", rows, nested=False)
    assert parsed.contracts == []
    assert sorted(r.text() for r in parsed.rejected) == [
        "f.csv: row 2: company: 'B' disagrees with 'A' on row 1",
        "f.csv: row 3: (row): a delivery needs item, quantity and due_date",
        "f.csv: row 4: reference: String should match pattern '^CT-[A-Za-z0-9][A-Za-z0-9-]{0,60}$'",
        "f.csv: row 5: colour: unknown column",
    ]


def test_renewal_and_notice_deadlines_become_obligations_of_ours() -> None:
    contract = ContractIn(
        reference="CT-9",
        company="A",
        start_date=date(2026, 1, 1),
        end_date=date(2027, 6, 30),
        renewal_date=date(2027, 1, 31),
        notice_days=30,
    )
    derived = {o.kind: o.due_date for o, is_derived in all_obligations(contract) if is_derived}
    assert derived == {"renewal": date(2027, 1, 31), "notice": date(2027, 1, 1)}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["contract", "kind", "quantity", "at", "item", "obligation"]),
            st.one_of(st.text(max_size=12), st.integers(-5, 5).map(str)),
        ),
        max_size=6,
    )
)
def test_any_event_row_is_accepted_or_rejected_with_a_reason_never_an_exception(
    rows: list[dict[str, str]],
) -> None:
    good, bad = parse_event_records("e.csv", rows)
    assert {n for n, _ in good} | {r.row for r in bad} == set(range(1, len(rows) + 1))
    assert all(r.reason and r.field for r in bad)


@pytest.mark.parametrize("days", [0, 1, 3, 10])
def test_the_warning_never_starts_after_the_due_date(days: int) -> None:
    policy = ObligationPolicy(warning_business_days={"default": days})
    f = pd.concat([frame("report", date(2026, 12, d)) for d in range(1, 32)], ignore_index=True)
    f["obligation_id"] = range(len(f))
    got = evaluate_obligations(f, CALENDARS, policy, local(1, 10))
    assert (got.warn_at < got.late_at).all()
