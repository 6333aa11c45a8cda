"""A dismissal hands over every kind of open work the manager had (accounts, complaints,
contracts, obligations, pending notices and escalations, next actions, talks, planned
cadence steps), each hand-over in the history, and leaves history as it was; after it no
owner column anywhere in the schema names the dismissed manager on anything open.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text

import connectors.database.models  # noqa: F401  (every table: the check is over the whole schema)
from connectors.database.accounts_models import (
    AccountAction,
    AccountHealth,
    Contract,
    Obligation,
    ObligationNotice,
    Talk,
)
from connectors.database.base import Base
from connectors.database.complaints_models import Complaint, ComplaintEscalation
from connectors.database.engine import session_scope
from connectors.database.governance_models import OwnershipHandover
from connectors.database.ingest_models import Company, Contact
from connectors.database.outreach_models import OutboxItem
from tasks.governance.service import change_team, issue_member_token

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
T = NOW.replace(tzinfo=None)
OWNER_SUFFIXES = ("owner_id", "assignee_id", "recipient_id")

# What "open" means, table by table, written here independently of the hand-over code;
# an owner column a new table brings must be added to one of the two lists.
OPEN_WHERE = {
    ("companies", "owner_id"): "1 = 1",
    ("complaints", "owner_id"): "status IN ('open', 'waiting')",
    ("complaints", "assignee_id"): "status IN ('open', 'waiting')",
    ("contracts", "owner_id"): "end_date IS NULL OR end_date >= '2026-12-07'",
    ("obligations", "owner_id"): "state IS NULL OR state NOT IN ('met', 'missed')",
    ("obligation_notices", "owner_id"): "notified_at IS NULL",
    ("obligation_notices", "recipient_id"): "notified_at IS NULL",
    ("complaint_escalations", "owner_id"): "notified_at IS NULL",
    ("complaint_escalations", "recipient_id"): "notified_at IS NULL",
    ("account_actions", "owner_id"): "due_date >= '2026-12-07'",
    ("account_actions", "assignee_id"): "due_date >= '2026-12-07'",
    ("talks", "owner_id"): "status IN ('proposed', 'accepted', 'tentative', 'held')",
}
HISTORY = {("account_health", "owner_id"), ("complaint_handovers", "owner_id")}


def _owner_columns() -> set[tuple[str, str]]:
    return {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith(OWNER_SUFFIXES)
    }


def test_every_owner_column_in_the_schema_is_classified_open_or_history() -> None:
    assert _owner_columns() == set(OPEN_WHERE) | HISTORY


def _bruno_s_book() -> dict[str, int]:
    """One open item of every kind for bruno, and a closed one where there is history."""
    with session_scope() as s:
        company = Company(name="Frota Sul", name_key="frota sul", owner_id="bruno")
        s.add(company)
        s.flush()
        contact = Contact(email="eva@frotasul.com.br", company_id=company.id)
        s.add(contact)
        s.flush()
        contract = Contract(
            reference="CT-1",
            company_id=company.id,
            owner_id="bruno",
            start_date=date(2026, 1, 1),
            source="test",
        )
        ended = Contract(
            reference="CT-0",
            company_id=company.id,
            owner_id="bruno",
            start_date=date(2024, 1, 1),
            end_date=date(2025, 1, 1),
            source="test",
        )
        s.add_all([contract, ended])
        s.flush()
        obligation = Obligation(
            contract_id=contract.id,
            ref="o1",
            kind="delivery",
            owner_id="bruno",
            due_date=date(2027, 1, 1),
        )
        met = Obligation(
            contract_id=contract.id, ref="o0", kind="delivery", owner_id="bruno", state="met"
        )
        s.add_all([obligation, met])
        s.flush()
        notice = ObligationNotice(
            idempotency_key="n1",
            obligation_id=obligation.id,
            state="due_soon",
            owner_id="bruno",
            recipient_id="bruno",
            delegation="present",
            as_of=T,
        )
        sent = ObligationNotice(
            idempotency_key="n0",
            obligation_id=met.id,
            state="due_soon",
            owner_id="bruno",
            recipient_id="bruno",
            delegation="present",
            as_of=T,
            notified_at=T,
        )
        complaint = Complaint(
            source="api",
            severity="high",
            status="open",
            owner_id="bruno",
            assignee_id="bruno",
            company_id=company.id,
            created_at=T,
        )
        closed = Complaint(
            source="api",
            severity="low",
            status="resolved",
            owner_id="bruno",
            assignee_id="bruno",
            company_id=company.id,
            created_at=T,
        )
        s.add_all([notice, sent, complaint, closed])
        s.flush()
        escalation = ComplaintEscalation(
            idempotency_key="e1",
            complaint_id=complaint.id,
            clock="response",
            level=1,
            kind="warning",
            at_fraction=0.8,
            due_at=T,
            owner_id="bruno",
            recipient_id="bruno",
            as_of=T,
        )
        action = AccountAction(
            company_id=company.id,
            as_of=T,
            rule="r",
            action="call",
            reason="quiet",
            due_date=date(2026, 12, 10),
            owner_id="bruno",
            assignee_id="bruno",
        )
        past = AccountAction(
            company_id=company.id,
            as_of=datetime(2026, 1, 1),
            rule="r",
            action="call",
            reason="quiet",
            due_date=date(2026, 1, 5),
            owner_id="bruno",
        )
        health = AccountHealth(
            company_id=company.id,
            as_of=T,
            score=50,
            band="watch",
            reasons="",
            factors={},
            owner_id="bruno",
        )
        talk = Talk(
            idempotency_key="t1",
            company_id=company.id,
            contact_id=contact.id,
            owner_id="bruno",
            recipient="eva@frotasul.com.br",
            timezone="UTC",
            slots=[],
            duration_minutes=30,
            message_id="<t1@x>",
            status="proposed",
            proposed_at=T,
        )
        step = OutboxItem(
            idempotency_key="k1",
            campaign="c",
            step=2,
            channel="email",
            contact_id=contact.id,
            message_id="<s2@x>",
            language="pt",
            recipient="eva@frotasul.com.br",
            status="planned",
            due_at=T,
        )
        s.add_all([escalation, action, past, health, talk, step])
        s.flush()
        return {
            "company": company.id, "contract": contract.id, "obligation": obligation.id,
            "notice": notice.id, "complaint": complaint.id, "escalation": escalation.id,
            "action": action.id, "talk": talk.id, "cadence": step.id,
            "ended_contract": ended.id, "closed_complaint": closed.id,
        }  # fmt: skip


def test_dismissal_hands_over_every_open_item_and_leaves_nothing_open_to_the_dismissed(
    database: str,
) -> None:
    head = issue_member_token(None, "helena")
    book = _bruno_s_book()
    result = change_team(head, "dismiss", "bruno", as_of=NOW)

    kinds = ("company", "contract", "obligation", "notice", "complaint", "escalation",
             "action", "talk", "cadence")  # fmt: skip
    assert {k: result.handed_over[k] for k in kinds} == {k: {book[k]: "ana"} for k in kinds}
    with session_scope() as s:
        history = set(
            s.execute(
                select(OwnershipHandover.item_kind, OwnershipHandover.item_id,
                       OwnershipHandover.from_id, OwnershipHandover.to_id)
            ).all()
        )  # fmt: skip
        assert history == {(k, book[k], "bruno", "ana") for k in kinds}
        for (table, column), open_where in OPEN_WHERE.items():
            left = s.execute(
                text(f"SELECT count(*) FROM {table} WHERE {column} = 'bruno' AND ({open_where})")
            ).scalar_one()
            assert left == 0, f"{table}.{column} still names bruno on open work"
        # History is left as it was.
        assert s.get(Contract, book["ended_contract"]).owner_id == "bruno"  # type: ignore[union-attr]
        assert s.get(Complaint, book["closed_complaint"]).owner_id == "bruno"  # type: ignore[union-attr]
        assert s.scalar(select(AccountHealth.owner_id)) == "bruno"
        notices = dict(s.execute(select(ObligationNotice.idempotency_key,
                                        ObligationNotice.recipient_id)).all())  # fmt: skip
        assert notices == {"n1": "ana", "n0": "bruno"}


@pytest.mark.parametrize("kind", ["contract", "talk"])
def test_work_whose_company_is_not_the_dismissed_managers_goes_round_robin(
    database: str, kind: str
) -> None:
    """A contract or talk bruno owns on a company that is not his: nobody inherits it
    through the company, so it goes to the receivers in turn (here ana, his deputy)."""
    head = issue_member_token(None, "helena")
    book = _bruno_s_book()
    with session_scope() as s:
        s.execute(text("UPDATE companies SET owner_id = 'clara'"))
    result = change_team(head, "dismiss", "bruno", as_of=NOW)
    assert result.handed_over[kind] == {book[kind]: "ana"}
    assert "cadence" not in result.handed_over or not result.handed_over["cadence"]
