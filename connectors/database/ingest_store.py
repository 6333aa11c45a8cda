"""Reads and bulk writes for lead ingestion; the only module that speaks SQL for it."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType
from typing import Any, cast

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
from sqlalchemy import JSON, Table, func, insert, literal, select, text, union_all, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, DropConstraint

from connectors.database.base import utcnow
from connectors.database.ingest_models import (
    Company,
    Contact,
    ContactHistory,
    ContactIdentifier,
    ImportBatch,
    SourceFile,
    SourceRow,
)

CHUNK = 5_000
# contact_identifiers.kind -> the column of a staged or known row holding that identifier.
IDENTIFIER_COLUMNS = {"email": "email", "phone": "phone", "tax_id": "person_tax_id"}
# The kinds a contact keeps its own value of on its row; contact_identifiers holds only
# its other values of these kinds (see ContactIdentifier).
OWN_IDENTIFIERS = {"email": Contact.email, "phone": Contact.phone}


def lock_for_ingestion(session: Session) -> None:
    """Serialise concurrent ingestions so two runs never create the same contact twice.

    SQLite already holds the write lock (BEGIN IMMEDIATE); PostgreSQL takes a transaction
    advisory lock released at commit.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(727001)"))


def ingested_files(session: Session, shas: Sequence[str]) -> dict[str, int]:
    """sha256 -> batch id for the files already stored."""
    found: dict[str, int] = {}
    for i in range(0, len(shas), CHUNK):
        rows = session.execute(
            select(SourceFile.sha256, SourceFile.batch_id).where(
                SourceFile.sha256.in_(shas[i : i + CHUNK])
            )
        )
        found.update({sha: batch for sha, batch in rows})
    return found


def create_batch(session: Session, source: str, event: str | None) -> int:
    batch = ImportBatch(source=source, event=event)
    session.add(batch)
    session.flush()
    return batch.id


def finish_batch(session: Session, batch_id: int, summary: dict[str, Any]) -> None:
    session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id)
        .values(finished_at=utcnow(), summary=summary)
    )


def load_companies(session: Session) -> pd.DataFrame:
    """Every stored company's id, folded name and tax id: the few columns matching needs."""
    return pd.read_sql(
        select(
            Company.id.label("company_id"),
            Company.name_key.label("company_key"),
            Company.tax_id.label("company_tax_id"),
        ),
        session.connection(),
    )


def has_contacts(session: Session) -> bool:
    return session.execute(select(Contact.id).limit(1)).first() is not None


def contacts_sharing(
    session: Session,
    identifiers: dict[str, Collection[str]],
    company_ids: Collection[int],
    email_domains: Collection[str],
) -> list[int]:
    """Stored contacts holding one of ``identifiers`` (kind -> values), working for one of
    ``company_ids``, or seen with an email address at one of ``email_domains``."""
    found: set[int] = set()
    for kind, values in identifiers.items():
        by_kind = select(ContactIdentifier.contact_id).where(ContactIdentifier.kind == kind)
        found |= _ids_where_in(session, by_kind, ContactIdentifier.value, values)
        if kind in OWN_IDENTIFIERS:
            found |= _ids_where_in(session, select(Contact.id), OWN_IDENTIFIERS[kind], values)
    found |= _ids_where_in(session, select(Contact.id), Contact.company_id, company_ids)
    # A contact's own address (its row's domain), and every other it was seen with.
    found |= _ids_where_in(session, select(Contact.id), Contact.email_domain, email_domains)
    value = ContactIdentifier.value
    if session.get_bind().dialect.name == "postgresql":
        domain = func.split_part(value, "@", 2)
    else:
        domain = func.substr(value, func.instr(value, "@") + 1)
    emails = select(ContactIdentifier.contact_id).where(ContactIdentifier.kind == "email")
    found |= _ids_where_in(session, emails, domain, email_domains)
    return sorted(found)


def _ids_where_in(session: Session, query: Any, column: Any, values: Collection[Any]) -> set[int]:
    """The ids ``query`` selects where ``column`` is one of ``values``, a chunk at a time."""
    ordered = sorted(set(values))
    found: set[int] = set()
    for i in range(0, len(ordered), CHUNK):
        found.update(session.execute(query.where(column.in_(ordered[i : i + CHUNK]))).scalars())
    return found


