"""Every export kind, after the demo day, is byte for byte what was written when pandas
read and wrote every export (``pd.read_sql``, ``to_csv``, ``to_json``, kept here as the
reference): CSV now by the csv module, JSON from a frame built from the same rows."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import update

from connectors.database.engine import session_scope
from connectors.database.ingest_models import Contact
from flows.daily import daily_pipeline
from tasks.common.exports import KINDS, export_query, write_export
from tasks.common.spreadsheet_safety import neutralise


@pytest.fixture(scope="module", autouse=True)
def own_prefect_api() -> Iterator[None]:
    """A Prefect API of this module's own: the demo day's runs and artifacts (the sample
    people in them) stay out of the session's, which other tests count and search."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _as_pandas_wrote_it(kind: str, fmt: str) -> str:
    with session_scope() as s:
        frame = pd.read_sql(export_query(kind), s.connection())
    if "disposition" in frame:
        frame["disposition"] = frame["disposition"].map(lambda d: getattr(d, "value", d))
    if "raw" in frame:
        frame["raw"] = frame["raw"].map(
            lambda r: r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)
        )
    if fmt == "json":
        return (
            f"{frame.to_json(orient='records', date_format='iso', force_ascii=False, indent=1)}\n"
        )
    return str(neutralise(frame).to_csv(index=False, lineterminator="\r\n"))


def test_every_export_of_the_demo_day_is_what_pandas_wrote(database: str) -> None:
    asyncio.run(daily_pipeline(demo=True))
    with session_scope() as s:
        s.execute(update(Contact).where(Contact.id % 2 == 0).values(city="=1+1", score=None))
    written = {}
    for kind in KINDS:
        for fmt in ("csv", "json"):
            out = io.StringIO()
            written[kind] = write_export(kind, fmt, out)
            assert out.getvalue() == _as_pandas_wrote_it(kind, fmt), (kind, fmt)
    # The demo day fills most kinds: the comparison is over real rows, not headers.
    assert sum(1 for n in written.values() if n) >= 6, written
