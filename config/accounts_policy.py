"""Account relationships as policy: obligation warnings, health weights, action rules, talks.

Validated on load (through ``load_policy``) so that a rule naming a signal that does not exist,
or weights that sum to nothing, fail when the file is read, with the key, not at 3 a.m. in a
scheduled run that silently gives every account the same score.
"""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.campaign_policy import (
    Audience,
    Campaign,
    Channel,
    Sender,
    SendWindow,
    Step,
    Throttles,
)
from config.policy_loader import load_policy
from config.settings import get_settings

TALKS_CAMPAIGN = "talks"

ObligationKind = Literal[
    "delivery", "service_level", "report", "payment_terms", "price_review", "renewal", "notice"
]
OBLIGATION_KINDS: tuple[ObligationKind, ...] = (
    "delivery",
    "service_level",
    "report",
    "payment_terms",
    "price_review",
    "renewal",
    "notice",
)
ObligationState = Literal["on_track", "due_soon", "late", "met", "missed", "compensated"]
OBLIGATION_STATES: tuple[ObligationState, ...] = (
    "on_track", "due_soon", "late", "met", "missed", "compensated"
)  # fmt: skip

HealthFactor = Literal[
    "engagement",
    "outreach",
    "complaints",
    "obligations",
    "reliability",
    "freshness",
    "contact_recency",
    "trend",
]
HEALTH_FACTORS: tuple[HealthFactor, ...] = (
    "engagement",
    "outreach",
    "complaints",
    "obligations",
    "reliability",
    "freshness",
    "contact_recency",
    "trend",
)
Signal = Literal[
    "health",
    "health_change_90d",
    "band",
    "tier_band",
    "critical_complaints_open",
    "complaints_open",
    "late_obligations",
    "renewal_in_days",
    "days_since_contact",
    "interested_reply",
    "hot_lead",
]
Operator = Literal["<", "<=", "==", "!=", ">=", ">"]


class ObligationPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    warning_business_days: dict[str, int] = {"default": 3}
    notify_states: list[ObligationState] = ["due_soon", "late", "missed"]

    @model_validator(mode="after")
    def _known_kinds(self) -> ObligationPolicy:
        unknown = sorted(set(self.warning_business_days) - {"default", *OBLIGATION_KINDS})
        if unknown:
            raise ValueError(
                f"warning_business_days: unknown kind(s) {unknown}; "
                f"expected default or one of {list(OBLIGATION_KINDS)}"
            )
        if any(v < 0 for v in self.warning_business_days.values()):
            raise ValueError("warning_business_days must not be negative")
        if "default" not in self.warning_business_days:
            raise ValueError("warning_business_days needs a default")
        return self

    def warning_days(self, kind: str) -> int:
        return self.warning_business_days.get(kind, self.warning_business_days["default"])


class HealthBands(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    healthy: float = Field(70, ge=0, le=100)
    watch: float = Field(45, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> HealthBands:
        if not self.healthy > self.watch:
            raise ValueError(
                f"bands must satisfy healthy > watch, got {self.healthy}, {self.watch}"
            )
        return self

    def band_for(self, score: float) -> str:
        if score >= self.healthy:
            return "healthy"
        return "watch" if score >= self.watch else "at_risk"


class HealthPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[HealthFactor, float]
    bands: HealthBands = HealthBands()
    window_days: int = Field(90, gt=0)
    engagement_target: float = Field(4, gt=0)
    contact_full_days: int = Field(30, ge=0)
    contact_zero_days: int = Field(180, gt=0)
    fresh_days: int = Field(180, ge=0)
    stale_days: int = Field(730, gt=0)
    complaint_severity_penalty: dict[Literal["low", "medium", "high", "critical"], float] = {
        "low": 0.1,
        "medium": 0.25,
        "high": 0.5,
        "critical": 1.0,
    }
    breach_penalty: float = Field(0.3, ge=0)
    repeat_penalty: float = Field(0.2, ge=0)
    trend_full_points: float = Field(20, gt=0)
    reasons: int = Field(3, ge=1, le=8)

    @model_validator(mode="after")
    def _sane(self) -> HealthPolicy:
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("weights must not be negative")
        if sum(self.weights.values()) <= 0:
            raise ValueError("weights must not all be zero")
        if self.contact_zero_days <= self.contact_full_days:
            raise ValueError("contact_zero_days must be greater than contact_full_days")
        if self.stale_days <= self.fresh_days:
            raise ValueError("stale_days must be greater than fresh_days")
        return self


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signal: Signal
    op: Operator
    value: float | bool | str

    @model_validator(mode="after")
    def _comparable(self) -> Condition:
        if isinstance(self.value, str | bool) and self.op not in ("==", "!="):
            raise ValueError(f"{self.signal}: only == and != compare with {self.value!r}")
        return self


class ActionRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[a-z0-9-]+$")
    when: list[Condition] = Field(min_length=1)
    action: str = Field(min_length=1)
    due_in_business_days: int = Field(0, ge=0)


class TalkPolicy(BaseModel):
    """Proposals go through the outreach outbox as a campaign of one step (``talks``), so
    they carry what a campaign's sends carry: a sender, a send window in the client's
    zone, throttles and retries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slots: int = Field(3, ge=2, le=3)
    duration_minutes: int = Field(30, ge=15, le=240)
    earliest_business_hours_ahead: float = Field(4, ge=0)
    sender: Sender = Sender(
        from_name="Account management",
        from_address="accounts@accountflow.example",
        bounce_domain="accountflow.example",
        unsubscribe_mailbox="unsubscribe@accountflow.example",
        physical_address="accountflow",
    )
    send_window: SendWindow = SendWindow(start=time(8, 0), end=time(18, 0))
    throttles: Throttles = Throttles()

    def campaign(self) -> Campaign:
        """The outbox campaign proposals are dispatched under (rendered from the talk, so
        the step's template is never read)."""
        return Campaign(
            name=TALKS_CAMPAIGN,
            description="Preliminary talk proposals",
            audience=Audience(),
            steps=[
                Step(
                    name="proposal",
                    channel=Channel.EMAIL,
                    delay_business_days=0,
                    template="talk-proposal",
                    stop_on=[],
                )
            ],
            send_window=self.send_window,
            throttles=self.throttles,
            sender=self.sender,
        )


class AccountsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    obligations: ObligationPolicy = ObligationPolicy()
    health: HealthPolicy
    actions: list[ActionRule] = []
    talks: TalkPolicy = TalkPolicy()

    @model_validator(mode="after")
    def _unique_rules(self) -> AccountsPolicy:
        ids = [r.id for r in self.actions]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"action rule ids must be unique: {dupes}")
        return self


class AccountSettings(BaseSettings):
    """``ACCOUNTFLOW_ACCOUNTS_*``: where the accounts policy comes from."""

    model_config = SettingsConfigDict(
        env_prefix="ACCOUNTFLOW_ACCOUNTS_", env_file=".env", extra="ignore"
    )

    policy_file: Path | None = None


@lru_cache
def get_account_settings() -> AccountSettings:
    return AccountSettings()


@lru_cache
def get_accounts_policy() -> AccountsPolicy:
    path = get_account_settings().policy_file or get_settings().config_dir / "accounts.yaml"
    return load_policy(path, AccountsPolicy)


def clear_accounts_caches() -> None:
    get_account_settings.cache_clear()
    get_accounts_policy.cache_clear()
