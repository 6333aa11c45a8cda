"""How people on the team are told: which channels a run uses and the mail sender for them.

Complaint escalations and obligation notices go the same way, so that an operator configures
SMTP or the webhook once (``ACCOUNTFLOW_SMTP__*``, ``ACCOUNTFLOW_WEBHOOK_URL``,
``ACCOUNTFLOW_COMPLAINTS_EMAIL``) and every alarm follows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from config.settings import get_complaint_settings, get_settings
from connectors.smtp_sender import MailSender, OutboxDirSender, SmtpSender


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
