"""Reads and writes for complaints; the only module that speaks SQL for them.

Bulk paths (the escalation pass over every open complaint) go through Core executemany
without RETURNING, as ingestion does. Escalation records rely on the unique idempotency key
with ``ON CONFLICT DO NOTHING`` (both dialects), so two runs racing on the same ``as_of``
still store each escalation once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from connectors.database import notify_store
from connectors.database.base import epoch_seconds, utcnow
from connectors.database.complaints_models import (
    Complaint,
    ComplaintEscalation,
    ComplaintEvent,
    ComplaintHandover,
    OwnershipState,
)
from connectors.database.ingest_models import Company, Contact
from connectors.database.ingest_store import CHUNK, bulk_insert, insert_rows, insert_with_ids

LAST_RUN_KEY = "escalate:last_as_of"
ROUND_ROBIN_KEY = "owners:round_robin_cursor"


def lock_escalation(session: Session) -> None:
    """Serialise escalation runs (PostgreSQL advisory lock; SQLite's BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(727006)"))


# --- small state ------------------------------------------------------------------------


def get_state(session: Session, key: str) -> str | None:
    return session.scalar(select(OwnershipState.value).where(OwnershipState.key == key))


def set_state(session: Session, key: str, value: str) -> None:
    row = session.get(OwnershipState, key)
    if row is None:
        session.add(OwnershipState(key=key, value=value))
    else:
        row.value = value
    session.flush()


# --- intake -----------------------------------------------------------------------------


def existing_refs(session: Session, refs: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i in range(0, len(refs), CHUNK):
        rows = session.execute(
            select(Complaint.external_ref, Complaint.id).where(
                Complaint.external_ref.in_(refs[i : i + CHUNK])
            )
        )
        found.update({str(r): int(c) for r, c in rows})
    return found


def companies_by_key(session: Session, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i in range(0, len(keys), CHUNK):
        rows = session.execute(
            select(Company.name_key, func.min(Company.id))
            .where(Company.name_key.in_(keys[i : i + CHUNK]))
            .group_by(Company.name_key)
        )
        found.update({str(k): int(c) for k, c in rows})
    return found


def create_companies(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    return insert_with_ids(session, Company, rows)


def create_contacts(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    return insert_with_ids(session, Contact, rows)


def companies_info(session: Session, ids: Iterable[int]) -> pd.DataFrame:
    """id, name, country, owner_id of the given companies."""
    id_list = sorted(set(ids))
    frames = [pd.DataFrame(columns=["id", "name", "country", "owner_id"])]
    for i in range(0, len(id_list), CHUNK):
        stmt = select(Company.id, Company.name, Company.country, Company.owner_id).where(
            Company.id.in_(id_list[i : i + CHUNK])
        )
        frames.append(pd.read_sql(stmt, session.connection()))
    return pd.concat(frames, ignore_index=True)


def set_company_owners(session: Session, owners: list[dict[str, Any]]) -> None:
    """Each dict: ``id``, ``owner_id``, ``owner_rule``."""
    if owners:
        now = utcnow()
        session.execute(update(Company), [{**o, "updated_at": now} for o in owners])


def insert_complaints(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    return insert_with_ids(session, Complaint, rows)


def insert_events(session: Session, rows: list[dict[str, Any]]) -> None:
    insert_rows(session, ComplaintEvent, rows)


def unowned_open(session: Session) -> pd.DataFrame:
    """Open complaints without an owner (the inbox may create them before owners exist)."""
    stmt = (
        select(
            Complaint.id.label("complaint_id"),
            Complaint.company_id,
            Company.name.label("company"),
            Company.owner_id.label("company_owner"),
            Contact.country,
            Contact.state,
        )
        .outerjoin(Company, Company.id == Complaint.company_id)
        .outerjoin(Contact, Contact.id == Complaint.contact_id)
        .where(Complaint.owner_id.is_(None), Complaint.closed_at.is_(None))
    )
    return pd.read_sql(stmt, session.connection())


def set_complaint_owners(session: Session, rows: list[dict[str, Any]]) -> None:
    """Each dict: ``id``, ``owner_id``, ``assignee_id``."""
    if rows:
        session.execute(update(Complaint), rows)


# --- events -----------------------------------------------------------------------------


def get_complaint(session: Session, complaint_id: int) -> Complaint | None:
    return session.get(Complaint, complaint_id, with_for_update=True)


def record_event(
    session: Session,
    complaint: Complaint,
    kind: str,
    at: datetime,
    note: str | None,
    actor: str | None,
    status: str,
    closed_at: datetime | None,
) -> None:
    session.add(ComplaintEvent(complaint_id=complaint.id, kind=kind, at=at, note=note, actor=actor))
    complaint.status = status
    complaint.closed_at = closed_at
    session.flush()


def last_event_kinds(session: Session, complaint_id: int) -> list[tuple[str, datetime]]:
    rows = session.execute(
        select(ComplaintEvent.kind, ComplaintEvent.at)
        .where(ComplaintEvent.complaint_id == complaint_id)
        .order_by(ComplaintEvent.at, ComplaintEvent.id)
    )
    return [(str(k), a) for k, a in rows]


# --- escalation -------------------------------------------------------------------------


def _in_scope(since: datetime | None) -> Any:
    """Open complaints, plus those closed at or after the previous run's ``as_of``."""
    if since is None:
        return Complaint.closed_at.is_(None)
    return or_(Complaint.closed_at.is_(None), Complaint.closed_at >= since)


def _frame(session: Session, stmt: Any) -> pd.DataFrame:
    """Rows to an all-object DataFrame (no type inference, no arrow strings: the caller
    converts the few columns it computes with)."""
    # Plain DBAPI tuples: Row objects and the ORM's loading cost several times more per row,
    # and the selected columns need no result processing (ints, strings, epoch seconds).
    result = session.connection().execute(stmt)
    names = list(result.keys())
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return pd.DataFrame(rows, columns=names, dtype=object)


def load_clock_input(session: Session, since: datetime | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Complaints in scope (with their cached SLA columns) and all their events.

    Instants come back as epoch seconds (``*_s`` columns): the clocks work in seconds and
    converting 100k datetimes in Python would dominate the run. On the first run
    (``since`` None) closed complaints are left out: their history was never escalated
    live, and paging people about last year's complaints helps nobody.
    """
    scope = _in_scope(since)
    complaints = _frame(
        session,
        select(
            Complaint.id.label("complaint_id"),
            Complaint.severity,
            Complaint.tier,
            Complaint.owner_id,
            Complaint.assignee_id,
            Complaint.status,
            epoch_seconds(session, Complaint.response_due_at).label("response_due_s"),
            epoch_seconds(session, Complaint.resolution_due_at).label("resolution_due_s"),
            Complaint.response_state,
            Complaint.resolution_state,
            Complaint.sla_state,
        ).where(scope),
    )
    events = _frame(
        session,
        select(
            ComplaintEvent.complaint_id,
            ComplaintEvent.kind,
            epoch_seconds(session, ComplaintEvent.at).label("at_s"),
        )
        .join(Complaint, Complaint.id == ComplaintEvent.complaint_id)
        .where(scope),
    )
    return complaints, events


def update_sla_cache(session: Session, rows: list[dict[str, Any]]) -> None:
    """Each dict: ``id`` plus the SLA columns; executemany by primary key."""
    table: Any = Complaint.__table__
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            response_due_at=bindparam("response_due_at"),
            resolution_due_at=bindparam("resolution_due_at"),
            response_state=bindparam("response_state"),
            resolution_state=bindparam("resolution_state"),
            sla_state=bindparam("sla_state"),
            sla_as_of=bindparam("sla_as_of"),
        )
    )
    conn = session.connection()
    for i in range(0, len(rows), CHUNK * 4):
        chunk = rows[i : i + CHUNK * 4]
        if chunk:
            conn.execute(stmt, chunk)


def known_escalation_keys(session: Session, since: datetime | None) -> set[str]:
    """Idempotency keys already stored for the complaints in scope."""
    result = session.connection().execute(
        select(ComplaintEscalation.idempotency_key)
        .join(Complaint, Complaint.id == ComplaintEscalation.complaint_id)
        .where(_in_scope(since))
    )
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return {r[0] for r in rows}


def insert_escalations(session: Session, frame: pd.DataFrame) -> int:
    """Insert new escalations at driver speed; returns how many.

    The caller left out the keys already stored, under the escalation lock that serialises
    runs, so nothing here can collide; a collision would be a bug and fails the run.
    """
    bulk_insert(session, ComplaintEscalation, frame)
    return len(frame)


_ESCALATION_FIELDS = (
    ComplaintEscalation.id,
    ComplaintEscalation.idempotency_key,
    ComplaintEscalation.complaint_id,
    ComplaintEscalation.clock,
    ComplaintEscalation.level,
    ComplaintEscalation.kind,
    ComplaintEscalation.at_fraction,
    ComplaintEscalation.due_at,
    ComplaintEscalation.owner_id,
    ComplaintEscalation.recipient_id,
)


ESCALATIONS = notify_store.AlarmTable(
    ComplaintEscalation,
    lambda: select(*_ESCALATION_FIELDS),
    (ComplaintEscalation.notify.is_(True),),
)


def apply_handovers(session: Session, handovers: pd.DataFrame) -> None:
    """Store each hand-over and move the complaint to its new assignee."""
    if handovers.empty:
        return
    raw: list[dict[str, Any]] = handovers.to_dict("records")  # type: ignore[assignment]
    records = [
        {
            "complaint_id": int(r["complaint_id"]),
            "owner_id": r["owner_id"],
            "from_id": None if pd.isna(r["from_id"]) else r["from_id"],
            "to_id": r["to_id"],
            "reason": r["reason"],
            "chain": r["chain"],
            "at": pd.Timestamp(r["at"]).tz_convert("UTC").tz_localize(None).to_pydatetime(),
        }
        for r in raw
    ]
    insert_rows(session, ComplaintHandover, records)
    table: Any = Complaint.__table__
    session.connection().execute(
        update(table).where(table.c.id == bindparam("b_id")).values(assignee_id=bindparam("to")),
        [{"b_id": r["complaint_id"], "to": r["to_id"]} for r in records],
    )


# --- analysis ---------------------------------------------------------------------------


def load_analysis(session: Session, since: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Complaints created since ``since`` (with company and contact) and their events."""
    conn = session.connection()
    complaints = pd.read_sql(
        select(
            Complaint.id.label("complaint_id"),
            Complaint.severity,
            Complaint.tier,
            Complaint.category,
            Complaint.root_cause,
            Complaint.status,
            Complaint.owner_id,
            Complaint.contact_id,
            Complaint.company_id,
            Company.name.label("company"),
            Complaint.created_at,
            Complaint.closed_at,
        )
        .outerjoin(Company, Company.id == Complaint.company_id)
        .where(Complaint.created_at >= since),
        conn,
    )
    events = pd.read_sql(
        select(ComplaintEvent.complaint_id, ComplaintEvent.kind, ComplaintEvent.at)
        .join(Complaint, Complaint.id == ComplaintEvent.complaint_id)
        .where(Complaint.created_at >= since),
        conn,
    )
    return complaints, events


def handovers_of(session: Session, complaint_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ComplaintHandover)
        .where(ComplaintHandover.complaint_id == complaint_id)
        .order_by(ComplaintHandover.at, ComplaintHandover.id)
    ).scalars()
    return [
        {"from_id": h.from_id, "to_id": h.to_id, "reason": h.reason, "chain": h.chain, "at": h.at}
        for h in rows
    ]


def escalations_of(session: Session, complaint_ids: Iterable[int] | None = None) -> pd.DataFrame:
    stmt = select(ComplaintEscalation).order_by(ComplaintEscalation.id)
    if complaint_ids is not None:
        stmt = stmt.where(ComplaintEscalation.complaint_id.in_(list(complaint_ids)))
    frame = pd.read_sql(stmt, session.connection())
    return frame
