"""Reasons per recipient, the per-reason hard/soft table, and reports without a sender."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.inbox_policy import BOUNCE_REASONS, InboxPolicy, load_inbox_policy
from config.policy_loader import PolicyError
from tasks.inbox.bounces import Reason, reason_of, smtp_reply_reason
from tasks.inbox.classification import MailClassifier, MessageClass
from tasks.inbox.parsing import ParsedMail, parse_message

HARD = {"userunknown", "hostunknown", "hasmoved", "suspend", "notaccept", "suppressed", "feedback"}
IGNORED = {"vacation", "delivered"}


def test_the_bundled_table_suppresses_exactly_the_bad_address_reasons() -> None:
    table = load_inbox_policy().bounce_reasons
    assert set(table) == set(BOUNCE_REASONS) == {r.value for r in Reason}
    for reason, rule in table.items():
        expected = "suppress" if reason in HARD else "ignore" if reason in IGNORED else "count"
        assert rule.action == expected, reason
    for reason in ("blocked", "requireptr", "badreputation", "authfailure", "rejected"):
        assert table[reason].about == "sender"


def test_a_table_missing_a_reason_or_naming_an_unknown_one_is_refused(tmp_path: Path) -> None:
    base = load_inbox_policy().model_dump()
    del base["bounce_reasons"]["mailboxfull"]
    with pytest.raises(ValueError, match="mailboxfull"):
        InboxPolicy.model_validate(base)
    path = tmp_path / "inbox.yaml"
    path.write_text("bounce_reasons:\n  userunknown: {action: delete}\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="bounce_reasons"):
        load_inbox_policy(path)


@pytest.mark.parametrize(
    ("status", "diagnostic", "reason"),
    [
        (
            "5.1.1",
            "550 5.1.1 <a@b.example>: Recipient address rejected: User unknown",
            "userunknown",
        ),
        ("5.1.1", "552 5.1.1 mailbox full, over quota", "mailboxfull"),
        ("5.0.0", "Host or domain name not found. Name service error", "hostunknown"),
        ("5.7.1", "554 5.7.1 Client host [192.0.2.1] blocked using zen.spamhaus.org", "blocked"),
        ("5.7.1", "550 5.7.1 Message rejected as spam", "spamdetected"),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed maximum message size", "mesgtoobig"),
        ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled", "suspend"),
        ("4.4.7", "", "expired"),
        ("5.1.6", "", "hasmoved"),
        (
            "5.7.26",
            "Unauthenticated email is not accepted due to domain's DMARC policy",
            "authfailure",
        ),
        ("2.0.0", "250 ok", "delivered"),
    ],
)
def test_the_reason_comes_from_the_words_before_the_status_code(
    status: str, diagnostic: str, reason: str
) -> None:
    assert reason_of(status, diagnostic).value == reason


@pytest.mark.parametrize(
    ("status", "diagnostic", "reason"),
    [
        # Wordings sisimai's reason lists know, each in a reply we could receive.
        ("5.0.0", "550 Sorry, too many recipients in this session", "toomanyconn"),
        ("5.7.1", "550 5.7.1 Unauthenticated senders not allowed", "securityerror"),
        ("5.0.0", "554 Mail from a@b.example rejected for policy reasons", "policyviolation"),
        ("5.0.0", "550 Unroutable sender address", "rejected"),
        ("4.4.1", "connect to mx.b.example[192.0.2.1]:25: Connection timed out", "expired"),
        ("4.4.0", "connect to mx.b.example[192.0.2.1]:25: No route to host", "networkerror"),
        ("5.0.0", "554 5.4.6 mail for b.example loops back to myself", "systemerror"),
        ("4.7.1", "450 4.7.1 Access denied. IP name lookup failed [192.0.2.9]", "requireptr"),
        ("5.0.0", "550-REJECTED - Blacklisted URL in message (shop.example)", "spamdetected"),
        ("5.0.0", "554 This system is not configured to relay mail", "norelaying"),
        ("5.0.0", "500 Line limit exceeded", "mesgtoobig"),
        ("4.2.2", "452 4.2.2 User has too many messages on the server", "mailboxfull"),
        ("5.0.0", "550 a@b.example has been replaced by c@b.example", "hasmoved"),
        ("5.0.0", "550 Recipient address rejected: Mail receiving disabled", "notaccept"),
        ("5.0.0", "550 Recipient rejected: temporarily inactive", "suspend"),
        (
            "5.7.1",
            "550 5.7.1 Messages with multiple addresses in From: header are not accepted",
            "notcompliantrfc",
        ),
        (
            "4.4.2",
            "lost connection with mx.b.example[192.0.2.3] while performing the HELO handshake",
            "networkerror",
        ),
        ("5.0.0", "550 The email account that you tried to reach does not exist.", "userunknown"),
        ("5.4.1", "550 5.4.1 All recipient addresses rejected : Access denied", "rejected"),
        (
            "5.1.2",
            "550 5.1.2 <a@b.example>: Recipient address rejected: Bad destination system address",
            "hostunknown",
        ),
        (
            "5.0.0",
            "Amazon SES has suppressed sending to this address because it has a recent history "
            "of bouncing as an invalid address.",
            "suppressed",
        ),
    ],
)
def test_sisimais_wordings_name_their_reasons(status: str, diagnostic: str, reason: str) -> None:
    assert reason_of(status, diagnostic).value == reason


@pytest.mark.parametrize(
    ("status", "diagnostic", "reason"),
    [
        # Gmail's catalogue: "rate limited" here is about authentication, not speed ...
        (
            "4.7.26",
            "421 4.7.26 This mail has been rate limited because it is unauthenticated. Gmail "
            "requires all senders to authenticate with either SPF or DKIM.",
            "authfailure",
        ),
        ("4.2.1", "450 4.2.1 The user you are trying to contact is receiving mail too quickly.",
         "speeding"),
        ("5.7.1", "550 5.7.1 The IP you're using to send mail is not authorized to send email "
         "directly to our servers.", "norelaying"),
        ("5.7.1", "550 5.7.1 Messages missing a valid Message-ID: header are not accepted.",
         "notcompliantrfc"),
        ("5.1.2", "553 5.1.2 We weren't able to find the recipient domain.", "hostunknown"),
        # ... and Microsoft's: a 5.2.2 quota that is our sending limit, a group closed to us.
        ("5.2.2", "554 5.2.2 mailbox full; STOREDRV.Submission.Exception: "
         "SubmissionQuotaExceededException; Submission quota exceeded", "speeding"),
        ("5.7.133", "550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup; "
         "Sender not authenticated for group", "rejected"),
        ("5.4.4", "550 5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
         "hostunknown"),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP "
         "address lookup", "userunknown"),
        ("5.7.1", "550 5.7.1 Unfortunately, messages from [192.0.2.5] weren't sent. (OU-001)",
         "blocked"),
        # Yahoo's and Apple iCloud's.
        ("5.0.0", "554 delivery error: dd a.buyer@yahoo.com is no longer valid.", "suspend"),
        ("5.7.2", "553 5.7.2 [TSS09] All messages from 192.0.2.25 will be permanently deferred",
         "rejected"),
        ("4.7.1", "421 4.7.1 Messages to a@icloud.com deferred due to excessive volume.",
         "speeding"),
        ("5.1.6", "550 5.1.6 recipient no longer on server: a@icloud.com", "hasmoved"),
        ("5.1.1", "550 5.1.1 <a@icloud.com>: inactive email address", "userunknown"),
    ],
)  # fmt: skip
def test_the_big_receivers_replies_name_their_reasons(
    status: str, diagnostic: str, reason: str
) -> None:
    assert reason_of(status, diagnostic).value == reason


@pytest.mark.parametrize(
    ("status", "reply", "reason"),
    [
        # The class of an enhanced status code matters (sisimai's status table) ...
        ("4.2.1", "450 4.2.1 try later", "blocked"),
        ("5.2.1", "550 5.2.1 refused", "filtered"),
        ("5.1.4", "550 5.1.4 refused", "filtered"),
        ("5.7.18", "550 5.7.18 refused", "hasmoved"),
        ("5.7.28", "550 5.7.28 refused", "spamdetected"),
        ("5.5.3", "452 5.5.3 refused", "toomanyconn"),
        ("4.4.5", "451 4.4.5 refused", "systemfull"),
        ("5.7.9", "535 5.7.9 refused", "securityerror"),
        ("5.6.7", "553 5.6.7 refused", "contenterror"),
        # ... and where it names nothing, some SMTP reply codes do (RFC 7504, RFC 4954).
        ("5.0.0", "556 refused", "notaccept"),
        ("5.0.0", "521 refused", "notaccept"),
        ("5.0.0", "525 refused", "suspend"),
        ("5.0.0", "504 Command parameter not implemented", "syntaxerror"),
    ],
)
def test_a_status_or_reply_code_names_the_reason_when_the_words_do_not(
    status: str, reply: str, reason: str
) -> None:
    assert reason_of(status, reply).value == reason


def test_an_smtp_reply_is_read_with_the_same_reasons() -> None:
    assert smtp_reply_reason(550, "5.1.1 No such user") is Reason.USER_UNKNOWN
    assert smtp_reply_reason(554, "5.7.1 Client host [1.2.3.4] blocked") is Reason.BLOCKED


DSN_WITHOUT_FROM = b"""\
Return-Path: <>
To: bounces+o7-abc@mail.example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

