"""ingest-incoming: an export dropped into <data dir>/incoming is ingested, scored and
planned into its campaign by the next run of the 2-minute deployment, and taken once."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.database.engine import session_scope
from connectors.database.ingest_models import Contact
from connectors.database.outreach_models import OutboxItem
from flows.daily import ingest_incoming
from flows.deployments import SPECS
from flows.ingest import sample_exports
from tasks.common.incoming import pending_exports

pytestmark = pytest.mark.usefixtures("prefect_harness")
# Planning puts a step in the outbox when it is due inside the campaign's send window, so
# the run is pinned to a weekday morning in São Paulo, after the sample fair.
MONDAY_10_SP = datetime(2026, 3, 16, 13, 0, tzinfo=UTC)


def _drop(folder: Path, source: str, name: str | None = None, age: float = 60.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or Path(source).name)
    shutil.copyfile(source, target)
    then = time.time() - age
    os.utime(target, (then, then))
    return target


def _counts() -> tuple[int, int, int]:
    with session_scope() as s:
        contacts = s.execute(select(func.count()).select_from(Contact)).scalar_one()
        scored = s.execute(
            select(func.count()).select_from(Contact).where(Contact.band.is_not(None))
        ).scalar_one()
        planned = s.execute(select(func.count()).select_from(OutboxItem)).scalar_one()
    return contacts, scored, planned


def test_a_dropped_export_is_ingested_scored_planned_and_moved_once(
    database: str, app_env: Path
) -> None:
    incoming = app_env / "incoming"
    export = sample_exports()[0]
    dropped = _drop(incoming, export)

    summary = asyncio.run(ingest_incoming(as_of=MONDAY_10_SP))
    assert summary.files == [dropped.name]
    assert summary.ingest["rows_in"] == 11
    contacts, scored, planned = _counts()
    assert contacts == summary.ingest["new_contacts"] > 0
    assert scored == contacts and planned == summary.planned > 0
    assert not dropped.exists()
    assert [p.name for p in (incoming / "processed").rglob("*.csv")] == [dropped.name]

    # The next run finds nothing; the same export dropped again under another name is
    # ingested without creating anyone twice or planning anything twice.
    assert asyncio.run(ingest_incoming(as_of=MONDAY_10_SP)).files == []
    _drop(incoming, export, "copy-of-the-same.csv")
    again = asyncio.run(ingest_incoming(as_of=MONDAY_10_SP))
    assert again.files == ["copy-of-the-same.csv"] and again.planned == 0
    assert _counts() == (contacts, scored, planned)
    assert len(list((incoming / "processed").rglob("*.csv"))) == 2


def test_a_file_still_being_written_waits_for_the_next_run(tmp_path: Path) -> None:
    fresh = _drop(tmp_path, sample_exports()[0], age=0)
    settled = _drop(tmp_path, sample_exports()[1], age=60)
    (tmp_path / "notes.txt").write_text("not an export")
    assert pending_exports(tmp_path) == [settled]
    assert pending_exports(tmp_path, now=time.time() + 60) == [settled, fresh]


def test_the_incoming_deployment_runs_often_enough_for_a_five_minute_promise() -> None:
    [spec] = [s for s in SPECS if s.flow_name == "ingest-incoming"]
    assert spec.every is not None and spec.every.total_seconds() <= 150
