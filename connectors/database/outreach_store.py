"""Reads and writes of the transactional outbox; the only module that speaks SQL for it.

The at-most-once protocol lives here: rows are inserted with ``ON CONFLICT DO NOTHING`` on
their idempotency key, claimed under a lock that no other dispatcher can share (``FOR
UPDATE SKIP LOCKED`` on PostgreSQL, the database write lock that ``BEGIN IMMEDIATE`` takes
on SQLite), marked ``sending`` and committed before anything goes on the wire, and
results are written only over rows still ``sending`` under the same claim. Between that
commit and the batch's results the dispatcher's send journal (``connectors.send_journal``)
is the record of which messages went out; ``mark_abandoned`` reads it after a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connectors.database.base import naive_utc
from connectors.database.complaints_models import Complaint
from connectors.database.engine import get_engine
from connectors.database.governance_store import erased_keys
from connectors.database.inbox_models import InboundMessage, Suppression
from connectors.database.ingest_models import Company, Contact
from connectors.database.outreach_models import DeliveryEvent, OutboxItem, OutreachProfile
from connectors.fax_gateway import FaxRecord, final_result
from connectors.send_journal import read_journal
from connectors.smtp_sender import SendOutcome

CHUNK = 5_000
outbox = cast(Table, OutboxItem.__table__)
suppressions = cast(Table, Suppression.__table__)

# Statuses a claim picks up, and those that count as "this contact has been contacted".
DUE_STATUSES = ("planned", "retry")
CONTACTED_STATUSES = ("sending", "sent", "unknown")
# A claimed row is reserved by one dispatcher but not yet on the wire; it counts against
# the sender's daily cap so concurrent dispatchers cannot overshoot it.
CAP_STATUSES = ("claimed", "sending", "sent", "unknown")
# Inbound classes that are not a person answering (they never stop a sequence as a reply).
NOT_REPLIES = ("auto_reply", "bounce", "spam", "malformed")


def _dialect(session: Session | Connection) -> str:
    bind = session.get_bind() if isinstance(session, Session) else session.engine
    return bind.dialect.name


def _lock_key(name: str) -> int:
    """A signed 63-bit key for PostgreSQL advisory locks, stable across processes."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1


# ------------------------------------------------------------------------------ planning


@dataclass(frozen=True)
class PlanningInputs:
    """Everything the pure planner looks at, loaded in a handful of queries."""

    contacts: list[dict[str, Any]]
    progress: dict[int, dict[int, tuple[str, datetime | None]]]  # contact -> step -> state
    contacted_elsewhere: set[int]
    last_reply_at: dict[int, datetime]
    suppression_reasons: dict[int, set[str]]  # contact -> reasons (any channel)
    open_complaints: set[int]


