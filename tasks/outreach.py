"""Prefect tasks of campaign dispatch: plan, claim, throttle, send, record, report.

The thinking is pure and lives in ``campaign_planning`` (who is due) and in the small
functions here that map a send result onto the row's next state; the tasks around them do
the IO in the order the at-most-once protocol needs: claim and commit ``sending``, then
send, then write the results under the same claim.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import requests
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.campaign_policy import CAMPAIGNS_DIR, TEMPLATES_DIR, Campaign, Channel, load_campaign
from config.settings import get_settings
from connectors.database import outbox_store as store
from connectors.database.engine import get_engine, session_scope
from connectors.fax_gateway import FaxDocument, FaxGateway
from connectors.smtp_sender import (
    MailSender,
    OutboxDirSender,
    OutgoingEmail,
    SendOutcome,
    SendResult,
    SmtpSender,
)
from tasks.campaign_planning import StopSignals, plan_due_steps
from tasks.message_rendering import (
    Contact,
    LinkSigning,
    OutboxItem,
    RenderError,
    TemplateStore,
    render_outreach,
)
from tasks.send_windows import (
    holiday_calendar,
    next_allowed_at,
    next_attempt_at,
    recipient_zone,
    window_allows,
)


class OutreachSettings(BaseSettings):
    """Outreach knobs, from ``ACCOUNTFLOW_OUTREACH_*`` (candidates for config.settings)."""

    model_config = SettingsConfigDict(
        env_prefix="ACCOUNTFLOW_OUTREACH_", env_file=".env", extra="ignore"
    )

    campaigns_dir: Path = CAMPAIGNS_DIR
    templates_dir: Path = TEMPLATES_DIR
    # "directory" writes .eml files under the data dir instead of talking SMTP (demo).
    mail_transport: Literal["smtp", "directory"] = "smtp"
    batch_size: int = 200
    # How long a batch waits for a Prefect rate-limit slot before leaving rows for later.
    throttle_wait_seconds: float = 30.0
    # Failure share of a run above which an event for the alerting automation is emitted.
    failure_rate_alert: float = 0.2
    # Prefect notification block ("type-slug/name") the alerting automations notify.
    alert_block: str | None = None


@lru_cache
def get_outreach_settings() -> OutreachSettings:
    return OutreachSettings()


@lru_cache(maxsize=8)
def _templates(directory: Path) -> TemplateStore:
    return TemplateStore(directory)


def get_campaign(name: str) -> Campaign:
    """The named campaign from the campaigns folder, validated with its templates."""
    cfg = get_outreach_settings()
    return load_campaign(cfg.campaigns_dir / f"{name}.yaml", cfg.templates_dir)


def limit_names(channel: str) -> str:
    """The Prefect rate limit a channel's sends draw from (invitations are emails)."""
    return "outreach-fax" if channel == Channel.FAX.value else "outreach-email"


# ------------------------------------------------------------------------- pure helpers


def failure_reason(channel: str, code: int | None, detail: str) -> str:
    """A short, countable reason: the protocol code, else the kind of failure."""
    if code is not None:
        return f"{'http' if channel == 'fax' else 'smtp'} {code}"
    head = (detail or "unspecified").split(":", 1)[0].strip()
    return head[:48] or "unspecified"


