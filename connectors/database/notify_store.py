"""Claims and records for the team's alarms (complaint escalations, obligation notices).

Both tables carry the same delivery columns (``email_outcome``, ``webhook_outcome``,
``webhook_attempts``, ``last_error``, ``notified_at``), so one protocol serves both: a
claim marks a channel's pending rows ``sending`` in the caller's transaction, the caller
commits before anything goes on the wire (a crash leaves ``sending`` for review, never a
silent resend), and the results are written back by id. PostgreSQL skips rows another
run holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from connectors.database.base import utcnow
from connectors.database.ingest_store import CHUNK

# Channel outcomes that are final: nothing more will be sent for that row.
EMAIL_FINAL = ("sent", "failed_permanent", "unknown", "skipped", "sending")
WEBHOOK_FINAL = ("delivered", "skipped", "sending")


@dataclass(frozen=True)
class AlarmTable:
    """A table of alarms: its model, the select that reads a claimed row's fields (it
    includes ``model.id``), and which rows are alarms at all (``where``)."""

    model: Any
    fields: Callable[[], Select[*tuple[Any, ...]]]
    where: tuple[Any, ...] = ()

    def claim(self, session: Session, channel: str, limit: int) -> list[dict[str, Any]]:
        """Rows still pending on ``channel``, oldest first, marked ``sending``; each dict
        also has ``previous``, the outcome before the claim (a run that gives up releases
        a row back to it)."""
        model = self.model
        col, final = (
            (model.email_outcome, EMAIL_FINAL)
            if channel == "email"
            else (model.webhook_outcome, WEBHOOK_FINAL)
        )
        stmt = (
            self.fields()
            .add_columns(col.label("previous"))
            .where(*self.where, or_(col.is_(None), col.not_in(final)))
            .order_by(model.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=model)
        rows = [dict(r._mapping) for r in session.execute(stmt)]
        ids = [r["id"] for r in rows]
        for i in range(0, len(ids), CHUNK):
            session.execute(
                update(model).where(model.id.in_(ids[i : i + CHUNK])).values({col.key: "sending"})
            )
        return rows

    def record(self, session: Session, channel: str, results: list[dict[str, Any]]) -> None:
        """Each dict: ``id``, ``outcome``, ``error``, ``attempts`` (webhook), ``delivered``."""
        now = utcnow()
        table: Any = self.model.__table__
        for r in results:
            values: dict[str, Any] = {"last_error": r.get("error")}
            if channel == "email":
                values["email_outcome"] = r["outcome"]
            else:
                values["webhook_outcome"] = r["outcome"]
                values["webhook_attempts"] = table.c.webhook_attempts + int(r.get("attempts") or 0)
            if r.get("delivered"):
                values["notified_at"] = func.coalesce(table.c.notified_at, now)
            session.execute(update(table).where(table.c.id == r["id"]).values(values))

    def pending(self, session: Session) -> int:
        """Alarms that some channel still has to deliver."""
        model = self.model
        return int(
            session.scalar(
                select(func.count())
                .select_from(model)
                .where(
                    *self.where,
                    or_(
                        model.email_outcome.is_(None),
                        model.email_outcome.not_in(EMAIL_FINAL),
                        model.webhook_outcome.is_(None),
                        model.webhook_outcome.not_in(WEBHOOK_FINAL),
                    ),
                )
            )
            or 0
        )
