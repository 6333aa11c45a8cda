"""Reads and writes for governance; the only module that speaks SQL for it.

The dismissal hand-over also moves ownership on ``companies`` and ``complaints``: it is a
governance act on those rows, done in the same transaction as the change that causes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from connectors.database.accounts_models import (
    AccountAction,
    Contract,
    Obligation,
    ObligationNotice,
    Talk,
)
from connectors.database.base import naive_utc, utcnow
from connectors.database.complaints_models import (
    Complaint,
    ComplaintEscalation,
    ComplaintHandover,
)
from connectors.database.governance_models import (
    AuditRecord,
    ContactConfirmation,
    ContactSource,
    GovernanceSetting,
    MemberToken,
    OwnershipHandover,
    TeamChange,
)
from connectors.database.inbox_models import Bounce, InboundMessage, SoftBounce, Suppression
from connectors.database.ingest_models import (
    Company,
    Contact,
    ContactHistory,
    ContactIdentifier,
    SourceFile,
    SourceRow,
)
from connectors.database.outreach_models import DeliveryEvent, OutboxItem, OutreachProfile
from connectors.database.scoring_models import Outcome, ProspectScore

OPEN_STATUSES = ("open", "waiting")
FINAL_OBLIGATION_STATES = ("met", "missed")  # as tasks/accounts/obligations.py


def token_hash(token: str) -> str:
    """SHA-256 of a token: tokens are 256-bit random, so no salt or slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(s: Session, member_id: str, issued_by: str, label: str | None = None) -> str:
    """A new random token for ``member_id``; only its hash is stored, the token is returned
    once to be handed to the member."""
    token = f"af_{secrets.token_urlsafe(32)}"
    s.add(
        MemberToken(
            member_id=member_id, token_hash=token_hash(token), label=label, issued_by=issued_by
        )
    )
    s.flush()
    return token


def member_for_token(s: Session, token: str) -> str | None:
    return s.scalar(
        select(MemberToken.member_id).where(
            MemberToken.token_hash == token_hash(token), MemberToken.revoked_at.is_(None)
        )
    )


def revoke_tokens(s: Session, member_id: str, at: datetime) -> int:
    done = s.execute(
        update(MemberToken)
        .where(MemberToken.member_id == member_id, MemberToken.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return int(getattr(done, "rowcount", 0) or 0)


def tokens_issued(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(MemberToken)) or 0


def team_changes(s: Session) -> list[dict[str, Any]]:
    rows = s.execute(select(TeamChange).order_by(TeamChange.id)).scalars()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "member_id": r.member_id,
            "details": dict(r.details),
            "author": r.author,
            "at": r.at,
        }
        for r in rows
    ]


def team_version(s: Session) -> int:
    """The id of the latest team change (0 for the seed alone): a cache key for the team."""
    return int(s.scalar(select(func.max(TeamChange.id))) or 0)


def record_change(
    s: Session, kind: str, member_id: str, details: Mapping[str, Any], author: str, at: datetime
) -> int:
    change = TeamChange(
        kind=kind, member_id=member_id, details=dict(details), author=author, at=naive_utc(at)
    )
    s.add(change)
    s.flush()
    return change.id


# Open work a team member answers for, by kind: (the model, its owner columns, what
# makes a row open). A dismissal moves every such row; what is history (closed
# complaints, sent notices, past health scores and actions, ended contracts) stays as it
# was. ``cadence``: planned outreach steps have no owner of their own; they are the
# company's owner's, so they move with the company and the history lists each of them.
OPEN_TALKS = ("proposed", "accepted", "tentative", "held")
PENDING_OUTBOX = ("planned", "retry")


