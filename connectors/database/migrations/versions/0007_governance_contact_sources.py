"""governance: each contact's lawful basis and source (contact_sources), backfilled

Revision ID: 0007_governance
Revises: 0006_governance
Create Date: 2026-12-07 20:40:00.000000

The backfill gives every existing contact the source its first source row shows (the fair
file, or the inbox with the first mail that brought the person) on the default basis of
that source (legitimate interest), raised to ``contract`` where the contact's company holds
a contract. A consent column in an old file is not read back (its raw cells may already be
gone to retention): such contacts keep the source's basis until a new sighting says
consent. A contact without any source row is marked ``unknown`` for someone to review.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_governance"
down_revision: str | None = "0006_governance"
branch_labels: str | Sequence[str] | None = None
# The backfill reads contracts.
depends_on: str | Sequence[str] | None = ("0006_accounts",)


def upgrade() -> None:
    op.create_table(
        "contact_sources",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("lawful_basis", sa.String(length=32), nullable=False),
        sa.Column("basis_rule", sa.String(length=120), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source_event", sa.String(length=200), nullable=True),
        sa.Column("source_file", sa.String(length=500), nullable=True),
        sa.Column("source_row_id", sa.Integer(), nullable=True),
        sa.Column("source_row_number", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("inbound_message_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_contact_sources_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contact_sources")),
    )
    op.create_index(op.f("ix_contact_sources_lawful_basis"), "contact_sources", ["lawful_basis"])
    now = "CURRENT_TIMESTAMP"
    op.execute(
        f"""
        INSERT INTO contact_sources (contact_id, lawful_basis, basis_rule, source_kind,
            source_event, source_file, source_row_id, source_row_number, recorded_at,
            updated_at)
        SELECT r.contact_id, 'legitimate_interest',
            CASE WHEN f.event = 'inbox' AND f.name LIKE 'inbox %'
                 THEN 'backfill:source:inbox' ELSE 'backfill:source:exhibition' END,
            CASE WHEN f.event = 'inbox' AND f.name LIKE 'inbox %'
                 THEN 'inbox' ELSE 'exhibition' END,
            f.event, f.name, r.id, r.row_number, {now}, {now}
        FROM source_rows r JOIN source_files f ON f.id = r.file_id
        WHERE r.id IN (
            SELECT MIN(id) FROM source_rows WHERE contact_id IS NOT NULL GROUP BY contact_id
        )
        """
    )
    op.execute(
        f"""
        INSERT INTO contact_sources (contact_id, lawful_basis, basis_rule, source_kind,
            recorded_at, updated_at)
        SELECT c.id, 'unknown', 'backfill:no_source', 'unknown', {now}, {now}
        FROM contacts c
        WHERE NOT EXISTS (SELECT 1 FROM contact_sources s WHERE s.contact_id = c.id)
        """
    )
    op.execute(
        """
        UPDATE contact_sources SET inbound_message_id = (
            SELECT MIN(m.id) FROM inbound_messages m
            WHERE m.contact_id = contact_sources.contact_id
              AND m.label IN ('lead', 'complaint', 'rsvp')
        )
        WHERE source_kind = 'inbox'
        """
    )
    op.execute(
        """
        UPDATE contact_sources SET message_id = (
            SELECT m.message_id FROM inbound_messages m
            WHERE m.id = contact_sources.inbound_message_id
        )
        WHERE inbound_message_id IS NOT NULL
        """
    )
    op.execute(
        """
        UPDATE contact_sources SET lawful_basis = 'contract', basis_rule = 'backfill:contract'
        WHERE lawful_basis <> 'consent' AND contact_id IN (
            SELECT c.id FROM contacts c JOIN contracts k ON k.company_id = c.company_id
        )
        """
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_contact_sources_lawful_basis"), table_name="contact_sources")
    op.drop_table("contact_sources")
