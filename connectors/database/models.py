"""Every capability's tables, so Alembic and create-time metadata see them all."""

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
