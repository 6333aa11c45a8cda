"""Read a bounce or a feedback-loop report: who failed, why, and which of our messages it was.

The shape follows sisimai's: first recover each failed recipient with its status code and
diagnostic text, from whichever form the mail system used (RFC 3464 delivery-status,
XWall's ``message/xdelivery-status``, an RFC 5965 feedback report, or the plain text of
qmail, Exim, Sendmail, Exchange, GroupWise, Yahoo ... through flufl.bounce's detectors
and our own reading of the text), then name the reason from the diagnostic text before
the status code, because mail systems put a 5.1.1 on a full mailbox and a 5.7.1 on
everything from a blocklisting to a virus, and correct it by when in the SMTP session the
refusal came (at MAIL FROM it is about our sender, after DATA a filter). What a reason
means for the address (hard, soft, about our sending host) is policy, in
``config/inbox.yaml``'s ``bounce_reasons``.

Pure: takes a parsed ``email.message.Message`` and returns data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email import message_from_string
from email import policy as email_policy
from email.message import Message
from enum import StrEnum
from typing import Literal, Protocol

import flufl.bounce

from tasks.inbox.machine_mail import (
    LOCALISED_REPORT_SUBJECT,
    is_daemon,
    is_null_sender,
    written_by_delivery_software,
)


class Reason(StrEnum):
    """Why a message was not delivered, in sisimai's vocabulary (its reason names)."""

    USER_UNKNOWN = "userunknown"
    HOST_UNKNOWN = "hostunknown"
    HAS_MOVED = "hasmoved"
    SUSPEND = "suspend"
    NOT_ACCEPT = "notaccept"
    SUPPRESSED = "suppressed"
    MAILBOX_FULL = "mailboxfull"
    EXCEED_LIMIT = "exceedlimit"
    MESG_TOO_BIG = "mesgtoobig"
    EXPIRED = "expired"
    BLOCKED = "blocked"
    REJECTED = "rejected"
    REQUIRE_PTR = "requireptr"
    BAD_REPUTATION = "badreputation"
    AUTH_FAILURE = "authfailure"
    SPAM_DETECTED = "spamdetected"
    VIRUS_DETECTED = "virusdetected"
    FILTERED = "filtered"
    POLICY_VIOLATION = "policyviolation"
    CONTENT_ERROR = "contenterror"
    NOT_COMPLIANT_RFC = "notcompliantrfc"
    NO_RELAYING = "norelaying"
    SECURITY_ERROR = "securityerror"
    FAILED_STARTTLS = "failedstarttls"
    SPEEDING = "speeding"
    TOO_MANY_CONN = "toomanyconn"
    NETWORK_ERROR = "networkerror"
    SYSTEM_ERROR = "systemerror"
    SYSTEM_FULL = "systemfull"
    MAILER_ERROR = "mailererror"
    SYNTAX_ERROR = "syntaxerror"
    ON_HOLD = "onhold"
    UNDEFINED = "undefined"
    FEEDBACK = "feedback"
    VACATION = "vacation"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class DsnRecipient:
    """One recipient a report is about (RFC 3464 section 2.3, or read from the text).

    ``address`` may lack a domain when the report named only a local account
    (``Final-Recipient: LOCAL;<f.b>``) and nothing else in it named the full address;
    the pipeline then takes the address our outbox sent that message to.
    """

    address: str
    action: str
    status: str | None
    diagnostic: str | None = None
    reason: str = Reason.UNDEFINED.value


ReportKind = Literal["failure", "delay", "delivered", "feedback"]


@dataclass(frozen=True)
class DeliveryReport:
    """What a bounce or feedback report says: who, how, and which of our messages."""

    recipients: tuple[DsnRecipient, ...]
    original_message_id: str | None
    detected_by: str  # rfc3464 | xdelivery-status | arf | flufl.bounce | text
    kind: ReportKind = "failure"
    original_to: tuple[str, ...] = ()
    feedback_type: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


# --- reasons from text ------------------------------------------------------------------------

