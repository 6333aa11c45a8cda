"""How people on the team are told: which channels a run uses and the mail sender for them.

Complaint escalations and obligation notices go the same way, so that an operator configures
SMTP or the webhook once (``ACCOUNTFLOW_SMTP__*``, ``ACCOUNTFLOW_WEBHOOK_URL``,
``ACCOUNTFLOW_COMPLAINTS_EMAIL``) and every alarm follows. The sending loops are shared too:
each capability gives its claim and record (``connectors.database.notify_store``) and how a
row becomes an email or a webhook body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from prefect import get_run_logger
from pydantic import BaseModel

from config.settings import get_complaint_settings, get_settings
from config.team_policy import TeamPolicy
from connectors.database.engine import session_scope
from connectors.database.notify_store import AlarmTable
from connectors.smtp_sender import (
    MailSender,
    OutboxDirSender,
    OutgoingEmail,
    SendOutcome,
    SmtpSender,
)
from connectors.webhook import WebhookConfigError, WebhookSender
from tasks.complaints.policies import get_complaint_policies

NOTIFY_BATCH = 500


def notification_channels() -> tuple[str, str]:
    """Which email and webhook channels this run uses (``off`` ones store ``skipped``)."""
    own, settings = get_complaint_settings(), get_settings()
    email = own.email
    if email == "auto":
        email = "smtp" if "smtp" in settings.model_fields_set else "dir"
    webhook = "on" if settings.webhook_url is not None else "off"
    return email, webhook


def mail_sender(email: str, folder: str) -> tuple[MailSender, Callable[[], None] | None]:
    """SMTP, or ``.eml`` files under ``<data dir>/outbox/<folder>`` (or the configured dir)."""
    settings, own = get_settings(), get_complaint_settings()
    if email == "smtp":
        sender = SmtpSender(settings.smtp)
        return sender, sender.close
    directory = own.outbox_dir or settings.data_dir / "outbox" / folder
    return OutboxDirSender(Path(directory)), None


@dataclass
class Notified:
    sent: int = 0
    failed: int = 0


def send_pending_emails(
    email: str,
    folder: str,
    alarms: AlarmTable,
    render: Callable[[dict[str, Any]], OutgoingEmail | None],
    batch: int = NOTIFY_BATCH,
) -> Notified:
    """Claim, send and record pending alarms by email, a batch at a time.

    ``render`` gives None for a row whose recipient has no address (recorded ``skipped``).
    A ``retry`` outcome stops the run: the server is unwell, the rest waits for the next.
    """
    done = Notified()
    if email == "off":
        return done
    sender, close = mail_sender(email, folder)
    try:
        while True:
            with session_scope() as s:
                claimed = alarms.claim(s, "email", batch)
            if not claimed:
                break
            results: list[dict[str, Any]] = []
            messages = []
            for row in claimed:
                mail = render(row)
                if mail is None:
                    results.append({"id": row["id"], "outcome": "skipped", "error": "no email"})
                else:
                    messages.append(mail)
            for r in sender.send(messages):
                ok = r.outcome == SendOutcome.SENT
                done.sent += ok
                done.failed += not ok
                results.append(
                    {
                        "id": r.outbox_id,
                        "outcome": r.outcome.value,
                        "error": None if ok else r.detail[:500],
                        "delivered": ok,
                    }
                )
            with session_scope() as s:
                alarms.record(s, "email", results)
            if any(r["outcome"] == SendOutcome.RETRY.value for r in results):
                break
    finally:
        if close is not None:
            close()
    return done


def post_pending_webhooks(
    webhook: str,
    alarms: AlarmTable,
    message: Callable[[dict[str, Any]], dict[str, Any]],
    batch: int = NOTIFY_BATCH,
) -> Notified:
    """Claim, POST and record pending alarms (the sender retries with backoff); once the
    peer gives up, the rest of the batch is released untouched, no attempt counted."""
    done = Notified()
    if webhook == "off":
        return done
    own = get_complaint_settings()
    with requests.Session() as http:
        try:
            sender = WebhookSender.from_settings(
                get_settings(),
                http,
                max_attempts=own.webhook_attempts,
                backoff_seconds=own.webhook_backoff_seconds,
            )
        except WebhookConfigError as exc:
            get_run_logger().error("webhook not used: %s", exc)
            return done
        while True:
            with session_scope() as s:
                claimed = alarms.claim(s, "webhook", batch)
            if not claimed:
                break
            results = []
            gave_up = False
            for row in claimed:
                if gave_up:
                    results.append({"id": row["id"], "outcome": row["previous"], "attempts": 0})
                    continue
                r = sender.send(message({k: v for k, v in row.items() if k != "previous"}))
                done.sent += r.delivered
                done.failed += not r.delivered
                gave_up = not r.delivered
                results.append(
                    {
                        "id": row["id"],
                        "outcome": r.outcome,
                        "error": r.error,
                        "attempts": r.attempts,
                        "delivered": r.delivered,
                    }
                )
            with session_scope() as s:
                alarms.record(s, "webhook", results)
            if gave_up:
                break
    return done


class NotifyCounts(BaseModel):
    """The channels a run notifies on and what its alarms did there; the summary of every
    run that notifies people (escalations, obligation notices) extends it."""

    emails_sent: int = 0
    emails_failed: int = 0
    webhooks_delivered: int = 0
    webhooks_failed: int = 0
    pending_after: int = 0
    email_channel: str = ""
    webhook_channel: str = ""

    def channel_lines(self) -> list[str]:
        """The two lines a command prints about the channels."""
        return [
            f"  email          {self.emails_sent:>8} sent, {self.emails_failed} failed"
            f"  ({self.email_channel})",
            f"  webhook        {self.webhooks_delivered:>8} delivered,"
            f" {self.webhooks_failed} failed ({self.webhook_channel})",
        ]


Summary = TypeVar("Summary", bound=NotifyCounts)
EmailOf = Callable[[dict[str, Any], TeamPolicy, str, datetime], OutgoingEmail | None]
MessageOf = Callable[[dict[str, Any], TeamPolicy], dict[str, Any]]


def notify_pending(
    summary: Summary, folder: str, alarms: AlarmTable, email_of: EmailOf, message_of: MessageOf
) -> Summary:
    """Both channels of ``summary`` for every pending alarm; the summary with the counts.

    ``email_of`` renders a row for its recipient on the team (None: no address), from the
    configured sender; ``message_of`` gives the webhook body.
    """
    team, now = get_complaint_policies().team, datetime.now(UTC)
    sender = get_complaint_settings().email_from
    mail = send_pending_emails(
        summary.email_channel, folder, alarms, lambda row: email_of(row, team, sender, now)
    )
    hook = post_pending_webhooks(summary.webhook_channel, alarms, lambda row: message_of(row, team))
    with session_scope() as s:
        left = alarms.pending(s)
    counts = {
        "emails_sent": mail.sent,
        "emails_failed": mail.failed,
        "webhooks_delivered": hook.sent,
        "webhooks_failed": hook.failed,
        "pending_after": left,
    }
    return summary.model_copy(update=counts)
