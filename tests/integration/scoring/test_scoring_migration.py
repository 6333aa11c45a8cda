"""The 0003_scoring migration keeps every stored explanation while moving it to one table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from connectors.database.engine import get_engine, session_scope
from connectors.database.ingest_models import Contact
from connectors.database.migrate import upgrade
from connectors.database.scoring_models import ProspectScore, ScoreReason
from connectors.database.scoring_store import reason_digest
from tests.migrations import before_migration

BEFORE = datetime(2026, 11, 1)
LATEST = datetime(2026, 11, 28)
_CONTACTS = sa.table(
    "contacts",
    sa.column("id", sa.Integer),
    sa.column("is_free_mail", sa.Boolean),
    sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
    sa.column("score", sa.Double),
    sa.column("band", sa.String),
    sa.column("scorecard_version", sa.String),
    sa.column("score_reasons", sa.Text),
    sa.column("scored_at", sa.DateTime),
)
_HISTORY = sa.table(
    "prospect_scores",
    sa.column("contact_id", sa.Integer),
    sa.column("as_of", sa.DateTime),
    sa.column("score", sa.Double),
    sa.column("band", sa.String),
    sa.column("scorecard_version", sa.String),
    sa.column("reason_codes", sa.Text),
    sa.column("reasons", sa.Text),
    sa.column("skipped_codes", sa.Text),
    sa.column("created_at", sa.DateTime),
)
OLD = ("+LEAD_RATING_HOT", "+8 rated hot at the fair", None)
NEW = ("-DATA_AGE_STALE", "-7 contact data is over 2 years old", "REGISTRY_STATUS_ABSENT")


@pytest.fixture
def before_scoring_migration(database: str) -> Iterator[None]:
    with before_migration("0003_scoring"):
        yield


@pytest.mark.usefixtures("before_scoring_migration")
def test_upgrade_moves_each_distinct_explanation_to_score_reasons_and_links_it() -> None:
    history = [(1, BEFORE, OLD), (1, LATEST, NEW), (2, LATEST, NEW)]
    with get_engine().begin() as conn:
        conn.execute(
            sa.insert(_CONTACTS),
            [
                {
                    "id": cid,
                    "is_free_mail": False,
                    "created_at": BEFORE,
                    "updated_at": BEFORE,
                    "score": 40.0,
                    "band": "C",
                    "scorecard_version": "v1",
                    "score_reasons": NEW[1],
                    "scored_at": LATEST,
                }
                for cid in (1, 2)
            ],
        )
        conn.execute(
            sa.insert(_HISTORY),
            [
                {
                    "contact_id": cid,
                    "as_of": as_of,
                    "score": 40.0,
                    "band": "C",
                    "scorecard_version": "v1",
                    "reason_codes": codes,
                    "reasons": text,
                    "skipped_codes": skipped,
                    "created_at": as_of,
                }
                for cid, as_of, (codes, text, skipped) in history
            ],
        )
    upgrade()

    with session_scope() as s:
        stored = {
            (r.reason_codes, r.reasons, r.skipped_codes): r for r in s.scalars(select(ScoreReason))
        }
        assert set(stored) == {OLD, NEW}
        assert all(reason_digest(*key) == r.digest for key, r in stored.items())
        rows = s.execute(
            select(ProspectScore.contact_id, ProspectScore.as_of, ProspectScore.reason_id)
        ).all()
        assert sorted((c, a, i) for c, a, i in rows) == sorted(
            (cid, as_of, stored[key].id) for cid, as_of, key in history
        )
        latest = s.scalars(select(Contact.score_reason_id).order_by(Contact.id)).all()
        assert latest == [stored[NEW].id, stored[NEW].id]
