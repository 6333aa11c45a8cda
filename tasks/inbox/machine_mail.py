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
        "post_master",
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
# The subject Microsoft Exchange and other delivery software give a non-delivery report in
# the recipient system's language ("Undeliverable:" and its translations), and the words
# Japanese, Chinese and Korean providers use: specific enough to need no other sign.
LOCALISED_REPORT_SUBJECT = re.compile(
    r"^\s*(unzustellbar|non remis|no se puede entregar|n[aã]o (é possível )?entregue|"
    r"non recapitabile|onbestelbaar|olevererbart|kan inte levereras|ikke leveret|"
    r"kan ikke leveres|ei voitu toimittaa|niedostarczalne|nie można dostarczyć|"
    r"nedoručitelné|nedoručiteľné|kézbesíthetetlen|недоставляемое|не доставлено|"
    r"teslim edilemiyor|nepredat|neisporučivo|nedostavljivo|"
    r"配信不能|無法傳遞|无法投递|无法传递|배달되지 않음|배달 못함)\s*:|"
    r"(メール|mail) ?エラー|エラーメール|配信(エラー|失敗|不能)|不達|未達|送信できませんでした|"
    r"退信|投递失败|邮件.{0,4}(失败|退回)",
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
    if LOCALISED_REPORT_SUBJECT.search(subject) or written_by_delivery_software(msg):
        return True
    return bool(_REPORT_SUBJECT.search(subject)) and _header(msg, "from") is None


# The opening words mail transfer agents write into their own bounces (Postfix, Sendmail,
# Exim, qmail, Exchange, Domino, GroupWise, Gmail, Yahoo, Messaging Server, Courier, ...):
# how sisimai's MTA modules find where a report starts. No person writes them, so they mark
# a report even when its From and Subject look like anyone's.
_DELIVERY_SOFTWARE = re.compile(
    r"this is the mail system at host|i'?m sorry to have to inform you that your message|"
    r"-+ ?transcript of session follows ?-+|the original message was received at|"
    r"this message was created automatically by mail delivery software|"
    r"a message that you sent could not be delivered to one or more of its|"
    r"this is the qmail-send program at|i'?m afraid i wasn'?t able to deliver your message|"
    r"delivery to the following recipients? failed permanently|"
    r"delivery has failed to these recipients or groups|"
    r"your message did not reach some or all of the intended recipients|"
    r"this is an automatically generated delivery status notification|"
    r"the following addresses had (permanent fatal|delivery) (errors|problems)|"
    r"this report relates to a message you sent with the following header fields|"
    r"your message (was not|could not be|cannot be) delivered to the following recipients|"
    r"sorry, we were unable to deliver your message to the following address|"
    r"this message was undeliverable due to the following reason|"
    r"unable to deliver (the |your )?message to the following (address|recipient)|"
    r"could not deliver (the |your )?message to the following recipient|"
    r"the following recipients? (could not be reached|did not receive this message)|"
    r"your message wasn'?t delivered to|message delivery to .{1,80} failed|"
    r"undelivered mail returned to sender|delivery status notification \(failure\)|"
    r"your message has encountered delivery problems|this is a delivery status notification|"
    r"sorry, i wasn'?t able to establish an smtp connection|"
    r"your mail message to the following address\(es\) could not be delivered|"
    r"could not be delivered to one or more recipients|"
    r"a problem occurred during the delivery of this message",
    re.IGNORECASE,
)


def written_by_delivery_software(msg: Message) -> bool:
    """Whether the first text part words itself the way delivery software words a bounce
    (the whole body when broken MIME left the message without parts)."""
    html: Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "text/html" and html is None:
            html = part
        elif ctype == "text/plain":
            return _opens_like_a_report(part)
    if html is not None:  # an HTML-only report (Gmail's, Office 365's)
        return _opens_like_a_report(html)
    raw = msg.get_payload()
    return isinstance(raw, str) and _DELIVERY_SOFTWARE.search(raw[:6000]) is not None


def _opens_like_a_report(part: Message) -> bool:
    payload = part.get_payload(decode=True)
    head = payload[:6000].decode("latin-1") if isinstance(payload, bytes) else ""
    if part.get_content_subtype() == "html":
        head = " ".join(re.sub(r"<[^>]*>", " ", head).split())
    return _DELIVERY_SOFTWARE.search(head) is not None


def _header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    return None if value is None else str(value)
