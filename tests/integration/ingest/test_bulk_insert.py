"""Bulk inserts (COPY on PostgreSQL, executemany on SQLite) store exactly what the frame held."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import pandas as pd
import psycopg
import pytest
from sqlalchemy import select

from connectors.database import ingest_store as store
from connectors.database.base import utcnow
from connectors.database.engine import session_scope


def test_a_bulk_insert_keeps_empty_text_missing_values_quotes_and_json_apart(
    database: str,
) -> None:
    """Empty text is not NULL, NULL is not empty; quotes, commas, newlines and non-ASCII
    text arrive as written; JSON values, JSON text, timestamps, booleans and defaults too."""
    awkward = 'say "hi", then\nleave; ação ü'
    with session_scope() as s:
        batch_id = store.create_batch(s, "exhibition", "fair")
        files = pd.DataFrame(
            {
                "id": [1, 2],
                "batch_id": batch_id,
                "name": [awkward, ""],
                "path": ["/a.csv", "/b.csv"],
                "sha256": ["a" * 64, "b" * 64],
                "size_bytes": [10, 20],
                "event": pd.Series([None, ""], dtype=object),
                "rows_in": [1, 0],
                "status": "ingested",
                "detail": pd.Series([{"k": awkward, "n": [1, None]}, None], dtype=object),
            }
        )
        store.bulk_insert(s, store.SourceFile, files)
        rows = pd.DataFrame(
            {
                "id": [1, 2],
                "file_id": [1, 1],
                "row_number": [1, 2],
                "raw": [json.dumps({"Nome": awkward}, ensure_ascii=False), "{}"],
                "disposition": ["quarantined", "quarantined"],
                "reason": pd.Series(["no_contact", None], dtype=object),
                "flags": pd.Series(["", None], dtype=object),
                "contact_id": pd.array([None, None], dtype="Int64"),
                "match_rule": pd.Series([None, None], dtype=object),
                "match_score": pd.array([None, 0.5], dtype="Float64"),
            }
        )
        store.bulk_insert(s, store.SourceRow, rows, json_text={"raw"})
        companies = pd.DataFrame({"id": [1], "name": ["ACME"], "name_key": ["acme"]})
        store.bulk_insert(s, store.Company, companies)  # created_at from its default
    with session_scope() as s:
        stored = s.execute(select(store.SourceFile).order_by(store.SourceFile.id)).scalars().all()
        assert [f.name for f in stored] == [awkward, ""]
        assert [f.event for f in stored] == [None, ""]
        assert stored[0].detail == {"k": awkward, "n": [1, None]}
        assert stored[1].detail is None
        company = s.execute(select(store.Company)).scalar_one()
        assert isinstance(company.created_at, datetime)
        assert abs((company.created_at - utcnow()).total_seconds()) < 60
        got = s.execute(select(store.SourceRow).order_by(store.SourceRow.id)).scalars().all()
        assert got[0].raw == {"Nome": awkward}
        assert [r.reason for r in got] == ["no_contact", None]
        assert [r.flags for r in got] == ["", None]
        assert [r.match_score for r in got] == [None, 0.5]


def test_a_write_that_fails_in_the_writer_fails_the_transaction_and_stores_nothing(
    database: str,
) -> None:
    """On PostgreSQL the writes run in the writer's thread: a failure there must still
    reach the caller, and the transaction must roll back with every earlier write."""
    companies = pd.DataFrame({"id": [1, 2], "name": ["A", "B"], "name_key": ["a", "b"]})
    clash = pd.DataFrame({"id": [2], "name": ["C"], "name_key": ["c"]})  # id 2 again
    failed = (sqlite3.IntegrityError, psycopg.IntegrityError)
    with pytest.raises(failed), session_scope() as s, store.BulkWriter(s) as writer:
        writer.insert(store.Company, companies)
        writer.insert(store.Company, clash)
        writer.insert(store.Company, pd.DataFrame({"id": [3], "name": ["D"], "name_key": ["d"]}))
    with session_scope() as s:
        assert s.execute(select(store.Company)).scalars().all() == []
