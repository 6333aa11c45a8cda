"""governance: contact confirmations (a re-verification email's link was followed)

Revision ID: 0008_governance
Revises: 0007_governance
Create Date: 2026-12-07 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_governance"
down_revision: str | None = "0007_governance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_contact_confirmations_contact_id_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_contact_confirmations_outbox_id_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_confirmations")),
    )
    op.create_index(
        op.f("ix_contact_confirmations_contact_id"), "contact_confirmations", ["contact_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_contact_confirmations_contact_id"), table_name="contact_confirmations")
    op.drop_table("contact_confirmations")