# Checked in this order; the first that matches names the reason. Specific wording comes
# before general wording ("mailbox size limit" is a full mailbox, not a big message;
# "blocked using zen.spamhaus.org" is a blocklisting, not spam content; "sender address
# rejected" is about our address, not the recipient's).
# Gmail's own catalogue of SMTP replies (support.google.com/a/answer/3726730, as sisimai's
# Google table reads it): whole sentences only Google writes, so they are read first,
# before the general wording below would take a word of them for another reason (its
# "rate limited because it is unauthenticated" is about authentication, not speed).
_GMAIL_TEXT: tuple[tuple[Reason, str], ...] = (
    (
        Reason.AUTH_FAILURE,
        r"spf record of the sending domain|senders to authenticate (with|their e-?mail with) "
        r"(either )?(spf|dkim)|has an spf record with a hard fail|fails to pass spf checks|"
        r"aligned with either the authenticated spf or dkim|to add a dmarc record|"
        r"fails to pass authentication checks|does not have authentication information",
    ),
    (
        Reason.BLOCKED,
        r"ip not in whitelist for rcpt domain|try again later, closing connection|"
        r"unusual rate of (unsolicited )?mail",
    ),
    (Reason.EXPIRED, r"connection expired, try reconnecting|timeout - closing connection"),
    (Reason.FAILED_STARTTLS, r"senders to use tls/ssl|tls required for rcpt domain"),
    (Reason.NETWORK_ERROR, r"message exceeded \d+ hops"),
    (
        Reason.NO_RELAYING,
        r"invalid credentials for relay|not authorized to send e-?mail directly to our servers",
    ),
    (
        Reason.NOT_COMPLIANT_RFC,
        r"missing a valid (address in the from|message-id)|unicode character in a disallowed "
        r"header|encoded-word syntax is not permitted|mail message is malformed",
    ),
    (Reason.POLICY_VIOLATION, r"has a policy that prohibited|with the same message-id"),
    (Reason.REJECTED, r"mail sending denied"),
    (
        Reason.SECURITY_ERROR,
        r"too many login attempts|no identity changes permitted|"
        r"application-specific password required|log in (with|through) your web browser|"
        r"username and password not accepted",
    ),
    (Reason.SPAM_DETECTED, r"nature of the content or the links within|likely unsolicited mail"),
    (
        Reason.SPEEDING,
        r"receiving mail too quickly|smtp relay (sending )?limit exceeded|"
        r"daily (user )?sending (quota|limit) exceeded|this mail has been rate limited",
    ),
    (
        Reason.SYNTAX_ERROR,
        r"smtp protocol violation|optional argument not permitted|unimplemented command|"
        r"too many unrecognized commands|ehlo/helo first|\b(mail|rcpt) first\b|"
        r"no data after bdat|unrecognized authentication type|xoauth is no longer supported|"
        r"too many unauthenticated commands",
    ),
    (
        Reason.SYSTEM_ERROR,
        r"temporary system problem|\bserver busy\b|multiple destination domains per transaction|"
        r"temporarily rejected (this )?message|domain policy size per transaction",
    ),
    (Reason.HOST_UNKNOWN, r"able to find the recipient domain"),
)
# Microsoft's (Exchange Server, Exchange Online, Outlook.com) documented NDR texts and
# Outlook.com's postmaster codes, as sisimai's Microsoft table reads them: read before the
# general wording, whose "not authenticated", "quota exceeded" or "nonexistent" would name
# another reason (a 5.2.2 "submission quota exceeded" is our sending limit, not a full
# mailbox; a group that only takes mail from its organisation refuses our sender).
_MICROSOFT_TEXT: tuple[tuple[Reason, str], ...] = (
    (Reason.AUTH_FAILURE, r"(doesn'?t|does not) meet the required authentication level"),
    (
        Reason.REJECTED,
        r"sender (was )?not authenticated (by organization|for (group|mailbox|public folder))|"
        r"sender not in allowed-senders list|access denied, (bad outbound sender|spam abuse "
        r"detected)|client blocked from sending from unregistered domains",
    ),
    (
        Reason.SPEEDING,
        r"recipient thread limit exceeded|reached your daily limit for message recipients|"
        r"submission quota exceeded|per hour message receive limit|"
        r"recipient has exceeded their limit for|has exceeded permitted limits within|"
        r"tenant has exceeded threshold|traffic not accepted from this ip",
    ),
    (Reason.TOO_MANY_CONN, r"exceeded the maximum number of connections"),
    (
        Reason.BLOCKED,
        r"does not accept email over ipv6|access denied, rejected by recipient|"
        r"\b(sc-00[34]|dy-001|ou-001)\b",
    ),
    (Reason.BAD_REPUTATION, r"\b(rp-00[123]|sc-001|ou-002)\b"),
    (Reason.POLICY_VIOLATION, r"\bsc-002\b|x-dg-ref header is too long"),
    (
        Reason.FAILED_STARTTLS,
        r"failed mta-sts validation|certificate-expired:|tlsa-invalid:|dnssec-invalid:|"
        r"certificate-host-mismatch:|restrictdomainstoipaddresses",
    ),
    (Reason.HOST_UNKNOWN, r"nonexistentdomain|nonexistent domain|invalid x\.400 address"),
    (Reason.NETWORK_ERROR, r"dns query failed"),
    (
        Reason.NOT_ACCEPT,
        r"hosted tenant which has no mail-enabled subscriptions|bad storedriver mdb properties",
    ),
    (
        Reason.SECURITY_ERROR,
        r"cannot achieve exchange server authentication|"
        r"not authenticated to send anonymous mail",
    ),
    (Reason.SPAM_DETECTED, r"content filter agent quarantined"),
    (Reason.SUSPEND, r"access denied, banned recipient|mailbox cannot be accessed"),
    (Reason.SYNTAX_ERROR, r"send hello first"),
    (
        Reason.SYSTEM_ERROR,
        r"system incorrectly configured|journaling archive is disabled|"
        r"helo / ehlo requires domain address|misconfigured forwarding address|"
        r"message failed to be replicated|suspiciousremoteservererror|pfa agent busy|"
        r"temporary server error",
    ),
    (Reason.SYSTEM_FULL, r"insufficient system resources"),
    (
        Reason.CONTENT_ERROR,
        r"agent generated message depth exceeded|invalid message content|too many related errors",
    ),
    (
        Reason.USER_UNKNOWN,
        r"recipnotfound|recipient not found by smtp address lookup|"
        r"recipient address reserved by rfc 2606|single label domains not accepted|"
        r"remote server returned unknown recipient",
    ),
)
# Yahoo's (senders.yahooinc.com/smtp-error-codes) and Apple iCloud's replies, as sisimai's
# tables for them read them: Yahoo's "dd a@b is no longer valid" is a closed mailbox. (Its
# "[TSS04] deferred due to unexpected volume or user complaints", which sisimai's Yahoo
# table calls rejected, stays bad reputation: other mail systems quote it too.)
_YAHOO_APPLE_TEXT: tuple[tuple[Reason, str], ...] = (
    (Reason.REJECTED, r"due to unresolvable rfc\.?5321|will be permanently deferred"),
    (Reason.SUSPEND, r"\bdd \S+ is no longer valid"),
    (Reason.TOO_MANY_CONN, r"max message per connection reached"),
    (Reason.SPEEDING, r"deferred due to excessive volume"),
    (Reason.HAS_MOVED, r"recipient no longer on server"),
    (Reason.USER_UNKNOWN, r"inactive e-?mail address"),
)
_REASON_TEXT: tuple[tuple[Reason, str], ...] = (
    (
        # A sending service that did not even try: the address is on its suppression list,
        # after an earlier hard bounce or complaint there (Amazon SES, Mailgun, SparkPost,
        # Postmark). Before "invalid address", which such notices quote.
        Reason.SUPPRESSED,
        r"suppressed sending to this address|on the (account-level )?suppression list|"
        r"suppression list for your account|not delivering to (a )?previously bounced|"
        r"recipient address (was |is )?suppressed|address is (on|in) (an? |the )?"
        r"(inactive|suppress\w*) (recipients? )?list",
    ),
    (
        Reason.MAILBOX_FULL,
        r"mail ?box (is |was )?(currently )?(full|over|overfull|exceeded)|mailbox size limit|"
        r"over ?quota|quota (exceeded|exceed|full|violation)|"
        r"exceeded (the |his |her |their |its )?(storage|quota|mailbox)|"
        r"(storage|mailbox|disk) quota|insufficient (disk )?(space|storage)|"
        r"(user|recipient|account|inbox|mailfolder|folder)('s)? (mailbox |inbox )?(is |was )?"
        r"(full|over (the )?(quota|limit))|full mailbox|not enough (storage|space|disk)|"
        r"storage (allocation|space)|too many messages in (this|the) mailbox|"
        r"has exceeded (the )?(maximum|allowed) (mailbox|storage|size)|boite.{0,10}pleine|"
        r"postfach.{0,10}voll|casilla llena|mailbox has exceeded|exceeds? (his|her|its) quota|"
        r"exceeding receiving limits|too much mail data|too many messages on the server|"
        r"space has been used up|mailbox (would exceed|exceeds) (the )?(maximum )?allowed|"
        r"no space left on device",
    ),
    (
        Reason.MESG_TOO_BIG,
        r"message (size |length )?(exceeds|too (big|large)|is too (big|large))|"
        r"(size|length) (of (the |this )?message |of message )?exceeds|too big for|"
        r"maximum (allowed )?(message |mail |e-?mail )?size|message (file )?too large|"
        r"(mail|message|email) size limit|size limit exceeded|e-?mail is too (big|large)|"
        r"exceeds (the )?(maximum|size limit|message size|fixed maximum)|message size|"
        r"line limit exceeded|message file too big|max message size|"
        r"taille limite du message|(inbound|incoming) message size|\bsize limit\b",
    ),
    (
        # A server refusing more recipients in one session limits our sending, not the
        # message: before the exceeded-limit wording below.
        Reason.TOO_MANY_CONN,
        r"too many (recipients|errors from your ip|smtp sessions)|connection rate limit|"
        r"(maximum|per-domain) connection limit|max(imum)? e-?mails per hour|"
        r"throttling failure|trop de connexions",
    ),
    (
        Reason.EXCEED_LIMIT,
        r"recipient limit|exceeded (the )?recipient|"
        r"header (size )?exceeds|too many (headers|hops in)",
    ),
    (
        Reason.SUSPEND,
        r"(account|mail ?box|user|address|recipient)( has been| is| was| temporarily)? "
        r"(disabled|suspended|deactivated|inactivated|locked|frozen|closed|terminated|"
        r"de-?activated|on hold)|(disabled|suspended|deactivated|inactive|closed|expired) "
        r"(account|mailbox|user|address)|account (is )?(inactive|expired|blocked)|"
        r"mailbox (is )?(disabled|inactive|not active|unavailable due to inactivity)|"
        r"is no longer (active|in service|in use)|not an active|has been (suspended|disabled)|"
        r"user (is )?(suspended|disabled|terminated)|"
        r"mailbox currently suspended|access denied - account|"
        r"account that you tried to reach is disabled|deactivated mailbox|"
        r"disabled (recipient|address|mailbox|account|user)|invalid/inactive user|"
        r"(account|user|mailbox|recipient)\b.{0,60}\b(is |been )?temporar(il)?y locked|"
        r"account is locked|recipient suspend(ed)? the service|"
        r"mailbox unavailable or access denied|(has been )?disabled or discontinued|"
        r"archived recipient|destinataire archiv|temporarily inactive|inactive account|"
        r"no longer accepts mail|user or domain is disabled|user is terminated|"
        r"mailbox is frozen",
    ),
    (
        Reason.HAS_MOVED,
        r"has (been )?moved|address (has )?changed|moved to (a )?new|new (e-?mail )?address is|"
        r"changed (his|her|their|its) (e-?mail )?address|owner has changed|no longer with |"
        r" has been replaced by ",
    ),
    (
        # A queue that gave up, whatever network trouble it quotes on the way.
        Reason.EXPIRED,
        r"message expired|unable to deliver in \d+|all hosts have been failing for a long time|"
        r"retry time(out)? (not reached for any host|exceeded)|was aborted after \d+|"
        r"did not accept our requests to connect|has been in the queue too long",
    ),
    (
        Reason.NO_RELAYING,
        r"relay(ing)? (access )?(denied|not permitted|not allowed|prohibited|rejected|refused)|"
        r"unable to relay|not permitted to relay|(we|i) do not relay|no relaying|"
        r"relay not (permitted|allowed)|relaying (mail )?(to \S+ )?(is )?(denied|not allowed|"
        r"disallowed)|relay access|cannot relay|not allowed to relay|open relay|as a relay|"
        r"not a gateway|not local host|relaying mail to |specified domain is not allowed|"
        r"domain isn'?t in my list of allowed rcpthosts?|not configured to relay|"
        r"we don'?t handle mail for|requires authentication when attempting to send to a "
        r"non-local|e-?mail address is not verified\.",
    ),
    (
        Reason.SECURITY_ERROR,
        r"unauthenticated senders not allowed|recipient address rejected: access denied|"
        r"authentication (failure|credentials invalid)|verification failure|"
        r"insecure mail relay|executable files are not allowed|"
        r"not subscribed to ses|is a dead domain|not authorized to perform ses",
    ),
    (
        Reason.AUTH_FAILURE,
        r"\bspf\b.{0,60}(fail|check|not pass|record|softfail|reject)|\bdkim\b.{0,40}(fail|invalid|"
        r"not pass|signature|verif)|\bdmarc\b.{0,60}(fail|policy|reject)|(fail(ed|s)?|not pass) "
        r"(the )?(spf|dkim|dmarc)|sender policy framework|(spf|dkim|dmarc) (validation|"
        r"authentication|check)|unauthenticated (mail|email|sender)|not authenticated by|"
        r"authentication checks? failed",
    ),
    (
        # A header that breaks RFC 5322 (two From addresses, a duplicate field), however
        # the refusal words it.
        Reason.NOT_COMPLIANT_RFC,
        r"duplicate header|not rfc ?5322 compliant|rfcmessagenoncompliant|"
        r"\bmultiple\b.{0,60}\bheaders?\b",
    ),
    (
        Reason.POLICY_VIOLATION,
        r"(rejected|not accepted) (for|due to) (local |security )?polic(y|ies)|"
        r"denied by policy|local policy violation|organi[sz]ation(al)? (policy|settings)|"
        r"closed mailing list|members-only list|not subscribed to this group|mass mailer|"
        r"protocol violation|illegal attachment|header error|header are not accepted|"
        r"message given low priority",
    ),
    (
        Reason.REJECTED,
        r"unroutable sender|invalid sender|sender was rejected|sender is spammer|"
        r"null sender|empty envelope sender|bogus mail from|\bbatv\b|"
        r"not a registered gateway user|returned mail not accepted|third-party dsn|"
        r"unsigned dsn|fully qualified e-?mail address required|"
        r"sender (address )?(has been )?blacklisted|sender is in my black ?list|"
        r"administrative prohibition|recipient addresses rejected ?: access denied|"
        r"sender (address |domain )?(rejected|refused|denied|blocked|invalid|unknown|"
        r"verify failed|verification failed|(domain )?(must|does not|doesn'?t) (exist|resolve)|"
        r"not (found|allowed|accepted)|is (rejected|not allowed|blocked|blacklisted))|"
        r"(domain of|envelope) sender .{0,60}(does not exist|not found|invalid|rejected|unknown)|"
        r"mail from .{0,60}(rejected|refused|not accepted|denied)|from address .{0,40}"
        r"(rejected|invalid|not allowed)|return[- ]path .{0,40}(invalid|rejected)|"
        r"unverified sender|unknown sender|sender verify|mail from you is not accepted|"
        r"your (e-?mail )?(address|domain) (has been |is )?(rejected|blacklisted|blocked|banned)|"
        r"\bmail from\b.{0,30}\b(syntax|invalid)|bad sender|sender is not allowed|"
        r"(not have|no|without) permission to post|not allowed to post",
    ),
    (
        Reason.REQUIRE_PTR,
        r"reverse (dns|lookup|name|address|mapping)|\bptr\b|\brdns\b|"
        r"cannot (find|resolve) your (host ?name|address)|(unable to|can'?t|cannot) resolve "
        r"(your )?(ip|host)|client host .{0,60}(no ptr|does not resolve|unknown)|"
        r"(hostname|host name) (does not|doesn'?t) (match|resolve)|no dns (for|record for) your|"
        r"ip name lookup failed|cannot find your hostname|cannot resolve your address|"
        r"unresolvable relay host name|mismatches client ip|unverifyable sending ips?|"
        r"dns lookup failure: .{0,80}try again later|invalid rdns|generic dns",
    ),
    (
        Reason.BAD_REPUTATION,
        r"reputation|sender score|low (sending )?rating|rate of (user )?complaints|"
        r"deferred due to (user complaints|unexpected volume)|complaints from (our|your) users",
    ),
    (
        Reason.SPAM_DETECTED,
        r"blacklisted url|\burl\b.{0,40}blacklisted|mail content denied|"
        r"rejecting (banned|mail) content|reject bulk|unacceptable content|"
        r"recurrent pattern detection|temporarily blocked by our filter|sender domain listed at |"
        r"is blacklisted on|blocked for abuse|message rejected for policy reasons|"
        r"(detected|classified|identified|scored|considered) as spam|greylisted.{0,80}try again in",
    ),
    (
        # Gmail's refusal of content it deems unsafe: before "blocked because".
        Reason.POLICY_VIOLATION,
        r"content presents a potential",
    ),
    (
        Reason.BLOCKED,
        r"client host .{0,60}(rejected|blocked|refused)|blocked using|"
        r"(ip|host|address|connection|your server|server|sending (server|host|ip)|network|"
        r"client)( address)? .{0,60}(is |has been |was )?(blocked|blacklisted|blocklisted|"
        r"banned|on (our|a|the) (block|black)list)|(black|block) ?list|\brbl\b|\bdnsbl\b|"
        r"spamhaus|spamcop|\bsorbs\b|barracudacentral|cbl\.abuseat|dnsbl|"
        r"(not allowed|refused|denied) to connect|connection (refused|rejected|denied) "
        r"(from|by|for)|your (ip|host|domain|network|server) .{0,60}(blocked|listed|rejected|"
        r"denied|refused)|access denied.{0,40}\b(ip|host)\b|\bbanned\b|"
        r"\b(helo|ehlo)\b.{0,40}\b(rejected|refused|denied|invalid|not allowed|forged)|"
        r"(invalid|bad|forged|bogus) (helo|ehlo)|"
        r"(dynamic|residential|dial-?up) (ip|address|pool|range)|"
        r"too many (invalid|bad|unknown) recipients|rejecting (your )?connection|"
        r"service (is )?unavailable.{0,40}(client|host|ip)|blocked (by|for|because)|"
        r"refused to talk to me|service refus(ed|e)\b|"
        r"use the smtp server of your isp|\bgo away\b|confirm this mail server|"
        r"not accepting connections|not currently accepting mail from your ip|"
        r"is not allowed to send mail from|no access from mail server|open proxy|"
        r"sender ip address rejected|closing transmission channel|after initial connection|"
        r"looks suspiciously like spammer|you are sending spam|spams? from your ip|"
        r"connection (was )?dropped|bad sender ip|banned sending ip|"
        r"invalid ip for sending mail",
    ),
    (
        # A message refused for its form, whatever the spam it is said to resemble.
        Reason.NOT_COMPLIANT_RFC,
        r"rfc ?(5322|2822|822|5321|2821)|not (rfc[- ]?)?compliant|duplicate (header|from|"
        r"subject|date|message-id)|multiple (from|subject|date|message-id)|"
        r"missing (required )?(date|from|message-id|subject) header|required header|"
        r"must have (a|exactly)",
    ),
    (
        Reason.VIRUS_DETECTED,
        r"virus|malware|infected|banned (file|attachment|name|filename)|"
        r"(dangerous|forbidden|prohibited|disallowed) (attachment|file|content)|"
        r"attachment (type )?(not allowed|blocked|rejected|prohibited)|\.(exe|bat|scr|pif)\b|"
        r"potentially executable attachment|used by recent viruses",
    ),
    (
        Reason.SPAM_DETECTED,
        r"spam|junk|bulk e?-?mail|unsolicited|\buce\b|phish|"
        r"(message|content|mail)( content)? (looks|appears|was considered|is considered|"
        r"classified|determined|identified|seems) (like|to be|as)|score.{0,20}(too high|exceeds)|"
        r"high probability of|content (rejected|not accepted|filter rejection)|"
        r"rejected (as|because of|due to) (its )?content|message (content )?(was )?"
        r"(rejected|refused|blocked) (for|because of|due to) (its )?content",
    ),
    (
        Reason.USER_UNKNOWN,
        r"user(name)? (is )?unknown|unknown (user|recipient|mailbox|local[- ]?part|address|"
        r"e-?mail|account|alias)|no such (user|mailbox|recipient|address|person|account|"
        r"local user|e-?mail)|(user|recipient|mailbox|address|account|e-?mail)( name| address)? "
        r"(does not|doesn'?t|did not|do not) exist|(user|recipient|mailbox|address|account|alias)"
        r"( name| address)? (not found|not known|not exist|unknown|not valid)|"
        r"invalid (recipient|mailbox|user|address|e-?mail|account|destination)|"
        r"(recipient|mailbox|address|user) (is )?(invalid|not valid|unavailable|not available)|"
        r"not a valid (user|mailbox|recipient|address)|"
        r"bad (recipient|destination(?! system)|address|mailbox)|no mailbox|"
        r"is not a (known|valid|local) (user|recipient|mailbox|address)|"
        r"(recipient|user) (not|isn'?t) (local|listed)|"
        r"non-?existent|address (is )?no longer (valid|in use)|invalid (final delivery )?userid|"
        r"(recipient|user|mailbox|address)( name| address)? is not recognized|"
        r"no longer (a )?valid|no account|account that you tried to reach does not exist|"
        r"there is no one|user not exist|not our customer|"
        r"badrcptto|validrcptto|not listed in|"
        r"could not be found|(user|recipient|account) doesn'?t have|not a known user|"
        r"inconnu|unbekannt|desconocid|inexistente|no existe|nicht gefunden|user not found|"
        r"no mail ?box here|not a (local|valid) address|\buser doesn'?t exist|"
        r"address (is not recognized|not recognized)|undeliverable address|"
        r"no such address|destination addresses? (were |was )?unknown|can'?t accept user|"
        r"unknown e-?mail address|unknown or illegal alias|not a valid recipient|"
        r"\buser \S{1,80} (does not|doesn'?t) exist|bad[ _-]recipient|no valid recipients",
    ),
    (
        Reason.NOT_ACCEPT,
        r"(host|domain|host/domain) does not accept mail|mail receiving disabled|"
        r"name server: \.: host not found|no mx record found for domain=|"
        r"no route for current request|smtp protocol returned a permanent error",
    ),
    (
        Reason.NETWORK_ERROR,
        r"host not found, try again|dns records for the destination computer could not be|"
        r"unrouteable mail domain|malformed (or unexpected )?name server reply|"
        r"host name lookup failure|unable to resolve route|no route to host|"
        r"hop count exceeded|forwarding loop|message looping|routing loop|too many hops",
    ),
    (
        Reason.HOST_UNKNOWN,
        r"domain must exist|mail domain mentioned in e-?mail address is unknown|"
        r"account or domain may not exist|host unreachable|"
        r"host (or domain name )?(not found|unknown)|unknown host|(domain|host)( name)? "
        r"(does not exist|doesn'?t exist|not found|unknown|lookup failed|not resolvable)|"
        r"no (mx|a|dns|mail exchanger)( record)?s? (for|found)|name or service not known|"
        r"unrouteable (mail )?domain|domain (is )?(not|no longer) (valid|registered|exist)|"
        r"(recipient|destination) domain (not found|does not exist|invalid|unknown)|nxdomain|"
        r"illegal host|unknown domain|invalid domain|no such domain|domain not found|"
        r"mx (record )?(lookup )?(failed|not found)|unable to resolve|hostname lookup failed|"
        r"bad destination system|unrouteable address|the domain is not reachable|"
        r"(?<![@\w.-])[a-z0-9-]+(\.[a-z0-9-]+)+\.? (does not|doesn'?t) exist",
    ),
    (
        # A whole system that takes no mail (RFC 7505 null MX, X.3.2): before "filtered",
        # whose "recipient ... not accepting" it would otherwise read as.
        Reason.NOT_ACCEPT,
        r"system not accepting network messages|\bnull mx\b|accepts no mail|"
        r"(mx|srv) record indicated no smtp service",
    ),
    (
        Reason.FILTERED,
        r"filter|(rejected|refused|blocked|denied) by (the )?(recipient|user|addressee)|"
        r"\buser reject|recipient'?s? preferences|blocked by the recipient|"
        r"account is protected by|refuses? to receive|only accepting mail from specific|"
        r"not accepting (e-?)?mail with|"
        r"recipient.{0,40}(refuses|does not accept|doesn'?t accept|not accept|rejected your)|"
        r"not authori[sz]ed to (send|receive)|(white|allow) ?list|only accepts? (mail|e-?mail|"
        r"messages) from|does not accept mail from|restricted (to|mailbox|recipient)|"
        r"not allowed to (receive|send)|private (mailbox|address)|permission denied|"
        r"access denied|not permitted to (send|post)|recipient (is )?blocked|"
        r"sender is (not )?(in|on) (the )?(recipient'?s? )?(block|white|allow)",
    ),
    (
        Reason.POLICY_VIOLATION,
        r"policy|prohibited|violat|acceptable use|terms of service|not (allowed|permitted) by|"
        r"local rule|administrative(ly)? (prohibited|denied)|content not accepted",
    ),
    (
        Reason.CONTENT_ERROR,
        r"media error|"
        r"(header|mime|encoding|charset|line length|8-?bit|body) .{0,30}(syntax|invalid|"
        r"malformed|not compliant|error|too long|illegal)|improper use of 8-bit|"
        r"invalid (header|mime|character|content)|bare (lf|cr)|message (header|headers) "
        r"(too|is|are) .{0,20}(long|large|invalid)|line too long|mime complexity|"
        r"improperly-formatted binary content|unnecessary base64 encoding|"
        r"too many received: headers",
    ),
    (
        Reason.SPEEDING,
        r"rate limit|too (much|many) (mail|messages|emails)|sending (rate|too fast)|too fast|"
        r"exceeded .{0,30}(rate|sending)|throttl|slow down|message rate|rate exceeded|"
        r"too many (messages|mails|e-?mails)|try again slower|temporarily rate limited|"
        r"receiving mail at a rate",
    ),
    (
        Reason.TOO_MANY_CONN,
        r"too many (concurrent |simultaneous |smtp )?(connections|sessions)|"
        r"connection (limit|count) (exceeded|reached)|maximum (number of )?connections",
    ),
    (
        Reason.SYSTEM_FULL,
        r"(system|server|disk|spool|filesystem) (is )?(full|out of (disk|space))|"
        r"insufficient system storage|no space left|queue (is )?full",
    ),
    (
        Reason.NOT_ACCEPT,
        r"(does not|doesn'?t) accept (any )?(e-?)?mail|not accepting (any )?(e-?)?mail|null mx|"
        r"no mail (is )?accepted|accepts no mail|not accept(ing)? (any )?mail",
    ),
    (
        Reason.FAILED_STARTTLS,
        r"starttls|tls (is )?required|must issue a starttls|encryption required|"
        r"tls (handshake|negotiation)",
    ),
    (
        Reason.SYSTEM_ERROR,
        r"aliasing/forwarding loop broken|can'?t create user output file|"
        r"could not load drd|internal error reading data|interrupted system call|"
        r"encountered an error while being processed|would create a mail loop|"
        r"local configuration error|local error in processing|"
        r"loop was found in the mail exchanger|loops back to myself|queue file write error|"
        r"there is no mdb|remote server is misconfigured|timeout waiting for input|"
        r"temporary local problem|unable to connect .{0,40}daemon",
    ),
    (
        Reason.EXPIRED,
        r"connection timed out|server did not respond|giving up on|delivery expired|"
        r"message timed out|could not find a gateway for|failed to deliver to domain|"
        r"not reachable within the allowed queue period|after multiple retries|"
        r"has not been collected after|could not be delivered for more than",
    ),
    (
        Reason.NETWORK_ERROR,
        r"(connection|network|dns|lookup|tls) (timed out|timeout|refused|reset|failure|error|"
        r"lost|problem)|timed out|time ?out|no route to host|network is unreachable|"
        r"temporary (dns|lookup|network)|mail (forwarding )?loop|too many hops|"
        r"loop(s)? (back to myself|detected)|routing loop|could not connect|unable to connect|"
        r"connect to .{0,80}(failed|refused)|lost connection|while talking to|"
        r"host (is )?(down|unreachable)|connection (refused|reset)|"
        r"name (service|server) (error|reply|failure)|unexpected name server reply",
    ),
    (
        Reason.EXPIRED,
        r"delivery (time|period) (has )?(expired|exceeded)|retry (time|timeout|period)|"
        r"(message|mail) (has been |was |is )?(delayed|expired|queued too long)|"
        r"could not be delivered (within|for|in) \d+|gave up|giving up|"
        r"(undeliverable|undelivered|not (been )?delivered) (for|within|after|in) (the last )?\d+|"
        r"too long in (the )?queue|expired|has not (yet )?been delivered|"
        r"delivery attempts? (will continue|failed for|exceeded|has been delayed)|"
        r"time limit exceeded|(\d+|several) (hours|days) without|delivery (is )?delayed|"
        r"will (continue|keep) (trying|to try)|still trying|remains undeliverable",
    ),
    (
        Reason.SECURITY_ERROR,
        r"authentication (required|failed)|not authenticated|auth(entication)? (is )?required|"
        r"security (policy|error|violation)|must (be )?authenticat|delivery not authori[sz]ed",
    ),
    (
        Reason.MAILER_ERROR,
        r"mailer error|program (exited|terminated)|exit (status|code)|command (died|failed)|"
        r"procmail|pipe to |local delivery failed|unknown mailer|x-unix|\bsh: |maildrop",
    ),
    (
        Reason.SYSTEM_ERROR,
        r"system (error|failure|problem|config)|internal (server )?error|server (error|failure|"
        r"problem|misconfigur)|local error|temporar(y|ily) (failure|error|problem|unavailable)|"
        r"service (not available|unavailable|temporarily unavailable)|configuration error|"
        r"mail ?(server|system) (error|failure|problem)|i/o error|database error|"
        r"resources temporarily|unexpected error|try again later|"
        r"service (is )?currently unavailable|could not load",
    ),
    (
        Reason.SYNTAX_ERROR,
        r"syntax error|command (not recognized|unrecognized)|bad sequence of commands|"
        r"command out of sequence|unrecognized command",
    ),
)
# Wording so general that it only names the reason when nothing more specific did.
_FALLBACK_TEXT: tuple[tuple[Reason, str], ...] = (
    (
        Reason.USER_UNKNOWN,
        r"recipient (address )?rejected|address (rejected|refused)|mailbox unavailable|"
        r"mailbox not available|requested action not taken: mailbox",
    ),
)
_COMPILED_REASONS = tuple(
    (reason, re.compile(pattern, re.IGNORECASE))
    for reason, pattern in (
        *_GMAIL_TEXT,
        *_MICROSOFT_TEXT,
        *_YAHOO_APPLE_TEXT,
        *_REASON_TEXT,
        *_FALLBACK_TEXT,
    )
)

