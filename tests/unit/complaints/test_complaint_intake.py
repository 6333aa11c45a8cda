"""Complaint intake rules: what is accepted, how state reads, which moves are allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.complaints.intake import (
    next_status,
    overall_states,
    read_import_file,
    territory_for,
    validate_records,
)


def test_a_met_first_response_gives_way_to_the_resolution_clock() -> None:
    got = overall_states(
        ["met", "breached", "met", "warning", "met", "breached"],
        ["ok", "ok", "resolved", "paused", "breached", "resolved"],
    )
    assert list(got) == ["ok", "breached", "resolved", "warning", "breached", "breached"]


@pytest.mark.parametrize(
    ("kind", "status", "after"),
    [
        ("responded", "open", "open"),
        ("waiting_on_client", "open", "waiting"),
        ("resumed", "waiting", "open"),
        ("resolved", "waiting", "resolved"),
        ("reopened", "resolved", "open"),
    ],
)
def test_allowed_moves_set_the_next_status(kind: str, status: str, after: str) -> None:
    assert next_status(kind, status) == after


@pytest.mark.parametrize(
    ("kind", "status"),
    [("reopened", "open"), ("resolved", "resolved"), ("resumed", "open"), ("created", "open")],
)
def test_moves_that_make_no_sense_are_refused(kind: str, status: str) -> None:
    with pytest.raises(ValueError):
        next_status(kind, status)


def test_the_most_specific_claimed_territory_wins() -> None:
    known = ["BR-SP", "DE"]
    assert territory_for("BR", "sp", known) == "BR-SP"
    assert territory_for("BR", "RJ", known) == "BR"
    assert territory_for("DE", None, known) == "DE"
    assert territory_for(None, None, known) is None


def test_every_invalid_record_is_reported_with_its_row_and_reason() -> None:
    good, bad = validate_records(
        [
            {"email": "A@B.com", "subject": "late", "severity": ""},
            {"email": "a@b.com"},
            {"company": "X", "body": "b", "created_at": "2026-12-07T09:00:00"},
            {"phone": "+55 11 3333-4444", "subject": "s", "colour": "red"},
        ]
    )
    assert [(n, c.email, c.severity) for n, c in good] == [(1, "a@b.com", "medium")]
    reasons = {r.row: r.reason for r in bad}
    assert "subject or a body" in reasons[2]
    assert "UTC offset" in reasons[3]
    assert "colour" in reasons[4]


def test_json_imports_accept_a_list_or_a_complaints_key(tmp_path: Path) -> None:
    rows = [{"email": "a@b.com", "subject": "s"}]
    plain, wrapped = tmp_path / "a.json", tmp_path / "b.json"
    plain.write_text(json.dumps(rows))
    wrapped.write_text(json.dumps({"complaints": rows}))
    assert read_import_file(plain) == read_import_file(wrapped) == rows
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        read_import_file(tmp_path / "c.xlsx")
