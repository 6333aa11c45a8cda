"""What general knowledge of mail systems (sisimai's, ported) adds to reading bounces: when
in the session a refusal came, statuses about the sender, transient statuses, the words
delivery software writes, localised report subjects, and reports that name nobody."""

from __future__ import annotations

import pytest

from tasks.inbox.bounces import (
    DeliveryReport,
    DsnRecipient,
    Reason,
    _group_post,
    _stage_reason,
    final_reason,
    judge_report,
    reason_of,
    refused_at,
)
from tasks.inbox.classification import MailClassifier, MessageClass
from tasks.inbox.parsing import ParsedMail, parse_message


@pytest.fixture(scope="module")
def classifier() -> MailClassifier:
    return MailClassifier.default()


def _text_bounce(subject: str, body: str, sender: str = "MAILER-DAEMON@mx.client.example") -> bytes:
    return (
        f"From: {sender}\r\nTo: vendas@accountflow.example\r\nSubject: {subject}\r\n"
        "Message-ID: <report-1@mx.client.example>\r\n\r\n" + body.replace("\n", "\r\n")
    ).encode()


@pytest.mark.parametrize(
    ("context", "command"),
    [
        ("550 5.1.1 unknown (in reply to end of DATA command)", "DATA"),
        ("SMTP error from remote mail server after MAIL FROM:<a@b.example>: 553", "MAIL"),
        ("SMTP error from remote mail server after RCPT TO:<a@b.example>: 550", "RCPT"),
        (">>> DATA\n<<< 550 Unknown user", "DATA"),
        ("please retry after mail server maintenance", None),
    ],
)
def test_the_refused_smtp_command_is_read_from_the_report(
    context: str, command: str | None
) -> None:
    assert refused_at(None, context) == command


@pytest.mark.parametrize(
    ("status", "diagnostic", "context", "reason"),
    [
        # Our own domain refused at MAIL FROM: not the recipient's domain.
        ("5.1.8", "553 Sender address rejected: Domain not found", "", "rejected"),
        ("5.0.0", "553 Domain not found", "(in reply to MAIL FROM command)", "rejected"),
        ("5.1.7", "550 5.1.7 No such domain example.net", "", "rejected"),
        # qmail names the stage: our host's name was refused.
        ("5.0.0", "501 5.0.0 Invalid domain name", "Connected to 192.0.2.1 but my name was"
         " rejected.\nRemote host said: 501 5.0.0 Invalid domain name", "blocked"),
        # "user unknown" said only after the message was read is a filter.
        ("5.0.0", "550 Unknown user a@b.example", ">>> DATA\n<<< 550 Unknown user", "filtered"),
        # ... unless the server named the mailbox bad itself.
        ("5.1.1", "550 5.1.1 Unknown user", "(in reply to end of DATA command)", "userunknown"),
        ("5.2.1", "", "", "filtered"),
        ("5.2.1", "550 5.2.1 The account that you tried to reach is disabled", "", "suspend"),
        ("5.7.1", "User a@b.example temporary locked. Please try again later!", "", "suspend"),
        ("5.3.2", "521 5.3.2 System not accepting network messages", "", "notaccept"),
        ("5.0.0", "553 neko.example.com does not exist", "", "hostunknown"),
        ("5.4.4", "Name service error for name=b.example type=MX: Malformed or unexpected "
         "name server reply", "", "networkerror"),
        ("5.0.0", "Invalid final delivery userid: a@b.example", "", "userunknown"),
        ("5.0.0", "550 5.2.1 User reject", "", "filtered"),
        ("5.7.1", "550-5.7.1 This message is not RFC 5322 compliant. There are multiple "
         "Subject headers. To reduce the amount of spam sent to Gmail, this message has "
         "been blocked.", "", "notcompliantrfc"),
        ("5.7.0", "552-5.7.0 This message was blocked because its content presents a "
         "potential security issue.", "", "policyviolation"),
        ("4.0.0", "connect to mx.b.example[192.0.2.1]: server refused to talk to me: 421 "
         "Service not available", "", "blocked"),
        ("5.0.0", "", "you may not have permission to post messages to the group", "rejected"),
        ("5.0.0", "an MX or SRV record indicated no SMTP service", "", "notaccept"),
        ("5.0.0", "Error: No valid recipients for this MM", "", "userunknown"),
    ],
)  # fmt: skip
def test_the_stage_and_the_status_correct_what_the_words_alone_say(
    status: str, diagnostic: str, context: str, reason: str
) -> None:
    found = _stage_reason(reason_of(status, diagnostic, context), status, diagnostic, context)
    assert found.value == reason


