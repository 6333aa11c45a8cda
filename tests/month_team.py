"""The team and the month the two month-long oracle simulations share (complaints' SLA
clocks, accounts' obligation watch): five managers in three zones and three holiday
countries, split working hours and a Saturday, a regional holiday, team leads, absences
that chain deputies into a loop, and a month that spans both DST ends. One team for both,
so a calendar or delegation rule both capabilities rely on is exercised the same way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from config.sla_policy import HolidayCalendar
from config.team_policy import TeamPolicy

START = datetime(2026, 10, 22, tzinfo=UTC)  # spans both DST ends (25 Oct EU, 1 Nov US)
DAYS = 31
# A bridge day the company gives its Brazilian staff, beyond the public holidays.
BR_DAYS_OFF = {"BR": HolidayCalendar(extra_dates=[date(2026, 10, 30)])}

MONTH_TEAM = TeamPolicy.model_validate(
    {
        "head": "hq",
        "managers": [
            {
                "id": "hq",
                "name": "HQ",
                "timezone": "Europe/Berlin",
                "holiday_country": "DE",
                "holiday_subdivision": "BY",
            },
            {
                "id": "sp1",
                "name": "SP1",
                "timezone": "America/Sao_Paulo",
                "holiday_country": "BR",
                "holiday_subdivision": "SP",
                "deputy": "sp2",
                "team_lead": "hq",
                "working_hours": {
                    d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")
                },
                "absences": [{"start": "2026-11-02", "end": "2026-11-06", "reason": "vacation"}],
            },
            {
                "id": "sp2",
                "name": "SP2",
                "timezone": "America/Sao_Paulo",
                "holiday_country": "BR",
                "deputy": "ny1",
                "absences": [{"start": "2026-11-04", "end": "2026-11-05", "reason": "sick"}],
            },
            {
                "id": "ny1",
                "name": "NY1",
                "timezone": "America/New_York",
                "holiday_country": "US",
                "deputy": "ny2",
                "team_lead": "sp1",
                "absences": [{"start": "2026-11-16", "end": "2026-11-18", "reason": "conference"}],
            },
            {
                "id": "ny2",
                "name": "NY2",
                "timezone": "America/New_York",
                "holiday_country": "US",
                "deputy": "ny1",
                "absences": [{"start": "2026-11-16", "end": "2026-11-17", "reason": "vacation"}],
            },
            {
                "id": "de1",
                "name": "DE1",
                "timezone": "Europe/Berlin",
                "holiday_country": "DE",
                "holiday_subdivision": "BY",
                "deputy": "sp1",
                "working_hours": {
                    "mon": ["07:30-16:00"],
                    "tue": ["07:30-16:00"],
                    "wed": ["07:30-16:00"],
                    "thu": ["07:30-16:00"],
                    "fri": ["07:30-13:00"],
                    "sat": ["09:00-11:00"],
                },
                "absences": [{"start": "2026-10-28", "end": "2026-10-30", "reason": "training"}],
            },
        ],
    }
)


def stand_in(manager_id: str, when: datetime) -> str:
    """Who acts for ``manager_id`` at ``when``: the naive walk along deputies, the head when
    the walk ends or loops."""
    seen = set()
    while MONTH_TEAM.by_id[manager_id].is_absent(when):
        seen.add(manager_id)
        deputy = MONTH_TEAM.by_id[manager_id].deputy
        if deputy is None or deputy in seen:
            return MONTH_TEAM.head
        manager_id = deputy
    return manager_id
