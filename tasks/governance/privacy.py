"""Data-subject requests (LGPD/GDPR): export everything held on a person, erase it, and
keep the erased person out for good.

Erasure anonymises every row that names the person in one transaction and leaves only
salted keys of their emails and phones on the suppression list: ingestion quarantines a
row carrying one (``erased_subject``) and the outbox claim suppresses it, so the person is
neither re-imported into a cadence nor contacted again. Files under the data dir and
Prefect artifacts that name the person go too (``tasks.governance.traces``). The audit
records that an erasure happened and how much it touched, never what was erased.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from config.settings import get_settings
from connectors.database import governance_store as store
from connectors.database.engine import session_scope
from connectors.database.migrate import ensure_schema
from tasks.governance.service import audit_act
from tasks.governance.traces import scrub_artifacts, scrub_files


class UnknownPersonError(LookupError):
    """Nobody we hold matches the id, email or phone given."""


def erased_rows(s: Session, rows: pd.DataFrame) -> pd.Series:
    """Staged rows whose email or phone belongs to an erased person."""
    mask = pd.Series(False, index=rows.index)
    for column in ("email", "phone"):
        if column in rows:
            values = rows[column].dropna().astype(str)
            erased = store.erased_keys(s, values.str.lower().unique().tolist())
            if erased:
                mask |= rows[column].astype("string").str.lower().isin(list(erased)).fillna(False)
    return mask.astype(bool)


def export_person(person: str) -> dict[str, Any]:
    """Everything we hold on ``person`` (contact id, email or phone), as JSON-ready data."""
    ensure_schema()
    with session_scope() as s:
        contact_id = store.find_person(s, person)
        if contact_id is None:
            raise UnknownPersonError(f"no contact matches {person!r}")
        return {
            "exported_at": datetime.now(UTC).isoformat(),
            **store.person_export(s, contact_id),
        }


def erase_person(person: str, token: str | None = None, artifacts: bool = True) -> dict[str, int]:
    """Erase ``person`` everywhere: the database in one transaction, then the files under
    the data dir and the Prefect artifacts that name them (``tasks.governance.traces``);
    returns the counts per table and per kind of trace.

    A trace that could not be reached (no Prefect API) is counted -1 and audited so; the
    database erasure stands, and the salted suppression keeps the person out meanwhile.
    """
    ensure_schema()
    with session_scope() as s:
        contact_id = store.find_person(s, person)
        if contact_id is None:
            raise UnknownPersonError(f"no contact matches {person!r}")
        traces = store.person_traces(s, contact_id)
        counts = store.erase_person(s, contact_id)
        actor = audit_act(s, token, "privacy.erase", f"contact:{contact_id}", None, counts)
    found = scrub_files(get_settings().data_dir, traces["identities"], traces["outbox_ids"])
    if artifacts:
        try:
            found["artifacts_deleted"] = scrub_artifacts(
                traces["identities"], traces["full_name"], traces["outbox_ids"]
            )
        except Exception:  # the Prefect API is an edge that may be down; said in the audit
            found["artifacts_deleted"] = -1
    with session_scope() as s:
        store.append_audit(s, actor, "privacy.erase.traces", f"contact:{contact_id}", None, found)
    return {**counts, **found}
