"""`POST /contracts`: a contract with its obligations over HTTP, behind the API token.

The body is the same ``ContractIn`` the file import validates, so FastAPI's 422 lists every
problem by field; the token check is the complaints intake's (``require_token``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from flows.web.complaints import require_token
from tasks.accounts.contracts import ContractIn

router = APIRouter()


class ContractAccepted(BaseModel):
    reference: str
    created: bool
    obligations_created: int
    obligations_updated: int


def _store(body: ContractIn) -> ContractAccepted:
    from connectors.database.migrate import ensure_schema
    from tasks.accounts.pipeline import store_contracts

    ensure_schema()
    summary = store_contracts([([1], body)], "api", rows_in=1, rejected=[])
    if summary.rows_rejected:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            [r.model_dump() for r in summary.rejected_rows],
        )
    return ContractAccepted(
        reference=body.reference,
        created=bool(summary.contracts_created),
        obligations_created=summary.obligations_created,
        obligations_updated=summary.obligations_updated,
    )


@router.post(
    "/contracts",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_token)],
    response_model=ContractAccepted,
)
async def create_contract(body: ContractIn) -> ContractAccepted:
    """Create or update one contract; sending the same contract again changes nothing."""
    return await run_in_threadpool(_store, body)
