"""The 0005_ingest migration keeps every identifier a contact was seen with, where it now
belongs: its own email and phone on its row, the others in contact_identifiers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa

from connectors.database.engine import get_engine
from connectors.database.migrate import upgrade
from tests.migrations import before_migration, downgrade_before

SEEN = datetime(2026, 11, 1)
_CONTACTS = sa.table(
    "contacts",
    sa.column("id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("phone", sa.String),
    sa.column("is_free_mail", sa.Boolean),
    sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
)
_IDENTIFIERS = sa.table(
    "contact_identifiers",
    sa.column("contact_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("value", sa.String),
    sa.column("created_at", sa.DateTime),
)
OWN = {("email", "ana@horizonte.com.br"), ("phone", "+5511998765432")}
OTHERS = {("email", "ana.costa@gmail.com"), ("phone", "+5511912345678"), ("tax_id", "1234")}


@pytest.fixture
def before_identifier_migration(database: str) -> Iterator[None]:
    with before_migration("0005_ingest"):
        yield


def _identifiers() -> set[tuple[str, str]]:
    with get_engine().connect() as conn:
        rows = conn.execute(sa.select(_IDENTIFIERS.c.kind, _IDENTIFIERS.c.value)).all()
    return {(k, v) for k, v in rows}


@pytest.mark.usefixtures("before_identifier_migration")
def test_upgrade_leaves_the_row_s_own_identifiers_to_it_and_downgrade_restores_them() -> None:
    with get_engine().begin() as conn:
        conn.execute(
            sa.insert(_CONTACTS),
            {
                "id": 1,
                "email": "ana@horizonte.com.br",
                "phone": "+5511998765432",
                "is_free_mail": False,
                "created_at": SEEN,
                "updated_at": SEEN,
            },
        )
        conn.execute(
            sa.insert(_IDENTIFIERS),
            [
                {"contact_id": 1, "kind": kind, "value": value, "created_at": SEEN}
                for kind, value in OWN | OTHERS
            ],
        )
    upgrade()
    assert _identifiers() == OTHERS

    downgrade_before("0005_ingest")
    assert _identifiers() == OWN | OTHERS
