"""Shared set-up for the complaint tests: a small all-UTC team and SLA, written to temp files.

UTC calendars with 09:00-17:00 working hours and no holidays keep the expected due times
readable (the business-hours arithmetic itself is pinned by the unit tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

HOURS = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
TEAM: dict[str, Any] = {
    "head": "boss",
    "default_working_hours": HOURS,
    "managers": [
        {"id": "boss", "name": "Boss", "email": "boss@example.com", "takes_new_accounts": False},
        {
            "id": "ana",
            "name": "Ana",
            "email": "ana@example.com",
            "territories": ["BR-SP"],
            "accounts": ["Listed Account"],
            "deputy": "bia",
            "team_lead": "boss",
            # Monday 14 to Friday 18 December 2026.
            "absences": [{"start": "2026-12-14", "end": "2026-12-18", "reason": "vacation"}],
        },
        {
            "id": "bia",
            "name": "Bia",
            "email": "bia@example.com",
            "territories": ["DE"],
            "deputy": "caio",
            "team_lead": "boss",
            "absences": [{"start": "2026-12-14", "end": "2026-12-15", "reason": "sick"}],
        },
        {"id": "caio", "name": "Caio", "email": "caio@example.com", "deputy": "ana"},
    ],
}
SLA: dict[str, Any] = {
    "targets": {
        "critical": {"first_response_minutes": 60, "resolution_minutes": 240},
        "high": {"first_response_minutes": 120, "resolution_minutes": 480},
        "medium": {"first_response_minutes": 240, "resolution_minutes": 960},
        "low": {"first_response_minutes": 480, "resolution_minutes": 1920},
    },
    "default_calendar": {"timezone": "UTC", "working_hours": HOURS},
}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant in December 2026 (the 7th and the 14th are Mondays)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def complaint_policies(
    app_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Team and SLA from temp files; email off unless a test turns a channel on."""
    from config.settings import get_settings
    from tasks.complaints.policies import clear_caches

    team, sla = tmp_path / "team.yaml", tmp_path / "sla.yaml"
    team.write_text(yaml.safe_dump(TEAM))
    sla.write_text(yaml.safe_dump(SLA))
    monkeypatch.setenv("ACCOUNTFLOW_COMPLAINTS_TEAM_FILE", str(team))
    monkeypatch.setenv("ACCOUNTFLOW_COMPLAINTS_SLA_FILE", str(sla))
    monkeypatch.setenv("ACCOUNTFLOW_COMPLAINTS_EMAIL", "off")
    monkeypatch.delenv("ACCOUNTFLOW_WEBHOOK_URL", raising=False)
    clear_caches()
    get_settings.cache_clear()
    yield
    clear_caches()
    get_settings.cache_clear()