def test_a_transient_status_never_suppresses_whatever_its_reason(
    classifier: MailClassifier,
) -> None:
    table = classifier.policy.bounce_reasons
    transient = DsnRecipient("a@b.example", "failed", "4.1.1", "450 4.1.1 user unknown",
                             Reason.USER_UNKNOWN.value)  # fmt: skip
    permanent = DsnRecipient("c@d.example", "failed", "5.1.1", "550 5.1.1 user unknown",
                             Reason.USER_UNKNOWN.value)  # fmt: skip
    judged = judge_report(DeliveryReport((transient, permanent), None, "rfc3464"), table)
    assert judged.suppress == ("c@d.example",)
    assert judged.soft == ("a@b.example",)


POSTFIX_TWO = """\
This is the mail system at host mx.accountflow.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<full@client.example>: host mx.client.example said: 552 5.2.2 Mailbox full
<gone@client.example>: host mx.client.example said: 550 5.1.1 No such user
"""


def test_each_recipient_of_a_text_bounce_gets_its_own_line_s_reason(
    classifier: MailClassifier,
) -> None:
    parsed = parse_message(_text_bounce("Undelivered Mail Returned to Sender", POSTFIX_TWO))
    assert isinstance(parsed, ParsedMail) and parsed.delivery_report is not None
    reasons = {r.address: r.reason for r in parsed.delivery_report.recipients}
    assert reasons == {"full@client.example": "mailboxfull", "gone@client.example": "userunknown"}
    verdict = classifier.classify(parsed)
    assert verdict.suppress == ("gone@client.example",)


def test_delivery_software_words_make_a_report_whatever_its_from_and_subject(
    classifier: MailClassifier,
) -> None:
    raw = _text_bounce("Your order 7712", POSTFIX_TWO, sender="relay@client.example")
    assert classifier.classify(parse_message(raw)).label is MessageClass.BOUNCE
    # A person passing a bounce on, or replying about one, is not one.
    forwarded = _text_bounce("Fwd: Undelivered Mail", POSTFIX_TWO, sender="ana@client.example")
    assert classifier.classify(parse_message(forwarded)).label is not MessageClass.BOUNCE


def test_a_localised_report_subject_from_an_ordinary_sender_is_a_report(
    classifier: MailClassifier,
) -> None:
    body = (
        "送信先のメールボックスが一杯のため、送信できませんでした。\n\n"
        "     Could not be delivered to: <kijitora@client.example>\n"
        "     As their mailbox is full.\n"
    )
    raw = _text_bounce("=?UTF-8?B?44Oh44O844Or44Ko44Op44O86YCa55+l?=", body,
                       sender="no-reply@client.example")  # fmt: skip
    verdict = classifier.classify(parse_message(raw))
    assert verdict.label is MessageClass.BOUNCE and verdict.bounce is not None
    assert verdict.bounce.soft_recipients == ("kijitora@client.example",)


def test_a_report_that_names_nobody_is_a_bounce_left_for_the_outbox_to_resolve(
    classifier: MailClassifier,
) -> None:
    raw = (
        b"Return-Path: <>\r\nFrom: Mail Delivery Subsystem <MAILER-DAEMON@mx.client.example>\r\n"
        b"To: <bounces+o7-0123456789ab@mail.accountflow.example>\r\n"
        b"Subject: Returned mail: see transcript for details\r\n\r\n"
        b"<<< No Message Collected >>>\r\n"
    )
    verdict = classifier.classify(parse_message(raw))
    assert verdict.label is MessageClass.BOUNCE and verdict.bounce is not None
    assert verdict.suppress == () and [r.address for r in verdict.bounce.unresolved] == [""]


