"""The check-freshness flow on the sample fair files: a year on, phones and titles are stale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.governance import check_freshness
from flows.ingest import ingest_exhibition_leads as ingest_flow
from flows.ingest import sample_exports
from tests.flow_runs import run_to_end

pytestmark = pytest.mark.usefixtures("prefect_harness")
ingest = run_to_end(ingest_flow)


def test_a_year_and_a_half_after_the_fair_titles_and_phones_are_stale(database: str) -> None:
    ingest(sample_exports(), event="demo")
    now = datetime.now(UTC)
    fresh = check_freshness(as_of=now)
    assert fresh.stale_values == 0 and fresh.values_checked > 0
    later = check_freshness(as_of=now.replace(year=now.year + 1, month=6 if now.month < 6 else 12))
    assert later.share_fresh_by_field["phone"] == 0.0
    assert later.share_fresh_by_field["email"] == 1.0  # two years for an email
    assert sum(later.stale_contacts_by_owner.values()) > 0


def test_retention_drops_old_raw_cells_and_keeps_the_counts(database: str) -> None:
    from sqlalchemy import func, select

    from connectors.database.engine import session_scope
    from connectors.database.ingest_models import SourceRow

    ingest(sample_exports(), event="demo")
    now = datetime.now(UTC)
    assert check_freshness(as_of=now).raw_values_dropped == 0
    three_years = now.replace(year=now.year + 3)
    assert check_freshness(as_of=three_years).raw_values_dropped == 21
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(SourceRow)) == 21  # rows stay
        raws = s.scalars(select(SourceRow.raw)).all()
        assert all(r == {"retention": "dropped"} for r in raws)
