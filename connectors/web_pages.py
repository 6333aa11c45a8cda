"""Fetch public web pages politely and defensively: the edge of the competitor watch.

Politeness: a user agent that names us, robots.txt obeyed, at most N requests per host in
any sliding minute, conditional requests (``If-None-Match``/``If-Modified-Since``) so an
unchanged page costs one 304. Defence: a body is streamed and cut at ``max_bytes``, a page
that trickles is cut at a total deadline, redirects are followed by hand (bounded, loops
caught, each hop under its own host's robots.txt and limit), and only HTML and PDF are
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

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

HTML_TYPES = ("text/html", "application/xhtml+xml")
PDF_TYPES = ("application/pdf", "application/x-pdf")
RETRY_STATUSES = (429, 500, 502, 503, 504)
RETRY_AFTER_CAP = 30.0  # seconds
ROBOTS_REDIRECTS = 5
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

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        """``Retry-After``, capped: a page asking for an hour must not hold a worker that long
        (it fails for this run and is tried again on the next)."""
        value = super().get_retry_after(response)
        return None if value is None else min(value, RETRY_AFTER_CAP)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        if self.limiter is not None and self._origin is not None:
            self.limiter.release(self._origin)  # the failed attempt has had its answer
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
    """At most ``limit`` requests per host in any ``window`` seconds, at the server (thread-safe).

    A request holds its place from the moment it is granted until its response arrives
    (``release``), and then counts from that arrival: a request granted later waits until
    ``window`` seconds after the arrival of the ``limit``-th latest. Counting from the grant
    instead would let a request delayed in flight (a busy client, a slow network) land less
    than ``window`` after a later one, and a host see ``limit + 1`` in a window. Callers for
    other hosts never wait on this one.
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
        # host -> [counted-from time (inf while in flight), thread that holds it]
        self._slots: dict[str, list[list[float]]] = {}
        self._lock = threading.Lock()
        self.granted = 0

    def acquire(self, host: str) -> float:
        """Block until ``host`` may be asked again; returns the seconds waited."""
        waited = 0.0
        me = float(threading.get_ident())
        while True:
            with self._lock:
                now = self._clock()
                slots = [s for s in self._slots.get(host, []) if s[0] > now - self.window]
                self._slots[host] = slots
                if len(slots) < self.limit:
                    slots.append([math.inf, me])
                    self.granted += 1
                    return waited
                oldest = min(s[0] for s in slots)
                # Every place is in flight: look again shortly (a response frees one).
                pause = oldest + self.window - now if oldest != math.inf else 0.05
            self._sleep(pause)
            waited += pause

    def release(self, host: str) -> None:
        """The calling thread's requests to ``host`` got their answers: count them from now."""
        me = float(threading.get_ident())
        with self._lock:
            now = self._clock()
            for slot in self._slots.get(host, []):
                if slot[0] == math.inf and slot[1] == me:
                    slot[0] = now


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
    max_redirects: int = 5
    requests_made: int = 0
    _count_lock: threading.Lock = field(default_factory=threading.Lock)
    _robots: dict[str, _Robots] = field(default_factory=dict)
    _robots_lock: threading.Lock = field(default_factory=threading.Lock)
    _host_locks: dict[str, threading.Lock] = field(default_factory=dict)

    def _get(
        self, url: str, headers: dict[str, str] | None = None
    ) -> tuple[requests.Response, float]:
        """One request (and urllib3's retries of it) under the host's limit, and when it
        was sent: the total deadline starts there, not while waiting for a slot."""
        host = origin(url)
        self.limiter.acquire(host)
        with self._count_lock:
            self.requests_made += 1
        sent_at = time.monotonic()
        try:
            response = self.session.get(
                url,
                headers=headers,
                stream=True,
                timeout=(self.connect_timeout, self.read_timeout),
                allow_redirects=False,
            )
        finally:
            self.limiter.release(host)
        return response, sent_at

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
        """Read and parse robots.txt, following up to five redirects (RFC 9309 2.3.1.2)."""
        url = f"{key}/robots.txt"
        try:
            for _ in range(ROBOTS_REDIRECTS + 1):
                response, sent_at = self._get(url)
                with response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers["Location"])
                        continue
                    status = response.status_code
                    body, too_big = self._read_capped(response, sent_at)
                    break
            else:
                return _Robots(None)  # too many redirects: unavailable, so no rules
        except (requests.RequestException, TimeoutError) as exc:
            reason = _describe(exc) if isinstance(exc, requests.RequestException) else "slow"
            return _Robots(None, f"robots.txt unreachable: {reason}")
        if status >= 500:
            return _Robots(None, f"robots.txt answered HTTP {status}")
        if status >= 400 or too_big:
            return _Robots(None)
        parser = RobotFileParser()
        parser.parse(body.decode("utf-8", "replace").splitlines())
        return _Robots(parser)

    def _read_capped(self, response: requests.Response, sent_at: float) -> tuple[bytes, bool]:
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
            if time.monotonic() - sent_at > self.total_timeout:
                raise TimeoutError(f"slower than {self.total_timeout:g} s in total")
        return b"".join(parts), False

    def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """One page: FETCHED with its body, NOT_MODIFIED, BLOCKED or FAILED with a reason."""
        started = time.monotonic()

        def failed(reason: str, status: int | None = None) -> FetchResult:
            """A failure of ``url`` (the page as configured, wherever it redirected)."""
            return FetchResult(
                url,
                FetchOutcome.FAILED,
                http_status=status,
                reason=reason,
                elapsed_seconds=round(time.monotonic() - started, 3),
            )

        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current, visited = url, [url]
        try:
            while True:
                # Every hop is a request like any other: robots.txt of its own host, a
                # slot from its own host's limit.
                robots = self._robots_for(current)
                if robots.reason is not None:
                    return failed(robots.reason)
                if robots.parser is not None and not robots.parser.can_fetch(
                    self.user_agent, current
                ):
                    return FetchResult(url, FetchOutcome.BLOCKED, reason="disallowed by robots.txt")
                response, sent_at = self._get(current, headers)
                with response:
                    if response.is_redirect:
                        current = urljoin(current, response.headers["Location"])
                        if current in visited:
                            return failed("redirect loop", response.status_code)
                        if len(visited) > self.max_redirects:
                            return failed(f"more than {self.max_redirects} redirects")
                        visited.append(current)
                        continue
                    return self._result(url, response, sent_at, etag, last_modified, failed)
        except TimeoutError as exc:
            return failed(f"slow: {exc}")
        except requests.RequestException as exc:
            return failed(_describe(exc))

    def _result(
        self,
        url: str,
        response: requests.Response,
        sent_at: float,
        etag: str | None,
        last_modified: str | None,
        failed: Callable[[str, int | None], FetchResult],
    ) -> FetchResult:
        status = response.status_code
        if status == 304:
            return FetchResult(
                url,
                FetchOutcome.NOT_MODIFIED,
                http_status=304,
                etag=response.headers.get("ETag", etag),
                last_modified=response.headers.get("Last-Modified", last_modified),
                final_url=response.url,
                elapsed_seconds=round(time.monotonic() - sent_at, 3),
            )
        if status != 200:
            return failed(f"HTTP {status}", status)
        content_type = response.headers.get("Content-Type", "")
        body, too_big = self._read_capped(response, sent_at)
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
            elapsed_seconds=round(time.monotonic() - sent_at, 3),
        )


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
