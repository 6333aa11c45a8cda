"""Which campaign steps are due, for whom, and which contacts a stop condition ends.

Pure: contacts, their progress in the campaign and the stop signals come in as data, the
instant is a parameter, and the result is the outbox rows to insert plus the counts that
explain every contact that got none. A step is planned only once it is due (its delay has
passed and the recipient's send window is open), so the stop conditions are evaluated
on the freshest signals, seconds before the claim, rather than days ahead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import pandas as pd

from config.campaign_policy import Audience, Campaign, Channel, StopCondition
from config.scoring_policy import AudiencePolicy
from tasks.common.clock import as_utc
from tasks.outreach.rendering import (
    InvalidAddressError,
    checked_address,
    e164,
    idempotency_key,
    message_id_for,
)
from tasks.outreach.windows import (
    add_business_days,
    holiday_calendar,
    next_allowed_at,
    recipient_zone,
)
from tasks.scoring.audience import industry_segments

# When a contact has no zone or language of its own, its country's is the best guess.
COUNTRY_ZONES = {
    "BR": "America/Sao_Paulo",
    "AR": "America/Argentina/Buenos_Aires",
    "CL": "America/Santiago",
    "UY": "America/Montevideo",
    "PY": "America/Asuncion",
    "PE": "America/Lima",
    "CO": "America/Bogota",
    "MX": "America/Mexico_City",
    "PT": "Europe/Lisbon",
    "ES": "Europe/Madrid",
    "US": "America/New_York",
    "GB": "Europe/London",
    "DE": "Europe/Berlin",
    "FR": "Europe/Paris",
    "IT": "Europe/Rome",
}
_PORTUGUESE = {"BR", "PT", "AO", "MZ"}
_SPANISH = {"ES", "AR", "CL", "UY", "PY", "PE", "CO", "MX", "BO", "EC", "VE", "CR", "GT"}
# Suppression reasons that mean each stop condition.
_BOUNCE_REASONS = {"hard_bounce"}
_OPT_OUT_REASONS = {"opt_out", "complaint", "manual"}


def default_language(country: str | None) -> str | None:
    code = (country or "").upper()
    if code in _PORTUGUESE:
        return "pt"
    if code in _SPANISH:
        return "es"
    return "en" if code else None


def split_tags(tags: str | None) -> set[str]:
    return {t.strip().lower() for t in (tags or "").split(",") if t.strip()}


def with_segments(contacts: list[dict[str, Any]], policy: AudiencePolicy) -> list[dict[str, Any]]:
    """The contacts, each with a ``segment``: its outreach profile's when one is set (an
    operator's or an import's word), else the industry the audience analysis gives its
    company, so an audience's ``segments`` filter means the segments ops see reported."""
    missing = [c for c in contacts if not c.get("segment")]
    if not missing:
        return contacts
    names = pd.Series([c.get("company") for c in missing], dtype=object)
    derived = dict(
        zip((c["contact_id"] for c in missing), industry_segments(names, policy), strict=True)
    )
    return [c if c.get("segment") else {**c, "segment": derived[c["contact_id"]]} for c in contacts]


def in_audience(contact: Mapping[str, Any], audience: Audience) -> str | None:
    """``None`` if the contact matches every filter, else the first filter that fails."""

    def folded(values: Iterable[str]) -> set[str]:
        return {v.lower() for v in values}

    if audience.segments and (contact.get("segment") or "").lower() not in folded(
        audience.segments
    ):
        return "segment"
    if audience.bands and contact.get("band") not in audience.bands:
        return "band"
    if audience.countries and (contact.get("country") or "").upper() not in audience.countries:
        return "country"
    if audience.source_events and (contact.get("source_event") or "") not in set(
        audience.source_events
    ):
        return "source_event"
    tags = split_tags(contact.get("tags"))
    if audience.tags_any and not tags & folded(audience.tags_any):
        return "tags_any"
    if audience.tags_all and not folded(audience.tags_all) <= tags:
        return "tags_all"
    if tags & folded(audience.exclude_tags):
        return "exclude_tags"
    return None


@dataclass(frozen=True)
class StopSignals:
    """What has happened to contacts outside the campaign since it started."""

    last_reply_at: Mapping[int, datetime] = field(default_factory=dict)  # naive UTC
    suppression_reasons: Mapping[int, set[str]] = field(default_factory=dict)
    open_complaints: set[int] = field(default_factory=set)
    contacted_elsewhere: set[int] = field(default_factory=set)