def load_planning_inputs(session: Session, campaign: str) -> PlanningInputs:
    conn = session.connection()
    contacts = [
        dict(row._mapping)
        for row in conn.execute(
            select(
                Contact.id.label("contact_id"),
                Contact.first_name,
                Contact.full_name,
                Contact.email,
                Contact.country,
                Contact.band,
                Contact.source_event,
                Company.name.label("company"),
                OutreachProfile.segment,
                OutreachProfile.tags,
                OutreachProfile.timezone,
                OutreachProfile.language,
                OutreachProfile.fax,
            )
            .outerjoin(Company, Company.id == Contact.company_id)
            .outerjoin(OutreachProfile, OutreachProfile.contact_id == Contact.id)
            .order_by(Contact.id)
        )
    ]
    progress: dict[int, dict[int, tuple[str, datetime | None]]] = {}
    for cid, step, status, sent_at in conn.execute(
        select(outbox.c.contact_id, outbox.c.step, outbox.c.status, outbox.c.sent_at).where(
            outbox.c.campaign == campaign
        )
    ):
        progress.setdefault(cid, {})[step] = (status, sent_at)
    contacted = set(
        conn.execute(
            select(outbox.c.contact_id)
            .where(outbox.c.campaign != campaign, outbox.c.status.in_(CONTACTED_STATUSES))
            .distinct()
        ).scalars()
    )
    when = func.coalesce(InboundMessage.received_at, InboundMessage.ingested_at)
    replies: dict[int, datetime] = {
        int(cid or 0): at
        for cid, at in conn.execute(
            select(InboundMessage.contact_id, func.max(when))
            .where(InboundMessage.contact_id.is_not(None), InboundMessage.label.not_in(NOT_REPLIES))
            .group_by(InboundMessage.contact_id)
        )
    }
    reasons: dict[int, set[str]] = {}
    email_of = {c["contact_id"]: (c["email"] or "").lower() for c in contacts}
    by_address: dict[str, int] = {v: k for k, v in email_of.items() if v}
    for cid, address, reason in conn.execute(
        select(Suppression.contact_id, Suppression.address, Suppression.reason)
    ):
        target = cid if cid is not None else by_address.get((address or "").lower())
        if target is not None:
            reasons.setdefault(target, set()).add(reason)
    complaints: set[int] = {
        int(cid)
        for cid in conn.execute(
            select(Complaint.contact_id)
            .where(Complaint.contact_id.is_not(None), Complaint.status.in_(("open", "waiting")))
            .distinct()
        ).scalars()
        if cid is not None
    }
    return PlanningInputs(contacts, progress, contacted, replies, reasons, complaints)


