"""Prefect tasks for contracts and obligations: import, fulfilment events, the watch, notices.

The watch is two units of work, as the complaint escalation pass is. The first, in one
transaction, turns complaints' SLA breaches on a contract into fulfilment events, evaluates
every obligation not yet met or missed, stores the notices that are due (unique key: a
rerun stores nothing new) and records the states that changed. The second sends what is
pending, one channel at a time, claiming rows ``sending`` and committing before the send.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from config.accounts_policy import TALKS_CAMPAIGN, ObligationPolicy, get_accounts_policy
from config.policies import get_ingest_policies
from config.settings import get_settings
from config.team_policy import TeamPolicy
from connectors.database import accounts_store as store
from connectors.database import complaints_store
from connectors.database.engine import session_scope
from connectors.database.migrate import ensure_schema
from connectors.smtp_sender import OutgoingEmail
from tasks.accounts.contracts import (
    ContractIn,
    EventIn,
    RejectedRow,
    all_obligations,
    match_obligation,
    parse_contract_records,
    parse_event_records,
    read_records,
)
from tasks.accounts.notices import notice_email, notice_message
from tasks.accounts.obligations import (
    NEVER,
    NO_DATE,
    decide_notices,
    evaluate_obligations,
    next_checks,
)
from tasks.common.notify import (
    NotifyCounts,
    notification_channels,
    notify_pending,
)
from tasks.complaints.business_hours import BusinessCalendar, naive_instants
from tasks.complaints.intake import utc_naive
from tasks.complaints.policies import get_complaint_policies
from tasks.complaints.sla_clock import CALENDAR_DEFAULT
from tasks.ingest.normalize import company_keys

NOTIFY_BATCH = 500
ATTENTION_ROWS = 500


# --- contracts ---------------------------------------------------------------------------


class ContractImportSummary(BaseModel):
    source: str
    rows_in: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    contracts_created: int = 0
    contracts_updated: int = 0
    contracts_unchanged: int = 0
    obligations_created: int = 0
    obligations_updated: int = 0
    rejected_rows: list[RejectedRow] = []

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_accepted + self.rows_rejected


def resolve_owner(team: TeamPolicy, given: str | None, company_owner: str | None) -> str | None:
    """A manager id from an id or an email; else the company's owner; None if neither."""
    if given:
        if given in team.by_id:
            return given
        by_email = {(m.email or "").lower(): m.id for m in team.managers if m.email}
        return by_email.get(given.lower())
    return company_owner if company_owner in team.by_id else None


def store_contracts(
    items: list[tuple[list[int], ContractIn]],
    source: str,
    rows_in: int,
    rejected: list[RejectedRow],
) -> ContractImportSummary:
    """Create or update each contract with its obligations; a re-import changes nothing.

    A contract whose owner cannot be resolved is rejected whole (its rows, with the reason).
    An obligation whose due date moves loses its recorded state, so the watch judges it
    afresh (and its notices, keyed by due date, can fire again for the new date).
    """
    team = get_complaint_policies().team
    summary = ContractImportSummary(source=source, rows_in=rows_in, rejected_rows=list(rejected))
    if items:
        names = pd.Series([c.company for _, c in items], dtype="string")
        keys = company_keys(names, get_ingest_policies().sources).tolist()
        with session_scope() as s:
            store.lock_accounts(s)
            company_of = _companies(s, [c.company for _, c in items], keys)
            owners = store.company_owners(s, company_of.values())
            existing = store.contracts_by_reference(s, [c.reference for _, c in items])
            for (rows, contract), key in zip(items, keys, strict=True):
                company_id = company_of[key]
                owner = resolve_owner(team, contract.owner, owners.get(company_id))
                if owner is None:
                    why = (
                        f"{contract.owner!r} is not a manager id or email in the team"
                        if contract.owner
                        else "not given, and the company has no owner"
                    )
                    summary.rejected_rows.append(
                        RejectedRow(file=source, row=rows[0], field="owner", reason=why)
                    )
                    continue
                summary.rows_accepted += len(rows)
                _store_contract(s, contract, company_id, owner, source, existing, summary)
    summary.rows_rejected = summary.rows_in - summary.rows_accepted
    return summary


def _companies(s: Session, names: list[str], keys: list[str]) -> dict[str, int]:
    found = complaints_store.companies_by_key(s, sorted(set(keys)))
    fresh = {k: n for n, k in zip(names, keys, strict=True) if k not in found}
    if fresh:
        ids = complaints_store.create_companies(
            s, [{"name": n, "name_key": k} for k, n in fresh.items()]
        )
        found.update(dict(zip(fresh, ids, strict=True)))
    return found


