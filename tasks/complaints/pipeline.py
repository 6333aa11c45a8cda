"""Prefect tasks for complaints: intake, events, the escalation pass, notifications, analysis.

The escalation pass is two units of work. The first, in one transaction, evaluates every
clock, stores the escalations that are due (unique idempotency key: a rerun stores
nothing new), refreshes the cached SLA columns and hands complaints over to stand-ins.
The second sends what is still pending, one channel at a time, claiming rows as
``sending`` and committing before anything goes on the wire; a failed send stays pending
and the next run retries it, a delivered one is never sent again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from config.policies import get_ingest_policies
from config.settings import get_settings
from connectors.database import complaints_store as store
from connectors.database import ingest_store
from connectors.database.engine import session_scope
from connectors.database.migrate import ensure_schema
from tasks.common.clock import as_utc
from tasks.common.notify import (
    NotifyCounts,
    notification_channels,
    notify_pending,
)
from tasks.complaints.analysis import analysis_frame, render_report
from tasks.complaints.business_hours import naive_instants
from tasks.complaints.escalation import (
    EscalationBatch,
    assign_owners,
    decide_escalations,
    escalation_message,
    plan_handovers,
)
from tasks.complaints.intake import (
    ComplaintIn,
    RejectedRow,
    next_status,
    overall_states,
    read_import_file,
    territory_for,
    utc_naive,
    validate_records,
)
from tasks.complaints.notices import escalation_email
from tasks.complaints.policies import ComplaintPolicies, get_complaint_policies
from tasks.complaints.sla_clock import CALENDAR_DEFAULT, NEVER, evaluate_clocks
from tasks.ingest.normalize import company_keys, normalize_emails, normalize_phones

NOTIFY_BATCH = 500


# --- intake -----------------------------------------------------------------------------


class IntakeSummary(BaseModel):
    source: str
    rows_in: int = 0
    created: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_rows: list[RejectedRow] = []
    complaint_ids: list[int] = []
    linked_contacts: int = 0
    new_contacts: int = 0
    new_companies: int = 0

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.created + self.duplicates + self.rejected


def _assign(
    s: Session, rows: pd.DataFrame, policies: ComplaintPolicies, as_of: datetime
) -> pd.Series:
    """Owner per row (``company_id``, ``company``, ``company_owner``, ``country``, ``state``).

    A company keeps the owner it has; a company without one gets one by account (its name
    listed under a manager's ``accounts``), territory or round robin, stored on the company
    with the rule; a complaint without a company gets one the same way, for itself only.
    The round-robin cursor lives in ``ownership_state`` so the rotation survives restarts.
    """
    team = policies.team
    owners = rows["company_owner"].astype(object).where(rows["company_owner"].notna(), None)
    need = rows[owners.isna()]
    if need.empty:
        return owners
    listed = {a for m in team.managers for a in m.accounts}
    territories = [t for m in team.managers for t in m.territories]
    keys, company_of, names = [], {}, []
    for i, cid, name in zip(need.index, need["company_id"], need["company"], strict=True):
        key = f"company:{int(cid)}" if pd.notna(cid) else f"complaint:{i}"
        keys.append(key)
        if pd.notna(cid):
            company_of[key] = int(cid)
        names.append(name if isinstance(name, str) and name in listed else key)
    accounts = pd.DataFrame(
        {
            "key": keys,
            "account_id": names,
            "territory": [
                territory_for(
                    None if pd.isna(c) else str(c), None if pd.isna(st) else str(st), territories
                )
                for c, st in zip(need["country"], need["state"], strict=True)
            ],
        }
    ).drop_duplicates("key")
    cursor = int(store.get_state(s, store.ROUND_ROBIN_KEY) or 0)
    chosen, cursor = assign_owners(accounts, team, as_of, cursor)
    store.set_state(s, store.ROUND_ROBIN_KEY, str(cursor))
    owner_of = dict(zip(accounts["key"], chosen["owner_id"], strict=True))
    rule_of = dict(zip(accounts["key"], chosen["rule"], strict=True))
    store.set_company_owners(
        s,
        [
            {"id": company_of[k], "owner_id": owner_of[k], "owner_rule": rule_of[k]}
            for k in owner_of
            if k in company_of
        ],
    )
    owners.loc[need.index] = [owner_of[k] for k in keys]
    return owners


def store_complaints(
    items: list[ComplaintIn],
    source: str,
    as_of: datetime | None = None,
    rows_in: int | None = None,
    rejected: list[RejectedRow] | None = None,
) -> IntakeSummary:
    """Resolve parties, assign owners and store complaints with their ``created`` event.

    Parties: the contact is found by email, then phone, among the identifiers ingestion
    recorded; else a minimal contact is created (when there is an email or phone). The
    company is found by its folded name key, else created, else the contact's company.
    """
    now = as_utc(as_of)
    policies = get_complaint_policies()
    summary = IntakeSummary(
        source=source,
        rows_in=len(items) if rows_in is None else rows_in,
        rejected=len(rejected or []),
        rejected_rows=rejected or [],
    )
    if not items:
        return summary
    frame = pd.DataFrame([i.model_dump() for i in items])
    settings = get_settings()
    frame["email_n"] = normalize_emails(frame["email"].astype("string"))
    region = frame["country"].fillna(settings.default_region)
    frame["phone_n"] = normalize_phones(frame["phone"].astype("string"), region)[0]
    frame["company_key"] = company_keys(
        frame["company"].astype("string"), get_ingest_policies().sources
    )
    # Plain objects with None for "missing" from here on: the values go to the database.
    frame = frame.astype(object).where(frame.notna(), None)
    with session_scope() as s:
        store.lock_escalation(s)
        refs = [r for r in frame["external_ref"].dropna().unique().tolist()]
        known = store.existing_refs(s, refs)
        dup = frame["external_ref"].isin(list(known)) | (
            frame["external_ref"].notna() & frame["external_ref"].duplicated()
        )
        summary.duplicates = int(dup.sum())
        frame = frame[~dup].copy()
        if frame.empty:
            return summary
        _resolve_parties(s, frame, summary, now)
        info = store.companies_info(s, frame["company_id"].dropna().astype(int).tolist())
        info = info.set_index("id")
        comp = frame["company_id"]
        frame["company_owner"] = comp.map(info["owner_id"]) if len(info) else None
        frame["company"] = frame["company"].where(
            frame["company"].notna(), comp.map(info["name"]) if len(info) else None
        )
        frame["country"] = frame["country"].where(
            frame["country"].notna(), comp.map(info["country"]) if len(info) else None
        )
        frame["owner_id"] = _assign(s, frame, policies, now)
        created = [
            as_utc(c) if c is not None and not pd.isna(c) else now for c in frame["created_at"]
        ]
        records = []
        for r, at in zip(frame.itertuples(index=False), created, strict=True):
            records.append(
                {
                    "source": source,
                    "external_ref": r.external_ref,
                    "contact_id": _int(r.contact_id),
                    "company_id": _int(r.company_id),
                    "category": r.category,
                    "root_cause": r.root_cause,
                    "severity": r.severity,
                    "tier": r.tier,
                    "reference": r.reference,
                    "subject": r.subject,
                    "body": r.body,
                    "owner_id": r.owner_id,
                    "assignee_id": r.owner_id,
                    "status": "open",
                    "created_at": utc_naive(at),
                }
            )
        ids = store.insert_complaints(s, records)
        store.insert_events(
            s,
            [
                {"complaint_id": cid, "kind": "created", "at": utc_naive(at), "actor": source}
                for cid, at in zip(ids, created, strict=True)
            ],
        )
    summary.created = len(ids)
    summary.complaint_ids = ids
    return summary


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _resolve_parties(
    s: Session, frame: pd.DataFrame, summary: IntakeSummary, now: datetime
) -> None:
    by_email = ingest_store.contacts_by_identifier(
        s, "email", frame["email_n"].dropna().unique().tolist()
    )
    by_phone = ingest_store.contacts_by_identifier(
        s, "phone", frame["phone_n"].dropna().unique().tolist()
    )
    contact = frame["email_n"].astype(object).map(by_email).astype(object)
    contact = contact.where(contact.notna(), frame["phone_n"].astype(object).map(by_phone))
    summary.linked_contacts = int(contact.notna().sum())
    companies = store.companies_by_key(s, frame["company_key"].dropna().unique().tolist())
    company = frame["company_key"].map(companies)
    no_company = (company.isna() & frame["company_key"].notna()).to_numpy(dtype=bool)
    fresh = frame.loc[no_company].drop_duplicates("company_key")
    if not fresh.empty:
        ids = store.create_companies(
            s,
            [
                {"name": r.company, "name_key": r.company_key, "country": r.country}
                for r in fresh.itertuples(index=False)
            ],
        )
        companies.update(dict(zip(fresh["company_key"], ids, strict=True)))
        company = frame["company_key"].astype(object).map(companies).astype(object)
        summary.new_companies = len(ids)
    of_contact = ingest_store.contact_companies(s, contact.dropna().astype(int).tolist())
    company = company.where(company.notna(), contact.map(of_contact))
    # One new contact per distinct email (else phone) among the unmatched rows.
    ident = frame["email_n"].where(frame["email_n"].notna(), frame["phone_n"])
    unmatched = (contact.isna() & ident.notna()).to_numpy(dtype=bool)
    new = frame.loc[unmatched].assign(ident=ident[unmatched]).drop_duplicates("ident")
    if not new.empty:
        t = utc_naive(now)
        values = []
        for r in new.itertuples(index=False):
            domain = r.email_n.split("@")[1] if isinstance(r.email_n, str) else None
            values.append(
                {
                    "full_name": r.name,
                    "email": r.email_n if isinstance(r.email_n, str) else None,
                    "email_domain": domain,
                    "phone": r.phone_n if isinstance(r.phone_n, str) else None,
                    "company_id": _int(companies.get(str(r.company_key)))
                    if r.company_key
                    else None,
                    "country": r.country,
                    "state": r.state,
                    "source_event": "complaint",
                    "first_seen_at": t,
                    "last_seen_at": t,
                }
            )
        ids = store.create_contacts(s, values)
        new_of = dict(zip(new["ident"], ids, strict=True))
        contact = contact.where(contact.notna(), ident.map(new_of))
        summary.new_contacts = len(ids)
    frame["contact_id"] = contact.astype("Int64")
    frame["company_id"] = company.astype("Int64")


@task(name="import-complaints", cache_policy=NO_CACHE)
def import_complaints_file(path: str) -> IntakeSummary:
    """Validate every record of the file; store the valid ones, report the others by row."""
    ensure_schema()
    records = read_import_file(Path(path))
    good, bad = validate_records(records)
    return store_complaints([c for _, c in good], "import", rows_in=len(records), rejected=bad)


# --- events -----------------------------------------------------------------------------


class EventResult(BaseModel):
    complaint_id: int
    kind: str
    at: datetime
    status: str


def record_complaint_event(
    complaint_id: int,
    kind: str,
    at: datetime | None = None,
    note: str | None = None,
    actor: str | None = None,
) -> EventResult:
    """Append an event (the clock's input) and move the status; refuses nonsensical moves."""
    ensure_schema()
    when = as_utc(at)
    with session_scope() as s:
        complaint = store.get_complaint(s, complaint_id)
        if complaint is None:
            raise LookupError(f"no complaint {complaint_id}")
        status = next_status(kind, complaint.status)
        closed = utc_naive(when) if status == "resolved" else None
        store.record_event(s, complaint, kind, utc_naive(when), note, actor, status, closed)
    return EventResult(complaint_id=complaint_id, kind=kind, at=when, status=status)


# --- escalation -------------------------------------------------------------------------


class EscalationSummary(NotifyCounts):
    as_of: datetime
    evaluated: int = 0
    open: int = 0
    owners_assigned: int = 0
    escalations_due: int = 0
    new_escalations: int = 0
    to_notify: int = 0
    handovers: int = 0
    handovers_by_reason: dict[str, int] = Field(default_factory=dict)
    states: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0
    evaluate_seconds: float = 0.0


def _new_escalations(
    batch: EscalationBatch, new: npt.NDArray[np.bool_], email: str, webhook: str
) -> pd.DataFrame:
    """The escalations not stored yet, as the table to insert (there can be 100k+)."""
    frame = batch.to_frame()[new].drop_duplicates("idempotency_key")
    for column in ("due_at", "as_of"):
        frame[column] = frame[column].dt.tz_localize(None)  # naive UTC, as stored
    skipped = pd.Series("skipped", index=frame.index, dtype=object)
    frame["email_outcome"] = skipped.where(frame["notify"] & (email == "off"))
    frame["webhook_outcome"] = skipped.where(frame["notify"] & (webhook == "off"))
    return frame


def evaluate_escalations(as_of: datetime) -> EscalationSummary:
    """The first unit of work of ``escalate-complaints`` (see module docstring)."""
    started = time.perf_counter()
    policies = get_complaint_policies()
    email, webhook = notification_channels()
    summary = EscalationSummary(as_of=as_of, email_channel=email, webhook_channel=webhook)
    with session_scope() as s:
        store.lock_escalation(s)
        unowned = store.unowned_open(s)
        if not unowned.empty:
            owners = _assign(s, unowned, policies, as_of)
            store.set_complaint_owners(
                s,
                [
                    {"id": int(c), "owner_id": o, "assignee_id": o}
                    for c, o in zip(unowned["complaint_id"], owners, strict=True)
                ],
            )
            summary.owners_assigned = len(unowned)
        last = store.get_state(s, store.LAST_RUN_KEY)
        since = datetime.fromisoformat(last) if last else None
        if since is not None and since > utc_naive(as_of):
            since = utc_naive(as_of)  # a replay of an earlier instant sees what that run saw
        complaints, events = store.load_clock_input(s, since)
        summary.evaluated = len(complaints)
        if len(complaints):
            _escalate_batch(s, complaints, events, policies, as_of, since, summary)
        if since is None or utc_naive(as_of) > since:
            store.set_state(s, store.LAST_RUN_KEY, utc_naive(as_of).isoformat())
    summary.evaluate_seconds = round(time.perf_counter() - started, 3)
    return summary


def _escalate_batch(
    s: Session,
    complaints: pd.DataFrame,
    events: pd.DataFrame,
    policies: ComplaintPolicies,
    as_of: datetime,
    since: datetime | None,
    summary: EscalationSummary,
) -> None:
    team, sla = policies.team, policies.sla
    email, webhook = summary.email_channel, summary.webhook_channel
    names = list(policies.calendars)
    known_cal = set(names)
    # A complaint's clock runs on its owner's calendar (the default one when unowned).
    cal = [o if o in known_cal else CALENDAR_DEFAULT for o in complaints["owner_id"]]
    batch = pd.DataFrame(
        {
            "complaint_id": complaints["complaint_id"].astype(np.int64),
            "severity": pd.Categorical(complaints["severity"].astype(object)),
            "tier": complaints["tier"].astype(object),
            "calendar": pd.Categorical(cal, categories=names),
        }
    )
    history = pd.DataFrame(
        {
            "complaint_id": events["complaint_id"].astype(np.int64),
            "kind": pd.Categorical(events["kind"].astype(object)),
            "at": pd.to_datetime(events["at_s"].astype(np.int64), unit="s", utc=True),
        }
    )
    clocks = evaluate_clocks(batch, history, sla, policies.calendars, as_of)
    owners = pd.Series(complaints["owner_id"].to_numpy(dtype=object), index=batch.index)
    escalations = decide_escalations(clocks, owners, sla, team, as_of)
    summary.escalations_due = len(escalations)
    known = store.known_escalation_keys(s, since)
    keys = escalations.idempotency_key
    new = np.fromiter((k not in known for k in keys), dtype=bool, count=len(keys))
    summary.new_escalations = store.insert_escalations(
        s, _new_escalations(escalations, new, email, webhook)
    )
    summary.to_notify = int(escalations.notify[new].sum())
    _refresh_cache(s, complaints, clocks, as_of, summary)
    open_rows = complaints.loc[
        (complaints["status"] != "resolved").to_numpy(dtype=bool),
        ["complaint_id", "owner_id", "assignee_id"],
    ]
    handovers = plan_handovers(open_rows, team, as_of)
    store.apply_handovers(s, handovers)
    summary.handovers = len(handovers)
    summary.handovers_by_reason = {
        str(k): int(v) for k, v in handovers["reason"].value_counts().items()
    }
    summary.open = len(open_rows)


def _refresh_cache(
    s: Session, complaints: pd.DataFrame, clocks: Any, as_of: datetime, summary: EscalationSummary
) -> None:
    """Write the SLA columns only where they changed, so a quiet run writes almost nothing."""
    fr, res = clocks.clocks["first_response"], clocks.clocks["resolution"]
    state = overall_states(fr.state, res.state)
    summary.states = {str(k): int(v) for k, v in pd.Series(state).value_counts().items()}

    def stored_seconds(column: str) -> npt.NDArray[np.int64]:
        values = complaints[column].to_numpy(dtype=object)
        missing = pd.isna(values)
        out = np.where(missing, 0, values).astype(np.int64)
        out[missing] = NEVER
        return out

    def differs(new: npt.NDArray[Any], column: str) -> npt.NDArray[np.bool_]:
        return np.asarray(new, dtype=object) != complaints[column].to_numpy(dtype=object)

    changed = (
        (fr.due != stored_seconds("response_due_s"))
        | (res.due != stored_seconds("resolution_due_s"))
        | differs(fr.state, "response_state")
        | differs(res.state, "resolution_state")
        | differs(state, "sla_state")
    )
    idx = np.flatnonzero(changed)
    if not idx.size:
        return
    ids = complaints["complaint_id"].to_numpy()[idx]
    resp_due, res_due = naive_instants(fr.due[idx]), naive_instants(res.due[idx])
    stamp = utc_naive(as_of)
    records = [
        {
            "b_id": int(i),
            "response_due_at": a,
            "resolution_due_at": b,
            "response_state": rs,
            "resolution_state": ss,
            "sla_state": st,
            "sla_as_of": stamp,
        }
        for i, a, b, rs, ss, st in zip(
            ids,
            resp_due,
            res_due,
            fr.state[idx].tolist(),
            res.state[idx].tolist(),
            state[idx].tolist(),
            strict=True,
        )
    ]
    store.update_sla_cache(s, records)


@task(name="evaluate-escalations", cache_policy=NO_CACHE, retries=1)
def evaluate_escalations_task(as_of: datetime) -> EscalationSummary:
    ensure_schema()
    return evaluate_escalations(as_of)


@task(name="notify-escalations", cache_policy=NO_CACHE)
def notify_escalations(summary: EscalationSummary) -> EscalationSummary:
    """Email and webhook for every pending escalation; counts go into the run's summary."""
    return notify_pending(
        summary, "escalations", store.ESCALATIONS, escalation_email, escalation_message
    )


@task(name="publish-escalation-summary", cache_policy=NO_CACHE)
def publish_escalation_summary(summary: EscalationSummary) -> None:
    """Numbers only: complaint ids and people stay in the database, not in the UI."""
    table: list[dict[str, Any]] = [
        {"measure": "as of (UTC)", "value": summary.as_of.astimezone(UTC).isoformat()},
        {"measure": "complaints evaluated", "value": summary.evaluated},
        {"measure": "open", "value": summary.open},
        {"measure": "owners assigned", "value": summary.owners_assigned},
        {"measure": "escalations due", "value": summary.escalations_due},
        {"measure": "new escalations", "value": summary.new_escalations},
        {"measure": "emails sent", "value": summary.emails_sent},
        {"measure": "emails failed", "value": summary.emails_failed},
        {"measure": "webhooks delivered", "value": summary.webhooks_delivered},
        {"measure": "webhooks failed", "value": summary.webhooks_failed},
        {"measure": "notifications pending", "value": summary.pending_after},
        {"measure": "hand-overs", "value": summary.handovers},
        {"measure": "seconds", "value": summary.seconds},
    ]
    table += [{"measure": f"sla {k}", "value": v} for k, v in sorted(summary.states.items())]
    table += [
        {"measure": f"hand-over: {k}", "value": v}
        for k, v in sorted(summary.handovers_by_reason.items())
    ]
    create_table_artifact(
        key="escalate-complaints-summary",
        table=table,
        description=f"Complaint escalation at {summary.as_of.isoformat()}",
    )


# --- analysis ---------------------------------------------------------------------------


class AnalysisSummary(BaseModel):
    as_of: datetime
    since: datetime
    stats: dict[str, int]
    markdown: str


@task(name="analyze-complaints", cache_policy=NO_CACHE)
def analyze(as_of: datetime, days: int) -> AnalysisSummary:
    ensure_schema()
    policies = get_complaint_policies()
    since = as_of - timedelta(days=days)
    with session_scope() as s:
        complaints, events = store.load_analysis(s, utc_naive(since))
    if complaints.empty:
        clocks = pd.DataFrame(
            columns=[
                "first_response_state",
                "resolution_state",
                "resolution_used_min",
                "resolution_target_min",
            ]
        )
    else:
        cal = complaints["owner_id"].where(
            complaints["owner_id"].isin(list(policies.calendars)), CALENDAR_DEFAULT
        )
        batch = complaints.assign(calendar=cal)
        events = events.assign(at=pd.to_datetime(events["at"], utc=True))
        clocks = evaluate_clocks(batch, events, policies.sla, policies.calendars, as_of).to_frame()
    frame = analysis_frame(complaints, clocks)
    markdown, stats = render_report(frame, as_of, since)
    create_markdown_artifact(
        key="complaints-analysis", markdown=markdown, description="Weekly complaint analysis"
    )
    return AnalysisSummary(as_of=as_of, since=since, stats=stats, markdown=markdown)