def load_known(
    session: Session, contact_ids: Sequence[int], companies: pd.DataFrame
) -> pd.DataFrame:
    """One line per identifier of the given stored contacts, plus one per contact for its
    name, plus one per company of ``companies`` (a ``load_companies`` frame)."""
    query = select(
        Contact.id.label("contact_id"),
        Contact.name_key,
        Contact.email_domain,
        Contact.is_free_mail,
        Contact.company_id,
        Company.name_key.label("company_key"),
        Company.tax_id.label("company_tax_id"),
    ).outerjoin(Company, Company.id == Contact.company_id)
    frames = [pd.DataFrame(columns=list(query.selected_columns.keys()))]
    for i in range(0, len(contact_ids), CHUNK):
        chunk = query.where(Contact.id.in_(contact_ids[i : i + CHUNK]))
        frames.append(pd.read_sql(chunk, session.connection()))
    contacts = pd.concat(frames, ignore_index=True)
    idents = load_identifiers(session, contact_ids).drop(columns="own")
    wide = idents.assign(
        **{
            col: idents["value"].where(idents["kind"] == kind)
            for kind, col in IDENTIFIER_COLUMNS.items()
        }
    ).drop(columns=["kind", "value"])
    base = contacts.set_index("contact_id")
    wide = wide.join(
        base[["name_key", "company_id", "company_key", "company_tax_id"]], on="contact_id"
    )
    domain = wide["email"].str.split("@").str[1]
    wide = wide.assign(email_domain=domain, is_free_mail=False)
    free = base["is_free_mail"]
    wide["is_free_mail"] = (
        wide["contact_id"].map(free).fillna(False).astype(bool) & wide["email"].notna()
    )
    # Companies without contacts here still take part in company resolution.
    orphans = companies.assign(contact_id=None)
    return pd.concat([contacts, wide, orphans], ignore_index=True)


def load_contact_values(
    session: Session, ids: Iterable[int], columns: Sequence[str]
) -> pd.DataFrame:
    """Stored values of ``columns`` for the given contacts, indexed by contact id."""
    id_list = sorted(set(int(i) for i in ids))
    frames = []
    cols: list[Any] = []
    for c in columns:
        if c == "company":
            cols.append(Company.name.label("company"))
        else:
            cols.append(getattr(Contact, c))
    for i in range(0, len(id_list), CHUNK):
        stmt = (
            select(Contact.id, Contact.company_id, *cols)
            .outerjoin(Company, Company.id == Contact.company_id)
            .where(Contact.id.in_(id_list[i : i + CHUNK]))
        )
        frames.append(pd.read_sql(stmt, session.connection()))
    if not frames:
        names = ["id", "company_id", *(c.key for c in cols)]
        return pd.DataFrame(columns=names).set_index("id")
    return pd.concat(frames).set_index("id")


def reserve_ids(session: Session, model: Any, count: int) -> list[int]:
    """Primary keys for ``count`` new rows, so bulk inserts need no RETURNING.

    RETURNING through insertmanyvalues is quadratic in SQLAlchemy 2.1 for large batches.
    PostgreSQL hands out ids from the table's sequence (safe with concurrent writers);
    SQLite allocates above the current maximum, safe because the transaction holds the
    database's write lock from its first statement (BEGIN IMMEDIATE).
    """
    if count == 0:
        return []
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        seq = session.execute(
            text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}
        ).scalar_one()
        # One array, not a row per id: a result row per id costs a round of decoding each.
        ids = session.execute(
            text("SELECT array_agg(nextval(:s)) FROM generate_series(1, :n)"),
            {"s": seq, "n": count},
        ).scalar_one()
        return sorted(ids)
    top = session.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + count))


def insert_with_ids(session: Session, model: Any, values: list[dict[str, Any]]) -> list[int]:
    """Insert ``values`` with reserved ids; returns the ids in input order."""
    ids = reserve_ids(session, model, len(values))
    for value, new_id in zip(values, ids, strict=True):
        value["id"] = new_id
    insert_rows(session, model, values)
    return ids


def insert_rows(session: Session, model: Any, values: list[dict[str, Any]]) -> None:
    """Core executemany inserts (no ORM unit of work, no RETURNING)."""
    conn = session.connection()
    for i in range(0, len(values), CHUNK * 4):
        chunk = values[i : i + CHUNK * 4]
        if chunk:
            conn.execute(insert(model.__table__), chunk)


