"""`accountflow export contracts|obligations`: contracts, and each obligation with the state
the last `watch-obligations` run recorded (``state_as_of`` says when)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectors.database.accounts_models import Contract, Obligation
from connectors.database.ingest_models import Company


def contracts_query() -> Any:
    return (
        select(
            Contract.reference,
            Company.name.label("company"),
            Contract.owner_id,
            Contract.start_date,
            Contract.end_date,
            Contract.renewal_date,
            Contract.notice_days,
            Contract.source,
            Contract.created_at,
            Contract.updated_at,
        )
        .join(Company, Company.id == Contract.company_id)
        .order_by(Contract.id)
    )


def obligations_query() -> Any:
    return (
        select(
            Obligation.id.label("obligation_id"),
            Contract.reference.label("contract"),
            Company.name.label("company"),
            Obligation.ref,
            Obligation.kind,
            Obligation.item,
            Obligation.quantity,
            Obligation.metric,
            Obligation.target,
            Obligation.due_date,
            Obligation.derived,
            Obligation.owner_id,
            Obligation.state,
            Obligation.state_as_of,
        )
        .join(Contract, Contract.id == Obligation.contract_id)
        .join(Company, Company.id == Contract.company_id)
        .order_by(Obligation.id)
    )