@dataclass
class Plan:
    rows: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def stop_reason(
    contact_id: int,
    conditions: Iterable[StopCondition],
    signals: StopSignals,
    first_sent_at: datetime | None,
    band: str | None,
    audience: Audience,
) -> StopCondition | None:
    """The first stop condition of a step that holds for this contact, if any."""
    reasons = signals.suppression_reasons.get(contact_id, set())
    replied = signals.last_reply_at.get(contact_id)
    holds = {
        StopCondition.REPLIED: replied is not None
        and first_sent_at is not None
        and replied > first_sent_at,
        StopCondition.BOUNCED: bool(reasons & _BOUNCE_REASONS),
        StopCondition.OPTED_OUT: bool(reasons & _OPT_OUT_REASONS),
        StopCondition.COMPLAINT_OPEN: contact_id in signals.open_complaints,
        StopCondition.BAND_DROPPED: bool(audience.bands) and band not in audience.bands,
    }
    for condition in conditions:
        if holds[condition]:
            return condition
    return None


@lru_cache(maxsize=256)
def _holidays(country: str | None, year: int) -> frozenset[date]:
    return holiday_calendar(country, [year, year + 1])


def plan_due_steps(
    campaign: Campaign,
    contacts: Iterable[Mapping[str, Any]],
    progress: Mapping[int, Mapping[int, tuple[str, datetime | None]]],
    signals: StopSignals,
    as_of: datetime,
    *,
    default_region: str = "BR",
    holidays: Callable[[str | None, int], frozenset[date]] = _holidays,
) -> Plan:
    """The outbox rows due at ``as_of``: at most one new step per contact.

    A contact's next step is the one after its highest planned step, once that step was
    ``sent``; a step in any other state (in flight, failed, unknown, suppressed) holds
    the sequence. Counts name why a contact got no row: ``audience:<filter>``,
    ``stopped:<condition>``, ``waiting`` (cadence delay), ``skipped_window``,
    ``no_address``, ``in_flight`` and ``finished``.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    plan = Plan()
    window = campaign.send_window
    sender_domain = str(campaign.sender.from_address).rpartition("@")[2]
    now_naive = as_of.astimezone(UTC).replace(tzinfo=None)
    for contact in contacts:
        cid = int(contact["contact_id"])
        steps = progress.get(cid, {})
        if steps:
            last = max(steps)
            status, sent_at = steps[last]
            if status != "sent" or sent_at is None:
                plan.counts[
                    "in_flight" if status in ("planned", "retry", "sending") else "held"
                ] += 1
                continue
            if last + 1 >= len(campaign.steps):
                plan.counts["finished"] += 1
                continue
            index = last + 1
            first = steps.get(min(steps))
            first_sent_at = first[1] if first else None
        else:
            failed = in_audience(contact, campaign.audience)
            if failed is not None:
                plan.counts[f"audience:{failed}"] += 1
                continue
            if campaign.audience.not_yet_contacted and cid in signals.contacted_elsewhere:
                plan.counts["audience:already_contacted"] += 1
                continue
            index, sent_at, first_sent_at = 0, None, None
        step = campaign.steps[index]
        stopped = stop_reason(
            cid, step.stop_on, signals, first_sent_at, contact.get("band"), campaign.audience
        )
        if stopped is not None:
            plan.counts[f"stopped:{stopped.value}"] += 1
            continue
        country = (contact.get("country") or "").upper() or None
        zone_name = contact.get("timezone") or COUNTRY_ZONES.get(country or "")
        zone = recipient_zone(zone_name, window)
        local_year = as_of.astimezone(zone).year
        days = holidays(country, local_year - 1) | holidays(country, local_year)
        if sent_at is None:
            earliest = as_of
        else:
            local = as_utc(sent_at).astimezone(zone)
            due_day = add_business_days(local.date(), step.delay_business_days, days)
            earliest = datetime.combine(due_day, local.time(), tzinfo=zone)
        if earliest > as_of:
            plan.counts["waiting"] += 1
            continue
        due = next_allowed_at(earliest, zone, window, days)
        if due > as_of:
            plan.counts["skipped_window"] += 1
            continue
        try:
            if step.channel is Channel.FAX:
                if not contact.get("fax"):
                    raise InvalidAddressError("no fax number")
                recipient = e164(str(contact["fax"]), country or default_region)
            else:
                recipient = checked_address("to", str(contact.get("email") or "")).lower()
        except InvalidAddressError:
            plan.counts["no_address"] += 1
            continue
        key = idempotency_key(campaign.name, cid, step.name)
        language = campaign.languages.pick(contact.get("language") or default_language(country))
        due_naive = due.astimezone(UTC).replace(tzinfo=None)
        plan.rows.append(
            {
                "idempotency_key": key,
                "campaign": campaign.name,
                "step": index,
                "step_name": step.name,
                "channel": step.channel.value,
                "contact_id": cid,
                "message_id": message_id_for(key, sender_domain),
                "language": language,
                "recipient": recipient,
                "status": "planned",
                "attempts": 0,
                "due_at": due_naive,
                "next_attempt_at": due_naive,
                "timezone": zone.key,
                "country": country,
                "sender_address": str(campaign.sender.from_address),
                "created_at": now_naive,
                "updated_at": now_naive,
            }
        )
        plan.counts["planned"] += 1
    return plan