def outcome_update(
    row: dict[str, Any],
    result: SendResult,
    now: datetime,
    campaign: Campaign,
    rng: random.Random,
    envelope_from: str | None = None,
) -> dict[str, Any]:
    """The columns a send result sets on its outbox row (same keys for every outcome).

    A retry past ``max_attempts`` becomes a permanent failure saying so; a retry time
    is pushed into the recipient's next open send window.
    """
    now_naive = now.astimezone(UTC).replace(tzinfo=None)
    status = result.outcome.value
    detail = result.detail[:2000]
    retry_at: datetime | None = None
    if result.outcome is SendOutcome.RETRY:
        if row["attempts"] >= campaign.max_attempts:
            status = SendOutcome.FAILED_PERMANENT.value
            detail = f"gave up after {row['attempts']} attempts: {detail}"[:2000]
        else:
            candidate = next_attempt_at(
                now,
                row["attempts"],
                base=campaign.retry_base,
                cap=campaign.retry_cap,
                rng=rng,
            )
            zone = recipient_zone(row.get("timezone"), campaign.send_window)
            days = _days(row.get("country"), candidate.astimezone(zone).year)
            retry_at = (
                next_allowed_at(candidate, zone, campaign.send_window, days)
                .astimezone(UTC)
                .replace(tzinfo=None)
            )
    return {
        "b_id": row["id"],
        "status": status,
        "sent_at": now_naive if result.outcome is SendOutcome.SENT else None,
        "next_attempt_at": retry_at,
        "provider_id": result.provider_id,
        "last_code": result.code,
        "last_detail": detail,
        "envelope_from": envelope_from,
        "updated_at": now_naive,
    }


@lru_cache(maxsize=256)
def _days(country: str | None, year: int) -> frozenset[date]:
    return holiday_calendar(country, [year - 1, year, year + 1])


def contact_for(row: dict[str, Any]) -> Contact:
    full_name = row.get("full_name") or row.get("first_name") or ""
    return Contact(
        contact_id=row["contact_id"],
        full_name=full_name,
        email=row["recipient"] if row["channel"] != "fax" else row.get("email"),
        first_name=row.get("first_name") or "",
        company=row.get("company") or "",
        language=row.get("language"),
        fax=row["recipient"] if row["channel"] == "fax" else row.get("fax"),
        country=row.get("country"),
    )


def render_row(
    row: dict[str, Any], campaign: Campaign, links: LinkSigning, templates: TemplateStore
) -> OutgoingEmail | FaxDocument:
    step = campaign.steps[row["step"]]
    item = OutboxItem(row["id"], campaign.name, step.name, row["idempotency_key"])
    return render_outreach(
        campaign,
        step,
        contact_for(row),
        item,
        date=datetime.now(UTC),
        links=links,
        templates=templates,
        default_region=get_settings().default_region,
    )


# ------------------------------------------------------------------------------ models


class BatchResult(BaseModel):
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = {}
    unknown: int = 0
    suppressed: int = 0
    skipped_window: int = 0
    skipped_throttle: int = 0
    cap_reached: bool = False
    sent_by_channel: dict[str, int] = {}

    @property
    def exhausted(self) -> bool:
        """Nothing more to do this run: no rows left, or a throttle said stop."""
        return self.claimed == 0 or self.cap_reached or self.skipped_throttle > 0


class DispatchSummary(BaseModel):
    campaign: str
    as_of: datetime
    dry_run: bool = False
    planned: int = 0
    not_planned: dict[str, int] = {}
    sent: int = 0
    retried: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = {}
    unknown: int = 0
    recovered_unknown: int = 0
    suppressed: int = 0
    skipped_window: int = 0
    skipped_throttle: int = 0
    sent_by_channel: dict[str, int] = {}
    previews: int = 0
    preview_dir: str | None = None
    batches: int = 0
    seconds: float = 0.0

    @property
    def failure_rate(self) -> float:
        attempted = self.sent + self.retried + self.failed + self.unknown
        return (self.failed + self.unknown) / attempted if attempted else 0.0

    def add(self, batch: BatchResult) -> None:
        self.batches += 1
        for name in ("sent", "retried", "failed", "unknown", "suppressed"):
            setattr(self, name, getattr(self, name) + getattr(batch, name))
        self.skipped_window += batch.skipped_window
        self.skipped_throttle += batch.skipped_throttle
        self.failed_by_reason = dict(
            Counter(self.failed_by_reason) + Counter(batch.failed_by_reason)
        )
        self.sent_by_channel = dict(Counter(self.sent_by_channel) + Counter(batch.sent_by_channel))


# ------------------------------------------------------------------------------- tasks


