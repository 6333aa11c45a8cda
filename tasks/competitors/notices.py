"""The email that tells the head and the account managers about a material policy change.

It goes through the same senders as the complaint escalations (SMTP, or .eml files under
the data dir), one message per change to everyone concerned; the Message-ID derives from
the change id, so a resend by hand threads with the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from config.team_policy import TeamPolicy
from connectors.smtp_sender import OutgoingEmail


def recipients(team: TeamPolicy) -> tuple[str, ...]:
    """The head first, then every account manager with an address, each once."""
    ordered = [team.by_id[team.head], *(m for m in team.managers if m.id != team.head)]
    seen: list[str] = []
    for manager in ordered:
        if manager.email and manager.email not in seen:
            seen.append(manager.email)
    return tuple(seen)


def change_email(
    change: Mapping[str, Any],
    competitor_name: str,
    team: TeamPolicy,
    sender: str,
    now: datetime,
) -> OutgoingEmail | None:
    """One plain-text message about one change; None when nobody has an address."""
    to = recipients(team)
    if not to:
        return None
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    points = ", ".join(str(p).replace("_", " ") for p in change.get("points") or []) or "policy"
    msg["Subject"] = f"[competitors] {competitor_name} changed {points}"
    msg["Date"] = format_datetime(now.astimezone(UTC))
    digest = hashlib.sha256(f"competitor-change:{change['id']}".encode()).hexdigest()[:24]
    domain = sender.rpartition("@")[2] or "localhost"
    message_id = f"<competitor-change.{digest}@{domain}>"
    msg["Message-ID"] = message_id
    msg["X-Accountflow-Competitor-Change"] = str(change["id"])
    msg.set_content(
        f"{competitor_name} changed its client policy on {change['url']}\n\n"
        f"{change['summary']}\n\nWhat the page says now against before:\n\n{change['diff']}\n\n"
        "The weekly comparison: `accountflow report competitors`; every change: "
        "`accountflow export competitor-changes`.\n"
    )
    return OutgoingEmail(
        outbox_id=int(str(change["id"])),
        raw=msg.as_bytes(policy=email_policy.SMTP),
        envelope_from=sender,
        recipients=to,
        message_id=message_id,
    )