# RFC 3463 status -> reason, for a report whose text names nothing better: the enhanced
# status codes of the IANA registry as sisimai reads them (its SMTP status table). The class
# matters: a 4.2.1 is a mailbox refusing us for now (blocked), a 5.2.1 a mailbox that
# refuses this mail (filtered); 4.x.y codes about the address itself are left to the text,
# since a transient "no such user" says nothing final.
_STATUS_REASONS: dict[str, Reason] = {
    "4.1.6": Reason.HAS_MOVED,
    "4.1.7": Reason.REJECTED,
    "4.1.8": Reason.REJECTED,
    "4.1.9": Reason.SYSTEM_ERROR,
    "4.2.1": Reason.BLOCKED,
    "4.2.2": Reason.MAILBOX_FULL,
    "4.2.3": Reason.EXCEED_LIMIT,
    "4.2.4": Reason.FILTERED,
    "4.3.1": Reason.SYSTEM_FULL,
    "4.3.2": Reason.NOT_ACCEPT,
    "4.3.3": Reason.SYSTEM_ERROR,
    "4.3.5": Reason.SYSTEM_ERROR,
    "4.4.1": Reason.EXPIRED,  # no answer from host, until the queue gave up
    "4.4.2": Reason.NETWORK_ERROR,
    "4.4.3": Reason.SYSTEM_ERROR,
    "4.4.4": Reason.NETWORK_ERROR,
    "4.4.5": Reason.SYSTEM_FULL,  # mail system congestion
    "4.4.6": Reason.NETWORK_ERROR,
    "4.4.7": Reason.EXPIRED,
    "4.4.8": Reason.NETWORK_ERROR,
    "4.5.3": Reason.SYSTEM_ERROR,
    "4.5.5": Reason.SYSTEM_ERROR,
    "4.7.1": Reason.BLOCKED,
    "4.7.2": Reason.BLOCKED,
    "4.7.5": Reason.SECURITY_ERROR,
    "4.7.6": Reason.SECURITY_ERROR,
    "4.7.7": Reason.SECURITY_ERROR,
    "4.7.12": Reason.SECURITY_ERROR,
    "4.7.15": Reason.SECURITY_ERROR,
    "4.7.16": Reason.MESG_TOO_BIG,
    "4.7.24": Reason.AUTH_FAILURE,
    "4.7.25": Reason.REQUIRE_PTR,
    "4.7.26": Reason.AUTH_FAILURE,
    "5.1.0": Reason.USER_UNKNOWN,
    "5.1.1": Reason.USER_UNKNOWN,
    "5.1.2": Reason.HOST_UNKNOWN,
    "5.1.3": Reason.USER_UNKNOWN,
    "5.1.4": Reason.FILTERED,  # ambiguous: the address matched several mailboxes
    "5.1.6": Reason.HAS_MOVED,
    "5.1.7": Reason.REJECTED,
    "5.1.8": Reason.REJECTED,
    "5.1.9": Reason.SYSTEM_ERROR,
    "5.1.10": Reason.NOT_ACCEPT,  # RFC 7505 null MX
    "5.2.0": Reason.FILTERED,
    "5.2.1": Reason.FILTERED,
    "5.2.2": Reason.MAILBOX_FULL,
    "5.2.3": Reason.EXCEED_LIMIT,
    "5.2.4": Reason.FILTERED,
    "5.3.0": Reason.SYSTEM_ERROR,
    "5.3.1": Reason.SYSTEM_FULL,
    "5.3.2": Reason.NOT_ACCEPT,
    "5.3.3": Reason.SYSTEM_ERROR,
    "5.3.4": Reason.MESG_TOO_BIG,
    "5.3.5": Reason.SYSTEM_ERROR,
    "5.4.0": Reason.NETWORK_ERROR,
    "5.4.3": Reason.SYSTEM_ERROR,
    "5.4.4": Reason.HOST_UNKNOWN,  # unable to route: no MX, no A
    "5.5.2": Reason.SYNTAX_ERROR,
    "5.5.3": Reason.TOO_MANY_CONN,  # too many recipients for one transaction
    "5.5.4": Reason.SYSTEM_ERROR,
    "5.5.5": Reason.SYSTEM_ERROR,
    "5.5.6": Reason.SYNTAX_ERROR,
    "5.7.13": Reason.SUSPEND,  # user account disabled
    "5.7.16": Reason.MESG_TOO_BIG,
    "5.7.17": Reason.HAS_MOVED,  # RFC 7293: mailbox owner has changed
    "5.7.18": Reason.HAS_MOVED,  # RFC 7293: domain owner has changed
    "5.7.20": Reason.AUTH_FAILURE,
    "5.7.21": Reason.AUTH_FAILURE,
    "5.7.22": Reason.AUTH_FAILURE,
    "5.7.23": Reason.AUTH_FAILURE,
    "5.7.24": Reason.AUTH_FAILURE,
    "5.7.25": Reason.REQUIRE_PTR,
    "5.7.26": Reason.AUTH_FAILURE,
    "5.7.27": Reason.NOT_ACCEPT,
    "5.7.28": Reason.SPAM_DETECTED,  # part of a flood of similar abusive messages
    "5.7.29": Reason.AUTH_FAILURE,  # ARC validation failed
    "5.7.30": Reason.FAILED_STARTTLS,  # REQUIRETLS support required
}
# What an unlisted status still says by its subject: X.6 media, X.7 security or policy.
_STATUS_SUBJECTS: dict[str, Reason] = {"6": Reason.CONTENT_ERROR, "7": Reason.SECURITY_ERROR}
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([245]\d\d)[ -]")


