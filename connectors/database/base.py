"""Declarative base shared by every table, with naming conventions Alembic can diff."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, MetaData, cast, func
from sqlalchemy.orm import DeclarativeBase, Session

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Naive UTC: both SQLite and PostgreSQL columns here store UTC without a zone."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(at: datetime) -> datetime:
    """``at`` as the naive UTC the columns store (naive input is taken as UTC already)."""
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


def epoch_seconds(session: Session, column: Any) -> Any:
    """Whole epoch seconds computed by the database: no per-row datetime parsing in Python."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), BigInteger)
