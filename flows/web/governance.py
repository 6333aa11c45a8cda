"""The team over HTTP, as the member whose Bearer token it is (`accountflow team token`).

Refusals map onto statuses: no or unknown token 401, not allowed 403, no such member 404,
a change that would break the team 409, a body that does not validate 422.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from flows.web.contract import error_responses

router = APIRouter(tags=["team"])
_bearer = HTTPBearer(auto_error=False)
T = TypeVar("T")

MemberId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


def member_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing member token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return credentials.credentials


Token = Annotated[str, Depends(member_token)]


def _call(what: Callable[[], T]) -> T:
    from tasks.governance.service import AuthenticationError
    from tasks.governance.team import GovernanceError, NotAllowedError, UnknownMemberError

    try:
        return what()
    except AuthenticationError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    except NotAllowedError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except UnknownMemberError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except GovernanceError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


class Appointment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: MemberId
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    territories: list[Annotated[str, Field(min_length=1, max_length=32)]] = []


class Dismissal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: MemberId


class DeputyChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: MemberId
    deputy: MemberId | None = None


class AbsenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: MemberId
    start: date
    end: date
    reason: str = Field(default="absence", min_length=1, max_length=200)


class ChangeOut(BaseModel):
    change_id: int
    kind: str
    member_id: str
    author: str
    at: datetime
    companies_handed_over: int
    complaints_handed_over: int
    # Every kind of open work moved, with how many (company, complaint, contract, ...).
    handed_over: dict[str, int] = {}


def _change(token: str, kind: str, member_id: str, details: dict[str, Any]) -> ChangeOut:
    from tasks.governance.service import change_team

    done = _call(lambda: change_team(token, kind, member_id, details))
    return ChangeOut(
        change_id=done.change_id,
        kind=done.kind,
        member_id=done.member_id,
        author=done.author,
        at=done.at,
        companies_handed_over=len(done.companies_handed_over),
        complaints_handed_over=len(done.complaints_handed_over),
        handed_over={k: len(v) for k, v in done.handed_over.items()},
    )


_CHANGE = {"response_model": ChangeOut, "responses": error_responses(409)}


@router.post("/team/appoint", status_code=status.HTTP_201_CREATED, **_CHANGE)  # type: ignore[arg-type]
async def appoint(body: Appointment, token: Token) -> ChangeOut:
    """Appoint a manager: the head only."""
    details = body.model_dump(exclude={"member_id"}, exclude_none=True)
    return await run_in_threadpool(_change, token, "appoint", body.member_id, details)


@router.post("/team/dismiss", **_CHANGE)  # type: ignore[arg-type]
async def dismiss(body: Dismissal, token: Token) -> ChangeOut:
    """Dismiss a manager (the head only); their work goes to the deputy or in turn."""
    return await run_in_threadpool(_change, token, "dismiss", body.member_id, {})


@router.post("/team/deputy", **_CHANGE)  # type: ignore[arg-type]
async def set_deputy(body: DeputyChange, token: Token) -> ChangeOut:
    """Set or clear a manager's deputy: the manager or the head."""
    return await run_in_threadpool(
        _change, token, "set_deputy", body.member_id, {"deputy": body.deputy}
    )


@router.post("/team/absence", **_CHANGE)  # type: ignore[arg-type]
async def absence(body: AbsenceIn, token: Token) -> ChangeOut:
    """Record an absence: the manager or the head."""
    from tasks.governance.team import absence_details

    details = _call(lambda: absence_details(body.start, body.end, body.reason))
    return await run_in_threadpool(_change, token, "absence", body.member_id, details)


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _audit(token: str, since: datetime | None, who: str | None) -> list[AuditOut]:
    from connectors.database import governance_store as store
    from connectors.database.engine import session_scope
    from connectors.database.migrate import ensure_schema
    from tasks.governance.service import authenticate, team_in_force
    from tasks.governance.team import NotAllowedError

    ensure_schema()
    with session_scope() as s:
        actor = _call(lambda: authenticate(s, token))
        if actor != team_in_force(s).head:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(NotAllowedError("head only")))
        records = store.audit_records(s, since, who)
    return [
        AuditOut(**{**r, "at": r["at"].replace(tzinfo=UTC)}) for r in records
    ]  # stored naive UTC


@router.get("/audit", response_model=list[AuditOut])
async def audit_trail(
    token: Token,
    since: Annotated[
        str | None, Query(description="From this instant (ISO 8601; UTC when no offset).")
    ] = None,
    who: Annotated[str | None, Query(max_length=64)] = None,
) -> list[AuditOut]:
    """The audit trail (the head only)."""
    instant = None
    if since is not None:
        # Parsed here, not by pydantic: its lax mode takes "0.5" for a Unix timestamp.
        try:
            instant = datetime.fromisoformat(since)
        except ValueError as exc:
            problem = {"type": "datetime_parsing", "loc": ("query", "since"),
                       "msg": "not an ISO 8601 instant", "input": since}  # fmt: skip
            raise RequestValidationError([problem]) from exc
        instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    return await run_in_threadpool(_audit, token, instant, who)


# --- re-verification links (no member token: the signed link is the credential) ---------

_CONFIRM_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>{body}</body></html>"""
_LABELS = {"full_name": "Name", "company": "Company", "job_title": "Job title",
           "email": "Email", "phone": "Phone"}  # fmt: skip


def _confirmation_for(token: str) -> tuple[int, int]:
    """(contact, outbox row) of a link we signed with a secret still accepted, else 404."""
    from config.settings import get_settings
    from connectors.link_secrets import accepted_secrets
    from tasks.outreach.rendering import verify_confirm_token

    for secret in accepted_secrets(get_settings()):
        found = verify_confirm_token(token, secret.encode())
        if found is not None:
            return found.contact_id, found.outbox_id
    raise HTTPException(status.HTTP_404_NOT_FOUND)


@router.get("/confirm/{token}", response_class=HTMLResponse, tags=["privacy"])
def confirm_page(token: str) -> HTMLResponse:
    """The details we hold, and a button confirming them; a GET changes nothing (mail
    scanners follow links)."""
    from connectors.database.migrate import ensure_schema
    from tasks.governance.reverification import ConfirmationRefused, held_details

    contact_id, outbox_id = _confirmation_for(token)
    ensure_schema()
    try:
        details = held_details(contact_id, outbox_id)
    except ConfirmationRefused as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from exc
    rows = "".join(
        f"<tr><th>{_LABELS[k]}</th><td>{html.escape(v)}</td></tr>"
        for k, v in details.items()
        if k in _LABELS
    )
    form = (
        f'<form method="post" action="/confirm/{html.escape(token)}">'
        '<button type="submit">These details are right</button></form>'
        "<p>If something changed, reply to our email and we will correct it.</p>"
    )
    return HTMLResponse(
        _CONFIRM_PAGE.format(title="Your details", body=f"<table>{rows}</table>{form}")
    )


@router.post("/confirm/{token}", response_class=HTMLResponse, tags=["privacy"])
def confirm(token: str) -> HTMLResponse:
    """Record that the person confirmed every detail we hold (a second click: no change)."""
    from connectors.database.migrate import ensure_schema
    from tasks.governance.reverification import ConfirmationRefused, confirm_details

    contact_id, outbox_id = _confirmation_for(token)
    ensure_schema()
    try:
        confirm_details(contact_id, outbox_id)
    except ConfirmationRefused as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND) from exc
    return HTMLResponse(
        _CONFIRM_PAGE.format(title="Thank you", body="<p>Your details are confirmed.</p>")
    )