def _store_contract(
    s: Session,
    contract: ContractIn,
    company_id: int,
    owner: str,
    source: str,
    existing: dict[str, Any],
    summary: ContractImportSummary,
) -> None:
    values = {
        "company_id": company_id,
        "owner_id": owner,
        "start_date": contract.start_date,
        "end_date": contract.end_date,
        "renewal_date": contract.renewal_date,
        "notice_days": contract.notice_days,
    }
    known = existing.get(contract.reference)
    if known is None:
        contract_id = store.add_contract(
            s, {**values, "reference": contract.reference, "source": source}
        )
        summary.contracts_created += 1
        stored = pd.DataFrame()
    else:
        contract_id = known.id
        changed = store.update_contract(s, known, values)
        stored = store.obligations_of(s, [contract_id])
    records: list[dict[str, Any]] = stored.to_dict("records") if len(stored) else []  # type: ignore[assignment]
    by_ref = {str(r["ref"]): r for r in records}
    new_rows, updates = [], []
    for obligation, derived in all_obligations(contract):
        row = {
            "ref": obligation.key(),
            "kind": obligation.kind,
            "item": obligation.item,
            "quantity": obligation.quantity,
            "metric": obligation.metric,
            "target": obligation.target,
            "due_date": obligation.due_date,
            "derived": derived,
            "owner_id": owner,
        }
        old = by_ref.get(str(row["ref"]))
        if old is None:
            new_rows.append({**row, "contract_id": contract_id})
            continue
        diff = {k: v for k, v in row.items() if not _same(old.get(k), v)}
        if diff:
            if "due_date" in diff:
                diff["state"] = None
            diff["next_check_at"] = store.CHECK_NOW  # a new owner has another calendar
            updates.append({"id": int(old["id"]), **diff})
    store.insert_obligations(s, new_rows)
    store.update_obligations(s, updates)
    summary.obligations_created += len(new_rows)
    summary.obligations_updated += len(updates)
    if known is not None:
        if changed or updates or new_rows:
            summary.contracts_updated += 1
        else:
            summary.contracts_unchanged += 1


def _same(old: Any, new: Any) -> bool:
    if old is None or (isinstance(old, float) and np.isnan(old)):
        return new is None
    if isinstance(new, date) and not isinstance(old, date):
        return str(old)[:10] == new.isoformat()
    if isinstance(new, float) or isinstance(old, float):
        return new is not None and float(old) == float(new)
    return bool(old == new)


def import_contracts(path: Path) -> ContractImportSummary:
    """Validate every record of the file; store the valid contracts, report the rest."""
    records, nested = read_records(path, "contracts")
    parsed = parse_contract_records(path.name, records, nested)
    return store_contracts(parsed.contracts, path.name, parsed.rows_in, parsed.rejected)


@task(name="import-contracts", cache_policy=NO_CACHE)
def import_contracts_file(path: str) -> ContractImportSummary:
    ensure_schema()
    return import_contracts(Path(path))


# --- fulfilment events -------------------------------------------------------------------


class EventImportSummary(BaseModel):
    source: str
    rows_in: int = 0
    recorded: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_rows: list[RejectedRow] = []

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.recorded + self.duplicates + self.rejected


def store_events(
    items: list[tuple[int, EventIn]], source: str, rows_in: int, rejected: list[RejectedRow]
) -> EventImportSummary:
    """Record each event against the obligation it names; a repeated event is a duplicate."""
    summary = EventImportSummary(source=source, rows_in=rows_in, rejected_rows=list(rejected))
    bad_rows = {r.row for r in rejected}
    with session_scope() as s:
        store.lock_accounts(s)
        contracts = store.contracts_by_reference(s, sorted({e.contract for _, e in items}))
        ids = [c.id for c in contracts.values()]
        obligations = store.obligations_of(s, ids)
        by_contract: dict[int, list[dict[str, Any]]] = {}
        rows: list[dict[str, Any]] = obligations.to_dict("records")  # type: ignore[assignment]
        for r in rows:
            by_contract.setdefault(int(r["contract_id"]), []).append(r)
        keys = [e.key() for _, e in items]
        known = store.existing_event_refs(s, sorted(set(keys)))
        records, seen = [], set()
        for (row, event), key in zip(items, keys, strict=True):
            contract = contracts.get(event.contract)
            if contract is None:
                summary.rejected_rows.append(
                    RejectedRow(file=source, row=row, field="contract", reason="unknown contract")
                )
                bad_rows.add(row)
                continue
            oid, problem = match_obligation(event, by_contract.get(contract.id, []))
            if oid is None:
                field, _, reason = str(problem).partition(": ")
                summary.rejected_rows.append(
                    RejectedRow(file=source, row=row, field=field, reason=reason)
                )
                bad_rows.add(row)
                continue
            if key in known or key in seen:
                summary.duplicates += 1
                continue
            seen.add(key)
            records.append(
                {
                    "external_ref": key,
                    "obligation_id": oid,
                    "kind": event.kind,
                    "quantity": event.quantity,
                    "at": utc_naive(event.at),
                    "source": source,
                    "note": event.note,
                }
            )
        store.insert_obligation_events(s, records)
    summary.recorded = len(records)
    summary.rejected = len(bad_rows)
    return summary


