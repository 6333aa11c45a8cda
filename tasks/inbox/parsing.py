"""Turn untrusted message bytes into a typed, trusted-enough ``ParsedMail`` or a ``Malformed``.

Everything downstream (classification, suppression, contact resolution, replies we send)
reads only what this module returns, so anything that could smuggle headers or hide the
real text is rejected here with a reason code instead of being passed along.
Dirty mail that real mail clients still show correctly is read, not rejected.
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import errors as email_errors
from email import policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from enum import StrEnum
from html import unescape
from html.parser import HTMLParser
from typing import Any

from tasks.inbox.bounces import DeliveryReport, read_report
from tasks.inbox.bounces import DsnRecipient as DsnRecipient  # re-exported for callers
from tasks.inbox.machine_mail import reads_as_report


class MalformedReason(StrEnum):
    """Why a message was not trusted as an email (stored with the message)."""

    EMPTY = "empty"
    NOT_EMAIL = "not_email"
    MISSING_FROM = "missing_from"
    DUPLICATE_FROM = "duplicate_from"
    TRUNCATED = "truncated"
    INVALID_BASE64 = "invalid_base64"
    UNRECOVERABLE_MIME = "unrecoverable_mime"
    HEADER_INJECTION = "header_injection"
    TOO_DEEP = "too_deep"
    TOO_MANY_PARTS = "too_many_parts"
    TOO_LARGE = "too_large"
    OVERSIZE = "oversize"


@dataclass(frozen=True)
class ParseLimits:
    """Bounds that keep one hostile message from costing the whole run.

    Depth 8 and 200 parts are far beyond what mail clients produce (forwarded-of-forwarded
    threads reach depth 4 or 5); the byte cap mirrors the IMAP download cap.
    """

    max_depth: int = 8
    max_parts: int = 200
    max_bytes: int = 25 * 1024 * 1024
    max_text_chars: int = 200_000


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True)
class CalendarReply:
    """An iCalendar part (RFC 5546): METHOD and the attendee's answer when it is a REPLY."""

    method: str
    partstat: str | None
    uid: str | None


@dataclass(frozen=True)
class ParsedMail:
    sha256: str
    size: int
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    from_name: str | None
    from_address: str
    to: tuple[str, ...]
    subject: str
    date: datetime | None
    text: str
    html_only: bool
    attachments: tuple[Attachment, ...]
    headers: Mapping[str, str]
    forwarded: bool = False
    delivery_report: DeliveryReport | None = None
    calendar: CalendarReply | None = None
    defects: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Malformed:
    reason: MalformedReason
    detail: str
    sha256: str | None
    size: int


ParseResult = ParsedMail | Malformed

# Headers kept for classification and audit; everything else stays in the raw bytes.
HEADERS_OF_INTEREST = (
    "auto-submitted",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
    "precedence",
    "list-unsubscribe",
    "list-id",
    "return-path",
    "reply-to",
    "x-failed-recipients",
    "x-spam-flag",
    "x-spam-status",
    "content-type",
)
_ADDRESS_HEADERS = ("from", "to", "cc", "bcc", "reply-to", "sender")

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_ENCODED_WORDS = re.compile(r"(\?=)\s+(=\?)")
_MSGID = re.compile(r"<[^<>\s]+>")
# A continuation line that starts a new address header is the classic injection: one
# header on the wire, two after a naive unfold by the next relay or our own outbound mail.
_FOLDED_HEADER = re.compile(
    rb"^[ \t]+(bcc|cc|to|from|reply-to|sender|content-type)[ \t]*:", re.IGNORECASE
)
_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")
_BASE64_DEFECTS = (
    email_errors.InvalidBase64CharactersDefect,
    email_errors.InvalidBase64PaddingDefect,
    email_errors.InvalidBase64LengthDefect,
)
_FALLBACK_CHARSET = "cp1252"
# compat32, not policy.default: policy.default re-parses a header through the header
# registry on every access, which alone would hold the ingest under its 500 messages/s
# target. Every header value we use is
# decoded by ``decode_header_value`` from the raw bytes anyway, which also reads the dirty
# forms (8-bit, encoded words in quotes) that the registry drops; MIME structure, defects
# and payload decoding are the same feedparser code under both policies.
PARSE_POLICY = policy.compat32
# Labels that senders use when their text is really Windows-1252 (smart quotes, euro).
_LATIN1_LABELS = {"iso-8859-1", "latin-1", "latin1", "iso8859-1", "us-ascii", "ascii", "l1"}


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def decode_bytes(data: bytes, declared: str | None) -> str:
    """Decode text the way readers expect, falling back to cp1252 for mislabelled latin-1.

    Declared charsets are tried strictly first; UTF-8 is tried next because mail labelled
    latin-1 or ASCII is often UTF-8 in practice; cp1252 never fails on real text.
    """
    candidates: list[str] = []
    label = (declared or "").strip().strip('"').lower()
    if label in _LATIN1_LABELS:
        candidates = ["utf-8", _FALLBACK_CHARSET]
    elif label:
        candidates = [label, "utf-8", _FALLBACK_CHARSET]
    else:
        candidates = ["utf-8", _FALLBACK_CHARSET]
    for charset in candidates:
        try:
            return data.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(_FALLBACK_CHARSET, errors="replace")


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, payload = match.group(1), match.group(2).upper(), match.group(3)
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    try:
        if encoding == "B":
            import base64

            data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=False)
        else:
            import quopri

            data = quopri.decodestring(payload.replace("_", " ").encode("ascii"), header=True)
    except (ValueError, UnicodeEncodeError):
        return match.group(0)
    return decode_bytes(data, charset)


