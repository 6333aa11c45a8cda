"""The audit trail as an export kind (`accountflow export audit`)."""

from __future__ import annotations

from typing import Any

from connectors.database.governance_store import audit_query as _audit_query


def audit_query() -> Any:
    """Every audit record, oldest first."""
    return _audit_query()
