"""`accountflow demo` as a new user runs it: the local Prefect server, a real send to the
local SMTP sink, and afterwards, in the UI, the runs, the failed outreach and a redrive form
that works. Checked through the API and in headless Chromium (Playwright driving Debian's
chromium; no browser download)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import missing_peer

DOCS = Path(__file__).resolve().parents[2] / "docs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REFUSED = {
    "ana.souza@metalurgica-abc.com.br",
    "javier.martin@logistica-iberia.es",
    "mark@northwind.example",
    "sarah.johnson@oceanfreight.com",
}


@dataclass(frozen=True)
class Demo:
    data: Path
    ui: str
    output: str

    @property
    def api(self) -> str:
        return f"{self.ui}/api"

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        for _ in range(10):  # the server's SQLite answers 503 while busy on a loaded machine
            response = requests.post(f"{self.api}{path}", json=body or {}, timeout=30)
            if response.status_code != 503:
                break
            time.sleep(2)
        response.raise_for_status()
        return response.json()


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    env["ACCOUNTFLOW_DATA_DIR"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data = tmp_path_factory.mktemp("demo") / "data"
    done = _cli(data, "demo")
    try:
        said = done.stdout[-3000:] + done.stderr[-3000:]
        assert done.returncode == 0, said
        record = json.loads((data / "prefect-server.json").read_text())
        assert f"Prefect UI: {record['url']}" in done.stdout, said
        yield Demo(data, record["url"], done.stdout)
    finally:
        _cli(data, "server", "stop")


def _latest_artifact(demo: Demo, key: str) -> dict[str, Any]:
    [found] = demo.post("/artifacts/latest/filter", {"artifacts": {"key": {"any_": [key]}}})
    return dict(found)


def _daily_run(demo: Demo) -> dict[str, Any]:
    # The served `daily` deployment has scheduled runs of the same flow: not started.
    runs = demo.post(
        "/flow_runs/filter",
        {
            "flows": {"name": {"any_": ["daily-pipeline"]}},
            "flow_runs": {"state": {"type": {"not_any_": ["SCHEDULED"]}}},
        },
    )
    [run] = runs
    return dict(run)


def test_the_demo_ends_with_the_three_pages_of_the_local_ui(demo: Demo) -> None:
    run = _daily_run(demo)
    assert f"this run:         {demo.ui}/v2/runs/flow-run/{run['id']}" in demo.output
    assert f"deployments:      {demo.ui}/v2/deployments" in demo.output
    assert f"failed outreach:  {demo.ui}/v2/artifacts/artifact/" in demo.output
    assert "export PREFECT_API_URL" not in demo.output


def test_the_demos_runs_and_failed_outreach_stay_in_the_local_ui(demo: Demo) -> None:
    run = _daily_run(demo)
    state = run["state"]
    assert (state["type"], state["name"]) == ("COMPLETED", "Completed with failures")
    assert (
        state["message"] == "campaign: 4 of 12 failed: 3 x 550, 1 x 554; 1 deferred, retried later"
    )
    tasks = demo.post("/task_runs/count", {"flow_runs": {"id": {"any_": [run["id"]]}}})
    assert tasks > 20  # the stages and their tasks, after the command ended
    warnings = demo.post(
        "/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}, "level": {"ge_": 30}}}
    )
    said = [w["message"] for w in warnings]
    assert any("3 of 12 message(s) failed with smtp 550" in m for m in said), said
    assert any("1 of 12 message(s) failed with smtp 554" in m for m in said), said

    table = json.loads(_latest_artifact(demo, "failed-outreach")["data"])
    assert sorted((r["status"], r["code"]) for r in table) == [
        ("deferred", 451), ("failed", 550), ("failed", 550), ("failed", 550), ("failed", 554),
    ]  # fmt: skip
    assert "redrive-outreach" in _latest_artifact(demo, "failed-outreach-redrive")["data"]

    fired = demo.post(
        "/events/filter",
        {"filter": {"event": {"name": ["prefect.automation.triggered"]}}, "limit": 50},
    )
    names = {e["resource"].get("prefect.resource.name") for e in fired["events"]}
    assert "outreach: failure rate over threshold" in names

    # The sink took the accepted mail and none of the refused.
    sink = list((demo.data / "smtp-sink" / "new").glob("*.eml"))
    delivered = " ".join(p.read_text(errors="replace") for p in sink)
    assert len(sink) >= 7
    assert not any(f"Delivered-To: {a}" in delivered for a in REFUSED)


def test_the_failed_outreach_rows_and_the_redrive_form_render_in_chromium(demo: Demo) -> None:
    if CHROMIUM is None:
        missing_peer("Debian's chromium")
    from playwright.sync_api import sync_playwright

    out = DOCS if os.environ.get("ACCOUNTFLOW_UPDATE_SCREENSHOTS") else demo.data
    artifact = _latest_artifact(demo, "failed-outreach")
    deployment = requests.get(
        f"{demo.api}/deployments/name/redrive-outreach/manual", timeout=30
    ).json()
    run = _daily_run(demo)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{demo.ui}/v2/artifacts/artifact/{artifact['latest_id']}")
        table = page.get_by_test_id("table-display")
        table.get_by_text("a***@metalurgica-abc.com.br", exact=True).wait_for(timeout=60_000)
        assert table.get_by_role("row").count() == 1 + 5  # header and the five rows
        page.screenshot(path=out / "prefect-ui-failed-outreach.png", full_page=True)

        page.goto(f"{demo.ui}/v2/deployments/deployment/{deployment['id']}/run")
        page.get_by_text("confirm_unknown").first.wait_for(timeout=60_000)
        assert page.get_by_text("ids (Optional)").count() == 1
        assert page.get_by_text("campaign (Optional)").count() == 1
        page.screenshot(path=out / "prefect-ui-redrive-form.png", full_page=True)

        page.goto(f"{demo.ui}/v2/runs/flow-run/{run['id']}")
        page.get_by_text("Completed with failures").first.wait_for(timeout=60_000)
        page.wait_for_timeout(3000)  # the run's timeline draws after its header
        page.screenshot(path=out / "prefect-ui-demo-run.png")
        browser.close()


def test_a_redrive_from_the_api_moves_the_chosen_rows(demo: Demo) -> None:
    table = json.loads(_latest_artifact(demo, "failed-outreach")["data"])
    chosen = sorted(r["id"] for r in table if r["code"] == 550)[:2]
    deployment = requests.get(
        f"{demo.api}/deployments/name/redrive-outreach/manual", timeout=30
    ).json()
    run = demo.post(
        f"/deployments/{deployment['id']}/create_flow_run", {"parameters": {"ids": chosen}}
    )
    deadline = time.monotonic() + 300
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = requests.get(f"{demo.api}/flow_runs/{run['id']}", timeout=30).json()["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(1)
    assert state["type"] == "COMPLETED", state
    assert state["message"] == "2 rows due again (failed_permanent: 2)"

    after = {r["id"]: r for r in json.loads(_latest_artifact(demo, "failed-outreach")["data"])}
    assert [after[i]["status"] for i in chosen] == ["redriven", "redriven"]
    assert sum(r["status"] == "failed" for r in after.values()) == 2
    with sqlite3.connect(demo.data / "accountflow.db") as db:
        statuses = dict(db.execute("SELECT id, status FROM outbox"))
    assert [statuses[i] for i in chosen] == ["retry", "retry"]