def status_in(text: str) -> str | None:
    """The first RFC 3463 status code (``5.1.1``) written in a text, if any."""
    match = _STATUS.search(text)
    return match.group(0) if match else None


def reason_of(status: str | None, diagnostic: str | None, context: str = "") -> Reason:
    """The reason a recipient failed (see ``_reason_of``); a name lookup that failed for
    the moment (a 4.x.x status) is a network problem, not a domain that does not exist."""
    reason = _reason_of(status, diagnostic, context)
    if reason is Reason.HOST_UNKNOWN and (status or "").startswith("4."):
        return Reason.NETWORK_ERROR
    if reason is Reason.MESG_TOO_BIG and (status or "")[1:] == ".2.3":
        return Reason.EXCEED_LIMIT  # X.2.3: over an administrative limit of the mailbox
    return reason


def final_reason(reason: Reason, action: str, status: str | None) -> Reason:
    """A delay, an expiry or a final failure with a transient status that names nothing
    better is a message the queue is giving up on: expired. One that quotes network
    trouble stays a network error, as sisimai reads it."""
    if action.startswith(("delay", "expire")) and reason in _UNSURE_OF:
        return Reason.EXPIRED
    if action.startswith("fail") and (status or "").startswith("4.") and reason in _UNSURE_OF:
        return Reason.EXPIRED
    return reason


