"""Business-time arithmetic, exact to the second, across weekends, holidays and time zones.

A calendar is turned once into sorted working intervals in UTC epoch seconds with a running
total of business seconds before each. "Business seconds up to t" is then one binary search,
and "t plus n business seconds" is a binary search on the running total, so every operation
costs O(log intervals) and works on numpy arrays of instants at once. Converting local
working spans to UTC day by day (not with a fixed offset) is what keeps DST changes exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import numpy.typing as npt
import pandas as pd

from config.team_policy import WorkingHours

Seconds = npt.NDArray[np.int64]
WeeklySpans = tuple[tuple[tuple[int, int], ...], ...]

_EPOCH = pd.Timestamp(0, tz="UTC")
_ONE_SECOND = pd.Timedelta(seconds=1)


@dataclass(frozen=True)
class HolidaySource:
    """Days off on the calendar's local dates: a country's public holidays plus adjustments."""

    country: str | None = None
    subdivision: str | None = None
    extra_dates: frozenset[date] = frozenset()
    removed_dates: frozenset[date] = frozenset()

    def dates(self, years: Iterable[int]) -> set[date]:
        years = list(years)
        found: set[date] = set()
        if self.country is not None:
            found.update(
                holidays.country_holidays(self.country, subdiv=self.subdivision, years=years)
            )
        found.update(d for d in self.extra_dates if d.year in years)
        return found - self.removed_dates


@dataclass
class BusinessCalendar:
    """Working spans per weekday in one time zone, minus holidays.

    Intervals are built lazily for whole years and widened on demand, so callers never need
    to know how far ahead a due time will land.
    """

    name: str
    timezone: str
    weekly: WeeklySpans
    holidays: HolidaySource = HolidaySource()
    _years: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _starts: Seconds = field(default_factory=lambda: np.empty(0, np.int64), init=False)
    _ends: Seconds = field(default_factory=lambda: np.empty(0, np.int64), init=False)
    _cum_before: Seconds = field(default_factory=lambda: np.empty(0, np.int64), init=False)
    _cum_end: Seconds = field(default_factory=lambda: np.empty(0, np.int64), init=False)
    _lo: int = field(default=0, init=False)
    _hi: int = field(default=0, init=False)

    @classmethod
    def from_hours(
        cls,
        name: str,
        timezone: str,
        hours: WorkingHours,
        holidays: HolidaySource = HolidaySource(),
    ) -> BusinessCalendar:
        return cls(
            name=name, timezone=timezone, weekly=hours.minutes_by_weekday(), holidays=holidays
        )

    # -- interval table -------------------------------------------------------------------

    def _build(self, first_year: int, last_year: int) -> None:
        zone = ZoneInfo(self.timezone)
        off = self.holidays.dates(range(first_year, last_year + 1))
        starts: list[int] = []
        ends: list[int] = []
        day = date(first_year, 1, 1)
        stop = date(last_year + 1, 1, 1)
        one = timedelta(days=1)
        while day < stop:
            spans = self.weekly[day.weekday()]
            if spans and day not in off:
                midnight = datetime(day.year, day.month, day.day)
                for begin, end in spans:
                    # Local wall-clock times, localised one by one so DST days stay exact.
                    s = int((midnight + timedelta(minutes=begin)).replace(tzinfo=zone).timestamp())
                    e = int((midnight + timedelta(minutes=end)).replace(tzinfo=zone).timestamp())
                    if e > s:
                        starts.append(s)
                        ends.append(e)
            day += one
        self._starts = np.asarray(starts, dtype=np.int64)
        self._ends = np.asarray(ends, dtype=np.int64)
        lengths = self._ends - self._starts
        self._cum_end = np.cumsum(lengths, dtype=np.int64)
        self._cum_before = self._cum_end - lengths
        start_local = datetime(first_year, 1, 1, tzinfo=zone)
        stop_local = datetime(last_year + 1, 1, 1, tzinfo=zone)
        self._lo = int(start_local.timestamp())
        self._hi = int(stop_local.timestamp())
        self._years = (first_year, last_year)

    def _cover(self, lo: int, hi: int) -> None:
        if self._years is not None and self._lo <= lo and hi < self._hi:
            return
        # One spare year either side absorbs time-zone offsets at year boundaries.
        first = datetime.fromtimestamp(lo, UTC).year - 1
        last = datetime.fromtimestamp(hi, UTC).year + 1
        if self._years is not None:
            first, last = min(first, self._years[0]), max(last, self._years[1])
        self._build(first, last)

    # -- vectorised operations on epoch seconds -------------------------------------------

    def seconds_before(self, instants: Seconds) -> Seconds:
        """Business seconds from the table's origin up to each instant (a monotone counter)."""
        t = np.asarray(instants, dtype=np.int64)
        if t.size == 0:
            return t.copy()
        self._cover(int(t.min()), int(t.max()))
        idx = np.searchsorted(self._starts, t, side="right") - 1
        safe = np.maximum(idx, 0)
        inside = np.clip(t - self._starts[safe], 0, self._ends[safe] - self._starts[safe])
        return np.where(idx >= 0, self._cum_before[safe] + inside, 0)

    def business_seconds_between(self, start: Seconds, end: Seconds) -> Seconds:
        """Business seconds in ``[start, end)``; negative when end precedes start."""
        return self.seconds_before(end) - self.seconds_before(start)

    def add_business_seconds(self, start: Seconds, amount: Seconds) -> Seconds:
        """The first instant at which ``amount`` business seconds have passed since ``start``.

        A zero amount returns ``start`` itself, even outside working hours; a positive
        amount that ends exactly at a span's close lands on the close, not on the next
        morning, because that is the moment the time ran out.
        """
        t = np.asarray(start, dtype=np.int64)
        n = np.asarray(amount, dtype=np.int64)
        t, n = np.broadcast_arrays(t, n)
        if t.size == 0:
            return t.astype(np.int64)
        if (n < 0).any():
            raise ValueError("add_business_seconds needs non-negative amounts")
        target = self.seconds_before(t) + n
        while self._cum_end.size == 0 or target.max() > self._cum_end[-1]:
            assert self._years is not None
            self._build(self._years[0], self._years[1] + 1)
            target = self.seconds_before(t) + n
        idx = np.searchsorted(self._cum_end, target, side="left")
        landed = self._starts[idx] + (target - self._cum_before[idx])
        return np.where(n == 0, t, landed)

    def is_business(self, instants: Seconds) -> npt.NDArray[np.bool_]:
        t = np.asarray(instants, dtype=np.int64)
        return self.seconds_before(t + 1) > self.seconds_before(t)