def insert_planned(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert planned rows, skipping any whose idempotency key exists; returns inserted."""
    if not rows:
        return 0
    conn = session.connection()
    dialect = _dialect(session)
    before = _count(conn)
    for i in range(0, len(rows), CHUNK):
        chunk = list(rows[i : i + CHUNK])
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(outbox).on_conflict_do_nothing(
                index_elements=["idempotency_key"]
            )
        else:
            stmt = sqlite.insert(outbox).on_conflict_do_nothing(index_elements=["idempotency_key"])
        conn.execute(stmt, chunk)
    return _count(conn) - before


def _count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())


def due_rows(session: Session, campaign: str, now: datetime) -> list[dict[str, Any]]:
    """Rows a dispatch at ``now`` would claim (for dry runs; takes no lock)."""
    return [
        dict(r._mapping)
        for r in session.connection().execute(
            claim_columns().where(
                outbox.c.campaign == campaign,
                outbox.c.status.in_(DUE_STATUSES),
                outbox.c.next_attempt_at <= naive_utc(now),
            )
        )
    ]


def count_due(session: Session, campaign: str, now: datetime) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.campaign == campaign,
                outbox.c.status.in_(DUE_STATUSES),
                outbox.c.next_attempt_at <= naive_utc(now),
            )
        ).scalar_one()
    )


# ------------------------------------------------------------------------------- claims


def claim_columns() -> Any:
    return (
        select(
            outbox.c.id,
            outbox.c.idempotency_key,
            outbox.c.campaign,
            outbox.c.step,
            outbox.c.step_name,
            outbox.c.channel,
            outbox.c.contact_id,
            outbox.c.recipient,
            outbox.c.language,
            outbox.c.attempts,
            outbox.c.timezone,
            outbox.c.country,
            outbox.c.sender_address,
            Contact.first_name,
            Contact.full_name,
            Contact.email,
            Company.name.label("company"),
            OutreachProfile.fax,
        )
        .select_from(outbox)
        .join(Contact, Contact.id == outbox.c.contact_id)
        .outerjoin(Company, Company.id == Contact.company_id)
        .outerjoin(OutreachProfile, OutreachProfile.contact_id == outbox.c.contact_id)
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
    )


def sent_today(session: Session, sender_address: str, day_start: datetime) -> int:
    """Messages this sender put on the wire (or may have) since ``day_start``."""
    return int(
        session.execute(
            select(func.count())
            .select_from(outbox)
            .where(
                outbox.c.sender_address == sender_address,
                outbox.c.claimed_at >= naive_utc(day_start),
                outbox.c.status.in_(CAP_STATUSES),
            )
        ).scalar_one()
    )


def lock_sender(session: Session, sender_address: str) -> None:
    """Serialise claims per sender so the daily cap is exact under concurrent dispatchers
    (SQLite already holds the write lock from BEGIN IMMEDIATE)."""
    if _dialect(session) == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(f"sender:{sender_address}")}
        )


def lock_due_rows(
    session: Session, campaign: str, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """Due rows of ``campaign`` locked for this transaction; rows another dispatcher holds
    are skipped, not waited for (SQLite compiles FOR UPDATE away; its write lock is held)."""
    ids_query = (
        select(outbox.c.id)
        .where(
            outbox.c.campaign == campaign,
            outbox.c.status.in_(DUE_STATUSES),
            outbox.c.next_attempt_at <= naive_utc(now),
        )
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.execute(ids_query).scalars())
    if not ids:
        return []
    rows = session.connection().execute(claim_columns().where(outbox.c.id.in_(ids)))
    return [dict(r._mapping) for r in rows]


def suppressed_among(session: Session, rows: Sequence[dict[str, Any]]) -> dict[int, str]:
    """Outbox id -> suppression reason, for rows whose address or contact is suppressed on
    the row's channel (an invitation is an email)."""
    if not rows:
        return {}
    addresses = {r["recipient"].lower() for r in rows}
    contacts = {r["contact_id"] for r in rows}
    # An erased person's addresses are on the list only as salted keys (governance).
    erased = erased_keys(session, addresses)
    addresses |= set(erased.values())
    found: dict[tuple[str, str], str] = {}
    by_contact: dict[tuple[str, int], str] = {}
    for channel, address, cid, reason in session.execute(
        select(
            Suppression.channel, Suppression.address, Suppression.contact_id, Suppression.reason
        ).where(
            or_(
                func.lower(Suppression.address).in_(addresses),
                Suppression.contact_id.in_(contacts),
            )
        )
    ):
        found[(channel, address.lower())] = reason
        if cid is not None:
            by_contact[(channel, cid)] = reason
    out: dict[int, str] = {}
    for r in rows:
        channel = "fax" if r["channel"] == "fax" else "email"
        why: str | None = (
            found.get((channel, r["recipient"].lower()))
            or found.get((channel, erased.get(r["recipient"].lower(), "")))
            or by_contact.get((channel, r["contact_id"]))
        )
        if why is not None:
            out[r["id"]] = why
    return out


def claim_rows(session: Session, worker: str, ids: Sequence[int], now: datetime) -> None:
    """Reserve locked due rows for ``worker`` (``claimed``): one statement per chunk, not
    one parameter set per row, since every row gets the same values."""
    for i in range(0, len(ids), CHUNK):
        session.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(ids[i : i + CHUNK])))
            .values(
                status="claimed",
                claimed_by=worker,
                claimed_at=naive_utc(now),
                updated_at=naive_utc(now),
            )
        )


def mark_rows(session: Session, values: Sequence[dict[str, Any]]) -> None:
    """Bulk UPDATE by id; each dict carries ``b_id`` and the columns to set (same keys)."""
    if not values:
        return
    columns = [k for k in values[0] if k != "b_id"]
    stmt = (
        update(outbox)
        .where(outbox.c.id == bindparam("b_id"))
        .values({c: bindparam(f"v_{c}") for c in columns})
    )
    session.connection().execute(
        stmt, [{"b_id": v["b_id"], **{f"v_{c}": v[c] for c in columns}} for v in values]
    )


# ------------------------------------------------------------------ dispatcher liveness


