"""A month of complaints stepped every 15 minutes, checked against a minute-by-minute oracle.

The scheduler side runs the real pipeline (``evaluate_clocks`` then ``decide_escalations``)
at each ``as_of`` and inserts keys into a set standing in for the unique constraint. The
oracle knows nothing of interval tables: it marks every minute of the month as working or
not from the local wall clock of each owner's zone, walks each complaint's events to mark
the minutes its clocks run, and finds the minute each ladder threshold is reached. Every
escalation must then fire exactly once, at the first step at or after that minute, to the
stand-in the oracle's own (naive) delegation walk names.
"""

from __future__ import annotations

import math
from datetime import timedelta
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from config.sla_policy import SEVERITIES, SlaPolicy, SlaTarget
from tasks.complaints.business_hours import HolidaySource
from tasks.complaints.escalation import decide_escalations
from tasks.complaints.sla_clock import (
    evaluate_clocks,
    evaluate_prepared,
    prepare_batch,
    team_calendars,
)
from tests.month_team import BR_DAYS_OFF, DAYS, START, stand_in
from tests.month_team import MONTH_TEAM as TEAM

STEP = 15  # minutes, as the schedule
MINUTES = DAYS * 24 * 60

POLICY = SlaPolicy(
    targets={
        "critical": SlaTarget(first_response_minutes=60, resolution_minutes=480),
        "high": SlaTarget(first_response_minutes=120, resolution_minutes=960),
        "medium": SlaTarget(first_response_minutes=240, resolution_minutes=1440),
        "low": SlaTarget(first_response_minutes=480, resolution_minutes=2400),
    },
    holiday_calendars=BR_DAYS_OFF,
)
OWNERS = [m.id for m in TEAM.managers]


def make_complaints(n: int, seed: int = 2026) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Histories at distinct whole minutes: responses, pauses, resolutions, reopenings."""
    rng = np.random.default_rng(seed)
    rows, events = [], []
    for cid in range(n):
        owner = OWNERS[rng.integers(len(OWNERS))]
        severity = SEVERITIES[rng.integers(4)]
        rows.append((cid, severity, owner, owner if rng.random() > 0.05 else None))
        t = int(rng.integers(0, MINUTES - 3 * 24 * 60))
        history = [("created", t)]
        script = rng.choice(["silent", "answered", "paused", "resolved", "reopened", "close"])
        gaps = rng.integers(20, 3000, 6)
        if script == "close":  # answered around the warning/breach minute of tight targets
            script, gaps[0] = "answered", rng.integers(40, 130)
        if script in ("answered", "paused", "resolved", "reopened"):
            history.append(("responded", t := t + int(gaps[0])))
        if script == "paused":
            history.append(("waiting_on_client", t := t + int(gaps[1])))
            if rng.random() < 0.7:
                history.append(("resumed", t := t + int(gaps[2])))
        if script in ("resolved", "reopened"):
            history.append(("resolved", t := t + int(gaps[3])))
        if script == "reopened":
            history.append(("reopened", t := t + int(gaps[4])))
            if rng.random() < 0.5:
                history.append(("resolved", t := t + int(gaps[5])))
        events += [(cid, kind, minute) for kind, minute in history]
    # Answered between a crossing and the next run: recorded at that run, but not notified.
    # Tue 27 Oct 12:07 UTC is 09:07 in Sao Paulo; 75% of 60 min is used at 12:52.
    rows.append((n, "critical", "sp1", "sp1"))
    events += [(n, "created", 7927), (n, "responded", 7975)]
    complaints = pd.DataFrame(rows, columns=["complaint_id", "severity", "calendar", "owner_id"])
    # Categoricals, as the flow loads them: the clock maps categories, not every row.
    complaints["severity"] = complaints["severity"].astype("category")
    complaints["calendar"] = complaints["calendar"].astype("category")
    ev = pd.DataFrame(events, columns=["complaint_id", "kind", "minute"])
    ev["kind"] = ev["kind"].astype("category")
    ev["at"] = pd.to_datetime(START) + pd.to_timedelta(ev["minute"], unit="min")
    return complaints, ev


# -- the oracle -------------------------------------------------------------------------------


def business_minutes(manager_id: str) -> np.ndarray:
    """1 where the UTC minute is working time on the manager's local wall clock."""
    m = TEAM.by_id[manager_id]
    hours = TEAM.hours_of(manager_id).minutes_by_weekday()
    adjust = POLICY.holiday_calendars.get(m.holiday_country or "")
    off = HolidaySource(
        m.holiday_country,
        m.holiday_subdivision,
        frozenset(adjust.extra_dates) if adjust else frozenset(),
    ).dates([2026])
    local = pd.date_range(START, periods=MINUTES, freq="min").tz_convert(m.timezone)
    minute_of_day = (local.hour * 60 + local.minute).to_numpy()
    weekday = local.weekday.to_numpy()
    holiday = np.isin(np.array(local.date), np.array(sorted(off)))
    working = np.zeros(MINUTES, dtype=bool)
    for day, spans in enumerate(hours):
        for a, b in spans:
            working |= (weekday == day) & (minute_of_day >= a) & (minute_of_day < b)
    return working & ~holiday


