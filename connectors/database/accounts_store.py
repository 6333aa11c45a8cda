"""Reads and writes for account relationships; the only module that speaks SQL for them.

The watch reads only the obligations whose state may have changed: new ones, and those whose
``next_check_at`` (their next deadline, or "at once" after new events) has come; each as a
plain DBAPI tuple with its due date already a day number and its event totals from its own
row (kept in step when events are stored, instead of grouping every event on every run). It
writes back the states that changed and the next checks, so a rerun at the same instant
reads and writes nothing. Notices rely on their unique key and are claimed ``sending`` and
committed before anything goes on the wire, as escalations are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Integer, bindparam, case, cast, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from connectors.database import notify_store
from connectors.database.accounts_models import (
    AccountAction,
    AccountHealth,
    Contract,
    Obligation,
    ObligationEvent,
    ObligationNotice,
    Talk,
)
from connectors.database.base import epoch_seconds, utcnow
from connectors.database.complaints_models import Complaint
from connectors.database.ingest_models import Company
from connectors.database.ingest_store import CHUNK, bulk_insert, insert_rows, insert_with_ids


def lock_accounts(session: Session) -> None:
    """Serialise imports and watches (PostgreSQL advisory lock; SQLite's BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(727023)"))


def _rows(session: Session, stmt: Any) -> pd.DataFrame:
    """Rows as an all-object DataFrame straight from the DBAPI cursor (no Row objects)."""
    result = session.connection().execute(stmt)
    names = list(result.keys())
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return pd.DataFrame(rows, columns=names, dtype=object)


def _day_number(session: Session, column: Any) -> Any:
    """A DATE column as days since 1970-01-01, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return column - text("DATE '1970-01-01'")
    return cast(func.julianday(column) - 2440587.5, Integer)


# --- contracts ---------------------------------------------------------------------------


def contracts_by_reference(session: Session, refs: Sequence[str]) -> dict[str, Contract]:
    found: dict[str, Contract] = {}
    for i in range(0, len(refs), CHUNK):
        for c in session.scalars(
            select(Contract).where(Contract.reference.in_(refs[i : i + CHUNK]))
        ):
            found[c.reference] = c
    return found


def company_owners(session: Session, ids: Iterable[int]) -> dict[int, str | None]:
    id_list = sorted(set(ids))
    found: dict[int, str | None] = {}
    for i in range(0, len(id_list), CHUNK):
        rows = session.execute(
            select(Company.id, Company.owner_id).where(Company.id.in_(id_list[i : i + CHUNK]))
        )
        found.update({int(c): o for c, o in rows})
    return found


def add_contract(session: Session, values: dict[str, Any]) -> int:
    return insert_with_ids(session, Contract, [values])[0]


def update_contract(session: Session, contract: Contract, values: dict[str, Any]) -> bool:
    """Apply ``values``; True when something changed."""
    changed = False
    for key, value in values.items():
        if getattr(contract, key) != value:
            setattr(contract, key, value)
            changed = True
    if changed:
        contract.updated_at = utcnow()
        session.flush()
    return changed


def obligations_of(session: Session, contract_ids: Sequence[int]) -> pd.DataFrame:
    columns = [
        Obligation.id,
        Obligation.contract_id,
        Obligation.ref,
        Obligation.kind,
        Obligation.item,
        Obligation.quantity,
        Obligation.metric,
        Obligation.target,
        Obligation.due_date,
        Obligation.derived,
        Obligation.owner_id,
    ]
    frames = [pd.DataFrame(columns=[c.key for c in columns])]
    for i in range(0, len(contract_ids), CHUNK):
        stmt = select(*columns).where(Obligation.contract_id.in_(contract_ids[i : i + CHUNK]))
        frames.append(pd.DataFrame([dict(r._mapping) for r in session.execute(stmt)]))
    return pd.concat([f for f in frames if len(f.columns)], ignore_index=True)


def insert_obligations(session: Session, rows: list[dict[str, Any]]) -> None:
    insert_rows(session, Obligation, rows)


def update_obligations(session: Session, rows: list[dict[str, Any]]) -> None:
    """Each dict: ``id`` and the columns to set (an edited due date clears the state)."""
    if rows:
        session.execute(update(Obligation), rows)


def contract_references(session: Session, contract_ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(
        select(Contract.id, Contract.reference).where(Contract.id.in_(list(contract_ids)))
    )
    return {int(i): str(r) for i, r in rows}


# --- events ------------------------------------------------------------------------------


def existing_event_refs(session: Session, refs: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(refs), CHUNK):
        found.update(
            session.scalars(
                select(ObligationEvent.external_ref).where(
                    ObligationEvent.external_ref.in_(refs[i : i + CHUNK])
                )
            )
        )
    return found


def insert_obligation_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Store events and bring their obligations' totals up to date (flagged for the watch)."""
    insert_rows(session, ObligationEvent, rows)
    refresh_event_totals(session, sorted({int(r["obligation_id"]) for r in rows}))


def event_totals() -> Any:
    """Per obligation: delivered and credited quantities, whether completed, whether an
    SLA was missed, how many invoices and credit notes, and the latest event's instant."""
    ev = ObligationEvent
    qty = func.coalesce(ev.quantity, 0.0)
    return select(
        ev.obligation_id.label("oid"),
        func.sum(case((ev.kind.in_(("delivered", "partially_delivered")), qty), else_=0.0)).label(
            "delivered"
        ),
        func.sum(case((ev.kind == "credited", qty), else_=0.0)).label("credited_qty"),
        func.max(
            case(
                (ev.kind == "completed", 1),
                ((ev.kind == "delivered") & ev.quantity.is_(None), 1),
                else_=0,
            )
        ).label("completed"),
        func.max(case((ev.kind == "sla_missed", 1), else_=0)).label("sla_missed"),
        func.sum(case((ev.kind == "invoiced", 1), else_=0)).label("invoiced"),
        func.sum(case((ev.kind == "credited", 1), else_=0)).label("credited"),
        func.max(ev.at).label("last_at"),
    ).group_by(ev.obligation_id)


def refresh_event_totals(session: Session | Any, obligation_ids: Sequence[int] | None) -> None:
    """Recompute the ``ev_*`` totals of these obligations (all when None) from their events
    and make them due for a check at once: the watch judges them again, final or not."""
    chunks: list[Sequence[int] | None] = (
        [None]
        if obligation_ids is None
        else [obligation_ids[i : i + CHUNK] for i in range(0, len(obligation_ids), CHUNK)]
    )
    for chunk in chunks:
        totals = event_totals()
        if chunk is not None:
            totals = totals.where(ObligationEvent.obligation_id.in_(list(chunk)))
        t = totals.subquery()
        session.execute(
            update(Obligation)
            .where(Obligation.id == t.c.oid)
            .values(
                ev_delivered=t.c.delivered,
                ev_credited_qty=t.c.credited_qty,
                ev_completed=t.c.completed > 0,
                ev_sla_missed=t.c.sla_missed > 0,
                ev_invoiced=t.c.invoiced,
                ev_credited=t.c.credited,
                ev_last_at=t.c.last_at,
                next_check_at=CHECK_NOW,
            )
            .execution_options(synchronize_session=False)
        )


def breached_complaints(session: Session) -> pd.DataFrame:
    """Complaints naming a known contract whose response or resolution SLA was breached,
    with the instant the breach was due: facts the obligations' service levels must hear."""
    stmt = (
        select(
            Complaint.id.label("complaint_id"),
            Contract.reference,
            Complaint.response_state,
            Complaint.response_due_at,
            Complaint.resolution_state,
            Complaint.resolution_due_at,
        )
        .join(Contract, Contract.reference == Complaint.reference)
        .where(
            or_(Complaint.response_state == "breached", Complaint.resolution_state == "breached")
        )
    )
    return pd.DataFrame([dict(r._mapping) for r in session.execute(stmt)])


def service_levels_of(session: Session, references: Sequence[str]) -> pd.DataFrame:
    stmt = (
        select(Obligation.id, Contract.reference, Obligation.metric)
        .join(Contract, Contract.id == Obligation.contract_id)
        .where(Obligation.kind == "service_level", Contract.reference.in_(list(references)))
    )
    return pd.DataFrame(
        [dict(r._mapping) for r in session.execute(stmt)], columns=["id", "reference", "metric"]
    )


# --- the watch ---------------------------------------------------------------------------


CHECK_NOW = datetime(1970, 1, 1)  # a next check that has always come
FINAL_STATES = ("met", "missed", "compensated")
TOTALS = ("delivered", "credited_qty", "completed", "sla_missed", "invoiced", "credited")


def load_watch_input(session: Session, as_of: datetime, everything: bool) -> pd.DataFrame:
    """Obligations whose state may have changed by ``as_of``, with what their events up to
    ``as_of`` say: new ones and those whose ``next_check_at`` has come (``everything``:
    every one not settled for good, for when the rules or calendars changed).

    The totals come from the obligation row; only an obligation with an event after
    ``as_of`` (a replay of an earlier instant, or an event dated ahead) has them summed
    from its events up to ``as_of``, and ``next_event`` gives its next event's instant
    (naive UTC). Columns: obligation_id, kind, quantity, due_day, owner_id, stored_state,
    due (1: new, or its check has come; 0: read only because ``everything``),
    next_check_s (the stored next check, epoch seconds), next_event, and ``TOTALS`` (all
    object dtype; the caller converts).
    """
    o = Obligation
    due = or_(o.state.is_(None), o.next_check_at <= as_of)
    if everything:
        due = or_(due, o.state.not_in(FINAL_STATES))
    stmt = select(
        o.id.label("obligation_id"),
        o.kind,
        o.quantity,
        _day_number(session, o.due_date).label("due_day"),
        o.owner_id,
        o.state.label("stored_state"),
        o.ev_delivered.label("delivered"),
        o.ev_credited_qty.label("credited_qty"),
        o.ev_completed.label("completed"),
        o.ev_sla_missed.label("sla_missed"),
        o.ev_invoiced.label("invoiced"),
        o.ev_credited.label("credited"),
        case((o.ev_last_at > as_of, 1), else_=0).label("ahead"),
        case((or_(o.state.is_(None), o.next_check_at <= as_of), 1), else_=0).label("due"),
        epoch_seconds(session, o.next_check_at).label("next_check_s"),
    ).where(due)
    frame = _rows(session, stmt)
    frame["next_event"] = None
    ahead = frame["ahead"].to_numpy(dtype=object) == 1 if len(frame) else np.zeros(0, bool)
    if ahead.any():
        _totals_up_to(session, frame, frame.index[ahead], as_of)
    return frame.drop(columns="ahead")


def _totals_up_to(session: Session, frame: pd.DataFrame, rows: pd.Index, as_of: datetime) -> None:
    ev = ObligationEvent
    ids = frame.loc[rows, "obligation_id"].astype(int).tolist()
    parts, nexts = [], []
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        parts.append(
            _rows(session, event_totals().where(ev.at <= as_of, ev.obligation_id.in_(chunk)))
        )
        nexts.append(
            _read(
                session,
                select(ev.obligation_id.label("oid"), func.min(ev.at).label("next_event"))
                .where(ev.at > as_of, ev.obligation_id.in_(chunk))
                .group_by(ev.obligation_id),
            )
        )
    sums = pd.concat(parts).set_index("oid")
    oid = frame.loc[rows, "obligation_id"]
    for column in TOTALS:
        frame.loc[rows, column] = oid.map(sums[column]).fillna(0) if len(sums) else 0
    following = pd.concat(nexts).set_index("oid")["next_event"]
    frame.loc[rows, "next_event"] = oid.map(following).to_numpy(dtype=object)


def update_states(
    session: Session,
    ids: Sequence[int],
    states: Sequence[str | None],
    next_checks: Sequence[datetime | None],
    at: datetime,
) -> None:
    """Each judged obligation's next check, and its state where it changed (``states``:
    None for an unchanged one, whose ``state_as_of`` stays when the state was set)."""
    table: Any = Obligation.__table__
    conn = session.connection()
    moved = update(table).where(table.c.id == bindparam("b_id"))
    statements = (
        (
            moved.values(
                state=bindparam("b_state"), state_as_of=at, next_check_at=bindparam("b_next")
            ),
            True,
        ),
        (moved.values(next_check_at=bindparam("b_next")), False),
    )
    for stmt, changed in statements:
        params = [
            {"b_id": int(i), "b_next": n, **({"b_state": st} if changed else {})}
            for i, st, n in zip(ids, states, next_checks, strict=True)
            if (st is not None) is changed
        ]
        for i in range(0, len(params), CHUNK * 4):
            conn.execute(stmt, params[i : i + CHUNK * 4])


def known_notice_keys(session: Session, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), CHUNK):
        found.update(
            session.scalars(
                select(ObligationNotice.idempotency_key).where(
                    ObligationNotice.idempotency_key.in_(keys[i : i + CHUNK])
                )
            )
        )
    return found


