"""The words that tell a manager an obligation needs them: the email and the webhook body.

The Message-ID comes from the notice's idempotency key, as escalation emails' do, so a hand
re-send threads with the first instead of showing two alarms.
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

_STATE_WORDS = {
    "due_soon": "is due soon",
    "late": "is late",
    "missed": "was missed",
}


def describe(row: Mapping[str, object]) -> str:
    """``delivery of 40 x pallets`` / ``service level: 4h response`` / ``renewal``."""
    kind = str(row.get("kind") or "obligation")
    item, qty, target = row.get("item"), row.get("quantity"), row.get("target")
    if kind == "delivery" and item:
        amount = f"{float(str(qty)):g} x " if qty is not None else ""
        return f"delivery of {amount}{item}"
    if target:
        return f"{kind.replace('_', ' ')}: {target}"
    return kind.replace("_", " ")


def notice_text(row: Mapping[str, object], team: TeamPolicy) -> str:
    recipient = team.by_id.get(str(row["recipient_id"]))
    who = recipient.name if recipient else str(row["recipient_id"])
    owner = team.by_id.get(str(row["owner_id"]))
    standing_in = (
        f" (standing in for {owner.name})"
        if owner is not None and str(row["owner_id"]) != str(row["recipient_id"])
        else ""
    )
    state = _STATE_WORDS.get(str(row["state"]), str(row["state"]))
    due = row.get("due_date")
    when = f", due {due}" if due else ""
    return (
        f"Contract {row['reference']} ({row['company']}): {describe(row)} {state}{when}. "
        f"For {who}{standing_in}."
    )


def notice_message(row: Mapping[str, object], team: TeamPolicy) -> dict[str, object]:
    """Slack/Teams-style webhook body; company and contract only, no personal data."""
    return {
        "text": notice_text(row, team),
        "obligation_notice": {k: str(v) for k, v in row.items() if k != "previous"},
    }


def notice_email(
    row: Mapping[str, object], team: TeamPolicy, sender: str, now: datetime
) -> OutgoingEmail | None:
    """One plain-text email to the notice's recipient; None if they have no address."""
    recipient = team.by_id.get(str(row["recipient_id"]))
    if recipient is None or not recipient.email:
        return None
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient.email
    state = str(row["state"]).replace("_", " ")
    msg["Subject"] = f"[obligation {state}] {row['reference']}: {describe(row)}"
    msg["Date"] = format_datetime(now.astimezone(UTC))
    digest = hashlib.sha256(str(row["idempotency_key"]).encode()).hexdigest()[:24]
    domain = sender.rpartition("@")[2] or "localhost"
    message_id = f"<obligation.{digest}@{domain}>"
    msg["Message-ID"] = message_id
    msg["X-Accountflow-Obligation"] = str(row["idempotency_key"])
    msg.set_content(
        f"{notice_text(row, team)}\n\n"
        "Record what happened with `accountflow contracts events FILE` "
        "(delivered, partially_delivered, completed, sla_met, sla_missed, ...).\n"
    )
    return OutgoingEmail(
        outbox_id=int(str(row["id"])),
        raw=msg.as_bytes(policy=email_policy.SMTP),
        envelope_from=sender,
        recipients=(recipient.email,),
        message_id=message_id,
    )
