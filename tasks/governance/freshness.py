"""Freshness of the client database: which contacts' fields went stale, per owner.

A field's value is confirmed when a source row of the contact was seen (``last_seen_at``),
when the value changed (its latest ``contact_history`` entry), or when the person
confirmed their details through a re-verification email's link (``confirmed_at``); it is
fresh while that is younger than the field's rule. Only fields that hold a value count.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from config.governance_policy import governance_policy
from connectors.database import governance_store as store
from connectors.database.engine import session_scope

UNOWNED = "(no owner)"


def freshness(
    contacts: pd.DataFrame, history: pd.DataFrame, rules: dict[str, int], as_of: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stale (contact, field) pairs with their owner and last confirmation; and the share
    of fresh values per owner and field.

    ``contacts``: contact_id, owner, last_seen_at and one column per ruled field.
    ``history``: contact_id, field, changed_at (latest change per pair or every change).
    """
    now = pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None)
    latest = (
        history.groupby(["contact_id", "field"])["changed_at"].max()
        if len(history)
        else pd.Series(dtype="datetime64[ns]")
    )
    frames = []
    for field, days in rules.items():
        if field not in contacts:
            continue
        held = contacts[contacts[field].notna()]
        if held.empty:
            continue
        seen = pd.to_datetime(held["last_seen_at"])
        changed = pd.Series(
            [latest.get((cid, field), pd.NaT) for cid in held["contact_id"]],
            index=held.index,
            dtype="datetime64[ns]",
        )
        sources = [seen, changed]
        if "confirmed_at" in held:  # the person confirmed every detail through a link
            sources.append(pd.to_datetime(held["confirmed_at"]))
        confirmed = pd.concat(sources, axis=1).max(axis=1)
        frames.append(
            pd.DataFrame(
                {
                    "contact_id": held["contact_id"],
                    "owner": held["owner"].fillna(UNOWNED),
                    "field": field,
                    "last_confirmed": confirmed,
                    "fresh": confirmed >= now - timedelta(days=days),
                }
            )
        )
    if not frames:
        empty = pd.DataFrame(columns=["contact_id", "owner", "field", "last_confirmed"])
        return empty, pd.DataFrame(columns=["owner", "field", "fresh", "total", "share_fresh"])
    every = pd.concat(frames, ignore_index=True)
    stale = every.loc[~every["fresh"], ["contact_id", "owner", "field", "last_confirmed"]]
    share = every.groupby(["owner", "field"])["fresh"].agg(fresh="sum", total="count").reset_index()
    share["share_fresh"] = (share["fresh"] / share["total"]).round(4)
    return stale.sort_values(["owner", "contact_id", "field"]).reset_index(drop=True), share


class FreshnessSummary(BaseModel):
    as_of: datetime
    values_checked: int = 0
    stale_values: int = 0
    stale_contacts_by_owner: dict[str, int] = {}
    share_fresh_by_field: dict[str, float] = {}
    raw_values_dropped: int = 0
    bases_raised_to_contract: int = 0
    reverification_emails_enqueued: int = 0


@task(name="check-contact-freshness", cache_policy=NO_CACHE)
def check_contact_freshness(as_of: datetime) -> tuple[FreshnessSummary, list[int]]:
    """Load contacts and their change history, judge freshness, publish the table; the
    summary and the ids of contacts with a stale field."""
    rules: dict[str, int] = {str(k): v for k, v in governance_policy().freshness.items()}
    with session_scope() as s:
        contacts, history = store.freshness_inputs(s, list(rules))
    stale, share = freshness(contacts, history, rules, as_of)
    totals = share.groupby("field")[["fresh", "total"]].sum()
    summary = FreshnessSummary(
        as_of=as_of,
        values_checked=int(share["total"].sum()) if len(share) else 0,
        stale_values=len(stale),
        stale_contacts_by_owner={
            str(k): int(v) for k, v in stale.groupby("owner")["contact_id"].nunique().items()
        },
        share_fresh_by_field={
            str(field): round(int(fresh) / int(total), 4)
            for field, fresh, total in zip(
                totals.index, totals["fresh"], totals["total"], strict=True
            )
        },
    )
    table: list[dict[str, Any]] = [
        {str(k): v for k, v in record.items()} for record in share.to_dict(orient="records")
    ]
    create_table_artifact(
        key="contact-freshness",
        table=table,
        description=f"Share of fresh values per owner and field at {as_of:%Y-%m-%d}",
    )
    return summary, sorted({int(c) for c in stale["contact_id"]})


@task(name="drop-old-raw-values", cache_policy=NO_CACHE)
def drop_old_raw_values(as_of: datetime) -> int:
    """Retention: source rows older than the policy keep everything but their raw cells."""
    cutoff = as_of - timedelta(days=governance_policy().raw_retention_days)
    with session_scope() as s:
        return store.drop_old_raw(s, cutoff)
