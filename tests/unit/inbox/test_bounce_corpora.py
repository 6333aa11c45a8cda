"""Bounce reading on public mail we did not write, against each corpus's own truth.

The corpora are read in place (``ACCOUNTFLOW_CORPORA_DIR``, default ``../shared/corpora``)
and flufl.bounce's is fetched from the package index into ``benchmarks/.data``. Each is
split by a hash of the file name; the rules were tuned on the tuning part only, and the
held-out part is asserted on its own. Absent corpora skip, except on CI where they fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.mail_corpora import (
    Score,
    corpora_dir,
    cpython_email_data,
    flufl_corpus,
    score_bounceparser,
    score_flufl,
    score_sisimai,
)
from tasks.inbox.classification import MailClassifier, MessageClass
from tasks.inbox.parsing import parse_message
from tasks.inbox.pipeline import PEOPLE
from tests.conftest import missing_peer


@pytest.fixture(scope="module")
def classifier() -> MailClassifier:
    return MailClassifier.default()


@pytest.fixture(scope="module")
def shared() -> Path:
    root = corpora_dir()
    if root is None:
        missing_peer("the shared mail corpora (set ACCOUNTFLOW_CORPORA_DIR)")
    assert root is not None
    return root


@pytest.fixture(scope="module")
def sisimai(shared: Path, classifier: MailClassifier) -> dict[str, Score]:
    return score_sisimai(shared / "sisimai", classifier)


@pytest.fixture(scope="module")
def bounceparser(shared: Path, classifier: MailClassifier) -> dict[str, Score]:
    return score_bounceparser(shared / "bounceparser", classifier)


@pytest.fixture(scope="module")
def flufl(classifier: MailClassifier) -> dict[str, Score]:
    tests = flufl_corpus()
    if tests is None:
        missing_peer("flufl.bounce's sdist from the package index")
    assert tests is not None
    return score_flufl(tests, classifier)


def _whole(scores: dict[str, Score], numerator: str, denominator: str) -> float:
    top = sum(getattr(s, numerator) for s in scores.values())
    bottom = sum(getattr(s, denominator) for s in scores.values())
    return top / bottom


def test_sisimai_failure_bounces_are_recognised_beyond_flufl_bounce(
    sisimai: dict[str, Score],
) -> None:
    held = sisimai["held_out"]
    assert held.recognised / held.failures >= 0.98
    assert held.recognised > held.flufl_recognised
    assert _whole(sisimai, "recognised", "failures") >= 0.99
    # None of the failures a mailer-daemon sent becomes a lead or complaint.
    for score in sisimai.values():
        assert score.failures_as.get("complaint", 0) == 0


def test_hard_and_soft_agree_with_sisimai_on_the_held_out_part(
    sisimai: dict[str, Score],
) -> None:
    held = sisimai["held_out"]
    assert held.hard_agree / held.hard_known >= 0.85
    assert _whole(sisimai, "hard_agree", "hard_known") >= 0.9


def test_the_returned_message_id_is_recovered_wherever_a_bounce_carries_one(
    sisimai: dict[str, Score], bounceparser: dict[str, Score], flufl: dict[str, Score]
) -> None:
    for scores in (sisimai, bounceparser, flufl):
        assert _whole(scores, "message_id_recovered", "message_id_present") >= 0.98


def test_the_reason_per_recipient_agrees_with_sisimai_on_most_held_out_bounces(
    sisimai: dict[str, Score],
) -> None:
    held = sisimai["held_out"]
    assert held.reason_agree / held.reason_known >= 0.7


def test_feedback_loop_reports_suppress_the_reported_recipient(
    sisimai: dict[str, Score],
) -> None:
    reports = sum(s.feedback for s in sisimai.values())
    suppressed = sum(s.feedback_suppressed for s in sisimai.values())
    # Those naming no recipient ("To: undisclosed") are matched to our outbox by the
    # Message-ID of the message they return.
    via_outbox = sum(s.feedback_via_outbox for s in sisimai.values())
    assert reports >= 15 and suppressed / reports >= 0.8
    assert (suppressed + via_outbox) / reports >= 0.9


def test_bounceparser_bounces_are_recognised_and_the_right_recipient_found(
    bounceparser: dict[str, Score],
) -> None:
    assert _whole(bounceparser, "recognised", "failures") >= 0.99
    assert _whole(bounceparser, "recipient_found", "recipient_expected") >= 0.97


def test_no_address_is_suppressed_for_spam_quota_size_or_filter_rejections(
    bounceparser: dict[str, Score],
) -> None:
    wrongful = sum(s.wrongful_suppressions for s in bounceparser.values())
    assert wrongful == 0  # the issue measured 56 before
    # Vacation, challenge-response and spam messages are no failures to count.
    assert sum(s.not_bounces_as_bounce for s in bounceparser.values()) <= 1


def test_flufl_bounce_corpus_is_recognised_at_least_as_well_as_flufl_bounce(
    flufl: dict[str, Score],
) -> None:
    ours = _whole(flufl, "recognised", "failures")
    theirs = _whole(flufl, "flufl_recognised", "failures")
    assert ours >= theirs and ours >= 0.95
    assert _whole(flufl, "recipient_found", "recipient_expected") >= 0.95


# CPython's email test messages that are machine mail (DSNs, mailer-daemon notices).
CPYTHON_MACHINE = ("msg_05.txt", "msg_16.txt", "msg_25.txt", "msg_43.txt")


def test_cpython_email_data_never_makes_machine_mail_a_lead_or_contact(
    classifier: MailClassifier,
) -> None:
    data = cpython_email_data()
    if data is None:
        missing_peer("CPython's Lib/test/test_email/data")
    assert data is not None
    texts = sorted(data.glob("msg_*.txt"))
    assert len(texts) >= 40
    labels = {p.name: classifier.classify(parse_message(p.read_bytes())).label for p in texts}
    for name in CPYTHON_MACHINE:
        assert labels[name] not in PEOPLE, name
    assert labels["msg_16.txt"] is MessageClass.BOUNCE
    assert labels["msg_25.txt"] is MessageClass.BOUNCE
