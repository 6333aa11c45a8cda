"""Classification of inbound mail against the labelled fixtures and the rules that matter most."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from config.inbox_policy import InboxPolicy, load_inbox_policy
from config.policy_loader import PolicyError
from tasks.inbox.classification import (
    Classification,
    MailClassifier,
    MessageClass,
    extract_signature_fields,
    forwarded_text,
    model_text,
    thread_parent,
)
from tasks.inbox.parsing import ParsedMail, parse_message

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mail"
CLASSES = [c.value for c in MessageClass]


@pytest.fixture(scope="module")
def classifier() -> MailClassifier:
    return MailClassifier(load_inbox_policy())


def _labels() -> list[dict[str, str]]:
    with (FIXTURES / "labels.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _classify(classifier: MailClassifier, raw: bytes) -> Classification:
    return classifier.classify(parse_message(raw))


def _mail(body: str, subject: str = "Hello", extra: str = "") -> bytes:
    return (
        f"From: Pat <pat@client.example>\r\nTo: us@accountflow.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <t1@client.example>\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


def test_labelled_fixtures_cover_every_class_in_three_languages() -> None:
    rows = _labels()
    assert len(rows) >= 120
    pairs = {(r["class"], r["language"]) for r in rows if r["class"] != "malformed"}
    for cls in CLASSES:
        if cls not in ("malformed", "other"):  # the corpus in mail_corpus/ has ``other``
            assert {(cls, lang) for lang in ("en", "pt", "es")} <= pairs, cls


def test_labelled_fixture_accuracy_is_at_least_95_percent(classifier: MailClassifier) -> None:
    rows = _labels()
    predicted = [
        _classify(classifier, (FIXTURES / r["file"]).read_bytes()).label.value for r in rows
    ]
    truth = [r["class"] for r in rows]
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    accuracy = correct / len(rows)
    pred_count, true_count = Counter(predicted), Counter(truth)
    hits = Counter(t for p, t in zip(predicted, truth, strict=True) if p == t)
    print(f"\naccuracy {accuracy:.3f} on {len(rows)} messages")
    for cls in CLASSES:
        precision = hits[cls] / pred_count[cls] if pred_count[cls] else 0.0
        recall = hits[cls] / true_count[cls] if true_count[cls] else 0.0
        print(f"{cls:12s} n={true_count[cls]:3d} precision={precision:.3f} recall={recall:.3f}")
    assert accuracy >= 0.95


def test_complaint_severity_and_reference_match_the_labels(classifier: MailClassifier) -> None:
    rows = [r for r in _labels() if r["class"] == "complaint"]
    results = [_classify(classifier, (FIXTURES / r["file"]).read_bytes()) for r in rows]
    severity_ok = sum(c.severity == r["severity"] for c, r in zip(results, rows, strict=True))
    reference_ok = sum(
        (c.reference or "") == r["reference"] for c, r in zip(results, rows, strict=True)
    )
    assert severity_ok / len(rows) >= 0.9
    assert reference_ok / len(rows) >= 0.9
    assert {r["severity"] for r in rows} == {"low", "medium", "high", "critical"}


@pytest.mark.parametrize(
    "body",
    [
        "Our lawyer will contact you about this complaint.",
        "Vamos acionar o Procon e um advogado, isso é uma reclamação formal.",
        "Quiero cancelar el contrato, es inaceptable, presento una queja.",
    ],
)
def test_legal_threats_and_cancellations_are_critical(
    classifier: MailClassifier, body: str
) -> None:
    result = _classify(classifier, _mail(body))
    assert result.label is MessageClass.COMPLAINT
    assert result.severity == "critical"
    assert any(rule.startswith("severity:") for rule in result.rules)


def test_auto_reply_headers_win_over_text(classifier: MailClassifier) -> None:
    body = "We are interested in a quotation for 100 units."
    assert _classify(classifier, _mail(body)).label is MessageClass.LEAD
    result = _classify(classifier, _mail(body, extra="Auto-Submitted: auto-replied\r\n"))
    assert result.label is MessageClass.AUTO_REPLY
    assert result.rules == ("auto_submitted",)


def test_auto_submitted_no_is_a_person(classifier: MailClassifier) -> None:
    body = "We are interested in a quotation for 100 units."
    result = _classify(classifier, _mail(body, extra="Auto-Submitted: no\r\n"))
    assert result.label is MessageClass.LEAD


def test_our_footer_quoted_in_a_reply_is_not_an_opt_out(classifier: MailClassifier) -> None:
    quoted = (
        "Please send the price list.\n\nOn Mon, 2 Mar 2026, Sales <us@x> wrote:\n"
        "> To unsubscribe from these emails, click here.\n"
    )
    result = _classify(classifier, _mail(quoted, subject="Re: Meet us at booth 12"))
    assert result.label is MessageClass.LEAD and result.suppress == ()
    own = _classify(classifier, _mail("Please unsubscribe me."))
    assert own.label is MessageClass.UNSUBSCRIBE
    assert own.suppress == ("pat@client.example",) and own.suppress_reason == "opt_out"


def test_angry_opt_out_stays_a_complaint_but_still_suppresses(classifier: MailClassifier) -> None:
    body = "This is my third complaint. Stop sending me emails or our lawyer will act."
    result = _classify(classifier, _mail(body))
    assert result.label is MessageClass.COMPLAINT and result.severity == "critical"
    assert result.suppress == ("pat@client.example",)


def _fixture(folder: str, needle: bytes) -> bytes:
    for path in sorted((FIXTURES / folder).glob("*.eml")):
        raw = path.read_bytes()
        if needle in raw:
            return raw
    raise AssertionError(needle)


def test_hard_bounce_suppresses_the_failed_recipient(classifier: MailClassifier) -> None:
    result = _classify(classifier, _fixture("bounce", b"Status: 5.1.1"))
    assert result.label is MessageClass.BOUNCE and result.bounce is not None
    assert result.bounce.kind == "hard" and result.bounce.status == "5.1.1"
    assert result.suppress == ("nobody@gone.example",) and result.suppress_reason == "hard_bounce"
    assert result.bounce.original_message_id == "<campaign-100@accountflow.example>"


def test_soft_bounce_is_counted_not_suppressed(classifier: MailClassifier) -> None:
    result = _classify(classifier, _fixture("bounce", b"Status: 4.2.2"))
    assert result.bounce is not None and result.bounce.kind == "soft"
    assert result.bounce.soft_recipients == ("full@busy.example",)
    assert result.suppress == ()


def test_non_dsn_bounce_is_found_by_flufl_bounce(classifier: MailClassifier) -> None:
    result = _classify(classifier, _fixture("bounce", b"qmail-send"))
    assert result.label is MessageClass.BOUNCE and result.bounce is not None
    assert result.bounce.hard_recipients == ("olduser@old.example",)


def test_icalendar_reply_is_an_rsvp(classifier: MailClassifier) -> None:
    result = _classify(classifier, _fixture("lead", b"METHOD:REPLY"))
    assert result.label is MessageClass.RSVP
    assert result.rsvp is not None and result.rsvp.answer == "accepted"
    assert result.rsvp.via == "icalendar" and "rsvp:accepted" in result.rules


@pytest.mark.parametrize("body", ["Aceito o convite!", "Acepto, nos vemos.", "Accepted, see you"])
def test_text_rsvp_is_recognised_in_three_languages(classifier: MailClassifier, body: str) -> None:
    result = _classify(classifier, _mail(body, subject="Re: Convite"))
    assert result.rsvp is not None and result.rsvp.via == "text"


def test_spam_header_from_the_filter_is_decisive(classifier: MailClassifier) -> None:
    body = "We are interested in a quotation."
    result = _classify(classifier, _mail(body, extra="X-Spam-Flag: YES\r\n"))
    assert result.label is MessageClass.SPAM


def test_malformed_input_is_classified_malformed_with_reason(classifier: MailClassifier) -> None:
    result = _classify(classifier, b"")
    assert result.label is MessageClass.MALFORMED and result.malformed_reason == "empty"


def test_mail_the_model_is_unsure_of_gets_the_configured_default_class() -> None:
    policy = load_inbox_policy().model_copy(update={"default_class": "spam", "uncertain_below": 1})
    result = MailClassifier(policy).classify(parse_message(_mail("Hi.")))
    assert result.label is MessageClass.SPAM and result.rules[0] == "uncertain"


def test_invalid_regex_in_policy_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "inbox.yaml"
    bad.write_text("classes:\n  lead:\n    - {name: x, pattern: '(unclosed'}\n")
    with pytest.raises(PolicyError, match=r"inbox\.yaml.*classes\.lead\.0\.pattern"):
        load_inbox_policy(bad)
    assert isinstance(load_inbox_policy(), InboxPolicy)


def test_signature_fields_are_extracted_and_tax_ids_validated() -> None:
    text = (
        "Bom dia, segue o pedido.\n\nAtenciosamente,\nJoão Silva\nGerente de Compras\n"
        "Acme Indústria Ltda\n(11) 98765-4321\nCNPJ 11.222.333/0001-81\n"
    )
    assert extract_signature_fields(text) == {
        "name": "João Silva",
        "company": "Acme Indústria Ltda",
        "phone": "+5511987654321",
        "tax_id_type": "cnpj",
        "tax_id": "11222333000181",
    }
    invalid = text.replace("0001-81", "0001-82")
    assert "tax_id" not in extract_signature_fields(invalid)


def test_signature_of_a_spanish_lead_with_cif() -> None:
    mail = parse_message(_fixture("lead", b"CIF B58378431"))
    assert isinstance(mail, ParsedMail)
    fields = extract_signature_fields(mail.text, mail.from_name, region="ES")
    assert fields["company"] == "Ibérica Industrial S.L."
    assert fields["phone"] == "+34912345678"
    assert (fields["tax_id_type"], fields["tax_id"]) == ("es_cif", "B58378431")


def test_no_signature_yields_only_the_display_name() -> None:
    assert extract_signature_fields("ok", from_name="Pat") == {"name": "Pat"}
    assert extract_signature_fields("ok") == {}


def test_follow_up_attaches_to_the_closest_known_message() -> None:
    raw = (
        b"From: a@b.test\r\nMessage-ID: <3@x>\r\nIn-Reply-To: <2@x>\r\n"
        b"References: <1@x> <2@x>\r\n\r\nmore\r\n"
    )
    mail = parse_message(raw)
    assert isinstance(mail, ParsedMail)
    assert thread_parent(mail, {"<1@x>": 10, "<2@x>": 20}) == 20
    assert thread_parent(mail, {"<1@x>": 10}) == 10
    assert thread_parent(mail, {"<9@x>": 90}) is None


def test_bottom_posted_reply_is_read_below_the_quote(classifier: MailClassifier) -> None:
    text = (
        "On Mon, 2 Mar 2026, Sales <us@x> wrote:\n> Did the catalogue help?\n"
        "> To unsubscribe from these emails, click here.\n\n"
        "It did - please send a quote for 40 scanners."
    )
    own = classifier.own_text(text)
    assert "quote for 40 scanners" in own
    assert "unsubscribe" not in own and "catalogue" not in own


def test_top_posted_reply_keeps_only_the_words_above_the_quote(classifier: MailClassifier) -> None:
    text = "Remove me please.\n\nOn Mon, 2 Mar 2026, Sales <us@x> wrote:\n> Big spring sale!\n"
    assert classifier.own_text(text).strip() == "Remove me please."


def test_a_forward_is_read_as_its_innermost_message() -> None:
    text = (
        "FYI, see below.\n\nJo Bloggs\nThis e-mail is confidential.\n\n"
        "Begin forwarded message:\n\nFrom: A <a@x.example>\nDate: Mon\nSubject: Fwd: order\n\n"
        "Passing on.\n\n---------- Forwarded message ---------\nFrom: B <b@y.example>\n"
        "Subject: order\n\nOur order 4471 arrived broken and nobody answers the phone.\n\n"
        "Regards,\nB"
    )
    read = forwarded_text(text)
    assert "arrived broken" in read
    assert "FYI" not in read and "confidential" not in read and "Passing on" not in read


def test_a_forward_whose_bottom_opens_with_a_name_keeps_that_message() -> None:
    """The header lines above a "Sophie," greeting do not make it read as a sign-off."""
    text = (
        "See below.\n\nBegin forwarded message:\n\nSubject: x\nFrom: Ian <i@x.example>\n\n"
        "Sophie,\n\nThe engineer came twice and the scanner still will not pair.\n\nIan"
    )
    assert "still will not pair" in forwarded_text(text)


def test_an_outlook_forward_is_read_below_its_header_block() -> None:
    text = (
        "Can someone pick this up?\n\nFrom: Ana <ana@x.example>\nSent: Monday\nTo: us\n"
        "Subject: quote\n\nPlease send a quotation for 300 label printers."
    )
    read = forwarded_text(text)
    assert "send a quotation" in read and "pick this up" not in read


def test_a_legal_footer_is_not_read_as_the_senders_words() -> None:
    text = (
        "The invoice is wrong again.\n\nAVISO LEGAL: esta mensagem pode conter informação "
        "confidencial.\nCaso não seja o destinatário, apague-a."
    )
    read = model_text(text)
    assert "invoice is wrong" in read and "destinat" not in read and "AVISO" not in read


def test_a_reply_line_with_accents_ends_the_senders_words(classifier: MailClassifier) -> None:
    text = (
        "Nos dijeron entrega el día 4 y no ha llegado nada.\n\n"
        "El vie, 6 nov 2026, Ventas <us@x> escribió:\nHola, ¿te fue útil el catálogo?\n"
        "Si no quieres recibir más correos, pulsa en darse de baja."
    )
    own = classifier.own_text(text)
    assert "no ha llegado" in own and "darse de baja" not in own and "escribió" not in own


@pytest.mark.parametrize(
    ("body", "level"),
    [
        ("You debited £980.00 twice this month for one delivery.", "high"),
        ("I need a delivery date by the end of the day or we go elsewhere for parts.", "high"),
        ("This is the fourth email I send about the same fault, still no reply.", "high"),
        ("Please take this as notice that we will not renew the agreement.", "critical"),
        ("Vamos levar o caso ao juizado de pequenas causas se não devolverem o valor.", "critical"),
        ("Les enviamos un burofax: si no hay solución acudiremos a la vía judicial.", "critical"),
    ],
)
def test_severity_cues_set_the_floor_whatever_the_wording(
    classifier: MailClassifier, body: str, level: str
) -> None:
    parsed = parse_message(_mail(body, subject="Our account"))
    assert isinstance(parsed, ParsedMail)
    features = classifier.read(parsed).features
    floor, evidence = features.severity_rules(features.folded)
    assert floor == level
    assert evidence is not None and evidence.rule.startswith(("severity_cue:", "severity:"))


def test_severity_cues_must_name_cue_families() -> None:
    data = load_inbox_policy().model_dump()
    data["severity_cues"] = {"no_such_family": "high"}
    with pytest.raises(ValueError, match="no_such_family"):
        InboxPolicy.model_validate(data)


def test_cue_patterns_must_be_lower_case() -> None:
    data = load_inbox_policy().model_dump()
    data["cues"]["request"][0]["pattern"] = "\\bQuote\\b"
    with pytest.raises(ValueError, match="upper case"):
        InboxPolicy.model_validate(data)