def test_a_nul_byte_in_a_returned_original_does_not_make_the_report_unreadable(
    classifier: MailClassifier,
) -> None:
    body = (
        "Unable to deliver message to the following address(es).\n\n"
        "<kijitora@client.example>:\nThis account is over quota.\n\n"
        "--- Original message follows.\n\nSubject: hello\n\nbody \x00 here\n"
    )
    verdict = classifier.classify(parse_message(_text_bounce("Delivery failure", body)))
    assert verdict.label is MessageClass.BOUNCE and verdict.bounce is not None
    assert verdict.bounce.recipients[0].reason == "mailboxfull"


def test_a_message_id_without_angle_brackets_is_still_recovered() -> None:
    raw = (
        b"From: fbl@isp.example\r\nTo: abuse@accountflow.example\r\nSubject: FW: offer\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
        b"--f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n\r\n"
        b"--f\r\nContent-Type: message/rfc822\r\n\r\nFrom: <vendas@accountflow.example>\r\n"
        b"To: <Undisclosed Recipients>\r\nMessage-ID: campaign-9@accountflow.example\r\n\r\n"
        b"Hi\r\n--f--\r\n"
    )
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMail) and parsed.delivery_report is not None
    assert parsed.delivery_report.original_message_id == "<campaign-9@accountflow.example>"


def test_an_html_only_report_from_an_ordinary_sender_is_a_report(
    classifier: MailClassifier,
) -> None:
    html = (
        "<html><body><h2>Address not found</h2><p>Your message wasn't delivered to "
        "<b>gone@client.example</b> because the address couldn't be found.</p>"
        "<p>The response was:</p><p>550 5.1.1 The email account that you tried to reach "
        "does not exist.</p></body></html>"
    )
    raw = (
        "From: notices@client.example\r\nTo: vendas@accountflow.example\r\n"
        "Subject: Your order 7712\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n"
    ).encode()
    verdict = classifier.classify(parse_message(raw))
    assert verdict.label is MessageClass.BOUNCE
    assert verdict.suppress == ("gone@client.example",)


def test_a_mail_system_notice_of_a_failure_is_a_bounce_even_naming_nobody(
    classifier: MailClassifier,
) -> None:
    raw = _text_bounce("Mail System Error", "The message could not be processed.\n")
    verdict = classifier.classify(parse_message(raw))
    assert verdict.label is MessageClass.BOUNCE and verdict.suppress == ()
    # The same sender's notice that speaks of no failure stays a machine notice.
    notice = _text_bounce("Postmaster notice", "Maintenance tonight.\n")
    assert classifier.classify(parse_message(notice)).label is MessageClass.AUTO_REPLY