_UNSURE_OF = frozenset({Reason.ON_HOLD, Reason.UNDEFINED})


def _group_post(reason: Reason, address: str) -> Reason:
    """A post to a Google group that Google returns without saying why (its notice is
    localised) is refused for the sender: not a member, or the group closed to posts."""
    if reason in _UNSURE_OF and address.endswith("@googlegroups.com"):
        return Reason.REJECTED
    return reason


# SMTP replies that name a reason by their number alone: RFC 7504's 521 and 556 (the host
# or the domain takes no mail) and RFC 4954's 525 (the user's account is disabled).
_REPLY_REASONS: dict[str, Reason] = {
    "521": Reason.NOT_ACCEPT,
    "556": Reason.NOT_ACCEPT,
    "525": Reason.SUSPEND,
}


def _reply_reason(text: str) -> Reason | None:
    reply = _SMTP_CODE.search(text)
    return _REPLY_REASONS.get(reply.group(1)) if reply else None


def _status_reason(code: str, text: str) -> Reason | None:
    """The reason an enhanced status code names (``_STATUS_REASONS``), else its subject's,
    else a 501-507 (or 401-407) reply's: a command the server could not parse."""
    found = _STATUS_REASONS.get(code)
    if found is None:
        found = _STATUS_SUBJECTS.get(code.split(".")[1] if "." in code else "")
    if found is None:
        reply = _SMTP_CODE.search(text)
        if reply and int(reply.group(1)) % 100 in range(1, 8) and reply.group(1)[0] in "45":
            found = Reason.SYNTAX_ERROR
    return found


def _reason_of(status: str | None, diagnostic: str | None, context: str = "") -> Reason:
    """The reason a recipient failed: the diagnostic's words, else the status code, else
    the words around the recipient in the report's text, else ``onhold``/``undefined``.

    A 2.x.x status is a delivery, whatever the text says.
    """
    code = (status or "").strip()
    if code.startswith("2."):
        return Reason.DELIVERED
    text = " ".join((diagnostic or "").split())
    if text:
        found = _text_reason(text) or _reply_reason(text)
        if found is not None:
            return found
    if not code:
        code = status_in(text) or ""
    if code:
        by_code = _status_reason(code, text)
        if by_code is not None and by_code is not Reason.SECURITY_ERROR:
            return by_code
        context_reason = _text_reason(" ".join(context.split())) if context else None
        if context_reason is not None:
            return context_reason
        if by_code is not None:
            return by_code
    elif context:
        found = _text_reason(" ".join(context.split()))
        if found is not None:
            return found
    return Reason.ON_HOLD if text else Reason.UNDEFINED


_IN_REPLY_TO = re.compile(
    r"in reply to (?:end of )?(data|rcpt|mail|helo|ehlo)\b|"
    r"(?:after|in response to) (?:the )?(?:end of )?(data|rcpt to|mail from|helo|ehlo)\b",
    re.IGNORECASE,
)
_COMMAND_LINE = re.compile(r"^\s*(?:>>>|->)\s*([a-z]+)", re.IGNORECASE)


def refused_at(diagnostic: str | None, context: str) -> str | None:
    """The SMTP command the refusal answered (``DATA``, ``RCPT`` ...), if the report says:
    Postfix's "in reply to end of DATA command", Exim's "after RCPT TO", or the last
    ``>>> COMMAND`` line of a Sendmail or Courier transcript before the reply."""
    for text in (diagnostic or "", context):
        found = _IN_REPLY_TO.search(text)
        if found:
            return (found.group(1) or found.group(2)).split()[0].upper()
    command: str | None = None
    needle = (diagnostic or "")[:24].lower()
    for line in context.splitlines():
        stripped = line.strip()
        sent = _COMMAND_LINE.match(stripped)
        if sent:
            command = sent.group(1).upper()
        elif stripped.startswith("<<<") and (not needle or needle[:12] in stripped.lower()):
            return command
    return None


def refused_after_data(diagnostic: str | None, context: str) -> bool:
    """Whether the refusal answered DATA rather than RCPT."""
    return refused_at(diagnostic, context) == "DATA"


# Reasons that name the recipient's address bad (or, filtered, its filter), which a refusal
# before the recipient was even named cannot mean.
_ADDRESS_REASONS = frozenset(
    {Reason.USER_UNKNOWN, Reason.HOST_UNKNOWN, Reason.FILTERED, Reason.SYNTAX_ERROR}
)
_UNSURE = frozenset({Reason.ON_HOLD, Reason.UNDEFINED})
# qmail and others say at which stage the session failed, before quoting the reply.
_STAGE_TEXT: tuple[tuple[Reason, re.Pattern[str]], ...] = (
    (Reason.BLOCKED, re.compile(r"but my name was rejected|(greeting|banner) (was )?rejected",
                                re.IGNORECASE)),
    (Reason.REJECTED, re.compile(r"but sender was rejected", re.IGNORECASE)),
)  # fmt: skip
# RFC 3463 statuses about the sender's address (X.1.7, X.1.8, X.7.27), not the recipient's.
_SENDER_STATUS = frozenset({"1.7", "1.8", "7.27"})


def _stage_reason(
    reason: Reason, status: str | None, diagnostic: str | None, context: str
) -> Reason:
    """The reason corrected by when in the session the refusal came (sisimai's rules).

    A refusal at MAIL FROM, or with a status about the sender (X.1.7, X.1.8), is about
    our address: rejected, never the recipient's fault, whatever its words ("no such
    domain" is our domain then). One at HELO/EHLO or at the greeting is about our host:
    blocked. A "user unknown" after DATA is a filter: a server that knew the address did
    not exist would have said so at RCPT, or named it bad with an X.1.x status (Japanese
    carriers answer their users' sender filters this way). When the report does not say
    which command was refused, the words are taken at their meaning: most servers refuse
    an unknown user at RCPT, though sisimai reads that case as filtered too.
    """
    detail = (status or "").split(".", 1)[-1]
    if detail in _SENDER_STATUS and reason in _ADDRESS_REASONS | _UNSURE:
        return Reason.REJECTED
    if reason in _ADDRESS_REASONS | _UNSURE:
        for staged, regex in _STAGE_TEXT:
            if regex.search(context) or regex.search(diagnostic or ""):
                return staged
    command = refused_at(diagnostic, context) if reason in _ADDRESS_REASONS else None
    if command == "MAIL":
        return Reason.REJECTED
    if command in ("HELO", "EHLO"):
        return Reason.BLOCKED
    if reason is Reason.USER_UNKNOWN and command == "DATA" and not detail.startswith("1."):
        return Reason.FILTERED
    return reason


def _text_reason(text: str) -> Reason | None:
    for reason, regex in _COMPILED_REASONS:
        if regex.search(text):
            return reason
    return None


# --- small readers ----------------------------------------------------------------------------