def open_work(
    s: Session, member_id: str, as_of: datetime
) -> dict[str, list[tuple[int, int | None]]]:
    """kind -> (item id, its company) of every open thing ``member_id`` owns or is assigned."""
    today = naive_utc(as_of).date()
    m = member_id

    def pairs(query: Any) -> list[tuple[int, int | None]]:
        return [(int(i), None if c is None else int(c)) for i, c in s.execute(query)]

    company_of_obligation = (
        select(Contract.company_id).where(Contract.id == Obligation.contract_id).scalar_subquery()
    )
    return {
        "company": pairs(select(Company.id, Company.id).where(Company.owner_id == m)),
        "complaint": pairs(
            select(Complaint.id, Complaint.company_id).where(
                Complaint.status.in_(OPEN_STATUSES),
                (Complaint.owner_id == m) | (Complaint.assignee_id == m),
            )
        ),
        "contract": pairs(
            select(Contract.id, Contract.company_id).where(
                Contract.owner_id == m,
                Contract.end_date.is_(None) | (Contract.end_date >= today),
            )
        ),
        "obligation": pairs(
            select(Obligation.id, company_of_obligation).where(
                Obligation.owner_id == m,
                Obligation.state.is_(None) | Obligation.state.not_in(FINAL_OBLIGATION_STATES),
            )
        ),
        "notice": pairs(
            select(ObligationNotice.id, Contract.company_id)
            .join(Obligation, Obligation.id == ObligationNotice.obligation_id)
            .join(Contract, Contract.id == Obligation.contract_id)
            .where(
                ObligationNotice.notified_at.is_(None),
                (ObligationNotice.owner_id == m) | (ObligationNotice.recipient_id == m),
            )
        ),
        "escalation": pairs(
            select(ComplaintEscalation.id, Complaint.company_id)
            .join(Complaint, Complaint.id == ComplaintEscalation.complaint_id)
            .where(
                ComplaintEscalation.notified_at.is_(None),
                (ComplaintEscalation.owner_id == m) | (ComplaintEscalation.recipient_id == m),
            )
        ),
        "action": pairs(
            select(AccountAction.id, AccountAction.company_id).where(
                (AccountAction.owner_id == m) | (AccountAction.assignee_id == m),
                AccountAction.due_date >= today,
            )
        ),
        "talk": pairs(
            select(Talk.id, Talk.company_id).where(Talk.owner_id == m, Talk.status.in_(OPEN_TALKS))
        ),
        "cadence": pairs(
            select(OutboxItem.id, Contact.company_id)
            .join(Contact, Contact.id == OutboxItem.contact_id)
            .join(Company, Company.id == Contact.company_id)
            .where(Company.owner_id == m, OutboxItem.status.in_(PENDING_OUTBOX))
        ),
    }


# kind -> (model, owner columns moved to the receiver where they name the dismissed member)
_MOVED_COLUMNS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "company": (Company, ("owner_id",)),
    "complaint": (Complaint, ("owner_id", "assignee_id")),
    "contract": (Contract, ("owner_id",)),
    "obligation": (Obligation, ("owner_id",)),
    "notice": (ObligationNotice, ("owner_id", "recipient_id")),
    "escalation": (ComplaintEscalation, ("owner_id", "recipient_id")),
    "action": (AccountAction, ("owner_id", "assignee_id")),
    "talk": (Talk, ("owner_id",)),
}


def hand_over(
    s: Session,
    change_id: int,
    from_id: str,
    moved: Mapping[str, Mapping[int, str]],
    at: datetime,
) -> None:
    """Move each item to its receiver, with a hand-over row each (and a complaint
    hand-over, so a complaint's own history shows it too). An open complaint's assignee
    moves too, whoever it was: the stand-in answered for the dismissed owner."""
    when = naive_utc(at)
    for kind, items in moved.items():
        if kind not in _MOVED_COLUMNS:
            continue  # cadence: moves with its company
        model, columns = _MOVED_COLUMNS[kind]
        for item, to_id in items.items():
            for column in columns:
                s.execute(
                    update(model)
                    .where(model.id == item, getattr(model, column) == from_id)
                    .values({column: to_id})
                )
            if kind == "complaint":
                s.execute(update(Complaint).where(Complaint.id == item).values(assignee_id=to_id))
    rows = [
        {"change_id": change_id, "item_kind": kind, "item_id": item, "from_id": from_id,
         "to_id": to_id, "at": when}
        for kind, items in moved.items()
        for item, to_id in items.items()
    ]  # fmt: skip
    if rows:
        s.execute(insert(OwnershipHandover), rows)
    complaints = moved.get("complaint", {})
    if complaints:
        s.execute(
            insert(ComplaintHandover),
            [
                {"complaint_id": cid, "owner_id": to_id, "from_id": from_id, "to_id": to_id,
                 "reason": "dismissal", "chain": f"{from_id}>{to_id}", "at": when}
                for cid, to_id in complaints.items()
            ],
        )  # fmt: skip