LOCAL module(account f.b) reports: the mailbox is full.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.a.b.c

Original-Recipient: rfc822;<f.b>
Final-Recipient: LOCAL;<f.b>
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 over quota

--B
Content-Type: message/rfc822

Message-ID: <campaign-7@accountflow.example>
From: Sales <sales@accountflow.example>
To: John Smith <f.b@a.b.c>
Subject: Hello

Hi
--B--
"""


def test_a_dsn_without_from_is_a_bounce_and_local_recipient_is_the_address_we_sent_to() -> None:
    parsed = parse_message(DSN_WITHOUT_FROM)
    assert isinstance(parsed, ParsedMail)
    verdict = MailClassifier.default().classify(parsed)
    assert verdict.label is MessageClass.BOUNCE and verdict.bounce is not None
    assert verdict.bounce.soft_recipients == ("f.b@a.b.c",)  # full, so counted, not suppressed
    assert verdict.suppress == () and "f.b" not in verdict.bounce.hard_recipients
    assert verdict.bounce.original_message_id == "<campaign-7@accountflow.example>"
    assert verdict.bounce.recipients[0].reason == "mailboxfull"


ARF = b"""\
From: feedback@isp.example
To: abuse@accountflow.example
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F"

--F
Content-Type: text/plain

This is an email abuse report.