def insert_notices(session: Session, frame: pd.DataFrame) -> int:
    bulk_insert(session, ObligationNotice, frame)
    return len(frame)


_NOTICE_FIELDS = (
    ObligationNotice.id,
    ObligationNotice.idempotency_key,
    ObligationNotice.obligation_id,
    ObligationNotice.state,
    ObligationNotice.due_date,
    ObligationNotice.owner_id,
    ObligationNotice.recipient_id,
    ObligationNotice.delegation,
    Obligation.kind,
    Obligation.item,
    Obligation.quantity,
    Obligation.target,
    Contract.reference,
    Company.name.label("company"),
)


NOTICES = notify_store.AlarmTable(
    ObligationNotice,
    lambda: (
        select(*_NOTICE_FIELDS)
        .join(Obligation, Obligation.id == ObligationNotice.obligation_id)
        .join(Contract, Contract.id == Obligation.contract_id)
        .join(Company, Company.id == Contract.company_id)
    ),
)


def attention(session: Session, limit: int) -> pd.DataFrame:
    """Late, missed and due-soon obligations, worst and earliest first (the run's table)."""
    order = case((Obligation.state == "missed", 0), (Obligation.state == "late", 1), else_=2)
    stmt = (
        select(
            Contract.reference.label("contract"),
            Company.name.label("company"),
            Obligation.kind,
            Obligation.item,
            Obligation.target,
            Obligation.due_date,
            Obligation.state,
            Obligation.owner_id,
        )
        .join(Contract, Contract.id == Obligation.contract_id)
        .join(Company, Company.id == Contract.company_id)
        .where(Obligation.state.in_(("missed", "late", "due_soon")))
        .order_by(order, Obligation.due_date, Obligation.id)
        .limit(limit)
    )
    return pd.DataFrame([dict(r._mapping) for r in session.execute(stmt)])