def handovers(s: Session, change_id: int | None = None) -> list[dict[str, Any]]:
    query = select(OwnershipHandover).order_by(OwnershipHandover.id)
    if change_id is not None:
        query = query.where(OwnershipHandover.change_id == change_id)
    return [
        {"change_id": h.change_id, "item_kind": h.item_kind, "item_id": h.item_id,
         "from_id": h.from_id, "to_id": h.to_id, "at": h.at}
        for h in s.scalars(query)
    ]  # fmt: skip


def complaint_state(s: Session, complaint_id: int) -> dict[str, Any] | None:
    row = s.execute(
        select(Complaint.status, Complaint.owner_id, Complaint.assignee_id).where(
            Complaint.id == complaint_id
        )
    ).first()
    if row is None:
        return None
    return {"status": row.status, "owner_id": row.owner_id, "assignee_id": row.assignee_id}


def append_audit(
    s: Session,
    actor: str,
    action: str,
    target: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    at: datetime | None = None,
) -> None:
    s.add(
        AuditRecord(
            actor=actor,
            action=action,
            target=target[:120],
            before=None if before is None else _jsonable(before),
            after=None if after is None else _jsonable(after),
            at=naive_utc(at) if at is not None else utcnow(),
        )
    )
    s.flush()


def audit_query(since: datetime | None = None, who: str | None = None) -> Any:
    """The audit trail, oldest first, optionally from ``since`` and by ``who``."""
    query = select(
        AuditRecord.id,
        AuditRecord.at,
        AuditRecord.actor,
        AuditRecord.action,
        AuditRecord.target,
        AuditRecord.before,
        AuditRecord.after,
    ).order_by(AuditRecord.id)
    if since is not None:
        query = query.where(AuditRecord.at >= naive_utc(since))
    if who is not None:
        query = query.where(AuditRecord.actor == who)
    return query


def audit_records(
    s: Session, since: datetime | None = None, who: str | None = None
) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in s.execute(audit_query(since, who))]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# --- data-subject requests -----------------------------------------------------------------

SALT_KEY = "privacy:salt"
ERASED_PREFIX = "erased:"


def privacy_salt(s: Session, create: bool = False) -> str | None:
    """The installation's salt for erased identities' hashes (made on the first erasure).

    Kept in the database, beside the hashes, so every worker of a deployment agrees on it.
    """
    salt = s.scalar(select(GovernanceSetting.value).where(GovernanceSetting.key == SALT_KEY))
    if salt is None and create:
        salt = secrets.token_hex(32)
        s.add(GovernanceSetting(key=SALT_KEY, value=salt))
        s.flush()
    return salt


def erased_key(salt: str, value: str) -> str:
    """What the suppression list keeps of an erased email or phone: a salted HMAC."""
    folded = value.strip().lower()
    return ERASED_PREFIX + hmac.new(salt.encode(), folded.encode(), hashlib.sha256).hexdigest()


def erased_keys(s: Session, values: Iterable[str]) -> dict[str, str]:
    """Value -> its erased key, for values whose key is on the suppression list."""
    wanted = {v for v in values if v}
    if not wanted or not s.scalar(
        select(func.count()).select_from(Suppression).where(Suppression.reason == "erased")
    ):
        return {}
    salt = privacy_salt(s)
    if salt is None:
        return {}
    keys = {v: erased_key(salt, v) for v in wanted}
    found = set(
        s.scalars(
            select(Suppression.address).where(
                Suppression.reason == "erased", Suppression.address.in_(set(keys.values()))
            )
        )
    )
    return {v: k for v, k in keys.items() if k in found}


