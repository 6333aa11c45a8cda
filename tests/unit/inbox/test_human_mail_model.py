"""The learned human-mail classifier: writer cross-validation, honest splits, readable evidence."""

from __future__ import annotations

import csv
import hashlib
import sys
from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from benchmarks.inbox_quality import corpus_rows, labelled
from tasks.inbox.classification import MailClassifier, MessageClass
from tasks.inbox.human_model import (
    CORPUS,
    Example,
    HumanMailModel,
    analyze,
    cv_splits,
    graded,
    load_model,
    training_labels,
    writer_of,
)
from tasks.inbox.parsing import ParsedMail, parse_message

# Pooled writer-CV figures of the shipped model (0.900 and 0.799 when trained, 2026-12-08).
WRITER_CV_FLOOR = 0.89
SEVERITY_CV_FLOOR = 0.79


@pytest.fixture(scope="module")
def classifier() -> MailClassifier:
    return MailClassifier.default()


def _mail(
    body: str, subject: str, sender: str = "Pat <pat@client.example>", extra: str = ""
) -> bytes:
    return (
        f"From: {sender}\r\nTo: vendas@accountflow.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <m1@client.example>\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


@pytest.mark.parametrize("split", ["heldout", "heldout2", "heldout3"])
def test_scored_held_out_splits_are_now_fitted(classifier: MailClassifier, split: str) -> None:
    """Each held-out split was scored and reported once, then joined training (issue #21).

    Their figures are no longer results (benchmarks/README.md); this pins that the shipped
    model was fitted on them through the same reading the classifier does at inference.
    """
    result = labelled(corpus_rows(split), CORPUS, classifier)
    assert result["messages"] >= 230
    assert result["accuracy"] >= 0.95


def test_shipped_model_records_its_writer_cross_validation() -> None:
    """Every writer was held out once; the figures sit just under those measured at training.

    They are the model's only honest figures until a fresh split is scored.
    """
    model = load_model()
    cv = model.trained_on["writer_cv"]
    assert set(cv) == {
        "all",
        "composed",
        "heldout",
        "heldout2",
        "heldout3",
        "train2",
        "train3",
        "fixtures",
    }
    assert cv["all"]["accuracy"] >= WRITER_CV_FLOOR
    assert cv["all"]["severity_accuracy"] >= SEVERITY_CV_FLOOR


def test_writer_cross_validation_holds_each_writer_out_whole() -> None:
    rows = [
        Example(f"{w}{i}", "lead", "", "en", "train", "a", None, [], source=w)
        for w in ("composed", "train2", "fixtures")
        for i in range(3)
    ]
    splits = cv_splits(rows)
    assert [w for w, _, _ in splits] == ["composed", "fixtures", "train2"]
    for writer, fitted, scored in splits:
        assert {rows[i].source for i in scored} == {writer}
        assert writer not in {rows[i].source for i in fitted}
        assert sorted(fitted + scored) == list(range(len(rows)))


def test_writers_are_the_labels_files_and_the_composed_corpus_splits() -> None:
    assert writer_of("labels.csv", "train") == "composed"
    assert writer_of("labels.csv", "heldout") == "heldout"
    assert writer_of("labels_heldout2.csv", "heldout2") == "heldout2"
    assert writer_of("labels_heldout3.csv", "heldout3") == "heldout3"
    assert writer_of("labels_train3.csv", "train") == "train3"


@pytest.mark.parametrize(
    ("rule", "model", "floor_from", "expected"),
    [
        ("critical", "low", "critical", "critical"),
        ("high", "low", "critical", "low"),
        ("high", "low", "medium", "high"),
        ("medium", "critical", "medium", "critical"),
        ("critical", "low", "never", "low"),
    ],
)
def test_rule_levels_from_the_floor_up_are_never_graded_down(
    rule: str, model: str, floor_from: str, expected: str
) -> None:
    assert graded(rule, model, floor_from) == expected


def test_corpus_has_600_messages_in_every_class_and_language() -> None:
    with (CORPUS / "labels.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 600
    cells = {(r["class"], r["language"], r["split"]) for r in rows}
    for cls in ("lead", "complaint", "auto_reply", "unsubscribe", "spam", "rsvp", "other"):
        for lang in ("en", "pt", "es"):
            assert {(cls, lang, "train"), (cls, lang, "heldout")} <= cells
    severities = {
        r["severity"] for r in rows if r["class"] == "complaint" and r["split"] == "heldout"
    }
    assert severities == {"low", "medium", "high", "critical"}


def test_held_out_fragments_never_appear_in_training_pools() -> None:
    sys.path.insert(0, str(CORPUS))
    try:
        import fragments_common
        import fragments_complaint
        import fragments_lead
        import fragments_more
        import fragments_other
    finally:
        sys.path.remove(str(CORPUS))
    extra = {
        line
        for name, pools in vars(fragments_more).items()
        if name.isupper()
        for lines in pools.values()
        for line in lines
    }
    checked = 0
    for module in (fragments_common, fragments_complaint, fragments_lead, fragments_other):
        for name, pools in vars(module).items():
            if not isinstance(pools, dict) or not name.isupper():
                continue
            for key, value in pools.items():
                if not (isinstance(value, tuple) and len(value) == 2):
                    continue
                train, held = value
                assert not set(held) & (set(train) | extra), (module.__name__, name, key)
                checked += 1
    assert checked > 50


def test_shipped_model_was_trained_on_the_committed_corpus() -> None:
    model = load_model()
    labels = training_labels()
    digest = hashlib.sha256(b"".join((CORPUS / name).read_bytes() for name in labels))
    assert model.trained_on["labels_sha256"] == digest.hexdigest()
    assert model.trained_on["labels"] == labels
    assert {"labels_heldout2.csv", "labels_train3.csv", "labels_heldout3.csv"} <= set(labels)


def test_inference_vectors_equal_scikit_learns_tfidf() -> None:
    docs = ["Could you send a quote for 200 units?", "Não funciona, quero reembolso!", "Hola"]
    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True).fit(docs * 2 + ["x y"])
    vocabulary = [""] * len(vectorizer.vocabulary_)
    for gram, index in vectorizer.vocabulary_.items():
        vocabulary[index] = gram
    empty = {
        "classes": ["a", "b"],
        "dense": [],
        "coef": [[0.0] * len(vocabulary)],
        "intercept": [0.0],
    }
    model = HumanMailModel(
        {
            "vocabulary": vocabulary,
            "idf": vectorizer.idf_.tolist(),
            "class_model": empty,
            "severity_model": empty,
            "thresholds": {},
        }
    )
    expected = vectorizer.transform(docs)
    for row, doc in enumerate(docs):
        indices, values = model.vectorize(doc)
        dense = np.zeros(len(vocabulary))
        dense[indices] = values
        assert np.allclose(dense, expected[row].toarray()[0])


def test_newsletter_footer_is_not_its_sender_opting_out(classifier: MailClassifier) -> None:
    body = (
        "This month: five ways to cut picking errors, and our spring webinar programme.\n\n"
        "Read more on our blog.\n\n"
        "You are receiving this email because you subscribed to our newsletter. "
        "To unsubscribe from these emails, click here."
    )
    for extra in ("", "List-Unsubscribe: <mailto:out@news.example>\r\nPrecedence: bulk\r\n"):
        raw = _mail(body, "Spring newsletter", "News <news@vendor.example>", extra)
        result = classifier.classify(parse_message(raw))
        assert result.label is MessageClass.SPAM, result.evidence
        assert result.suppress == () and result.suppress_reason is None


def test_a_person_who_asks_to_unsubscribe_is_suppressed(classifier: MailClassifier) -> None:
    result = classifier.classify(
        parse_message(_mail("Please remove me from your mailing list.", "Unsubscribe"))
    )
    assert result.label is MessageClass.UNSUBSCRIBE
    assert result.suppress == ("pat@client.example",)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "Letter before claim",
            "Dear Sirs,\n\nLETTER BEFORE CLAIM\n\nWe act for Northwind Ltd regarding the "
            "sensors you supplied under order 4471. We are instructed to issue proceedings "
            "if we do not receive your proposals within 14 days.\n\nYours faithfully,\n"
            "Hartley & Shaw Solicitors",
        ),
        (
            "Notificação extrajudicial",
            "Prezados,\n\nNa qualidade de advogados da Acme Ltda, notificamos V.Sas. para que "
            "restituam os valores do pedido 4471 em 10 dias, sob pena de ação judicial.",
        ),
        (
            "Burofax",
            "Muy señores nuestros:\n\nLes requerimos formalmente mediante burofax el "
            "cumplimiento del contrato del pedido 4471; en caso contrario acudiremos a los "
            "tribunales.",
        ),
    ],
)
def test_solicitors_and_formal_notices_are_critical_complaints(
    classifier: MailClassifier, subject: str, body: str
) -> None:
    result = classifier.classify(parse_message(_mail(body, subject)))
    assert result.label is MessageClass.COMPLAINT, result.evidence
    assert result.severity in ("high", "critical"), result.evidence