def state_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(func.coalesce(Obligation.state, "unwatched"), func.count()).group_by(
            Obligation.state
        )
    )
    return {str(s): int(n) for s, n in rows}


def notices_of(session: Session, obligation_ids: Iterable[int] | None = None) -> pd.DataFrame:
    stmt = select(ObligationNotice).order_by(ObligationNotice.id)
    if obligation_ids is not None:
        stmt = stmt.where(ObligationNotice.obligation_id.in_(list(obligation_ids)))
    return pd.read_sql(stmt, session.connection())


def as_date(value: Any) -> date | None:
    """A date from a stored value (SQLite gives text through raw cursors)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# --- account health and next actions -----------------------------------------------------


def _read(session: Session, stmt: Any) -> pd.DataFrame:
    return pd.read_sql(stmt, session.connection())


def load_health_signals(
    session: Session, as_of: datetime, window_start: datetime, recent_start: datetime
) -> pd.DataFrame:
    """One row per company with what the health factors and action rules read.

    Timestamps come back as naive UTC datetimes; the caller turns them into day counts.
    ``recent_start`` bounds "replied recently" (an interested reply still waiting on us).
    """
    from connectors.database.inbox_models import InboundMessage
    from connectors.database.ingest_models import Contact
    from connectors.database.outreach_models import OutboxItem

    companies = _rows(
        session,
        select(Company.id.label("company_id"), Company.name, Company.owner_id).order_by(Company.id),
    ).set_index("company_id")
    hot = func.lower(func.coalesce(Contact.lead_rating, ""))
    contacts = _rows(
        session,
        select(
            Contact.company_id,
            func.min(Contact.band).label("best_band"),
            func.max(func.coalesce(Contact.last_seen_at, Contact.updated_at)).label("data_seen"),
            func.max(case((hot.in_(("hot", "quente", "caliente")), 1), else_=0)).label("hot"),
        )
        .where(Contact.company_id.is_not(None))
        .group_by(Contact.company_id),
    )
    inbound = _rows(
        session,
        select(
            Contact.company_id,
            func.sum(
                case(
                    (
                        (InboundMessage.label == "lead")
                        & (InboundMessage.received_at >= window_start),
                        1,
                    ),
                    else_=0,
                )
            ).label("replies"),
            func.sum(
                case(
                    (
                        (InboundMessage.rsvp_answer == "accepted")
                        & (InboundMessage.received_at >= window_start),
                        1,
                    ),
                    else_=0,
                )
            ).label("rsvps_accepted"),
            func.max(
                case(
                    (
                        (InboundMessage.label == "lead")
                        & (InboundMessage.received_at >= recent_start),
                        1,
                    ),
                    else_=0,
                )
            ).label("interested"),
            func.max(InboundMessage.received_at).label("last_inbound"),
        )
        .join(Contact, Contact.id == InboundMessage.contact_id)
        .where(InboundMessage.received_at <= as_of, Contact.company_id.is_not(None))
        .group_by(Contact.company_id),
    )
    outreach_start = as_of - (as_of - window_start) * 2
    outbound = _rows(
        session,
        select(
            Contact.company_id,
            func.sum(case((OutboxItem.status == "sent", 1), else_=0)).label("outreach_sent"),
            func.sum(
                case(
                    (OutboxItem.status.in_(("failed_permanent", "suppressed")), 1),
                    else_=0,
                )
            ).label("outreach_failed"),
            func.max(OutboxItem.sent_at).label("last_outbound"),
        )
        .join(Contact, Contact.id == OutboxItem.contact_id)
        .where(
            OutboxItem.due_at >= outreach_start,
            OutboxItem.due_at <= as_of,
            Contact.company_id.is_not(None),
        )
        .group_by(Contact.company_id),
    )
    is_open = Complaint.closed_at.is_(None)
    in_window = Complaint.created_at >= window_start

    def open_of(severity: str) -> Any:
        return func.sum(case((is_open & (Complaint.severity == severity), 1), else_=0)).label(
            f"open_{severity}"
        )

    complaints = _rows(
        session,
        select(
            Complaint.company_id,
            open_of("low"),
            open_of("medium"),
            open_of("high"),
            open_of("critical"),
            func.sum(case((in_window & (Complaint.sla_state == "breached"), 1), else_=0)).label(
                "breaches"
            ),
            func.sum(case((in_window, 1), else_=0)).label("complaints_window"),
        )
        .where(Complaint.company_id.is_not(None), Complaint.created_at <= as_of)
        .group_by(Complaint.company_id),
    )
    obligations = _rows(
        session,
        select(
            Contract.company_id,
            func.sum(case((Obligation.state == "late", 1), else_=0)).label("late_obligations"),
            func.sum(case((Obligation.state == "missed", 1), else_=0)).label("missed_obligations"),
            func.sum(case((Obligation.derived.is_(False), 1), else_=0)).label("obligations_total"),
        )
        .join(Contract, Contract.id == Obligation.contract_id)
        .group_by(Contract.company_id),
    )
    contracts = _rows(
        session,
        select(
            Contract.company_id,
            func.min(Contract.owner_id).label("contract_owner"),
            func.min(
                case((Contract.renewal_date >= as_of.date(), Contract.renewal_date), else_=None)
            ).label("next_renewal"),
        ).group_by(Contract.company_id),
    )
    talks = _rows(
        session,
        select(Talk.company_id, func.count().label("talks_held"))
        .where(
            Talk.status.in_(("held", "won")),
            Talk.proposed_at >= window_start,
            Talk.company_id.is_not(None),
        )
        .group_by(Talk.company_id),
    )
    frame = companies
    for part in (contacts, inbound, outbound, complaints, obligations, contracts, talks):
        frame = frame.join(part.set_index("company_id"), how="left")
    return frame.reset_index()


def previous_health(session: Session, before: datetime) -> pd.DataFrame:
    """Each company's latest score at or before ``before`` (company_id, score, band)."""
    latest = (
        select(AccountHealth.company_id, func.max(AccountHealth.as_of).label("at"))
        .where(AccountHealth.as_of <= before)
        .group_by(AccountHealth.company_id)
        .subquery()
    )
    return _read(
        session,
        select(AccountHealth.company_id, AccountHealth.score, AccountHealth.band).join(
            latest,
            (latest.c.company_id == AccountHealth.company_id)
            & (latest.c.at == AccountHealth.as_of),
        ),
    )


