"""Rendering of outreach emails, invitations and faxes; tokens, VERP and header safety."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from icalendar import Calendar
from pydantic import SecretStr

from config.campaign_policy import CAMPAIGNS_DIR, Campaign, Step, load_campaign
from connectors.fax_gateway import FaxDocument
from connectors.smtp_sender import OutgoingEmail
from tasks.outreach.rendering import (
    Contact,
    HeaderInjectionError,
    InvalidAddressError,
    LinkSigning,
    OutboxItem,
    RenderError,
    TemplateStore,
    build_fax_pdf,
    idempotency_key,
    message_id_for,
    parse_return_path,
    refuse_line_breaks,
    render_email,
    render_fax,
    render_invitation,
    render_outreach,
    return_path_for,
    sign_unsubscribe_token,
    verify_unsubscribe_token,
)

SECRET = SecretStr("unit-test-secret-0123456789")
LINKS = LinkSigning(SECRET, "https://acme.example.com")
NOW = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return load_campaign(CAMPAIGNS_DIR / "welcome-fair.yaml")


@pytest.fixture(scope="module")
def templates() -> TemplateStore:
    return TemplateStore()


def _step(campaign: Campaign, channel: str) -> Step:
    return next(step for step in campaign.steps if step.channel == channel)


def _item(campaign: Campaign, contact_id: int, step: Step, outbox_id: int = 41) -> OutboxItem:
    key = idempotency_key(campaign.name, contact_id, step.name)
    return OutboxItem(outbox_id, campaign.name, step.name, key)


def _render(campaign: Campaign, templates: TemplateStore, contact: Contact):  # type: ignore[no-untyped-def]
    step = _step(campaign, "email")
    return render_email(
        campaign,
        step,
        contact,
        _item(campaign, contact.contact_id, step),
        date=NOW,
        links=LINKS,
        templates=templates,
    )


JOSE = Contact(12, "José da Silva", "jose@client.example.org", company="Ferro & Aço", language="pt")


# ---------------------------------------------------------------- identity and tokens


def test_idempotency_key_is_stable_and_distinct_per_step_and_contact() -> None:
    key = idempotency_key("welcome-fair", 12, "intro")
    assert key == idempotency_key("welcome-fair", 12, "intro")
    assert len({key, idempotency_key("welcome-fair", 12, "invite"),
                idempotency_key("welcome-fair", 13, "intro")}) == 3  # fmt: skip


def test_rerendering_the_same_row_gives_the_same_bytes_and_message_id(
    campaign: Campaign, templates: TemplateStore
) -> None:
    first, second = _render(campaign, templates, JOSE), _render(campaign, templates, JOSE)
    assert first.raw == second.raw
    key = idempotency_key(campaign.name, JOSE.contact_id, "intro")
    assert first.message_id == message_id_for(key, "acme.example.com")
    assert first.message["Message-ID"] == first.message_id


def test_unsubscribe_token_round_trips_and_rejects_forgeries() -> None:
    token = sign_unsubscribe_token(12, "welcome-fair", SECRET)
    request = verify_unsubscribe_token(token, SECRET)
    assert request is not None and (request.contact_id, request.campaign) == (12, "welcome-fair")
    payload, mac = token.split(".")
    other_payload = sign_unsubscribe_token(13, "welcome-fair", SECRET).split(".")[0]
    assert verify_unsubscribe_token(f"{other_payload}.{mac}", SECRET) is None
    assert verify_unsubscribe_token(f"{payload}.{mac[:-2]}AA", SECRET) is None
    assert verify_unsubscribe_token(token, SecretStr("another-secret")) is None
    for garbage in ["", "x", "a.b.c", "!!!.???", "." * 300]:
        assert verify_unsubscribe_token(garbage, SECRET) is None
    assert len(mac) >= 43  # the full 256-bit MAC: unguessable


def test_verp_return_path_maps_back_to_the_outbox_row_and_rejects_forged_tags() -> None:
    address = return_path_for(987, "bounces", "acme.example.com", SECRET)
    assert address.startswith("bounces+o987-") and address.endswith("@acme.example.com")
    assert parse_return_path(address, SECRET) == 987
    assert parse_return_path(f"<{address.upper()}>", SECRET) == 987  # case-folding MTAs
    forged = address.replace("+o987-", "+o988-")
    assert parse_return_path(forged, SECRET) is None
    assert parse_return_path(address, SecretStr("other")) is None
    assert parse_return_path("someone@acme.example.com", SECRET) is None


def test_verp_return_path_verifies_against_any_accepted_secret_and_no_other() -> None:
    address = return_path_for(55, "bounces", "acme.example.com", SECRET)
    assert parse_return_path(address, [SecretStr("new-secret"), SECRET]) == 55
    assert parse_return_path(address, [b"new-secret", b"another"]) is None
    assert parse_return_path(address, []) is None


# ----------------------------------------------------------------------------- email


def test_email_has_text_and_autoescaped_html_parts(
    campaign: Campaign, templates: TemplateStore
) -> None:
    contact = Contact(5, "Eve", "eve@client.example.org", company='<script>x</script> & "Co"')
    message = _render(campaign, templates, contact).message
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert '<script>x</script> & "Co"' in text
    assert "<script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt; &amp; &#34;Co&#34;" in html


def test_email_carries_the_physical_address_and_one_click_unsubscribe(
    campaign: Campaign, templates: TemplateStore
) -> None:
    email = _render(campaign, templates, JOSE)
    message = email.message
    header = str(message["List-Unsubscribe"])
    url, mailto = re.findall(r"<([^>]+)>", header)
    assert url.startswith("https://acme.example.com/u/")
    request = verify_unsubscribe_token(url.rsplit("/", 1)[1], SECRET)
    assert request is not None and request.contact_id == JOSE.contact_id
    assert mailto.startswith("mailto:unsubscribe@acme.example.com?subject=unsubscribe")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    assert campaign.sender.physical_address in text and url in text
    assert parse_return_path(email.envelope_from, SECRET) == 41
    assert email.recipients == ("jose@client.example.org",)


def test_non_ascii_names_and_subjects_are_encoded_and_read_back(
    campaign: Campaign, templates: TemplateStore
) -> None:
    email = _render(campaign, templates, JOSE)
    assert email.raw.isascii()
    message = email.message
    assert message["To"].addresses[0].display_name == "José da Silva"
    assert str(message["Subject"]) == "José, foi um prazer conhecê-lo na feira"


def test_long_multibyte_names_are_split_into_encoded_words_without_breaking_characters(
    campaign: Campaign, templates: TemplateStore
) -> None:
    name = "Zoë Ørsted " * 6 + "日本語のテスト" * 4
    email = _render(campaign, templates, Contact(8, name, "zoe@client.example.org"))
    head = email.raw.split(b"\r\n\r\n")[0].decode("ascii")
    to_header = re.search(r"^To: .*?(?=\r\n\S)", head, re.S | re.M)
    assert to_header is not None and to_header.group().count("=?utf-8?b?") > 3
    assert all(len(line) <= 78 for line in to_header.group().split("\r\n"))
    # Python's address parser keeps the folding space between encoded words (RFC 2047
    # 6.2 says drop it; EmailMessage's own output reads back the same way), so compare
    # without spaces: what matters is that no character was cut in half.
    parsed = email.message["To"].addresses[0].display_name
    assert parsed.replace(" ", "") == name.replace(" ", "")


@pytest.mark.parametrize(
    ("language", "greeting"), [("es", "Hola"), ("en-GB", "Hello"), ("de", "Olá"), (None, "Olá")]
)
def test_language_follows_the_contact_or_falls_back_to_the_campaign_default(
    campaign: Campaign, templates: TemplateStore, language: str | None, greeting: str
) -> None:
    contact = Contact(7, "Rosa Díaz", "rosa@client.example.org", language=language)
    text = _render(campaign, templates, contact).message.get_body(("plain",)).get_content()
    assert text.startswith(greeting)


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.org",
        "Eve\nBcc: victim@example.org",
        "Eve\rX",
        "Eve\u2028X",
        "Eve\x85X",
        "=?utf-8?q?Eve=0D=0ABcc:_victim@example.org?=",
        "=?utf-8?b?RXZlDQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?=",
        "=?utf-8?q?Eve=0ABcc:_x?=",
    ],
    ids=["crlf", "lf", "cr", "u2028", "nel", "q-encoded-crlf", "b-encoded-crlf", "q-encoded-lf"],
)
def test_line_breaks_in_names_are_refused_raw_or_encoded(
    campaign: Campaign, templates: TemplateStore, name: str
) -> None:
    with pytest.raises(HeaderInjectionError):
        _render(campaign, templates, Contact(9, name, "eve@client.example.org"))


def test_line_breaks_reaching_the_subject_through_template_data_are_refused(
    campaign: Campaign, templates: TemplateStore
) -> None:
    contact = Contact(9, "Eve", "eve@client.example.org", first_name="Eve\r\nBcc: x@y.org")
    with pytest.raises(HeaderInjectionError) as caught:
        _render(campaign, templates, contact)
    assert caught.value.field == "subject"


@pytest.mark.parametrize(
    "address", ["eve@client.example.org\r\nBcc: x@y.org", "eve <x@y.org>", "évé@x.org", "nobody"]
)
def test_addresses_that_are_not_plain_envelope_addresses_are_refused(
    campaign: Campaign, templates: TemplateStore, address: str
) -> None:
    with pytest.raises((InvalidAddressError, HeaderInjectionError)):
        _render(campaign, templates, Contact(9, "Eve", address))


def test_harmless_encoded_words_in_names_pass() -> None:
    assert refuse_line_breaks("name", "=?utf-8?q?Jos=C3=A9?=") == "=?utf-8?q?Jos=C3=A9?="


def _store_with(tmp_path: Path, html: str, text: str) -> TemplateStore:
    base = tmp_path / "welcome-intro"
    base.mkdir()
    for language in ("pt", "es", "en"):
        (base / f"{language}.subject.txt.j2").write_text("Oi {{ contact.first_name }}")
        (base / f"{language}.txt.j2").write_text(text)
        (base / f"{language}.html.j2").write_text(html)
    return TemplateStore(tmp_path)


def test_a_template_that_drops_the_footer_is_refused(tmp_path: Path, campaign: Campaign) -> None:
    footer = "{{ sender.physical_address }} {{ unsubscribe_url }}"
    store = _store_with(tmp_path, html="<p>hi</p>", text=f"hi {footer}")
    with pytest.raises(RenderError, match="footer"):
        _render(campaign, store, JOSE)


def test_a_misspelt_placeholder_fails_the_render_instead_of_sending_blank(
    tmp_path: Path, campaign: Campaign
) -> None:
    store = _store_with(tmp_path, html="{{ contact.frist_name }}", text="{{ contact.frist_name }}")
    with pytest.raises(RenderError, match="frist_name"):
        _render(campaign, store, JOSE)


# ------------------------------------------------------------------------ invitation


def test_invitation_carries_a_calendar_request_for_the_recipient(
    campaign: Campaign, templates: TemplateStore
) -> None:
    step = _step(campaign, "invitation")
    item = _item(campaign, JOSE.contact_id, step, outbox_id=55)
    email = render_invitation(
        campaign, step, JOSE, item, date=NOW, links=LINKS, templates=templates
    )
    parts = {part.get_content_type(): part for part in email.message.walk()}
    calendar_part = parts["text/calendar"]
    assert calendar_part.get_param("method") == "REQUEST"
    assert "application/ics" in parts and "text/html" in parts
    calendar = Calendar.from_ical(calendar_part.get_content())
    assert str(calendar["METHOD"]) == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{item.idempotency_key}@acme.example.com"
    assert event.decoded("DTSTART") == step.event.starts_at if step.event else False
    assert str(event["ATTENDEE"]) == "mailto:jose@client.example.org"
    assert event["ATTENDEE"].params["RSVP"] == "TRUE"
    assert str(event["ORGANIZER"]) == "mailto:vendas@acme.example.com"


def test_each_channel_renders_to_what_its_sender_takes(
    campaign: Campaign, templates: TemplateStore
) -> None:
    contact = Contact(4, "Ana", "ana@client.example.org", fax="(11) 3333-4444", country="BR")
    kinds = [
        type(
            render_outreach(
                campaign,
                step,
                contact,
                _item(campaign, 4, step),
                date=NOW,
                links=LINKS,
                templates=templates,
            )
        )
        for step in campaign.steps
    ]
    assert kinds == [OutgoingEmail, OutgoingEmail, FaxDocument]


def test_invitation_step_is_required_for_an_invitation(
    campaign: Campaign, templates: TemplateStore
) -> None:
    step = _step(campaign, "email")
    with pytest.raises(RenderError):
        render_invitation(
            campaign, step, JOSE, _item(campaign, 1, step), date=NOW, links=LINKS,
            templates=templates,
        )  # fmt: skip


# ------------------------------------------------------------------------------- fax


def _streams(pdf: bytes) -> list[bytes]:
    return re.findall(rb"stream\n(.*?)endstream", pdf, re.S)


def test_fax_first_page_opens_with_the_opt_out_notice(
    campaign: Campaign, templates: TemplateStore
) -> None:
    step = _step(campaign, "fax")
    contact = Contact(3, "Łukasz Nowak", fax="(11) 3333-4444", country="BR", language="en")
    fax = render_fax(
        campaign, step, contact, _item(campaign, 3, step, outbox_id=99),
        date=NOW, links=LINKS, templates=templates, compress=False,
    )  # fmt: skip
    assert fax.pdf.startswith(b"%PDF")
    assert (fax.to, fax.tag) == ("+551133334444", "99")
    first_page = _streams(fax.pdf)[0]
    notice_at = first_page.find(b"OPT-OUT NOTICE")
    assert 0 <= notice_at < first_page.find(b"Attn: Lukasz Nowak")
    assert b"+558000000000" in first_page


def test_fax_notice_stays_on_page_one_when_the_body_runs_long() -> None:
    pdf = build_fax_pdf("NOTICE call +558000000000", "line\n" * 200, created=NOW, compress=False)
    streams = _streams(pdf)
    assert len(streams) > 1
    assert b"+558000000000" in streams[0]
    assert all(b"+558000000000" not in page for page in streams[1:])


def test_fax_to_an_invalid_number_is_refused(campaign: Campaign, templates: TemplateStore) -> None:
    step = _step(campaign, "fax")
    with pytest.raises(InvalidAddressError):
        render_fax(
            campaign, step, Contact(3, "Ana", fax="12", country="BR"), _item(campaign, 3, step),
            date=NOW, links=LINKS, templates=templates,
        )  # fmt: skip