def find_person(s: Session, person: str) -> int | None:
    """A contact id from an id, an email or a phone the contact was seen with."""
    if person.isdigit():
        return int(person) if s.get(Contact, int(person)) is not None else None
    # Emails are stored lower-cased (ingestion and the inbox fold them), so plain equality
    # finds them through the columns' indexes; a phone is matched as given.
    forms = sorted({person.strip(), person.strip().lower()})
    found = s.scalar(
        select(Contact.id).where(Contact.email.in_(forms) | Contact.phone.in_(forms)).limit(1)
    )
    if found is None:
        found = s.scalar(
            select(ContactIdentifier.contact_id)
            .where(
                ContactIdentifier.kind.in_(("email", "phone")), ContactIdentifier.value.in_(forms)
            )
            .limit(1)
        )
    return found


def _rows(s: Session, table: Any, where: Any) -> list[dict[str, Any]]:
    return [
        {k: _jsonable(v) for k, v in r._mapping.items()}
        for r in s.execute(select(table).where(where))
    ]


def person_identities(s: Session, contact_id: int) -> list[str]:
    """Every email, phone and fax we hold for the contact."""
    contact = s.get(Contact, contact_id)
    values = [contact.email, contact.phone] if contact else []
    values += list(
        s.scalars(
            select(ContactIdentifier.value).where(
                ContactIdentifier.contact_id == contact_id,
                ContactIdentifier.kind.in_(("email", "phone")),
            )
        )
    )
    values.append(
        s.scalar(select(OutreachProfile.fax).where(OutreachProfile.contact_id == contact_id))
    )
    return sorted({v for v in values if v})


def person_export(s: Session, contact_id: int) -> dict[str, Any]:
    """Everything held on one person, table by table."""
    identities = person_identities(s, contact_id)
    lowered = sorted({*identities, *(i.lower() for i in identities)})
    tables: dict[str, Any] = {
        "contact": _rows(s, Contact.__table__, Contact.id == contact_id),
        "identifiers": _rows(
            s, ContactIdentifier.__table__, ContactIdentifier.contact_id == contact_id
        ),
        "history": _rows(s, ContactHistory.__table__, ContactHistory.contact_id == contact_id),
        "source_rows": _rows(s, SourceRow.__table__, SourceRow.contact_id == contact_id),
        "messages": _rows(
            s,
            InboundMessage.__table__,
            (InboundMessage.contact_id == contact_id) | InboundMessage.from_address.in_(lowered),
        ),
        "scores": _rows(s, ProspectScore.__table__, ProspectScore.contact_id == contact_id),
        "outreach_profile": _rows(
            s, OutreachProfile.__table__, OutreachProfile.contact_id == contact_id
        ),
        "outreach": _rows(s, OutboxItem.__table__, OutboxItem.contact_id == contact_id),
        "outcomes": _rows(s, Outcome.__table__, Outcome.contact_id == contact_id),
        "suppressions": _rows(
            s,
            Suppression.__table__,
            (Suppression.contact_id == contact_id) | Suppression.address.in_(lowered),
        ),
        "complaints": _rows(s, Complaint.__table__, Complaint.contact_id == contact_id),
        "delivery_events": _rows(
            s,
            DeliveryEvent.__table__,
            DeliveryEvent.outbox_id.in_(
                select(OutboxItem.id).where(OutboxItem.contact_id == contact_id)
            ),
        ),
        "bounces": _rows(
            s,
            Bounce.__table__,
            Bounce.outbox_id.in_(select(OutboxItem.id).where(OutboxItem.contact_id == contact_id))
            | Bounce.recipient.in_(lowered),
        ),
        "talks": _rows(s, Talk.__table__, Talk.contact_id == contact_id),
        "confirmations": _rows(
            s, ContactConfirmation.__table__, ContactConfirmation.contact_id == contact_id
        ),
        "audit": _rows(s, AuditRecord.__table__, AuditRecord.target == f"contact:{contact_id}"),
    }
    return {
        "contact_id": contact_id,
        "identities": identities,
        "lawful_basis_and_source": contact_source(s, contact_id),
        **tables,
    }