@task(name="ensure-outreach-throttles", cache_policy=NO_CACHE, retries=2)
def ensure_throttles(campaign_name: str) -> list[str]:
    """Create or update the Prefect rate limits this campaign's sends draw from.

    Prefect lets a call on a missing limit through (fail open), so the dispatcher creates
    them first and then acquires with ``strict=True``.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    throttles = get_campaign(campaign_name).throttles
    wanted = {
        "outreach-email": throttles.global_per_minute,
        "outreach-fax": throttles.fax_per_minute,
    }
    with get_client(sync_client=True) as client:
        for name, per_minute in wanted.items():
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
    return sorted(wanted)


@task(name="recover-abandoned-sends", cache_policy=NO_CACHE)
def recover_abandoned(worker: str, as_of: datetime) -> int:
    """Rows a dead dispatcher left ``sending`` become ``unknown`` (never resent here)."""
    lease = store.DispatcherLease(worker, get_settings().data_dir)
    with session_scope() as s:
        return store.mark_abandoned(s, lease, as_of)


@task(name="plan-campaign", cache_policy=NO_CACHE, retries=2)
def plan_campaign(campaign_name: str, as_of: datetime) -> tuple[int, dict[str, int]]:
    """Insert the due steps into the outbox; replanning inserts nothing twice."""
    campaign = get_campaign(campaign_name)
    with session_scope() as s:
        inputs = store.load_planning_inputs(s, campaign.name)
        plan = plan_due_steps(
            campaign,
            inputs.contacts,
            inputs.progress,
            _signals(inputs),
            as_of,
            default_region=get_settings().default_region,
        )
        inserted = store.insert_planned(s, plan.rows)
    counts = {k: v for k, v in plan.counts.items() if k != "planned"}
    return inserted, counts


def _signals(inputs: store.PlanningInputs) -> StopSignals:
    return StopSignals(
        last_reply_at=inputs.last_reply_at,
        suppression_reasons=inputs.suppression_reasons,
        open_complaints=inputs.open_complaints,
        contacted_elsewhere=inputs.contacted_elsewhere,
    )


def _claim(
    campaign: Campaign, as_of: datetime, worker: str, batch_size: int, out: BatchResult
) -> list[dict[str, Any]]:
    """Lock due rows, settle suppressed and out-of-window ones, and reserve the rest for
    this worker (``claimed``), committed before anything is sent."""
    sender = str(campaign.sender.from_address)
    now = as_of.astimezone(UTC).replace(tzinfo=None)
    with session_scope() as s:
        store.lock_sender(s, sender)
        room = campaign.throttles.daily_cap_per_sender - store.sent_today(
            s, sender, store.day_start(as_of)
        )
        if room <= 0:
            out.cap_reached = True
            out.skipped_throttle += store.count_due(s, campaign.name, as_of)
            return []
        rows = store.lock_due_rows(s, campaign.name, as_of, min(batch_size, room))
        out.claimed = len(rows)
        suppressed = store.suppressed_among(s, rows)
        updates: list[dict[str, Any]] = []
        sending: list[dict[str, Any]] = []
        deferred: list[dict[str, Any]] = []
        window = campaign.send_window
        for row in rows:
            if row["id"] in suppressed:
                updates.append(
                    {"b_id": row["id"], "status": "suppressed",
                     "last_detail": f"suppressed: {suppressed[row['id']]}",
                     "next_attempt_at": None, "updated_at": now}
                )  # fmt: skip
                continue
            zone = recipient_zone(row["timezone"], window)
            days = _days(row["country"], as_of.astimezone(zone).year)
            if not window_allows(as_of, zone, window, days):
                opens = next_allowed_at(as_of, zone, window, days)
                deferred.append(
                    {"b_id": row["id"],
                     "next_attempt_at": opens.astimezone(UTC).replace(tzinfo=None),
                     "updated_at": now}
                )  # fmt: skip
                continue
            sending.append(row)
        store.mark_rows(s, updates)
        store.mark_rows(s, deferred)
        store.mark_rows(
            s,
            [
                {"b_id": r["id"], "status": "claimed", "claimed_by": worker,
                 "claimed_at": now, "updated_at": now}
                for r in sending
            ],
        )  # fmt: skip
    out.suppressed = len(suppressed)
    out.skipped_window = len(deferred)
    return sending


def _throttle(
    rows: list[dict[str, Any]], campaign: Campaign
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Take Prefect rate-limit slots per channel; rows that get none wait for a later run."""
    from prefect.concurrency.sync import rate_limit

    wait = get_outreach_settings().throttle_wait_seconds
    allowed: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    limits = {
        "outreach-email": campaign.throttles.global_per_minute,
        "outreach-fax": campaign.throttles.fax_per_minute,
    }
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(limit_names(row["channel"]), []).append(row)
    for name, group in groups.items():
        # A rate limit never grants more than its size at once: take slots in chunks.
        step = max(1, limits[name])
        for start in range(0, len(group), step):
            chunk = group[start : start + step]
            try:
                rate_limit(name, occupy=len(chunk), timeout_seconds=wait, strict=True)
            except TimeoutError:
                held.extend(group[start:])
                break
            allowed.extend(chunk)
    return allowed, held