def bulk_insert(
    session: Session, model: Any, frame: pd.DataFrame, json_text: Collection[str] = ()
) -> None:
    """Insert a DataFrame whose columns are ``model``'s columns, at DBAPI speed.

    SQLAlchemy's executemany spends most of its time building per-row parameters; for the
    hundreds of thousands of rows an ingestion writes we hand the driver plain tuples
    instead: COPY on PostgreSQL, executemany on SQLite, inside the session's transaction.
    JSON columns take Python values, except those named in ``json_text``, which already
    hold JSON text (staging encodes raw rows once, vectorised).
    """
    if frame.empty:
        return
    table = model.__table__
    conn = session.connection()
    dialect = conn.dialect.name
    defaults = {}
    for column in table.columns:
        # Python-side defaults (timestamps, flags) that an ORM insert would have applied.
        if column.name not in frame and column.default is not None:
            default = column.default
            defaults[column.name] = default.arg(None) if default.is_callable else default.arg
    names = [*frame.columns, *defaults]
    quote = conn.dialect.identifier_preparer.quote
    cols = ", ".join(quote(c) for c in names)
    raw = conn.connection.driver_connection
    if raw is None:  # pragma: no cover - a pooled connection always has one
        raise RuntimeError("no DBAPI connection")
    if dialect == "postgresql":
        statement = f"COPY {quote(table.name)} ({cols}) FROM STDIN WITH (FORMAT csv)"
        _copy_csv(raw, statement, frame, table, json_text, defaults)
        return
    constants = [
        _driver_values(pd.Series([value]), table.c[name], dialect)
        for name, value in defaults.items()
    ]
    marks = ", ".join("?" for _ in names)
    # Plain values chunk by chunk: the Python objects of a whole batch at once would cost
    # more memory than the frame they come from.
    for start in range(0, len(frame), CHUNK * 4):
        part = frame.iloc[start : start + CHUNK * 4]
        columns = [_driver_values(part[n], table.c[n], dialect, n in json_text) for n in part]
        # A default is one value for every row: converted once, not once per row.
        columns += [constant * len(part) for constant in constants]
        cur = raw.cursor()
        try:
            cur.executemany(
                f"INSERT INTO {quote(table.name)} ({cols}) VALUES ({marks})",
                zip(*columns, strict=True),
            )
        finally:
            cur.close()


# The tables a large ingestion fills, and, on PostgreSQL, the tables whose keys they may
# point to while their foreign keys are off: the ingestion tables and source_files, never
# a table of another flow (score_reasons), whose writers would then wait on the load.
BULK_LOADED: tuple[Table, ...] = tuple(
    cast(Table, model.__table__) for model in (Company, Contact, SourceRow, ContactHistory)
)
_BULK_REFERRED = {"companies", "contacts", "source_rows", "source_files"}
# How long a bulk load waits for other sessions to let go of those tables (PostgreSQL)
# before it loads row by row instead: while it waited, every new reader would queue too.
BULK_LOCK_WAIT = "3s"


def wants_bulk_load(session: Session, rows: int, min_rows: int) -> bool:
    """Whether ``rows`` new source rows are at least ``min_rows`` (0: never) and at least
    as many as source_rows holds: a load that at least doubles the tables."""
    if min_rows <= 0 or rows < min_rows:
        return False
    stored = select(SourceRow.id).limit(rows + 1).subquery()  # counts no further than needed
    return session.execute(select(func.count()).select_from(stored)).scalar_one() <= rows


@contextmanager
def bulk_load(session: Session, wanted: bool) -> Iterator[bool]:
    """Within the block, the ``BULK_LOADED`` tables have no secondary indexes and, on
    PostgreSQL, no foreign keys to each other or to source_files; when it ends the indexes
    are built, and the keys checked, once.

    PostgreSQL's own advice for populating a database: building an index once is much
    cheaper than keeping it up row by row. It all happens in the caller's transaction,
    so a crash or a key that fails its check rolls back the rows and the schema together.
    Yields whether it applied: on PostgreSQL it needs the tables to itself (ACCESS
    EXCLUSIVE, until the commit), and after ``BULK_LOCK_WAIT`` it gives up and the load
    goes row by row.
    """
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    if not wanted or (postgres and not _lock_for_bulk_load(session)):
        yield False
        return
    indexes = [index for table in BULK_LOADED for index in table.indexes]
    keys = [
        key
        for table in BULK_LOADED
        for key in table.foreign_key_constraints
        if postgres and key.referred_table.name in _BULK_REFERRED
    ]
    for key in keys:
        conn.execute(DropConstraint(key))
    for index in indexes:
        index.drop(conn)
    yield True
    for index in indexes:
        index.create(conn)
    for key in keys:
        conn.execute(AddConstraint(key))


