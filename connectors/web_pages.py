"""Fetch public web pages politely and defensively: the edge of the competitor watch.

Politeness: a user agent that names us, robots.txt obeyed, at most N requests per host in
any sliding minute, conditional requests (``If-None-Match``/``If-Modified-Since``) so an
unchanged page costs one 304. Defence: a body is streamed and cut at ``max_bytes``, a page
that trickles is cut at a total deadline, redirects are bounded, and only HTML and PDF are
accepted. Every failure comes back as a ``FetchResult`` with a reason instead of raising, so
one bad page never costs the others. Nothing fetched is executed: bodies are bytes handed
to text extractors.

The per-host limit is a local sliding-window limiter rather than a Prefect rate limit: the
watch is one daily run in one process, so the limiter sees every request to a host; it is
exact (a Prefect limit refills evenly and admits a burst of its full size after an idle
spell); and it costs nothing per request, where a Prefect slot is an API round trip for each
of a run's hundreds of requests. Its clock and sleep are injectable, so tests pin it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

HTML_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPES = ("application/pdf", "application/x-pdf")
RETRY_STATUSES = (429, 500, 502, 503, 504)
CHUNK = 64 * 1024


class FetchOutcome(StrEnum):
    FETCHED = "fetched"  # a body came back (200)
    NOT_MODIFIED = "not_modified"  # 304 to our conditional request
    FAILED = "failed"  # down, slow, looping, huge, wrong type, HTTP error: see ``reason``
    BLOCKED = "blocked"  # robots.txt says we may not


@dataclass(frozen=True)
class FetchResult:
    url: str
    outcome: FetchOutcome
    http_status: int | None = None
    kind: str | None = None  # html | pdf
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    reason: str | None = None
    final_url: str | None = None
    elapsed_seconds: float = 0.0


class PoliteRetry(Retry):
    """urllib3's Retry that takes a per-host limiter slot before each retry goes out.

    urllib3 retries inside the adapter, out of the caller's sight; without this a page that
    answers 503 would cost up to ``retries`` requests the host's limit never counted.
    """

    limiter: HostRateLimiter | None = None
    _origin: str | None = None

    def new(self, **kw: Any) -> Self:
        fresh = super().new(**kw)
        fresh.limiter = self.limiter
        fresh._origin = self._origin
        return fresh

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        fresh = super().increment(method, url, response, error, _pool, _stacktrace)
        if _pool is not None:
            fresh._origin = f"{_pool.scheme}://{_pool.host}:{_pool.port}".lower()
        return fresh

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        super().sleep(response)  # the backoff, or what Retry-After asked for
        if self.limiter is not None and self._origin is not None:
            self.limiter.acquire(self._origin)


def make_session(
    user_agent: str,
    retries: int,
    backoff_factor: float,
    max_redirects: int,
    limiter: HostRateLimiter | None = None,
    pool_size: int = 64,
) -> requests.Session:
    """A session that names us and retries 429/5xx with exponential backoff.

    ``Retry-After`` is honoured (urllib3 does it for 429 and 503), a failing status is
    returned rather than raised once the retries are spent, so the caller records it, and
    each retry takes a slot from ``limiter`` like any other request.
    """
    session = requests.Session()
    retry = PoliteRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        redirect=max_redirects,
        backoff_factor=backoff_factor,
        backoff_max=30,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=True,
    )
    retry.limiter = limiter
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.max_redirects = max_redirects
    session.headers.update(
        {
            "User-Agent": user_agent,
            "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.1",
        }
    )
    return session


def origin(url: str) -> str:
    """``scheme://host:port`` (port always written): what robots.txt and the per-host
    limit apply to."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


