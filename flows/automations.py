"""The automations ops rely on, defined in code and created idempotently by `accountflow
serve` (or any setup step that calls :func:`ensure_automations`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from config.settings import get_outreach_settings
from tasks.outreach.dispatch import EVENT_PREFIX

ZOMBIE_RUN_AUTOMATION = "runs: crashed when heartbeats stop"
FAILED_RUN_AUTOMATION = "outreach: dispatch run failed"
FAILURE_RATE_AUTOMATION = "outreach: failure rate over threshold"


def ensure_automations(notification_block: str | None = None) -> list[str]:
    """Create or update the automations ops rely on; safe to call on every `serve`/setup.

    Zombie runs: a deployment run whose process or machine died stops its heartbeats and
    is marked Crashed, so it is not left Running for ever (Prefect's recipe; the daily
    pipeline's stages share the pipeline's heartbeat, flows/daily.py). Outreach: a failed
    dispatch run, or a failure rate over the threshold, alerts.

    ``notification_block`` names a Prefect notification block document (e.g.
    ``"slack-webhook/ops"``) that receives the alerts; without one the automations still
    fire and show in the UI (action: do nothing), ready for ops to attach a channel.
    """
    from prefect.automations import Automation, DoNothing, EventTrigger, Posture, SendNotification
    from prefect.blocks.core import Block
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import get_current_settings

    # Heartbeats every this many seconds (Prefect's default 180); three missed = dead.
    heartbeat_seconds = get_current_settings().flows.heartbeat_frequency or 180

    block_name = notification_block or get_outreach_settings().alert_block
    actions: list[Any] = [DoNothing()]
    if block_name:
        block: Any = Block.load(block_name)
        actions = [
            SendNotification(
                block_document_id=block._block_document_id,
                subject="accountflow: {{ event.event }}",
                body="{{ event.resource.name or event.resource.id }}: {{ event.payload }}",
            )
        ]
    wanted = [
        Automation(
            name=ZOMBIE_RUN_AUTOMATION,
            description="A deployment's flow run stopped sending heartbeats (its machine or "
            "process died): it is marked Crashed instead of showing Running for ever.",
            trigger=EventTrigger(
                after={"prefect.flow-run.heartbeat"},
                expect={
                    "prefect.flow-run.heartbeat",
                    "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled",
                    "prefect.flow-run.Crashed",
                },
                match={"prefect.resource.id": "prefect.flow-run.*"},
                for_each={"prefect.resource.id"},
                posture=Posture.Proactive,
                threshold=1,
                within=timedelta(seconds=3 * heartbeat_seconds),
            ),
            actions=[
                ChangeFlowRunState(
                    state=StateType.CRASHED,
                    message=f"No heartbeat for {3 * heartbeat_seconds} s: the run's process died.",
                )
            ],
        ),
        Automation(
            name=FAILED_RUN_AUTOMATION,
            description="A dispatch-campaign flow run ended Failed or Crashed.",
            trigger=EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related={
                    "prefect.resource.role": "flow",
                    "prefect.resource.name": "dispatch-campaign",
                },
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=actions,
        ),
        Automation(
            name=FAILURE_RATE_AUTOMATION,
            description="A dispatch run's failed + unknown share exceeded the alert threshold "
            "(ACCOUNTFLOW_OUTREACH_FAILURE_RATE_ALERT).",
            trigger=EventTrigger(
                expect={f"{EVENT_PREFIX}.failure-rate-exceeded"},
                match={"prefect.resource.id": "accountflow.campaign.*"},
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=actions,
        ),
    ]
    for automation in wanted:
        existing: Any
        try:
            existing = Automation.read(name=automation.name)
        except (ObjectNotFound, ValueError):
            existing = None
        if existing is None:
            automation.create()
        else:
            automation.id = existing.id
            automation.update()
    return [a.name for a in wanted]
