"""Reads and bulk writes for reliability scoring; the only module that speaks SQL for it.

The hot path (a million contacts in and out) avoids the ORM and SQLAlchemy's per-value
result and bind processing: reads go through the driver's cursor into DataFrames, and
writes land in a temporary table (``executemany`` on SQLite, ``COPY`` on PostgreSQL) that
one set-based ``INSERT ... SELECT`` and one ``UPDATE ... FROM`` move into place. What a row
carries is kept small: each distinct explanation is stored once, in ``score_reasons``.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from sqlalchemy import DateTime, select, text
from sqlalchemy.orm import Session

from connectors.company_registry import RegistryRecord
from connectors.database.base import naive_utc, utcnow
from connectors.database.ingest_store import insert_with_ids
from connectors.database.scoring_models import (
    AppEvent,
    ProspectScore,
    RegistryCacheEntry,
    ScoreReason,
)

CHUNK = 5_000
BAND_CHANGED = "prospect.band.changed"

# Inbound classes that are a person answering us (not a robot, not an opt-out).
REPLY_LABELS = ("lead", "complaint")
GOOD_OUTCOMES = ("won", "paid")

# The contact's own columns only: company name and tax id are joined in pandas from the
# (twenty times smaller) companies table, so SQLite hands back one object per company
# instead of one per contact for each of them.
_SCORING_COLUMNS = """
id AS contact_id, company_id,
CASE WHEN email_domain IS NULL THEN email END AS email, email_domain,
is_free_mail, phone, country, tax_id AS person_tax_id, job_title, lead_rating,
COALESCE(first_seen_at, created_at) AS created_at,
COALESCE(last_seen_at, updated_at) AS updated_at,
band, scorecard_version, score_fingerprint"""
# What only the audience report reads; scoring skips it (a million rows of notes cost).
_AUDIENCE_COLUMNS = ", state, notes, source_event, score"
_COMPANIES = "SELECT id, name AS company_name, tax_id AS company_tax_id FROM companies"

_TEXT = (
    "email",
    "email_domain",
    "phone",
    "country",
    "state",
    "company_name",
    "company_tax_id",
    "person_tax_id",
    "job_title",
    "lead_rating",
    "notes",
    "source_event",
    "band",
    "scorecard_version",
)


def _columns(
    session: Session, sql: str, params: dict[str, Any] | None = None
) -> dict[str, npt.NDArray[np.object_]]:
    """Rows of raw SQL as one array of the driver's Python objects per column.

    Straight from the driver's cursor: SQLAlchemy's Row objects make pandas probe every
    row for attributes (about 40 us each), and a million contacts would spend longer
    there than in SQLite. The rows are transposed through one 2-D object array (numpy
    does it in C), leaving each column's dtype to the caller.
    """
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_paramstyle(session, sql), params or {})
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        cursor.close()
    table = np.empty((len(rows), len(names)), dtype=object)
    if rows:
        table[:] = rows
    return {name: table[:, i] for i, name in enumerate(names)}


def _frame(session: Session, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Rows of raw SQL as a DataFrame, each column's dtype inferred by pandas."""
    return pd.DataFrame(_columns(session, sql, params))


def _paramstyle(session: Session, sql: str) -> str:
    """``:name`` placeholders in the driver's own style (sqlite named, psycopg pyformat)."""
    if session.get_bind().dialect.name == "postgresql":
        return re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", sql)
    return sql


def _stamps(values: pd.Series | npt.NDArray[np.object_]) -> pd.Series:
    """SQLite hands datetimes back as text, PostgreSQL as datetimes: both become datetime64.

    numpy converts the naive ISO text SQLAlchemy writes (and naive datetimes) about ten
    times faster than pandas; anything it will not take exactly (an offset, a "Z", an aware
    datetime, garbage) goes through pandas, which brings it to UTC or NaT.
    """
    index = values.index if isinstance(values, pd.Series) else None
    array = np.asarray(values, dtype=object)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return pd.Series(array.astype("datetime64[us]"), index=index)
    except (ValueError, TypeError, Warning):
        series = pd.Series(array, index=index)
        parsed = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)
        return parsed.dt.tz_localize(None).astype("datetime64[us]")


def _text(values: npt.NDArray[np.object_]) -> pd.Series:
    """Python strings (or None) as pandas' str dtype, converted by Arrow.

    About twice as fast as pandas' own cast, which counts for ten columns of a million rows.
    """
    try:
        strings = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # something other than text: let pandas cast
        return pd.Series(values, dtype="str")
    return pd.Series(strings, dtype="str")


