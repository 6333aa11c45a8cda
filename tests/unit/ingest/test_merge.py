"""Current values and change history from a contact's sightings."""

from __future__ import annotations

import pandas as pd

from tasks.ingest.merge import LATEST_WINS, history


def sightings(*rows: dict[str, object]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in LATEST_WINS:
        if column not in frame:
            frame[column] = None
    if "company_id" not in frame:
        frame["company_id"] = None
    frame["row_key"] = range(len(frame))
    return frame


def test_a_new_job_title_on_a_later_sighting_is_one_change_from_that_row() -> None:
    rows = sightings(
        {"target": "n:0", "job_title": "Buyer"},
        {"target": "n:1", "job_title": "Engineer"},
        {"target": "n:0", "job_title": "Head of Purchasing"},
    )
    changes = history(rows)
    assert changes[["target", "field", "old_value", "new_value", "row_key"]].to_dict("records") == [
        {
            "target": "n:0",
            "field": "job_title",
            "old_value": "Buyer",
            "new_value": "Head of Purchasing",
            "row_key": 2,
        }
    ]


def test_a_contact_seen_once_changes_nothing_unless_its_stored_values_differ() -> None:
    rows = sightings(
        {"target": "n:0", "job_title": "Buyer", "city": "Porto"},
        {"target": "c:7", "job_title": "Director", "city": "Lisboa"},
        {"target": "c:8", "job_title": "Analyst"},
    )
    stored = pd.DataFrame(
        {"job_title": ["Manager", "Analyst"], "city": ["Lisboa", None]}, index=["c:7", "c:8"]
    )
    changes = history(rows, stored)
    assert changes[["target", "field", "old_value", "new_value"]].to_dict("records") == [
        {"target": "c:7", "field": "job_title", "old_value": "Manager", "new_value": "Director"}
    ]


def test_a_company_spelled_differently_but_resolved_alike_is_not_a_change() -> None:
    rows = sightings(
        {"target": "n:0", "company": "Acme", "company_id": 3},
        {"target": "n:0", "company": "ACME Ltda.", "company_id": 3},
        {"target": "n:0", "company": "Globex", "company_id": 4},
    )
    changes = history(rows)
    assert changes[["field", "old_value", "new_value", "row_key"]].to_dict("records") == [
        {"field": "company", "old_value": "ACME Ltda.", "new_value": "Globex", "row_key": 2}
    ]
