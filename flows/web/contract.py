"""What the HTTP API promises: every status a route can answer is in its OpenAPI entry, and a
method a path does not support gets 405 with an ``Allow`` naming exactly those it does.

Starlette answers a wrong method with the ``Allow`` of the first route whose path matched,
so a path served by two routes (``GET`` and ``POST /u/{token}``) advertised only one.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send


class ErrorBody(BaseModel):
    """FastAPI's error shape: a message, or for 422 the list of problems."""

    detail: str | list[Any]


_MEANING = {
    400: "The body is not what the endpoint reads.",
    401: "Missing or wrong API token.",
    403: "Authenticated, but not allowed to do this (or a bad signature).",
    404: "No such resource, or a token we did not sign.",
    405: "Method not supported by this path; see the Allow header.",
    409: "Conflicts with the current state.",
    422: "The request does not validate; the detail lists each problem.",
    503: "Not configured on this installation.",
}
# Statuses every route documents: auth, permission, existence and validation can refuse
# any request before the route's own logic runs.
COMMON = (401, 403, 404, 422)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses."""
    return {code: {"model": ErrorBody, "description": _MEANING[code]} for code in codes}


def document_errors(app: FastAPI) -> None:
    """Have the OpenAPI schema list the common error statuses on every operation.

    Done on the generated schema, not on the routes: included routers are wrapped, and the
    schema is the contract schemathesis and clients read.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ErrorBody"] = ErrorBody.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                # A body that is not JSON at all is refused before validation, with 400.
                extra = (400,) if "requestBody" in operation else ()
                for code in (*COMMON, *extra):
                    documented = {
                        "description": _MEANING[code],
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorBody"}
                            }
                        },
                    }
                    if code == 422:
                        # Replaces FastAPI's HTTPValidationError: a route may refuse a body
                        # that validates with its own list of problems (a contract's
                        # file/row/field/reason), and ErrorBody admits both shapes.
                        responses[str(code)] = documented
                    else:
                        responses.setdefault(str(code), documented)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_PARAM = re.compile(r"\\{[^/}]+\\}")


class ExactAllowMiddleware:
    """405 with ``Allow`` listing every method the path supports, as the schema says."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi
        self._paths: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _allowed(self, path: str) -> frozenset[str]:
        if self._paths is None:
            self._paths = [
                (
                    re.compile("^" + _PARAM.sub("[^/]+", re.escape(template)) + "$"),
                    frozenset(m.upper() for m in operations if m.upper() in _METHODS),
                )
                for template, operations in self.fastapi.openapi().get("paths", {}).items()
            ]
        return frozenset().union(*(m for rx, m in self._paths if rx.match(path)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed = self._allowed(scope["path"])
            if allowed and scope["method"] not in allowed:
                body = b'{"detail":"Method Not Allowed"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 405,
                        "headers": [
                            (b"allow", ", ".join(sorted(allowed)).encode()),
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
