"""The held-out splits written whole by other hands (make_heldout3.py, make_heldout4.py).

Their files, labels and balance, never their scores: nothing here classifies. Each split
is scored once, by hand, with ``python -m benchmarks.inbox_quality --split NAME``; once
scored and reported it may join training as a writer of its own (heldout3 has).
"""

from __future__ import annotations

import csv
import email
import email.policy
import importlib
import sys
from collections import Counter
from types import ModuleType

import pytest

from benchmarks.inbox_quality import DEFAULT_SPLITS, SPLIT_LABELS, corpus_rows
from tasks.inbox.human_model import CORPUS, TRAINING_LABELS

CLASSES = ("lead", "complaint", "rsvp", "auto_reply", "unsubscribe", "spam", "other")
# Per split: at least this many messages, complaints, messages per complaint severity, ``other``.
MINIMUM = {
    "heldout3": {"messages": 300, "complaint": 100, "severity": 20, "other": 30},
    "heldout4": {"messages": 150, "complaint": 54, "severity": 12, "other": 18},
}
SPLITS = tuple(MINIMUM)
# Scored once and reported (benchmarks/README.md), then trained on.
SCORED = {"heldout3"}


def _rows(split: str) -> list[dict[str, str]]:
    with (CORPUS / f"labels_{split}.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _texts(split: str) -> ModuleType:
    sys.path.insert(0, str(CORPUS))
    try:
        return importlib.import_module(f"texts_{split}")
    finally:
        sys.path.remove(str(CORPUS))


@pytest.mark.parametrize("split", SPLITS)
def test_every_file_has_one_label_and_every_label_a_file(split: str) -> None:
    rows = _rows(split)
    assert sorted(r["file"] for r in rows) == sorted(
        f"{split}/{p.name}" for p in (CORPUS / split).glob("*.eml")
    )
    assert {r["split"] for r in rows} == {split}


@pytest.mark.parametrize("split", SPLITS)
def test_every_message_parses_with_a_sender_a_subject_and_a_body(split: str) -> None:
    for row in _rows(split):
        message = email.message_from_bytes(
            (CORPUS / row["file"]).read_bytes(), policy=email.policy.default
        )
        assert message["From"] and message["Subject"] and message["Date"], row["file"]
        body = message.get_body(("plain", "html"))
        assert body is not None and len(body.get_content().strip()) > 5, row["file"]


@pytest.mark.parametrize("split", SPLITS)
def test_the_split_is_balanced_across_classes_languages_and_severities(split: str) -> None:
    rows, least = _rows(split), MINIMUM[split]
    assert len(rows) >= least["messages"]
    classes = Counter(r["class"] for r in rows)
    assert set(classes) == set(CLASSES)
    assert classes["complaint"] >= least["complaint"] and classes["other"] >= least["other"]
    languages = Counter(r["language"] for r in rows)
    assert set(languages) == {"pt", "es", "en"}
    assert max(languages.values()) - min(languages.values()) <= len(rows) // 10
    assert {(r["class"], r["language"]) for r in rows} == {
        (c, lang) for c in CLASSES for lang in ("pt", "es", "en")
    }
    severities = Counter(r["severity"] for r in rows if r["class"] == "complaint")
    assert set(severities) == {"low", "medium", "high", "critical"}
    assert min(severities.values()) >= least["severity"]
    by_language = Counter((r["language"], r["severity"]) for r in rows if r["class"] == "complaint")
    assert min(by_language.values()) >= 4 and len(by_language) == 12
    assert all(r["severity"] == "" for r in rows if r["class"] != "complaint")
    assert {r["rsvp"] for r in rows if r["class"] == "rsvp"} == {
        "accepted",
        "declined",
        "tentative",
    }
    assert all(r["rsvp"] == "" for r in rows if r["class"] != "rsvp")


@pytest.mark.parametrize("split", SPLITS)
def test_a_split_trains_only_once_scored_and_never_joins_the_default_benchmark(
    split: str,
) -> None:
    assert (f"labels_{split}.csv" in TRAINING_LABELS) == (split in SCORED)
    assert SPLIT_LABELS[split] == f"labels_{split}.csv"
    assert split not in DEFAULT_SPLITS
    assert len(corpus_rows(split)) >= MINIMUM[split]["messages"]


@pytest.mark.parametrize("split", SPLITS)
def test_no_sentence_of_the_split_occurs_in_the_other_corpus_texts(split: str) -> None:
    """Each split was written without reading the others: no shared sentence, even by chance."""
    others = [f"texts_{other}.py" for other in SPLITS if other != split]
    older = "\n".join(
        p.read_text(encoding="utf-8")
        for pattern in ("fragments_*.py", "make_*.py", *others)
        for p in CORPUS.glob(pattern)
        if split not in p.name
    ).lower()
    sentences = [
        words
        for mail in _texts(split).MAILS
        for sentence in mail.body.replace("\n", ". ").split(". ")
        if len(words := sentence.strip().lower()) > 25
    ]
    assert len(sentences) > MINIMUM[split]["messages"]
    assert [s for s in sentences if s in older] == []  # names only this split's sentences