def import_events(path: Path) -> EventImportSummary:
    records, _ = read_records(path, "events")
    good, bad = parse_event_records(path.name, records)
    return store_events(good, path.name, len(records), bad)


@task(name="import-contract-events", cache_policy=NO_CACHE)
def import_events_file(path: str) -> EventImportSummary:
    ensure_schema()
    return import_events(Path(path))


def complaint_breach_events(
    breaches: pd.DataFrame, service_levels: pd.DataFrame
) -> list[dict[str, Any]]:
    """``sla_missed`` events for contracts' response/resolution service levels from the
    complaints that name the contract and breached that clock (one per complaint, clock and
    obligation; the key makes the derivation idempotent)."""
    out: list[dict[str, Any]] = []
    if breaches.empty or service_levels.empty:
        return out
    by_ref: dict[tuple[str, str], list[int]] = {}
    for r in service_levels.to_dict("records"):
        by_ref.setdefault((str(r["reference"]), str(r["metric"])), []).append(int(r["id"]))
    for b in breaches.itertuples(index=False):
        for metric, state, due in (
            ("response", b.response_state, b.response_due_at),
            ("resolution", b.resolution_state, b.resolution_due_at),
        ):
            if state != "breached" or not isinstance(due, datetime):
                continue
            for oid in by_ref.get((str(b.reference), metric), []):
                out.append(
                    {
                        "external_ref": f"complaint:{b.complaint_id}:{metric}:{oid}",
                        "obligation_id": oid,
                        "kind": "sla_missed",
                        "quantity": None,
                        "at": due,
                        "source": "complaints",
                        "note": f"complaint {b.complaint_id}: {metric} SLA breached",
                    }
                )
    return out


# --- the watch ---------------------------------------------------------------------------


class WatchSummary(NotifyCounts):
    as_of: datetime
    watched: int = 0
    states: dict[str, int] = Field(default_factory=dict)
    changed: int = 0
    complaint_events: int = 0
    notices_due: int = 0
    new_notices: int = 0
    evaluate_seconds: float = 0.0
    seconds: float = 0.0


def _watch_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """The store's object columns as the typed frame ``evaluate_obligations`` reads."""
    due = pd.to_numeric(raw["due_day"], errors="coerce")

    def number(column: str) -> pd.Series:
        return pd.to_numeric(raw[column])

    return pd.DataFrame(
        {
            "obligation_id": raw["obligation_id"].to_numpy(dtype=np.int64),
            "kind": raw["kind"].to_numpy(dtype=object),
            "quantity": pd.to_numeric(raw["quantity"], errors="coerce").to_numpy(dtype=np.float64),
            "due_day": due.fillna(NO_DATE).to_numpy(dtype=np.int64),
            "calendar": raw["owner_id"].to_numpy(dtype=object),
            "owner_id": raw["owner_id"].to_numpy(dtype=object),
            "stored_state": raw["stored_state"].to_numpy(dtype=object),
            # Read because it is new, news came or a deadline passed (not merely because the
            # calendars changed): a state it is already in may need a notice under a new key.
            "recheck": number("due").to_numpy(dtype=np.int64) > 0,
            "delivered": number("delivered").to_numpy(dtype=np.float64),
            "credited_qty": number("credited_qty").to_numpy(dtype=np.float64),
            "completed": number("completed").to_numpy(dtype=np.int64) > 0,
            "sla_missed": number("sla_missed").to_numpy(dtype=np.int64) > 0,
            "invoiced": number("invoiced").to_numpy(dtype=np.int64),
            "credited": number("credited").to_numpy(dtype=np.int64),
        }
    )


FINGERPRINT_KEY = "obligations:watch_fingerprint"


