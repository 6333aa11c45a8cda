"""When outreach may go out: local send windows, business-day delays and retry backoff.

Pure functions of an instant: the caller passes ``at`` (the flow's ``as_of``), so the
dispatcher's decisions can be replayed in tests for any date, zone and DST edge. All
instants in and out are timezone-aware; naive datetimes are refused because guessing
their zone is exactly the bug these functions exist to prevent.
"""

from __future__ import annotations

import random
from collections.abc import Container, Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_data

from config.campaign_policy import WEEKDAYS, SendWindow

_BUSINESS_DAYS = frozenset(range(5))  # Monday..Friday, as date.weekday() numbers them


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value


def recipient_zone(timezone: str | None, window: SendWindow) -> ZoneInfo:
    """The recipient's zone, or the campaign's default when unknown or misspelt."""
    if timezone:
        try:
            return ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(window.default_timezone)


def holiday_calendar(country: str | None, years: Iterable[int]) -> frozenset[date]:
    """Public holidays of ``country`` (ISO 3166 alpha-2) for ``years``; empty if unknown."""
    if not country:
        return frozenset()
    try:
        calendar = holiday_data.country_holidays(country.upper(), years=list(years))
    except NotImplementedError:
        return frozenset()
    return frozenset(calendar.keys())


def _open_day(day: date, window: SendWindow, holidays: Container[date]) -> bool:
    if WEEKDAYS[day.weekday()] not in window.days:
        return False
    return not (window.skip_holidays and day in holidays)


def window_allows(
    at: datetime, zone: ZoneInfo, window: SendWindow, holidays: Container[date] = ()
) -> bool:
    """Whether a send at ``at`` falls inside the window in the recipient's local time."""
    local = _aware("at", at).astimezone(zone)
    return _open_day(local.date(), window, holidays) and (
        window.start <= local.time().replace(tzinfo=None) < window.end
    )


def next_allowed_at(
    at: datetime,
    zone: ZoneInfo,
    window: SendWindow,
    holidays: Container[date] = (),
    *,
    horizon_days: int = 366,
) -> datetime:
    """The first instant at or after ``at`` inside the window, in UTC.

    ``at`` itself when already inside. A window start that falls in a DST gap is taken
    at the same wall time after the shift (zoneinfo's fold=0 reading), which is still
    inside the window. Raises ``ValueError`` if no day opens within ``horizon_days``.
    """
    at_utc = _aware("at", at).astimezone(UTC)
    if window_allows(at, zone, window, holidays):
        return at_utc
    day = at.astimezone(zone).date()
    for offset in range(horizon_days + 1):
        candidate = day + timedelta(days=offset)
        if not _open_day(candidate, window, holidays):
            continue
        # Through UTC, so a wall time inside a DST gap becomes a real instant.
        start = datetime.combine(candidate, window.start, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(candidate, window.end, tzinfo=zone).astimezone(UTC)
        if at_utc < end:
            return max(start, at_utc)
    raise ValueError(f"no open send window within {horizon_days} days of {at.isoformat()}")


def add_business_days(start: date, days: int, holidays: Container[date] = ()) -> date:
    """``start`` moved forward by ``days`` working days (Mon-Fri, not a holiday).

    Zero days returns ``start`` unchanged even on a weekend: the send window, not the
    delay, decides when a same-day step may actually go.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    current = start
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if current.weekday() in _BUSINESS_DAYS and current not in holidays:
            remaining -= 1
    return current


def step_due_at(
    previous_sent_at: datetime,
    delay_business_days: int,
    zone: ZoneInfo,
    window: SendWindow,
    holidays: Container[date] = (),
) -> datetime:
    """When the next cadence step becomes sendable: the delay counted on the recipient's
    calendar, then the first open window instant from the same local time of day."""
    local = _aware("previous_sent_at", previous_sent_at).astimezone(zone)
    candidate = local
    if delay_business_days:
        due_day = add_business_days(local.date(), delay_business_days, holidays)
        candidate = datetime.combine(due_day, local.time().replace(tzinfo=None), tzinfo=zone)
    return next_allowed_at(candidate.astimezone(UTC), zone, window, holidays)


def backoff_delay(
    attempt: int,
    *,
    base: timedelta,
    cap: timedelta,
    rng: random.Random,
) -> timedelta:
    """Exponential backoff with "equal jitter": half fixed, half random.

    ``attempt`` counts failed attempts so far (1 after the first failure). Half of the
    exponential step is kept so a retry is never immediate; the random half spreads a
    batch deferred by the same 421 so it does not come back as one burst.
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    ceiling = min(cap, base * (2 ** min(attempt - 1, 32)))
    half = ceiling / 2
    return half + half * rng.random()


def next_attempt_at(
    now: datetime,
    attempt: int,
    *,
    base: timedelta = timedelta(minutes=5),
    cap: timedelta = timedelta(hours=6),
    rng: random.Random | None = None,
) -> datetime:
    """When a retried send may be claimed again (UTC)."""
    delay = backoff_delay(attempt, base=base, cap=cap, rng=rng or random.Random())
    return _aware("now", now).astimezone(UTC) + delay
