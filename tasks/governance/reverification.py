"""Re-verification: an email asking a contact whose details went stale to confirm them.

The email is an outbox row of the re-verification campaign (``planning: enqueued``), put
there by the freshness check and sent by the ordinary dispatch, so suppression, send
windows, throttles and at-most-once sending hold for it as for any campaign. Its
idempotency key names the period (``every_days``), and a contact asked within the period
is not asked again. The link in it (signed like unsubscribe links, with the rotating
link secret) leads to a page showing what we hold; confirming records that every detail
was confirmed at that instant, which the freshness check counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from config.campaign_policy import Campaign
from config.governance_policy import ReverificationPolicy, governance_policy
from connectors.database import governance_store as store
from connectors.database import outreach_store
from connectors.database.engine import session_scope
from tasks.outreach.planning import COUNTRY_ZONES, default_language
from tasks.outreach.rendering import (
    InvalidAddressError,
    checked_address,
    idempotency_key,
    message_id_for,
)
from tasks.outreach.windows import recipient_zone


def period_of(as_of: datetime, every_days: int) -> int:
    """The re-verification period ``as_of`` falls in (days since 0001-01-01 // every_days)."""
    return as_of.astimezone(UTC).date().toordinal() // every_days


def reverification_rows(
    candidates: Iterable[Mapping[str, Any]],
    campaign: Campaign,
    as_of: datetime,
    every_days: int,
) -> list[dict[str, Any]]:
    """Outbox rows (planned, due now) of the campaign's one email step, one per candidate
    with a deliverable address, keyed by (campaign, contact, step and period)."""
    step = campaign.steps[0]
    sender_domain = str(campaign.sender.from_address).rpartition("@")[2]
    now = as_of.astimezone(UTC).replace(tzinfo=None)
    period = period_of(as_of, every_days)
    rows = []
    for c in candidates:
        try:
            recipient = checked_address("to", str(c.get("email") or "")).lower()
        except InvalidAddressError:
            continue
        country = (c.get("country") or "").upper() or None
        zone = recipient_zone(c.get("timezone") or COUNTRY_ZONES.get(country or ""),
                              campaign.send_window)  # fmt: skip
        key = idempotency_key(campaign.name, int(c["contact_id"]), f"{step.name}@{period}")
        rows.append(
            {
                "idempotency_key": key,
                "campaign": campaign.name,
                "step": 0,
                "step_name": step.name,
                "channel": step.channel.value,
                "contact_id": int(c["contact_id"]),
                "message_id": message_id_for(key, sender_domain),
                "language": campaign.languages.pick(c.get("language") or default_language(country)),
                "recipient": recipient,
                "status": "planned",
                "attempts": 0,
                "due_at": now,
                "next_attempt_at": now,
                "timezone": zone.key,
                "country": country,
                "sender_address": str(campaign.sender.from_address),
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


def reverification_policy() -> ReverificationPolicy:
    return governance_policy().reverification


@task(name="enqueue-reverification", cache_policy=NO_CACHE)
def enqueue_reverification(stale_contact_ids: list[int], as_of: datetime) -> int:
    """One re-verification email per stale contact not asked within the period."""
    from tasks.outreach.dispatch import get_campaign

    policy = reverification_policy()
    campaign = get_campaign(policy.campaign)
    since = as_of - timedelta(days=policy.every_days)
    with session_scope() as s:
        candidates = store.reverification_candidates(s, stale_contact_ids, campaign.name, since)
        rows = reverification_rows(candidates, campaign, as_of, policy.every_days)
        return outreach_store.insert_planned(s, rows)


class ConfirmationRefused(LookupError):
    """The link names no re-verification email of ours for that contact, or is too old."""


def held_details(contact_id: int, outbox_id: int, as_of: datetime | None = None) -> dict[str, str]:
    """The details a valid link's page shows; refused for a link we would not honour."""
    with session_scope() as s:
        _check_link(s, contact_id, outbox_id, as_of)
        details = store.held_details(s, contact_id)
    if details is None:
        raise ConfirmationRefused("nothing held for this link")
    return details


def confirm_details(contact_id: int, outbox_id: int, as_of: datetime | None = None) -> bool:
    """Record that the person confirmed their details (False: this link already did)."""
    now = (as_of or datetime.now(UTC)).astimezone(UTC)
    with session_scope() as s:
        _check_link(s, contact_id, outbox_id, now)
        if store.held_details(s, contact_id) is None:
            raise ConfirmationRefused("nothing held for this link")
        return store.record_confirmation(s, contact_id, outbox_id, now)


def _check_link(s: Any, contact_id: int, outbox_id: int, as_of: datetime | None) -> None:
    policy = reverification_policy()
    target = store.confirmation_target(s, contact_id, outbox_id, policy.campaign)
    if target is None or target.status != "sent" or target.sent_at is None:
        raise ConfirmationRefused("no such re-verification email")
    now = (as_of or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    if target.sent_at + timedelta(days=policy.link_valid_days) < now:
        raise ConfirmationRefused("this link has expired")