def _release(rows: Sequence[dict[str, Any]], worker: str, as_of: datetime) -> None:
    with session_scope() as s:
        store.release_claims(s, worker, [r["id"] for r in rows], as_of)


def _mail_sender() -> MailSender:
    if get_outreach_settings().mail_transport == "directory":
        return OutboxDirSender(get_settings().data_dir / "outbox-mail")
    return SmtpSender(get_settings().smtp)


def _render_all(
    rows: list[dict[str, Any]], campaign: Campaign
) -> tuple[list[tuple[dict[str, Any], OutgoingEmail | FaxDocument]], list[SendResult]]:
    """Render every row first; a row that cannot be rendered fails for good, with why."""
    links = LinkSigning.from_settings(get_settings())
    templates = _templates(get_outreach_settings().templates_dir)
    ready: list[tuple[dict[str, Any], OutgoingEmail | FaxDocument]] = []
    failed: list[SendResult] = []
    for row in rows:
        try:
            ready.append((row, render_row(row, campaign, links, templates)))
        except RenderError as exc:
            failed.append(
                SendResult(row["id"], SendOutcome.FAILED_PERMANENT, detail=f"render: {exc}")
            )
    return ready, failed


class _Channels:
    """The batch's senders, opened on first use: one SMTP connection, one HTTP session."""

    def __init__(self) -> None:
        self._mail: MailSender | None = None
        self._http: requests.Session | None = None
        self._fax: FaxGateway | None = None

    def send(self, row: dict[str, Any], message: OutgoingEmail | FaxDocument) -> SendResult:
        if isinstance(message, OutgoingEmail):
            if self._mail is None:
                self._mail = _mail_sender()
            return self._mail.send([message])[0]
        settings = get_settings()
        if not settings.fax.base_url:
            return SendResult(row["id"], SendOutcome.RETRY, detail="fax gateway not configured")
        if self._fax is None:
            self._http = requests.Session()
            self._fax = FaxGateway.from_settings(settings.fax, self._http)
        callback = f"{settings.public_base_url.rstrip('/')}/callbacks/fax"
        # attempts was incremented by begin_send; > 1 makes the gateway look up our tag.
        return self._fax.send(message, callback_url=callback, attempt=row["attempts"] + 1)

    def close(self) -> None:
        if isinstance(self._mail, SmtpSender):
            self._mail.close()
        if self._http is not None:
            self._http.close()


