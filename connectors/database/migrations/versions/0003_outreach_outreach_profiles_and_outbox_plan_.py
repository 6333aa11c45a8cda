"""outreach profiles and outbox plan columns

Revision ID: 0003_outreach
Revises: 0002
Create Date: 2026-11-28 09:07:29.898109
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_outreach"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outreach_profiles",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("fax", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_outreach_profiles_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_outreach_profiles")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("step_name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column("sender_address", sa.String(length=320), nullable=True))
        batch_op.create_index(
            "ix_outbox_sender_claimed", ["sender_address", "claimed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_sender_claimed")
        batch_op.drop_column("sender_address")
        batch_op.drop_column("country")
        batch_op.drop_column("timezone")
        batch_op.drop_column("step_name")

    op.drop_table("outreach_profiles")
