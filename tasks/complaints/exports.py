"""`accountflow export complaints`: each complaint with its SLA state and due times.

The SLA columns are the ones the last `escalate-complaints` run cached (``sla_as_of`` says
when), so the export is a plain read and never disagrees with what was escalated.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connectors.database.complaints_models import Complaint
from connectors.database.ingest_models import Company


def complaints_query() -> Any:
    return (
        select(
            Complaint.id.label("complaint_id"),
            Complaint.source,
            Complaint.external_ref,
            Complaint.status,
            Complaint.severity,
            Complaint.tier,
            Complaint.category,
            Complaint.root_cause,
            Complaint.reference,
            Complaint.contact_id,
            Company.name.label("company"),
            Complaint.owner_id,
            Complaint.assignee_id,
            Complaint.created_at,
            Complaint.closed_at,
            Complaint.sla_state,
            Complaint.response_state,
            Complaint.response_due_at,
            Complaint.resolution_state,
            Complaint.resolution_due_at,
            Complaint.sla_as_of,
            Complaint.subject,
        )
        .outerjoin(Company, Company.id == Complaint.company_id)
        .order_by(Complaint.id)
    )
