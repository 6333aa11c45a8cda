"""Slots for a preliminary talk, the proposal email, and what an RSVP does to a talk."""

from __future__ import annotations

import email
from datetime import UTC, date, datetime, timedelta
from email import policy
from zoneinfo import ZoneInfo

from icalendar import Calendar

from config.sla_policy import HolidayCalendar, SlaPolicy, SlaTarget
from config.team_policy import TeamPolicy
from tasks.accounts.talks import answer_of, parse_uid, proposal_email, propose_slots, slot_uid
from tasks.complaints.business_hours import business_minutes_between
from tasks.complaints.sla_clock import team_calendars

TEAM = TeamPolicy.model_validate(
    {
        "head": "clara",
        "managers": [
            {
                "id": "clara",
                "name": "Clara Weiss",
                "timezone": "Europe/Berlin",
                "holiday_country": "DE",
                "working_hours": {d: ["08:00-16:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
            }
        ],
    }
)
SLA = SlaPolicy(
    targets={
        s: SlaTarget(first_response_minutes=60, resolution_minutes=480)
        for s in ("low", "medium", "high", "critical")
    },
    holiday_calendars={"DE": HolidayCalendar(extra_dates=[date(2026, 12, 24)])},
)
CAL = team_calendars(TEAM, SLA)["clara"]


def test_slots_lie_in_the_owners_hours_at_civil_client_hours_one_per_business_day() -> None:
    # Tuesday 22 Dec 2026, 15:00 in Berlin; the client is in São Paulo (4 hours behind).
    as_of = datetime(2026, 12, 22, 14, 0, tzinfo=UTC)
    slots = propose_slots(CAL, "America/Sao_Paulo", as_of, 3, 30, 4)
    assert len(slots) == 3
    days = [s.astimezone(ZoneInfo("Europe/Berlin")).date() for s in slots]
    # 24 Dec is a company day off, 25-26 Dec are holidays, 27 Dec a Sunday.
    assert days == [date(2026, 12, 23), date(2026, 12, 28), date(2026, 12, 29)]
    for s in slots:
        end = s + timedelta(minutes=30)
        assert business_minutes_between(CAL, s, end) == 30  # all inside Clara's hours
        local = s.astimezone(ZoneInfo("America/Sao_Paulo"))
        assert local.hour >= 8 and (local.hour, local.minute) <= (17, 30)  # civil for the client


def test_a_client_twelve_hours_away_gets_fewer_slots_rather_than_a_night_call() -> None:
    slots = propose_slots(CAL, "Pacific/Auckland", datetime(2026, 12, 1, 9, tzinfo=UTC), 3, 60, 0)
    for s in slots:
        local = s.astimezone(ZoneInfo("Pacific/Auckland"))
        assert 8 <= local.hour < 18


def test_the_proposal_carries_one_invitation_per_slot_whose_uid_names_the_talk() -> None:
    slots = propose_slots(CAL, "America/Sao_Paulo", datetime(2026, 12, 1, 9, tzinfo=UTC), 3, 30, 4)
    mail = proposal_email(
        talk_id=7, outbox_id=7, message_id="<talk.7@acme.example>", slots=slots,
        duration_minutes=30, company="Cliente Ltda", client_name="Joana Prado",
        client_address="joana@cliente.example", client_timezone="America/Sao_Paulo",
        owner_name="Clara Weiss", sender="vendas@acme.example",
        now=datetime(2026, 12, 1, 9, tzinfo=UTC),
    )  # fmt: skip
    msg = email.message_from_bytes(mail.raw, policy=policy.default)
    invites = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert len(invites) == 3
    uids = [str(Calendar.from_ical(p.get_content()).walk("VEVENT")[0]["UID"]) for p in invites]
    assert uids == [slot_uid(7, k, "acme.example") for k in range(3)]
    assert [parse_uid(u) for u in uids] == [(7, 0), (7, 1), (7, 2)]
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_content()
    first = slots[0].astimezone(ZoneInfo("America/Sao_Paulo"))
    assert f"{first:%H:%M}" in text and "(America/Sao_Paulo)" in text


def test_an_acceptance_wins_and_a_recorded_outcome_is_never_overwritten() -> None:
    assert answer_of("proposed", "accepted") == "accepted"
    assert answer_of("proposed", "declined") == "declined"
    assert answer_of("declined", "accepted") == "accepted"
    assert answer_of("accepted", "declined") is None  # declining the other slots
    assert answer_of("held", "declined") is None
    assert parse_uid("event-2026-expo@accountflow.example") is None