def delete_run(session: Session, as_of: datetime) -> None:
    """A rerun at the same ``as_of`` replaces that run's scores and actions."""
    session.execute(delete(AccountHealth).where(AccountHealth.as_of == as_of))
    session.execute(delete(AccountAction).where(AccountAction.as_of == as_of))


def insert_health(session: Session, frame: pd.DataFrame, json_text: Sequence[str] = ()) -> None:
    bulk_insert(session, AccountHealth, frame, json_text=json_text)


def insert_actions(session: Session, frame: pd.DataFrame) -> None:
    bulk_insert(session, AccountAction, frame)


def latest_actions(session: Session, company: str | None = None) -> pd.DataFrame:
    """The actions of the latest scoring run, soonest due first (optionally one company)."""
    last = session.scalar(select(func.max(AccountAction.as_of)))
    stmt = (
        select(
            AccountAction.company_id,
            Company.name.label("company"),
            AccountAction.action,
            AccountAction.reason,
            AccountAction.due_date,
            AccountAction.owner_id,
            AccountAction.assignee_id,
            AccountAction.rule,
            AccountHealth.score.label("health"),
            AccountHealth.band,
        )
        .join(Company, Company.id == AccountAction.company_id)
        .outerjoin(
            AccountHealth,
            (AccountHealth.company_id == AccountAction.company_id)
            & (AccountHealth.as_of == AccountAction.as_of),
        )
        .where(AccountAction.as_of == last)
        .order_by(AccountAction.due_date, AccountAction.company_id)
    )
    if company is not None:
        stmt = stmt.where(Company.name == company)
    return _read(session, stmt)


