"""A month of obligations watched every hour, checked against a day-by-day brute-force oracle.

The scheduler side runs the real pure pipeline (``evaluate_obligations`` then
``decide_notices``) at each hourly ``as_of``, keeps the recorded states as the store does
(an obligation is read again only when its next check comes: the next deadline
``next_checks`` gives, or at once when new events arrive) and inserts keys into a set
standing in for the unique constraint. Invoices and credit notes play their part: an
invoice meets payment terms until a credit note cancels it, goods credited back reopen a met
delivery (late again, under a new key), a credit note on a missed service level compensates
it. The oracle knows nothing of
day numbers or binary searches: it takes each ``as_of`` to the owner's local wall clock,
walks back from the due date one calendar day at a time counting working days (weekday with
working hours, not a holiday of the owner's country and region, nor a company day off), and
replays the events up to ``as_of``.
Every notice must fire exactly once, at the first hour the oracle's state says so, to the
stand-in the oracle's own delegation walk names.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import pandas as pd
import pytest

from config.accounts_policy import ObligationPolicy
from config.sla_policy import SlaPolicy, SlaTarget
from tasks.accounts.obligations import (
    NEVER,
    day_number,
    decide_notices,
    evaluate_obligations,
    next_checks,
)
from tasks.complaints.business_hours import epoch
from tasks.complaints.sla_clock import team_calendars
from tests.month_team import BR_DAYS_OFF, DAYS, START, stand_in
from tests.month_team import MONTH_TEAM as TEAM

STEPS = DAYS * 24  # hourly, as the schedule

SLA = SlaPolicy(
    targets={
        s: SlaTarget(first_response_minutes=60, resolution_minutes=480)
        for s in ("low", "medium", "high", "critical")
    },
    holiday_calendars=BR_DAYS_OFF,
)
POLICY = ObligationPolicy(
    warning_business_days={"default": 3, "renewal": 10, "notice": 0},
    notify_states=["due_soon", "late", "missed"],
)
OWNERS = [m.id for m in TEAM.managers]
KINDS = (
    "delivery", "delivery", "report", "price_review", "renewal", "notice", "service_level",
    "payment_terms",
)  # fmt: skip


def make_obligations(n: int, seed: int = 23) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Obligations due around the month, and events (hours after START) that fulfil some."""
    rng = np.random.default_rng(seed)
    rows, events = [], []
    for oid in range(n):
        kind = KINDS[rng.integers(len(KINDS))]
        owner = OWNERS[rng.integers(len(OWNERS))]
        due = (START + timedelta(days=int(rng.integers(-3, DAYS + 20)))).date()
        quantity = float(rng.integers(1, 50)) if kind == "delivery" else np.nan
        rows.append((oid, kind, quantity, due, owner))
        due_hour = int(
            (datetime(due.year, due.month, due.day, tzinfo=UTC) - START) / timedelta(hours=1)
        )
        script = rng.random()
        if kind == "delivery" and script < 0.75:
            first = int(rng.integers(0, STEPS))
            if script < 0.3:  # in two parts
                events.append((oid, "partially_delivered", quantity / 2, first))
                events.append(
                    (oid, "partially_delivered", quantity / 2, first + int(rng.integers(1, 200)))
                )
            else:
                events.append((oid, "delivered", None, first))
            if script >= 0.6:  # some goods come back: credited, so not delivered after all
                back = first + int(rng.integers(1, 300))
                events.append((oid, "credited", max(1.0, quantity // 3), back))
            elif script < 0.1:  # a money credit (no quantity) changes no delivery
                events.append((oid, "credited", None, first + int(rng.integers(1, 300))))
        elif kind in ("report", "price_review", "renewal", "notice") and script < 0.5:
            events.append((oid, "completed", None, int(rng.integers(0, STEPS))))
            if script < 0.1:  # an invoice is not the report
                events.append((oid, "invoiced", None, int(rng.integers(0, STEPS))))
        elif kind == "service_level" and script < 0.3:
            # Missed within the period (a miss after the period closed would come too late).
            last = max(1, min(STEPS, due_hour))
            missed_at = int(rng.integers(0, last))
            events.append((oid, "sla_missed", None, missed_at))
            if script < 0.15:  # a service credit for the breach
                events.append((oid, "credited", None, missed_at + int(rng.integers(1, 300))))
        elif kind == "payment_terms" and script < 0.6:
            invoiced_at = int(rng.integers(0, STEPS))
            events.append((oid, "invoiced", None, invoiced_at))
            if script < 0.25:  # the invoice cancelled by a credit note, then issued again
                cancelled = invoiced_at + int(rng.integers(1, 200))
                events.append((oid, "credited", None, cancelled))
                if script < 0.12:
                    events.append((oid, "invoiced", None, cancelled + int(rng.integers(1, 200))))
    obligations = pd.DataFrame(
        rows, columns=["obligation_id", "kind", "quantity", "due", "owner_id"]
    )
    ev = pd.DataFrame(events, columns=["obligation_id", "kind", "quantity", "hour"])
    return obligations, ev


# -- the oracle -------------------------------------------------------------------------------


@cache
def is_working_day(manager_id: str, day: date) -> bool:
    m = TEAM.by_id[manager_id]
    hours = TEAM.hours_of(manager_id).minutes_by_weekday()
    if not hours[day.weekday()]:
        return False
    off = holidays.country_holidays(m.holiday_country, subdiv=m.holiday_subdivision, years=day.year)
    extra = SLA.holiday_calendars.get(m.holiday_country or "")
    return day not in off and not (extra and day in extra.extra_dates)


def warn_date(manager_id: str, due: date, k: int) -> date:
    day, counted = due, 0
    while counted < k:
        day -= timedelta(days=1)
        counted += is_working_day(manager_id, day)
    return day


def oracle_state(
    row: dict, events: list[tuple[str, float | None, int]], when: datetime
) -> tuple[str, int]:
    """(state, credit notes seen) at ``when``, from the events replayed up to it."""
    today = when.astimezone(ZoneInfo(TEAM.by_id[row["owner_id"]].timezone)).date()
    hour = int((when - START) / timedelta(hours=1))
    seen = [(kind, qty) for kind, qty, at in events if at <= hour]
    kinds = [kind for kind, _ in seen]
    credits = kinds.count("credited")
    credited_back = sum(q for k, q in seen if k == "credited" and q is not None)
    kind = row["kind"]
    if kind == "service_level":
        if "sla_missed" in kinds:
            return ("compensated" if credits else "missed"), credits
        return ("met" if today > row["due"] else "on_track"), credits
    if kind == "payment_terms":
        if kinds.count("invoiced") > credits or today > row["due"]:
            return "met", credits
        return "on_track", credits
    if kind == "delivery":
        delivered = sum(q for k, q in seen if k == "partially_delivered" and q is not None)
        if "delivered" in kinds:
            delivered = max(delivered, row["quantity"])
        if delivered - credited_back >= row["quantity"] - 1e-9:
            return "met", credits
    elif "completed" in kinds:
        return "met", credits
    if today > row["due"]:
        return "late", credits
    if today >= warn_date(row["owner_id"], row["due"], POLICY.warning_days(kind)):
        return "due_soon", credits
    return "on_track", credits


def oracle(obligations: pd.DataFrame, events: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """Expected notices: key -> (hour at which it fires, recipient)."""
    expected: dict[str, tuple[int, str]] = {}
    by_obligation: dict[int, list[tuple[str, float | None, int]]] = {}
    for e in events.itertuples(index=False):
        qty = None if pd.isna(e.quantity) else float(e.quantity)
        by_obligation.setdefault(int(e.obligation_id), []).append((str(e.kind), qty, int(e.hour)))
    for row in obligations.to_dict("records"):
        mine = by_obligation.get(row["obligation_id"], [])
        for hour in range(STEPS):
            when = START + timedelta(hours=hour)
            state, credits = oracle_state(row, mine, when)
            if state in POLICY.notify_states:
                key = f"obligation:{row['obligation_id']}:{state}:{row['due']}"
                key += f":c{credits}" if credits else ""
                expected.setdefault(key, (hour, stand_in(row["owner_id"], when)))
    return expected


# -- the scheduler ---------------------------------------------------------------------------


def run_schedule(obligations: pd.DataFrame, events: pd.DataFrame) -> dict[str, tuple[int, str]]:
    calendars = team_calendars(TEAM, SLA)
    stored = pd.Series([None] * len(obligations), index=obligations["obligation_id"], dtype=object)
    next_check = np.full(len(obligations), NEVER, dtype=np.int64)
    fired: dict[str, tuple[int, str]] = {}
    base = pd.DataFrame(
        {
            "obligation_id": obligations["obligation_id"].to_numpy(dtype=np.int64),
            "kind": obligations["kind"].to_numpy(dtype=object),
            "quantity": obligations["quantity"].to_numpy(dtype=np.float64),
            "due_day": [day_number(d) for d in obligations["due"]],
            "calendar": obligations["owner_id"].to_numpy(dtype=object),
            "owner_id": obligations["owner_id"].to_numpy(dtype=object),
        }
    )
    for hour in range(STEPS):
        when = START + timedelta(hours=hour)
        seen = events[events["hour"] <= hour]
        delivered = (
            seen[seen["kind"].isin(["delivered", "partially_delivered"])]
            .groupby("obligation_id")["quantity"]
            .sum()
        )
        completed = set(seen.loc[seen["kind"] == "completed", "obligation_id"]) | set(
            seen.loc[(seen["kind"] == "delivered") & seen["quantity"].isna(), "obligation_id"]
        )
        missed = set(seen.loc[seen["kind"] == "sla_missed", "obligation_id"])
        credits = seen[seen["kind"] == "credited"].groupby("obligation_id")
        invoices = seen[seen["kind"] == "invoiced"].groupby("obligation_id").size()
        news = set(events.loc[events["hour"] == hour, "obligation_id"])  # stored since last run
        live = (
            stored.isna().to_numpy() | (next_check <= epoch(when)) | stored.index.isin(list(news))
        )
        frame = base[live].reset_index(drop=True)
        ids = frame["obligation_id"]
        frame["delivered"] = ids.map(delivered).fillna(0.0).to_numpy(dtype=np.float64)
        frame["credited_qty"] = ids.map(credits["quantity"].sum()).fillna(0.0).to_numpy(float)
        frame["completed"] = ids.isin(completed).to_numpy()
        frame["sla_missed"] = ids.isin(missed).to_numpy()
        frame["invoiced"] = ids.map(invoices).fillna(0).to_numpy(dtype=np.int64)
        frame["credited"] = ids.map(credits.size()).fillna(0).to_numpy(dtype=np.int64)
        frame["recheck"] = True
        frame["stored_state"] = stored.to_numpy()[live]
        states = evaluate_obligations(frame, calendars, POLICY, when)
        notices = decide_notices(frame, states, TEAM, POLICY, when)
        for key, recipient in zip(notices["idempotency_key"], notices["recipient_id"], strict=True):
            if key not in fired:  # the unique constraint
                fired[key] = (hour, recipient)
        stored.loc[states.obligation_id] = states.state
        next_check[live] = next_checks(states, when)
    return fired


@pytest.fixture(scope="module")
def month() -> tuple[pd.DataFrame, dict[str, tuple[int, str]]]:
    obligations, events = make_obligations(240)
    return obligations, oracle(obligations, events)


def test_a_month_of_hourly_watches_notifies_each_state_once_when_the_oracle_says(
    month: tuple[pd.DataFrame, dict[str, tuple[int, str]]],
) -> None:
    obligations, expected = month
    fired = run_schedule(obligations, make_obligations(240)[1])
    assert len(expected) > 150  # the month exercises every notified state
    assert {k.split(":")[2] for k in expected} == {"due_soon", "late", "missed"}
    assert sum(k.endswith(":c1") and ":late:" in k for k in expected) >= 3  # reopened
    assert fired == expected


def test_the_simulation_compensates_breaches_and_settles_payment_terms_by_invoice(
    month: tuple[pd.DataFrame, dict[str, tuple[int, str]]],
) -> None:
    obligations, _ = month
    _, events = make_obligations(240)
    last = START + timedelta(hours=STEPS - 1)
    by_obligation: dict[int, list[tuple[str, float | None, int]]] = {}
    for e in events.itertuples(index=False):
        qty = None if pd.isna(e.quantity) else float(e.quantity)
        by_obligation.setdefault(int(e.obligation_id), []).append((str(e.kind), qty, int(e.hour)))
    final = {
        int(r["obligation_id"]): oracle_state(r, by_obligation.get(r["obligation_id"], []), last)
        for r in obligations.to_dict("records")
    }
    kinds = obligations.set_index("obligation_id")["kind"]
    assert sum(s == "compensated" for s, _ in final.values()) >= 3
    terms_met_by_invoice = [
        o for o, (s, _) in final.items()
        if kinds[o] == "payment_terms" and s == "met"
        and any(k == "invoiced" for k, _, _ in by_obligation.get(o, []))
    ]  # fmt: skip
    assert len(terms_met_by_invoice) >= 3


def test_the_simulation_crosses_absences_so_deputies_receive_notices(
    month: tuple[pd.DataFrame, dict[str, tuple[int, str]]],
) -> None:
    obligations, expected = month
    owners = obligations.set_index("obligation_id")["owner_id"]
    delegated = [k for k, (_, who) in expected.items() if who != owners[int(k.split(":")[1])]]
    assert len(delegated) >= 5
