"""Prefect tasks of the competitor watch: fetch and compare, announce, tell, report.

``watch_pages`` is one task for the whole batch of pages (a task run per page would cost
more than most fetches): worker threads fetch and read the pages, round-robin over hosts,
under one per-host limiter; results are saved in chunks as they come in. A page that
fails is recorded with its reason and fetched again next run; it never fails the task.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from pydantic import BaseModel

from config.competitors_policy import (
    CompetitorsPolicy,
    FetchPolicy,
    get_competitor_settings,
    get_competitors_policy,
)
from config.policy_loader import load_policy
from config.settings import get_complaint_settings, get_settings
from config.team_policy import TeamPolicy
from connectors.database import competitors_store as store
from connectors.database.base import naive_utc
from connectors.database.competitors_store import PageRecord, PageState
from connectors.database.engine import session_scope
from connectors.database.migrate import ensure_schema
from connectors.smtp_sender import MailSender, OutboxDirSender, SendOutcome, SmtpSender
from connectors.web_pages import HostRateLimiter, PageFetcher, make_session
from tasks.competitors.notices import change_email
from tasks.competitors.reporting import build_report, report_html, report_markdown
from tasks.competitors.watching import interleave_by_host, judge

POLICY_CHANGED = "competitor.policy.changed"
SAVE_CHUNK = 50
NOTIFY_BATCH = 200


class WatchSummary(BaseModel):
    as_of: datetime
    pages: int = 0
    fetched: int = 0
    not_modified: int = 0
    failed: int = 0
    blocked: int = 0
    unreadable: int = 0
    new_snapshots: int = 0
    changes: int = 0
    material_changes: int = 0
    requests: int = 0
    events_emitted: int = 0
    notified: int = 0
    notify_failed: int = 0
    notify_pending: int = 0
    email_channel: str = ""
    failures: list[dict[str, str]] = []
    change_ids: list[int] = []
    seconds: float = 0.0


def build_fetcher(fetch: FetchPolicy, limiter: HostRateLimiter | None = None) -> PageFetcher:
    """The fetcher the policy describes (a limiter per run unless one is given)."""
    limiter = limiter or HostRateLimiter(fetch.requests_per_host_per_minute, 60.0)
    session = make_session(
        fetch.user_agent,
        retries=fetch.retries,
        backoff_factor=fetch.backoff_factor,
        max_redirects=fetch.max_redirects,
        limiter=limiter,
        pool_size=max(fetch.workers, 10),
    )
    return PageFetcher(
        session=session,
        limiter=limiter,
        user_agent=fetch.user_agent,
        connect_timeout=fetch.connect_timeout_seconds,
        read_timeout=fetch.read_timeout_seconds,
        total_timeout=fetch.total_timeout_seconds,
        max_bytes=fetch.max_bytes,
        max_redirects=fetch.max_redirects,
    )


def _count(summary: WatchSummary, record: PageRecord, url: str) -> None:
    field = {"fetched": "fetched", "not_modified": "not_modified", "blocked": "blocked"}.get(
        record.outcome, "unreadable" if record.outcome == "unreadable" else "failed"
    )
    setattr(summary, field, getattr(summary, field) + 1)
    if record.outcome not in ("fetched", "not_modified"):
        summary.failures.append({"url": url, "reason": record.reason or record.outcome})
    if record.snapshot is not None:
        summary.new_snapshots += 1
    if record.change is not None:
        summary.changes += 1
        summary.material_changes += bool(record.change["material"])


def watch(
    policy: CompetitorsPolicy, as_of: datetime, fetcher: PageFetcher | None = None
) -> WatchSummary:
    """Fetch every watched page once and save what changed (see module docstring)."""
    started = time.perf_counter()
    run_at = naive_utc(as_of)
    pages = [
        {
            "competitor_id": c.id,
            "url": p.url,
            "label": p.label,
            "points": [x.value for x in p.points],
        }
        for c in policy.competitors
        for p in c.pages
    ]
    with session_scope() as s:
        store.sync_pages(s, pages)
        states = store.active_pages(s)
    fetcher = fetcher or build_fetcher(policy.fetch)
    summary = WatchSummary(as_of=as_of, pages=len(states))

    def one(page: PageState) -> tuple[PageState, PageRecord]:
        try:
            return page, judge(page, fetcher.fetch(page.url, page.etag, page.last_modified))
        except Exception as exc:  # a defect on one page must not cost the others
            reason = f"internal error: {exc.__class__.__name__}: {str(exc)[:200]}"
            return page, PageRecord(
                page.id, page.competitor_id, "failed", None, reason, None, page.etag,
                page.last_modified, previous_snapshot_id=page.snapshot_id,
            )  # fmt: skip

    pending: list[PageRecord] = []

    def save() -> None:
        with session_scope() as s:
            summary.change_ids += store.record_results(s, run_at, pending)
        pending.clear()

    with ThreadPoolExecutor(max_workers=policy.fetch.workers) as pool:
        for page, record in pool.map(one, interleave_by_host(states)):
            _count(summary, record, page.url)
            pending.append(record)
            if len(pending) >= SAVE_CHUNK:
                save()
    if pending:
        save()
    summary.requests = fetcher.requests_made
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


@task(name="watch-competitor-pages", cache_policy=NO_CACHE, retries=1)
def watch_pages(as_of: datetime) -> WatchSummary:
    ensure_schema()
    summary = watch(get_competitors_policy(), as_of)
    if summary.failures:
        get_run_logger().warning(
            "%s of %s pages not read this run (tried again next run)",
            len(summary.failures),
            summary.pages,
        )
    return summary


@task(name="announce-competitor-changes", cache_policy=NO_CACHE)
def announce_changes(summary: WatchSummary) -> WatchSummary:
    """A ``competitor.policy.changed`` event per material change not yet announced.

    The event id derives from the change id, so a retried emission is the same event.
    """
    with session_scope() as s:
        changes = store.unannounced_changes(s)
    names = get_competitors_policy().by_id()
    for change in changes:
        competitor = names.get(change["competitor_id"])
        emit_event(
            event=POLICY_CHANGED,
            resource={
                "prefect.resource.id": f"accountflow.competitor.{change['competitor_id']}",
                "prefect.resource.role": "competitor",
                "prefect.resource.name": competitor.name if competitor else change["competitor_id"],
            },
            payload={
                "change_id": change["id"],
                "url": change["url"],
                "points": change["points"],
                "summary": change["summary"],
                "details": change["details"],
            },
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"accountflow:competitor_changes:{change['id']}"),
        )
    with session_scope() as s:
        store.mark_announced(s, [c["id"] for c in changes], naive_utc(datetime.now(UTC)))
    return summary.model_copy(update={"events_emitted": len(changes)})


def team_policy() -> TeamPolicy:
    """The team told about changes: our own file, else the complaints' team file."""
    path = (
        get_competitor_settings().team_file
        or get_complaint_settings().team_file
        or get_settings().config_dir / "team.yaml"
    )
    return load_policy(path, TeamPolicy)


