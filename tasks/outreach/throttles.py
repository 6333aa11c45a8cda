"""Outreach throttles as Prefect rate limits: one per channel and one per recipient domain.

A rate limit that does not exist lets everything through (Prefect fails open, and
``strict=True`` only objects when *none* of the names exists), so every limit is created
or updated before its first use and every acquisition checks that each name answered.

Slots are taken with the ``/increment`` call Prefect's own ``rate_limit`` makes, through
one API client per process, and with the check ``strict=True`` makes applied to every
name: ``rate_limit`` keeps a queue service with its own client per distinct *set* of
names, and the sets here change with every batch (domains with the same row count share
a call).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import httpx
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.exceptions import ObjectAlreadyExists
from prefect.settings import PREFECT_API_URL

from config.campaign_policy import Campaign, Channel

EMAIL_LIMIT = "outreach-email"
FAX_LIMIT = "outreach-fax"

# Limits known to exist, per Prefect API URL: name -> size per minute.
_ensured: dict[tuple[str, str], int] = {}
_clients: dict[str, SyncPrefectClient] = {}


def _api_client() -> SyncPrefectClient:
    """One open client per Prefect API for the process: opening one costs about 20 ms
    (version and CSRF checks), more than all the calls a batch makes with it."""
    api = str(PREFECT_API_URL.value())
    client = _clients.get(api)
    if client is None:
        client = get_client(sync_client=True)
        client.__enter__()
        _clients[api] = client
    return client


def limit_names(channel: str) -> str:
    """The Prefect rate limit a channel's sends draw from (invitations are emails)."""
    return FAX_LIMIT if channel == Channel.FAX.value else EMAIL_LIMIT


def domain_limit_name(recipient: str) -> str:
    """The Prefect rate limit an email to ``recipient`` draws from, besides its channel's."""
    return f"outreach-domain-{recipient.rpartition('@')[2].lower()}"


def channel_limits(campaign: Campaign) -> dict[str, int]:
    throttles = campaign.throttles
    return {EMAIL_LIMIT: throttles.global_per_minute, FAX_LIMIT: throttles.fax_per_minute}


def ensure_limits(wanted: dict[str, int]) -> None:
    """Create or update the named rate limits (size per minute, refilling evenly).

    Each is upserted once per process and size; domain limits appear as batches meet
    their domains.
    """
    api = str(PREFECT_API_URL.value())
    todo = {n: v for n, v in wanted.items() if _ensured.get((api, n)) != v}
    if not todo:
        return
    client = _api_client()
    for name, per_minute in sorted(todo.items()):
        for attempt in range(2):
            try:
                client.upsert_global_concurrency_limit_by_name(
                    name, per_minute, slot_decay_per_second=per_minute / 60
                )
                break
            except ObjectAlreadyExists:
                # Another dispatcher created it between our read and our create.
                if attempt:
                    raise
        _ensured[(api, name)] = per_minute


class Slots:
    """Takes rate-limit slots until a deadline, through one client."""

    def __init__(self, client: SyncPrefectClient, deadline: float) -> None:
        self._client = client
        self._deadline = deadline

    def take(self, names: Sequence[str], count: int, size: int) -> int:
        """Take ``count`` slots from every limit in ``names``, in chunks of at most
        ``size`` (all a limit grants at once); returns how many were granted in time."""
        granted = 0
        while granted < count:
            chunk = min(size, count - granted)
            if not self._increment(names, chunk):
                break
            granted += chunk
        return granted

    def _increment(self, names: Sequence[str], slots: int) -> bool:
        while True:
            try:
                response = self._client.increment_concurrency_slots(
                    names=list(names), slots=slots, mode="rate_limit"
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != httpx.codes.LOCKED:
                    raise
                # All or nothing: a 423 took no slot from any of the names.
                pause = float(exc.response.headers.get("Retry-After", 1.0))
                if time.monotonic() + pause > self._deadline:
                    return False
                time.sleep(pause)
                continue
            missing = set(names) - {limit["name"] for limit in response.json()}
            if missing:
                raise ConcurrencySlotAcquisitionError(
                    f"rate limits {sorted(missing)} must be created before acquiring slots"
                )
            return True


def throttle(
    rows: list[dict[str, Any]], campaign: Campaign, wait_seconds: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split rows into those that got slots (per recipient domain, then per channel)
    within ``wait_seconds`` and those left for a later run.

    Domains with the same number of rows in the batch share one call (a batch touches
    many domains, a few rows each, and a call per domain would cost more than the sends);
    if that call runs out of time, its domains are tried one by one, so one busy domain
    does not hold back the others.
    """
    per_domain = campaign.throttles.per_domain_per_minute
    by_domain: dict[str, list[dict[str, Any]]] = {}
    allowed: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for row in rows:
        if row["channel"] == Channel.FAX.value:
            allowed.append(row)
        else:
            by_domain.setdefault(domain_limit_name(row["recipient"]), []).append(row)
    ensure_limits(dict.fromkeys(by_domain, per_domain))
    by_count: dict[int, list[str]] = {}
    for name, group in by_domain.items():
        by_count.setdefault(len(group), []).append(name)
    slots = Slots(_api_client(), time.monotonic() + wait_seconds)
    for count, names in by_count.items():
        together = slots.take(names, count, per_domain)
        for name in names:
            alone = 0
            if together < count and len(names) > 1:
                alone = slots.take([name], count - together, per_domain)
            group = by_domain[name]
            allowed.extend(group[: together + alone])
            held.extend(group[together + alone :])
    sizes = channel_limits(campaign)
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for row in allowed:
        by_channel.setdefault(limit_names(row["channel"]), []).append(row)
    allowed = []
    for name, group in by_channel.items():
        granted = slots.take([name], len(group), max(1, sizes[name]))
        allowed.extend(group[:granted])
        held.extend(group[granted:])
    return allowed, held