_ADDRESS = re.compile(
    r"(?<![\w.+=-])([\w.!#$%&'*+/=?^`{|}~-]{1,64}@[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)+)",
    re.IGNORECASE,
)
_MSGID = re.compile(r"<[^<>\s]+@[^<>\s]+>|<[^<>\s]+>")
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")


def _decode(data: bytes, charset: str | None) -> str:
    for name in (charset or "utf-8", "utf-8", "cp1252"):
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return _decode(payload, part.get_content_charset())
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _field_blocks(text: str) -> list[dict[str, str]]:
    """``Name: value`` groups separated by blank lines, continuation lines unfolded."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
            current, last = {}, None
            continue
        if line[0] in " \t" and last is not None:
            current[last] += " " + line.strip()
            continue
        match = _FIELD.match(line)
        if match:
            last = match.group(1).lower()
            current.setdefault(last, match.group(2).strip())
    if current:
        blocks.append(current)
    return blocks


def _report_blocks(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks: list[dict[str, str]] = []
        for block in payload:
            if isinstance(block, Message):
                fields: dict[str, str] = {}
                for name, value in block.items():
                    fields.setdefault(name.lower(), " ".join(str(value).split()))
                blocks.append(fields)
        return blocks
    return _field_blocks(_part_text(part))


def _address_of(value: str | None) -> tuple[str, bool]:
    """The address in a ``type; address`` field and whether it is a full address.

    ``rfc822; rfc822;fred@example.net`` (XWall) and ``LOCAL;<f.b>`` both occur.
    """
    if not value:
        return "", False
    text = value.split(";")[-1].strip().strip("<>").strip()
    found = _ADDRESS.search(value)
    if found:
        return found.group(1).lower().strip("."), True
    return text.lower(), False


def _msgid(value: str | None) -> str | None:
    if not value:
        return None
    found = _MSGID.search(value)
    if found:
        return found.group(0)
    # Some report writers drop the angle brackets (``Message-ID: abc@host``).
    bare = value.strip()
    return f"<{bare}>" if "@" in bare and not any(c.isspace() for c in bare) else None


@dataclass(frozen=True)
class _Original:
    message_id: str | None
    to: tuple[str, ...]
    senders: tuple[str, ...]
    # Microsoft's junk-mail reporting program (JMRP) marks the complaining recipient here.
    reported_by: str | None = None


def _original(msg: Message, body_text: str) -> _Original:
    """Message-ID, To and From of the returned original: attached, or quoted in the text."""
    for part in msg.walk():
        ctype = part.get_content_type()
        headers: Message | None = None
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                headers = inner
            elif isinstance(payload, str):
                headers = message_from_string(payload, policy=email_policy.compat32)
        elif ctype in ("text/rfc822-headers", "text/rfc822-header", "message/global-headers"):
            headers = message_from_string(_part_text(part), policy=email_policy.compat32)
        if headers is not None and (headers.get("message-id") or headers.get("to")):
            reporter = _addresses(str(headers.get("x-hmxmroriginalrecipient") or ""))
            return _Original(
                _msgid(str(headers.get("message-id") or "")) or _written_message_id(msg),
                _addresses(str(headers.get("to") or "")),
                _addresses(" ".join(str(headers.get(h) or "") for h in ("from", "sender"))),
                reporter[0] if reporter else None,
            )
    quoted = _quoted_original(body_text)
    if quoted.message_id is None:
        return replace(quoted, message_id=_written_message_id(msg))
    return quoted


_MESSAGE_ID_LINE = re.compile(r"^[ \t>]*message-id[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


def _written_message_id(msg: Message) -> str | None:
    """The first Message-ID field anywhere below the report's own headers: where MIME
    hid the returned original (headers taken for a part's own, a ``message/partial``, a
    continuation line that is not indented), its fields are still written there."""
    found = _MESSAGE_ID_LINE.search(_whole_text(msg))
    return _msgid(found.group(1)) if found else None


_QUOTED_HEADER = re.compile(
    r"^[ \t>]*(message-id|to|from)[ \t]*:[ \t]*(.+)$", re.IGNORECASE | re.MULTILINE
)


def _quoted_original(text: str) -> _Original:
    found: dict[str, str] = {}
    for match in _QUOTED_HEADER.finditer(text):
        found.setdefault(match.group(1).lower(), match.group(2))
    return _Original(
        _msgid(found.get("message-id")),
        _addresses(found.get("to", "")),
        _addresses(found.get("from", "")),
    )


def _addresses(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.lower().strip(".") for m in _ADDRESS.findall(text)))


# --- RFC 5965 feedback reports ----------------------------------------------------------------


def _feedback(msg: Message, original: _Original) -> DeliveryReport | None:
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        fields: dict[str, str] = {}
        for block in _report_blocks(part):
            for name, value in block.items():
                fields.setdefault(name, value)
        kind = fields.get("feedback-type", "abuse").strip().lower() or "abuse"
        targets = [
            a
            for name in ("original-rcpt-to", "removal-recipient")
            for a in _addresses(fields.get(name, ""))
        ]
        if not targets:
            targets = list(original.to)
        if not targets:
            # "To: undisclosed": only our outbox knows whom the reported message went to;
            # an empty address leaves it to the pipeline (Message-ID, VERP return path).
            targets = [""]
        recipients = tuple(
            DsnRecipient(a, "failed", None, f"feedback-type: {kind}", Reason.FEEDBACK.value)
            for a in dict.fromkeys(targets)
        )
        return DeliveryReport(
            recipients, original.message_id, "arf", "feedback", original.to, feedback_type=kind
        )
    if original.reported_by:
        recipient = DsnRecipient(
            original.reported_by, "failed", None, "feedback-type: abuse", Reason.FEEDBACK.value
        )
        return DeliveryReport(
            (recipient,),
            original.message_id,
            "jmrp",
            "feedback",
            original.to,
            feedback_type="abuse",
        )
    return None


# --- RFC 3464 delivery-status (and XWall's x-delivery-status) ---------------------------------

_DSN_TYPES = {
    "message/delivery-status": "rfc3464",
    "message/global-delivery-status": "rfc3464",
    "message/xdelivery-status": "xdelivery-status",
}


def _delivery_status(
    msg: Message, original: _Original, human: str, failed_header: Sequence[str]
) -> DeliveryReport | None:
    for part in msg.walk():
        detected = _DSN_TYPES.get(part.get_content_type())
        if detected is None:
            continue
        report = _from_blocks(_report_blocks(part), detected, original, human, failed_header)
        if report is not None:
            return report
    # Some MTAs (and any report whose MIME is broken) write the fields into the text.
    if "final-recipient" in human.lower():
        return _from_blocks(_field_blocks(human), "rfc3464-text", original, human, failed_header)
    return None


def _from_blocks(
    blocks: Sequence[Mapping[str, str]],
    detected: str,
    original: _Original,
    human: str,
    failed_header: Sequence[str],
) -> DeliveryReport | None:
    recipients: list[DsnRecipient] = []
    notes: list[str] = []
    for block in blocks:
        if "final-recipient" not in block and "original-recipient" not in block:
            continue
        address, full = _address_of(block.get("final-recipient"))
        if not full:
            alternative, alt_full = _address_of(block.get("original-recipient"))
            if alt_full:
                address, full = alternative, True
        if not full:
            fallback = _local_fallback(address, failed_header, original.to)
            if fallback is not None:
                notes.append(f"recipient {address!r} read as {fallback}")
                address, full = fallback, True
        if not address:
            continue
        action = block.get("action", "").strip().lower()
        status = status_in(block.get("status", "")) or None
        diagnostic = block.get("diagnostic-code") or None
        diag_text = diagnostic.split(";", 1)[-1].strip() if diagnostic else None
        if status is None and diag_text:
            status = status_in(diag_text)
        if not action:
            action = "failed" if (status or "5").startswith("5") else "delayed"
        context = _context(human, address)
        reason = _stage_reason(reason_of(status, diag_text, context), status, diag_text, context)
        if action.startswith(("deliver", "relay", "expand")):
            reason = Reason.DELIVERED
        else:
            reason = final_reason(_group_post(reason, address), action, status)
        recipients.append(DsnRecipient(address, action, status, diag_text, reason.value))
    if recipients:
        return DeliveryReport(
            tuple(recipients),
            original.message_id,
            detected,
            _kind(recipients),
            original.to,
            notes=tuple(notes),
        )
    return None


def _local_fallback(
    local: str, failed_header: Sequence[str], original_to: Sequence[str]
) -> str | None:
    """The full address for ``LOCAL;<f.b>``: the failed-recipients header or the original's
    To whose local part it is, else the original's only recipient."""
    name = local.split("@", 1)[0].lower()
    for candidate in list(failed_header) + list(original_to):
        if name and candidate.split("@", 1)[0] == name:
            return candidate
    if len(original_to) == 1:
        return original_to[0]
    return None


_NOT_FAILED = ("delay", "deliver", "relay", "expand")


def _kind(recipients: Sequence[DsnRecipient]) -> ReportKind:
    """Failure if any recipient failed (``failed``, ``expired``, SendGrid's and others'
    own words), else delay if any was delayed, else a delivery receipt."""
    actions = {r.action for r in recipients}
    if any(not a.startswith(_NOT_FAILED) for a in actions):
        return "failure"
    if any(a.startswith("delay") for a in actions):
        return "delay"
    return "delivered"


# --- plain-text bounces -----------------------------------------------------------------------

