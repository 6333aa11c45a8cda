"""The team and SLA policies, read once through a cached getter.

They default to ``config/team.yaml`` and ``config/sla.yaml`` under the configured config
dir; a deployment (or a test) can point at its own files (``ACCOUNTFLOW_COMPLAINTS_TEAM_FILE``
and ``..._SLA_FILE``) without copying the rest of the config dir.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from config.policy_loader import load_policy
from config.settings import get_complaint_settings, get_settings
from config.sla_policy import SlaPolicy
from config.team_policy import TeamPolicy
from tasks.complaints.business_hours import BusinessCalendar
from tasks.complaints.sla_clock import team_calendars


@dataclass(frozen=True)
class ComplaintPolicies:
    team: TeamPolicy
    sla: SlaPolicy
    calendars: dict[str, BusinessCalendar]


def get_complaint_policies() -> ComplaintPolicies:
    """Team, SLA and one business calendar per manager; calendars are costly, build once
    per version of the team. The team is the seed file with the changes recorded through
    `accountflow team` (appointments, dismissals, deputies, absences) applied."""
    from tasks.governance.service import team_version

    return _policies(team_version())


@lru_cache(maxsize=4)
def _policies(team_version: int) -> ComplaintPolicies:
    cfg, own = get_settings().config_dir, get_complaint_settings()
    team = load_policy(own.team_file or cfg / "team.yaml", TeamPolicy)
    if team_version:
        from connectors.database.engine import session_scope
        from tasks.governance.service import team_in_force

        with session_scope() as s:
            team = team_in_force(s, team)
    sla = load_policy(own.sla_file or cfg / "sla.yaml", SlaPolicy)
    return ComplaintPolicies(team=team, sla=sla, calendars=team_calendars(team, sla))


def clear_caches() -> None:
    """Forget settings and policies (tests and long-lived workers after a policy edit)."""
    get_complaint_settings.cache_clear()
    _policies.cache_clear()
