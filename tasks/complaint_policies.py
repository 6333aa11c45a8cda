"""Complaint settings and the team/SLA policies, each read once through a cached getter.

The settings live here rather than in ``config/settings.py`` while the capability is young
(env prefix ``ACCOUNTFLOW_COMPLAINTS_``); the policies default to ``config/team.yaml`` and
``config/sla.yaml`` under the configured config dir, and a deployment (or a test) can point
at its own files without copying the rest of the config dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from config.policy_loader import load_policy
from config.settings import get_settings
from config.sla_policy import SlaPolicy
from config.team_policy import TeamPolicy
from tasks.business_hours import BusinessCalendar
from tasks.sla_clock import team_calendars

EmailMode = Literal["auto", "smtp", "dir", "off"]


class ComplaintSettings(BaseSettings):
    """``ACCOUNTFLOW_COMPLAINTS_*``: where policies come from and how people are told."""

    model_config = SettingsConfigDict(
        env_prefix="ACCOUNTFLOW_COMPLAINTS_", env_file=".env", extra="ignore"
    )

    team_file: Path | None = None
    sla_file: Path | None = None
    # auto: SMTP when ACCOUNTFLOW_SMTP__* is configured, else .eml files under the data dir.
    email: EmailMode = "auto"
    email_from: str = "accountflow@localhost"
    outbox_dir: Path | None = None
    webhook_attempts: int = 5
    webhook_backoff_seconds: float = 1.0


@lru_cache
def get_complaint_settings() -> ComplaintSettings:
    return ComplaintSettings()


@dataclass(frozen=True)
class ComplaintPolicies:
    team: TeamPolicy
    sla: SlaPolicy
    calendars: dict[str, BusinessCalendar]


@lru_cache
def get_complaint_policies() -> ComplaintPolicies:
    """Team, SLA and one business calendar per manager; calendars are costly, build once."""
    cfg, own = get_settings().config_dir, get_complaint_settings()
    team = load_policy(own.team_file or cfg / "team.yaml", TeamPolicy)
    sla = load_policy(own.sla_file or cfg / "sla.yaml", SlaPolicy)
    return ComplaintPolicies(team=team, sla=sla, calendars=team_calendars(team, sla))


def clear_caches() -> None:
    """Forget settings and policies (tests and long-lived workers after a policy edit)."""
    get_complaint_settings.cache_clear()
    get_complaint_policies.cache_clear()
