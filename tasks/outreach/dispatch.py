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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import requests
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from pydantic import BaseModel

from config.campaign_policy import Campaign, load_campaign
from config.inbox_policy import BounceReasonRule, load_inbox_policy
from config.settings import get_outreach_settings, get_settings
from connectors.database import outreach_store as store
from connectors.database.engine import get_engine, session_scope
from connectors.fax_gateway import FaxDocument, FaxGateway, FaxGatewayError, final_result
from connectors.send_journal import SendJournal
from connectors.smtp_sender import (
    MailSender,
    OutboxDirSender,
    OutgoingEmail,
    SendOutcome,
    SendResult,
    SmtpSender,
)
from tasks.inbox.bounces import smtp_reply_reason
from tasks.outreach.failed import failure_note
from tasks.outreach.planning import StopSignals, plan_due_steps, with_segments
from tasks.outreach.rendering import (
    Contact,
    LinkSigning,
    OutboxItem,
    RenderError,
    TemplateStore,
    render_outreach,
)
from tasks.outreach.throttles import channel_limits, ensure_limits, throttle
from tasks.outreach.windows import (
    holiday_calendar,
    next_allowed_at,
    next_attempt_at,
    recipient_zone,
    window_allows,
)

# A claimed row to the message it sends; a RenderError makes the row a permanent failure.
Renderer = Callable[[dict[str, Any]], OutgoingEmail | FaxDocument]


@lru_cache(maxsize=8)
def _templates(directory: Path) -> TemplateStore:
    return TemplateStore(directory)


