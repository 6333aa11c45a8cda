"""Every flow as a deployment: schedules, tags, parameters; served by `accountflow serve`.

``prefect.yaml`` declares the same deployments for work pools (`prefect deploy --all`);
tests keep the two in step.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prefect import Flow
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron, Interval, Schedule

from config.settings import get_settings


@dataclass(frozen=True)
class DeploymentSpec:
    module: str
    flow_name: str
    name: str
    description: str
    tags: tuple[str, ...]
    cron: str | None = None
    every: timedelta | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def schedules(self, timezone: str) -> list[Schedule]:
        if self.cron:
            return [Cron(self.cron, timezone=timezone)]
        if self.every:
            return [Interval(self.every, timezone=timezone)]
        return []


SPECS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        "flows.daily",
        "daily-pipeline",
        "daily",
        "Ingest, score, dispatch and escalate: the account manager's day.",
        ("daily", "pipeline"),
        cron="0 6 * * *",
    ),
    DeploymentSpec(
        "flows.ingest",
        "ingest-exhibition-leads",
        "manual",
        "Badge-scan exports (CSV/XLSX) into contacts; give file paths and the event.",
        ("ingest", "leads"),
        parameters={"files": []},
    ),
    DeploymentSpec(
        "flows.inbox",
        "ingest-inbox",
        "every-10-minutes",
        "Fetch and classify the IMAP inbox: leads, complaints, bounces, opt-outs.",
        ("ingest", "inbox"),
        every=timedelta(minutes=10),
        parameters={"imap": True},
    ),
    DeploymentSpec(
        "flows.scoring",
        "score-prospects",
        "manual",
        "Reliability scores with reason codes for contacts whose inputs changed.",
        ("scoring",),
    ),
    DeploymentSpec(
        "flows.scoring",
        "analyze-audience",
        "weekly",
        "Target-audience segments and their response, as a report.",
        ("reports", "scoring"),
        cron="0 7 * * 1",
    ),
    DeploymentSpec(
        "flows.outreach",
        "dispatch-campaign",
        "manual",
        "Plan and send a campaign's due steps through the outbox.",
        ("outreach",),
        parameters={"campaign": "welcome-fair", "dry_run": True},
    ),
    DeploymentSpec(
        "flows.complaints",
        "escalate-complaints",
        "every-15-minutes",
        "SLA clocks in business hours; escalate warnings and breaches once.",
        ("complaints",),
        every=timedelta(minutes=15),
    ),
    DeploymentSpec(
        "flows.complaints",
        "analyze-complaints",
        "weekly",
        "Complaints by category, severity and account; accounts at risk.",
        ("reports", "complaints"),
        cron="30 7 * * 1",
    ),
    DeploymentSpec(
        "flows.competitors",
        "watch-competitors",
        "daily",
        "Competitors' policy pages: snapshots, classified changes, events and emails.",
        ("competitors",),
        cron="0 5 * * *",
    ),
    DeploymentSpec(
        "flows.competitors",
        "report-competitors",
        "weekly",
        "Us vs each competitor per policy point, the week's changes and a timeline.",
        ("reports", "competitors"),
        cron="0 8 * * 1",
    ),
    DeploymentSpec(
        "flows.outreach",
        "report-failed-outreach",
        "hourly",
        "Refresh the failed-outreach table: every failed, unknown, bounced or deferred message.",
        ("outreach", "reports"),
        cron="0 * * * *",
    ),
    DeploymentSpec(
        "flows.outreach",
        "redrive-outreach",
        "manual",
        "Send chosen failed outreach again: outbox ids from the failed-outreach table, or a"
        " campaign; unknown rows only with confirm_unknown.",
        ("outreach",),
    ),
    DeploymentSpec(
        "flows.daily",
        "ingest-incoming",
        "every-2-minutes",
        "Exports dropped into <data dir>/incoming: ingested, scored and planned into their"
        " campaign within minutes, each file once.",
        ("ingest", "leads", "pipeline"),
        every=timedelta(minutes=2),
    ),
    DeploymentSpec(
        "flows.governance",
        "check-freshness",
        "weekly",
        "Stale contact fields per owner; the share of fresh values per field and owner.",
        ("reports", "governance"),
        cron="0 8 * * 1",
    ),
    DeploymentSpec(
        "flows.outreach",
        "dispatch-campaign",
        "reverify-details",
        "Send the re-verification emails check-freshness put in the outbox (stale contacts).",
        ("outreach", "governance"),
        cron="0 10 * * 1-5",
        parameters={"campaign": "reverify-details", "dry_run": False},
    ),
    DeploymentSpec(
        "flows.accounts",
        "watch-obligations",
        "hourly",
        "Contract obligations: on track, due soon, late, met; notify owners or deputies once.",
        ("accounts", "contracts"),
        every=timedelta(hours=1),
    ),
    DeploymentSpec(
        "flows.accounts",
        "score-accounts",
        "daily",
        "Account health (0-100, band, reasons), band-change events and next best actions.",
        ("accounts",),
        cron="30 6 * * *",
    ),
    DeploymentSpec(
        "flows.accounts",
        "send-talk-proposals",
        "every-30-minutes",
        "Talk proposals through the outreach outbox: those waiting for the client's send"
        " window, throttled or retried.",
        ("accounts", "outreach"),
        every=timedelta(minutes=30),
    ),
    DeploymentSpec(
        "flows.accounts",
        "account-plan",
        "manual",
        "The account plan of one company (HTML and PDF, health over time); give its name.",
        ("accounts", "reports"),
        parameters={"company": ""},
    ),
)


def find_flow(module: str, flow_name: str) -> Flow[Any, Any]:
    """The flow object called ``flow_name`` in ``module``."""
    mod = importlib.import_module(module)
    for value in vars(mod).values():
        if isinstance(value, Flow) and value.name == flow_name:
            return value
    raise LookupError(f"no flow named {flow_name!r} in {module}")


def build_deployments() -> list[RunnerDeployment]:
    timezone = get_settings().timezone
    out = []
    for spec in SPECS:
        flow_obj = find_flow(spec.module, spec.flow_name)
        deployment = flow_obj.to_deployment(
            name=spec.name,
            description=spec.description,
            tags=list(spec.tags),
            schedules=spec.schedules(timezone),
            parameters=spec.parameters,
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        assert isinstance(deployment, RunnerDeployment)  # sync call, not a coroutine
        out.append(deployment)
    return out