class DispatcherLease:
    """Proof that a dispatcher is alive, visible to other dispatchers.

    PostgreSQL: a session advisory lock held on a dedicated connection, released by the
    server when the process dies (even on kill -9: the socket closes). SQLite: an
    ``flock`` on a file under the data dir, released by the kernel the same way.
    A ``sending`` row whose claimer holds no lease was abandoned mid-send.
    """

    def __init__(self, token: str, data_dir: Path) -> None:
        self.token = token
        self._dir = data_dir / "dispatchers"
        self._conn: Connection | None = None
        self._file: IO[bytes] | None = None

    def _path(self, token: str) -> Path:
        return self._dir / f"{hashlib.sha256(token.encode()).hexdigest()[:24]}.lock"

    def journal_path(self, token: str | None = None) -> Path:
        """Where the dispatcher holding ``token`` (default: this one) journals its sends."""
        return self._path(token or self.token).with_suffix(".journal")

    def acquire(self) -> None:
        engine = get_engine()
        if engine.dialect.name == "postgresql":
            self._conn = engine.connect()
            self._conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _lock_key(self.token)})
            self._conn.commit()
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        handle = self._path(self.token).open("wb")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file = handle

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(self.token)}
                )
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
        if self._file is not None:
            self._path(self.token).unlink(missing_ok=True)
            self._file.close()
            self._file = None

    def is_alive(self, session: Session, token: str) -> bool:
        """Whether the dispatcher that claimed under ``token`` still runs."""
        if token == self.token:
            return True
        if _dialect(session) == "postgresql":
            key = _lock_key(token)
            got = session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})
            # The transaction-level lock goes away at this session's commit.
            return not bool(got.scalar_one())
        path = self._path(token)
        if not path.exists():
            return False
        with path.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        path.unlink(missing_ok=True)
        return False


@contextmanager
def dispatcher_lease(data_dir: Path) -> Iterator[DispatcherLease]:
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    lease = DispatcherLease(token, data_dir)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()


@dataclass(frozen=True)
class Recovery:
    """What settling dead dispatchers' rows did, and the journals now safe to remove."""

    unknown: int = 0
    recorded: int = 0
    requeued: int = 0
    journals: tuple[Path, ...] = ()


def mark_abandoned(session: Session, lease: DispatcherLease, now: datetime) -> Recovery:
    """Settle what dead dispatchers left behind.

    ``sending`` rows are settled from the dead dispatcher's send journal: a recorded
    result is written as if the dispatcher had lived; a row the journal proves was never
    started goes back to the queue; any other row may or may not be out, so it becomes
    ``unknown`` and a person decides (``outreach retry --confirm-unknown``). A dispatcher
    has at most one send between "started" and "result", so a crash costs at most one
    unknown. ``claimed`` rows never reached the wire, so they simply become due again.
    """
    owners = list(
        session.execute(
            select(outbox.c.claimed_by)
            .where(outbox.c.status.in_(("sending", "claimed")))
            .distinct()
        ).scalars()
    )
    dead = [o for o in owners if o is not None and not lease.is_alive(session, o)]
    if not dead:
        return Recovery()
    conn = session.connection()
    recorded = requeued = 0
    journals: list[Path] = []
    for token in dead:
        path = lease.journal_path(token)
        reading = read_journal(path)
        journals.append(path)
        sending = set(
            session.execute(
                select(outbox.c.id).where(
                    outbox.c.status == "sending", outbox.c.claimed_by == token
                )
            ).scalars()
        )
        results = [v for i, v in reading.results.items() if i in sending]
        finish_sends(conn, token, results)
        recorded += len(results)
        if reading.complete:
            never_started = sending - reading.started - reading.results.keys()
            requeued += requeue_unsent(conn, token, sorted(never_started), now)
    session.execute(
        update(outbox)
        .where(outbox.c.status == "claimed", outbox.c.claimed_by.in_(dead))
        .values(
            status=case((outbox.c.attempts > 0, "retry"), else_="planned"),
            claimed_by=None,
            updated_at=naive_utc(now),
        )
    )
    result = session.execute(
        update(outbox)
        .where(outbox.c.status == "sending", outbox.c.claimed_by.in_(dead))
        .values(
            status="unknown",
            last_detail="dispatcher stopped during the send; outcome unknown",
            updated_at=naive_utc(now),
        )
    )
    unknown = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return Recovery(unknown, recorded, requeued, tuple(journals))


