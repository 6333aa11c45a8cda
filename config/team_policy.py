"""The account team as policy: who owns what, who stands in for whom, and when each works.

Validated up front (through ``load_policy``) because a dangling deputy or an invalid time zone
would otherwise surface only at 3 a.m., when a complaint needs someone to hand over to.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cached_property
from itertools import pairwise
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_span(text: str) -> tuple[int, int]:
    """Turn ``"09:00-12:30"`` into minutes after local midnight; ``24:00`` closes a day."""
    match = _SPAN.match(text)
    if match is None:
        raise ValueError(f"working-hours span {text!r} is not 'HH:MM-HH:MM'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if m1 > 59 or m2 > 59 or h1 > 23 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"working-hours span {text!r} has an impossible clock time")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= end:
        raise ValueError(
            f"working-hours span {text!r} must end after it starts (no overnight spans; "
            "split them at midnight)"
        )
    return start, end


class WorkingHours(BaseModel):
    """Local working spans per weekday; a weekday that is absent or empty is a day off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mon: list[str] = []
    tue: list[str] = []
    wed: list[str] = []
    thu: list[str] = []
    fri: list[str] = []
    sat: list[str] = []
    sun: list[str] = []

    @model_validator(mode="after")
    def _sane(self) -> WorkingHours:
        total = 0
        for day in WEEKDAYS:
            spans = sorted(parse_span(s) for s in getattr(self, day))
            for (_, end), (start, _) in pairwise(spans):
                if start < end:
                    raise ValueError(f"{day}: working-hours spans overlap")
            total += sum(e - s for s, e in spans)
        if total == 0:
            raise ValueError("working hours must contain at least one working span per week")
        return self

    def minutes_by_weekday(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Spans as minutes after midnight, indexed by ``date.weekday()`` (Monday is 0)."""
        return tuple(tuple(sorted(parse_span(s) for s in getattr(self, d))) for d in WEEKDAYS)


DEFAULT_HOURS = WorkingHours(
    mon=["09:00-18:00"],
    tue=["09:00-18:00"],
    wed=["09:00-18:00"],
    thu=["09:00-18:00"],
    fri=["09:00-18:00"],
)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name)") from exc
    return name


def check_country(code: str | None) -> str | None:
    if code is not None and code not in holidays.list_supported_countries():
        raise ValueError(f"no holiday calendar for country {code!r} in the holidays package")
    return code


def check_subdivision(country: str | None, subdivision: str | None) -> None:
    """A subdivision (state, Land) only makes sense within a country that knows it."""
    if subdivision is None:
        return
    if country is None:
        raise ValueError(f"holiday subdivision {subdivision!r} needs a holiday country")
    if subdivision not in holidays.list_supported_countries().get(country, []):
        raise ValueError(f"country {country!r} has no holiday subdivision {subdivision!r}")


TimeZoneName = Annotated[str, Field(min_length=1)]


class Absence(BaseModel):
    """Whole local days (both ends included) on which a manager must not own complaints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: date
    end: date
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Absence:
        if self.end < self.start:
            raise ValueError(f"absence ends ({self.end}) before it starts ({self.start})")
        return self


class Manager(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1)
    email: str | None = None
    timezone: TimeZoneName = "UTC"
    working_hours: WorkingHours | None = None
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    territories: list[str] = []
    accounts: list[str] = []
    deputy: str | None = None
    team_lead: str | None = None
    absences: list[Absence] = []
    takes_new_accounts: bool = True

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("holiday_country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        return check_country(value)

    @model_validator(mode="after")
    def _no_self_reference(self) -> Manager:
        check_subdivision(self.holiday_country, self.holiday_subdivision)
        if self.deputy == self.id:
            raise ValueError(f"manager {self.id!r} cannot be their own deputy")
        if self.team_lead == self.id:
            raise ValueError(f"manager {self.id!r} cannot be their own team lead")
        return self

    def is_absent(self, as_of: datetime) -> bool:
        """Absence is judged on the manager's local calendar day, where the vacation lives."""
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        local_day = as_of.astimezone(ZoneInfo(self.timezone)).date()
        return any(a.start <= local_day <= a.end for a in self.absences)


class TeamPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    head: str = Field(description="Manager id of the head of the company: the last resort.")
    default_working_hours: WorkingHours = DEFAULT_HOURS
    managers: list[Manager] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_checks(self) -> TeamPolicy:
        ids = [m.id for m in self.managers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"manager ids must be unique: {dupes}")
        known = set(ids)
        if self.head not in known:
            raise ValueError(f"head {self.head!r} is not a known manager")
        for m in self.managers:
            for role, ref in (("deputy", m.deputy), ("team_lead", m.team_lead)):
                if ref is not None and ref not in known:
                    raise ValueError(f"manager {m.id!r}: {role} {ref!r} is not a known manager")
        for field in ("territories", "accounts"):
            seen: dict[str, str] = {}
            for m in self.managers:
                for item in getattr(m, field):
                    if item in seen:
                        raise ValueError(
                            f"{field[:-1]} {item!r} is claimed by both {seen[item]!r} and {m.id!r}"
                        )
                    seen[item] = m.id
        return self

    @cached_property
    def by_id(self) -> dict[str, Manager]:
        return {m.id: m for m in self.managers}

    def hours_of(self, manager_id: str) -> WorkingHours:
        return self.by_id[manager_id].working_hours or self.default_working_hours