# Where the returned original starts in a plain-text bounce; its addresses are not failures.
_ORIGINAL_START = re.compile(
    r"^[ \t]*(-{2,}.{0,30}(original message|copy of (the|your) message|returned message|"
    r"unsent message|message (text|headers) follow|below this line|original headers)|"
    r"-+ ?(original|returned) message|original message follows|"
    r"(the )?(text|headers) of (the|your) (original )?message follows?|"
    r"your message (reads|was)( \(in part\))?:|------ this is a copy|"
    r"--- below this line is a copy|below is a copy of the original|"
    r"message headers follow|received: from )",
    re.IGNORECASE | re.MULTILINE,
)
_DELAY_TEXT = re.compile(
    r"\b(warning|delayed|delay|not yet been delivered|will (continue|keep) (trying|to try)|"
    r"still trying|will be retried|no action is required|temporar(y|ily) (failure|problem))\b",
    re.IGNORECASE,
)
_FAILURE_TEXT = re.compile(
    r"(undeliver|could not be delivered|couldn'?t be delivered|delivery (has )?failed|"
    r"failed permanently|permanent (fatal )?error|fatal error|returned mail|"
    r"(not|n'?t) (be )?delivered|delivery to the following|rejected|unknown|does not exist|"
    r"failure|failed|not found|bounced|unable to deliver|no such|non[- ]?delivery|"
    r"unzustellbar|non remis|no (se ha podido|pudo) entregar|nao (foi )?entregue|"
    r"\berrors?\b|did not like|did not reach|could not deliver|couldn'?t deliver|"
    r"not reach|(was|were) not delivered|delivery (was )?unsuccessful)",
    re.IGNORECASE,
)
_REPORT_SUBJECT = re.compile(
    r"(undeliver|delivery (status|failure|has failed|notification|problem|report)|"
    r"returned mail|mail delivery failed|failure notice|non[- ]?delivery|nondeliverable|"
    r"could not be delivered|delivery failed|mail system error|warning: could not send|"
    r"message not delivered|returned to sender|unzustellbar|non remis|no entregado|"
    r"nao entregue|bounce|rejected|mail failure|user unknown|delivery error)",
    re.IGNORECASE,
)
_FORWARDED_SUBJECT = re.compile(r"^\s*(re|fwd?|enc|rv|aw|tr|wg)\s*:", re.IGNORECASE)


def _human_text(msg: Message) -> str:
    """The report's own words: its text parts outside the returned original."""
    if not msg.is_multipart():
        text = _part_text(msg)
        return text if msg.get_content_maintype() == "text" else ""
    parts: list[str] = []
    stack: list[Message] = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
            continue
        if part.is_multipart():
            payload = part.get_payload()
            stack[0:0] = [p for p in payload if isinstance(p, Message)]
            continue
        if ctype in ("text/plain", "text/html") and part.get_content_disposition() != "attachment":
            text = _part_text(part)
            if ctype == "text/html":
                text = re.sub(r"<[^>]+>", " ", re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text))
                text = re.sub(r"&nbsp;|&#160;", " ", text).replace("&lt;", "<").replace("&gt;", ">")
            parts.append(text)
    return "\n\n".join(parts)


def _context(text: str, address: str) -> str:
    """The report's words about ``address``: from the paragraph naming it up to the next
    recipient it names (Gmail and Exchange put the reason paragraphs below the address)."""
    if not text or not address:
        return ""
    lowered = text.lower()
    index = lowered.find(address.lower())
    if index < 0:
        return ""
    start = text.rfind("\n\n", 0, index)
    start = max(0 if start < 0 else start, index - 400)
    # Another recipient named earlier in the paragraph has its own lines (Postfix, qmail
    # list them one after another): start at the line naming this one.
    for match in _ADDRESS.finditer(text, start, index):
        other = match.group(1).lower()
        if other != address.lower() and not is_daemon(other):
            start = max(start, text.rfind("\n", 0, index) + 1)
            break
    end = min(len(text), index + 1200)
    for match in _ADDRESS.finditer(text, index + len(address), end):
        other = match.group(1).lower()
        if other != address.lower() and not is_daemon(other):
            end = match.start()
            break
    return text[start:end]


def _flufl(msg: Message) -> tuple[list[str], list[str]]:
    try:
        temporary, permanent = flufl.bounce.all_failures(msg)
    except Exception:  # its detectors raise on odd input; the text is still read below
        return [], []
    decode = lambda values: sorted(  # noqa: E731 - a one-line helper
        {v.decode("utf-8", "replace").lower().strip("<>. ") for v in values}
    )
    return decode(permanent), decode(temporary)


def looks_like_report(
    headers: Mapping[str, str], from_address: str, from_name: str | None, subject: str
) -> bool:
    """Machine-sent, or a subject only delivery software writes (not a reply or forward)."""
    if is_null_sender(headers.get("return-path")) or not from_address:
        return True
    if is_daemon(from_address, from_name):
        return True
    if headers.get("x-failed-recipients", "").strip():
        return True
    if headers.get("content-type", "").lower().startswith("multipart/report"):
        return True
    auto = headers.get("auto-submitted", "").strip().lower()
    forwarded = bool(_FORWARDED_SUBJECT.match(subject))
    if not forwarded and LOCALISED_REPORT_SUBJECT.search(subject):
        return True
    if auto and not auto.startswith("no") and _REPORT_SUBJECT.search(subject):
        return True
    return (
        not forwarded
        and bool(_REPORT_SUBJECT.search(subject))
        and bool(re.search(r"(?i)mail|deliver|bounce|undeliver|unzustell|remis|entreg", subject))
    )


def _text_bounce(
    msg: Message,
    original: _Original,
    human: str,
    failed_header: Sequence[str],
    own: Iterable[str],
) -> DeliveryReport | None:
    permanent, temporary = _flufl(msg)
    detected = "flufl.bounce"
    cut = _ORIGINAL_START.search(human)
    report_text = human[: cut.start()] if cut else human
    excluded = set(own) | set(original.senders)
    if not permanent and not temporary:
        permanent = [a for a in failed_header if a not in excluded]
        detected = "x-failed-recipients" if permanent else "text"
    if not permanent and not temporary:
        if not _FAILURE_TEXT.search(report_text):
            return None
        candidates = [
            a
            for a in _addresses(report_text)
            if a not in excluded and not is_daemon(a) and not a.startswith(("abuse@", "help@"))
        ]
        if not candidates and original.to and _FAILURE_TEXT.search(report_text):
            # The report names no address but returns the message: the original's To.
            candidates = [a for a in original.to if a not in excluded]
            detected = "text+original"
        if not candidates:
            return None
        delayed = bool(_DELAY_TEXT.search(report_text)) and not re.search(
            r"(?i)permanent|fatal|undeliverable|gave up|giving up|could not be delivered",
            report_text,
        )
        if delayed:
            temporary = candidates
        else:
            permanent = candidates
    recipients: list[DsnRecipient] = []
    single = len({a for a in (*permanent, *temporary) if "@" in a}) == 1
    for addresses, action in ((permanent, "failed"), (temporary, "delayed")):
        for address in addresses:
            if "@" not in address:
                continue
            context = _context(report_text, address) or report_text[:1500]
            status = status_in(context)
            diagnostic = _diagnostic_line(context) or _said_on_its_line(context, address)
            reason = _stage_reason(
                reason_of(status, diagnostic, context), status, diagnostic, context
            )
            if reason in (Reason.ON_HOLD, Reason.UNDEFINED) and single:
                # The reason stands above the address ("Error: invalid user ... RCPT TO:"):
                # about the only recipient, the whole report speaks.
                whole = report_text[:3000]
                status = status or status_in(whole)
                diagnostic = diagnostic or _diagnostic_line(whole)
                reason = _stage_reason(
                    reason_of(status, diagnostic, whole), status, diagnostic, whole
                )
            reason = final_reason(_group_post(reason, address), action, status)
            recipients.append(DsnRecipient(address, action, status, diagnostic, reason.value))
    if not recipients:
        return None
    return DeliveryReport(
        tuple(recipients), original.message_id, detected, _kind(recipients), original.to
    )


_SMTP_LINE = re.compile(r"^.*\b[45]\d\d[ -].*$", re.MULTILINE)


def _diagnostic_line(context: str) -> str | None:
    """The remote server's reply quoted in the text (``550 5.1.1 ... user unknown``)."""
    match = _SMTP_LINE.search(context)
    if match:
        return " ".join(match.group(0).split())[:500]
    return None


_ITS_LINE_REST = re.compile(r"^[\s>:.,;-]*(?:\.\.\.|:|-)\s*(\S.{3,})$")


def _said_on_its_line(context: str, address: str) -> str | None:
    """The words after a recipient on its own line, where no server reply is quoted: Smail's
    ``a@b.example ... unknown host``, a gateway's ``<a@b.example>: no such user``."""
    lowered = context.lower()
    index = lowered.find(address.lower())
    if index < 0:
        return None
    end = context.find("\n", index)
    rest = context[index + len(address) : end if end >= 0 else len(context)].lstrip(">")
    found = _ITS_LINE_REST.match(rest)
    return " ".join(found.group(1).split())[:500] if found else None


# --- Amazon SES notifications (JSON, often wrapped in an SNS envelope) ---------------------------


def _ses_notification(human: str) -> DeliveryReport | None:
    text = human.strip()
    if not text.startswith("{") or "notificationType" not in text:
        return None
    try:
        # SNS envelopes arrive line-wrapped, with an unsubscribe footer after the JSON.
        data, _ = json.JSONDecoder(strict=False).raw_decode(text)
        if isinstance(data.get("Message"), str):
            data = json.loads(data["Message"], strict=False)
    except (ValueError, AttributeError):
        return None
    if not isinstance(data, dict):
        return None
    kind = str(data.get("notificationType", "")).lower()
    headers = (data.get("mail") or {}).get("commonHeaders") or {}
    message_id = _msgid(str(headers.get("messageId") or ""))
    to = tuple(a.lower() for a in headers.get("to") or [] if isinstance(a, str))
    recipients: list[DsnRecipient] = []
    if kind == "bounce":
        for entry in (data.get("bounce") or {}).get("bouncedRecipients") or []:
            status = status_in(str(entry.get("status") or "")) or None
            diagnostic = str(entry.get("diagnosticCode") or "").split(";", 1)[-1].strip() or None
            action = str(entry.get("action") or "failed").lower()
            reason = reason_of(status, diagnostic)
            address = str(entry.get("emailAddress") or "").lower()
            recipients.append(DsnRecipient(address, action, status, diagnostic, reason.value))
        report_kind: ReportKind = _kind(recipients) if recipients else "failure"
        return DeliveryReport(tuple(recipients), message_id, "amazon-ses", report_kind, to)
    if kind == "complaint":
        complaint = data.get("complaint") or {}
        feedback = str(complaint.get("complaintFeedbackType") or "abuse").lower()
        for entry in complaint.get("complainedRecipients") or []:
            address = str(entry.get("emailAddress") or "").lower()
            recipients.append(
                DsnRecipient(address, "failed", None, f"feedback-type: {feedback}", "feedback")
            )
        return DeliveryReport(
            tuple(recipients), message_id, "amazon-ses", "feedback", to, feedback_type=feedback
        )
    if kind == "delivery":
        recipients = [
            DsnRecipient(a.lower(), "delivered", "2.0.0", None, Reason.DELIVERED.value)
            for a in (data.get("delivery") or {}).get("recipients") or []
            if isinstance(a, str)
        ]
        return DeliveryReport(tuple(recipients), message_id, "amazon-ses", "delivered", to)
    return None


