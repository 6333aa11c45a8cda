"""Send windows in the recipient's zone, business-day delays and retry backoff."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from config.campaign_policy import SendWindow
from tasks.outreach.windows import (
    add_business_days,
    backoff_delay,
    holiday_calendar,
    next_allowed_at,
    next_attempt_at,
    recipient_zone,
    step_due_at,
    window_allows,
)

SAO_PAULO = ZoneInfo("America/Sao_Paulo")  # UTC-3, no DST since 2019
TOKYO = ZoneInfo("Asia/Tokyo")
WINDOW = SendWindow(start=time(9, 0), end=time(17, 30))
BR_2026 = holiday_calendar("BR", [2026])


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_window_is_judged_in_the_recipients_local_time() -> None:
    monday_noon_utc = utc(2026, 3, 2, 12, 0)  # 09:00 in São Paulo, 21:00 in Tokyo
    assert window_allows(monday_noon_utc, SAO_PAULO, WINDOW)
    assert not window_allows(monday_noon_utc, TOKYO, WINDOW)


def test_window_start_is_inclusive_and_end_exclusive() -> None:
    assert window_allows(utc(2026, 3, 2, 12, 0), SAO_PAULO, WINDOW)  # 09:00 local
    assert not window_allows(utc(2026, 3, 2, 20, 30), SAO_PAULO, WINDOW)  # 17:30 local
    assert not window_allows(utc(2026, 3, 2, 11, 59), SAO_PAULO, WINDOW)  # 08:59 local


def test_inside_the_window_the_next_allowed_instant_is_now() -> None:
    now = utc(2026, 3, 3, 15, 7)
    assert next_allowed_at(now, SAO_PAULO, WINDOW) == now


def test_after_friday_close_the_next_allowed_instant_is_monday_opening() -> None:
    friday_evening = utc(2026, 3, 6, 22, 0)  # 19:00 local
    assert next_allowed_at(friday_evening, SAO_PAULO, WINDOW) == utc(2026, 3, 9, 12, 0)


def test_before_opening_waits_for_the_same_days_opening() -> None:
    early = utc(2026, 3, 3, 10, 0)  # 07:00 local Tuesday
    assert next_allowed_at(early, SAO_PAULO, WINDOW) == utc(2026, 3, 3, 12, 0)


def test_public_holidays_in_the_recipients_country_are_skipped() -> None:
    assert date(2026, 4, 21) in BR_2026  # Tiradentes, a Tuesday
    monday_evening = utc(2026, 4, 20, 22, 0)
    assert next_allowed_at(monday_evening, SAO_PAULO, WINDOW, BR_2026) == utc(2026, 4, 22, 12, 0)
    assert next_allowed_at(monday_evening, SAO_PAULO, WINDOW) == utc(2026, 4, 21, 12, 0)
    no_skip = WINDOW.model_copy(update={"skip_holidays": False})
    assert next_allowed_at(monday_evening, SAO_PAULO, no_skip, BR_2026) == utc(2026, 4, 21, 12, 0)


def test_a_window_opening_inside_a_dst_gap_yields_a_real_instant_inside_the_window() -> None:
    new_york = ZoneInfo("America/New_York")  # 2026-03-08 02:00 -> 03:00
    window = SendWindow(days=["sun"], start=time(2, 30), end=time(5, 0))
    saturday = utc(2026, 3, 7, 12, 0)
    opening = next_allowed_at(saturday, new_york, window)
    assert opening.astimezone(new_york).date() == date(2026, 3, 8)
    assert window_allows(opening, new_york, window)
    assert opening == utc(2026, 3, 8, 7, 30)  # 02:30 read before the shift = 03:30 EDT


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        window_allows(datetime(2026, 3, 2, 12), SAO_PAULO, WINDOW)


def test_unknown_recipient_zone_falls_back_to_the_campaign_default() -> None:
    assert recipient_zone("Mars/Olympus_Mons", WINDOW) == SAO_PAULO
    assert recipient_zone(None, WINDOW) == SAO_PAULO
    assert recipient_zone("Asia/Tokyo", WINDOW) == TOKYO


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 3, 6), 1, date(2026, 3, 9)),  # Friday + 1 -> Monday
        (date(2026, 3, 2), 5, date(2026, 3, 9)),  # a full week
        (date(2026, 3, 7), 0, date(2026, 3, 7)),  # zero days: unchanged
        (date(2026, 4, 20), 1, date(2026, 4, 22)),  # over Tiradentes
    ],
)
def test_business_day_delays_skip_weekends_and_holidays(
    start: date, days: int, expected: date
) -> None:
    assert add_business_days(start, days, BR_2026) == expected


def test_next_step_is_due_after_business_days_then_inside_the_window() -> None:
    thursday_4pm_local = utc(2026, 3, 5, 19, 0)
    due = step_due_at(thursday_4pm_local, 3, SAO_PAULO, WINDOW, BR_2026)
    assert due == utc(2026, 3, 10, 19, 0)  # Tuesday, same local time
    thursday_8pm_local = utc(2026, 3, 5, 23, 0)
    assert step_due_at(thursday_8pm_local, 1, SAO_PAULO, WINDOW) == utc(2026, 3, 9, 12, 0)


def test_backoff_grows_exponentially_within_jitter_bounds_and_is_capped() -> None:
    base, cap = timedelta(minutes=5), timedelta(hours=1)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (12, 60)]:
        delays = [backoff_delay(attempt, base=base, cap=cap, rng=rng) for _ in range(50)]
        assert all(
            timedelta(minutes=ceiling / 2) <= d <= timedelta(minutes=ceiling) for d in delays
        )
        assert len(set(delays)) > 1  # jittered, so a deferred batch spreads out


def test_next_attempt_is_in_the_future_and_reproducible_with_a_seed() -> None:
    now = utc(2026, 3, 2, 12, 0)
    first = next_attempt_at(now, 2, rng=random.Random(1))
    assert first == next_attempt_at(now, 2, rng=random.Random(1))
    assert now + timedelta(minutes=5) <= first <= now + timedelta(minutes=10)