def get_campaign(name: str) -> Campaign:
    """The named campaign from the campaigns folder, validated with its templates.

    A flow resolves it once, at its start, and hands the object to its tasks, so one run
    works with one version of the campaign even if the file is edited meanwhile; the cache
    serves the next run unless the file changed.
    """
    cfg = get_outreach_settings()
    path = cfg.campaigns_dir / f"{name}.yaml"
    try:
        stat = path.stat()
    except OSError:
        return load_campaign(path, cfg.templates_dir)  # says what is missing
    return _campaign_file(path, cfg.templates_dir, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _campaign_file(path: Path, templates_dir: Path, mtime_ns: int, size: int) -> Campaign:
    return load_campaign(path, templates_dir)


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


@dataclass(frozen=True)
class Refusal:
    """What an SMTP refusal during our own send means, by the inbox's bounce table."""

    action: Literal["suppress", "pause"]
    reason: str


def refusal_of(
    channel: str, result: SendResult, table: Mapping[str, BounceReasonRule]
) -> Refusal | None:
    """The same per-reason table as for bounces, applied to the server's reply.

    A permanent refusal of the address (``550 5.1.1 user unknown``) suppresses it like a
    hard bounce; a refusal of our sending host (``554 5.7.1 client host blocked``) pauses
    the sender and suppresses nobody; anything else only fails or retries that message.
    """
    if channel == "fax" or result.code is None or result.outcome is SendOutcome.SENT:
        return None
    if result.outcome not in (SendOutcome.FAILED_PERMANENT, SendOutcome.RETRY):
        return None
    reason = smtp_reply_reason(result.code, result.detail).value
    rule = table.get(reason)
    if rule is None:
        return None
    if rule.about == "sender":
        return Refusal("pause", reason)
    if rule.action == "suppress" and 500 <= result.code < 600:
        return Refusal("suppress", reason)
    return None


@lru_cache(maxsize=1)
def _bounce_table() -> Mapping[str, BounceReasonRule]:
    return load_inbox_policy().bounce_reasons


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
    suppressed_at_send: int = 0
    sender_paused: str | None = None  # why the receiving side refused our sending host

    @property
    def exhausted(self) -> bool:
        """Nothing more to do this run: no rows left, a throttle said stop, or a server
        refused our sending host."""
        return (
            self.claimed == 0
            or self.cap_reached
            or self.skipped_throttle > 0
            or self.sender_paused is not None
        )


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
    fax_statuses_polled: int = 0
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
def ensure_throttles(campaign: Campaign) -> list[str]:
    """Create or update the per-channel rate limits this campaign's sends draw from (the
    per-domain ones are ensured as the batches meet their domains)."""
    wanted = channel_limits(campaign)
    ensure_limits(wanted)
    return sorted(wanted)


@task(name="recover-abandoned-sends", cache_policy=NO_CACHE)
def recover_abandoned(worker: str, as_of: datetime) -> int:
    """Settle the rows dead dispatchers left ``sending`` or ``claimed``, from their send
    journals; returns how many became ``unknown`` (never resent here)."""
    lease = store.DispatcherLease(worker, get_settings().data_dir)
    with session_scope() as s:
        recovery = store.mark_abandoned(s, lease, as_of)
    for path in recovery.journals:  # only now that what they proved is committed
        path.unlink(missing_ok=True)
    return recovery.unknown


@task(name="poll-fax-statuses", cache_policy=NO_CACHE)
def poll_fax_statuses() -> int:
    """Ask the gateway about faxes whose final status never came back; returns how many
    got one.

    Callbacks are the normal path; a callback lost while our web service was down would
    otherwise leave a fax ``sent`` with no final word, and a busy line never retried.
    """
    settings, own = get_settings(), get_outreach_settings()
    if not settings.fax.base_url:
        return 0
    sent_before = datetime.now(UTC) - timedelta(minutes=own.fax_poll_after_minutes)
    with session_scope() as s:
        waiting = store.faxes_awaiting_status(s, sent_before, own.batch_size)
    settled = 0
    with requests.Session() as http:
        gateway = FaxGateway.from_settings(settings.fax, http)
        for outbox_id, fax_id in waiting:
            try:
                record = gateway.get_status(fax_id)
            except FaxGatewayError as exc:
                get_run_logger().warning(
                    "fax %s: status not read, asked again next run: %s", fax_id, exc
                )
                continue
            if final_result(outbox_id, record) is None:
                continue  # still in flight
            with session_scope() as s:
                store.record_fax_status(s, outbox_id, record)
            settled += 1
    return settled


@task(name="plan-campaign", cache_policy=NO_CACHE, retries=2)
def plan_campaign(campaign: Campaign, as_of: datetime) -> tuple[int, dict[str, int]]:
    """Insert the due steps into the outbox; replanning inserts nothing twice."""
    if campaign.planning == "enqueued":
        return 0, {}
    with session_scope() as s:
        inputs = store.load_planning_inputs(s, campaign.name)
        plan = plan_due_steps(
            campaign,
            _audience_contacts(inputs, campaign),
            inputs.progress,
            _signals(inputs),
            as_of,
            default_region=get_settings().default_region,
        )
        inserted = store.insert_planned(s, plan.rows)
    counts = {k: v for k, v in plan.counts.items() if k != "planned"}
    return inserted, counts


def _audience_contacts(inputs: store.PlanningInputs, campaign: Campaign) -> list[dict[str, Any]]:
    if not campaign.audience.segments:
        return inputs.contacts
    from tasks.scoring.pipeline import (
        get_scoring_policy,  # the scorecard holds the industry keywords
    )

    return with_segments(inputs.contacts, get_scoring_policy().audience)


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
        store.claim_rows(s, worker, [r["id"] for r in sending], now)
    out.suppressed = len(suppressed)
    out.skipped_window = len(deferred)
    return sending


def _release(rows: Sequence[dict[str, Any]], worker: str, as_of: datetime) -> None:
    with session_scope() as s:
        store.release_claims(s, worker, [r["id"] for r in rows], as_of)


def _mail_sender() -> MailSender:
    if get_outreach_settings().mail_transport == "directory":
        return OutboxDirSender(get_settings().data_dir / "outbox-mail")
    return SmtpSender(get_settings().smtp)


class _RenderAhead:
    """The batch's rows with their rendered messages, one at a time, able to render the
    next one early: during the wait for the server's verdict on the current one.

    A row that cannot be rendered comes with a permanent failure saying why instead.
    ``prepare`` never raises (it runs inside an SMTP exchange); an unexpected error is
    raised when its row is reached.
    """

    def __init__(
        self, rows: Sequence[dict[str, Any]], campaign: Campaign, render: Renderer | None = None
    ) -> None:
        self._rows = iter(rows)
        if render is None:
            links = LinkSigning.from_settings(get_settings())
            templates = _templates(get_outreach_settings().templates_dir)

            def render(row: dict[str, Any]) -> OutgoingEmail | FaxDocument:
                return render_row(row, campaign, links, templates)

        self._render = render
        self._ready: tuple[dict[str, Any], Any] | None = None

    def __iter__(self) -> _RenderAhead:
        return self

    def __next__(self) -> tuple[dict[str, Any], OutgoingEmail | FaxDocument | SendResult]:
        if self._ready is None:
            self.prepare()
        if self._ready is None:
            raise StopIteration
        (row, rendered), self._ready = self._ready, None
        if isinstance(rendered, BaseException):
            raise rendered
        return row, rendered

    def prepare(self) -> None:
        if self._ready is not None:
            return
        row = next(self._rows, None)
        if row is None:
            return
        rendered: Any
        try:
            rendered = self._render(row)
        except RenderError as exc:
            rendered = SendResult(row["id"], SendOutcome.FAILED_PERMANENT, detail=f"render: {exc}")
        except Exception as exc:
            rendered = exc
        self._ready = (row, rendered)


class _Channels:
    """The batch's senders, opened on first use: one SMTP connection, one HTTP session."""

    def __init__(self) -> None:
        self._mail: MailSender | None = None
        self._http: requests.Session | None = None
        self._fax: FaxGateway | None = None

    def send(
        self,
        row: dict[str, Any],
        message: OutgoingEmail | FaxDocument,
        while_waiting: Callable[[], None] | None = None,
    ) -> SendResult:
        if isinstance(message, OutgoingEmail):
            if self._mail is None:
                self._mail = _mail_sender()
            return self._mail.send([message], while_waiting)[0]
        settings = get_settings()
        if not settings.fax.base_url:
            return SendResult(row["id"], SendOutcome.RETRY, detail="fax gateway not configured")
        if self._fax is None:
            self._http = requests.Session()
            self._fax = FaxGateway.from_settings(settings.fax, self._http)
        callback = f"{settings.public_base_url.rstrip('/')}/callbacks/fax"
        # The row was read before begin_sends counted this attempt; > 1 makes the gateway
        # look up our tag before sending again.
        return self._fax.send(message, callback_url=callback, attempt=row["attempts"] + 1)

    def close(self) -> None:
        if isinstance(self._mail, SmtpSender):
            self._mail.close()
        if self._http is not None:
            self._http.close()


def _send_journaled(
    rows: list[dict[str, Any]],
    campaign: Campaign,
    worker: str,
    as_of: datetime,
    record: Callable[[dict[str, Any], SendResult, str | None], dict[str, Any]],
    stop: Callable[[], bool] | None = None,
    render: Renderer | None = None,
) -> None:
    """Render and send a batch with one commit before it and one after it.

    All rows go ``sending`` in the first commit; each send is bracketed by two journal
    appends (started, result) and the results reach the database in the second commit,
    so a crash at any instant still leaves at most one row whose fate is unknown (see
    ``connectors.send_journal``). Each message is rendered while the server digests the
    one before. If the loop is interrupted, what is known is recorded before the error
    propagates: results as results, the interrupted send as ``unknown``, rows not yet
    started back in the queue. A row whose claim was taken away (never expected) is not
    sent. Once ``stop()`` says so (a server refused our sending host), the rows not yet
    sent go back to the queue the same way.
    """
    engine = get_engine()
    # Opened first: a journal without a row's "started" is the proof it never went out,
    # and a missing journal proves nothing, so it must exist before any row is sending.
    journal = SendJournal(store.DispatcherLease(worker, get_settings().data_dir).journal_path())
    journal.open()
    try:
        with engine.begin() as conn:
            ours = store.begin_sends(conn, worker, [row["id"] for row in rows], as_of)
    except BaseException:
        journal.close()  # kept: whether or not that commit landed, recovery reads it
        raise
    channels = _Channels()
    results: list[dict[str, Any]] = []
    settled: set[int] = set()
    in_flight: dict[str, Any] | None = None
    ahead = _RenderAhead([row for row in rows if row["id"] in ours], campaign, render)
    try:
        for row, message in ahead:
            if stop is not None and stop():
                break
            settled.add(row["id"])
            if isinstance(message, SendResult):  # not renderable: nothing goes out
                result, envelope = message, None
            else:
                journal.started(row["id"])
                in_flight = row
                result = channels.send(row, message, ahead.prepare)
                envelope = message.envelope_from if isinstance(message, OutgoingEmail) else None
            update = record(row, result, envelope)
            journal.finished(update)
            results.append(update)
            in_flight = None
    finally:
        channels.close()
        if in_flight is not None:
            interrupted = SendResult(
                in_flight["id"], SendOutcome.UNKNOWN, detail="dispatch interrupted during the send"
            )
            results.append(record(in_flight, interrupted, None))
        with engine.begin() as conn:
            store.finish_sends(conn, worker, results)
            store.requeue_unsent(conn, worker, sorted(ours - settled), as_of)
        journal.discard()


@task(name="dispatch-batch", cache_policy=NO_CACHE)
def dispatch_batch(
    campaign: Campaign,
    as_of: datetime,
    worker: str,
    batch_size: int,
    render: Renderer | None = None,
) -> BatchResult:
    """Claim one batch, send it under the throttles, and record every outcome.

    ``render`` turns a claimed row into its message when the campaign's templates do not
    (a talk proposal is built from the talk, not from a step's template).
    """
    out = BatchResult()
    rows = _claim(campaign, as_of, worker, batch_size, out)
    if not rows:
        return out
    rows, held = throttle(rows, campaign, get_outreach_settings().throttle_wait_seconds)
    if held:
        _release(held, worker, as_of)
        out.skipped_throttle = len(held)
    rng = random.Random()
    by_id = {r["id"]: r for r in rows}
    outcomes: list[tuple[SendResult, dict[str, Any]]] = []
    refused: list[tuple[dict[str, Any], Refusal, SendResult]] = []

    def record(row: dict[str, Any], result: SendResult, envelope: str | None) -> dict[str, Any]:
        row = {**row, "attempts": row["attempts"] + 1}
        refusal = refusal_of(row["channel"], result, _bounce_table())
        if refusal is not None:
            refused.append((row, refusal, result))
            if refusal.action == "pause":  # our host's fault: this message waits, unblamed
                result = replace(
                    result,
                    outcome=SendOutcome.RETRY,
                    detail=f"sender paused ({refusal.reason}): {result.detail}",
                )
        update = outcome_update(row, result, as_of, campaign, rng, envelope)
        outcomes.append((result, update))
        return update

    def sender_refused() -> bool:
        return any(r.action == "pause" for _, r, _ in refused)

    if rows:
        _send_journaled(rows, campaign, worker, as_of, record, sender_refused, render)
        _act_on_refusals(campaign, refused, out)
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


def _act_on_refusals(
    campaign: Campaign,
    refused: Sequence[tuple[dict[str, Any], Refusal, SendResult]],
    out: BatchResult,
) -> None:
    """Suppress addresses the server refused for good; pause and alert on our host."""
    entries = [
        {
            "channel": "email",
            "address": row["recipient"].lower(),
            "reason": "hard_bounce",
            "source": "smtp",
            "contact_id": row["contact_id"],
        }
        for row, refusal, _ in refused
        if refusal.action == "suppress"
    ]
    if entries:
        with session_scope() as s:
            out.suppressed_at_send = store.suppress(s, entries)
    paused = [(refusal, result) for _, refusal, result in refused if refusal.action == "pause"]
    if not paused:
        return
    refusal, result = paused[0]
    sender = str(campaign.sender.from_address)
    out.sender_paused = f"{refusal.reason}: smtp {result.code} {result.detail[:200]}"
    get_run_logger().warning(
        "campaign %s: the receiving server refused our sending host (%s); sender %s paused "
        "for this run, the rest of the batch deferred, nobody suppressed",
        campaign.name,
        out.sender_paused,
        sender,
    )
    emit_event(
        event=f"{EVENT_PREFIX}.sender-paused",
        resource={"prefect.resource.id": f"accountflow.sender.{sender}"},
        related=[
            {
                "prefect.resource.id": f"accountflow.campaign.{campaign.name}",
                "prefect.resource.role": "campaign",
            }
        ],
        payload={"reason": refusal.reason, "code": result.code, "detail": result.detail[:500]},
    )


@task(name="preview-campaign", cache_policy=NO_CACHE)
def preview_campaign(campaign: Campaign, as_of: datetime) -> DispatchSummary:
    """Dry run: plan and render everything due, write previews, send and store nothing."""
    settings = get_settings()
    summary = DispatchSummary(campaign=campaign.name, as_of=as_of, dry_run=True)
    folder = settings.data_dir.resolve() / "previews" / campaign.name / f"{as_of:%Y%m%dT%H%M%S}"
    with session_scope() as s:
        inputs = store.load_planning_inputs(s, campaign.name)
        contacts = _audience_contacts(inputs, campaign)
        plan = plan_due_steps(
            campaign, contacts, inputs.progress, _signals(inputs), as_of,
            default_region=settings.default_region,
        )  # fmt: skip
        existing = store.due_rows(s, campaign.name, as_of)
        people = {c["contact_id"]: c for c in contacts}
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
        {"measure": "fax final statuses polled", "value": summary.fax_statuses_polled},
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


def attempted(summary: DispatchSummary) -> int:
    """Messages the run tried to send (whatever became of them)."""
    return summary.sent + summary.retried + summary.failed + summary.unknown


def dispatch_note(summary: DispatchSummary) -> str | None:
    """What went wrong in the run, for its final state ("6 of 13 failed: 4 x 550, 2 x 554");
    None when nothing did."""
    if summary.dry_run:
        return None
    return failure_note(
        attempted(summary),
        summary.failed,
        summary.unknown + summary.recovered_unknown,
        summary.retried,
        summary.failed_by_reason,
    )


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
    logger = get_run_logger()
    if not summary.dry_run:
        # One warning per reason, so a run's log says what went wrong, not only how much.
        for reason, count in sorted(summary.failed_by_reason.items()):
            logger.warning(
                "campaign %s: %s of %s message(s) failed with %s",
                summary.campaign,
                count,
                attempted(summary),
                reason,
            )
        if summary.unknown + summary.recovered_unknown:
            logger.warning(
                "campaign %s: %s message(s) may have arrived (send outcome unknown); review"
                " them before a redrive (`accountflow outreach failed`)",
                summary.campaign,
                summary.unknown + summary.recovered_unknown,
            )
        if summary.retried:
            logger.warning(
                "campaign %s: %s message(s) deferred by a temporary failure, retried later",
                summary.campaign,
                summary.retried,
            )
    logger.info(
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
