"""Prefect tasks for reliability scoring and the audience report, and their pure helpers.

The thinking lives in ``scorecard`` (factors, points, bands, reasons), ``audience`` and
``calibration``; this module assembles their input from the database's tables, decides
which contacts need a new score, and records what happened.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import requests
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.tasks import exponential_backoff
from pydantic import BaseModel, Field

from config.scoring_policy import BANDS, ScoringPolicy, load_scoring_policy
from config.settings import get_settings
from connectors.company_registry import CompanyRegistryClient, RegistryUnavailable
from connectors.database import scoring_store as store
from connectors.database.engine import session_scope
from connectors.database.migrate import ensure_schema
from tasks.common.clock import as_utc
from tasks.scoring.audience import analyze_audience, audience_markdown, write_audience_html
from tasks.scoring.calibration import Backtest, backtest
from tasks.scoring.scorecard import (
    INPUT_COLUMNS,
    as_of_levels,
    band_changes,
    inputs_of,
    score_frame,
)

# ---------------------------------------------------------------- settings


@lru_cache
def _policy_at(path: Path) -> ScoringPolicy:
    return load_scoring_policy(path)


def get_scoring_policy() -> ScoringPolicy:
    """The scorecard in force: the configured file, else config_dir/scoring.yaml."""
    path = get_settings().scoring_policy or get_settings().config_dir / "scoring.yaml"
    return _policy_at(path.resolve())


# ---------------------------------------------------------------- pure helpers

_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")


def compact_tax_ids(values: pd.Series) -> pd.Series:
    """Registry keys: tax ids without separators, upper-cased, once per distinct value."""
    codes, uniques = pd.factorize(values.astype(object))
    compact = np.array(
        [_NOT_ALNUM.sub("", str(v)).upper() or None for v in uniques] + [None], dtype=object
    )
    return pd.Series(compact[codes], index=values.index, dtype=object)


def scoring_inputs(
    contacts: pd.DataFrame, activity: pd.DataFrame, registry: pd.DataFrame | None
) -> pd.DataFrame:
    """The INPUT_COLUMNS frame for tasks.scoring.scorecard, one row per contact, fixed dtypes.

    Absence is meaningful to the scorecard, so it is kept: ``replies`` is set only for
    contacts we wrote to (or who wrote to us), and complaint counts only for contacts
    with complaints or a won/paid outcome (a client); everyone else skips those factors.
    Payment and contract history has no table yet, so ``obligations`` is always skipped.
    ``opens`` needs open tracking, which outreach does not record.
    """
    ids = contacts["contact_id"]
    act = activity.reindex(ids.to_numpy())
    act.index = contacts.index

    def col(name: str) -> pd.Series:
        if name in act.columns:
            return act[name].astype("float64")
        return pd.Series(np.nan, index=contacts.index, dtype="float64")

    replies, sent = col("replies"), col("sent")
    engaged = (sent.fillna(0) > 0) | (replies.fillna(0) > 0)
    outcome = (
        act["outcome"].astype(object) if "outcome" in act.columns else pd.Series(None, index=ids)
    )
    client = outcome.isin(store.GOOD_OUTCOMES).to_numpy()
    total, critical = col("complaints_total"), col("complaints_critical")
    has_history = total.notna().to_numpy() | client

    out = pd.DataFrame(
        {
            "contact_id": ids.astype("int64"),
            "email": contacts["email"],
            "email_domain": contacts["email_domain"],
            "is_free_mail": contacts["is_free_mail"].astype(bool),
            "phone": contacts["phone"],
            "country": contacts["country"],
            "company_name": contacts["company_name"],
            "company_tax_id": contacts["company_tax_id"],
            "person_tax_id": contacts["person_tax_id"],
            "job_title": contacts["job_title"],
            "lead_rating": contacts["lead_rating"],
            "created_at": contacts["created_at"],
            "updated_at": contacts["updated_at"],
            "replies": replies.fillna(0).where(engaged),
            "opens": np.nan,
            "complaints_total": total.fillna(0).where(has_history),
            "complaints_critical": critical.fillna(0).where(has_history),
            "obligations_missed": np.nan,
            "payment_delays": np.nan,
        },
        index=contacts.index,
    )
    if registry is not None and len(registry):
        keys = compact_tax_ids(contacts["company_tax_id"])
        found = registry.reindex(keys.to_numpy())
        for name in ("registry_status", "registry_founded", "registry_size"):
            out[name] = found[name].to_numpy()
    else:
        out["registry_status"] = None
        out["registry_founded"] = pd.NaT
        out["registry_size"] = None
    return canonical(out)


def canonical(inputs: pd.DataFrame) -> pd.DataFrame:
    """Each input column in one fixed dtype, so equal values always hash equal."""
    out = inputs.copy()
    for name in inputs_of("text"):
        out[name] = out[name].astype("str")
    for name in inputs_of("number"):
        out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
    for name in inputs_of("time"):
        # Naive values are UTC already (as stored); aware ones are brought to UTC.
        stamps = pd.to_datetime(out[name], utc=True).dt.tz_localize(None)
        out[name] = stamps.astype("datetime64[us]")
    for name in inputs_of("flag"):
        out[name] = out[name].astype(bool)
    return out[list(INPUT_COLUMNS)]


def fingerprint(inputs: pd.DataFrame, policy: ScoringPolicy, as_of: datetime) -> pd.Series:
    """A signed 64-bit hash per row of what decides its score (stored in a BIGINT column).

    That is the scoring inputs plus the levels of the factors that age with ``as_of``
    (tasks.scoring.scorecard.as_of_levels), not ``as_of`` itself: hashing the date would force every
    contact to be rescored every day, while leaving the ages out would keep a score whose
    data went stale since. The scorecard version is compared beside it (needs_score).

    Hashed in native dtypes: casting to Python objects first cost about 20 s at a million
    contacts, against about 1.5 s here. The dtypes are pinned by :func:`canonical`, which
    is what makes native hashing stable.
    """
    cols = [c for c in INPUT_COLUMNS if c != "contact_id"]
    decided_by = pd.concat([inputs[cols], as_of_levels(inputs, policy, as_of)], axis=1)
    hashed = pd.util.hash_pandas_object(decided_by, index=False).to_numpy()
    return pd.Series(hashed.view(np.int64), index=inputs.index)


def needs_score(
    contacts: pd.DataFrame, prints: pd.Series, version: str, full: bool
) -> npt.NDArray[np.bool_]:
    """Which contacts to (re)score: never scored, inputs changed, or another scorecard."""
    if full:
        return np.ones(len(contacts), dtype=bool)
    stored = contacts["score_fingerprint"]
    same_print = stored.notna().to_numpy() & (
        stored.fillna(0).astype("int64").to_numpy() == prints.to_numpy()
    )
    same_version = contacts["scorecard_version"].astype(object).eq(version).to_numpy()
    return ~(same_print & same_version)


# ---------------------------------------------------------------- models


RegistryState = Literal["not_configured", "ok", "partial", "unavailable"]


class RegistryReport(BaseModel):
    """What the registry lookups did this run (numbers only, no tax ids)."""

    state: RegistryState = "not_configured"
    companies: int = 0
    answered: int = 0
    fetched: int = 0
    requests: int = 0
    not_consulted: int = 0
    unavailable: dict[str, int] = {}

    def describe(self) -> str:
        if self.state == "not_configured":
            return "not configured: registry factors skipped"
        parts = [f"{self.answered} of {self.companies} companies answered"]
        parts += [f"{n} {reason}" for reason, n in sorted(self.unavailable.items())]
        if self.not_consulted:
            parts.append(f"{self.not_consulted} not consulted")
        text = f"{self.state}: " + ", ".join(parts)
        if self.state == "unavailable":
            text += "; scored without registry factors where no fresh cached answer exists"
        return text


class ScoringSummary(BaseModel):
    as_of: datetime
    scorecard_version: str
    full: bool
    contacts: int = 0
    scored: int = 0
    skipped_unchanged: int = 0
    band_counts: dict[str, int] = {}
    band_changes: int = 0
    events_recorded: int = 0
    events_emitted: int = 0
    registry: RegistryReport = RegistryReport()
    seconds: float = 0.0
    event_ids: list[int] = Field(default=[], exclude=True)


class AudienceSummary(BaseModel):
    as_of: datetime
    contacts: int
    scorecard_version: str
    band_mix: dict[str, int]
    funnel: dict[str, int]
    best: list[str]
    worst: list[str]
    html_path: str
    markdown: str = Field(default="", exclude=True)


# ---------------------------------------------------------------- tasks


@task(name="refresh-registry", cache_policy=NO_CACHE)
def refresh_registry() -> RegistryReport:
    """Look every company with contacts up in the registry, through the table cache.

    Failures never raise: a company without an answer is scored without the registry
    factors, and the report says how many and why.
    """
    ensure_schema()
    cfg = get_settings().registry
    if not cfg.base_url:
        return RegistryReport()
    with session_scope() as s:
        raw_ids = store.company_tax_ids(s)
    tax_ids = [t for t in dict.fromkeys(compact_tax_ids(pd.Series(raw_ids)).dropna())]
    cache = store.DbRegistryCache(session_scope)
    cache.preload(tax_ids)
    report = RegistryReport(state="ok", companies=len(tax_ids))
    with requests.Session() as http:
        if cfg.api_key is not None:
            http.headers[cfg.api_key_header] = cfg.api_key.get_secret_value()
        client = CompanyRegistryClient(
            http,
            cfg.base_url,
            get_scoring_policy().registry,
            timeout_seconds=cfg.timeout_seconds,
            attempts=cfg.attempts,
            backoff_seconds=cfg.backoff_seconds,
            cache=cache,
        )
        in_a_row = 0
        for i, tax_id in enumerate(tax_ids):
            result = client.lookup(tax_id)
            if isinstance(result, RegistryUnavailable):
                report.unavailable[result.reason] = report.unavailable.get(result.reason, 0) + 1
                transport = result.reason in ("timeout", "server_error", "connection_error")
                in_a_row = in_a_row + 1 if transport else 0
                if in_a_row >= cfg.down_after_failures:
                    report.not_consulted = len(tax_ids) - i - 1
                    break
            else:
                report.answered += 1
                in_a_row = 0
        report.requests = client.requests_made
    failed = sum(report.unavailable.values()) + report.not_consulted
    transport_failures = sum(
        n
        for r, n in report.unavailable.items()
        if r != "unknown_tax_id" and r != "malformed_response"
    )
    if failed and report.answered == 0 and transport_failures:
        report.state = "unavailable"
    elif failed:
        report.state = "partial"
    get_run_logger().info("registry %s", report.describe())
    return report


@task(
    name="score-contacts",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
)
def score_contacts(
    as_of: datetime | None, full: bool, registry: RegistryReport | None = None
) -> ScoringSummary:
    """Score contacts whose inputs changed (all with ``full``) and store it in one transaction."""
    started = time.perf_counter()
    ensure_schema()
    when = as_utc(as_of)
    policy = get_scoring_policy()
    registry = registry or RegistryReport()
    summary = ScoringSummary(
        as_of=when, scorecard_version=policy.version, full=full, registry=registry
    )
    with session_scope() as s:
        store.lock_for_scoring(s)
        contacts = store.load_contacts(s)
        activity = store.load_activity(s)
        cached = None
        if registry.state != "not_configured":
            refresh = timedelta(days=policy.registry.refresh_age_days)
            cached = store.load_fresh_registry(s, datetime.now(UTC) - refresh)
        inputs = scoring_inputs(contacts, activity, cached)
        prints = fingerprint(inputs, policy, when)
        todo = needs_score(contacts, prints, policy.version, full)
        scored = score_frame(inputs[todo], policy, when)
        scored["company_id"] = contacts.loc[todo, "company_id"].array
        scored["fingerprint"] = prints[todo].to_numpy()
        store.write_scores(s, scored, when, policy.version, _flow_run_id())
        before = contacts.loc[todo & contacts["band"].notna().to_numpy(), ["contact_id", "band"]]
        changes = band_changes(before, scored)
        summary.event_ids = store.record_band_changes(s, changes, when)

    bands = contacts["band"].astype(object).to_numpy().copy()
    bands[todo] = scored["band"].astype(str).to_numpy()
    counted = pd.Series(bands).value_counts()
    summary.contacts = len(contacts)
    summary.scored = int(todo.sum())
    summary.skipped_unchanged = summary.contacts - summary.scored
    summary.band_counts = {b: int(counted.get(b, 0)) for b in BANDS}
    summary.band_changes = len(changes)
    summary.events_recorded = len(summary.event_ids)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


@task(name="emit-band-events", cache_policy=NO_CACHE)
def emit_band_events(summary: ScoringSummary) -> ScoringSummary:
    """Announce newly recorded band changes as Prefect events (automations can react).

    Event ids derive from the app_events row, so a retried emission is the same event.
    """
    limit = get_settings().band_event_emit_limit
    with session_scope() as s:
        events = store.load_events(s, summary.event_ids[:limit])
    for event_id, payload in events:
        emit_event(
            event=store.BAND_CHANGED,
            resource={
                "prefect.resource.id": f"accountflow.contact.{payload['contact_id']}",
                "prefect.resource.role": "contact",
            },
            payload=payload,
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"accountflow:app_events:{event_id}"),
        )
    if len(summary.event_ids) > limit:
        get_run_logger().warning(
            "%s band changes recorded; emitted the first %s as Prefect events",
            len(summary.event_ids),
            limit,
        )
    return summary.model_copy(update={"events_emitted": len(events)})


@task(name="publish-scoring-summary", cache_policy=NO_CACHE)
def publish_scoring_summary(summary: ScoringSummary) -> None:
    """A table artifact: how many were scored, skipped, per band, moved, and the registry."""
    table: list[dict[str, Any]] = [
        {"measure": "as of", "value": summary.as_of.isoformat()},
        {"measure": "scorecard version", "value": summary.scorecard_version},
        {"measure": "contacts", "value": summary.contacts},
        {"measure": "scored", "value": summary.scored},
        {"measure": "skipped (inputs unchanged)", "value": summary.skipped_unchanged},
        {"measure": "band changes", "value": summary.band_changes},
        {"measure": "band-change events recorded", "value": summary.events_recorded},
        {"measure": "band-change events emitted", "value": summary.events_emitted},
        {"measure": "registry", "value": summary.registry.describe()},
        {"measure": "seconds", "value": summary.seconds},
    ]
    table += [{"measure": f"band {b}", "value": n} for b, n in summary.band_counts.items()]
    create_table_artifact(
        key="score-prospects-summary",
        table=table,
        description=f"Reliability scoring as of {summary.as_of:%Y-%m-%d %H:%M} UTC",
    )


def audience_frame(session: Any) -> pd.DataFrame:
    """Contacts with score, band and activity, in the columns tasks.scoring.audience reads."""
    contacts = store.load_contacts(session, for_audience=True)
    activity = store.load_activity(session)
    inputs = scoring_inputs(contacts, activity, None)
    frame = contacts[
        [
            "contact_id",
            "company_name",
            "country",
            "state",
            "job_title",
            "source_event",
            "notes",
            "score",
            "band",
            "scorecard_version",
        ]
    ].copy()
    frame["replies"] = inputs["replies"]
    frame["opens"] = inputs["opens"]
    frame["complaints_total"] = inputs["complaints_total"]
    if "outcome" in activity.columns:
        frame["outcome"] = activity["outcome"].reindex(contacts["contact_id"].to_numpy()).values
    sizes = store.load_registry_sizes(session)
    keys = compact_tax_ids(contacts["company_tax_id"])
    frame["registry_size"] = sizes.reindex(keys.to_numpy()).to_numpy()
    return frame


@task(name="build-audience-report", cache_policy=NO_CACHE)
def build_audience_report(as_of: datetime | None) -> AudienceSummary:
    """Segment the scored contacts, write the standalone HTML under the data dir."""
    ensure_schema()
    when = as_utc(as_of)
    with session_scope() as s:
        frame = audience_frame(s)
    report = analyze_audience(frame, get_scoring_policy(), when)
    folder = get_settings().data_dir.resolve() / "reports"
    path = write_audience_html(report, folder / f"audience-{when:%Y%m%dT%H%M%S}.html")
    return AudienceSummary(
        as_of=when,
        contacts=len(frame),
        scorecard_version=report.scorecard_version,
        band_mix=report.band_mix,
        funnel=report.funnel,
        best=[f"{r['dimension']}={r['segment']}" for _, r in report.best.iterrows()],
        worst=[f"{r['dimension']}={r['segment']}" for _, r in report.worst.iterrows()],
        html_path=str(path),
        markdown=audience_markdown(report, html_link=path.as_uri()),
    )


@task(name="publish-audience-report", cache_policy=NO_CACHE)
def publish_audience_report(summary: AudienceSummary) -> None:
    """The markdown artifact, naming the HTML report's path."""
    create_markdown_artifact(
        key="target-audience",
        markdown=summary.markdown,
        description=f"Target audience as of {summary.as_of:%Y-%m-%d}; HTML: {summary.html_path}",
    )


def run_backtest(outcomes_file: Path | None) -> Backtest:
    """Stored latest scores against outcomes (the outcomes table, or a CSV of
    contact_id,outcome). Raises ValueError when nothing overlaps."""
    ensure_schema()
    with session_scope() as s:
        contacts = store.load_contacts(s, for_audience=True)
        outcomes = (
            pd.read_csv(outcomes_file, usecols=["contact_id", "outcome"])
            if outcomes_file is not None
            else store.load_outcomes(s)
        )
    scored = contacts[contacts["score"].notna()][
        ["contact_id", "score", "band", "scorecard_version"]
    ]
    joined = scored.merge(outcomes, on="contact_id", how="inner")
    if joined.empty:
        raise ValueError("no scored contact has an outcome")
    return backtest(joined, joined["outcome"])
