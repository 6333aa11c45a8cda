"""Tell mail a machine sent (bounces, receipts, feedback-loop reports, notices) from mail a
person wrote.

Machine mail never opens a complaint and never becomes a contact: a mailer-daemon filed as
a lead pollutes the client database, and a bounce filed as a complaint escalates to the
head of the company. The signals here are the ones mail systems set on purpose (RFC 3464
reports, RFC 3834 Auto-Submitted, the null return path of RFC 5321 section 4.5.5), so they
are decisive, unlike wording.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.message import Message

# Local parts (and display names) that mail systems send their own reports from.
DAEMON_LOCAL_PARTS = frozenset(
    {
        "mailer-daemon",
        "mailer_daemon",
        "mailerdaemon",
        "mail-daemon",
        "maildaemon",
        "mdaemon",
        "postmaster",
        "double-bounce",
        "mail.delivery.system",
    }
)
_DAEMON_NAME = re.compile(
    r"^\W*(mail(er)?[ _-]?daemon|postmaster|mail delivery (subsystem|system|service)|"
    r"microsoft outlook|internet mail delivery|delivery status notification|"
    r"mail administrator|system administrator)\b",
    re.IGNORECASE,
)
# Subjects that only delivery software writes (several languages; checked on reports
# whose From is missing, so a person's "Re: delivery failed?" never gets here alone).
_REPORT_SUBJECT = re.compile(
    r"(undeliver|undelivered|delivery (status|failure|has failed|notification|problem)|"
    r"returned mail|mail delivery failed|failure notice|non[- ]?delivery|nondeliverable|"
    r"could not be delivered|delivery report|mail system error|rejected|warning: could not|"
    r"message not delivered|unzustellbar|non remis|no entregado|nao entregue|"
    r"abuse report|complaint about message|fbl)",
    re.IGNORECASE,
)
REPORT_TYPES = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "message/xdelivery-status",
        "message/feedback-report",
        "message/disposition-notification",
    }
)


def is_daemon(address: str, name: str | None = None) -> bool:
    """A mailer-daemon or postmaster address, or a sender named like one."""
    local = address.split("@", 1)[0].strip().strip("<>\"'").lower()
    if local in DAEMON_LOCAL_PARTS:
        return True
    return bool(name and _DAEMON_NAME.search(name))


def is_null_sender(return_path: str | None) -> bool:
    """``Return-Path: <>``: RFC 5321 section 4.5.5's mark of a report that must not bounce."""
    if return_path is None:
        return False
    value = return_path.strip()
    return value in ("<>", "") or value.replace(" ", "") == "<>"


def machine_signals(
    headers: Mapping[str, str], from_address: str, from_name: str | None
) -> tuple[str, ...]:
    """Every decisive sign that a machine sent this message, by name (empty: a person).

    ``headers`` are lower-cased names as ``ParsedMail.headers`` holds them.
    """
    found: list[str] = []
    if is_null_sender(headers.get("return-path")):
        found.append("null_sender")
    if not from_address:
        found.append("no_sender")
    elif is_daemon(from_address, from_name):
        found.append("daemon_sender")
    content_type = headers.get("content-type", "").lower()
    if content_type.startswith("multipart/report"):
        found.append("multipart_report")
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and not auto.startswith("no"):
        found.append("auto_submitted")
    if headers.get("x-failed-recipients", "").strip():
        found.append("x_failed_recipients")
    return tuple(found)


def reads_as_report(msg: Message) -> bool:
    """A message without a usable From that is still a delivery or feedback report.

    Mailer-daemons often send no From at all, or ``From: MAILER-DAEMON`` without a domain;
    that is normal for them (RFC 3464 sets no rule on From), so such a message is read as
    the report it is, not rejected as malformed. Mail without a From that shows none of
    these signs stays malformed.
    """
    content_type = msg.get_content_type()
    if content_type == "multipart/report":
        return True
    if is_null_sender(_header(msg, "return-path")):
        return True
    if _header(msg, "x-failed-recipients"):
        return True
    raw_from = _header(msg, "from") or ""
    if raw_from and is_daemon(raw_from.rsplit("<", 1)[-1].strip(">"), raw_from):
        return True
    auto = (_header(msg, "auto-submitted") or "").lower()
    subject = _header(msg, "subject") or ""
    if auto and not auto.startswith("no") and _REPORT_SUBJECT.search(subject):
        return True
    if msg.is_multipart():
        for part in msg.walk():
            if part.get_content_type() in REPORT_TYPES:
                return True
    return bool(_REPORT_SUBJECT.search(subject)) and _header(msg, "from") is None


def _header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    return None if value is None else str(value)
