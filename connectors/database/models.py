"""Every capability's tables, for what must see the whole schema: Alembic's environment,
create and drop of all tables, checks over every table. A new ``*_models`` module is
listed here (a test holds every one is)."""

from connectors.database import (
    accounts_models,
    competitors_models,
    complaints_models,
    governance_models,
    inbox_models,
    ingest_models,
    outreach_models,
    scoring_models,
)

__all__ = [
    "accounts_models",
    "competitors_models",
    "complaints_models",
    "governance_models",
    "inbox_models",
    "ingest_models",
    "outreach_models",
    "scoring_models",
]