def health_history(session: Session, company_id: int) -> pd.DataFrame:
    return _read(
        session,
        select(AccountHealth.as_of, AccountHealth.score, AccountHealth.band, AccountHealth.reasons)
        .where(AccountHealth.company_id == company_id)
        .order_by(AccountHealth.as_of),
    )


ACCOUNT_BAND_CHANGED = "account.health.band.changed"


def record_band_changes(session: Session, moved: pd.DataFrame, as_of: datetime) -> list[int]:
    """An app_events row per band change, keyed so a rerun records nothing new; new ids."""
    from connectors.database.scoring_models import AppEvent

    if moved.empty:
        return []
    stamp = as_of.isoformat()
    keys = [f"account:{int(c)}:band:{stamp}" for c in moved["company_id"]]
    seen = set(session.scalars(select(AppEvent.key).where(AppEvent.key.in_(keys))))
    values = [
        {
            "kind": ACCOUNT_BAND_CHANGED,
            "key": key,
            "payload": {
                "company_id": int(cid),
                "previous_band": str(prev),
                "new_band": str(new),
                "score": float(score),
                "as_of": stamp,
            },
            "created_at": utcnow(),
        }
        for key, cid, prev, new, score in zip(
            keys,
            moved["company_id"],
            moved["previous_band"],
            moved["band"],
            moved["score"],
            strict=True,
        )
        if key not in seen
    ]
    return insert_with_ids(session, AppEvent, values)