def release_claims(session: Session, worker: str, ids: Sequence[int], now: datetime) -> None:
    """Give claimed rows back unsent (a throttle said wait): due again, attempt uncounted."""
    if ids:
        session.execute(
            update(outbox)
            .where(
                outbox.c.id.in_(list(ids)),
                outbox.c.status == "claimed",
                outbox.c.claimed_by == worker,
            )
            .values(
                status=case((outbox.c.attempts > 0, "retry"), else_="planned"),
                claimed_by=None,
                updated_at=naive_utc(now),
            )
        )


RESULT_COLUMNS = (
    "status", "sent_at", "next_attempt_at", "provider_id", "last_code", "last_detail",
    "envelope_from", "updated_at",
)  # fmt: skip
# Built once: it runs for every message (as one executemany per batch).
_FINISH_SEND = (
    update(outbox)
    .where(
        outbox.c.id == bindparam("b_id"),
        outbox.c.status == "sending",
        outbox.c.claimed_by == bindparam("b_worker"),
    )
    .values({c: bindparam(f"v_{c}") for c in RESULT_COLUMNS})
)


def begin_sends(conn: Connection, worker: str, ids: Sequence[int], now: datetime) -> set[int]:
    """Move this worker's claimed rows to ``sending`` (one attempt more); returns the ids
    that moved. Commit before sending: that commit is what makes a send at most once."""
    moved: set[int] = set()
    for i in range(0, len(ids), CHUNK):
        chunk = list(ids[i : i + CHUNK])
        conn.execute(
            update(outbox)
            .where(
                outbox.c.id.in_(chunk),
                outbox.c.status == "claimed",
                outbox.c.claimed_by == worker,
            )
            .values(status="sending", attempts=outbox.c.attempts + 1, updated_at=naive_utc(now))
        )
        moved.update(
            conn.execute(
                select(outbox.c.id).where(
                    outbox.c.id.in_(chunk),
                    outbox.c.status == "sending",
                    outbox.c.claimed_by == worker,
                )
            ).scalars()
        )
    return moved


def finish_sends(conn: Connection, worker: str, values: Sequence[dict[str, Any]]) -> None:
    """Write send results (``RESULT_COLUMNS`` plus ``b_id`` each) over rows this worker
    is still sending; a row another run already settled keeps its verdict."""
    if values:
        conn.execute(
            _FINISH_SEND,
            [
                {"b_id": v["b_id"], "b_worker": worker, **{f"v_{c}": v[c] for c in RESULT_COLUMNS}}
                for v in values
            ],
        )


def requeue_unsent(conn: Connection, worker: str, ids: Sequence[int], now: datetime) -> int:
    """Give ``sending`` rows whose send provably never started back to the queue, with the
    attempt ``begin_sends`` counted taken back."""
    count = 0
    for i in range(0, len(ids), CHUNK):
        result = conn.execute(
            update(outbox)
            .where(
                outbox.c.id.in_(list(ids[i : i + CHUNK])),
                outbox.c.status == "sending",
                outbox.c.claimed_by == worker,
            )
            .values(
                status=case((outbox.c.attempts > 1, "retry"), else_="planned"),
                attempts=outbox.c.attempts - 1,
                claimed_by=None,
                updated_at=naive_utc(now),
            )
        )
        count += int(result.rowcount or 0)
    return count


def contact_addresses(session: Session, contact_id: int) -> tuple[str | None, str | None]:
    """The contact's email and fax number (None when unknown or no such contact)."""
    row = session.execute(
        select(Contact.email, OutreachProfile.fax)
        .outerjoin(OutreachProfile, OutreachProfile.contact_id == Contact.id)
        .where(Contact.id == contact_id)
    ).first()
    if row is None:
        return None, None
    return row[0], row[1]


def contact_exists(session: Session, contact_id: int) -> bool:
    return session.get(Contact, contact_id) is not None


def suppress(
    session: Session,
    entries: Sequence[dict[str, Any]],
) -> int:
    """Insert suppressions, ignoring ones already present; returns how many were new."""
    if not entries:
        return 0
    table = suppressions
    conn = session.connection()
    before = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    if _dialect(session) == "postgresql":
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing(
            index_elements=["channel", "address"]
        )
    else:
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["channel", "address"])
    conn.execute(stmt, list(entries))
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one()) - before


