"""Business-time arithmetic against hand-worked cases and a minute-by-minute oracle."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from config.team_policy import DEFAULT_HOURS, WorkingHours
from tasks.complaints.business_hours import (
    BusinessCalendar,
    CalendarStack,
    HolidaySource,
    add_business_minutes,
    business_minutes_between,
)

SP = ZoneInfo("America/Sao_Paulo")
BERLIN = ZoneInfo("Europe/Berlin")
LUNCH_HOURS = WorkingHours(
    **{d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
)


def sp_calendar(**holiday_args: object) -> BusinessCalendar:
    return BusinessCalendar.from_hours(
        "sp",
        "America/Sao_Paulo",
        LUNCH_HOURS,
        HolidaySource("BR", "SP", **holiday_args),  # type: ignore[arg-type]
    )


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def test_friday_afternoon_plus_two_hours_lands_on_monday_morning() -> None:
    cal = sp_calendar()
    due = add_business_minutes(cal, local(SP, 2026, 12, 4, 17, 0), 120)  # a Friday
    assert due.astimezone(SP) == local(SP, 2026, 12, 7, 10, 0)


def test_lunch_break_does_not_count() -> None:
    cal = sp_calendar()
    assert (
        business_minutes_between(cal, local(SP, 2026, 12, 2, 11, 0), local(SP, 2026, 12, 2, 14, 0))
        == 120
    )


def test_public_holiday_is_skipped() -> None:
    # 20 November 2026 (Black Awareness Day) is a Friday and a national holiday in Brazil.
    cal = sp_calendar()
    due = add_business_minutes(cal, local(SP, 2026, 11, 19, 17, 0), 120)
    assert due.astimezone(SP) == local(SP, 2026, 11, 23, 10, 0)


def test_company_closing_days_and_worked_holidays_adjust_the_country_calendar() -> None:
    closed = sp_calendar(extra_dates=frozenset({date(2026, 12, 24)}))
    due = add_business_minutes(closed, local(SP, 2026, 12, 23, 17, 0), 120)
    assert due.astimezone(SP) == local(SP, 2026, 12, 28, 10, 0)  # 24th closed, 25th Christmas
    worked = sp_calendar(removed_dates=frozenset({date(2026, 11, 20)}))
    due = add_business_minutes(worked, local(SP, 2026, 11, 19, 17, 0), 120)
    assert due.astimezone(SP) == local(SP, 2026, 11, 20, 10, 0)


def test_time_running_out_at_closing_is_due_at_the_close_not_next_morning() -> None:
    cal = sp_calendar()
    due = add_business_minutes(cal, local(SP, 2026, 12, 2, 17, 0), 60)
    assert due.astimezone(SP) == local(SP, 2026, 12, 2, 18, 0)


def test_adding_nothing_outside_hours_stays_put() -> None:
    cal = sp_calendar()
    night = local(SP, 2026, 12, 2, 23, 30)
    assert add_business_minutes(cal, night, 0) == night


def test_adding_from_a_night_starts_counting_at_the_next_opening() -> None:
    cal = sp_calendar()
    due = add_business_minutes(cal, local(SP, 2026, 12, 2, 23, 30), 1)
    assert due.astimezone(SP) == local(SP, 2026, 12, 3, 9, 1)


def test_the_same_instant_is_business_time_in_one_zone_and_night_in_another() -> None:
    berlin = BusinessCalendar.from_hours("de", "Europe/Berlin", DEFAULT_HOURS)
    tokyo = BusinessCalendar.from_hours("jp", "Asia/Tokyo", DEFAULT_HOURS)
    at = np.array([int(datetime(2026, 12, 2, 10, 0, tzinfo=UTC).timestamp())])
    assert berlin.is_business(at)[0]  # 11:00 in Berlin
    assert not tokyo.is_business(at)[0]  # 19:00 in Tokyo


def test_spring_forward_day_counts_the_hours_that_really_pass() -> None:
    # Europe/Berlin skips 02:00-03:00 on 29 March 2026, a Sunday; work 00:00-06:00 that day.
    cal = BusinessCalendar.from_hours("de", "Europe/Berlin", WorkingHours(sun=["00:00-06:00"]))
    assert (
        business_minutes_between(cal, local(BERLIN, 2026, 3, 29, 0, 0), local(BERLIN, 2026, 3, 30))
        == 300
    )
    assert (
        business_minutes_between(cal, local(BERLIN, 2026, 3, 22, 0, 0), local(BERLIN, 2026, 3, 23))
        == 360
    )


def test_due_times_years_ahead_extend_the_interval_table() -> None:
    cal = BusinessCalendar.from_hours("utc", "UTC", DEFAULT_HOURS)
    due = add_business_minutes(cal, datetime(2026, 1, 1, tzinfo=UTC), 9 * 60 * 260 * 5)
    assert due.year >= 2030
    assert business_minutes_between(cal, datetime(2026, 1, 1, tzinfo=UTC), due) == 9 * 60 * 260 * 5


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(sp_calendar(), datetime(2026, 12, 2, 10, 0), 5)


def _oracle_minutes(
    zone: ZoneInfo, hours: WorkingHours, off: set[date], start: datetime, minutes: int
) -> np.ndarray:
    """1 for each UTC minute from ``start`` whose local wall time is working time."""
    spans = hours.minutes_by_weekday()
    out = np.zeros(minutes, dtype=np.int64)
    for i in range(minutes):
        t = (start + timedelta(minutes=i)).astimezone(zone)
        if t.date() in off:
            continue
        m = t.hour * 60 + t.minute
        out[i] = any(a <= m < b for a, b in spans[t.weekday()])
    return out


@pytest.mark.parametrize(
    ("zone_name", "country", "month_start"),
    [
        ("America/Sao_Paulo", "BR", datetime(2026, 11, 10, tzinfo=UTC)),  # holidays 15 and 20 Nov
        ("Europe/Berlin", "DE", datetime(2026, 10, 20, tzinfo=UTC)),  # DST ends 25 Oct
        ("America/New_York", "US", datetime(2026, 3, 2, tzinfo=UTC)),  # DST starts 8 Mar
        ("Asia/Kolkata", "IN", datetime(2026, 1, 20, tzinfo=UTC)),  # half-hour offset
    ],
)
def test_arithmetic_matches_a_minute_by_minute_oracle(
    zone_name: str, country: str, month_start: datetime
) -> None:
    zone = ZoneInfo(zone_name)
    source = HolidaySource(country)
    cal = BusinessCalendar.from_hours(zone_name, zone_name, LUNCH_HOURS, source)
    span = 21 * 24 * 60
    per_minute = _oracle_minutes(
        zone, LUNCH_HOURS, source.dates([2025, 2026, 2027]), month_start, span
    )
    cum = np.concatenate([[0], np.cumsum(per_minute)])  # cum[k] = business minutes in [0, k)
    rng = np.random.default_rng(11)
    base = int(month_start.timestamp())
    a = rng.integers(0, span // 2, 400)
    b = a + rng.integers(0, span // 2, 400)
    got = cal.business_seconds_between(base + a * 60, base + b * 60)
    np.testing.assert_array_equal(got, (cum[b] - cum[a]) * 60)
    n = rng.integers(1, 3000, 400)
    reachable = cum[a] + n <= cum[-1]
    a, n = a[reachable], n[reachable]
    due = cal.add_business_seconds(base + a * 60, n * 60)
    # The oracle's due minute: the first k with cum[k] - cum[a] == n.
    expected = np.searchsorted(cum, cum[a] + n, side="left")
    np.testing.assert_array_equal(due, base + expected * 60)


def test_a_stack_of_calendars_answers_each_row_as_its_own_calendar_would() -> None:
    calendars = [
        sp_calendar(),
        BusinessCalendar.from_hours("de", "Europe/Berlin", DEFAULT_HOURS, HolidaySource("DE")),
        BusinessCalendar.from_hours("jp", "Asia/Tokyo", LUNCH_HOURS, HolidaySource("JP")),
    ]
    stack = CalendarStack(calendars)
    rng = np.random.default_rng(3)
    n = 3000
    code = rng.integers(0, 3, n).astype(np.intp)
    start = rng.integers(1_780_000_000, 1_800_000_000, n)
    end = start + rng.integers(0, 40 * 86400, n)
    amount = rng.integers(0, 400 * 3600, n)  # up to ~50 working days: crosses into 2027
    got_between = stack.business_seconds_between(start, end, code)
    got_due = stack.add_business_seconds(start, amount, code)
    for k, cal in enumerate(calendars):
        rows = code == k
        np.testing.assert_array_equal(
            got_between[rows], cal.business_seconds_between(start[rows], end[rows])
        )
        np.testing.assert_array_equal(
            got_due[rows], cal.add_business_seconds(start[rows], amount[rows])
        )
