"""Reads and writes for governance; the only module that speaks SQL for it.

The dismissal hand-over also moves ownership on ``companies`` and ``complaints``: it is a
governance act on those rows, done in the same transaction as the change that causes it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from connectors.database.base import utcnow
from connectors.database.complaints_models import Complaint, ComplaintHandover
from connectors.database.governance_models import (
    AuditRecord,
    MemberToken,
    OwnershipHandover,
    TeamChange,
)
from connectors.database.ingest_models import Company

OPEN_STATUSES = ("open", "waiting")


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
        kind=kind, member_id=member_id, details=dict(details), author=author, at=_naive(at)
    )
    s.add(change)
    s.flush()
    return change.id


def owned_by(s: Session, member_id: str) -> tuple[list[int], list[tuple[int, int | None]]]:
    """Companies ``member_id`` owns, and open complaints (with their company) they own or
    are assigned."""
    companies = list(s.scalars(select(Company.id).where(Company.owner_id == member_id)))
    complaints = [
        (int(cid), None if company is None else int(company))
        for cid, company in s.execute(
            select(Complaint.id, Complaint.company_id).where(
                Complaint.status.in_(OPEN_STATUSES),
                (Complaint.owner_id == member_id) | (Complaint.assignee_id == member_id),
            )
        )
    ]
    return companies, complaints


def hand_over(
    s: Session,
    change_id: int,
    from_id: str,
    companies: Mapping[int, str],
    complaints: Mapping[int, str],
    at: datetime,
) -> None:
    """Move each company and open complaint to its receiver, with a hand-over row each (and
    a complaint hand-over, so a complaint's own history shows it too)."""
    when = _naive(at)
    for company_id, to_id in companies.items():
        s.execute(update(Company).where(Company.id == company_id).values(owner_id=to_id))
    for complaint_id, to_id in complaints.items():
        s.execute(
            update(Complaint)
            .where(Complaint.id == complaint_id, Complaint.owner_id == from_id)
            .values(owner_id=to_id)
        )
        s.execute(update(Complaint).where(Complaint.id == complaint_id).values(assignee_id=to_id))
    rows = [
        {"change_id": change_id, "item_kind": kind, "item_id": item, "from_id": from_id,
         "to_id": to_id, "at": when}
        for kind, items in (("company", companies), ("complaint", complaints))
        for item, to_id in items.items()
    ]  # fmt: skip
    if rows:
        s.execute(insert(OwnershipHandover), rows)
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
            at=_naive(at) if at is not None else utcnow(),
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
        query = query.where(AuditRecord.at >= _naive(since))
    if who is not None:
        query = query.where(AuditRecord.actor == who)
    return query


def audit_records(
    s: Session, since: datetime | None = None, who: str | None = None
) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in s.execute(audit_query(since, who))]


def _naive(at: datetime) -> datetime:
    from datetime import UTC

    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


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