# Calendars are laid side by side on one timeline, 2**40 s (about 35,000 years) apart, so a
# batch mixing many calendars needs one binary search instead of one per calendar.
_STRIDE = 1 << 40


class CalendarStack:
    """Several calendars answered at once: each instant comes with the code of its calendar."""

    def __init__(self, calendars: Sequence[BusinessCalendar]) -> None:
        self.calendars = list(calendars)
        self._built_for: list[tuple[int, int] | None] = []
        self._lo = self._hi = 0

    def _cover(self, lo: int, hi: int) -> None:
        if self._built_for and self._lo <= lo and hi < self._hi:
            return
        for cal in self.calendars:
            cal._cover(lo, hi)
        self._restack()

    def _restack(self) -> None:
        years = [cal._years for cal in self.calendars]
        if years == self._built_for:
            return
        starts, ends, before, after, last = [], [], [], [], []
        offset = 0
        for k, cal in enumerate(self.calendars):
            starts.append(cal._starts + k * _STRIDE)
            ends.append(cal._ends + k * _STRIDE)
            before.append(cal._cum_before + offset)
            after.append(cal._cum_end + offset)
            offset += int(cal._cum_end[-1]) if cal._cum_end.size else 0
            last.append(offset)
        self._starts = np.concatenate(starts)
        self._ends = np.concatenate(ends)
        self._cum_before = np.concatenate(before)
        self._cum_end = np.concatenate(after)
        self._last = np.asarray(last, dtype=np.int64)
        self._lo = max(cal._lo for cal in self.calendars)
        self._hi = min(cal._hi for cal in self.calendars)
        self._built_for = years

    def _counter(self, t: Seconds, code: npt.NDArray[np.intp]) -> Seconds:
        shifted = t + code.astype(np.int64) * _STRIDE
        idx = np.searchsorted(self._starts, shifted, side="right") - 1
        safe = np.maximum(idx, 0)
        inside = np.clip(shifted - self._starts[safe], 0, self._ends[safe] - self._starts[safe])
        return np.where(idx >= 0, self._cum_before[safe] + inside, 0)

    def business_seconds_between(
        self, start: Seconds, end: Seconds, code: npt.NDArray[np.intp]
    ) -> Seconds:
        if start.size == 0:
            return np.zeros(0, dtype=np.int64)
        self._cover(int(min(start.min(), end.min())), int(max(start.max(), end.max())))
        return self._counter(end, code) - self._counter(start, code)

    def add_business_seconds(
        self, start: Seconds, amount: Seconds, code: npt.NDArray[np.intp]
    ) -> Seconds:
        """As ``BusinessCalendar.add_business_seconds``, each row on its own calendar."""
        if start.size == 0:
            return np.zeros(0, dtype=np.int64)
        if (amount < 0).any():
            raise ValueError("add_business_seconds needs non-negative amounts")
        self._cover(int(start.min()), int(start.max()))
        target = self._counter(start, code) + amount
        while (target > self._last[code]).any():
            for cal in self.calendars:
                assert cal._years is not None
                cal._build(cal._years[0], cal._years[1] + 1)
            self._restack()
            target = self._counter(start, code) + amount
        idx = np.searchsorted(self._cum_end, target, side="left")
        landed = (
            self._starts[idx] + (target - self._cum_before[idx]) - code.astype(np.int64) * _STRIDE
        )
        return np.where(amount == 0, start, landed)


