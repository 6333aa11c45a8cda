"""daily-pipeline, the main job: the demo end to end, and a failed stage that does not stop
the others."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterName,
)
from prefect.client.schemas.objects import Artifact, StateType
from prefect.client.schemas.sorting import ArtifactSort
from typer.testing import CliRunner

from flows.cli import app
from flows.daily import DEMO_AS_OF, daily_pipeline

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _artifact(key: str, flow_run_id: UUID | None = None) -> Artifact:
    """The artifact ``key`` of one run (the newest, when no run is named)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]) if flow_run_id else None,
            ),
            sort=ArtifactSort.CREATED_DESC,
        )
    assert found, f"no artifact {key}"
    return found[0]


def test_demo_runs_every_stage_on_the_bundled_samples_and_prints_one_summary(
    app_env: Path,
) -> None:
    result = CliRunner().invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    stages = summary["stages"]
    assert list(stages) == ["ingest", "inbox", "score", "campaign", "complaints", "audience"]
    assert {name: s["status"] for name, s in stages.items()} == dict.fromkeys(stages, "completed")
    assert summary["as_of"].startswith(DEMO_AS_OF.strftime("%Y-%m-%dT%H:%M"))

    ingest = stages["ingest"]["summary"]
    assert ingest["rows_in"] == 21
    assert ingest["rows_in"] == ingest["accepted"] + ingest["duplicates"] + ingest["quarantined"]
    assert stages["score"]["summary"]["scored"] >= ingest["accepted"]
    # The demo sends for real to its SMTP sink, which refuses some sample recipients.
    campaign = stages["campaign"]
    assert (campaign["summary"]["sent"], campaign["summary"]["failed"]) == (7, 4)
    assert campaign["note"] == "4 of 12 failed: 3 x 550, 1 x 554; 1 deferred, retried later"
    assert "ACCOUNTFLOW_SMTP__PORT" not in os.environ  # the sink's settings were for the demo

    # The run's progress artifact reached 100 % and names the last stage.
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_="daily-pipeline-demo-%"))
        )
    assert run.name == "daily-pipeline-demo-2026-04-07"  # the demo's day, not today

    progress = _artifact("daily-pipeline-progress")
    assert progress.data == 100.0
    assert "audience completed (6/6)" in str(progress.description)


def test_a_failed_stage_is_recorded_and_the_later_stages_still_run(
    database: str, tmp_path: Path
) -> None:
    state = asyncio.run(
        daily_pipeline(
            exports_dir=str(tmp_path / "empty"), campaign="no-such-campaign", return_state=True
        )
    )
    assert state.is_failed()
    assert "campaign" in str(state.message)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        # Task runs reach the API as events, recorded a moment after the run ends.
        deadline = time.monotonic() + 30
        while True:
            stage_runs = {
                t.name: t.state_type
                for t in client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
                )
                if t.task_key.startswith("run_stage")
            }
            settled = all(t in (StateType.COMPLETED, StateType.FAILED) for t in stage_runs.values())
            if (len(stage_runs) == 3 and settled) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    # A scheduled run has no as_of: its name carries the day it ran, not "None".
    assert run.name == f"daily-pipeline-{datetime.now(UTC):%Y-%m-%d}"
    # Each stage that ran is a task run of the pipeline's run, named for the stage.
    assert stage_runs == {
        "score": StateType.COMPLETED,
        "campaign": StateType.FAILED,
        "complaints": StateType.COMPLETED,
    }

    table = _artifact("daily-pipeline", state.state_details.flow_run_id)
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    status = {row["stage"]: row["status"] for row in rows}
    assert status == {
        "ingest": "skipped",
        "inbox": "skipped",
        "score": "completed",
        "campaign": "failed",
        "complaints": "completed",
    }
