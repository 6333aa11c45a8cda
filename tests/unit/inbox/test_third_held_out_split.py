"""The third held-out split (make_heldout3.py): its files, labels and balance, never its scores.

Nothing here classifies: the split was scored once, by hand, with
``python -m benchmarks.inbox_quality --split heldout3``, then joined training as a writer.
"""

from __future__ import annotations

import csv
import email
import email.policy
import sys
from collections import Counter

import pytest

from benchmarks.inbox_quality import DEFAULT_SPLITS, SPLIT_LABELS, corpus_rows
from tasks.inbox.human_model import CORPUS, TRAINING_LABELS

CLASSES = ("lead", "complaint", "rsvp", "auto_reply", "unsubscribe", "spam", "other")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with (CORPUS / "labels_heldout3.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_file_has_one_label_and_every_label_a_file(rows: list[dict[str, str]]) -> None:
    assert sorted(r["file"] for r in rows) == sorted(
        f"heldout3/{p.name}" for p in (CORPUS / "heldout3").glob("*.eml")
    )
    assert {r["split"] for r in rows} == {"heldout3"}


def test_every_message_parses_with_a_sender_a_subject_and_a_body(
    rows: list[dict[str, str]],
) -> None:
    for row in rows:
        message = email.message_from_bytes(
            (CORPUS / row["file"]).read_bytes(), policy=email.policy.default
        )
        assert message["From"] and message["Subject"] and message["Date"], row["file"]
        body = message.get_body(("plain", "html"))
        assert body is not None and len(body.get_content().strip()) > 5, row["file"]


def test_the_split_is_balanced_across_classes_languages_and_severities(
    rows: list[dict[str, str]],
) -> None:
    assert len(rows) >= 300
    classes = Counter(r["class"] for r in rows)
    assert set(classes) == set(CLASSES)
    assert classes["complaint"] >= 100 and classes["other"] >= 30
    languages = Counter(r["language"] for r in rows)
    assert set(languages) == {"pt", "es", "en"}
    assert max(languages.values()) - min(languages.values()) <= len(rows) // 10
    assert {(r["class"], r["language"]) for r in rows} == {
        (c, lang) for c in CLASSES for lang in ("pt", "es", "en")
    }
    severities = Counter(r["severity"] for r in rows if r["class"] == "complaint")
    assert set(severities) == {"low", "medium", "high", "critical"}
    assert min(severities.values()) >= 20
    assert all(r["severity"] == "" for r in rows if r["class"] != "complaint")
    assert {r["rsvp"] for r in rows if r["class"] == "rsvp"} == {
        "accepted",
        "declined",
        "tentative",
    }
    assert all(r["rsvp"] == "" for r in rows if r["class"] != "rsvp")


def test_the_split_once_scored_now_trains_and_stays_out_of_the_default_benchmark() -> None:
    """Scored once (class 0.853, severity 0.731), then it joined training as its own writer."""
    assert "labels_heldout3.csv" in TRAINING_LABELS
    assert "heldout3" not in DEFAULT_SPLITS
    assert SPLIT_LABELS["heldout3"] == "labels_heldout3.csv"
    assert len(corpus_rows("heldout3")) >= 300


def test_no_sentence_of_the_split_occurs_in_the_other_corpus_texts() -> None:
    """heldout3 was written without reading the others: no shared sentence, even by chance."""
    sys.path.insert(0, str(CORPUS))
    try:
        import texts_heldout3
    finally:
        sys.path.remove(str(CORPUS))
    older = "\n".join(
        p.read_text(encoding="utf-8")
        for pattern in ("fragments_*.py", "make_*.py")
        for p in CORPUS.glob(pattern)
        if "heldout3" not in p.name
    ).lower()
    sentences = [
        words
        for mail in texts_heldout3.MAILS
        for sentence in mail.body.replace("\n", ". ").split(". ")
        if len(words := sentence.strip().lower()) > 25
    ]
    assert len(sentences) > 300
    assert [s for s in sentences if s in older] == []  # names only this split's sentences