def email_channel() -> str:
    mode = get_competitor_settings().email
    if mode == "auto":
        return "smtp" if "smtp" in get_settings().model_fields_set else "dir"
    return mode


@contextmanager
def mail_sender(channel: str) -> Iterator[MailSender]:
    settings, own = get_settings(), get_competitor_settings()
    if channel == "smtp":
        sender = SmtpSender(settings.smtp)
        try:
            yield sender
        finally:
            sender.close()
        return
    yield OutboxDirSender(Path(own.outbox_dir or settings.data_dir / "outbox" / "competitors"))


@dataclass
class _Told:
    sent: int = 0
    failed: int = 0


_STATE_OF: dict[SendOutcome, str] = {
    SendOutcome.SENT: "sent",
    SendOutcome.FAILED_PERMANENT: "failed",
    SendOutcome.RETRY: "pending",
    SendOutcome.UNKNOWN: "unknown",  # may have gone out: never resent by a machine
}


def notify(channel: str, now: datetime, send: Callable[[str], Any] = mail_sender) -> _Told:
    """Mail each pending material change; a row is ``sending`` (committed) before the send."""
    told = _Told()
    if channel == "off":
        with session_scope() as s:
            rows = store.claim_notifications(s, 10**6)
            store.record_notifications(s, [{"id": r["id"], "state": "skipped"} for r in rows], now)
        return told
    team, own = team_policy(), get_competitor_settings()
    names = {c.id: c.name for c in get_competitors_policy().competitors}
    with send(channel) as sender:
        while True:
            with session_scope() as s:
                claimed = store.claim_notifications(s, NOTIFY_BATCH)
            if not claimed:
                break
            results: list[dict[str, Any]] = []
            messages = []
            for row in claimed:
                name = names.get(row["competitor_id"], row["competitor_id"])
                mail = change_email(row, name, team, own.email_from, now)
                if mail is None:
                    results.append({"id": row["id"], "state": "skipped", "error": "no address"})
                else:
                    messages.append(mail)
            for r in sender.send(messages):
                state = _STATE_OF[r.outcome]
                told.sent += state == "sent"
                told.failed += state != "sent"
                results.append({"id": r.outbox_id, "state": state, "error": r.detail[:500] or None})
            with session_scope() as s:
                store.record_notifications(s, results, naive_utc(now))
            if any(r["state"] == "pending" for r in results):
                break  # the server is unwell: the rest wait for the next run
    return told


