"""Campaign definitions: who is contacted, on which channel, when, how fast and as whom.

Campaigns are YAML under ``config/campaigns/`` edited by ops staff, so everything that can
be checked before a run is checked here (shape, ranges, cross-field rules, templates on
disk) and refused with the file, key and reason instead of failing halfway through a send.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from config.policy_loader import PolicyError, load_policy
from config.scoring_policy import BANDS

CAMPAIGNS_DIR = Path(__file__).resolve().parent / "campaigns"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
# One line of printable text: these values end up in headers, fax header lines or
# iCalendar properties, where a line break is an injection (see message_rendering).
OneLine = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f\x85\u2028\u2029]+$")]


class Channel(StrEnum):
    EMAIL = "email"
    FAX = "fax"
    INVITATION = "invitation"


class StopCondition(StrEnum):
    REPLIED = "replied"
    BOUNCED = "bounced"
    OPTED_OUT = "opted_out"
    COMPLAINT_OPEN = "complaint_open"
    BAND_DROPPED = "band_dropped"


Language = Literal["pt", "es", "en"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    # A misspelt key must be refused, not silently ignored: "stop_onn" would send on.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Audience(_Strict):
    """Filters ANDed together; an empty list means "any"."""

    segments: list[str] = []
    bands: list[str] = []
    countries: list[Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]] = []
    source_events: list[str] = []
    tags_any: list[str] = []
    tags_all: list[str] = []
    exclude_tags: list[str] = []
    not_yet_contacted: bool = True

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, value: list[str]) -> list[str]:
        unknown = [band for band in value if band not in BANDS]
        if unknown:
            raise ValueError(f"unknown bands {unknown}; the scorecard's bands are {list(BANDS)}")
        return value


class InvitationEvent(_Strict):
    """The event an invitation step invites to; times must carry a zone."""

    title: OneLine
    starts_at: datetime
    ends_at: datetime
    location: OneLine
    description: str = ""
    url: str | None = None

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("needs a UTC offset, e.g. 2026-05-12T09:00:00-03:00")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> InvitationEvent:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class Step(_Strict):
    name: Slug
    channel: Channel
    delay_business_days: int = Field(ge=0, le=90)
    template: Slug
    stop_on: list[StopCondition] = [
        StopCondition.REPLIED,
        StopCondition.BOUNCED,
        StopCondition.OPTED_OUT,
        StopCondition.COMPLAINT_OPEN,
    ]
    event: InvitationEvent | None = None

    @model_validator(mode="after")
    def _event_matches_channel(self) -> Step:
        if self.channel is Channel.INVITATION and self.event is None:
            raise ValueError("an invitation step needs an 'event'")
        if self.channel is not Channel.INVITATION and self.event is not None:
            raise ValueError("only invitation steps take an 'event'")
        return self


class SendWindow(_Strict):
    """Local hours in the recipient's zone; ``start`` inclusive, ``end`` exclusive.

    Windows crossing midnight are refused: nobody wants a 23:00-02:00 sales email, and
    it keeps "which day does this slot belong to" unambiguous for holiday checks.
    """

    days: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]
    start: time = time(9, 0)
    end: time = time(17, 0)
    skip_holidays: bool = True
    default_timezone: str = "America/Sao_Paulo"

    @field_validator("days")
    @classmethod
    def _some_days(cls, value: list[Weekday]) -> list[Weekday]:
        if not value:
            raise ValueError("at least one day is needed")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SendWindow:
        if self.end <= self.start:
            raise ValueError("end must be after start (windows crossing midnight are refused)")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("start/end are local wall-clock times; drop the offset")
        return self


class Throttles(_Strict):
    """Limits turned into Prefect rate limits by the dispatcher (names in the report)."""

    global_per_minute: int = Field(default=600, ge=1)
    per_domain_per_minute: int = Field(default=60, ge=1)
    fax_per_minute: int = Field(default=10, ge=1)
    daily_cap_per_sender: int = Field(default=2000, ge=1)


class Sender(_Strict):
    from_name: OneLine
    from_address: EmailStr
    reply_to: EmailStr | None = None
    # Bounces come back to <bounce_local>+<tag>@<bounce_domain> (VERP).
    bounce_local: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$")] = "bounces"
    bounce_domain: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")]
    unsubscribe_mailbox: EmailStr
    physical_address: OneLine
    fax_number: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = None
    opt_out_phone: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = None

    @field_validator("from_address", "reply_to", "unsubscribe_mailbox")
    @classmethod
    def _ascii(cls, value: str | None) -> str | None:
        # SMTPUTF8 is not negotiated by SmtpSender; refuse here rather than at send time.
        if value is not None and not value.isascii():
            raise ValueError("must be an ASCII address")
        return value


class Languages(_Strict):
    allowed: list[Language] = ["pt", "es", "en"]
    default: Language = "pt"

    @model_validator(mode="after")
    def _default_allowed(self) -> Languages:
        if not self.allowed:
            raise ValueError("at least one language is needed")
        if self.default not in self.allowed:
            raise ValueError(f"default {self.default!r} is not in allowed {self.allowed}")
        return self

    def pick(self, preferred: str | None) -> Language:
        """The contact's language if the campaign speaks it, else the default."""
        folded = (preferred or "").strip().lower()[:2]
        for language in self.allowed:
            if language == folded:
                return language
        return self.default


