"""Governance's export kinds: the audit trail (`accountflow export audit`) and every
contact's lawful basis and source (`accountflow export sources`)."""

from __future__ import annotations

from typing import Any

from connectors.database.governance_store import audit_query as _audit_query
from connectors.database.governance_store import contact_sources_query


def audit_query() -> Any:
    """Every audit record, oldest first."""
    return _audit_query()


def sources_query() -> Any:
    """Every contact's lawful basis, the rule that gave it, and where it was collected."""
    return contact_sources_query()
