"""Preliminary talks: which slots to offer, the proposal email, and what an RSVP means.

Slots lie inside the owner's working hours (their calendar: zone, hours, holidays) and at a
civil hour for the client (08:00-18:00 in the client's zone), one per business day, starting
a few business hours ahead so the client has time to answer. Each slot is its own iCalendar
REQUEST (``build_ics``, as outreach invitations are) whose UID names the talk and the slot:
the inbox reads that UID back from a METHOD:REPLY, which is how an answer finds its talk.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formataddr
from zoneinfo import ZoneInfo

import numpy as np

from config.campaign_policy import InvitationEvent
from connectors.smtp_sender import OutgoingEmail
from tasks.complaints.business_hours import (
    BusinessCalendar,
    add_business_minutes,
    business_minutes_between,
)
from tasks.outreach.rendering import build_ics

CLIENT_DAY = (8 * 60, 18 * 60)  # minutes after local midnight a client may be asked to meet
_UID = re.compile(r"^talk-(\d+)-(\d+)@")
ANSWERS = ("accepted", "tentative", "declined")


def propose_slots(
    calendar: BusinessCalendar,
    client_timezone: str,
    as_of: datetime,
    count: int,
    duration_minutes: int,
    earliest_business_hours: float,
) -> list[datetime]:
    """``count`` slot starts (UTC), one per owner business day, on the half hour.

    Looks at most 30 days ahead; fewer slots come back only when the two calendars have no
    common civil hours that long (a client twelve hours away from a short working day).
    """
    client = ZoneInfo(client_timezone)
    owner = ZoneInfo(calendar.timezone)
    start = add_business_minutes(calendar, as_of, int(earliest_business_hours * 60))
    t = start.replace(second=0, microsecond=0)
    t += timedelta(minutes=(30 - t.minute % 30) % 30)
    slots: list[datetime] = []
    used_days: set[object] = set()
    end = as_of + timedelta(days=30)
    while len(slots) < count and t < end:
        local_day = t.astimezone(owner).date()
        if local_day in used_days:
            t += timedelta(minutes=30)
            continue
        finish = t + timedelta(minutes=duration_minutes)
        client_local = t.astimezone(client)
        minutes = client_local.hour * 60 + client_local.minute
        inside_owner = business_minutes_between(calendar, t, finish) == duration_minutes
        civil = CLIENT_DAY[0] <= minutes and minutes + duration_minutes <= CLIENT_DAY[1]
        if inside_owner and civil:
            slots.append(t.astimezone(UTC))
            used_days.add(local_day)
        t += timedelta(minutes=30)
    return slots


def slot_uid(talk_id: int, index: int, domain: str) -> str:
    return f"talk-{talk_id}-{index}@{domain}"


def parse_uid(uid: str | None) -> tuple[int, int] | None:
    """(talk id, slot index) from a slot's UID, or None if it is not one of ours."""
    match = _UID.match(uid or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _part(content_type: str, payload: bytes, extra: str = "") -> bytes:
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    head = f"Content-Type: {content_type}\r\n{extra}Content-Transfer-Encoding: base64\r\n\r\n"
    return head.encode() + encoded


def proposal_email(
    *,
    talk_id: int,
    outbox_id: int,
    message_id: str,
    slots: Sequence[datetime],
    duration_minutes: int,
    company: str,
    client_name: str,
    client_address: str,
    client_timezone: str,
    owner_name: str,
    sender: str,
    now: datetime,
) -> OutgoingEmail:
    """The proposal: a text listing the slots in the client's time, and one invitation
    (``text/calendar; method=REQUEST``) per slot, so a click on any one answers it."""
    zone = ZoneInfo(client_timezone)
    domain = sender.rpartition("@")[2] or "localhost"
    lines = [
        f"Dear {client_name},",
        "",
        f"{owner_name} would like to hold a short preliminary talk with {company}.",
        f"Would one of these times suit you ({client_timezone})?",
        "",
    ]
    parts: list[bytes] = []
    for k, start in enumerate(slots):
        local = start.astimezone(zone)
        lines.append(f"  {k + 1}. {local:%A %d %B %Y, %H:%M} ({duration_minutes} minutes)")
        event = InvitationEvent(
            title=f"Preliminary talk: {company} and {owner_name}",
            starts_at=start,
            ends_at=start + timedelta(minutes=duration_minutes),
            location="Video call (link follows on acceptance)",
        )
        ics = build_ics(
            event,
            uid=slot_uid(talk_id, k, domain),
            organizer_name=owner_name,
            organizer_address=sender,
            attendee_name=client_name,
            attendee_address=client_address,
            stamp=now,
        )
        parts.append(
            _part(
                'text/calendar; charset="utf-8"; method=REQUEST',
                ics,
                f'Content-Disposition: attachment; filename="slot-{k + 1}.ics"\r\n',
            )
        )
    lines += ["", "Accept the invitation of the time that suits you, or reply to this email.", ""]
    lines.append(owner_name)
    text = "\r\n".join(lines).encode()
    boundary = f"=_talk_{talk_id}"
    body = (
        b"".join(
            f"--{boundary}\r\n".encode() + p + b"\r\n"
            for p in [_part('text/plain; charset="utf-8"', text), *parts]
        )
        + f"--{boundary}--\r\n".encode()
    )
    headers = [
        f"From: {formataddr((owner_name, sender))}",
        f"To: {formataddr((client_name, client_address))}",
        f"Subject: Preliminary talk: {company}",
        f"Date: {format_datetime(now.astimezone(UTC))}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
    ]
    raw = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
    return OutgoingEmail(
        outbox_id=outbox_id,
        raw=raw,
        envelope_from=sender,
        recipients=(client_address,),
        message_id=message_id,
    )


def answer_of(status: str, answer: str) -> str | None:
    """The talk's status after an RSVP, or None when the answer changes nothing.

    An acceptance of any slot wins over a decline of another (a client declining the two
    slots they did not pick is still coming); a recorded outcome is never overwritten.
    """
    if answer not in ANSWERS or status not in ("proposed", "tentative", "declined", "accepted"):
        return None
    if status == "accepted" and answer != "accepted":
        return None
    return answer if answer != status else None


def slot_starts(values: Sequence[str]) -> list[datetime]:
    return [datetime.fromisoformat(v) for v in values]


def spread_days(slots: Sequence[datetime], zone: str) -> int:
    """How many distinct local days the slots fall on (tests and the run's summary)."""
    return int(np.unique([s.astimezone(ZoneInfo(zone)).date().toordinal() for s in slots]).size)