def _typed(name: str, values: npt.NDArray[np.object_]) -> pd.Series:
    """One column of load_contacts in the dtype the input fingerprint relies on."""
    if name in _TEXT:
        return _text(values)
    if name in ("created_at", "updated_at"):
        return _stamps(values)
    if name in ("company_id", "score_fingerprint"):
        return pd.Series(values, dtype="Int64")
    if name == "contact_id":
        return pd.Series(values.astype("int64"))
    if name == "is_free_mail":
        return pd.Series(values).fillna(False).astype(bool)
    if name == "score":
        return pd.to_numeric(pd.Series(values), errors="coerce").astype("float64")
    raise ValueError(f"no dtype declared for contacts column {name!r}")


def load_contacts(session: Session, for_audience: bool = False) -> pd.DataFrame:
    """Every contact with its company and latest score, one row each, ordered by id.

    Column dtypes are fixed here (text as str, dates as datetime64, ids as Int64) so the
    input fingerprint of an unchanged contact is the same on every run and database. The
    frame is built once from typed columns: replacing columns of a frame one at a time
    copies its blocks over and over.
    """
    extra = _AUDIENCE_COLUMNS if for_audience else ""
    raw = _columns(session, "SELECT " + _SCORING_COLUMNS + extra + " FROM contacts ORDER BY id")
    columns = {name: _typed(name, values) for name, values in raw.items()}
    companies = _frame(session, _COMPANIES)
    at = pd.Index(companies["id"].astype("int64")).get_indexer(
        pd.Index(columns["company_id"].fillna(-1).astype("int64"))
    )
    for name in ("company_name", "company_tax_id"):
        values = companies[name].astype("str").array
        columns[name] = pd.Series(values.take(at, allow_fill=True))
    return pd.DataFrame(columns)


def _counts(session: Session, sql: str, name: str) -> pd.Series:
    frame = _frame(session, sql)
    if frame.empty:
        return pd.Series(dtype="float64", name=name)
    return frame.set_index(frame.columns[0])[frame.columns[1]].astype("float64").rename(name)


def load_activity(session: Session) -> pd.DataFrame:
    """Per contact that has any: replies, messages sent, complaints, latest outcome.

    Complaints filed against a company without a named person count for all its contacts:
    the relationship is with the company.
    """
    replies = _counts(
        session,
        "SELECT contact_id, COUNT(*) FROM inbound_messages WHERE contact_id IS NOT NULL "
        f"AND label IN ({', '.join(repr(x) for x in REPLY_LABELS)}) GROUP BY contact_id",
        "replies",
    )
    sent = _counts(
        session,
        "SELECT contact_id, COUNT(*) FROM outbox WHERE status = 'sent' GROUP BY contact_id",
        "sent",
    )
    by_contact = _frame(
        session,
        "SELECT contact_id, COUNT(*) AS total, "
        "SUM(CASE WHEN LOWER(severity) = 'critical' THEN 1 ELSE 0 END) AS critical "
        "FROM complaints WHERE contact_id IS NOT NULL GROUP BY contact_id",
    )
    by_company = _frame(
        session,
        "SELECT c.id AS contact_id, COUNT(*) AS total, "
        "SUM(CASE WHEN LOWER(k.severity) = 'critical' THEN 1 ELSE 0 END) AS critical "
        "FROM complaints k JOIN contacts c ON c.company_id = k.company_id "
        "WHERE k.contact_id IS NULL GROUP BY c.id",
    )
    complaints = (
        pd.concat([by_contact, by_company])
        .astype({"contact_id": "int64", "total": "float64", "critical": "float64"})
        .groupby("contact_id")[["total", "critical"]]
        .sum()
        .rename(columns={"total": "complaints_total", "critical": "complaints_critical"})
    )
    outcomes = _frame(
        session,
        "SELECT contact_id, kind FROM outcomes ORDER BY contact_id, occurred_at, id",
    )
    latest = (
        outcomes.groupby("contact_id")["kind"].last().astype("str").rename("outcome")
        if len(outcomes)
        else pd.Series(dtype="str", name="outcome")
    )
    frames: list[pd.Series | pd.DataFrame] = [replies, sent, complaints, latest]
    out = pd.concat(frames, axis=1)
    out.index = out.index.astype("int64")
    return out