def erase_person(s: Session, contact_id: int) -> dict[str, int]:
    """Remove or anonymise the person everywhere, in the caller's transaction, and put the
    salted keys of their identities on the suppression list. Returns counts per table."""
    identities = person_identities(s, contact_id)
    lowered = sorted({*identities, *(i.lower() for i in identities)})
    salt = privacy_salt(s, create=True)
    assert salt is not None
    counts: dict[str, int] = {}

    def run(name: str, statement: Any) -> None:
        counts[name] = int(getattr(s.execute(statement), "rowcount", 0) or 0)

    run("suppressions", delete(Suppression).where(
        (Suppression.contact_id == contact_id) | Suppression.address.in_(lowered)
    ))  # fmt: skip
    run("identifiers", delete(ContactIdentifier).where(ContactIdentifier.contact_id == contact_id))
    run("history", delete(ContactHistory).where(ContactHistory.contact_id == contact_id))
    run("scores", delete(ProspectScore).where(ProspectScore.contact_id == contact_id))
    run("outcomes", delete(Outcome).where(Outcome.contact_id == contact_id))
    run("source_rows", update(SourceRow).where(SourceRow.contact_id == contact_id).values(
        raw={"erased": True}
    ))  # fmt: skip
    run("messages", update(InboundMessage).where(
        (InboundMessage.contact_id == contact_id)
        | InboundMessage.from_address.in_(lowered)
    ).values(from_address=None, from_name=None, subject=None, evidence=None, scores=None,
             malformed_detail=None, suppressed_address=None))  # fmt: skip
    outbox_ids = select(OutboxItem.id).where(OutboxItem.contact_id == contact_id)
    run("delivery_events", update(DeliveryEvent).where(
        DeliveryEvent.outbox_id.in_(outbox_ids)
    ).values(error_message=None))  # fmt: skip
    run("bounces", update(Bounce).where(
        Bounce.outbox_id.in_(outbox_ids) | Bounce.recipient.in_(lowered)
    ).values(recipient="erased", original_message_id=None))  # fmt: skip
    run("soft_bounces", delete(SoftBounce).where(SoftBounce.address.in_(lowered)))
    run("talks", update(Talk).where(Talk.contact_id == contact_id).values(
        recipient="erased", outcome_note=None
    ))  # fmt: skip
    run("outreach", update(OutboxItem).where(OutboxItem.contact_id == contact_id).values(
        recipient="erased", preview_path=None, last_detail=None
    ))  # fmt: skip
    run("outreach_profile", update(OutreachProfile).where(
        OutreachProfile.contact_id == contact_id
    ).values(fax=None, tags=None))  # fmt: skip
    run("complaints", update(Complaint).where(Complaint.contact_id == contact_id).values(
        subject=None, body=None, external_ref=None
    ))  # fmt: skip
    run("confirmations", delete(ContactConfirmation).where(
        ContactConfirmation.contact_id == contact_id
    ))  # fmt: skip
    run("source", update(ContactSource).where(ContactSource.contact_id == contact_id).values(
        message_id=None, updated_at=utcnow()
    ))  # fmt: skip
    run("contact", update(Contact).where(Contact.id == contact_id).values(
        first_name=None, last_name=None, full_name=None, name_key=None, email=None,
        email_domain=None, phone=None, job_title=None, state=None, city=None, tax_id=None,
        notes=None, source_event=None,
    ))  # fmt: skip
    keys = sorted({erased_key(salt, i) for i in identities})
    present = set(s.scalars(select(Suppression.address).where(Suppression.address.in_(keys))))
    keys = [k for k in keys if k not in present]
    if keys:
        s.execute(
            insert(Suppression),
            [
                {"channel": channel, "address": key, "reason": "erased", "source": "erasure"}
                for key in keys
                for channel in ("email", "fax")
            ],
        )
    counts["erased_keys"] = len(keys)
    return counts