def test_evidence_names_the_rules_and_the_models_strongest_features(
    classifier: MailClassifier,
) -> None:
    raw = _mail("Could you send us a quotation for 500 units of the MX-40?", "Quote request")
    result = classifier.classify(parse_message(raw))
    assert result.label is MessageClass.LEAD
    model = [e for e in result.evidence if e.rule == "model:lead"]
    assert model and model[0].detail and 0.6 <= model[0].score <= 1.0
    assert any(not e.rule.startswith("model") for e in result.evidence)


def test_arbitrary_text_does_not_become_a_lead(classifier: MailClassifier) -> None:
    raw = _mail("Hi Bob,\n\nThe Cat sat on the mat. Here is the test file.\n\n-- Jo", "test")
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMail)
    assert classifier.classify(parsed).label is not MessageClass.LEAD


@pytest.mark.parametrize(
    ("labels", "folder"),
    [("labels.csv", "eml"), ("labels_train2.csv", "train2"), ("labels_train3.csv", "train3")],
)
def test_labels_list_every_committed_corpus_message(labels: str, folder: str) -> None:
    with (CORPUS / labels).open(encoding="utf-8") as fh:
        names = [r["file"] for r in csv.DictReader(fh)]
    assert sorted(names) == sorted(f"{folder}/{p.name}" for p in (CORPUS / folder).glob("*.eml"))


