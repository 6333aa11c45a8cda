"""Freshness rules: a field is fresh while its last confirmation is younger than its rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from tasks.governance.freshness import UNOWNED, freshness

AS_OF = datetime(2026, 12, 7, tzinfo=UTC)
RULES = {"job_title": 365, "phone": 365, "email": 730}


def _contacts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": [1, 2, 3],
            "owner": ["ana", "ana", None],
            "last_seen_at": pd.to_datetime(["2026-11-01", "2025-06-01", "2024-06-01"]),
            "job_title": ["CEO", "Buyer", None],
            "phone": ["+5511", "+5512", "+5513"],
            "email": ["a@x.com", "b@x.com", "c@x.com"],
        }
    )


def test_fields_older_than_their_rule_are_stale_per_owner() -> None:
    history = pd.DataFrame({"contact_id": [], "field": [], "changed_at": []})
    stale, share = freshness(_contacts(), history, RULES, AS_OF)
    assert set(map(tuple, stale[["contact_id", "field"]].values)) == {
        (2, "job_title"), (2, "phone"),  # 18 months: past a year, within two
        (3, "phone"), (3, "email"),  # 30 months; no job title held, so none judged
    }  # fmt: skip
    assert set(stale.loc[stale["contact_id"] == 3, "owner"]) == {UNOWNED}
    ana = share[(share["owner"] == "ana") & (share["field"] == "phone")].iloc[0]
    assert (ana["fresh"], ana["total"], ana["share_fresh"]) == (1, 2, 0.5)


def test_a_recent_change_confirms_a_field_seen_long_ago() -> None:
    history = pd.DataFrame(
        {"contact_id": [2], "field": ["phone"], "changed_at": pd.to_datetime(["2026-10-01"])}
    )
    stale, _ = freshness(_contacts(), history, RULES, AS_OF)
    assert (2, "phone") not in set(map(tuple, stale[["contact_id", "field"]].values))
    assert (2, "job_title") in set(map(tuple, stale[["contact_id", "field"]].values))


def test_an_empty_database_has_nothing_stale() -> None:
    empty = _contacts().iloc[0:0]
    stale, share = freshness(empty, pd.DataFrame(columns=["contact_id", "field", "changed_at"]),
                             RULES, AS_OF)  # fmt: skip
    assert stale.empty and share.empty
