"""HTTP endpoints of outreach: RFC 8058 one-click unsubscribe and fax gateway callbacks."""

from __future__ import annotations

import hashlib
import html

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from config.settings import get_settings
from connectors.database import outreach_store as store
from connectors.database.engine import session_scope
from connectors.database.migrate import ensure_schema
from connectors.fax_gateway import SIGNATURE_HEADER, parse_callback, verify_callback
from connectors.link_secrets import accepted_secrets
from flows.web.contract import error_responses
from tasks.outreach.rendering import UnsubscribeRequest, verify_unsubscribe_token

router = APIRouter()

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def _request_for(token: str) -> UnsubscribeRequest:
    """The verified request, or 404 for anything we did not sign or no longer know."""
    request = next(
        (
            found
            for secret in accepted_secrets(get_settings())
            if (found := verify_unsubscribe_token(token, secret.encode())) is not None
        ),
        None,
    )
    if request is None:
        raise HTTPException(status_code=404)
    ensure_schema()
    with session_scope() as s:
        if not store.contact_exists(s, request.contact_id):
            raise HTTPException(status_code=404)
    return request


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str) -> HTMLResponse:
    """A confirmation page; a GET changes nothing (link scanners follow GETs)."""
    _request_for(token)
    form = (
        f'<form method="post" action="/u/{html.escape(token)}">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return HTMLResponse(
        _PAGE.format(
            title="Unsubscribe",
            text="Stop all email and fax from us to this address?",
            form=form,
        )
    )


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(token: str) -> HTMLResponse:
    """RFC 8058 one-click: suppress email and fax of the contact at once, idempotently."""
    request = _request_for(token)
    with session_scope() as s:
        email, fax = store.contact_addresses(s, request.contact_id)
        entries = [
            {"channel": channel, "address": address.lower() if channel == "email" else address,
             "reason": "opt_out", "source": "token", "contact_id": request.contact_id}
            for channel, address in (("email", email), ("fax", fax))
            if address
        ]  # fmt: skip
        store.suppress(s, entries)
    return HTMLResponse(
        _PAGE.format(title="Unsubscribed", text="You will not hear from us again.", form="")
    )


@router.post("/callbacks/fax", responses=error_responses(400))
async def fax_callback(request: Request) -> JSONResponse:
    """Record a fax gateway's final status for the outbox row it names by tag.

    An unsigned or badly signed body is refused before it is parsed. A failure the gateway
    reports after accepting the fax moves the row to retry or failed; the resend will ask
    the gateway by tag first, so a late "success" cannot turn into a second fax.
    """
    body = await request.body()
    if not verify_callback(
        body, request.headers.get(SIGNATURE_HEADER), get_settings().fax.callback_secret
    ):
        raise HTTPException(status_code=403, detail="bad signature")
    try:
        record = parse_callback(body)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    ensure_schema()
    with session_scope() as s:
        outbox_id = int(record.tag) if record.tag and record.tag.isdigit() else None
        if outbox_id is None or store.outbox_row(s, outbox_id) is None:
            outbox_id = store.outbox_id_for_provider(s, record.fax_id)
        if outbox_id is None:
            raise HTTPException(status_code=404, detail="unknown fax")
        store.record_fax_status(s, outbox_id, record, hashlib.sha256(body).hexdigest())
    return JSONResponse({"outbox_id": outbox_id, "status": record.status})