def test_other_writers_training_bodies_never_appear_in_a_held_out_split() -> None:
    sys.path.insert(0, str(CORPUS))
    try:
        import fragments_common
        import fragments_complaint
        import fragments_lead
        import fragments_other
        import fragments_train2
    finally:
        sys.path.remove(str(CORPUS))
    held = [(CORPUS / "fragments_heldout2.py").read_text(encoding="utf-8")]
    for module in (fragments_common, fragments_complaint, fragments_lead, fragments_other):
        for name, pools in vars(module).items():
            if isinstance(pools, dict) and name.isupper():
                held += [
                    line
                    for value in pools.values()
                    if isinstance(value, tuple) and len(value) == 2
                    for line in value[1]
                ]
    held_out = "\n".join(held)
    checked = 0
    for name in ("LEAD", "COMPLAINT", "AUTO_REPLY", "UNSUBSCRIBE", "NEWSLETTER", "SPAM", "OTHER"):
        for pool in getattr(fragments_train2, name).values():
            for body in pool:
                for sentence in body.split(". "):
                    if len(sentence) > 30 and "{" not in sentence:
                        assert sentence not in held_out, sentence
                        checked += 1
    assert checked > 100


def test_second_held_out_split_covers_every_class_language_and_severity() -> None:
    with (CORPUS / "labels_heldout2.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 240
    assert {r["split"] for r in rows} == {"heldout2"}
    cells = {(r["class"], r["language"]) for r in rows}
    for cls in ("lead", "complaint", "auto_reply", "unsubscribe", "spam", "rsvp", "other"):
        for lang in ("en", "pt", "es"):
            assert (cls, lang) in cells
    for lang in ("en", "pt", "es"):
        levels = {
            r["severity"] for r in rows if r["class"] == "complaint" and r["language"] == lang
        }
        assert levels == {"low", "medium", "high", "critical"}
    assert sorted(r["file"] for r in rows) == sorted(
        f"heldout2/{p.name}" for p in (CORPUS / "heldout2").glob("*.eml")
    )


def test_third_training_split_covers_every_class_language_and_severity() -> None:
    """train3 was written for the weak borders; each cell must hold enough to learn from."""
    with (CORPUS / "labels_train3.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 360
    assert {r["split"] for r in rows} == {"train"} and {r["fold"] for r in rows} == {"a", "b"}
    counts = Counter(r["class"] for r in rows)
    assert counts["complaint"] >= 120 and counts["other"] >= 40
    assert counts["auto_reply"] >= 30 and counts["rsvp"] >= 30
    levels = Counter(r["severity"] for r in rows if r["class"] == "complaint")
    assert min(levels[s] for s in ("low", "medium", "high", "critical")) >= 25
    assert {r["rsvp"] for r in rows if r["class"] == "rsvp"} == {
        "accepted",
        "declined",
        "tentative",
    }
    for cls in ("lead", "complaint", "auto_reply", "unsubscribe", "spam", "rsvp", "other"):
        for lang in ("en", "pt", "es"):
            assert any(r["class"] == cls and r["language"] == lang for r in rows), (cls, lang)


def test_second_held_out_split_shares_no_sentence_with_the_other_splits() -> None:
    """heldout2 was written by other hands; not one of its bodies may occur in the others."""
    sys.path.insert(0, str(CORPUS))
    try:
        import fragments_heldout2
    finally:
        sys.path.remove(str(CORPUS))
    older = "\n".join(
        p.read_text(encoding="utf-8")
        for pattern in ("fragments_*.py", "texts_*.py")
        for p in CORPUS.glob(pattern)
        if "heldout2" not in p.name
    )
    bodies = [
        body
        for name in (
            "LEAD",
            "COMPLAINT",
            "AUTO_REPLY",
            "UNSUBSCRIBE",
            "NEWSLETTER",
            "SPAM",
            "RSVP",
            "OTHER",
        )
        for pool in getattr(fragments_heldout2, name).values()
        for body in pool
    ]
    assert len(bodies) > 100
    for body in bodies:
        for sentence in body.replace("||", ".").split(". "):
            words = sentence.strip()
            if len(words) > 25 and "{" not in words:
                assert words not in older, words