--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1
Original-Rcpt-To: <reader@isp.example>

--F
Content-Type: message/rfc822

Message-ID: <campaign-9@accountflow.example>
From: Sales <sales@accountflow.example>
To: reader@isp.example
Subject: Offer

Buy
--F--
"""


def test_an_arf_abuse_report_suppresses_the_reported_recipient_as_a_complaint() -> None:
    verdict = MailClassifier.default().classify(parse_message(ARF))
    assert verdict.label is MessageClass.BOUNCE
    assert verdict.suppress == ("reader@isp.example",)
    assert verdict.suppress_reason == "complaint"
    assert verdict.rules == ("feedback_report:abuse",)


def test_a_mailer_daemon_notice_that_is_no_bounce_is_still_no_lead() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example>\r\n"
        b"To: sales@accountflow.example\r\nSubject: Postmaster notice\r\n\r\n"
        b"We would like a quote for 500 units of your product.\r\n"
    )
    verdict = MailClassifier.default().classify(parse_message(raw))
    assert verdict.label is MessageClass.AUTO_REPLY
    assert "machine_mail:daemon_sender" in verdict.rules


def test_a_recipient_named_only_locally_is_resolved_to_the_address_in_our_outbox() -> None:
    from tasks.inbox.pipeline import resolved_verdict

    raw = (
        DSN_WITHOUT_FROM.replace(b"To: John Smith <f.b@a.b.c>\n", b"")
        .replace(b"over quota", b"user unknown")
        .replace(b"Status: 5.2.2", b"Status: 5.1.1")
        .replace(b"the mailbox is full", b"no such user")
    )
    classifier = MailClassifier.default()
    verdict = classifier.classify(parse_message(raw))
    assert verdict.bounce is not None and verdict.suppress == ()
    assert [r.address for r in verdict.bounce.unresolved] == ["f.b"]
    resolved = resolved_verdict(verdict, "f.b@a.b.c", classifier)
    assert resolved.suppress == ("f.b@a.b.c",) and resolved.suppress_reason == "hard_bounce"
    assert "recipient_from_outbox" in resolved.rules