def _send_one_at_a_time(
    ready: list[tuple[dict[str, Any], OutgoingEmail | FaxDocument]],
    worker: str,
    as_of: datetime,
    record: Any,
) -> None:
    """Send each message with only itself marked ``sending``.

    Each commit both records the previous result and marks the next row ``sending``, so a
    crash at any instant leaves at most one row whose fate is unknown, at one commit per
    message. A row whose claim was taken away (never expected) is not sent.
    """
    channels = _Channels()
    pending: dict[str, Any] | None = None
    try:
        with get_engine().connect() as conn:
            for row, message in ready:
                with conn.begin():
                    if pending is not None:
                        store.finish_send(conn, worker, pending)
                        pending = None
                    ours = store.begin_send(conn, worker, row["id"], as_of)
                if not ours:
                    continue
                result = channels.send(row, message)
                envelope = message.envelope_from if isinstance(message, OutgoingEmail) else None
                pending = record(row, result, envelope)
            if pending is not None:
                with conn.begin():
                    store.finish_send(conn, worker, pending)
    finally:
        channels.close()


@task(name="dispatch-batch", cache_policy=NO_CACHE)
def dispatch_batch(
    campaign_name: str, as_of: datetime, worker: str, batch_size: int
) -> BatchResult:
    """Claim one batch, send it under the throttles, and record every outcome."""
    campaign = get_campaign(campaign_name)
    out = BatchResult()
    rows = _claim(campaign, as_of, worker, batch_size, out)
    if not rows:
        return out
    rows, held = _throttle(rows, campaign)
    if held:
        _release(held, worker, as_of)
        out.skipped_throttle = len(held)
    ready, unrenderable = _render_all(rows, campaign)
    rng = random.Random()
    by_id = {r["id"]: r for r in rows}
    outcomes: list[tuple[SendResult, dict[str, Any]]] = []

    def record(row: dict[str, Any], result: SendResult, envelope: str | None) -> dict[str, Any]:
        row = {**row, "attempts": row["attempts"] + 1}
        update = outcome_update(row, result, as_of, campaign, rng, envelope)
        outcomes.append((result, update))
        return update

    if unrenderable:
        with get_engine().connect() as conn:
            for result in unrenderable:
                with conn.begin():
                    if store.begin_send(conn, worker, result.outbox_id, as_of):
                        store.finish_send(
                            conn, worker, record(by_id[result.outbox_id], result, None)
                        )
    _send_one_at_a_time(ready, worker, as_of, record)
    reasons: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    for result, update in outcomes:
        row = by_id[result.outbox_id]
        match update["status"]:
            case "sent":
                out.sent += 1
                channels[row["channel"]] += 1
            case "retry":
                out.retried += 1
            case "unknown":
                out.unknown += 1
            case _:
                out.failed += 1
                reasons[failure_reason(row["channel"], result.code, update["last_detail"])] += 1
    out.failed_by_reason = dict(reasons)
    out.sent_by_channel = dict(channels)
    return out


@task(name="preview-campaign", cache_policy=NO_CACHE)
def preview_campaign(campaign_name: str, as_of: datetime) -> DispatchSummary:
    """Dry run: plan and render everything due, write previews, send and store nothing."""
    campaign = get_campaign(campaign_name)
    settings = get_settings()
    summary = DispatchSummary(campaign=campaign.name, as_of=as_of, dry_run=True)
    folder = settings.data_dir.resolve() / "previews" / campaign.name / f"{as_of:%Y%m%dT%H%M%S}"
    with session_scope() as s:
        inputs = store.load_planning_inputs(s, campaign.name)
        plan = plan_due_steps(
            campaign, inputs.contacts, inputs.progress, _signals(inputs), as_of,
            default_region=settings.default_region,
        )  # fmt: skip
        existing = store.due_rows(s, campaign.name, as_of)
        people = {c["contact_id"]: c for c in inputs.contacts}
        planned = [{**people[r["contact_id"]], **r, "id": 0} for r in plan.rows]
        rows = existing + planned
        suppressed = store.suppressed_among(s, [r for r in rows if r["id"]])
    summary.planned = len(plan.rows)
    summary.not_planned = {k: v for k, v in plan.counts.items() if k != "planned"}
    links = LinkSigning.from_settings(settings)
    templates = _templates(get_outreach_settings().templates_dir)
    folder.mkdir(parents=True, exist_ok=True)
    reasons: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    for row in rows:
        if row["id"] in suppressed:
            summary.suppressed += 1
            continue
        name = f"{row['step_name']}-{row['contact_id']}"
        try:
            rendered = render_row(row, campaign, links, templates)
        except RenderError as exc:
            reasons[failure_reason(row["channel"], None, f"render: {exc}")] += 1
            continue
        if isinstance(rendered, OutgoingEmail):
            (folder / f"{name}.eml").write_bytes(rendered.raw)
        else:
            (folder / f"{name}.pdf").write_bytes(rendered.pdf)
        channels[row["channel"]] += 1
    summary.previews = sum(channels.values())
    summary.sent_by_channel = dict(channels)
    summary.failed = sum(reasons.values())
    summary.failed_by_reason = dict(reasons)
    summary.preview_dir = str(folder)
    return summary


