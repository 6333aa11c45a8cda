"""Notification webhooks (Slack/Teams-style JSON POST), retried until delivered or hopeless.

Incoming-webhook URLs carry their secret in the path (``/services/T0/B0/XXXX``), so the URL
is a ``SecretStr`` and only ``scheme://host`` ever reaches a log line, error or result.
Hosts must be on the allow-list from settings: a mistyped or injected URL must not turn
escalations (which name clients and complaints) into a leak to an arbitrary server.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from config.settings import Settings

log = logging.getLogger(__name__)

WebhookOutcome = Literal["delivered", "rejected", "gave_up"]


class WebhookConfigError(ValueError):
    """The webhook URL is missing, malformed or points at a host that is not allowed."""


@dataclass(frozen=True)
class WebhookResult:
    """What happened to one notification; safe to log and to store."""

    outcome: WebhookOutcome
    attempts: int
    status: int | None  # last HTTP status, None when no response came back
    error: str | None  # last failure, without the URL's secret path
    target: str  # scheme://host[:port] only

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(
        host == a.lower() or (a.startswith(".") and host.endswith(a.lower())) for a in allowed
    )


class WebhookSender:
    """Posts JSON to one webhook URL through a caller-provided ``requests.Session``.

    Retries (exponential backoff with full jitter, capped) on connection errors, timeouts,
    5xx and 429 (honouring a numeric ``Retry-After`` within the cap); any other 4xx, and any
    redirect, is a rejection that retrying cannot fix, so it returns at once.
    """

    def __init__(
        self,
        session: requests.Session,
        url: SecretStr,
        allowed_hosts: list[str],
        *,
        timeout_seconds: float = 10.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        raw = url.get_secret_value()
        parts = urlsplit(raw)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise WebhookConfigError(
                f"webhook URL must be http(s)://host/...; got scheme {parts.scheme!r}"
            )
        if not _host_allowed(parts.hostname, allowed_hosts):
            raise WebhookConfigError(
                f"webhook host {parts.hostname!r} is not in webhook_allowed_hosts "
                f"({', '.join(allowed_hosts) or 'empty'}); add it there if it is legitimate"
            )
        if max_attempts < 1:
            raise WebhookConfigError("max_attempts must be at least 1")
        self._session = session
        self._url = url
        self.target = _redacted(raw)
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._sleep = sleep
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        session: requests.Session,
        *,
        timeout_seconds: float = 10.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
    ) -> WebhookSender:
        if settings.webhook_url is None:
            raise WebhookConfigError("ACCOUNTFLOW_WEBHOOK_URL is not set")
        return cls(
            session,
            settings.webhook_url,
            settings.webhook_allowed_hosts,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            backoff_seconds=backoff_seconds,
        )

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        cap = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), self._max_backoff)
        return self._rng.uniform(0, cap)

    def send(self, payload: Mapping[str, object]) -> WebhookResult:
        status: int | None = None
        error: str | None = None
        for attempt in range(1, self._max_attempts + 1):
            retry_after: str | None = None
            try:
                # No redirects: following one would post to a host the allow-list never saw.
                response = self._session.post(
                    self._url.get_secret_value(),
                    json=payload,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.Timeout:
                status, error = None, f"timed out after {self._timeout:g}s"
            except requests.ConnectionError as exc:
                # requests puts the full URL in its messages; keep only the exception type.
                status, error = None, f"connection failed ({type(exc).__name__})"
            except requests.RequestException as exc:
                error = f"request failed ({type(exc).__name__})"
                log.warning("webhook %s: %s", self.target, error)
                return WebhookResult("rejected", attempt, None, error, self.target)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    log.info("webhook %s delivered after %d attempt(s)", self.target, attempt)
                    return WebhookResult("delivered", attempt, status, None, self.target)
                error = f"HTTP {status}"
                if status < 500 and status != 429:
                    log.warning("webhook %s rejected the notification: %s", self.target, error)
                    return WebhookResult("rejected", attempt, status, error, self.target)
                retry_after = response.headers.get("Retry-After")
            if attempt < self._max_attempts:
                delay = self._delay(attempt, retry_after)
                log.info(
                    "webhook %s attempt %d failed (%s); retrying in %.2fs",
                    self.target,
                    attempt,
                    error,
                    delay,
                )
                self._sleep(delay)
        log.warning("webhook %s gave up after %d attempts: %s", self.target, attempt, error)
        return WebhookResult("gave_up", self._max_attempts, status, error, self.target)