def _lock_for_bulk_load(session: Session) -> bool:
    """PostgreSQL: the bulk-loaded tables for this transaction alone, or False if other
    sessions hold them past ``BULK_LOCK_WAIT`` (the attempt is rolled back to a savepoint)."""
    names = ", ".join(table.name for table in BULK_LOADED)
    try:
        with session.begin_nested():
            session.execute(text(f"SET LOCAL lock_timeout = '{BULK_LOCK_WAIT}'"))
            session.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))
            session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        return False
    return True


class BulkWriter:
    """Writes that PostgreSQL works through while this process computes the next one.

    PostgreSQL checks foreign keys and maintains indexes in its own process: a 200,000-row
    ingestion's COPYs took it about 20 s, which this process spent waiting. Here writes
    run in order, in a thread of their own, on the session's one connection, while the
    caller builds the next frame (resolve + store 34.7-36.7 s before, 29.9-35.8 s after);
    the caller must not use the session itself until ``wait`` (or the end of the ``with``
    block) has returned. On SQLite the work is in this process, under the GIL (a writer
    thread beside matching saved nothing: 18.1 s against 18.9 s), so writes run inline.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        background = session.get_bind().dialect.name == "postgresql"
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="bulk-writer") if background else None
        self._pending: list[Future[None]] = []

    def submit(self, write: Callable[..., None], *args: Any) -> None:
        """``write(session, *args)``, after the writes submitted before it."""
        if self._pool is None:
            write(self._session, *args)
        else:
            self._pending.append(self._pool.submit(write, self._session, *args))

    def insert(self, model: Any, frame: pd.DataFrame, json_text: Collection[str] = ()) -> None:
        self.submit(bulk_insert, model, frame, json_text)

    def wait(self) -> None:
        """Block until every write submitted so far is done; raise the first that failed."""
        pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def __enter__(self) -> BulkWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Every write finishes (or fails) before the session may roll back or commit.
        try:
            if exc is None:
                self.wait()
            else:
                for future in self._pending:
                    future.cancel()
                    if not future.cancelled():
                        future.exception()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


_CSV = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def _copy_csv(
    raw: Any,
    statement: str,
    frame: pd.DataFrame,
    table: Any,
    json_text: Collection[str],
    defaults: dict[str, Any],
) -> None:
    """PostgreSQL: one COPY, fed CSV that Arrow writes a slice at a time.

    psycopg's ``write_row`` formats row by row in this process: 5-6 CPU seconds for an
    ingestion's 750,000 rows, where Arrow's CSV writer, whole columns at a time in C++,
    takes about one. It quotes every string, so an empty string stays empty and only a
    missing value (unquoted, empty) is NULL.
    """
    with raw.cursor() as cur, cur.copy(statement) as cp:
        for start in range(0, len(frame), CHUNK * 4):
            part = frame.iloc[start : start + CHUNK * 4]
            arrays = [_arrow_values(part[n], table.c[n], n in json_text) for n in part]
            arrays += [pa.array([value] * len(part)) for value in defaults.values()]
            names = [*part.columns, *defaults]
            buffer = io.BytesIO()
            pacsv.write_csv(pa.table(arrays, names=names), buffer, _CSV)
            cp.write(buffer.getbuffer())


def _json_text(series: pd.Series) -> pd.Series:
    """Python values of a JSON column as their JSON text (None stays NULL)."""
    return series.map(lambda v: None if v is None else json.dumps(v, ensure_ascii=False))


def _arrow_values(series: pd.Series, column: Any, is_json_text: bool) -> Any:
    """One column as an Arrow array for the CSV writer (JSON values as their text)."""
    if isinstance(column.type, JSON) and not is_json_text:
        series = _json_text(series)
    return pa.array(series, from_pandas=True)


def _driver_values(
    series: pd.Series, column: Any, dialect: str, is_json_text: bool = False
) -> list[Any]:
    """One column as plain Python values for the driver, NA as None."""
    if isinstance(column.type, JSON) and not is_json_text:
        series = _json_text(series)
    elif pd.api.types.is_datetime64_any_dtype(series):
        # SQLite stores what SQLAlchemy would write; psycopg adapts datetime objects.
        if dialect == "sqlite":
            series = series.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        else:
            series = pd.Series(series.dt.to_pydatetime(), index=series.index, dtype=object)
    # pandas documents None as an na_value; pandas-stubs do not list it.
    return series.to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[call-overload]


def update_contacts(session: Session, values: list[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key (each dict carries ``id``)."""
    if values:
        session.execute(update(Contact), values)


