"""The email that tells a person about an escalation (the webhook body is ``escalation_message``).

The Message-ID is derived from the escalation's idempotency key, so if an operator ever
re-sends one by hand, mail clients thread it with the first instead of showing two alarms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime

from config.team_policy import TeamPolicy
from connectors.smtp_sender import OutgoingEmail
from tasks.complaints.escalation import escalation_message


def escalation_email(
    row: Mapping[str, object], team: TeamPolicy, sender: str, now: datetime
) -> OutgoingEmail | None:
    """One plain-text email to the escalation's recipient; None if they have no address."""
    recipient = team.by_id.get(str(row["recipient_id"]))
    if recipient is None or not recipient.email:
        return None
    text = str(escalation_message(row, team)["text"])
    clock = str(row["clock"]).replace("_", " ")
    due = row.get("due_at")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient.email
    msg["Subject"] = (
        f"[SLA {row['kind']}] complaint {row['complaint_id']}: {clock} (level {row['level']})"
    )
    msg["Date"] = format_datetime(now.astimezone(UTC))
    digest = hashlib.sha256(str(row["idempotency_key"]).encode()).hexdigest()[:24]
    domain = sender.rpartition("@")[2] or "localhost"
    message_id = f"<escalation.{digest}@{domain}>"
    msg["Message-ID"] = message_id
    msg["X-Accountflow-Escalation"] = str(row["idempotency_key"])
    msg.set_content(
        f"{text}\n\nThe {clock} deadline was {due} (UTC).\n"
        "Reply to the client, or record the state with "
        f"`accountflow complaints respond|wait|resolve {row['complaint_id']}`.\n"
    )
    return OutgoingEmail(
        outbox_id=int(str(row["id"])),
        raw=msg.as_bytes(policy=email_policy.SMTP),
        envelope_from=sender,
        recipients=(recipient.email,),
        message_id=message_id,
    )
