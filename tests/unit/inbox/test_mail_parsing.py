"""Parsing untrusted mail: dirty mail is read, untrustworthy mail is rejected with a reason."""

from __future__ import annotations

import csv
import hashlib
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasks.inbox.parsing import (
    Malformed,
    MalformedReason,
    ParsedMail,
    ParseLimits,
    html_to_text,
    parse_message,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mail"


def _parsed(name: str) -> ParsedMail:
    result = parse_message((FIXTURES / name).read_bytes())
    assert isinstance(result, ParsedMail), result
    return result


def _dirty(prefix: str) -> ParsedMail:
    (path,) = (FIXTURES / "dirty").glob(f"{prefix}_*.eml")
    return _parsed(f"dirty/{path.name}")


def _malformed_rows() -> list[tuple[str, str]]:
    with (FIXTURES / "labels.csv").open(encoding="utf-8") as fh:
        return [
            (r["file"], r["reference"]) for r in csv.DictReader(fh) if r["class"] == "malformed"
        ]


@pytest.mark.parametrize(("name", "reason"), _malformed_rows())
def test_untrustworthy_mail_is_malformed_with_its_reason_and_hash(name: str, reason: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    result = parse_message(raw)
    assert isinstance(result, Malformed)
    assert result.reason.value == reason
    assert result.sha256 == hashlib.sha256(raw).hexdigest()


def test_every_malformed_reason_of_the_issue_has_a_fixture() -> None:
    reasons = {reason for _, reason in _malformed_rows()}
    assert reasons >= {
        "empty", "not_email", "missing_from", "duplicate_from", "truncated",
        "invalid_base64", "unrecoverable_mime", "header_injection",
    }  # fmt: skip


def test_raw_8bit_headers_are_decoded_as_utf8() -> None:
    mail = _dirty("raw8bit_pt")
    assert mail.from_name == "José Araújo"
    assert mail.subject == "Orçamento urgente"


def test_latin1_label_with_cp1252_bytes_falls_back_to_cp1252() -> None:
    mail = _dirty("cp1252_es")
    assert mail.from_name == "Señor Pérez"
    assert "“nuestro reclamo”" in mail.text and "llegó" in mail.text
    assert mail.subject == "Queja «pedido 7712»"


def test_utf8_bytes_labelled_latin1_read_as_utf8() -> None:
    mail = _dirty("mislabelled_pt")
    assert mail.subject == "Cotação"
    assert "licenças" in mail.text


def test_missing_closing_boundary_is_read_and_noted() -> None:
    mail = _dirty("noclose_en")
    assert "quote for 10 licences" in mail.text
    assert "CloseBoundaryNotFoundDefect" in mail.defects


def test_encoded_words_inside_quotes_are_decoded() -> None:
    mail = _dirty("quotedword_pt")
    assert mail.from_name == "João Araújo"
    assert mail.from_address == "joao@araujo.com.br"


def test_html_only_body_becomes_text_without_scripts_or_styles() -> None:
    mail = _dirty("htmlonly_es")
    assert mail.html_only
    assert "cotización para 40 equipos" in mail.text
    assert "alert" not in mail.text and "color:red" not in mail.text


def test_forwarded_message_text_and_attachments_are_kept() -> None:
    mail = _dirty("forwarded_en")
    assert mail.forwarded
    assert "order 66001 arrived damaged" in mail.text
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("photo.pdf", "application/pdf")
    ]


def test_identity_and_threading_headers_are_normalised() -> None:
    raw = (
        b"From: Ana <ANA@Example.TEST>\r\nTo: a@x.test, B <b@x.test>\r\nSubject: Re: hi\r\n"
        b"Date: Tue, 03 Mar 2026 10:00:00 -0300\r\nMessage-ID: <1@x>\r\n"
        b"In-Reply-To: <0@x>\r\nReferences: <a@x>\r\n <0@x>\r\n\r\nok\r\n"
    )
    mail = parse_message(raw)
    assert isinstance(mail, ParsedMail)
    assert mail.from_address == "ana@example.test" and mail.from_name == "Ana"
    assert mail.to == ("a@x.test", "b@x.test")
    assert mail.date == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
    assert (mail.message_id, mail.in_reply_to, mail.references) == (
        "<1@x>",
        "<0@x>",
        ("<a@x>", "<0@x>"),
    )


def test_dsn_bounce_exposes_recipient_status_and_original_message_id() -> None:
    (path,) = [
        p for p in (FIXTURES / "bounce").glob("en_*.eml") if b"Status: 5.1.1" in p.read_bytes()
    ]
    mail = _parsed(f"bounce/{path.name}")
    assert mail.delivery_report is not None
    (rcpt,) = mail.delivery_report.recipients
    assert (rcpt.address, rcpt.action, rcpt.status) == ("nobody@gone.example", "failed", "5.1.1")
    assert mail.delivery_report.original_message_id is not None


def _nested(depth: int) -> bytes:
    head = b"From: a@b.test\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    body = b"Content-Type: text/plain\r\n\r\nhi\r\n"
    for level in range(depth):
        b = f"b{level}".encode()
        body = (
            b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b + b"\r\n"
            + body + b"--" + b + b"--\r\n"
        )  # fmt: skip
    return head + body


def test_nesting_deeper_than_the_cap_is_rejected() -> None:
    assert isinstance(parse_message(_nested(3)), ParsedMail)
    result = parse_message(_nested(12), ParseLimits(max_depth=8))
    assert isinstance(result, Malformed) and result.reason is MalformedReason.TOO_DEEP


def test_more_parts_than_the_cap_are_rejected() -> None:
    parts = b"".join(b"--P\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(30))
    raw = (
        b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=P\r\n\r\n"
        + parts + b"--P--\r\n"
    )  # fmt: skip
    assert isinstance(parse_message(raw), ParsedMail)
    result = parse_message(raw, ParseLimits(max_parts=20))
    assert isinstance(result, Malformed) and result.reason is MalformedReason.TOO_MANY_PARTS


def test_random_bytes_never_raise() -> None:
    rng = random.Random(1234)
    seeds = [(FIXTURES / "lead" / "en_001.eml").read_bytes(), b"From: a@b\r\n\r\nx"]
    for _ in range(300):
        base = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 20)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        result = parse_message(bytes(base[: rng.randint(0, len(base))]))
        assert isinstance(result, ParsedMail | Malformed)


def test_html_to_text_keeps_block_structure() -> None:
    assert html_to_text("<p>a&amp;b</p><div>c<br>d</div>") == "a&b\n\nc\nd"


def test_attachment_named_in_rfc_2231_with_non_ascii_characters_is_read() -> None:
    raw = (
        "From: Ana <ana@cliente.com.br>\r\nTo: vendas@accountflow.example\r\n"
        "Subject: =?utf-8?q?Or=C3=A7amento?=\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSegue a especificação.\r\n"
        "--b\r\nContent-Type: application/pdf\r\n"
        "Content-Disposition: attachment;\r\n"
        " filename*0*=utf-8''Especifica%C3%A7%C3%A3o%20t%C3%A9;\r\n"
        " filename*1*=cnica%20%E2%80%93%20fase%202.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    ).encode()
    mail = parse_message(raw)
    assert isinstance(mail, ParsedMail)
    assert [a.filename for a in mail.attachments] == ["Especificação técnica – fase 2.pdf"]