class HostRateLimiter:
    """At most ``limit`` acquisitions per host in any ``window`` seconds (thread-safe).

    A sliding window of the last ``limit`` grant times per host: a caller waits until the
    oldest of them leaves the window. Callers for other hosts never wait on this one.
    """

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit, self.window = limit, window
        self._clock, self._sleep = clock, sleep
        self._grants: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, host: str) -> float:
        """Block until ``host`` may be asked again; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                grants = self._grants.setdefault(host, deque())
                while grants and grants[0] <= now - self.window:
                    grants.popleft()
                if len(grants) < self.limit:
                    grants.append(now)
                    return waited
                pause = grants[0] + self.window - now
            self._sleep(pause)
            waited += pause


@dataclass
class _Robots:
    parser: RobotFileParser | None  # None: every path allowed (no robots.txt)
    reason: str | None = None  # set when robots.txt could not be read: nothing is fetched


@dataclass
class PageFetcher:
    """Fetches pages through one session, obeying robots.txt and the per-host limiter."""

    session: requests.Session
    limiter: HostRateLimiter
    user_agent: str
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 30.0
    max_bytes: int = 5_000_000
    requests_made: int = 0
    _count_lock: threading.Lock = field(default_factory=threading.Lock)
    _robots: dict[str, _Robots] = field(default_factory=dict)
    _robots_lock: threading.Lock = field(default_factory=threading.Lock)
    _host_locks: dict[str, threading.Lock] = field(default_factory=dict)

    def _get(self, url: str, headers: dict[str, str] | None = None) -> requests.Response:
        self.limiter.acquire(origin(url))
        with self._count_lock:
            self.requests_made += 1
        return self.session.get(
            url,
            headers=headers,
            stream=True,
            timeout=(self.connect_timeout, self.read_timeout),
            allow_redirects=True,
        )

    def _robots_for(self, url: str) -> _Robots:
        """robots.txt of the page's origin, read once per fetcher (RFC 9309 section 2.3).

        4xx means no rules; 5xx or no answer means we may not crawl (2.3.1.4), so the page
        is recorded as failed and tried again next run.
        """
        key = origin(url)
        with self._robots_lock:
            lock = self._host_locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._robots:
                return self._robots[key]
            robots = self._read_robots(key)
            self._robots[key] = robots
            return robots

    def _read_robots(self, key: str) -> _Robots:
        try:
            with self._get(f"{key}/robots.txt") as response:
                status = response.status_code
                body, too_big = self._read_capped(response, time.monotonic())
        except requests.RequestException as exc:
            return _Robots(None, f"robots.txt unreachable: {_describe(exc)}")
        if status >= 500:
            return _Robots(None, f"robots.txt answered HTTP {status}")
        if status >= 400 or too_big:
            return _Robots(None)
        parser = RobotFileParser()
        parser.parse(body.decode("utf-8", "replace").splitlines())
        return _Robots(parser)

    def _read_capped(self, response: requests.Response, started: float) -> tuple[bytes, bool]:
        """The body, streamed, up to ``max_bytes``; True when more was coming (cut).

        Raises ``TimeoutError`` past the total deadline: a server may send a byte every few
        seconds and never trip the read timeout.
        """
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return b"", True
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                return b"", True
            parts.append(chunk)
            if time.monotonic() - started > self.total_timeout:
                raise TimeoutError(f"slower than {self.total_timeout:g} s in total")
        return b"".join(parts), False

    def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """One page: FETCHED with its body, NOT_MODIFIED, BLOCKED or FAILED with a reason."""
        started = time.monotonic()

        def failed(reason: str, status: int | None = None) -> FetchResult:
            return FetchResult(
                url,
                FetchOutcome.FAILED,
                http_status=status,
                reason=reason,
                elapsed_seconds=round(time.monotonic() - started, 3),
            )

        robots = self._robots_for(url)
        if robots.reason is not None:
            return failed(robots.reason)
        if robots.parser is not None and not robots.parser.can_fetch(self.user_agent, url):
            return FetchResult(url, FetchOutcome.BLOCKED, reason="disallowed by robots.txt")
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            with self._get(url, headers) as response:
                status = response.status_code
                if status == 304:
                    return FetchResult(
                        url,
                        FetchOutcome.NOT_MODIFIED,
                        http_status=304,
                        etag=response.headers.get("ETag", etag),
                        last_modified=response.headers.get("Last-Modified", last_modified),
                        final_url=response.url,
                        elapsed_seconds=round(time.monotonic() - started, 3),
                    )
                if status != 200:
                    return failed(f"HTTP {status}", status)
                content_type = response.headers.get("Content-Type", "")
                body, too_big = self._read_capped(response, started)
                if too_big:
                    return failed(f"larger than {self.max_bytes} bytes", status)
                kind = content_kind(content_type, body)
                if kind is None:
                    shown = content_type.split(";")[0].strip() or "none"
                    return failed(f"not HTML or PDF (Content-Type {shown})", status)
                return FetchResult(
                    url,
                    FetchOutcome.FETCHED,
                    http_status=status,
                    kind=kind,
                    body=body,
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    final_url=response.url,
                    elapsed_seconds=round(time.monotonic() - started, 3),
                )
        except TimeoutError as exc:
            return failed(f"slow: {exc}")
        except requests.RequestException as exc:
            return failed(_describe(exc))


def content_kind(content_type: str, body: bytes) -> str | None:
    """html, pdf or None (not something we read).

    The header decides; a PDF served as octet-stream is recognised by its magic number, but
    nothing is ever taken for HTML by sniffing.
    """
    media = content_type.split(";")[0].strip().lower()
    if media in HTML_TYPES:
        return "html"
    if media in PDF_TYPES or (media in ("", "application/octet-stream") and body[:5] == b"%PDF-"):
        return "pdf"
    return None


def _describe(exc: Exception) -> str:
    """A short, stable reason for a transport failure (what the report and export show)."""
    if isinstance(exc, requests.TooManyRedirects):
        return "redirect loop (too many redirects)"
    if isinstance(exc, requests.exceptions.RetryError):
        return f"gave up after retries: {exc.__class__.__name__}"
    if isinstance(exc, requests.ConnectTimeout):
        return "slow: connect timeout"
    if isinstance(exc, requests.ReadTimeout):
        return "slow: read timeout"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "Read timed out" in text:
            return "slow: read timeout"
        if "redirect" in text.lower():
            return "redirect loop (too many redirects)"
        return "down: connection failed"
    return f"{exc.__class__.__name__}: {str(exc)[:200]}"