class Campaign(_Strict):
    name: Slug
    description: str = ""
    enabled: bool = True
    # "audience": dispatch plans the steps for the audience; "enqueued": another flow puts
    # the rows in the outbox (the freshness check's re-verification), dispatch only sends.
    planning: Literal["audience", "enqueued"] = "audience"
    audience: Audience = Audience()
    steps: list[Step] = Field(min_length=1)
    send_window: SendWindow = SendWindow()
    throttles: Throttles = Throttles()
    sender: Sender
    languages: Languages = Languages()
    retry_base_seconds: int = Field(default=300, ge=1)
    retry_cap_seconds: int = Field(default=6 * 3600, ge=1)
    max_attempts: int = Field(default=6, ge=1, le=20)

    @model_validator(mode="after")
    def _unique_steps(self) -> Campaign:
        names = [step.name for step in self.steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique; repeated: {duplicates}")
        if any(step.channel is Channel.FAX for step in self.steps) and (
            self.sender.fax_number is None and self.sender.opt_out_phone is None
        ):
            # The fax opt-out notice must give a number to call or fax back.
            raise ValueError("fax steps need sender.fax_number or sender.opt_out_phone")
        return self

    @property
    def retry_base(self) -> timedelta:
        return timedelta(seconds=self.retry_base_seconds)

    @property
    def retry_cap(self) -> timedelta:
        return timedelta(seconds=self.retry_cap_seconds)


def template_files(step: Step, language: Language) -> list[str]:
    """Template names (relative to the templates dir) a step needs for one language."""
    base = f"{step.template}/{language}"
    if step.channel is Channel.FAX:
        return [f"{base}.fax.txt.j2"]
    return [f"{base}.subject.txt.j2", f"{base}.txt.j2", f"{base}.html.j2"]


def load_campaign(path: Path, templates_dir: Path = TEMPLATES_DIR) -> Campaign:
    """Load and check one campaign file, including that every template it names exists."""
    campaign = load_policy(path, Campaign)
    if campaign.name != path.stem:
        raise PolicyError(
            f"{path}: key 'name': must match the file name {path.stem!r} (got {campaign.name!r})"
        )
    missing = [
        (index, name)
        for index, step in enumerate(campaign.steps)
        for language in campaign.languages.allowed
        for name in template_files(step, language)
        if not (templates_dir / name).is_file()
    ]
    if missing:
        problems = "; ".join(
            f"key 'steps.{index}.template': template {name!r} not found in {templates_dir}"
            for index, name in missing
        )
        raise PolicyError(f"{path}: {problems}")
    return campaign


def load_campaigns(
    directory: Path = CAMPAIGNS_DIR, templates_dir: Path = TEMPLATES_DIR
) -> dict[str, Campaign]:
    """Every ``*.yaml`` campaign in ``directory`` by name; one bad file refuses them all."""
    return {
        path.stem: load_campaign(path, templates_dir) for path in sorted(directory.glob("*.yaml"))
    }