def freshness_inputs(s: Session, fields: list[str]) -> tuple[Any, Any]:
    """Contacts (id, owner via company, last seen, the ruled fields) and their changes."""
    import pandas as pd

    columns = [getattr(Contact, f).label(f) for f in fields if hasattr(Contact, f)]
    confirmed = (
        select(
            ContactConfirmation.contact_id,
            func.max(ContactConfirmation.confirmed_at).label("confirmed_at"),
        )
        .group_by(ContactConfirmation.contact_id)
        .subquery()
    )
    contacts = pd.read_sql(
        select(
            Contact.id.label("contact_id"),
            Company.owner_id.label("owner"),
            Contact.last_seen_at,
            confirmed.c.confirmed_at,
            *columns,
        )
        .outerjoin(Company, Company.id == Contact.company_id)
        .outerjoin(confirmed, confirmed.c.contact_id == Contact.id),
        s.connection(),
    )
    history = pd.read_sql(
        select(
            ContactHistory.contact_id,
            ContactHistory.field,
            func.max(ContactHistory.changed_at).label("changed_at"),
        )
        .where(ContactHistory.field.in_(fields))
        .group_by(ContactHistory.contact_id, ContactHistory.field),
        s.connection(),
    )
    return contacts, history


def drop_old_raw(s: Session, cutoff: datetime) -> int:
    """Empty the raw cells of source rows from files ingested before ``cutoff``."""
    old_files = select(SourceFile.id).where(SourceFile.ingested_at < naive_utc(cutoff))
    done = s.execute(
        update(SourceRow)
        .where(SourceRow.file_id.in_(old_files))
        .values(raw={"retention": "dropped"})
    )
    return int(getattr(done, "rowcount", 0) or 0)


# --- lawful basis and source of each contact ---------------------------------------------------


def companies_with_contract(s: Session, company_ids: Iterable[int]) -> set[int]:
    """Those of ``company_ids`` holding a contract with us (any contract on record)."""
    wanted = sorted({int(c) for c in company_ids})
    found: set[int] = set()
    for start in range(0, len(wanted), 10_000):
        chunk = wanted[start : start + 10_000]
        found |= set(s.scalars(select(Contract.company_id).where(Contract.company_id.in_(chunk))))
    return found


def known_sources(s: Session, contact_ids: Iterable[int]) -> Any:
    """contact_id, lawful_basis of those contacts that already have a source."""
    import pandas as pd

    wanted = sorted({int(c) for c in contact_ids})
    rows: list[tuple[int, str]] = []
    for start in range(0, len(wanted), 10_000):
        chunk = wanted[start : start + 10_000]
        rows += [
            (int(cid), basis)
            for cid, basis in s.execute(
                select(ContactSource.contact_id, ContactSource.lawful_basis).where(
                    ContactSource.contact_id.in_(chunk)
                )
            )
        ]
    return pd.DataFrame(rows, columns=["contact_id", "lawful_basis"])


def raise_bases(s: Session, raised: list[dict[str, Any]]) -> None:
    """A later sighting gave these contacts a stronger basis (a consent, a contract)."""
    now = utcnow()
    for r in raised:
        s.execute(
            update(ContactSource)
            .where(ContactSource.contact_id == int(r["contact_id"]))
            .values(lawful_basis=r["lawful_basis"], basis_rule=r["basis_rule"], updated_at=now)
        )


def attach_messages(s: Session, messages: Iterable[Mapping[str, Any]]) -> int:
    """The inbound mail that brought each inbox contact: its Message-ID on the contact's
    source (the first message of a contact whose source is the inbox and has none yet)."""
    first: dict[int, Mapping[str, Any]] = {}
    for m in messages:
        contact = m.get("contact_id")
        if contact is not None and int(contact) not in first:
            first[int(contact)] = m
    done = 0
    for contact, m in first.items():
        result = s.execute(
            update(ContactSource)
            .where(
                ContactSource.contact_id == contact,
                ContactSource.source_kind == "inbox",
                ContactSource.inbound_message_id.is_(None),
            )
            .values(inbound_message_id=m["id"], message_id=m.get("message_id"))
        )
        done += int(getattr(result, "rowcount", 0) or 0)
    return done


def contact_source(s: Session, contact_id: int) -> dict[str, Any] | None:
    row = s.get(ContactSource, contact_id)
    if row is None:
        return None
    return {c.name: _jsonable(getattr(row, c.name)) for c in ContactSource.__table__.columns}


