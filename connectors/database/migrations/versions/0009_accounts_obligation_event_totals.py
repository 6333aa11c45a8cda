"""accounts: obligations carry their event totals and when their state can next change

Revision ID: 0009_accounts
Revises: 0008_accounts
Create Date: 2026-12-07 21:00:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009_accounts"
down_revision: str | None = "0008_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS: tuple[tuple[str, Any, Any], ...] = (
    ("ev_delivered", sa.Double(), sa.text("0")),
    ("ev_credited_qty", sa.Double(), sa.text("0")),
    ("ev_completed", sa.Boolean(), sa.false()),
    ("ev_sla_missed", sa.Boolean(), sa.false()),
    ("ev_invoiced", sa.Integer(), sa.text("0")),
    ("ev_credited", sa.Integer(), sa.text("0")),
)


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy on SQLite: events and notices point at the rows).
    for name, kind, default in COLUMNS:
        op.add_column("obligations", sa.Column(name, kind, nullable=False, server_default=default))
    op.add_column("obligations", sa.Column("ev_last_at", sa.DateTime(), nullable=True))
    op.add_column("obligations", sa.Column("next_check_at", sa.DateTime(), nullable=True))
    op.create_index(
        op.f("ix_obligations_next_check_at"), "obligations", ["next_check_at"], unique=False
    )
    # The totals of the events already stored (the store keeps them from now on); what has
    # invoices or credits is judged again under the rules that now read them. The first
    # watch after this revision reads every open obligation (it finds no fingerprint).
    # At once: the epoch, as each dialect stores a DateTime.
    postgres = op.get_bind().dialect.name == "postgresql"
    at_once = "TIMESTAMP '1970-01-01 00:00:00'" if postgres else "'1970-01-01 00:00:00.000000'"
    op.execute(
        f"""
        UPDATE obligations SET
            ev_delivered = t.delivered, ev_credited_qty = t.credited_qty,
            ev_completed = t.completed > 0, ev_sla_missed = t.sla_missed > 0,
            ev_invoiced = t.invoiced, ev_credited = t.credited, ev_last_at = t.last_at,
            next_check_at = CASE WHEN t.invoiced + t.credited > 0
                THEN {at_once} END
        FROM (
            SELECT obligation_id AS oid,
                SUM(CASE WHEN kind IN ('delivered', 'partially_delivered')
                    THEN COALESCE(quantity, 0) ELSE 0 END) AS delivered,
                SUM(CASE WHEN kind = 'credited' THEN COALESCE(quantity, 0) ELSE 0 END)
                    AS credited_qty,
                MAX(CASE WHEN kind = 'completed' OR (kind = 'delivered' AND quantity IS NULL)
                    THEN 1 ELSE 0 END) AS completed,
                MAX(CASE WHEN kind = 'sla_missed' THEN 1 ELSE 0 END) AS sla_missed,
                SUM(CASE WHEN kind = 'invoiced' THEN 1 ELSE 0 END) AS invoiced,
                SUM(CASE WHEN kind = 'credited' THEN 1 ELSE 0 END) AS credited,
                MAX(at) AS last_at
            FROM obligation_events GROUP BY obligation_id
        ) AS t
        WHERE obligations.id = t.oid
        """
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_obligations_next_check_at"), table_name="obligations")
    for name in ("next_check_at", "ev_last_at", *(c[0] for c in reversed(COLUMNS))):
        op.drop_column("obligations", name)