def test_the_original_message_id_is_found_where_mime_hid_the_returned_headers() -> None:
    # The returned message's Received continuation is not indented: its parser stops
    # there and the Message-ID lands in the body of the attached part.
    raw = (
        b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.client.example\r\n"
        b"To: vendas@accountflow.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; gone@client.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Received: from [127.0.0.1] (localhost [127.0.0.1])\r\n"
        b"by mx.accountflow.example (Postfix) with ESMTP id 44kW\r\n"
        b"Subject: Offer\r\nMessage-ID: <campaign-3@accountflow.example>\r\n\r\nHi\r\n--b--\r\n"
    )
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMail) and parsed.delivery_report is not None
    assert parsed.delivery_report.original_message_id == "<campaign-3@accountflow.example>"


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "reason"),
    [
        # Network trouble quoted in a final failure stays a network error ...
        ("failed", "4.4.1", "connect to mx.b.example[192.0.2.1]:25: No route to host",
         "networkerror"),
        # ... though a connection that timed out until the queue gave up is expired.
        ("failed", "4.4.1", "connect to mx.b.example[192.0.2.1]:25: Connection timed out",
         "expired"),
        # ... the queue's own words that it gave up make it expired.
        ("failed", "4.4.7", "554 4.4.7 Message expired: unable to deliver in 840 minutes."
         "<421 4.4.2 Connection timed out>", "expired"),
        ("delayed", None, "The recipient server did not accept our requests to connect.",
         "expired"),
        ("failed", "5.2.3", "552 5.2.3 Message size exceeds fixed maximum message size",
         "exceedlimit"),
        ("failed", "5.0.0", "554 Service currently unavailable", "systemerror"),
    ],
)  # fmt: skip
def test_a_final_failure_names_what_the_queue_finally_met(
    action: str, status: str | None, diagnostic: str, reason: str
) -> None:
    assert final_reason(reason_of(status, diagnostic), action, status).value == reason


def test_a_refused_post_to_a_google_group_is_about_the_sender_in_any_language() -> None:
    assert _group_post(Reason.UNDEFINED, "team@googlegroups.com") is Reason.REJECTED
    assert _group_post(Reason.UNDEFINED, "team@client.example") is Reason.UNDEFINED
    assert _group_post(Reason.USER_UNKNOWN, "team@googlegroups.com") is Reason.USER_UNKNOWN


def test_a_challenge_response_notice_in_a_delivery_report_fails_nobody(
    classifier: MailClassifier,
) -> None:
    raw = (
        b"From: noreply@guard.example\r\nTo: vendas@accountflow.example\r\n"
        b"Subject: Re: Offer\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nPlease add yourself to my Guest List so your"
        b" messages will be delivered to my Inbox.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; guard\r\n\r\n"
        b"Final-Recipient: rfc822; reader@client.example\r\nAction: failed\r\n"
        b"Diagnostic-Code: X-Notice; Sender not pre-approved.\r\n\r\n--b--\r\n"
    )
    verdict = classifier.classify(parse_message(raw))
    assert verdict.label is MessageClass.AUTO_REPLY
    assert verdict.suppress == () and verdict.bounce is None


SMAIL_FAILED = """\
|------------------------- Message log follows: -------------------------|
 no valid recipients were found for this message
|------------------------- Failed addresses follow: ---------------------|
 buyer@nohost.example.org ... unknown host
|------------------------- Message text follows: ------------------------|
From: Vendas <vendas@accountflow.example>
To: buyer@nohost.example.org
Subject: Our offer
"""
TONLINE_FAILED = """\
|------------------------- Failed addresses follow: ---------------------|
 <client.buyer@t-online.de>
   552 5.2.2 <client.buyer@t-online.de> Quota exceeded (mailbox for user is full)

|------------------------- Message header follows: ----------------------|
From: Vendas <vendas@accountflow.example>
To: client.buyer@t-online.de
"""


@pytest.mark.parametrize(
    ("body", "address", "reason", "hard"),
    [
        # Smail 3 writes the reason on the address's own line, after " ... ".
        (SMAIL_FAILED, "buyer@nohost.example.org", "hostunknown", True),
        # Deutsche Telekom's Smail fork quotes the server's reply below the address.
        (TONLINE_FAILED, "client.buyer@t-online.de", "mailboxfull", False),
    ],
)
def test_a_smail_style_report_names_the_recipient_and_its_reason(
    classifier: MailClassifier, body: str, address: str, reason: str, hard: bool
) -> None:
    parsed = parse_message(_text_bounce("mail failed, returning to sender", body))
    verdict = classifier.classify(parsed)
    assert verdict.label is MessageClass.BOUNCE
    assert isinstance(parsed, ParsedMail) and parsed.delivery_report is not None
    assert [(r.address, r.reason) for r in parsed.delivery_report.recipients] == [(address, reason)]
    assert verdict.suppress == ((address,) if hard else ())