def contact_sources_query() -> Any:
    """Every contact's lawful basis and source, for ``accountflow export sources``."""
    return select(*ContactSource.__table__.columns).order_by(ContactSource.contact_id)


def raise_to_contract(s: Session, basis: str, outranked: Sequence[str]) -> int:
    """Contacts of companies holding a contract, held on a basis ``basis`` outranks: now on
    ``basis`` (a contract signed after the contact was collected)."""
    with_contract = (
        select(Contact.id)
        .join(Contract, Contract.company_id == Contact.company_id)
        .where(Contact.id == ContactSource.contact_id)
        .exists()
    )
    done = s.execute(
        update(ContactSource)
        .where(ContactSource.lawful_basis.in_(list(outranked)), with_contract)
        .values(lawful_basis=basis, basis_rule="contract", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(done, "rowcount", 0) or 0)


# --- re-verification ---------------------------------------------------------------------


def reverification_candidates(
    s: Session, contact_ids: Sequence[int], campaign: str, since: datetime
) -> list[dict[str, Any]]:
    """Those of ``contact_ids`` with an email and no email of ``campaign`` since ``since``:
    who, in which language and zone, at which address."""
    wanted = sorted({int(c) for c in contact_ids})
    asked = select(OutboxItem.contact_id).where(
        OutboxItem.campaign == campaign, OutboxItem.created_at >= naive_utc(since)
    )
    found: list[dict[str, Any]] = []
    for start in range(0, len(wanted), 10_000):
        chunk = wanted[start : start + 10_000]
        query = (
            select(
                Contact.id.label("contact_id"),
                Contact.email,
                Contact.country,
                OutreachProfile.language,
                OutreachProfile.timezone,
            )
            .outerjoin(OutreachProfile, OutreachProfile.contact_id == Contact.id)
            .where(Contact.id.in_(chunk), Contact.email.is_not(None), Contact.id.not_in(asked))
        )
        found += [dict(r._mapping) for r in s.execute(query)]
    return found


def confirmation_target(s: Session, contact_id: int, outbox_id: int, campaign: str) -> Any:
    """The sent re-verification row a link names, if it is that contact's (else None)."""
    return s.execute(
        select(OutboxItem.id, OutboxItem.sent_at, OutboxItem.status).where(
            OutboxItem.id == outbox_id,
            OutboxItem.contact_id == contact_id,
            OutboxItem.campaign == campaign,
        )
    ).first()


def held_details(s: Session, contact_id: int) -> dict[str, str] | None:
    """What a re-verification page shows the person: the details we hold (None once erased)."""
    row = s.execute(
        select(Contact.full_name, Contact.email, Contact.phone, Contact.job_title,
               Company.name.label("company"))
        .outerjoin(Company, Company.id == Contact.company_id)
        .where(Contact.id == contact_id)
    ).first()  # fmt: skip
    if row is None or row.email is None:
        return None
    return {k: v for k, v in row._mapping.items() if v}


def record_confirmation(s: Session, contact_id: int, outbox_id: int, at: datetime) -> bool:
    """The person confirmed their details through ``outbox_id``'s link; False if that link
    was already used (a second click changes nothing)."""
    done = s.scalar(
        select(func.count())
        .select_from(ContactConfirmation)
        .where(ContactConfirmation.outbox_id == outbox_id)
    )
    if done:
        return False
    s.add(
        ContactConfirmation(contact_id=contact_id, outbox_id=outbox_id, confirmed_at=naive_utc(at))
    )
    s.flush()
    return True


def person_traces(s: Session, contact_id: int) -> dict[str, Any]:
    """What outside the database may name the person: their identities and name, their
    outbox rows (the demo sender's files are named by outbox id) and the messages they
    sent (by source, the file name or mailbox:UID)."""
    contact = s.get(Contact, contact_id)
    return {
        "identities": person_identities(s, contact_id),
        "full_name": contact.full_name if contact else None,
        "outbox_ids": sorted(
            int(i)
            for i in s.scalars(select(OutboxItem.id).where(OutboxItem.contact_id == contact_id))
        ),
    }
