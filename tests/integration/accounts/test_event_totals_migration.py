"""The 0009_accounts migration puts each obligation's event totals on its row, and makes the
obligations with invoices or credit notes due for a check under the rules that read them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from connectors.database.accounts_models import Obligation
from connectors.database.engine import get_engine, session_scope
from tests.migrations import before_migration

_COMPANIES = sa.table(
    "companies", sa.column("id", sa.Integer), sa.column("name", sa.String),
    sa.column("name_key", sa.String), sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
)  # fmt: skip
_CONTRACTS = sa.table(
    "contracts", sa.column("id", sa.Integer), sa.column("reference", sa.String),
    sa.column("company_id", sa.Integer), sa.column("owner_id", sa.String),
    sa.column("start_date", sa.Date), sa.column("source", sa.String),
    sa.column("created_at", sa.DateTime), sa.column("updated_at", sa.DateTime),
)  # fmt: skip
_OBLIGATIONS = sa.table(
    "obligations", sa.column("id", sa.Integer), sa.column("contract_id", sa.Integer),
    sa.column("ref", sa.String), sa.column("kind", sa.String), sa.column("quantity", sa.Double),
    sa.column("due_date", sa.Date), sa.column("derived", sa.Boolean),
    sa.column("owner_id", sa.String), sa.column("state", sa.String),
    sa.column("created_at", sa.DateTime),
)  # fmt: skip
_EVENTS = sa.table(
    "obligation_events", sa.column("external_ref", sa.String),
    sa.column("obligation_id", sa.Integer), sa.column("kind", sa.String),
    sa.column("quantity", sa.Double), sa.column("at", sa.DateTime), sa.column("source", sa.String),
    sa.column("created_at", sa.DateTime),
)  # fmt: skip
NOW = datetime(2026, 12, 7, 12)


@pytest.fixture
def before_totals_migration(database: str) -> Iterator[None]:
    with before_migration("0009_accounts"):
        yield


@pytest.mark.usefixtures("before_totals_migration")
def test_upgrade_sums_each_obligations_events_onto_its_row() -> None:
    due = date(2026, 12, 11)
    with get_engine().begin() as conn:
        conn.execute(
            sa.insert(_COMPANIES),
            [{"id": 1, "name": "C", "name_key": "c", "created_at": NOW, "updated_at": NOW}],
        )
        conn.execute(
            sa.insert(_CONTRACTS),
            [{"id": 1, "reference": "CT-1", "company_id": 1, "owner_id": "ana",
              "start_date": due, "source": "t", "created_at": NOW, "updated_at": NOW}],
        )  # fmt: skip
        conn.execute(
            sa.insert(_OBLIGATIONS),
            [
                {"id": i, "contract_id": 1, "ref": ref, "kind": kind, "quantity": qty,
                 "due_date": due, "derived": False, "owner_id": "ana", "state": state,
                 "created_at": NOW}
                for i, ref, kind, qty, state in (
                    (1, "pallets", "delivery", 40.0, "met"),
                    (2, "terms", "payment_terms", None, "on_track"),
                    (3, "report", "report", None, "late"),
                )
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(_EVENTS),
            [
                {"external_ref": ref, "obligation_id": oid, "kind": kind, "quantity": qty,
                 "at": datetime(2026, 12, day, 9), "source": "t", "created_at": NOW}
                for ref, oid, kind, qty, day in (
                    ("e1", 1, "partially_delivered", 25.0, 1),
                    ("e2", 1, "delivered", 15.0, 2),
                    ("e3", 1, "credited", 5.0, 3),
                    ("e4", 2, "invoiced", None, 4),
                )
            ],
        )  # fmt: skip

    from connectors.database.migrate import upgrade

    upgrade()

    with session_scope() as s:
        rows = {o.ref: o for o in s.scalars(select(Obligation))}
        pallets, terms, report = rows["pallets"], rows["terms"], rows["report"]
        assert (pallets.ev_delivered, pallets.ev_credited_qty, pallets.ev_credited) == (40, 5, 1)
        assert pallets.ev_last_at == datetime(2026, 12, 3, 9)
        assert (terms.ev_invoiced, terms.ev_completed) == (1, False)
        # Invoices and credits are judged again under the rules that now read them.
        assert pallets.next_check_at == terms.next_check_at == datetime(1970, 1, 1)
        assert (report.ev_delivered, report.ev_last_at, report.next_check_at) == (0, None, None)