def summary_table(summary: DispatchSummary) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"measure": "planned", "value": summary.planned},
        {"measure": "sent", "value": summary.sent},
        {"measure": "retried", "value": summary.retried},
        {"measure": "failed", "value": summary.failed},
        {"measure": "unknown (send outcome not known)", "value": summary.unknown},
        {"measure": "unknown (dispatcher died earlier)", "value": summary.recovered_unknown},
        {"measure": "suppressed", "value": summary.suppressed},
        {"measure": "skipped by window", "value": summary.skipped_window},
        {"measure": "skipped by throttle", "value": summary.skipped_throttle},
    ]
    if summary.dry_run:
        rows.append({"measure": "previews written", "value": summary.previews})
    rows += [
        {"measure": f"failed: {k}", "value": v} for k, v in sorted(summary.failed_by_reason.items())
    ]
    rows += [
        {"measure": f"sent via {k}", "value": v} for k, v in sorted(summary.sent_by_channel.items())
    ]
    rows += [
        {"measure": f"not planned: {k}", "value": v} for k, v in sorted(summary.not_planned.items())
    ]
    return rows


EVENT_PREFIX = "accountflow.outreach"


@task(name="publish-dispatch-summary", cache_policy=NO_CACHE)
def publish_dispatch_summary(summary: DispatchSummary) -> None:
    """Table artifact for the run, and one event per failure class with its count.

    Numbers only: no addresses or names leave the database through the artifact.
    """
    create_table_artifact(
        key=f"dispatch-{summary.campaign}",
        table=summary_table(summary),
        description=f"Campaign {summary.campaign} at {summary.as_of:%Y-%m-%d %H:%M}"
        + (" (dry run)" if summary.dry_run else ""),
    )
    resource = {
        "prefect.resource.id": f"accountflow.campaign.{summary.campaign}",
        "prefect.resource.name": summary.campaign,
    }
    classes = {
        "failed": summary.failed,
        "retried": summary.retried,
        "unknown": summary.unknown + summary.recovered_unknown,
        "suppressed": summary.suppressed,
        "throttled": summary.skipped_throttle,
    }
    if not summary.dry_run:
        for name, count in classes.items():
            if count:
                emit_event(
                    event=f"{EVENT_PREFIX}.{name}",
                    resource=resource,
                    payload={"count": count, "by_reason": summary.failed_by_reason}
                    if name == "failed"
                    else {"count": count},
                )
        if summary.failure_rate > get_outreach_settings().failure_rate_alert:
            emit_event(
                event=f"{EVENT_PREFIX}.failure-rate-exceeded",
                resource=resource,
                payload={"failure_rate": round(summary.failure_rate, 3)},
            )
    get_run_logger().info(
        "campaign %s: planned %s, sent %s, retried %s, failed %s, unknown %s, suppressed %s",
        summary.campaign,
        summary.planned,
        summary.sent,
        summary.retried,
        summary.failed,
        summary.unknown + summary.recovered_unknown,
        summary.suppressed,
    )


def elapsed_since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
