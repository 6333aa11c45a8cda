"""The failed-outreach report's pure rules: what each row is, what to do about it, what a
run's state says."""

from __future__ import annotations

from datetime import datetime

import pytest

from tasks.outreach.failed import (
    failure_note,
    mask_address,
    redrive_hint,
    report_rows,
    row_kind,
)


def _row(**values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": 7, "campaign": "spring", "step_name": "intro", "channel": "email",
        "recipient": "maria.souza@cliente.com.br", "status": "failed_permanent", "attempts": 1,
        "last_code": 550, "last_detail": "5.1.1 <maria.souza@cliente.com.br>: User unknown",
        "final_status": None, "updated_at": datetime(2026, 4, 7, 14, 0),
        "next_attempt_at": None, "contact_id": 3,
    }  # fmt: skip
    return {**base, **values}


def test_a_refused_address_is_failed_and_asks_for_the_address_to_be_corrected() -> None:
    row = _row()
    assert row_kind(row) == "failed"
    assert redrive_hint(row) == "address refused: correct the contact's address, then redrive"


def test_policy_refusals_unknown_bounced_deferred_and_redriven_rows_get_their_own_hints() -> None:
    assert "policy" in redrive_hint(_row(last_code=554, last_detail="5.7.1 relay denied"))
    assert "confirm_unknown" in redrive_hint(_row(status="unknown", last_code=None))
    bounced = _row(status="sent", final_status="hard_bounce")
    assert row_kind(bounced) == "bounced" and "suppressed" in redrive_hint(bounced)
    deferred = _row(status="retry", last_code=451, next_attempt_at=datetime(2026, 4, 7, 14, 5))
    assert redrive_hint(deferred) == "retried automatically at 2026-04-07 14:05 UTC"
    redriven = _row(status="retry", last_detail="5.1.1 gone [redriven by ops]")
    assert row_kind(redriven) == "redriven"


def test_the_table_masks_addresses_in_the_address_and_in_the_peers_reply() -> None:
    [out] = report_rows([_row()])
    assert out["address"] == "m***@cliente.com.br"
    assert "maria.souza" not in str(out)
    assert mask_address("fax", "+55 11 3000-0067") == "***67"


@pytest.mark.parametrize(
    "address",
    ["a.b+tag@sub.example.com", "UPPER.Case@Example.ORG", "o'brien@x.io", "x_y-z@d-1.co.uk"],
)
def test_no_email_address_survives_into_the_table(address: str) -> None:
    [out] = report_rows([_row(recipient=address, last_detail=f"550 <{address}>: unknown")])
    local = address.split("@", 1)[0]
    assert len(local) == 1 or f"{local}@" not in str(out)


def test_the_state_message_counts_failures_by_code_most_frequent_first() -> None:
    note = failure_note(13, 6, 0, 0, {"smtp 554": 2, "smtp 550": 4})
    assert note == "6 of 13 failed: 4 x 550, 2 x 554"
    assert failure_note(13, 0, 0, 0, {}) is None
    assert (
        failure_note(3, 1, 0, 1, {"render": 1})
        == "1 of 3 failed: 1 x render; 1 deferred, retried later"
    )
