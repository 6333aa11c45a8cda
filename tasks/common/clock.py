"""One reading of an instant for every capability: aware, in UTC, now when not given.

Flow parameters, CLI options and database columns all carry instants; a value without a
zone means UTC everywhere (the database stores UTC and the CLI reads naive input as UTC), so
the same value names the same instant in every capability.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime | None = None) -> datetime:
    """``value`` as an aware UTC instant: now when None, naive taken as UTC."""
    if value is None:
        return datetime.now(UTC)
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