def outbox_row(session: Session, outbox_id: int) -> dict[str, Any] | None:
    row = session.execute(select(outbox).where(outbox.c.id == outbox_id)).first()
    return None if row is None else dict(row._mapping)


def outbox_id_for_provider(session: Session, provider_id: str) -> int | None:
    return session.execute(
        select(outbox.c.id).where(outbox.c.provider_id == provider_id).limit(1)
    ).scalar_one_or_none()


def record_delivery(
    session: Session, event: dict[str, Any], row_update: dict[str, Any] | None
) -> None:
    """Store what the provider said, and apply the outcome it implies to the row."""
    session.add(DeliveryEvent(**event))
    if row_update:
        session.execute(update(outbox).where(outbox.c.id == event["outbox_id"]).values(row_update))


def record_fax_status(
    session: Session, outbox_id: int, record: FaxRecord, body_sha256: str | None = None
) -> None:
    """The gateway's word on one fax (a callback or a poll): an event, the final status,
    and, when the fax did not go through, the outcome it means for the row (retry later,
    failed, or unknown for a partial send)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    result = final_result(outbox_id, record)
    row_update: dict[str, Any] = {"final_status": record.status, "final_status_at": now}
    if result is not None and result.outcome is not SendOutcome.SENT:
        row_update.update(
            status=result.outcome.value,
            last_detail=f"gateway: {result.detail}"[:2000],
            next_attempt_at=now if result.outcome is SendOutcome.RETRY else None,
            updated_at=now,
        )
    record_delivery(
        session,
        {
            "outbox_id": outbox_id,
            "provider_id": record.fax_id,
            "status": record.status,
            "error_type": record.error_type,
            "error_code": record.error_code,
            "error_message": record.error_message,
            "body_sha256": body_sha256,
        },
        row_update,
    )


def record_bounces(session: Session, bounces: Sequence[dict[str, Any]]) -> None:
    """DSNs that answer an outbox row: an event each, and the row's final status (a hard
    bounce outranks a soft one), so failed outreach lists mail that never arrived."""
    now = datetime.now(UTC).replace(tzinfo=None)
    for bounce in bounces:
        status = f"{bounce['kind']}_bounce"
        row_update: dict[str, Any] = {"final_status": status, "final_status_at": now}
        if bounce["kind"] == "soft":  # never downgrade a hard bounce already recorded
            current = session.execute(
                select(outbox.c.final_status).where(outbox.c.id == bounce["outbox_id"])
            ).scalar_one_or_none()
            if current == "hard_bounce":
                row_update = {}
        record_delivery(
            session,
            {
                "outbox_id": bounce["outbox_id"],
                "status": status,
                "error_code": bounce["status"],
                "error_message": f"DSN for {bounce['recipient']}",
            },
            row_update,
        )


def faxes_awaiting_status(
    session: Session, sent_before: datetime, limit: int
) -> list[tuple[int, str]]:
    """(outbox id, gateway fax id) of faxes handed over before ``sent_before`` whose final
    status never came back: a callback lost while our web service was down."""
    rows = session.execute(
        select(outbox.c.id, outbox.c.provider_id)
        .where(
            outbox.c.channel == "fax",
            outbox.c.status == "sent",
            outbox.c.final_status.is_(None),
            outbox.c.provider_id.is_not(None),
            outbox.c.sent_at < sent_before.astimezone(UTC).replace(tzinfo=None),
        )
        .order_by(outbox.c.sent_at)
        .limit(limit)
    )
    return [(int(i), str(p)) for i, p in rows]


def status_counts(session: Session, campaign: str) -> dict[str, int]:
    return {
        status: int(n)
        for status, n in session.execute(
            select(outbox.c.status, func.count())
            .where(outbox.c.campaign == campaign)
            .group_by(outbox.c.status)
        )
    }


def day_start(at: datetime) -> datetime:
    naive = naive_utc(at)
    return naive.replace(hour=0, minute=0, second=0, microsecond=0)
