"""The HTTP service (`accountflow web`): each capability contributes a FastAPI router."""

from __future__ import annotations

import importlib
import importlib.util

from fastapi import FastAPI

from flows.web.contract import ExactAllowMiddleware, document_errors

# Modules exposing ``router``: outreach (unsubscribe, fax callbacks), complaints (intake),
# accounts (contracts), governance (the team, over an authenticated member's token).
ROUTERS = (
    "flows.web.outreach",
    "flows.web.complaints",
    "flows.web.accounts",
    "flows.web.governance",
)


def create_app() -> FastAPI:
    app = FastAPI(title="accountflow", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for name in ROUTERS:
        if importlib.util.find_spec(name) is not None:
            app.include_router(importlib.import_module(name).router)
    document_errors(app)
    app.add_middleware(ExactAllowMiddleware, fastapi=app)
    return app
