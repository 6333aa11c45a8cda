"""Company-registry lookups over HTTP: legal status, founding date and size per tax id.

The registry is someone else's service with its own schema, so which response fields we
read is configuration (``registry`` in config/scoring.yaml: dotted JSON paths). Every
failure comes back as a typed :class:`RegistryUnavailable` with a reason instead of an
exception: scoring must carry on without the registry factors and say why, not stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

import pandas as pd
import requests

from config.scoring_policy import RegistryMapping

UnavailableReason = Literal[
    "unknown_tax_id", "malformed_response", "timeout", "server_error", "connection_error"
]


@dataclass(frozen=True)
class RegistryRecord:
    """What the registry says about one company; fields it did not give are None."""

    tax_id: str
    legal_status: str | None
    founded: date | None
    size: str | None
    fetched_at: datetime


@dataclass(frozen=True)
class RegistryUnavailable:
    """No usable answer for this tax id, and why (shown in the score's reasons)."""

    tax_id: str
    reason: UnavailableReason
    detail: str


RegistryResult = RegistryRecord | RegistryUnavailable


class RegistryCache(Protocol):
    """Registry answers by tax id; the client decides from ``fetched_at`` if one is stale."""

    def get(self, tax_id: str) -> RegistryRecord | None: ...

    def put(self, record: RegistryRecord) -> None: ...


class InMemoryRegistryCache:
    """Process-local cache for the demo and for tests; production keeps these in a table."""

    def __init__(self) -> None:
        self._records: dict[str, RegistryRecord] = {}

    def get(self, tax_id: str) -> RegistryRecord | None:
        return self._records.get(tax_id)

    def put(self, record: RegistryRecord) -> None:
        self._records[record.tax_id] = record


class _Malformed(ValueError):
    pass


def json_path(document: Any, path: str) -> Any:
    """Follow ``a.b.0.c`` through dicts and lists; None when any step is missing."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    return node


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    try:
        return datetime.fromisoformat(str(value)).date()
    except ValueError:
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError as exc:
            raise _Malformed(f"founding date {value!r} is not ISO 8601") from exc


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


class CompanyRegistryClient:
    """Looks tax ids up in the registry, with retries, backoff and a refresh-aged cache.

    Retries cover what a second try can fix (timeouts, connection errors, 5xx); a 404 is
    an answer ("no such company") and is not retried. ``sleep`` and ``clock`` are
    parameters so tests run fast and deterministic.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        mapping: RegistryMapping,
        *,
        timeout_seconds: float = 5.0,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        cache: RegistryCache | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.mapping = mapping
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.cache = cache
        self.clock = clock
        self.sleep = sleep
        self.requests_made = 0

    def _fresh(self, record: RegistryRecord) -> bool:
        age = self.clock() - record.fetched_at
        return age <= timedelta(days=self.mapping.refresh_age_days)

    def lookup(self, tax_id: str) -> RegistryResult:
        """The registry's record for ``tax_id`` (digits only), from cache when fresh."""
        if self.cache is not None:
            cached = self.cache.get(tax_id)
            if cached is not None and self._fresh(cached):
                return cached
        result = self._fetch(tax_id)
        if self.cache is not None and isinstance(result, RegistryRecord):
            self.cache.put(result)
        return result

    def lookup_many(self, tax_ids: Iterable[str]) -> list[RegistryResult]:
        """One result per distinct tax id, in first-seen order."""
        return [self.lookup(t) for t in dict.fromkeys(tax_ids)]

    def _fetch(self, tax_id: str) -> RegistryResult:
        url = self.base_url + self.mapping.path_template.format(tax_id=tax_id)
        last: RegistryUnavailable | None = None
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            self.requests_made += 1
            try:
                response = self.session.get(url, timeout=self.timeout_seconds)
            except requests.Timeout as exc:
                last = RegistryUnavailable(
                    tax_id, "timeout", f"no answer in {self.timeout_seconds}s: {exc}"
                )
                continue
            except requests.ConnectionError as exc:
                last = RegistryUnavailable(tax_id, "connection_error", str(exc))
                continue
            except requests.RequestException as exc:  # bad URL, redirect loop: not transient
                return RegistryUnavailable(tax_id, "connection_error", str(exc))
            if response.status_code >= 500:
                last = RegistryUnavailable(tax_id, "server_error", f"HTTP {response.status_code}")
                continue
            if response.status_code == 404:
                return RegistryUnavailable(tax_id, "unknown_tax_id", "registry has no such tax id")
            if response.status_code != 200:
                return RegistryUnavailable(
                    tax_id, "malformed_response", f"unexpected HTTP {response.status_code}"
                )
            return self._parse(tax_id, response)
        assert last is not None  # the loop ran at least once and only `continue`s here
        return last

    def _parse(self, tax_id: str, response: requests.Response) -> RegistryResult:
        try:
            document = response.json()
        except ValueError as exc:
            return RegistryUnavailable(tax_id, "malformed_response", f"not JSON: {exc}")
        if not isinstance(document, dict | list):
            return RegistryUnavailable(tax_id, "malformed_response", "JSON is not an object")
        fields = self.mapping.fields
        try:
            founded = _as_date(json_path(document, fields.founded))
        except _Malformed as exc:
            return RegistryUnavailable(tax_id, "malformed_response", str(exc))
        status = _as_text(json_path(document, fields.legal_status))
        size = _as_text(json_path(document, fields.size))
        if status is None and founded is None and size is None:
            return RegistryUnavailable(
                tax_id, "malformed_response", "none of the configured fields are present"
            )
        return RegistryRecord(tax_id, status, founded, size, self.clock())


def results_frame(results: Iterable[RegistryResult]) -> pd.DataFrame:
    """Registry columns for scoring, keyed by tax id; unavailable ids keep their reason.

    Merge onto contacts by their compacted company tax id: registry_status,
    registry_founded and registry_size are then null for unavailable ids, which is exactly
    "factor skipped" in tasks.scoring.scorecard.
    """
    rows = []
    for r in results:
        if isinstance(r, RegistryRecord):
            rows.append(
                {
                    "tax_id": r.tax_id,
                    "registry_status": r.legal_status,
                    "registry_founded": pd.Timestamp(r.founded) if r.founded else pd.NaT,
                    "registry_size": r.size,
                    "registry_unavailable": None,
                }
            )
        else:
            rows.append(
                {
                    "tax_id": r.tax_id,
                    "registry_status": None,
                    "registry_founded": pd.NaT,
                    "registry_size": None,
                    "registry_unavailable": f"{r.reason}: {r.detail}",
                }
            )
    columns = ["tax_id", "registry_status", "registry_founded", "registry_size"]
    return pd.DataFrame(rows, columns=[*columns, "registry_unavailable"])
