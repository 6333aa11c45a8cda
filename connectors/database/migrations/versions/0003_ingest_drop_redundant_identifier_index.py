"""Contact identifiers: drop the (kind, value) index the unique constraint already provides.

The unique constraint on (kind, value, contact_id) is an index whose leading columns serve
every (kind, value) lookup; the second index only cost each ingested identifier a write.

Revision ID: 0003_ingest
Revises: 0002
Create Date: 2026-11-28 11:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_ingest"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_identifiers", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_identifiers_value")


def downgrade() -> None:
    with op.batch_alter_table("contact_identifiers", schema=None) as batch_op:
        batch_op.create_index("ix_contact_identifiers_value", ["kind", "value"], unique=False)
