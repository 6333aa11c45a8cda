"""Render outreach (email, event invitation, fax) from templates and contact data.

Pure: data in, bytes out, no clock (the caller passes the instant) and no network. The
wire format of an email is composed here directly rather than through ``EmailMessage``
assembly and ``as_bytes``, which cost about 4 ms per message on this machine and alone
would cap a campaign below the 500 msg/s target; ``OutgoingEmail.message`` parses the
result back into an ``EmailMessage`` when something needs to look inside.

Every data value that reaches a header is refused if it carries a line break, raw or
hidden in an RFC 2047 encoded word: Python 3.11.7 predates the CVE-2024-6923 fix, so the
``email`` package would not stop a header injection for us.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import quopri
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import phonenumbers
from fpdf import FPDF
from icalendar import Calendar, Event, vCalAddress, vText
from markupsafe import escape
from pydantic import SecretStr

from config.campaign_policy import (
    TEMPLATES_DIR,
    Campaign,
    Channel,
    InvitationEvent,
    Language,
    Step,
)
from config.settings import Settings
from connectors.fax_gateway import FaxDocument
from connectors.link_secrets import link_key_ring
from connectors.smtp_sender import OutgoingEmail


class RenderError(ValueError):
    """A message cannot be rendered from this template and data."""


class HeaderInjectionError(RenderError):
    """A data value bound for a header carries a line break (raw or RFC 2047-encoded)."""

    def __init__(self, field: str, value: str) -> None:
        super().__init__(f"{field}: line break or control character in {value[:60]!r}")
        self.field = field


class InvalidAddressError(RenderError):
    """An address is not a plain ASCII dot-atom address we can put on an envelope."""


# Everything str.splitlines() treats as a line end, plus the other C0 controls and DEL:
# the email package splits on these when it parses and refolds headers.
_HEADER_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[^?\s]*\?[^?\s]*\?=")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$")


def refuse_line_breaks(field: str, value: str) -> str:
    """Return ``value`` if it is safe in a header; else raise ``HeaderInjectionError``.

    Encoded words are decoded and checked too, so ``=?utf-8?q?a=0D=0ABcc:x?=`` is
    refused as surely as a raw CRLF; an undecodable encoded word is refused as well.
    """
    if _HEADER_FORBIDDEN.search(value):
        raise HeaderInjectionError(field, value)
    for word in _ENCODED_WORD.findall(value):
        try:
            decoded = "".join(
                part.decode(charset or "ascii", "replace") if isinstance(part, bytes) else part
                for part, charset in decode_header(word)
            )
        except (ValueError, LookupError) as exc:
            raise HeaderInjectionError(field, value) from exc
        if _HEADER_FORBIDDEN.search(decoded):
            raise HeaderInjectionError(field, value)
    return value


def checked_address(field: str, address: str) -> str:
    """An envelope-safe address: ASCII dot-atom local part and a hostname, nothing else."""
    refuse_line_breaks(field, address)
    if len(address) > 254 or not _ADDRESS.match(address):
        raise InvalidAddressError(f"{field}: not a deliverable ASCII address: {address[:80]!r}")
    return address


# ---------------------------------------------------------------------------- identities


def idempotency_key(campaign: str, contact_id: int, step: str) -> str:
    """The outbox's unique key for (campaign, contact, step): same inputs, same key.

    Hashed so its length is fixed and it can sit in a Message-ID without leaking names.
    """
    material = f"outbox-v1\x1f{campaign}\x1f{contact_id}\x1f{step}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


def message_id_for(key: str, domain: str) -> str:
    """A stable Message-ID, so replies and bounces quoting it map back to the outbox row."""
    refuse_line_breaks("message-id domain", domain)
    return f"<{key}@{domain}>"


def _secret_bytes(secret: SecretStr | bytes) -> bytes:
    return secret.get_secret_value().encode() if isinstance(secret, SecretStr) else secret


def _mac(secret: bytes, purpose: str, payload: bytes) -> bytes:
    # The purpose prefix keeps a MAC minted for one use (VERP) from passing as another.
    return hmac.new(secret, purpose.encode() + b"\x00" + payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class UnsubscribeRequest:
    """Who asked to stop, as recovered from a verified token."""

    contact_id: int
    campaign: str


_MAX_TOKEN_CHARS = 256


def sign_unsubscribe_token(contact_id: int, campaign: str, secret: SecretStr | bytes) -> str:
    """An unguessable, never-expiring token naming the contact and campaign.

    The full 256-bit HMAC is kept: the token is all that stands between a URL and a
    suppression, and it never expires, so there is no reason to shorten it.
    """
    payload = f"v1:{contact_id}:{campaign}".encode()
    return f"{_b64(payload)}.{_b64(_mac(_secret_bytes(secret), 'unsubscribe', payload))}"


def _signed_payload(token: str, secret: SecretStr | bytes, purpose: str) -> bytes | None:
    """The payload of a ``payload.mac`` token we signed for ``purpose``, else ``None``."""
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 1:
        return None
    encoded_payload, encoded_mac = token.split(".")
    try:
        payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
    except (ValueError, TypeError):
        return None
    if not hmac.compare_digest(mac, _mac(_secret_bytes(secret), purpose, payload)):
        return None
    return payload


def verify_unsubscribe_token(token: str, secret: SecretStr | bytes) -> UnsubscribeRequest | None:
    """The request a token stands for, or ``None`` for anything not minted by us."""
    payload = _signed_payload(token, secret, "unsubscribe")
    if payload is None:
        return None
    version, _, rest = payload.decode("ascii", "replace").partition(":")
    contact, _, campaign = rest.partition(":")
    if version != "v1" or not contact.isdigit() or not campaign:
        return None
    return UnsubscribeRequest(int(contact), campaign)


@dataclass(frozen=True)
class ConfirmRequest:
    """Whose details a re-verification email asked to confirm, and which email asked."""

    contact_id: int
    outbox_id: int


def sign_confirm_token(contact_id: int, outbox_id: int, secret: SecretStr | bytes) -> str:
    """A token for a re-verification email's "my details are right" link.

    Signed like an unsubscribe token, for its own purpose, and bound to the outbox row that
    carried it, so the confirmation is valid only as long as that email is recent.
    """
    payload = f"v1:{contact_id}:{outbox_id}".encode()
    return f"{_b64(payload)}.{_b64(_mac(_secret_bytes(secret), 'confirm', payload))}"


def verify_confirm_token(token: str, secret: SecretStr | bytes) -> ConfirmRequest | None:
    """The confirmation a token stands for, or ``None`` for anything not minted by us."""
    payload = _signed_payload(token, secret, "confirm")
    if payload is None:
        return None
    parts = payload.decode("ascii", "replace").split(":")
    if len(parts) != 3 or parts[0] != "v1" or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return ConfirmRequest(int(parts[1]), int(parts[2]))


_VERP = re.compile(
    r"^(?P<local>[^+@]+)\+o(?P<id>[0-9]{1,18})-(?P<mac>[0-9a-f]{12})@(?P<domain>.+)$"
)


def return_path_for(outbox_id: int, local: str, domain: str, secret: SecretStr | bytes) -> str:
    """The VERP envelope sender ``local+o<id>-<mac>@domain`` for one outbox row.

    The short MAC stops a forged bounce to a guessed address from suppressing a contact.
    Lowercase hex only, because some MTAs fold the case of local parts.
    """
    mac = _mac(_secret_bytes(secret), "verp", str(outbox_id).encode()).hex()[:12]
    return checked_address("return path", f"{local}+o{outbox_id}-{mac}@{domain}")


def parse_return_path(
    address: str, secret: SecretStr | bytes | Sequence[SecretStr | bytes]
) -> int | None:
    """The outbox id a bounce address was minted for, or ``None`` if it is not ours.

    ``secret`` may be the accepted list of ``connectors.link_secrets.accepted_secrets``
    (current first, then those retired within their grace): a bounce can arrive days
    after the send, so an address signed before a rotation must still verify.
    """
    match = _VERP.match(address.strip().strip("<>").lower())
    if match is None:
        return None
    outbox_id = int(match["id"])
    accepted = [secret] if isinstance(secret, SecretStr | bytes) else secret
    for candidate in accepted:
        expected = _mac(_secret_bytes(candidate), "verp", str(outbox_id).encode()).hex()[:12]
        if hmac.compare_digest(match["mac"], expected):
            return outbox_id
    return None


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Contact:
    """What a template may say about the recipient (names are as stored, unescaped)."""

    contact_id: int
    full_name: str
    email: str | None = None
    first_name: str = ""
    company: str = ""
    language: str | None = None
    fax: str | None = None
    country: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    """The outbox row being rendered: its id and idempotency key identify the message."""

    outbox_id: int
    campaign: str
    step: str
    idempotency_key: str


@dataclass(frozen=True)
class LinkSigning:
    """The secret and public URL the unsubscribe links and VERP tags are built from."""

    secret: SecretStr
    public_base_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkSigning:
        current = SecretStr(link_key_ring(settings).current)
        return cls(current, settings.public_base_url.rstrip("/"))

    def unsubscribe_url(self, token: str) -> str:
        return f"{self.public_base_url}/u/{token}"

    def confirm_url(self, contact_id: int, outbox_id: int) -> str:
        """The re-verification link of one outbox row (see ``sign_confirm_token``)."""
        token = sign_confirm_token(contact_id, outbox_id, self.secret)
        return f"{self.public_base_url}/confirm/{token}"


class TemplateStore:
    """Jinja2 templates from the templates folder, compiled once per process.

    HTML templates (``*.html.j2``) autoescape; an undefined variable is an error, so a
    misspelt placeholder fails the render instead of mailing an empty greeting.
    """

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.directory = directory
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=lambda name: name is not None and name.endswith(".html.j2"),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

    def render(self, name: str, values: Mapping[str, Any]) -> str:
        try:
            return self._env.get_template(name).render(values)
        except jinja2.TemplateNotFound as exc:
            raise RenderError(f"template {name!r} not found in {self.directory}") from exc
        except (jinja2.UndefinedError, jinja2.TemplateSyntaxError) as exc:
            raise RenderError(f"template {name!r}: {exc}") from exc


# ------------------------------------------------------------------------------- email


def _encoded_words(text: str) -> str:
    """RFC 2047 B-encoded words, each at most 45 bytes of UTF-8 (72 characters), never
    splitting a character; folded with CRLF + space.

    Hand-rolled because ``email.header.Header`` spends ~0.4 ms per header on length
    bookkeeping, a third of the whole render budget.
    """
    data = text.encode("utf-8")
    words = []
    start = 0
    while start < len(data):
        end = min(start + 45, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start = end
    return "\r\n ".join(words)


def _encode_header(name: str, value: str) -> str:
    """A header line: ASCII as is, anything else as RFC 2047 encoded words."""
    if value.isascii() and "=?" not in value and len(name) + len(value) < 996:
        return f"{name}: {value}"
    return f"{name}: {_encoded_words(value)}"


def _address_header(name: str, display: str, address: str) -> str:
    refuse_line_breaks(f"{name} name", display)
    checked_address(f"{name} address", address)
    if display.isascii() and "=?" not in display:
        return f"{name}: {formataddr((display, address))}"
    return f"{name}: {_encoded_words(display)} <{address}>"


def _qp(text: str) -> bytes:
    body = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
    return body.replace(b"\n", b"\r\n")


def _text_part(subtype: str, text: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + _qp(text)


def _multipart(subtype: str, boundary: str, parts: list[bytes]) -> bytes:
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode("ascii")
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return head + body + b"--" + boundary.encode() + b"--\r\n"


@dataclass(frozen=True)
class RenderedParts:
    """The language-specific text an email is made of, before MIME assembly."""

    language: Language
    subject: str
    text: str
    html: str
    unsubscribe_token: str


def _sender_context(campaign: Campaign) -> dict[str, Any]:
    sender = campaign.sender
    return {
        "from_name": sender.from_name,
        "from_address": str(sender.from_address),
        "physical_address": sender.physical_address,
        "opt_out_phone": sender.opt_out_phone or "",
        "fax_number": sender.fax_number or "",
    }


def _context(
    campaign: Campaign,
    contact: Contact,
    language: Language,
    token: str,
    links: LinkSigning,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "language": language,
        "campaign": campaign.name,
        "contact": {
            "first_name": contact.first_name or contact.full_name.split(" ")[0],
            "full_name": contact.full_name,
            "company": contact.company,
        },
        "sender": _sender_context(campaign),
        "unsubscribe_url": links.unsubscribe_url(token),
        "unsubscribe_mailto": str(campaign.sender.unsubscribe_mailbox),
        "unsubscribe_token": token,
        **(extra or {}),
    }


def render_parts(
    campaign: Campaign,
    step: Step,
    contact: Contact,
    links: LinkSigning,
    templates: TemplateStore,
    extra: Mapping[str, Any] | None = None,
) -> RenderedParts:
    """Subject, text and HTML for one contact in the best language the campaign speaks.

    Refuses a body that lost the physical address or the unsubscribe link, so a template
    edit cannot quietly drop what anti-spam law and RFC 8058 require.
    """
    language = campaign.languages.pick(contact.language)
    token = sign_unsubscribe_token(contact.contact_id, campaign.name, links.secret)
    values = _context(campaign, contact, language, token, links, extra)
    base = f"{step.template}/{language}"
    subject = templates.render(f"{base}.subject.txt.j2", values).strip()
    text = templates.render(f"{base}.txt.j2", values)
    html = templates.render(f"{base}.html.j2", values)
    refuse_line_breaks("subject", subject)
    url = links.unsubscribe_url(token)
    address = campaign.sender.physical_address
    if url not in text or address not in text:
        raise RenderError(f"{base}.txt.j2: the footer (address, unsubscribe link) is missing")
    if str(escape(url)) not in html or str(escape(address)) not in html:
        raise RenderError(f"{base}.html.j2: the footer (address, unsubscribe link) is missing")
    return RenderedParts(language, subject, text, html, token)


def _headers(
    campaign: Campaign,
    contact: Contact,
    item: OutboxItem,
    parts: RenderedParts,
    date: datetime,
    links: LinkSigning,
) -> tuple[list[str], str, str, str]:
    sender = campaign.sender
    if contact.email is None:
        raise InvalidAddressError(f"contact {contact.contact_id} has no email address")
    to_address = checked_address("to", contact.email)
    domain = str(sender.from_address).rpartition("@")[2]
    message_id = message_id_for(item.idempotency_key, domain)
    token = parts.unsubscribe_token
    mailto = f"mailto:{sender.unsubscribe_mailbox}?subject={quote('unsubscribe ' + token)}"
    if date.tzinfo is None:
        raise ValueError("date must be timezone-aware")
    lines = [
        _address_header("From", sender.from_name, str(sender.from_address)),
        _address_header("To", contact.full_name, to_address),
        _encode_header("Subject", refuse_line_breaks("subject", parts.subject)),
        f"Date: {format_datetime(date.astimezone(UTC))}",
        f"Message-ID: {message_id}",
        # RFC 2369 / RFC 8058: one-click POST to the HTTPS URL, mailto as the fallback.
        f"List-Unsubscribe: <{links.unsubscribe_url(token)}>,\r\n <{mailto}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        f"List-Id: {campaign.name} <{campaign.name}.{sender.bounce_domain}>",
        "MIME-Version: 1.0",
    ]
    if sender.reply_to is not None:
        lines.insert(2, _address_header("Reply-To", sender.from_name, str(sender.reply_to)))
    return_path = return_path_for(
        item.outbox_id, sender.bounce_local, sender.bounce_domain, links.secret
    )
    return lines, message_id, return_path, to_address


def _assemble(
    item: OutboxItem,
    header_lines: list[str],
    body: bytes,
    message_id: str,
    return_path: str,
    to_address: str,
) -> OutgoingEmail:
    raw = "\r\n".join(header_lines).encode("ascii") + b"\r\n" + body
    return OutgoingEmail(
        outbox_id=item.outbox_id,
        raw=raw,
        envelope_from=return_path,
        recipients=(to_address,),
        message_id=message_id,
    )


def render_email(
    campaign: Campaign,
    step: Step,
    contact: Contact,
    item: OutboxItem,
    *,
    date: datetime,
    links: LinkSigning,
    templates: TemplateStore,
    extra: Mapping[str, Any] | None = None,
) -> OutgoingEmail:
    """The complete email for one outbox row: text + HTML alternative, footer, headers."""
    if step.channel is not Channel.EMAIL:
        raise RenderError(f"step {step.name!r} is a {step.channel} step, not email")
    # Every email can link to a confirmation of the recipient's details; the
    # re-verification template is the one that does.
    values = {"confirm_url": links.confirm_url(contact.contact_id, item.outbox_id), **(extra or {})}
    parts = render_parts(campaign, step, contact, links, templates, values)
    lines, message_id, return_path, to_address = _headers(
        campaign, contact, item, parts, date, links
    )
    boundary = f"=_alt_{item.idempotency_key}"
    body = _multipart(
        "alternative", boundary, [_text_part("plain", parts.text), _text_part("html", parts.html)]
    )
    return _assemble(item, lines, body, message_id, return_path, to_address)


# ------------------------------------------------------------------------- invitation


def invitation_uid(item: OutboxItem, domain: str) -> str:
    """The event UID; an RSVP (METHOD:REPLY) quotes it, which maps it to the outbox row."""
    return f"{item.idempotency_key}@{domain}"


def build_ics(
    event: InvitationEvent,
    *,
    uid: str,
    organizer_name: str,
    organizer_address: str,
    attendee_name: str,
    attendee_address: str,
    stamp: datetime,
) -> bytes:
    """An iCalendar REQUEST for one attendee, times in UTC so no VTIMEZONE is needed."""
    calendar = Calendar()
    calendar.add("prodid", "-//accountflow//outreach//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    vevent = Event()
    vevent.add("uid", uid)
    vevent.add("dtstamp", stamp.astimezone(UTC))
    vevent.add("dtstart", event.starts_at.astimezone(UTC))
    vevent.add("dtend", event.ends_at.astimezone(UTC))
    vevent.add("summary", event.title)
    vevent.add("location", event.location)
    if event.description:
        vevent.add("description", event.description)
    if event.url:
        vevent.add("url", event.url)
    vevent.add("sequence", 0)
    vevent.add("status", "CONFIRMED")
    organizer = vCalAddress(f"mailto:{organizer_address}")
    organizer.params["cn"] = vText(refuse_line_breaks("organizer name", organizer_name))
    vevent.add("organizer", organizer, encode=False)
    attendee = vCalAddress(f"mailto:{attendee_address}")
    attendee.params["cn"] = vText(refuse_line_breaks("attendee name", attendee_name))
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("NEEDS-ACTION")
    attendee.params["rsvp"] = vText("TRUE")
    vevent.add("attendee", attendee, encode=False)
    calendar.add_component(vevent)
    ics: bytes = calendar.to_ical()
    return ics


def render_invitation(
    campaign: Campaign,
    step: Step,
    contact: Contact,
    item: OutboxItem,
    *,
    date: datetime,
    links: LinkSigning,
    templates: TemplateStore,
) -> OutgoingEmail:
    """An invitation email: text + HTML + ``text/calendar; method=REQUEST`` alternatives.

    The calendar part sits inside the alternative (what Outlook and Gmail look for to
    show Accept/Decline) and is attached again as ``invite.ics`` for other clients.
    """
    if step.channel is not Channel.INVITATION or step.event is None:
        raise RenderError(f"step {step.name!r} is not an invitation step")
    event = step.event
    extra = {
        "event": {
            "title": event.title,
            "location": event.location,
            "description": event.description,
            "url": event.url or "",
            "starts_at": event.starts_at,
            "ends_at": event.ends_at,
        }
    }
    parts = render_parts(campaign, step, contact, links, templates, extra)
    lines, message_id, return_path, to_address = _headers(
        campaign, contact, item, parts, date, links
    )
    domain = str(campaign.sender.from_address).rpartition("@")[2]
    ics = build_ics(
        event,
        uid=invitation_uid(item, domain),
        organizer_name=campaign.sender.from_name,
        organizer_address=str(campaign.sender.from_address),
        attendee_name=contact.full_name,
        attendee_address=to_address,
        stamp=date,
    )
    encoded_ics = base64.encodebytes(ics).replace(b"\n", b"\r\n")
    calendar_part = (
        b'Content-Type: text/calendar; charset="utf-8"; method=REQUEST\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded_ics
    )
    attachment = (
        b'Content-Type: application/ics; name="invite.ics"\r\n'
        b'Content-Disposition: attachment; filename="invite.ics"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded_ics
    )
    alternative = _multipart(
        "alternative",
        f"=_alt_{item.idempotency_key}",
        [_text_part("plain", parts.text), _text_part("html", parts.html), calendar_part],
    )
    body = _multipart("mixed", f"=_mix_{item.idempotency_key}", [alternative, attachment])
    return _assemble(item, lines, body, message_id, return_path, to_address)


# --------------------------------------------------------------------------------- fax


# Letters NFKD does not decompose, folded the way people write them without the mark.
_NO_DECOMPOSITION = str.maketrans(
    {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Œ": "OE", "œ": "oe", "ı": "i", "Ħ": "H", "ħ": "h"}
)


def _latin1(text: str) -> str:
    """Fold text into Latin-1 for the PDF core fonts: accents of pt/es survive as is;
    other letters lose their marks (NFKD) and what is left becomes '?'."""
    if all(ord(ch) < 256 for ch in text):
        return text
    folded = []
    for ch in text.translate(_NO_DECOMPOSITION):
        if ord(ch) < 256:
            folded.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
        folded.append(base or "?")
    return "".join(folded)


def e164(number: str, region: str | None) -> str:
    """The number in E.164, or ``InvalidAddressError`` if it is not a valid number."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddressError(f"fax number {number!r}: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidAddressError(f"fax number {number!r} is not a valid number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def build_fax_pdf(notice: str, body: str, *, created: datetime, compress: bool = True) -> bytes:
    """A PDF whose first page opens with the opt-out notice in a bordered box.

    The notice is placed by code, not by the template, so no template can leave it out
    (US 47 CFR 64.1200(a)(4)(iii): clear and conspicuous, on the first page).
    """
    pdf = FPDF(format="A4")
    pdf.set_compression(compress)
    pdf.set_creation_date(created.astimezone(UTC))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 10)
    pdf.multi_cell(0, 5, _latin1(notice.strip()), border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("helvetica", "", 11)
    pdf.multi_cell(0, 6, _latin1(body.strip()), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def render_fax(
    campaign: Campaign,
    step: Step,
    contact: Contact,
    item: OutboxItem,
    *,
    date: datetime,
    links: LinkSigning,
    templates: TemplateStore,
    default_region: str = "BR",
    compress: bool = True,
) -> FaxDocument:
    """The fax for one outbox row: body from the step's template, notice from
    ``_notices/<language>.fax_opt_out.txt.j2``, header line from the sender."""
    if step.channel is not Channel.FAX:
        raise RenderError(f"step {step.name!r} is not a fax step")
    if not contact.fax:
        raise InvalidAddressError(f"contact {contact.contact_id} has no fax number")
    to = e164(contact.fax, contact.country or default_region)
    language = campaign.languages.pick(contact.language)
    token = sign_unsubscribe_token(contact.contact_id, campaign.name, links.secret)
    values = _context(campaign, contact, language, token, links, None)
    body = templates.render(f"{step.template}/{language}.fax.txt.j2", values)
    notice = templates.render(f"_notices/{language}.fax_opt_out.txt.j2", values)
    opt_out_number = campaign.sender.opt_out_phone or campaign.sender.fax_number or ""
    if opt_out_number not in notice:
        raise RenderError("the fax opt-out notice must state the opt-out number")
    sender = campaign.sender
    header_text = refuse_line_breaks(
        "fax header", f"{sender.from_name} {sender.fax_number or ''}".strip()
    )
    return FaxDocument(
        outbox_id=item.outbox_id,
        to=to,
        pdf=build_fax_pdf(notice, body, created=date, compress=compress),
        header_text=header_text,
        tag=str(item.outbox_id),
    )


def render_outreach(
    campaign: Campaign,
    step: Step,
    contact: Contact,
    item: OutboxItem,
    *,
    date: datetime,
    links: LinkSigning,
    templates: TemplateStore,
    default_region: str = "BR",
) -> OutgoingEmail | FaxDocument:
    """Whatever the step's channel sends: an email, an invitation email or a fax."""
    match step.channel:
        case Channel.EMAIL:
            return render_email(
                campaign, step, contact, item, date=date, links=links, templates=templates
            )
        case Channel.INVITATION:
            return render_invitation(
                campaign, step, contact, item, date=date, links=links, templates=templates
            )
        case Channel.FAX:
            return render_fax(
                campaign, step, contact, item, date=date, links=links, templates=templates,
                default_region=default_region,
            )  # fmt: skip
