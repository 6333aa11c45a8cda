"""Contacts: a contact's own email and phone stay on its row only, indexed there.

``contact_identifiers`` held every email and phone a contact was seen with, its own
included, so nearly every contact wrote two identifier rows that repeated its own
columns. Now it holds the others (earlier phones, further addresses) and personal tax
ids; lookups read both. The repeated rows are deleted; the downgrade writes them back.

Revision ID: 0005_ingest
Revises: 0004_ingest
Create Date: 2026-11-29 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_ingest"
down_revision: str | None = "0004_ingest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN = ("email", "phone")  # kind = the contacts column holding the contact's own value


def upgrade() -> None:
    for kind in OWN:
        op.execute(
            f"DELETE FROM contact_identifiers WHERE kind = '{kind}' AND EXISTS ("
            f"SELECT 1 FROM contacts WHERE contacts.id = contact_identifiers.contact_id "
            f"AND contacts.{kind} = contact_identifiers.value)"
        )
        where = sa.text(f"{kind} IS NOT NULL")
        op.create_index(
            f"ix_contacts_{kind}", "contacts", [kind], sqlite_where=where, postgresql_where=where
        )


def downgrade() -> None:
    for kind in OWN:
        op.drop_index(f"ix_contacts_{kind}", table_name="contacts")
        op.execute(
            f"INSERT INTO contact_identifiers (contact_id, kind, value, created_at) "
            f"SELECT id, '{kind}', {kind}, created_at FROM contacts "
            f"WHERE {kind} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM contact_identifiers i "
            f"WHERE i.contact_id = contacts.id AND i.kind = '{kind}' AND i.value = contacts.{kind})"
        )
