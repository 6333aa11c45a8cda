"""Prefect tasks that put failed outreach in front of ops: the `failed-outreach` table
artifact, a markdown artifact linking it to the `redrive-outreach` form, and the redrive."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.outreach.failed import (
    FAILED_OUTREACH_KEY,
    REDRIVE_FLOW,
    REDRIVE_LINKS_KEY,
    RedriveResult,
    load_report,
    redrive,
    redrive_audit_terms,
)

# The table shows this many rows (the oldest first); the CLI and exports show them all.
MAX_TABLE_ROWS = 1000


def _ui_base() -> str | None:
    """The UI's address when runs go to a server (none for Prefect's temporary one)."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    url = settings.ui_url or (settings.api.url or "").removesuffix("/api")
    return url.rstrip("/") if url else None


def _redrive_deployment_id() -> str | None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return str(client.read_deployment_by_name(f"{REDRIVE_FLOW}/manual").id)
        except ObjectNotFound:
            return None


def links_markdown(rows: int, ui: str | None, deployment_id: str | None) -> str:
    """The page that joins the table to the form that acts on it."""
    table = (
        f"[the failed-outreach table]({ui}/v2/artifacts/key/{FAILED_OUTREACH_KEY})"
        if ui
        else (f"the `{FAILED_OUTREACH_KEY}` table artifact")
    )
    if ui and deployment_id:
        form = f"[the redrive-outreach form]({ui}/v2/deployments/deployment/{deployment_id}/run)"
    else:
        form = "the `redrive-outreach/manual` deployment (served by `accountflow serve`)"
    return "\n".join(
        [
            "# Failed outreach",
            "",
            f"{rows} messages failed, may have arrived (unknown), bounced or wait for a retry:"
            f" see {table}. Each row says what went wrong and what to do.",
            "",
            f"To send chosen rows again, open {form} and give their `ids` (or a `campaign`).",
            "Rows whose send may have arrived (`unknown`) are resent only with"
            " `confirm_unknown`; bounced addresses are never resent. The next dispatch run"
            " sends what was redriven. Same rules as `accountflow outreach retry`.",
        ]
    )


@task(name="publish-failed-outreach", cache_policy=NO_CACHE)
def publish_failed_outreach() -> int:
    """Replace the latest `failed-outreach` table (every campaign) and its links page;
    returns how many rows it lists."""
    rows = load_report()
    now = datetime.now(UTC)
    create_table_artifact(
        key=FAILED_OUTREACH_KEY,
        table=rows[:MAX_TABLE_ROWS]
        or [{"id": "", "status": "none", "reason": "no failed outreach", "redrive": ""}],
        description=f"Failed, unknown, bounced and deferred outreach at {now:%Y-%m-%d %H:%M} UTC"
        f" ({len(rows)} rows"
        + (f", first {MAX_TABLE_ROWS} shown)" if len(rows) > MAX_TABLE_ROWS else ")"),
    )
    ui = _ui_base()
    create_markdown_artifact(
        key=REDRIVE_LINKS_KEY,
        markdown=links_markdown(len(rows), ui, _redrive_deployment_id() if ui else None),
        description="How to redrive failed outreach",
    )
    return len(rows)


@task(name="redrive-rows", cache_policy=NO_CACHE)
def redrive_rows(
    campaign: str | None,
    ids: list[int] | None,
    confirm_unknown: bool,
    requested_by: str | None = None,
) -> RedriveResult:
    """Make the chosen rows due again (tasks.outreach.failed.redrive's rules), audited
    as asked for in the UI by ``requested_by``, in the redrive's own transaction."""
    from prefect.runtime import flow_run

    from tasks.governance.service import audit_ui_act

    action, target = redrive_audit_terms(campaign, ids, confirm_unknown)
    run = str(flow_run.name or flow_run.id or "outside a flow run")
    result = redrive(
        datetime.now(UTC),
        campaign=campaign,
        ids=ids,
        confirm_unknown=confirm_unknown,
        audit=lambda s, counts: audit_ui_act(
            s, requested_by, run, action, target, {"redriven": counts}
        ),
    )
    get_run_logger().info("redrive: %s", result.message())
    return result
