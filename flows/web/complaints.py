"""`POST /complaints`: complaint intake over HTTP, behind a Bearer API token.

The token comes from ``ACCOUNTFLOW_API_TOKEN``; with none configured the endpoint answers
503 rather than accepting anonymous writes. Comparison is constant-time. The body is the
same ``ComplaintIn`` schema the file import uses, so FastAPI's 422 lists every problem.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from config.settings import get_settings
from flows.web.contract import error_responses
from tasks.complaints.intake import ComplaintIn

router = APIRouter()
_bearer = HTTPBearer(auto_error=False)


def require_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = get_settings().api_token
    if expected is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "complaint intake is not configured"
        )
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong API token",
            headers={"WWW-Authenticate": "Bearer"},
        )


class ComplaintAccepted(BaseModel):
    complaint_id: int | None
    duplicate: bool


def _store(body: ComplaintIn) -> ComplaintAccepted:
    from connectors.database.complaints_store import existing_refs
    from connectors.database.engine import session_scope
    from connectors.database.migrate import ensure_schema
    from tasks.complaints.pipeline import store_complaints

    ensure_schema()
    summary = store_complaints([body], "api")
    if summary.created:
        return ComplaintAccepted(complaint_id=summary.complaint_ids[0], duplicate=False)
    with session_scope() as s:
        found = existing_refs(s, [body.external_ref]) if body.external_ref else {}
    return ComplaintAccepted(complaint_id=found.get(body.external_ref or ""), duplicate=True)


@router.post(
    "/complaints",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_token)],
    response_model=ComplaintAccepted,
    responses=error_responses(503),
)
async def create_complaint(body: ComplaintIn) -> ComplaintAccepted:
    """Store one complaint; a repeated ``external_ref`` returns the first one (still 201)."""
    return await run_in_threadpool(_store, body)