def running_minutes(history: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per minute: is the resolution clock running, is the first-response clock running."""
    resolution = np.zeros(MINUTES, dtype=bool)
    resolved = paused = False
    answered = MINUTES
    marks = [*sorted(history, key=lambda e: e[1]), ("end", MINUTES)]
    for (kind, t), (_, nxt) in pairwise(marks):
        if kind == "created" or kind == "reopened":
            resolved = paused = False
        elif kind == "resolved":
            resolved = True
        elif kind == "waiting_on_client":
            paused = True
        elif kind == "resumed":
            paused = False
        if kind in ("responded", "resolved"):
            answered = min(answered, t)
        resolution[t:nxt] = not (resolved or paused)
    first = resolution.copy()
    first[answered:] = False
    return resolution, first


def oracle(complaints: pd.DataFrame, events: pd.DataFrame) -> dict[str, tuple[int, str, bool]]:
    """Expected escalations: key -> (step at which it fires, recipient, notify)."""
    working = {m: business_minutes(m) for m in OWNERS}
    expected: dict[str, tuple[int, str, bool]] = {}
    by_complaint = events.groupby("complaint_id")
    for row in complaints.to_dict("records"):
        history = list(
            zip(
                by_complaint.get_group(row["complaint_id"]).kind,
                by_complaint.get_group(row["complaint_id"]).minute,
                strict=True,
            )
        )
        running = dict(zip(("resolution", "first_response"), running_minutes(history), strict=True))
        for clock, steps in POLICY.ladder.items():
            used = np.cumsum(running[clock] & working[row["calendar"]])
            target = POLICY.target_for(row["severity"]).minutes(clock)
            for step in steps:
                threshold = math.ceil(step.at_fraction * target)
                reached = np.searchsorted(used, threshold)  # minute whose end reaches it
                if reached >= MINUTES:
                    continue
                fire_step = math.ceil((reached + 1) / STEP)
                if fire_step * STEP >= MINUTES:
                    continue
                when = START + timedelta(minutes=fire_step * STEP)
                owner = row["owner_id"]
                if pd.isna(owner):
                    who = TEAM.head
                else:
                    m = TEAM.by_id[owner]
                    who = {1: owner, 2: m.team_lead or m.deputy or TEAM.head, 3: TEAM.head}[
                        step.level
                    ]
                notify = bool(running[clock][fire_step * STEP])
                key = f"complaint:{row['complaint_id']}:{clock}:l{step.level}:{step.kind}"
                expected[key] = (fire_step, stand_in(who, when), notify)
    return expected


# -- the scheduler ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_month_of_escalations_fires_each_once_on_time_to_the_right_person() -> None:
    complaints, events = make_complaints(160)
    calendars = team_calendars(TEAM, POLICY)
    # Loaded once, clocked at every run: the history is fixed, only as_of moves; each run
    # still sees only the events at or before its as_of.
    prepared = prepare_batch(complaints, events, POLICY, calendars)
    fired: dict[str, tuple[int, str, bool]] = {}
    reruns_checked = 0
    for step in range(1, MINUTES // STEP):
        now = step * STEP
        as_of = START + timedelta(minutes=now)
        # Every complaint at every run: not-yet-created ones have no clock yet, closed ones
        # report their old crossings again, which the unique constraint absorbs.
        clocks = evaluate_prepared(prepared, as_of)
        due = decide_escalations(clocks, complaints.owner_id, POLICY, TEAM, as_of)
        keys = list(due.idempotency_key)
        assert len(set(keys)) == len(keys), f"one run produced a key twice at step {step}"
        for key, recipient, notify in zip(keys, due.recipient_id, due.notify, strict=True):
            fired.setdefault(key, (step, recipient, bool(notify)))  # the unique constraint
        if step % 97 == 0:
            # A rerun at the same as_of, this time from the raw frames, gives the same keys.
            rerun = evaluate_clocks(complaints, events, POLICY, calendars, as_of)
            again = decide_escalations(rerun, complaints.owner_id, POLICY, TEAM, as_of)
            assert list(again.idempotency_key) == keys
            assert list(again.recipient_id) == list(due.recipient_id)
            reruns_checked += 1

    expected = oracle(complaints, events)
    missed = sorted(set(expected) - set(fired))
    spurious = sorted(set(fired) - set(expected))
    wrong = {
        k: (fired[k], expected[k])
        for k in expected.keys() & fired.keys()
        if fired[k] != expected[k]
    }
    assert not missed, f"missed escalations: {missed[:10]}"
    assert not spurious, f"escalations the oracle does not expect: {spurious[:10]}"
    assert not wrong, f"fired at the wrong step or to the wrong person: {list(wrong.items())[:5]}"
    # The month must actually exercise what it claims to.
    kinds = pd.Series([k.split(":", 2)[2] for k in fired]).value_counts()
    assert len(kinds) == 5 and kinds.min() >= 5, kinds
    owner_of = dict(zip(complaints.complaint_id.astype(str), complaints.owner_id, strict=True))
    level_one = {
        (owner_of[k.split(":")[1]], who) for k, (_, who, _) in fired.items() if ":l1:" in k
    }
    assert ("sp1", "sp2") in level_one  # owner away: the deputy
    assert ("sp1", "ny1") in level_one  # owner and deputy away: the deputy's deputy
    assert ("ny1", "hq") in level_one or ("ny2", "hq") in level_one  # a loop: the head
    assert any(not n for _, _, n in fired.values())
    assert reruns_checked > 20