# -- conversions -----------------------------------------------------------------------------


def to_epoch_seconds(values: pd.Series | pd.DatetimeIndex | Sequence[datetime]) -> Seconds:
    """Aware instants (or UTC datetime64 data) to int64 epoch seconds, floored; NaT is int64 min."""
    index = pd.DatetimeIndex(values)  # type: ignore[arg-type]
    if index.tz is None:
        raise ValueError("instants must be timezone-aware")
    raw = index.asi8
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[index.unit]
    if per_second == 1:
        return raw.astype(np.int64, copy=True)
    return np.where(index.isna(), raw, raw // per_second).astype(np.int64)


def from_epoch_seconds(seconds: Seconds) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True))


def epoch(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return int(instant.timestamp() // 1)


def instant(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def naive_instants(seconds: npt.NDArray[np.int64]) -> list[datetime | None]:
    """Epoch seconds as naive UTC datetimes, as stored; the int64 maximum (an instant that
    is not coming) becomes None."""
    never = np.iinfo(np.int64).max
    stamps = pd.to_datetime(np.where(seconds == never, 0, seconds), unit="s").to_pydatetime()
    return [None if s == never else d for s, d in zip(seconds.tolist(), stamps, strict=True)]


# -- scalar conveniences ---------------------------------------------------------------------


def add_business_minutes(calendar: BusinessCalendar, start: datetime, minutes: int) -> datetime:
    """``start`` plus ``minutes`` of working time on ``calendar``, as an aware UTC datetime."""
    result = calendar.add_business_seconds(
        np.array([epoch(start)], np.int64), np.array([minutes * 60], np.int64)
    )
    return instant(int(result[0]))


def business_minutes_between(calendar: BusinessCalendar, start: datetime, end: datetime) -> float:
    """Working minutes in ``[start, end)`` on ``calendar`` (negative when reversed)."""
    got = calendar.business_seconds_between(
        np.array([epoch(start)], np.int64), np.array([epoch(end)], np.int64)
    )
    return float(got[0]) / 60.0