@task(name="notify-competitor-changes", cache_policy=NO_CACHE)
def notify_changes(summary: WatchSummary) -> WatchSummary:
    channel = email_channel()
    told = notify(channel, datetime.now(UTC))
    with session_scope() as s:
        pending = store.pending_notifications(s)
    return summary.model_copy(
        update={
            "notified": told.sent,
            "notify_failed": told.failed,
            "notify_pending": pending,
            "email_channel": channel,
        }
    )


@task(name="publish-competitor-watch", cache_policy=NO_CACHE)
def publish_watch_summary(summary: WatchSummary) -> None:
    """Numbers and the pages not read (URLs are public; no person is named)."""
    table: list[dict[str, Any]] = [
        {"measure": k.replace("_", " "), "value": getattr(summary, k)}
        for k in (
            "pages", "fetched", "not_modified", "failed", "blocked", "unreadable",
            "new_snapshots", "changes", "material_changes", "requests", "events_emitted",
            "notified", "notify_failed", "notify_pending", "seconds",
        )
    ]  # fmt: skip
    table += [{"measure": f"not read: {f['url']}", "value": f["reason"]} for f in summary.failures]
    create_table_artifact(
        key="competitor-watch",
        table=table,
        description=f"Competitor pages watched at {summary.as_of.isoformat()}",
    )


class CompetitorReportSummary(BaseModel):
    as_of: datetime
    since: datetime
    changes: int
    material_changes: int
    faults: int
    html_path: str
    markdown: str


@task(name="build-competitor-report", cache_policy=NO_CACHE)
def build_competitor_report(as_of: datetime, days: int) -> CompetitorReportSummary:
    """The period's report; the HTML goes under the data dir's reports folder."""
    ensure_schema()
    since = as_of - timedelta(days=days)
    with session_scope() as s:
        pages = store.current_texts(s)
        changes = store.changes_between(s, naive_utc(since), naive_utc(as_of))
    report = build_report(get_competitors_policy(), pages, changes, as_of, since)
    folder = get_settings().data_dir.resolve() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"competitors-{as_of:%Y%m%dT%H%M%S}.html"
    path.write_text(report_html(report), encoding="utf-8")
    return CompetitorReportSummary(
        as_of=as_of,
        since=since,
        changes=len(report.changes),
        material_changes=len(report.material),
        faults=len(report.faults),
        html_path=str(path),
        markdown=report_markdown(report, html_link=path.as_uri()),
    )


@task(name="publish-competitor-report", cache_policy=NO_CACHE)
def publish_competitor_report(summary: CompetitorReportSummary) -> None:
    create_markdown_artifact(
        key="competitor-policies",
        markdown=summary.markdown,
        description=(
            f"Competitor policies as of {summary.as_of:%Y-%m-%d}; HTML: {summary.html_path}"
        ),
    )