__all__ = [
    "BULK_LOADED",
    "IDENTIFIER_COLUMNS",
    "OWN_IDENTIFIERS",
    "BulkWriter",
    "Company",
    "Contact",
    "ContactHistory",
    "ContactIdentifier",
    "SourceFile",
    "SourceRow",
    "bulk_insert",
    "bulk_load",
    "contact_companies",
    "contacts_by_identifier",
    "contacts_sharing",
    "create_batch",
    "finish_batch",
    "has_contacts",
    "ingested_files",
    "insert_rows",
    "insert_with_ids",
    "load_companies",
    "load_contact_values",
    "load_identifiers",
    "load_known",
    "lock_for_ingestion",
    "reserve_ids",
    "update_contacts",
    "wants_bulk_load",
]


def contacts_by_identifier(session: Session, kind: str, values: Iterable[str]) -> dict[str, int]:
    """Identifier value -> the oldest contact seen with it (an email or phone that several
    contacts share resolves to the first of them), as their own or another identifier."""
    wanted = sorted(set(values))
    found: dict[str, int] = {}
    for i in range(0, len(wanted), CHUNK):
        chunk = wanted[i : i + CHUNK]
        queries: list[Any] = [
            select(ContactIdentifier.value, func.min(ContactIdentifier.contact_id))
            .where(ContactIdentifier.kind == kind, ContactIdentifier.value.in_(chunk))
            .group_by(ContactIdentifier.value)
        ]
        if kind in OWN_IDENTIFIERS:
            own = OWN_IDENTIFIERS[kind]
            queries.append(select(own, func.min(Contact.id)).where(own.in_(chunk)).group_by(own))
        for query in queries:
            for v, c in session.execute(query):
                found[str(v)] = min(int(c), found.get(str(v), int(c)))
    return found


def contact_companies(session: Session, contact_ids: Iterable[int]) -> dict[int, int | None]:
    """Contact id -> its company id (None when it has none)."""
    ids = sorted(set(contact_ids))
    out: dict[int, int | None] = {}
    for i in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(Contact.id, Contact.company_id).where(Contact.id.in_(ids[i : i + CHUNK]))
        )
        out.update({int(c): (int(k) if k is not None else None) for c, k in rows})
    return out


def load_identifiers(session: Session, contact_ids: Sequence[int]) -> pd.DataFrame:
    """(contact_id, kind, value, own) of every identifier stored for these contacts: those
    in contact_identifiers, and each contact's own email and phone (``own``, on its row)."""
    frames = [pd.DataFrame(columns=["contact_id", "kind", "value", "own"])]
    for i in range(0, len(contact_ids), CHUNK):
        chunk = contact_ids[i : i + CHUNK]
        others = select(
            ContactIdentifier.contact_id,
            ContactIdentifier.kind,
            ContactIdentifier.value,
            literal(False).label("own"),
        ).where(ContactIdentifier.contact_id.in_(chunk))
        own = [
            select(Contact.id, literal(kind), column, literal(True)).where(
                Contact.id.in_(chunk), column.is_not(None)
            )
            for kind, column in OWN_IDENTIFIERS.items()
        ]
        frames.append(pd.read_sql(union_all(others, *own), session.connection()))
    found = pd.concat(frames, ignore_index=True).astype({"contact_id": "int64", "own": bool})
    # In one order whatever the database's: matching links a row to the first holder of
    # its email or phone (tasks/ingest/matching.py), so the order can decide a link.
    order = ["contact_id", "kind", "own", "value"]
    return found.sort_values(order, ascending=[True, True, False, True], ignore_index=True)
