"""Complaint SLAs as policy: business-hour targets, holiday calendars and the escalation ladder.

Targets are whole business minutes so that due times are exact to the minute; the ladder is
checked for order so that "warning" can never fire after "breach" for the same clock.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from config.team_policy import (
    DEFAULT_HOURS,
    WorkingHours,
    check_country,
    check_subdivision,
    check_timezone,
)

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
ClockName = Literal["first_response", "resolution"]
CLOCKS: tuple[ClockName, ...] = ("first_response", "resolution")
EscalationKind = Literal["warning", "breach"]


class SlaTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    first_response_minutes: PositiveInt
    resolution_minutes: PositiveInt

    @model_validator(mode="after")
    def _response_first(self) -> SlaTarget:
        if self.resolution_minutes < self.first_response_minutes:
            raise ValueError("resolution_minutes must not be shorter than first_response_minutes")
        return self

    def minutes(self, clock: ClockName) -> int:
        return self.first_response_minutes if clock == "first_response" else self.resolution_minutes


class HolidayCalendar(BaseModel):
    """Adjustments to a country's public holidays (company days off, worked bridge days)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subdivision: str | None = None
    extra_dates: list[date] = []
    removed_dates: list[date] = []


class CalendarSpec(BaseModel):
    """The business calendar for complaints that have no owning manager."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    working_hours: WorkingHours = DEFAULT_HOURS
    holiday_country: str | None = None
    holiday_subdivision: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("holiday_country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        return check_country(value)


class LadderStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at_fraction: float = Field(gt=0, le=10, description="Share of the target used, 1.0 = due.")
    kind: EscalationKind
    level: Literal[1, 2, 3]

    @model_validator(mode="after")
    def _kind_matches_fraction(self) -> LadderStep:
        if (self.kind == "breach") != (self.at_fraction >= 1.0):
            raise ValueError("a step is a breach exactly when at_fraction >= 1.0")
        return self

    def threshold_seconds(self, target_minutes: int) -> int:
        """Business seconds after which this step is due; rounded up so it never fires early."""
        return math.ceil(round(self.at_fraction * target_minutes * 60, 6))


DEFAULT_LADDER: dict[ClockName, list[LadderStep]] = {
    "first_response": [
        LadderStep(at_fraction=0.75, kind="warning", level=1),
        LadderStep(at_fraction=1.0, kind="breach", level=2),
    ],
    "resolution": [
        LadderStep(at_fraction=0.75, kind="warning", level=1),
        LadderStep(at_fraction=1.0, kind="breach", level=2),
        LadderStep(at_fraction=1.5, kind="breach", level=3),
    ],
}


class SlaPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: dict[Severity, SlaTarget]
    tiers: dict[str, dict[Severity, SlaTarget]] = Field(
        default={}, description="Per client tier (or contract) overrides, severity by severity."
    )
    holiday_calendars: dict[str, HolidayCalendar] = Field(
        default={}, description="Keyed by ISO country code, as in the team's holiday_country."
    )
    default_calendar: CalendarSpec = CalendarSpec()
    ladder: dict[ClockName, list[LadderStep]] = DEFAULT_LADDER

    @model_validator(mode="after")
    def _complete_and_ordered(self) -> SlaPolicy:
        missing = [s for s in SEVERITIES if s not in self.targets]
        if missing:
            raise ValueError(f"targets must cover every severity; missing {missing}")
        for country, adjust in self.holiday_calendars.items():
            check_country(country)
            check_subdivision(country, adjust.subdivision)
        spec = self.default_calendar
        check_subdivision(spec.holiday_country, spec.holiday_subdivision)
        for clock, steps in self.ladder.items():
            fractions = [s.at_fraction for s in steps]
            if fractions != sorted(set(fractions)):
                raise ValueError(f"ladder.{clock}: at_fraction must strictly increase")
            levels = [s.level for s in steps]
            if levels != sorted(levels):
                raise ValueError(f"ladder.{clock}: levels must not go down as time runs out")
            pairs = [(s.level, s.kind) for s in steps]
            if len(pairs) != len(set(pairs)):
                # The idempotency key is (complaint, clock, level, kind): it must be unique.
                raise ValueError(f"ladder.{clock}: each (level, kind) may appear once")
        return self

    def target_for(self, severity: Severity, tier: str | None = None) -> SlaTarget:
        if tier is not None and severity in self.tiers.get(tier, {}):
            return self.tiers[tier][severity]
        return self.targets[severity]
