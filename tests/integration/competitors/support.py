"""A small website on loopback whose pages the tests change between runs.

``Site`` serves HTML and PDF pages from a dict (path -> current version) through one
pytest-httpserver handler that honours ``If-None-Match`` and ``If-Modified-Since`` as a
real server does, and logs every request with its time, so the tests can count requests
and check the per-host limit from the server's side.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fpdf import FPDF
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

USER_AGENT = "accountflow-competitor-watch/test (+mailto:ops@example.com)"


def pdf_bytes(*lines: str) -> bytes:
    """A real PDF with one text line per argument (fpdf2, core font)."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def html_page(*paragraphs: str, updated: str = "1 December 2026", menu: str = "Home") -> bytes:
    """A page with a menu, a main part and a dated footer, as real policy pages have."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        "<!DOCTYPE html><html><head><title>Terms</title>"
        "<script>document.write('<p>Injected by script: 99% off</p>')</script></head><body>"
        f'<nav><ul><li><a href="/?utm_source=menu">{menu}</a></li><li>Products</li>'
        "<li>Contact</li></ul></nav>"
        f"<main><h1>Terms and conditions</h1>{body}</main>"
        f"<footer>Last updated {updated}. © 2026 Example</footer></body></html>"
    ).encode()


@dataclass
class Version:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    etag: str | None = None
    last_modified: datetime | None = None


@dataclass
class Site:
    server: HTTPServer
    pages: dict[str, Version] = field(default_factory=dict)
    robots: str | None = None
    robots_status: int = 200
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    log: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _serial: int = 0

    def put(self, path: str, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
        """A new version of ``path``, with a fresh ETag and Last-Modified."""
        self._serial += 1
        self.pages[path] = Version(
            body, content_type, f'"v{self._serial}"', datetime.now(UTC).replace(microsecond=0)
        )

    def url(self, path: str) -> str:
        return self.server.url_for(path)

    def requests_to(self, path: str) -> list[dict[str, str]]:
        return [headers for _, p, headers in self.log if p == path]

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.log.append((time.monotonic(), request.path, dict(request.headers)))
        if request.path == "/robots.txt":
            if self.robots is None:
                return Response("not found", status=404)
            return Response(self.robots, status=self.robots_status, content_type="text/plain")
        if request.path in self.redirects:
            return Response("", status=302, headers={"Location": self.redirects[request.path]})
        version = self.pages.get(request.path)
        if version is None:
            return Response("not found", status=404)
        headers: dict[str, Any] = {}
        if version.etag:
            headers["ETag"] = version.etag
        if version.last_modified:
            headers["Last-Modified"] = format_datetime(version.last_modified, usegmt=True)
        inm = request.headers.get("If-None-Match")
        ims = request.headers.get("If-Modified-Since")
        if inm is not None and inm == version.etag:
            return Response(status=304, headers=headers)
        fresh = (
            version.last_modified and ims and parsedate_to_datetime(ims) >= version.last_modified
        )
        if inm is None and fresh:
            return Response(status=304, headers=headers)
        return Response(
            version.body, status=200, headers=headers, content_type=version.content_type
        )


@pytest.fixture
def site(httpserver: HTTPServer) -> Iterator[Site]:
    served = Site(httpserver)
    httpserver.expect_request(re.compile(".*")).respond_with_handler(served.handle)
    yield served
    httpserver.clear()


def policy_dict(pages: dict[str, list[str]], **fetch: Any) -> dict[str, Any]:
    """A competitors policy: competitor id -> its page URLs; ``fetch`` overrides the bounds."""
    return {
        "fetch": {
            "user_agent": USER_AGENT,
            "requests_per_host_per_minute": 600,
            "connect_timeout_seconds": 2,
            "read_timeout_seconds": 2,
            "total_timeout_seconds": 5,
            "max_bytes": 200_000,
            "max_redirects": 4,
            "retries": 0,
            "backoff_factor": 0,
            "workers": 4,
            **fetch,
        },
        "ours": {
            "payment_terms": "Payment within 30 days of invoice.",
            "warranty": "24-month warranty on all products.",
            "returns": "Returns accepted within 30 days.",
        },
        "competitors": [
            {"id": cid, "name": cid.title(), "pages": [{"url": u} for u in urls]}
            for cid, urls in pages.items()
        ],
    }


def write_policy(folder: Path, policy: dict[str, Any]) -> Path:
    path = folder / "competitors.yaml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    return path