# --- the account plan --------------------------------------------------------------------


def company_by_name(session: Session, name: str) -> tuple[int, str, str | None] | None:
    """(id, name, owner) of the company with this name (case-insensitive; lowest id wins)."""
    row = session.execute(
        select(Company.id, Company.name, Company.owner_id)
        .where(func.lower(Company.name) == name.lower())
        .order_by(Company.id)
        .limit(1)
    ).first()
    return (int(row[0]), str(row[1]), row[2]) if row else None


def plan_data(session: Session, company_id: int, as_of: datetime) -> dict[str, pd.DataFrame]:
    """Everything the account plan shows about one company, as small frames."""
    from connectors.database.inbox_models import InboundMessage
    from connectors.database.ingest_models import Contact
    from connectors.database.outreach_models import OutboxItem

    contacts = _read(
        session,
        select(
            Contact.id,
            Contact.full_name,
            Contact.job_title,
            Contact.email,
            Contact.band,
            Contact.lead_rating,
            Contact.last_seen_at,
        )
        .where(Contact.company_id == company_id)
        .order_by(Contact.band.is_(None), Contact.band, Contact.id),
    )
    ids = contacts["id"].astype(int).tolist()
    inbound = _read(
        session,
        select(
            InboundMessage.received_at.label("at"),
            InboundMessage.label.label("what"),
            InboundMessage.subject.label("detail"),
        )
        .where(InboundMessage.contact_id.in_(ids), InboundMessage.received_at <= as_of)
        .order_by(InboundMessage.received_at.desc())
        .limit(30),
    ).assign(direction="in")
    outbound = _read(
        session,
        select(
            func.coalesce(OutboxItem.sent_at, OutboxItem.due_at).label("at"),
            OutboxItem.status.label("what"),
            (OutboxItem.campaign + " / " + func.coalesce(OutboxItem.step_name, "")).label("detail"),
            OutboxItem.status,
        )
        .where(OutboxItem.contact_id.in_(ids))
        .order_by(OutboxItem.due_at.desc())
        .limit(60),
    )
    is_planned = outbound["status"] == "planned" if len(outbound) else pd.Series(dtype=bool)
    planned = outbound[is_planned].drop(columns="status")
    done = outbound[~is_planned].drop(columns="status").assign(direction="out")
    history = pd.concat([inbound, done], ignore_index=True)
    if len(history):
        history = history.sort_values("at", ascending=False).head(30)
    obligations = _read(
        session,
        select(
            Contract.reference,
            Contract.end_date,
            Contract.renewal_date,
            Obligation.kind,
            Obligation.item,
            Obligation.quantity,
            Obligation.target,
            Obligation.due_date,
            Obligation.state,
        )
        .join(Contract, Contract.id == Obligation.contract_id)
        .where(Contract.company_id == company_id)
        .order_by(Contract.reference, Obligation.due_date),
    )
    complaints = _read(
        session,
        select(
            Complaint.id,
            Complaint.severity,
            Complaint.subject,
            Complaint.status,
            Complaint.sla_state,
            Complaint.created_at,
        )
        .where(Complaint.company_id == company_id, Complaint.closed_at.is_(None))
        .order_by(Complaint.created_at),
    )
    health = _read(
        session,
        select(AccountHealth.as_of, AccountHealth.score, AccountHealth.band, AccountHealth.reasons)
        .where(AccountHealth.company_id == company_id, AccountHealth.as_of <= as_of)
        .order_by(AccountHealth.as_of),
    )
    actions = _read(
        session,
        select(
            AccountAction.as_of,
            AccountAction.action,
            AccountAction.reason,
            AccountAction.due_date,
            AccountAction.owner_id,
            AccountAction.assignee_id,
        ).where(
            AccountAction.company_id == company_id,
            AccountAction.as_of
            == select(func.max(AccountAction.as_of))
            .where(AccountAction.company_id == company_id, AccountAction.as_of <= as_of)
            .scalar_subquery(),
        ),
    )
    return {
        "contacts": contacts,
        "history": history,
        "planned": planned.sort_values("at") if len(planned) else planned,
        "obligations": obligations,
        "complaints": complaints,
        "health": health,
        "actions": actions,
    }