def decode_header_value(raw: str) -> str:
    """Unfold and decode a header value, including encoded words where RFC 2047 forbids them.

    ``raw`` comes from ``raw_items()`` and may carry raw 8-bit bytes as surrogates, or is
    a value the email package already decoded (an RFC 2231 filename), so real non-ASCII
    characters pass through as UTF-8; encoded words inside quoted strings are decoded too
    because senders' clients produce them and readers display them decoded.
    """
    data = raw.encode("utf-8", "surrogateescape")
    text = decode_bytes(data, None) if any(b > 127 for b in data) else raw
    text = re.sub(r"\r?\n(?=[ \t])", "", text)
    if "=?" in text:
        text = _BETWEEN_ENCODED_WORDS.sub(r"\1\2", text)
        text = _ENCODED_WORD.sub(_decode_word, text)
    return text.strip()


class _HtmlToText(HTMLParser):
    _BLOCK = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
    )
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: scripts and styles dropped, blocks become lines."""
    parser = _HtmlToText()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # pragma: no cover - HTMLParser is lenient
        return unescape(re.sub(r"<[^>]+>", " ", html))
    text = "".join(parser.parts)
    lines = [re.sub(r"[ \t\xa0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _header_block(raw: bytes) -> tuple[bytes, bool]:
    """The raw header block and whether a blank line ended it."""
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        return raw, False
    return raw[: match.start()], True


def _first_line_is_header(raw: bytes) -> bool:
    first = raw.lstrip(b"\r\n").split(b"\n", 1)[0]
    if first.startswith(b"From "):  # mbox separator line
        return True
    return bool(_HEADER_LINE.match(first))


def _normalise_msgid(value: str | None) -> str | None:
    if not value:
        return None
    found = _MSGID.findall(value)
    if found:
        return found[0]
    cleaned = value.strip()
    return f"<{cleaned}>" if cleaned and " " not in cleaned else None


def _walk_with_depth(msg: Message, depth: int = 0) -> list[tuple[Message, int]]:
    out: list[tuple[Message, int]] = [(msg, depth)]
    if msg.is_multipart():
        payload = msg.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    out.extend(_walk_with_depth(sub, depth + 1))
    return out


def _part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _part_text(part: Message, limits: ParseLimits) -> str:
    text = decode_bytes(_part_bytes(part), part.get_content_charset())
    return text[: limits.max_text_chars]


def _is_binary_garbage(text: str) -> bool:
    """Text that is mostly control characters cannot be recovered as anything a person wrote."""
    if not text:
        return False
    sample = text[:4000]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t\f")
    replaced = sample.count("\ufffd")
    return (controls + replaced) / len(sample) > 0.1


_ICAL_METHOD = re.compile(r"^METHOD:(\S+)", re.MULTILINE | re.IGNORECASE)
_ICAL_PARTSTAT = re.compile(r"PARTSTAT=([A-Z-]+)", re.IGNORECASE)
_ICAL_UID = re.compile(r"^UID:(.+)$", re.MULTILINE | re.IGNORECASE)


def _calendar(part: Message) -> CalendarReply | None:
    text = re.sub(r"\r?\n[ \t]", "", decode_bytes(_part_bytes(part), part.get_content_charset()))
    method = _ICAL_METHOD.search(text)
    if method is None:
        return None
    partstat = _ICAL_PARTSTAT.search(text)
    uid = _ICAL_UID.search(text)
    return CalendarReply(
        method.group(1).upper(),
        partstat.group(1).upper() if partstat else None,
        uid.group(1).strip() if uid else None,
    )


def _malformed(reason: MalformedReason, detail: str, raw: bytes) -> Malformed:
    return Malformed(reason, detail, sha256_hex(raw), len(raw))


def oversize_record(size: int) -> Malformed:
    """The stored result for a message we refused to download (no bytes, so no hash)."""
    return Malformed(MalformedReason.OVERSIZE, f"{size} bytes over the download cap", None, size)


def _check_headers(raw: bytes, msg: Message) -> Malformed | None:
    block, terminated = _header_block(raw)
    for line in block.splitlines():
        match = _FOLDED_HEADER.match(line)
        if match:
            name = match.group(1).decode("ascii").title()
            return _malformed(
                MalformedReason.HEADER_INJECTION, f"folded {name}: inside a header", raw
            )
    if not terminated and not raw.endswith((b"\n", b"\r")):
        return _malformed(MalformedReason.TRUNCATED, "ended inside the header block", raw)
    froms = msg.get_all("from") or []
    if len(froms) > 1:
        return _malformed(MalformedReason.DUPLICATE_FROM, f"{len(froms)} From headers", raw)
    if not froms and not reads_as_report(msg):
        return _malformed(MalformedReason.MISSING_FROM, "no From header", raw)
    return None


def parse_message(raw: bytes, limits: ParseLimits | None = None) -> ParseResult:
    """Parse untrusted bytes; never raises for bad input, returns ``Malformed`` instead."""
    limits = limits or ParseLimits()
    if not raw.strip():
        return _malformed(MalformedReason.EMPTY, "no bytes", raw)
    if len(raw) > limits.max_bytes:
        return _malformed(MalformedReason.TOO_LARGE, f"{len(raw)} bytes", raw)
    # A NUL among the headers means binary data; one in a body is a defect mail systems
    # pass on (a returned original with a stray NUL), not a reason to stop reading.
    if b"\x00" in _header_block(raw[:65536])[0] or not _first_line_is_header(raw):
        return _malformed(MalformedReason.NOT_EMAIL, "does not start with a header", raw)
    try:
        result = _parse(raw, limits)
    except (RecursionError, MemoryError):
        return _malformed(MalformedReason.TOO_DEEP, "parser recursion limit", raw)
    except Exception as exc:  # the stdlib parser has edge cases; a bad message must not stop a run
        result = _malformed(MalformedReason.UNRECOVERABLE_MIME, type(exc).__name__, raw)
    if isinstance(result, Malformed) and result.reason in _REPORT_RECOVERABLE:
        return _report_as_text(raw, result, limits) or result
    return result


# Broken MIME that mail systems produce in their own reports (a boundary that never
# starts, base64 cut short, a folded Content-Type). A report is read as plain text
# then: we never reply to it or take a contact from it, only the failed recipients.
_REPORT_RECOVERABLE = frozenset(
    {
        MalformedReason.UNRECOVERABLE_MIME,
        MalformedReason.TRUNCATED,
        MalformedReason.INVALID_BASE64,
        MalformedReason.HEADER_INJECTION,
    }
)


def _report_as_text(raw: bytes, failed: Malformed, limits: ParseLimits) -> ParsedMail | None:
    """A bounce whose MIME is broken, read as one text: its DSN fields, its quoted headers."""
    try:
        msg = email.message_from_bytes(raw, policy=PARSE_POLICY)
        if not reads_as_report(msg):
            return None
        headers = {
            name.lower(): decode_header_value(str(value)).replace("\r", " ").replace("\n", " ")
            for name, value in reversed(list(msg.raw_items()))
        }
        block, _ = _header_block(raw)
        text = decode_bytes(raw[len(block) :], None)[: limits.max_text_chars]
        flat = email.message_from_string("Content-Type: text/plain\n\n" + text)
        from_name, from_address = _from(headers.get("from", ""), msg)
        subject = headers.get("subject", "")
        to = tuple(addr.lower() for _, addr in getaddresses([headers.get("to", "")]) if addr)
        report = read_report(flat, headers, from_address, from_name, subject, (from_address, *to))
    except Exception:  # still broken: the original verdict stands
        return None
    if report is None:
        return None
    return ParsedMail(
        sha256=sha256_hex(raw),
        size=len(raw),
        message_id=_normalise_msgid(headers.get("message-id")),
        in_reply_to=None,
        references=(),
        from_name=from_name,
        from_address=from_address,
        to=to,
        subject=subject,
        date=_date(headers.get("date")),
        text=text,
        html_only=False,
        attachments=(),
        headers={k: v for k, v in headers.items() if k in HEADERS_OF_INTEREST},
        delivery_report=report,
        defects=(f"read as text: {failed.reason.value} ({failed.detail})",),
    )


def _parse(raw: bytes, limits: ParseLimits) -> ParseResult:
    msg = email.message_from_bytes(raw, policy=PARSE_POLICY)
    if not msg.keys():
        return _malformed(MalformedReason.NOT_EMAIL, "no headers", raw)
    if (bad := _check_headers(raw, msg)) is not None:
        return bad

    headers: dict[str, str] = {}
    for name, value in msg.raw_items():
        decoded = decode_header_value(str(value))
        if "\r" in decoded or "\n" in decoded:
            return _malformed(
                MalformedReason.HEADER_INJECTION, f"line break in decoded {name}", raw
            )
        key = name.lower()
        if (
            key in HEADERS_OF_INTEREST
            or key in _ADDRESS_HEADERS
            or key
            in (
                "subject",
                "date",
                "message-id",
                "in-reply-to",
                "references",
            )
        ):
            headers.setdefault(key, decoded)

    walked = _walk_with_depth(msg)
    depth = max(d for _, d in walked)
    if depth > limits.max_depth:
        return _malformed(MalformedReason.TOO_DEEP, f"nesting depth {depth}", raw)
    if len(walked) > limits.max_parts:
        return _malformed(MalformedReason.TOO_MANY_PARTS, f"{len(walked)} parts", raw)

    defects: list[str] = []
    for part, _ in walked:
        for defect in part.defects:
            defects.append(type(defect).__name__)
            if isinstance(
                defect,
                email_errors.StartBoundaryNotFoundDefect | email_errors.NoBoundaryInMultipartDefect,
            ):
                return _malformed(MalformedReason.UNRECOVERABLE_MIME, type(defect).__name__, raw)
    missing_close = "CloseBoundaryNotFoundDefect" in defects
    if missing_close and not raw.rstrip(b" \t").endswith((b"\n", b"\r")):
        return _malformed(MalformedReason.TRUNCATED, "ends mid-line inside a multipart", raw)

    from_name, from_address = _from(headers.get("from", ""), msg)
    if not from_address and not reads_as_report(msg):
        return _malformed(MalformedReason.MISSING_FROM, "From has no address", raw)

    text_parts: list[str] = []
    attachments: list[Attachment] = []
    calendar: CalendarReply | None = None
    forwarded = False
    body = _body_part(msg)
    html_only = body is not None and body.get_content_type() == "text/html"
    for part, _ in walked:
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        data = _part_bytes(part)
        if any(isinstance(d, _BASE64_DEFECTS) for d in part.defects):
            if missing_close:
                return _malformed(MalformedReason.TRUNCATED, "base64 cut short", raw)
            return _malformed(MalformedReason.INVALID_BASE64, f"in {ctype} part", raw)
        if ctype == "text/calendar" and calendar is None:
            calendar = _calendar(part)
        if part is body:
            continue
        if ctype in ("message/rfc822",) or part.get_content_maintype() == "multipart":
            continue
        is_attachment = part.get_content_disposition() == "attachment" or part.get_filename()
        if is_attachment or not ctype.startswith("text/"):
            attachments.append(Attachment(_safe_filename(part.get_filename()), ctype, len(data)))

    if body is not None:
        text = _part_text(body, limits)
        if html_only:
            text = html_to_text(text)
        if _is_binary_garbage(text):
            return _malformed(MalformedReason.UNRECOVERABLE_MIME, "body text is binary", raw)
        text_parts.append(text)
    for part, _ in walked:
        if part is msg or part.get_content_type() != "message/rfc822":
            continue
        inner = part.get_payload()
        inner_msg = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(inner_msg, Message):
            forwarded = True
            inner_body = _body_part(inner_msg)
            inner_text = _part_text(inner_body, limits) if inner_body is not None else ""
            if inner_body is not None and inner_body.get_content_type() == "text/html":
                inner_text = html_to_text(inner_text)
            text_parts.append(
                "---------- Forwarded message ----------\n"
                f"From: {decode_header_value(str(inner_msg.get('from') or ''))}\n"
                f"Subject: {decode_header_value(str(inner_msg.get('subject') or ''))}\n\n"
                f"{inner_text}"
            )
    text = "\n\n".join(t for t in text_parts if t).replace("\r\n", "\n")
    subject = headers.get("subject", "")
    if re.match(r"^\s*(fwd?|enc|rv|reenv)\s*:", subject, re.IGNORECASE):
        forwarded = True

    to = tuple(addr.lower() for _, addr in getaddresses([headers.get("to", "")]) if addr)
    delivery = read_report(msg, headers, from_address, from_name, subject, (from_address, *to))

    return ParsedMail(
        sha256=sha256_hex(raw),
        size=len(raw),
        message_id=_normalise_msgid(headers.get("message-id")),
        in_reply_to=_normalise_msgid(headers.get("in-reply-to")),
        references=tuple(_MSGID.findall(headers.get("references", ""))),
        from_name=from_name,
        from_address=from_address,
        to=to,
        subject=subject,
        date=_date(headers.get("date")),
        text=text[: limits.max_text_chars],
        html_only=html_only,
        attachments=tuple(attachments),
        headers={k: v for k, v in headers.items() if k in HEADERS_OF_INTEREST},
        forwarded=forwarded,
        delivery_report=delivery,
        calendar=calendar,
        defects=tuple(dict.fromkeys(defects)),
    )


def _body_part(msg: Message) -> Message | None:
    """The part a mail client shows: first inline text/plain, else first inline text/html.

    Parts inside attached messages (forwards) are not the body; they are read separately.
    """
    if not msg.is_multipart():
        return msg if msg.get_content_type() in ("text/plain", "text/html") else None
    found: dict[str, Message] = {}
    stack: list[Message] = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            continue
        if part.is_multipart():
            payload = part.get_payload()
            stack[0:0] = [p for p in payload if isinstance(p, Message)]
            continue
        if ctype in ("text/plain", "text/html") and part.get_content_disposition() != "attachment":
            found.setdefault(ctype, part)
    return found.get("text/plain") or found.get("text/html")


def _from(decoded_from: str, msg: Message) -> tuple[str | None, str]:
    # Parse addresses on the raw value so a decoded name containing commas or quotes
    # cannot change where the address is; decode the display name afterwards.
    raw_values = [str(v) for k, v in msg.raw_items() if k.lower() == "from"]
    raw = re.sub(r"\r?\n(?=[ \t])", "", raw_values[0]) if raw_values else decoded_from
    pairs = getaddresses([raw])
    for name, addr in pairs:
        if "@" in addr:
            clean_name = decode_header_value(name).strip().strip('"').strip() or None
            return clean_name, decode_header_value(addr).lower()
    return None, ""


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _safe_filename(name: str | None) -> str | None:
    if not name:
        return None
    name = decode_header_value(name)
    base = re.split(r"[\\/]", name)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:255] or None


def summarize(result: ParseResult) -> dict[str, Any]:
    """A flat, JSON-able view for artifacts and exports (no body text: it may be personal)."""
    if isinstance(result, Malformed):
        return {"malformed": result.reason.value, "detail": result.detail, "sha256": result.sha256}
    return {
        "message_id": result.message_id,
        "from": result.from_address,
        "subject": result.subject,
        "date": result.date.isoformat() if result.date else None,
        "attachments": len(result.attachments),
        "sha256": result.sha256,
    }
