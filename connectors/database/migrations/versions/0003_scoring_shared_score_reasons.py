"""Scoring: each distinct explanation stored once (score_reasons), referenced by id.

A scoring run over a million contacts wrote about 700 characters of reasons per score,
twice (history and the contact's latest score): most of what it wrote. The texts move to
``score_reasons``; ``prospect_scores.reason_id`` and ``contacts.score_reason_id`` point at
them. Also drops ``ix_prospect_scores_contact_id``: the unique (contact_id, as_of,
scorecard_version) key already serves lookups by contact.

Revision ID: 0003_scoring
Revises: 0002
Create Date: 2026-11-28 11:50:00
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_scoring"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _digest(codes: str, reasons: str, skipped: str | None) -> str:
    # Same key as connectors.database.scoring_store.reason_digest (kept inline: a
    # migration must not change when application code does).
    return hashlib.sha256("\x1f".join((codes, reasons, skipped or "")).encode()).hexdigest()


def upgrade() -> None:
    op.create_table(
        "score_reasons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("reason_codes", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("skipped_codes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_score_reasons")),
        sa.UniqueConstraint("digest", name=op.f("uq_score_reasons_digest")),
    )
    conn = op.get_bind()
    distinct = conn.execute(
        sa.text("SELECT DISTINCT reason_codes, reasons, skipped_codes FROM prospect_scores")
    ).all()
    if distinct:
        conn.execute(
            sa.text(
                "INSERT INTO score_reasons (digest, reason_codes, reasons, skipped_codes) "
                "VALUES (:d, :c, :r, :s)"
            ),
            [{"d": _digest(c, r, s), "c": c, "r": r, "s": s} for c, r, s in distinct],
        )

    with op.batch_alter_table("prospect_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_id", sa.Integer(), nullable=True))
    # A temporary index on the short codes keeps the backfill near-linear.
    op.create_index("tmp_score_reasons_codes", "score_reasons", ["reason_codes"])
    op.execute(
        "UPDATE prospect_scores SET reason_id = (SELECT r.id FROM score_reasons r "
        "WHERE r.reason_codes = prospect_scores.reason_codes "
        "AND r.reasons = prospect_scores.reasons "
        "AND COALESCE(r.skipped_codes, '') = COALESCE(prospect_scores.skipped_codes, ''))"
    )
    op.drop_index("tmp_score_reasons_codes", table_name="score_reasons")
    with op.batch_alter_table("prospect_scores", schema=None) as batch_op:
        batch_op.alter_column("reason_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_prospect_scores_reason_id_score_reasons"),
            "score_reasons",
            ["reason_id"],
            ["id"],
        )
        batch_op.drop_index(batch_op.f("ix_prospect_scores_contact_id"))
        batch_op.drop_column("reason_codes")
        batch_op.drop_column("reasons")
        batch_op.drop_column("skipped_codes")

    _add_contacts_reason_id()
    op.execute(
        "UPDATE contacts SET score_reason_id = (SELECT p.reason_id FROM prospect_scores p "
        "WHERE p.contact_id = contacts.id AND p.as_of = contacts.scored_at "
        "AND p.scorecard_version = contacts.scorecard_version) "
        "WHERE scored_at IS NOT NULL"
    )
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): recreating ``contacts`` in batch
    # mode would drop a table that half the schema references.
    op.execute("ALTER TABLE contacts DROP COLUMN score_reasons")


def _add_contacts_reason_id() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with a REFERENCES clause in place; a named constraint
        # would need the table rebuilt (see above).
        op.execute(
            "ALTER TABLE contacts ADD COLUMN score_reason_id INTEGER "
            "CONSTRAINT fk_contacts_score_reason_id_score_reasons REFERENCES score_reasons (id)"
        )
        return
    op.add_column("contacts", sa.Column("score_reason_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_contacts_score_reason_id_score_reasons"),
        "contacts",
        "score_reasons",
        ["score_reason_id"],
        ["id"],
    )


def downgrade() -> None:
    op.execute("ALTER TABLE contacts ADD COLUMN score_reasons TEXT")
    op.execute(
        "UPDATE contacts SET score_reasons = (SELECT r.reasons FROM score_reasons r "
        "WHERE r.id = contacts.score_reason_id)"
    )
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(
            op.f("fk_contacts_score_reason_id_score_reasons"), "contacts", type_="foreignkey"
        )
    op.execute("ALTER TABLE contacts DROP COLUMN score_reason_id")

    with op.batch_alter_table("prospect_scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason_codes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("reasons", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("skipped_codes", sa.Text(), nullable=True))
    for column in ("reason_codes", "reasons", "skipped_codes"):
        op.execute(
            f"UPDATE prospect_scores SET {column} = (SELECT r.{column} FROM score_reasons r "
            "WHERE r.id = prospect_scores.reason_id)"
        )
    with op.batch_alter_table("prospect_scores", schema=None) as batch_op:
        batch_op.alter_column("reason_codes", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("reasons", existing_type=sa.Text(), nullable=False)
        batch_op.drop_constraint(
            batch_op.f("fk_prospect_scores_reason_id_score_reasons"), type_="foreignkey"
        )
        batch_op.drop_column("reason_id")
        batch_op.create_index(
            batch_op.f("ix_prospect_scores_contact_id"), ["contact_id"], unique=False
        )
    op.drop_table("score_reasons")
