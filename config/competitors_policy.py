"""Which competitors we watch, the pages that carry their client policy, and our own policy.

Validated on load (through ``load_policy``) because a typo in a URL or a policy point would
otherwise show up only as a page that is never fetched or a row missing from the weekly
comparison. ``ACCOUNTFLOW_COMPETITORS_*`` settings say where the file is and how people
are told about a change.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.policy_loader import load_policy
from config.settings import EmailMode, get_settings


class PolicyPoint(StrEnum):
    """The points of a client policy that the watch classifies changes into."""

    PRICE = "price"
    DISCOUNT = "discount"
    PAYMENT_TERMS = "payment_terms"
    DELIVERY_TIME = "delivery_time"
    WARRANTY = "warranty"
    RETURNS = "returns"
    SUPPORT_HOURS = "support_hours"
    LOYALTY = "loyalty"


class WatchedPage(BaseModel):
    """One page (HTML or PDF) and the policy points it is expected to state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=8)
    points: list[PolicyPoint] = []
    label: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        return value


class Competitor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=1)
    pages: list[WatchedPage] = Field(min_length=1)


class FetchPolicy(BaseModel):
    """Politeness and fault bounds of the fetcher (see ``connectors/web_pages.py``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_agent: str = Field(min_length=8)
    requests_per_host_per_minute: int = Field(default=30, ge=1, le=600)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=15.0, gt=0)
    # A page that trickles bytes slower than this in total is "slow", whatever the read timeout.
    total_timeout_seconds: float = Field(default=30.0, gt=0)
    max_bytes: int = Field(default=5_000_000, ge=1024)
    max_redirects: int = Field(default=5, ge=0, le=30)
    retries: int = Field(default=2, ge=0, le=10)
    backoff_factor: float = Field(default=0.5, ge=0)
    workers: int = Field(default=16, ge=1, le=128)


class CompetitorsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fetch: FetchPolicy
    ours: dict[PolicyPoint, str] = Field(
        description="Our own policy on each point, as a sentence the report puts side by side."
    )
    competitors: list[Competitor] = []

    @model_validator(mode="after")
    def _unique(self) -> CompetitorsPolicy:
        ids = [c.id for c in self.competitors]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"competitor ids must be unique: {dupes}")
        seen: dict[str, str] = {}
        for c in self.competitors:
            for page in c.pages:
                if page.url in seen:
                    raise ValueError(
                        f"page {page.url!r} is listed by both {seen[page.url]!r} and {c.id!r}"
                    )
                seen[page.url] = c.id
        return self

    def by_id(self) -> dict[str, Competitor]:
        return {c.id: c for c in self.competitors}


class CompetitorSettings(BaseSettings):
    """``ACCOUNTFLOW_COMPETITORS_*``: the policy file and how the team is told of a change."""

    model_config = SettingsConfigDict(
        env_prefix="ACCOUNTFLOW_COMPETITORS_", env_file=".env", extra="ignore"
    )

    file: Path | None = None
    # The team (head and account managers) is the complaints' team file unless set here.
    team_file: Path | None = None
    # auto: SMTP when ACCOUNTFLOW_SMTP__* is configured, else .eml files under the data dir.
    email: EmailMode = "auto"
    email_from: str = "accountflow@localhost"
    outbox_dir: Path | None = None


@lru_cache
def get_competitor_settings() -> CompetitorSettings:
    return CompetitorSettings()


@lru_cache
def get_competitors_policy() -> CompetitorsPolicy:
    own = get_competitor_settings()
    return load_policy(
        own.file or get_settings().config_dir / "competitors.yaml", CompetitorsPolicy
    )


def clear_caches() -> None:
    """Forget settings and the policy (tests, and long-lived workers after an edit)."""
    get_competitor_settings.cache_clear()
    get_competitors_policy.cache_clear()