# --- preliminary talks -------------------------------------------------------------------


def talk_party(session: Session, company: str, contact_email: str | None) -> dict[str, Any] | None:
    """The contact a talk with ``company`` is proposed to (the given email, else the best
    rated contact with an email), with what the proposal needs."""
    from connectors.database.ingest_models import Contact
    from connectors.database.outreach_models import OutreachProfile

    stmt = (
        select(
            Contact.id.label("contact_id"),
            Contact.full_name,
            Contact.email,
            Contact.country,
            Company.id.label("company_id"),
            Company.name.label("company"),
            Company.owner_id,
            OutreachProfile.timezone,
        )
        .join(Company, Company.id == Contact.company_id)
        .outerjoin(OutreachProfile, OutreachProfile.contact_id == Contact.id)
        .where(func.lower(Company.name) == company.lower(), Contact.email.is_not(None))
        .order_by(Contact.band.is_(None), Contact.band, Contact.id)
        .limit(1)
    )
    if contact_email:
        stmt = stmt.where(Contact.email == contact_email.lower())
    row = session.execute(stmt).first()
    return dict(row._mapping) if row else None


def talk_by_key(session: Session, key: str) -> Talk | None:
    return session.scalars(select(Talk).where(Talk.idempotency_key == key)).first()


def add_talk(session: Session, values: dict[str, Any]) -> Talk:
    talk = Talk(**values)
    session.add(talk)
    session.flush()
    return talk