# --- entry point ------------------------------------------------------------------------------

# Parts only reports carry, and the attached message a JMRP complaint is made of.
_REPORT_PARTS = frozenset(
    {*_DSN_TYPES, "message/feedback-report", "message/rfc822", "text/rfc822-headers"}
)


_JSON_START = re.compile(r"\s*\{")
# Challenge-response filters (Boxbe, Bluebottle, Spam Arrest ...) hold our message until
# the sender proves itself, some of them in a delivery-status report: no failure.
_CHALLENGE = re.compile(
    r"sender not pre-?approved|add yourself to (my|the recipient'?s?) .{0,20}(guest|allowed|"
    r"approved) ?(senders? )?list|to have your address added to the recipient'?s? allowed|"
    r"challenge[- ]response|verify (that )?you are (a )?(human|real person|not a robot)",
    re.IGNORECASE,
)


def _has_report_part(msg: Message) -> bool:
    return msg.is_multipart() and any(
        part.get_content_type() in _REPORT_PARTS for part in msg.walk()
    )


def _may_be_notification(msg: Message) -> bool:
    """A single JSON text (an Amazon SES notification), checked without decoding it all."""
    if msg.is_multipart():
        return False
    payload = msg.get_payload()
    return isinstance(payload, str) and _JSON_START.match(payload) is not None


def read_report(
    msg: Message,
    headers: Mapping[str, str],
    from_address: str,
    from_name: str | None,
    subject: str,
    own_addresses: Iterable[str] = (),
) -> DeliveryReport | None:
    """The bounce or feedback report in ``msg``, or ``None`` if it is not one.

    RFC 5965 and RFC 3464 parts are read whoever sent them (they are decisive); plain-text
    bounces only when the message is machine-sent or titled like one, since reading
    addresses out of prose is a heuristic. ``own_addresses`` (the report's own From and To)
    are never taken for failed recipients.
    """
    machine = looks_like_report(headers, from_address, from_name, subject) or (
        # A person passing a bounce on, or asking about one, is not one.
        not _FORWARDED_SUBJECT.match(subject) and written_by_delivery_software(msg)
    )
    if not machine and not _has_report_part(msg) and not _may_be_notification(msg):
        return None  # most mail: a person's, with nothing a report is made of
    human = _human_text(msg)
    original = _original(msg, human)
    failed_header = _addresses(headers.get("x-failed-recipients", ""))
    feedback = _feedback(msg, original)
    if feedback is not None:
        return feedback
    if _CHALLENGE.search(human[:6000]):
        return None  # the message waits for us to verify ourselves: nothing failed
    report = _delivery_status(msg, original, human, failed_header)
    if report is not None:
        return report
    report = _ses_notification(human)
    if report is not None:
        return report
    if not machine:
        return None
    own = {a.lower() for a in own_addresses if a}
    report = _text_bounce(msg, original, human, failed_header, own)
    if report is None and msg.is_multipart():
        # A report part the MIME parser folded away (a boundary off by a dash, a part
        # without headers): read the whole body as the report's text.
        whole = _whole_text(msg)
        if whole and whole != human:
            report = _text_bounce(msg, original, whole, failed_header, own)
    if report is None and _sent_as_report(headers, from_address, from_name, subject):
        report = _unnamed_recipient(original, human, subject)
    return report


def _sent_as_report(
    headers: Mapping[str, str], from_address: str, from_name: str | None, subject: str
) -> bool:
    """A failure report by every sign a mail system sets on purpose: a null return path,
    a mailer-daemon or a report's MIME type, and a subject only delivery software writes."""
    signed = (
        is_null_sender(headers.get("return-path"))
        or is_daemon(from_address, from_name)
        or headers.get("content-type", "").lower().startswith("multipart/report")
        or bool(headers.get("x-failed-recipients", "").strip())
    )
    titled = bool(
        _REPORT_SUBJECT.search(subject)
        or LOCALISED_REPORT_SUBJECT.search(subject)
        or _FAILURE_SUBJECT.search(subject)
    )
    return signed and titled and not _FORWARDED_SUBJECT.match(subject)


# Words a mail system's own notice uses for a failure: enough once the sender is the mail
# system itself (a null return path, a mailer-daemon), not on their own.
_FAILURE_SUBJECT = re.compile(
    r"fail|error|undeliver|not (been )?delivered|returned|bounce|rejected|unknown|"
    r"nondeliver|non-deliver|could not|can'?t deliver|delay|problem",
    re.IGNORECASE,
)


def _unnamed_recipient(original: _Original, human: str, subject: str) -> DeliveryReport:
    """A report that names no recipient we can read ("<<< No Message Collected >>>", a
    body in an unreadable form): still a bounce, its recipient left for the pipeline to
    find through our outbox (the original's Message-ID or the VERP address it came to)."""
    text = f"{subject}\n{human[:3000]}"
    delayed = bool(_DELAY_TEXT.search(subject))
    status = status_in(text)
    diagnostic = _diagnostic_line(text)
    reason = reason_of(status, diagnostic, text)
    if delayed and reason in (Reason.ON_HOLD, Reason.UNDEFINED):
        reason = Reason.EXPIRED
    only = original.to[0] if len(original.to) == 1 else ""
    recipient = DsnRecipient(
        only, "delayed" if delayed else "failed", status, diagnostic, reason.value
    )
    return DeliveryReport(
        (recipient,), original.message_id, "subject", _kind([recipient]), original.to
    )


def _whole_text(msg: Message) -> str:
    try:
        text = msg.as_string()
    except Exception:  # an unencodable header or part: nothing more to read
        return ""
    _, _, body = text.partition("\n\n")
    return body


def smtp_reply_reason(code: int | None, reply: str) -> Reason:
    """The reason in an SMTP server's refusal during our own send (``550 5.1.1 ...``).

    The same table as for bounces, so a ``550 5.1.1 user unknown`` at RCPT means what it
    would mean in a DSN.
    """
    text = " ".join(reply.split())
    status = status_in(text)
    if status is None and code is not None and 200 <= code < 300:
        return Reason.DELIVERED
    return reason_of(status, text)


# --- what a report means, by the policy's per-reason table -------------------------------------


class ReasonRule(Protocol):
    """What ``config.inbox_policy.BounceReasonRule`` offers (kept structural: pure module)."""

    @property
    def action(self) -> str: ...

    @property
    def about(self) -> str: ...


@dataclass(frozen=True)
class Judgement:
    """A report judged by the per-reason table: whom to suppress, whom to count as soft.

    ``unresolved`` are recipients named only by a local part; the caller resolves them
    through our outbox (the Message-ID or the VERP return path) and applies ``rule_of``.
    """

    kind: ReportKind
    suppress: tuple[str, ...]
    soft: tuple[str, ...]
    unresolved: tuple[DsnRecipient, ...]
    status: str | None
    suppress_reason: Literal["hard_bounce", "complaint", "opt_out"] | None
    reasons: tuple[str, ...]


def judge_report(report: DeliveryReport, table: Mapping[str, ReasonRule]) -> Judgement:
    """Apply the per-reason table to every failed or delayed recipient of a report.

    A delay counts as a soft bounce at most; a delivery receipt changes nothing; a
    feedback report suppresses the reported recipient (an opt-out report as an opt-out,
    any other as a complaint).
    """
    suppress: list[str] = []
    soft: list[str] = []
    unresolved: list[DsnRecipient] = []
    status: str | None = None
    for rcpt in report.recipients:
        delayed = rcpt.action.startswith("delay")
        if rcpt.action.startswith(_NOT_FAILED) and not delayed:
            continue  # delivered, relayed, expanded
        rule = table.get(rcpt.reason) or table.get(Reason.UNDEFINED.value)
        if rule is None or rule.action == "ignore":
            continue
        if "@" not in rcpt.address:
            unresolved.append(rcpt)
            continue
        status = status or rcpt.status
        # A delay is never final, nor is a refusal with a transient (4.x.x) status: at
        # most a soft bounce, whatever its reason (as a 4xx reply at send time).
        transient = (rcpt.status or "").startswith("4.")
        hard = rule.action == "suppress" and not delayed and not transient
        (suppress if hard else soft).append(rcpt.address)
    reason: Literal["hard_bounce", "complaint", "opt_out"] | None = None
    if suppress:
        reason = "hard_bounce"
        if report.kind == "feedback":
            reason = "opt_out" if report.feedback_type == "opt-out" else "complaint"
    if status is None:
        status = next((r.status for r in report.recipients if r.status), None)
    return Judgement(
        report.kind,
        tuple(dict.fromkeys(suppress)),
        tuple(dict.fromkeys(a for a in soft if a not in suppress)),
        tuple(unresolved),
        status,
        reason,
        tuple(dict.fromkeys(r.reason for r in report.recipients)),
    )