def watch_fingerprint(policy: ObligationPolicy, calendars: dict[str, BusinessCalendar]) -> str:
    """What the stored next checks were computed from: the warnings and every calendar.

    When it differs from the last run's, the watch judges every open obligation again
    instead of only those whose next check has come.
    """
    parts = [policy.model_dump_json()]
    for name in sorted(calendars):
        cal = calendars[name]
        h = cal.holidays
        extra, removed = sorted(h.extra_dates), sorted(h.removed_dates)
        parts.append(f"{name}|{cal.timezone}|{cal.weekly}|{h.country}|{h.subdivision}")
        parts.append(f"{[d.isoformat() for d in extra]}|{[d.isoformat() for d in removed]}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def evaluate_watch(as_of: datetime) -> WatchSummary:
    """The first unit of work of ``watch-obligations`` (see module docstring)."""
    started = time.perf_counter()
    complaints = get_complaint_policies()
    policy = get_accounts_policy().obligations
    email, webhook = notification_channels()
    summary = WatchSummary(as_of=as_of, email_channel=email, webhook_channel=webhook)
    stamp = utc_naive(as_of)
    fingerprint = watch_fingerprint(policy, complaints.calendars)
    with session_scope() as s:
        store.lock_accounts(s)
        breaches = store.breached_complaints(s)
        if not breaches.empty:
            levels = store.service_levels_of(s, sorted(set(breaches["reference"])))
            derived = complaint_breach_events(breaches, levels)
            known = store.existing_event_refs(s, [d["external_ref"] for d in derived])
            fresh = [d for d in derived if d["external_ref"] not in known]
            store.insert_obligation_events(s, fresh)
            summary.complaint_events = len(fresh)
        everything = complaints_store.get_state(s, FINGERPRINT_KEY) != fingerprint
        raw = store.load_watch_input(s, stamp, everything)
        frame = _watch_frame(raw)
        summary.watched = len(frame)
        states = evaluate_obligations(
            frame, complaints.calendars, policy, as_of, default_calendar=CALENDAR_DEFAULT
        )
        summary.states = {str(k): int(v) for k, v in pd.Series(states.state).value_counts().items()}
        notices = decide_notices(frame, states, complaints.team, policy, as_of)
        summary.notices_due = len(notices)
        if len(notices):
            known_keys = store.known_notice_keys(s, notices["idempotency_key"].tolist())
            notices = notices[~notices["idempotency_key"].isin(known_keys)].copy()
            notices["email_outcome"] = "skipped" if email == "off" else None
            notices["webhook_outcome"] = "skipped" if webhook == "off" else None
            summary.new_notices = store.insert_notices(s, notices)
        changed = states.state != frame["stored_state"].to_numpy(dtype=object)
        summary.changed = int(changed.sum())
        following = next_checks(states, as_of)
        # An event dated after ``as_of`` is news when its time comes.
        coming = pd.to_datetime(raw["next_event"], utc=True)
        has_event = coming.notna().to_numpy(dtype=bool)
        if has_event.any():
            since = coming[has_event] - pd.Timestamp(0, tz="UTC")
            event_s = (since // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
            following[has_event] = np.minimum(following[has_event], event_s)
        stored = raw["next_check_s"].to_numpy(dtype=object)
        stored_next = np.full(len(raw), NEVER, dtype=np.int64)
        has_check = ~pd.isna(stored)
        stored_next[has_check] = stored[has_check].astype(np.int64)
        write = np.flatnonzero(changed | (following != stored_next))
        store.update_states(
            s,
            states.obligation_id[write].tolist(),
            [st if c else None for st, c in zip(states.state[write], changed[write], strict=True)],
            naive_instants(following[write]),
            stamp,
        )
        complaints_store.set_state(s, FINGERPRINT_KEY, fingerprint)
    summary.evaluate_seconds = round(time.perf_counter() - started, 3)
    return summary


@task(name="evaluate-obligations", cache_policy=NO_CACHE, retries=1)
def evaluate_watch_task(as_of: datetime) -> WatchSummary:
    ensure_schema()
    return evaluate_watch(as_of)


@task(name="notify-obligations", cache_policy=NO_CACHE)
def notify_obligations(summary: WatchSummary) -> WatchSummary:
    return notify_pending(summary, "obligations", store.NOTICES, notice_email, notice_message)


@task(name="publish-obligations-table", cache_policy=NO_CACHE)
def publish_watch(summary: WatchSummary) -> None:
    """The run's numbers, and the obligations that need someone, worst first."""
    table: list[dict[str, Any]] = [
        {"measure": "as of (UTC)", "value": summary.as_of.astimezone(UTC).isoformat()},
        {"measure": "obligations watched", "value": summary.watched},
        {"measure": "states changed", "value": summary.changed},
        {"measure": "events from complaints", "value": summary.complaint_events},
        {"measure": "new notices", "value": summary.new_notices},
        {"measure": "emails sent", "value": summary.emails_sent},
        {"measure": "emails failed", "value": summary.emails_failed},
        {"measure": "webhooks delivered", "value": summary.webhooks_delivered},
        {"measure": "notices pending", "value": summary.pending_after},
        {"measure": "seconds", "value": summary.seconds},
    ]
    table += [{"measure": f"state {k}", "value": v} for k, v in sorted(summary.states.items())]
    create_table_artifact(
        key="watch-obligations-summary",
        table=table,
        description=f"Obligations watch at {summary.as_of.isoformat()}",
    )
    with session_scope() as s:
        rows = store.attention(s, ATTENTION_ROWS)
    records: list[dict[str, Any]] = [
        {str(k): (v if v is None or isinstance(v, int | float) else str(v)) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
    create_table_artifact(
        key="watch-obligations",
        table=records or [{"contract": "", "state": "nothing late, missed or due soon"}],
        description=(
            f"Late, missed and due-soon obligations at {summary.as_of.isoformat()}"
            f" (first {ATTENTION_ROWS})"
        ),
    )


# --- account health and next best actions ------------------------------------------------


class AccountsSummary(BaseModel):
    as_of: datetime
    companies: int = 0
    bands: dict[str, int] = {}
    band_changes: int = 0
    actions: int = 0
    actions_by_rule: dict[str, int] = {}
    event_ids: list[int] = []
    events_emitted: int = 0
    seconds: float = 0.0


def _owners(frame: pd.DataFrame, team: TeamPolicy) -> pd.Series:
    """The company's owner, else its contracts' owner, else the head."""
    owner = frame["owner_id"].astype(object)
    owner = owner.where(owner.isin(list(team.by_id)), frame.get("contract_owner"))
    return owner.where(owner.isin(list(team.by_id)), team.head)


def _due_dates(
    owners: pd.Series, days: pd.Series, as_of: datetime, calendars: dict[str, Any]
) -> list[date]:
    from zoneinfo import ZoneInfo

    from tasks.accounts.obligations import add_business_days

    memo: dict[tuple[str, int], date] = {}
    out = []
    for owner, n in zip(owners, days, strict=True):
        key = (str(owner), int(n))
        if key not in memo:
            cal = calendars.get(key[0]) or calendars[CALENDAR_DEFAULT]
            today = as_of.astimezone(ZoneInfo(cal.timezone)).date()
            memo[key] = add_business_days(cal, today, key[1])
        out.append(memo[key])
    return out


def score_accounts_at(as_of: datetime) -> AccountsSummary:
    """Health for every company, the band changes as events, and each one's next action."""
    from tasks.accounts.actions import next_actions
    from tasks.accounts.health import factors_json, score_accounts, signals_from
    from tasks.complaints.escalation import delegations

    started = time.perf_counter()
    policy = get_accounts_policy()
    complaints = get_complaint_policies()
    team = complaints.team
    summary = AccountsSummary(as_of=as_of)
    stamp = utc_naive(as_of)
    window = pd.Timedelta(days=policy.health.window_days)
    with session_scope() as s:
        store.lock_accounts(s)
        raw = store.load_health_signals(
            s,
            stamp,
            stamp - window.to_pytimedelta(),
            stamp - pd.Timedelta(days=14).to_pytimedelta(),
        )
        if raw.empty:
            return summary
        previous = store.previous_health(s, stamp - window.to_pytimedelta())
        last = store.previous_health(s, stamp - pd.Timedelta(seconds=1).to_pytimedelta())
        signals = signals_from(raw, previous, pd.Timestamp(stamp))
        result = score_accounts(signals, policy.health)
        signals["health"] = result.score
        signals["band"] = result.band
        signals["health_change_90d"] = result.base_score - signals["previous_score"].to_numpy(float)
        owners = _owners(signals, team)
        health = pd.DataFrame(
            {
                "company_id": signals["company_id"].astype(np.int64),
                "as_of": stamp,
                "score": result.score,
                "band": result.band,
                "reasons": result.reasons,
                "factors": factors_json(result.factors),
                "owner_id": owners.to_numpy(dtype=object),
            }
        )
        actions = next_actions(signals, policy.actions)
        chosen = actions["rule"].notna().to_numpy(dtype=bool)
        table = delegations(team, as_of)
        picked = actions[chosen]
        picked_owners = owners[chosen]
        action_rows = pd.DataFrame(
            {
                "company_id": signals.loc[chosen, "company_id"].astype(np.int64),
                "as_of": stamp,
                "rule": picked["rule"],
                "action": picked["action"],
                "reason": picked["reason"],
                "due_date": _due_dates(
                    picked_owners, picked["due_in_business_days"], as_of, complaints.calendars
                ),
                "owner_id": picked_owners,
                "assignee_id": picked_owners.map(lambda o: table[o].assignee_id),
            }
        )
        store.delete_run(s, stamp)
        store.insert_health(s, health, json_text=("factors",))
        store.insert_actions(s, action_rows)
        before = last.set_index("company_id")["band"] if len(last) else pd.Series(dtype=object)
        was = health["company_id"].map(before)
        changed = (was.notna() & (was != health["band"])).to_numpy(dtype=bool)
        # (assigning a Series to an empty frame would take the Series' index as its rows)
        moved = health[changed].assign(previous_band=was[changed].to_numpy(dtype=object))
        summary.event_ids = store.record_band_changes(s, moved, stamp)
    summary.companies = len(health)
    summary.bands = {str(k): int(v) for k, v in health["band"].value_counts().items()}
    summary.band_changes = len(moved)
    summary.actions = len(action_rows)
    summary.actions_by_rule = {
        str(k): int(v) for k, v in action_rows["rule"].value_counts().items()
    }
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


@task(name="score-accounts", cache_policy=NO_CACHE, retries=1)
def score_accounts_task(as_of: datetime) -> AccountsSummary:
    ensure_schema()
    return score_accounts_at(as_of)


@task(name="emit-account-band-events", cache_policy=NO_CACHE)
def emit_account_band_events(summary: AccountsSummary) -> AccountsSummary:
    """Announce recorded band changes as Prefect events (event ids from the app_events rows,
    so a retried emission is the same event)."""
    import uuid

    from prefect.events import emit_event

    from connectors.database import scoring_store

    limit = get_settings().band_event_emit_limit
    with session_scope() as s:
        events = scoring_store.load_events(s, summary.event_ids[:limit])
    for event_id, payload in events:
        emit_event(
            event=store.ACCOUNT_BAND_CHANGED,
            resource={
                "prefect.resource.id": f"accountflow.company.{payload['company_id']}",
                "prefect.resource.role": "company",
            },
            payload=payload,
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"accountflow:app_events:{event_id}"),
        )
    return summary.model_copy(update={"events_emitted": len(events)})


def action_table(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "company": str(r["company"]),
            "action": str(r["action"]),
            "reason": str(r["reason"]),
            "due": str(r["due_date"])[:10],
            "owner": str(r["owner_id"]),
            "assignee": str(r["assignee_id"]),
            "health": None if pd.isna(r["health"]) else float(r["health"]),
            "band": None if pd.isna(r["band"]) else str(r["band"]),
        }
        for r in frame.to_dict("records")
    ]


@task(name="publish-account-actions", cache_policy=NO_CACHE)
def publish_accounts(summary: AccountsSummary) -> None:
    table: list[dict[str, Any]] = [
        {"measure": "as of (UTC)", "value": summary.as_of.astimezone(UTC).isoformat()},
        {"measure": "companies scored", "value": summary.companies},
        {"measure": "band changes", "value": summary.band_changes},
        {"measure": "next actions", "value": summary.actions},
        {"measure": "seconds", "value": summary.seconds},
    ]
    table += [{"measure": f"band {k}", "value": v} for k, v in sorted(summary.bands.items())]
    table += [
        {"measure": f"rule {k}", "value": v} for k, v in sorted(summary.actions_by_rule.items())
    ]
    create_table_artifact(
        key="score-accounts-summary",
        table=table,
        description=f"Account health at {summary.as_of.isoformat()}",
    )
    with session_scope() as s:
        rows = store.latest_actions(s).head(ATTENTION_ROWS)
    create_table_artifact(
        key="account-actions",
        table=action_table(rows) or [{"company": "", "action": "no action due"}],
        description=f"Next best actions at {summary.as_of.isoformat()} (first {ATTENTION_ROWS})",
    )


# --- the account plan --------------------------------------------------------------------


class PlanResult(BaseModel):
    company: str
    company_id: int
    html_path: str
    pdf_path: str
    health: float | None = None
    band: str | None = None


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "company"


def write_account_plan(company: str, as_of: datetime) -> PlanResult:
    """Write the plan's HTML and PDF under ``<data dir>/reports/accounts/``."""
    from tasks.accounts.plan import PlanHeader, html_template, render_html, render_pdf
    from tasks.complaints.escalation import resolve_delegate

    team = get_complaint_policies().team
    stamp = utc_naive(as_of)
    with session_scope() as s:
        found = store.company_by_name(s, company)
        if found is None:
            raise LookupError(f"no company named {company!r}")
        company_id, name, owner = found
        frames = store.plan_data(s, company_id, stamp)
    if owner not in team.by_id and len(frames["obligations"]):
        owner = None
    owner_id = owner if owner in team.by_id else team.head
    stand_in = resolve_delegate(team, owner_id, as_of).assignee_id
    header = PlanHeader(
        company=name,
        owner=team.by_id[owner_id].name,
        stand_in=team.by_id[stand_in].name if stand_in != owner_id else None,
        as_of=as_of,
    )
    folder = get_settings().data_dir / "reports" / "accounts"
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / f"{_slug(name)}-{as_of:%Y-%m-%d}"
    html_path, pdf_path = base.with_suffix(".html"), base.with_suffix(".pdf")
    page = get_settings().config_dir / "templates" / "_accounts" / "plan.html.j2"
    template = html_template(page.read_text(encoding="utf-8"))
    html_path.write_text(render_html(header, frames, template), encoding="utf-8")
    pdf_path.write_bytes(render_pdf(header, frames))
    health = frames["health"]
    return PlanResult(
        company=name,
        company_id=company_id,
        html_path=str(html_path.resolve()),
        pdf_path=str(pdf_path.resolve()),
        health=float(health["score"].iloc[-1]) if len(health) else None,
        band=str(health["band"].iloc[-1]) if len(health) else None,
    )


@task(name="write-account-plan", cache_policy=NO_CACHE)
def write_account_plan_task(company: str, as_of: datetime) -> PlanResult:
    ensure_schema()
    return write_account_plan(company, as_of)


@task(name="publish-account-plan", cache_policy=NO_CACHE)
def publish_plan(result: PlanResult) -> None:
    from prefect.artifacts import create_markdown_artifact

    health = f"{result.health} ({result.band})" if result.health is not None else "not scored yet"
    create_markdown_artifact(
        key=f"account-plan-{result.company_id}",
        markdown=(
            f"# Account plan: {result.company}\n\nHealth: {health}\n\n"
            f"- [HTML](file://{result.html_path})\n- [PDF](file://{result.pdf_path})\n"
        ),
        description=f"Account plan for {result.company}",
    )


# --- preliminary talks -------------------------------------------------------------------

TALK_OUTCOMES = ("held", "no_show", "cancelled", "won", "lost")


class TalkResult(BaseModel):
    talk_id: int
    company: str
    recipient: str
    owner_id: str
    status: str
    slots: list[datetime]
    created: bool
    email_outcome: str | None = None


def propose_talk(company: str, contact: str | None, as_of: datetime) -> TalkResult:
    """Create the proposal (at most one per contact and day) with its slots; not sent yet."""
    from tasks.accounts.talks import propose_slots

    policies = get_complaint_policies()
    talks = get_accounts_policy().talks
    team = policies.team
    with session_scope() as s:
        store.lock_accounts(s)
        party = store.talk_party(s, company, contact)
        if party is None:
            raise LookupError(f"no contact with an email at a company named {company!r}")
        key = f"talk:{party['contact_id']}:{as_of.astimezone(UTC):%Y-%m-%d}"
        talk = store.talk_by_key(s, key)
        created = talk is None
        if talk is None:
            owner = party["owner_id"] if party["owner_id"] in team.by_id else team.head
            calendar = policies.calendars.get(owner) or policies.calendars[CALENDAR_DEFAULT]
            zone = party["timezone"] or calendar.timezone
            slots = propose_slots(
                calendar,
                zone,
                as_of,
                talks.slots,
                talks.duration_minutes,
                talks.earliest_business_hours_ahead,
            )
            domain = str(talks.sender.from_address).rpartition("@")[2]
            talk = store.add_talk(
                s,
                {
                    "idempotency_key": key,
                    "company_id": party["company_id"],
                    "contact_id": party["contact_id"],
                    "owner_id": owner,
                    "recipient": party["email"],
                    "timezone": zone,
                    "slots": [t.isoformat() for t in slots],
                    "duration_minutes": talks.duration_minutes,
                    "message_id": f"<talk.{party['contact_id']}.{as_of:%Y%m%d}@{domain}>",
                    "status": "proposed",
                    "proposed_at": utc_naive(as_of),
                },
            )
        return TalkResult(
            talk_id=talk.id,
            company=str(party["company"]),
            recipient=talk.recipient,
            owner_id=talk.owner_id,
            status=talk.status,
            slots=[datetime.fromisoformat(v) for v in talk.slots],
            created=created,
            email_outcome=talk.email_outcome,
        )


@task(name="propose-talk", cache_policy=NO_CACHE)
def propose_talk_task(company: str, contact: str | None, as_of: datetime) -> TalkResult:
    ensure_schema()
    return propose_talk(company, contact, as_of)


@task(name="enqueue-talk-proposals", cache_policy=NO_CACHE)
def enqueue_talk_proposals() -> int:
    """Put every proposal not in the outreach outbox yet there, due when it was made.

    From the talks' own rows, so a run that died between creating a talk and queueing it
    loses nothing; the outbox's unique key makes a second enqueue a no-op.
    """
    from connectors.database import outreach_store

    talks = get_accounts_policy().talks
    with session_scope() as s:
        rows = store.talks_without_outbox_rows(s)
        return outreach_store.insert_planned(s, [_outbox_row(r, talks.sender) for r in rows])


def _outbox_row(talk: dict[str, Any], sender: Any) -> dict[str, Any]:
    country = talk["country"]
    return {
        "idempotency_key": talk["idempotency_key"],
        "campaign": TALKS_CAMPAIGN,
        "step": 0,
        "step_name": "proposal",
        "channel": "email",
        "contact_id": talk["contact_id"],
        "message_id": talk["message_id"],
        "language": "en",
        "recipient": talk["recipient"],
        "status": "planned",
        "attempts": 0,
        "due_at": talk["proposed_at"],
        "next_attempt_at": talk["proposed_at"],
        "timezone": talk["timezone"],
        "country": country if isinstance(country, str) and len(country) == 2 else None,
        "sender_address": str(sender.from_address),
        "created_at": utc_naive(datetime.now(UTC)),
        "updated_at": utc_naive(datetime.now(UTC)),
    }


def render_talk_proposal(row: dict[str, Any]) -> OutgoingEmail:
    """The proposal email of the talk a claimed outbox row stands for (same key)."""
    from tasks.accounts.talks import proposal_email, slot_starts
    from tasks.outreach.rendering import RenderError

    talks = get_accounts_policy().talks
    team = get_complaint_policies().team
    with session_scope() as s:
        talk = store.talk_by_key(s, str(row["idempotency_key"]))
        if talk is None:
            raise RenderError(f"no talk with key {row['idempotency_key']!r}")
        party = store.talk_party_of(s, talk.contact_id)
        owner = team.by_id.get(talk.owner_id)
        return proposal_email(
            talk_id=talk.id,
            outbox_id=int(row["id"]),
            message_id=talk.message_id,
            slots=slot_starts(talk.slots),
            duration_minutes=talk.duration_minutes,
            company=party["company"],
            client_name=party["full_name"] or talk.recipient,
            client_address=talk.recipient,
            client_timezone=talk.timezone,
            owner_name=owner.name if owner is not None else talk.owner_id,
            sender=str(talks.sender.from_address),
            now=datetime.now(UTC),
        )


def talk_email_outcome(talk_id: int) -> str | None:
    with session_scope() as s:
        talk = store.get_talk(s, talk_id)
        return talk.email_outcome if talk is not None else None


@task(name="record-talk-sends", cache_policy=NO_CACHE)
def record_talk_sends() -> int:
    """Copy each proposal's outbox status onto its talk (sent, suppressed, unknown, ...)."""
    with session_scope() as s:
        return store.mirror_talk_outcomes(s)


class TalkSync(BaseModel):
    rsvps_seen: int = 0
    talks_updated: int = 0


def sync_talk_replies() -> TalkSync:
    """Apply the RSVPs the inbox recognised to their talks (by the invitation's UID)."""
    from tasks.accounts.talks import answer_of, parse_uid, slot_starts

    summary = TalkSync()
    with session_scope() as s:
        store.lock_accounts(s)
        rsvps = store.talk_rsvps(s)
        summary.rsvps_seen = len(rsvps)
        for r in rsvps.to_dict("records"):
            parsed = parse_uid(str(r["rsvp_uid"]))
            if parsed is None:
                continue
            talk = store.get_talk(s, parsed[0])
            if talk is None or (talk.inbound_message_id or 0) >= int(r["id"]):
                continue  # unknown talk, or this answer (or a later one) already applied
            status = answer_of(talk.status, str(r["rsvp_answer"]))
            talk.inbound_message_id = int(r["id"])
            if status is None:
                continue
            talk.status = status
            talk.answered_at = pd.Timestamp(r["received_at"]).to_pydatetime()
            slots = slot_starts(talk.slots)
            if status == "accepted" and parsed[1] < len(slots):
                talk.accepted_slot = utc_naive(slots[parsed[1]])
            talk.updated_at = datetime.now(UTC).replace(tzinfo=None)
            summary.talks_updated += 1
    return summary


@task(name="sync-talk-replies", cache_policy=NO_CACHE)
def sync_talk_replies_task() -> TalkSync:
    ensure_schema()
    return sync_talk_replies()


def record_talk_outcome(talk_id: int, outcome: str, note: str | None) -> TalkResult:
    """What came of the talk (held, no_show, cancelled, won, lost), recorded by the manager."""
    if outcome not in TALK_OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {list(TALK_OUTCOMES)}")
    ensure_schema()
    with session_scope() as s:
        talk = store.get_talk(s, talk_id)
        if talk is None:
            raise LookupError(f"no talk {talk_id}")
        talk.status = outcome
        talk.outcome_note = note
        talk.updated_at = datetime.now(UTC).replace(tzinfo=None)
        party = store.talk_party_of(s, talk.contact_id)
        return TalkResult(
            talk_id=talk.id,
            company=str(party["company"]),
            recipient=talk.recipient,
            owner_id=talk.owner_id,
            status=talk.status,
            slots=[datetime.fromisoformat(v) for v in talk.slots],
            created=False,
            email_outcome=talk.email_outcome,
        )
