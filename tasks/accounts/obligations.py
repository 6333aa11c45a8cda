"""Where each obligation stands at ``as_of``: on track, due soon, late, met or missed.

Dates are judged on the owner's calendar (``tasks/complaints/business_hours``: zone, working
days, holidays): an obligation due on a date is late from the owner's local midnight that
ends that date, and due soon from the local midnight that starts the business day
``warning_days`` business days before it. Both instants are computed once per distinct
(calendar, due date, warning) with a binary search over the calendar's business days, so a
million obligations cost a few array operations, not a million calendar walks.

Who hears about it is decided as for complaints (``resolve_delegate``: the owner, or the
first present deputy on their chain, or the head). Each notice's key names the obligation,
the state and the due date and nothing about the run, so a rerun (same or later ``as_of``)
produces the same keys and the unique constraint makes notification happen once per state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pandas as pd

from config.accounts_policy import ObligationPolicy
from config.team_policy import TeamPolicy
from tasks.complaints.business_hours import BusinessCalendar, HolidaySource, epoch
from tasks.complaints.escalation import delegations

NO_DATE = np.iinfo(np.int64).min  # a due day that is not set
NEVER = np.iinfo(np.int64).max
# Settled unless a new event says otherwise (a credit can reopen a delivery or compensate
# a missed service level): the watch reads these only when their events changed.
FINAL_STATES = ("met", "missed", "compensated")
# Which kinds are fulfilled by a one-off "completed" or "delivered" event.
_ONE_OFF = ("report", "price_review", "renewal", "notice")


def day_number(value: date) -> int:
    """Days since 1970-01-01 (numpy's ``datetime64[D]`` as an integer)."""
    return int(np.datetime64(value, "D").astype(np.int64))


def business_days(
    calendar: BusinessCalendar, first_year: int, last_year: int
) -> npt.NDArray[np.int64]:
    """Day numbers of the calendar's working days (a weekday with spans, not a holiday)."""
    off = {day_number(d) for d in calendar.holidays.dates(range(first_year, last_year + 1))}
    days = np.arange(
        day_number(date(first_year, 1, 1)), day_number(date(last_year + 1, 1, 1)), dtype=np.int64
    )
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    working = np.array([bool(spans) for spans in calendar.weekly], dtype=bool)[weekday]
    if off:
        working &= ~np.isin(days, np.fromiter(off, dtype=np.int64))
    return days[working]


def local_midnights(timezone: str, days: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Epoch seconds of the local midnight that starts each day in ``timezone``."""
    naive = pd.DatetimeIndex(days.astype("datetime64[D]").astype("datetime64[ns]"))
    local = naive.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")
    return np.asarray(local.asi8 // 1_000_000_000, dtype=np.int64)


@lru_cache(maxsize=256)
def _business_days_of(
    weekly: tuple[tuple[tuple[int, int], ...], ...], holidays: HolidaySource, first: int, last: int
) -> npt.NDArray[np.int64]:
    # Keyed on what decides business days (calendars themselves are mutable, unhashable).
    return business_days(BusinessCalendar("cache", "UTC", weekly, holidays), first, last)


def _business_days_cached(cal: BusinessCalendar, first: int, last: int) -> npt.NDArray[np.int64]:
    return _business_days_of(cal.weekly, cal.holidays, first, last)


def _years(days: npt.NDArray[np.int64]) -> tuple[int, int]:
    lo = np.datetime64(int(days.min()), "D").astype(object).year
    hi = np.datetime64(int(days.max()), "D").astype(object).year
    return int(lo) - 1, int(hi)  # a spare year before: warnings reach back across New Year


def deadline_instants(
    due_day: npt.NDArray[np.int64],
    warning: npt.NDArray[np.int64],
    calendar_code: npt.NDArray[np.intp],
    calendars: Sequence[BusinessCalendar],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(due soon from, late from) in epoch seconds per obligation; NEVER where undated."""
    warn_at = np.full(due_day.size, NEVER, dtype=np.int64)
    late_at = np.full(due_day.size, NEVER, dtype=np.int64)
    dated = due_day != NO_DATE
    for code, cal in enumerate(calendars):
        rows = np.flatnonzero(dated & (calendar_code == code))
        if not rows.size:
            continue
        # Distinct (due day, warning) pairs: a few thousand, however many obligations.
        pairs = np.stack([due_day[rows], warning[rows]], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        days, k = uniq[:, 0], uniq[:, 1]
        first, last = _years(days)
        bdays = _business_days_cached(cal, first, last)
        idx = np.searchsorted(bdays, days, side="left") - k
        warn_day = np.where(idx >= 0, bdays[np.clip(idx, 0, bdays.size - 1)], days)
        warn_day = np.minimum(warn_day, days)
        warn_at[rows] = local_midnights(cal.timezone, warn_day)[inverse]
        late_at[rows] = local_midnights(cal.timezone, days + 1)[inverse]
    return warn_at, late_at


@dataclass(frozen=True)
class ObligationStates:
    obligation_id: npt.NDArray[np.int64]
    state: npt.NDArray[np.object_]
    warn_at: npt.NDArray[np.int64]
    late_at: npt.NDArray[np.int64]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "obligation_id": self.obligation_id,
                "state": self.state,
                "warn_at": self.warn_at,
                "late_at": self.late_at,
            }
        )


def evaluate_obligations(
    obligations: pd.DataFrame,
    calendars: Mapping[str, BusinessCalendar],
    policy: ObligationPolicy,
    as_of: datetime,
    default_calendar: str = "default",
) -> ObligationStates:
    """Each obligation's state at ``as_of``.

    ``obligations`` columns: ``obligation_id``, ``kind``, ``quantity`` (NaN when none),
    ``due_day`` (``day_number``, ``NO_DATE`` when undated), ``calendar`` (the owner's id),
    and what the events up to ``as_of`` say: ``delivered`` (sum of delivered quantities),
    ``credited_qty`` (quantities credited back), ``completed`` (a delivery without a
    quantity, or a ``completed`` event), ``sla_missed``, ``invoiced`` and ``credited`` (how
    many invoices and credit notes).

    Rules: a service level is missed once an ``sla_missed`` event says so, compensated
    once a credit note was issued on it too, and met when its period ends without one; a
    delivery is met when the delivered quantity, less what was credited back, reaches the
    contracted one (goods credited back count as not delivered, so a credit can reopen a
    met delivery); reports, price reviews, renewals and notices are met by ``completed``
    (or ``delivered``); payment terms are met by an invoice not cancelled by a credit note,
    and otherwise watched only through their due date, if any. Anything not met is late
    from the end of its due date and due soon from its warning day.
    """
    now = epoch(as_of)
    n = len(obligations)
    names = list(calendars)
    code_of = {name: i for i, name in enumerate(names)}
    fallback = code_of[default_calendar]
    calendar_code: npt.NDArray[np.intp] = np.asarray(
        obligations["calendar"].map(code_of).fillna(fallback).to_numpy(dtype=np.intp)
        if n
        else np.empty(0, dtype=np.intp),
        dtype=np.intp,
    )
    kind = obligations["kind"].to_numpy(dtype=object)
    # One dictionary lookup per row (a Python call per row cost a fifth of the pure part).
    days_of = {k: policy.warning_days(str(k)) for k in pd.unique(kind)}
    warning = pd.Series(kind, dtype=object).map(days_of).to_numpy(dtype=np.int64)
    due_day = obligations["due_day"].to_numpy(dtype=np.int64)
    warn_at, late_at = deadline_instants(
        due_day, warning, calendar_code, [calendars[c] for c in names]
    )

    quantity = obligations["quantity"].to_numpy(dtype=np.float64)
    delivered = obligations["delivered"].to_numpy(dtype=np.float64)
    credited_qty = obligations["credited_qty"].to_numpy(dtype=np.float64)
    completed = obligations["completed"].to_numpy(dtype=bool)
    missed = obligations["sla_missed"].to_numpy(dtype=bool)
    invoiced = obligations["invoiced"].to_numpy(dtype=np.int64)
    credited = obligations["credited"].to_numpy(dtype=np.int64)
    is_sla = kind == "service_level"
    is_delivery = kind == "delivery"
    is_terms = kind == "payment_terms"
    # A delivery "completed" without a quantity supplied all of it; credits come off that.
    supplied = np.where(completed, np.fmax(quantity, delivered), delivered) - credited_qty
    delivery_met = np.where(
        np.isnan(quantity), completed & (credited_qty <= 0), supplied >= quantity - 1e-9
    )
    met = np.where(
        is_delivery,
        delivery_met,
        (completed & ~is_sla & ~is_terms) | (is_terms & (invoiced > credited)),
    )
    period_over = now >= late_at
    state = np.full(n, "on_track", dtype=object)
    state[now >= warn_at] = "due_soon"
    state[period_over] = "late"
    # Service levels and payment terms are standing commitments: nothing to be late with.
    standing = is_sla | is_terms
    state[standing] = "on_track"
    state[standing & period_over] = "met"
    state[met] = "met"
    state[is_sla & missed] = "missed"
    state[is_sla & missed & (credited > 0)] = "compensated"
    return ObligationStates(
        obligation_id=obligations["obligation_id"].to_numpy(dtype=np.int64),
        state=state,
        warn_at=warn_at,
        late_at=late_at,
    )


def next_checks(states: ObligationStates, as_of: datetime) -> npt.NDArray[np.int64]:
    """When each state can next change with no new event (epoch seconds; ``NEVER`` when
    only an event can change it): the first of its due-soon and late instants still ahead.
    A settled state waits for events; so does a late one."""
    now = epoch(as_of)
    ahead = np.minimum(
        np.where(states.warn_at > now, states.warn_at, NEVER),
        np.where(states.late_at > now, states.late_at, NEVER),
    )
    ahead[np.isin(states.state, list(FINAL_STATES))] = NEVER
    return ahead


NOTICE_COLUMNS = [
    "idempotency_key",
    "obligation_id",
    "state",
    "due_date",
    "owner_id",
    "recipient_id",
    "delegation",
    "as_of",
]


def notice_keys(
    obligation_id: npt.NDArray[np.int64],
    state: npt.NDArray[np.object_],
    due_day: npt.NDArray[np.int64],
    credits: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.object_]:
    """``obligation:<id>:<state>:<due date>`` built column-wise, with ``:c<n>`` after ``n``
    credit notes: a delivery a credit reopened is late (or due soon) anew, and says so."""
    due_text = pd.Series(due_day).map(
        lambda d: "" if d == NO_DATE else str(np.datetime64(int(d), "D"))
    )
    keys = (
        "obligation:"
        + pd.Series(obligation_id).astype(str)
        + ":"
        + pd.Series(state, dtype=object).astype(str)
        + ":"
        + due_text
    )
    if credits is not None:
        n = pd.Series(credits)
        keys = keys.where(n <= 0, keys + ":c" + n.astype(str))
    return keys.to_numpy(dtype=object)


def decide_notices(
    obligations: pd.DataFrame,
    states: ObligationStates,
    team: TeamPolicy,
    policy: ObligationPolicy,
    as_of: datetime,
) -> pd.DataFrame:
    """The notices due at ``as_of`` for obligations whose state changed (see NOTICE_COLUMNS).

    ``obligations``: ``obligation_id``, ``owner_id``, ``due_day`` and ``stored_state`` (what
    the last watch recorded, None at first), aligned with ``states``; optionally ``recheck``
    (judged again on news or a deadline: a state it is already in may need a notice under
    a new key) and ``credited`` (credit notes, see ``notice_keys``). Only a change or a
    recheck can need a notice; the caller still drops keys already stored (a state can come
    back after an edited due date moved it away, or a partial delivery changed nothing).
    """
    changed = states.state != obligations["stored_state"].to_numpy(dtype=object)
    if "recheck" in obligations:
        changed |= obligations["recheck"].to_numpy(dtype=bool)
    wanted = changed & np.isin(states.state, list(policy.notify_states))
    idx = np.flatnonzero(wanted)
    if not idx.size:
        return pd.DataFrame(columns=NOTICE_COLUMNS)
    owners = obligations["owner_id"].to_numpy(dtype=object)[idx]
    table = delegations(team, as_of)
    head = table[team.head]
    known_owner = np.array([o in table for o in owners], dtype=bool)
    recipient = np.array(
        [
            table[o].assignee_id if k else head.assignee_id
            for o, k in zip(owners, known_owner, strict=True)
        ],
        dtype=object,
    )
    reason = np.array(
        [
            table[o].reason if k else "unknown_owner"
            for o, k in zip(owners, known_owner, strict=True)
        ],
        dtype=object,
    )
    due_day = obligations["due_day"].to_numpy(dtype=np.int64)[idx]
    credits = (
        obligations["credited"].to_numpy(dtype=np.int64)
        if "credited" in obligations
        else np.zeros(len(obligations), dtype=np.int64)
    )
    due_dates = [
        None if d == NO_DATE else np.datetime64(int(d), "D").astype(object) for d in due_day
    ]
    return pd.DataFrame(
        {
            "idempotency_key": notice_keys(
                states.obligation_id[idx], states.state[idx], due_day, credits[idx]
            ),
            "obligation_id": states.obligation_id[idx],
            "state": states.state[idx],
            "due_date": due_dates,
            "owner_id": owners,
            "recipient_id": recipient,
            "delegation": reason,
            "as_of": pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None),
        }
    )[NOTICE_COLUMNS]


def due_day_of(value: object) -> int:
    """A stored due date (date, datetime, ISO text or None) as a day number."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return int(NO_DATE)
    if isinstance(value, datetime):
        return day_number(value.date())
    if isinstance(value, date):
        return day_number(value)
    return day_number(date.fromisoformat(str(value)[:10]))


def add_business_days(calendar: BusinessCalendar, start: date, days: int) -> date:
    """The business day ``days`` business days after ``start`` (``start`` itself when 0 and
    a business day; else the next one)."""
    first, last = start.year - 1, start.year + 2
    bdays = _business_days_cached(calendar, first, last)
    idx = int(np.searchsorted(bdays, day_number(start), side="left")) + days
    found: date = np.datetime64(int(bdays[min(idx, bdays.size - 1)]), "D").astype(object)
    return found if idx < bdays.size else start + timedelta(days=days * 7 // 5 + 1)