def load_fresh_registry(session: Session, refreshed_since: datetime) -> pd.DataFrame:
    """Cached registry answers fetched since ``refreshed_since``, keyed by compact tax id."""
    frame = _frame(
        session,
        "SELECT tax_id, legal_status AS registry_status, founded AS registry_founded, "
        "size AS registry_size, fetched_at FROM registry_cache "
        "WHERE last_unavailable_reason IS NULL",
    )
    frame["fetched_at"] = _stamps(frame["fetched_at"])
    fresh = frame[frame["fetched_at"] >= np.datetime64(naive_utc(refreshed_since), "us")]
    out = fresh.drop(columns="fetched_at").set_index("tax_id")
    out["registry_founded"] = _stamps(out["registry_founded"])
    for col in ("registry_status", "registry_size"):
        out[col] = out[col].astype("str")
    return out


def load_registry_sizes(session: Session) -> pd.Series:
    """Company size per compact tax id from every cached answer (for segmenting only)."""
    frame = _frame(session, "SELECT tax_id, size FROM registry_cache WHERE size IS NOT NULL")
    return frame.set_index("tax_id")["size"].astype("str") if len(frame) else pd.Series(dtype="str")


def lock_for_scoring(session: Session) -> None:
    """One scoring run at a time: two would both see the same contacts as changed.

    SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL takes an advisory
    transaction lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(727004)"))


def company_tax_ids(session: Session) -> list[str]:
    """Distinct company tax ids of companies that have contacts."""
    rows = session.connection().exec_driver_sql(
        "SELECT DISTINCT co.tax_id FROM companies co JOIN contacts c ON c.company_id = co.id "
        "WHERE co.tax_id IS NOT NULL ORDER BY co.tax_id"
    )
    return [str(r[0]) for r in rows]


class DbRegistryCache:
    """The registry cache protocol over the ``registry_cache`` table.

    Each ``put`` commits on its own short transaction (``scope``) rather than riding a
    long one: lookups wait on HTTP, and on SQLite an open write transaction would hold
    the database's write lock for that whole time. ``preload`` reads many tax ids in one
    query so a run over thousands of companies does not pay a round trip per company.
    """

    def __init__(self, scope: Callable[[], AbstractContextManager[Session]]) -> None:
        self.scope = scope
        self._known: dict[str, RegistryRecord | None] = {}

    def preload(self, tax_ids: Sequence[str]) -> None:
        with self.scope() as session:
            for i in range(0, len(tax_ids), CHUNK):
                chunk = list(tax_ids[i : i + CHUNK])
                rows = session.scalars(
                    select(RegistryCacheEntry).where(RegistryCacheEntry.tax_id.in_(chunk))
                ).all()
                self._known.update({t: None for t in chunk})
                self._known.update({r.tax_id: _record(r) for r in rows})

    def get(self, tax_id: str) -> RegistryRecord | None:
        if tax_id not in self._known:
            with self.scope() as session:
                row = session.get(RegistryCacheEntry, tax_id)
                self._known[tax_id] = _record(row)
        return self._known[tax_id]

    def put(self, record: RegistryRecord) -> None:
        with self.scope() as session:
            session.merge(
                RegistryCacheEntry(
                    tax_id=record.tax_id,
                    legal_status=record.legal_status,
                    founded=record.founded,
                    size=record.size,
                    fetched_at=naive_utc(record.fetched_at),
                    last_unavailable_reason=None,
                )
            )
        self._known[record.tax_id] = record


def _record(row: RegistryCacheEntry | None) -> RegistryRecord | None:
    if row is None or row.last_unavailable_reason is not None:
        return None
    founded: date | None = row.founded
    return RegistryRecord(
        row.tax_id, row.legal_status, founded, row.size, row.fetched_at.replace(tzinfo=UTC)
    )


# ---------------------------------------------------------------- writes

_TMP_COLUMNS = (
    ("contact_id", "BIGINT"),
    ("company_id", "BIGINT"),
    ("score", "DOUBLE PRECISION"),
    ("band", "VARCHAR(4)"),
    ("reason_id", "INTEGER"),
    ("fingerprint", "BIGINT"),
)
_EXPLANATION = ("reason_codes", "reasons", "skipped_codes")


def _none_if_na(values: pd.Series) -> list[Any]:
    return values.astype(object).where(values.notna(), None).tolist()


def _bulk_load(
    session: Session, table: str, spec: tuple[tuple[str, str], ...], rows: list[Any]
) -> None:
    """A fresh temporary table filled with ``rows``: COPY on PostgreSQL, executemany else."""
    conn = session.connection()
    columns = ", ".join(c for c, _ in spec)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {table} (" + ", ".join(f"{c} {t}" for c, t in spec) + ")"
    )
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        cursor = driver.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in spec)
        driver.executemany(  # type: ignore[union-attr]
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows
        )


def reason_digest(codes: str, reasons: str, skipped: str | None) -> str:
    """The natural key of an explanation in ``score_reasons`` (no skipped factors = "")."""
    return hashlib.sha256("\x1f".join((codes, reasons, skipped or "")).encode()).hexdigest()


def reason_ids(session: Session, scored: pd.DataFrame) -> npt.NDArray[np.int64]:
    """The ``score_reasons`` id of each row's explanation, storing the new ones.

    Works per distinct explanation: the three columns are factorised (categoricals from
    tasks.scoring.scorecard factorise from their codes), combined into one integer key, and only
    the few thousand distinct triples are hashed, looked up and inserted.
    """
    key = np.zeros(len(scored), dtype=np.int64)
    parts = []
    for name in _EXPLANATION:
        column = pd.Categorical(scored[name])  # as is when already categorical
        codes = np.asarray(column.codes, dtype=np.int64)
        uniques = np.asarray(column.categories, dtype=object)
        key = key * (len(uniques) + 1) + (codes + 1)
        parts.append((codes, uniques))
    row_of, _ = pd.factorize(key)
    _, first = np.unique(row_of, return_index=True)  # a row of each, in code order
    texts = [[None if c[i] < 0 else str(u[c[i]]) for c, u in parts] for i in first.tolist()]
    # "" and null both mean "no factor skipped"; stored as null, as before.
    triples = [(codes or "", reasons or "", skipped or None) for codes, reasons, skipped in texts]
    digests = [reason_digest(*t) for t in triples]
    known: dict[str, int] = {}
    for i in range(0, len(digests), CHUNK):
        rows = session.execute(
            select(ScoreReason.digest, ScoreReason.id).where(
                ScoreReason.digest.in_(digests[i : i + CHUNK])
            )
        )
        known.update((str(d), int(n)) for d, n in rows)
    new = [(d, t) for d, t in zip(digests, triples, strict=True) if d not in known]
    values = [
        {"digest": d, "reason_codes": c, "reasons": r, "skipped_codes": s} for d, (c, r, s) in new
    ]
    added = insert_with_ids(session, ScoreReason, values)
    known.update(zip([d for d, _ in new], added, strict=True))
    per_key = np.array([known[d] for d in digests], dtype=np.int64)
    return per_key[np.asarray(row_of)]


def write_scores(
    session: Session,
    scored: pd.DataFrame,
    as_of: datetime,
    version: str,
    flow_run_id: str | None,
) -> None:
    """Append score history and set each contact's latest score, in the open transaction.

    ``scored`` has contact_id, company_id, score, band, reason_codes, reasons,
    skipped_codes and fingerprint (int64). A second write for the same
    (contact, as_of, version) replaces the first instead of failing, so a ``--full`` rerun
    at the same ``as_of`` converges to the same rows. Explanations are stored once each
    (:func:`reason_ids`); rows carry only their id.
    """
    if scored.empty:
        return
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    to_db = DateTime().bind_processor(conn.dialect) or (lambda v: v)
    as_of_db, now_db = to_db(naive_utc(as_of)), to_db(utcnow())
    rows = list(
        zip(
            scored["contact_id"].astype("int64").tolist(),
            _none_if_na(pd.to_numeric(scored["company_id"]).astype("Int64")),
            scored["score"].astype("float64").tolist(),
            scored["band"].astype(str).tolist(),
            reason_ids(session, scored).tolist(),
            scored["fingerprint"].astype("int64").tolist(),
            strict=True,
        )
    )
    if sqlite:
        # A page cache big enough for the index B-trees a million-row write walks
        # (SQLite's default is 2 MB); reset below.
        conn.exec_driver_sql("PRAGMA cache_size = -262144")
    _bulk_load(session, "tmp_scores", _TMP_COLUMNS, rows)
    params = {"as_of": as_of_db, "version": version, "run": flow_run_id, "now": now_db}
    conn.exec_driver_sql(
        _paramstyle(
            session,
            "INSERT INTO prospect_scores (contact_id, company_id, score, band, reason_id, "
            "input_fingerprint, as_of, scorecard_version, flow_run_id, created_at) "
            "SELECT contact_id, company_id, score, band, reason_id, fingerprint, :as_of, "
            ":version, :run, :now FROM tmp_scores "
            # WHERE true: SQLite needs it to tell this ON CONFLICT from a join's ON.
            "WHERE true ON CONFLICT (contact_id, as_of, scorecard_version) DO UPDATE SET "
            "company_id = excluded.company_id, score = excluded.score, band = excluded.band, "
            "reason_id = excluded.reason_id, input_fingerprint = excluded.input_fingerprint, "
            "flow_run_id = excluded.flow_run_id, created_at = excluded.created_at",
        ),
        params,
    )
    conn.exec_driver_sql(
        _paramstyle(
            session,
            "UPDATE contacts SET score = t.score, band = t.band, scorecard_version = :version, "
            "score_reason_id = t.reason_id, scored_at = :as_of, "
            "score_fingerprint = t.fingerprint FROM tmp_scores t WHERE contacts.id = t.contact_id",
        ),
        {"as_of": as_of_db, "version": version},
    )
    conn.exec_driver_sql("DROP TABLE tmp_scores")
    if sqlite:
        conn.exec_driver_sql("PRAGMA cache_size = -2000")


def event_key(contact_id: int, as_of: datetime, version: str) -> str:
    """The unique key of a band-change event: one per contact, ``as_of`` and scorecard."""
    return f"{contact_id}:{naive_utc(as_of).isoformat()}:{version}"


def record_band_changes(session: Session, changes: pd.DataFrame, as_of: datetime) -> list[int]:
    """Store one ``prospect.band.changed`` event per change not stored before; their ids.

    ``changes`` is tasks.scoring.scorecard.band_changes' output. Keys already present (a rerun) are
    left alone, so each change is recorded, and later emitted, exactly once.
    """
    if changes.empty:
        return []
    records = changes.assign(
        key=[
            event_key(int(c), as_of, str(v))
            for c, v in zip(changes["contact_id"], changes["scorecard_version"], strict=True)
        ]
    )
    keys = records["key"].tolist()
    seen: set[str] = set()
    for i in range(0, len(keys), CHUNK):
        seen.update(
            session.scalars(select(AppEvent.key).where(AppEvent.key.in_(keys[i : i + CHUNK])))
        )
    fresh = records[~records["key"].isin(seen)]
    stamp = naive_utc(as_of).isoformat()
    values = [
        {
            "kind": BAND_CHANGED,
            "key": key,
            "payload": {
                "contact_id": int(cid),
                "previous_band": str(prev),
                "new_band": str(new),
                "score": float(score),
                "scorecard_version": str(version),
                "as_of": stamp,
            },
            "created_at": utcnow(),
        }
        for key, cid, prev, new, score, version in zip(
            fresh["key"],
            fresh["contact_id"],
            fresh["previous_band"],
            fresh["new_band"],
            fresh["score"],
            fresh["scorecard_version"],
            strict=True,
        )
    ]
    return insert_with_ids(session, AppEvent, values)


def load_events(session: Session, ids: Iterable[int]) -> list[tuple[int, dict[str, Any]]]:
    """(id, payload) of the given app events, in id order."""
    id_list = sorted(int(i) for i in ids)
    out: list[tuple[int, dict[str, Any]]] = []
    for i in range(0, len(id_list), CHUNK):
        rows = session.execute(
            select(AppEvent.id, AppEvent.payload)
            .where(AppEvent.id.in_(id_list[i : i + CHUNK]))
            .order_by(AppEvent.id)
        )
        out.extend((int(r[0]), dict(r[1])) for r in rows)
    return out


def count_events(session: Session, kind: str) -> int:
    return int(
        session.execute(
            text("SELECT COUNT(*) FROM app_events WHERE kind = :k"), {"k": kind}
        ).scalar_one()
    )


def load_outcomes(session: Session) -> pd.DataFrame:
    """contact_id and latest outcome kind per contact, for the backtest."""
    frame = _frame(
        session, "SELECT contact_id, kind FROM outcomes ORDER BY contact_id, occurred_at, id"
    )
    if frame.empty:
        return pd.DataFrame({"contact_id": pd.Series(dtype="int64"), "outcome": []})
    latest = frame.groupby("contact_id")["kind"].last()
    return pd.DataFrame({"contact_id": latest.index.astype("int64"), "outcome": latest.values})


__all__ = [
    "BAND_CHANGED",
    "DbRegistryCache",
    "ProspectScore",
    "company_tax_ids",
    "count_events",
    "event_key",
    "load_activity",
    "load_contacts",
    "load_events",
    "load_fresh_registry",
    "load_outcomes",
    "reason_ids",
    "record_band_changes",
    "write_scores",
]