def get_talk(session: Session, talk_id: int) -> Talk | None:
    return session.get(Talk, talk_id, with_for_update=True)


def talks_without_outbox_rows(session: Session) -> list[dict[str, Any]]:
    """Talks whose proposal is not in the outreach outbox yet, with what a row needs."""
    from connectors.database.ingest_models import Contact
    from connectors.database.outreach_models import OutboxItem

    stmt = (
        select(
            Talk.idempotency_key,
            Talk.contact_id,
            Talk.message_id,
            Talk.recipient,
            Talk.timezone,
            Talk.proposed_at,
            Contact.country,
        )
        .join(Contact, Contact.id == Talk.contact_id)
        .outerjoin(OutboxItem, OutboxItem.idempotency_key == Talk.idempotency_key)
        .where(OutboxItem.id.is_(None), Talk.email_outcome.is_(None))
        .order_by(Talk.id)
    )
    return [dict(r._mapping) for r in session.execute(stmt)]


def mirror_talk_outcomes(session: Session) -> int:
    """Set each talk's ``email_outcome`` to its outbox row's status where they differ."""
    from connectors.database.outreach_models import OutboxItem

    status = (
        select(OutboxItem.status)
        .where(OutboxItem.idempotency_key == Talk.idempotency_key)
        .scalar_subquery()
    )
    result = session.execute(
        update(Talk)
        .where(status.is_not(None), or_(Talk.email_outcome.is_(None), Talk.email_outcome != status))
        .values(email_outcome=status, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def talk_rsvps(session: Session) -> pd.DataFrame:
    """RSVPs the inbox stored that quote one of our talk invitations, oldest first."""
    from connectors.database.inbox_models import InboundMessage

    return _read(
        session,
        select(
            InboundMessage.id,
            InboundMessage.rsvp_uid,
            InboundMessage.rsvp_answer,
            InboundMessage.received_at,
        )
        .where(InboundMessage.rsvp_answer.is_not(None), InboundMessage.rsvp_uid.like("talk-%"))
        .order_by(InboundMessage.id),
    )


def talk_party_of(session: Session, contact_id: int) -> dict[str, Any]:
    from connectors.database.ingest_models import Contact

    row = session.execute(
        select(Contact.full_name, Company.name.label("company"))
        .outerjoin(Company, Company.id == Contact.company_id)
        .where(Contact.id == contact_id)
    ).one()
    return dict(row._mapping)
