"""The watch against pytest-httpserver serving successive versions of HTML and PDF pages,
with real SQLite and PostgreSQL; then the flows, events, emails, report, CLI and export."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from config.competitors_policy import clear_caches, get_competitors_policy
from connectors.database import competitors_store
from connectors.database.competitors_models import (
    CompetitorChange,
    CompetitorFetch,
    CompetitorPage,
    CompetitorSnapshot,
)
from connectors.database.engine import session_scope
from flows.cli import app
from flows.competitors import report_competitors as report_flow
from flows.competitors import watch_competitors as watch_flow
from tasks.common.exports import export_frame
from tasks.competitors import pipeline
from tests.flow_runs import run_to_end
from tests.integration.competitors.support import (
    Site,
    html_page,
    pdf_bytes,
    policy_dict,
    write_policy,
)
from tests.integration.complaints.support import TEAM

pytestmark = pytest.mark.usefixtures("database")
DAY = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
TERMS_V1 = (
    "Payment within 30 days of the invoice date.",
    "Returns accepted within 30 days of delivery.",
    "Delivery in 5 business days.",
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def watched(site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """Acme's terms (HTML), price list (PDF) and a page that is gone; Beta's host is down."""
    site.put("/terms", html_page(*TERMS_V1))
    site.put("/prices.pdf", pdf_bytes("Price list", "Widget EUR 49.90"), "application/pdf")
    policy = policy_dict(
        {
            "acme": [site.url("/terms"), site.url("/prices.pdf"), site.url("/gone")],
            "beta": [f"http://127.0.0.1:{_closed_port()}/terms"],
        }
    )
    team = tmp_path / "team.yaml"
    team.write_text(yaml.safe_dump(TEAM))
    monkeypatch.setenv("ACCOUNTFLOW_COMPETITORS_FILE", str(write_policy(tmp_path, policy)))
    monkeypatch.setenv("ACCOUNTFLOW_COMPETITORS_TEAM_FILE", str(team))
    monkeypatch.setenv("ACCOUNTFLOW_COMPETITORS_EMAIL", "dir")
    monkeypatch.setenv("ACCOUNTFLOW_COMPETITORS_OUTBOX_DIR", str(tmp_path / "outbox"))
    clear_caches()
    yield site
    clear_caches()


def run(day: int) -> pipeline.WatchSummary:
    return pipeline.watch(get_competitors_policy(), DAY + timedelta(days=day))


def count(model: Any) -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def changes() -> list[CompetitorChange]:
    with session_scope() as s:
        rows = list(s.scalars(select(CompetitorChange).order_by(CompetitorChange.id)))
        s.expunge_all()
    return rows


def test_successive_versions_store_a_snapshot_only_when_the_text_changes(watched: Site) -> None:
    first = run(0)
    assert (first.pages, first.fetched, first.new_snapshots, first.changes) == (4, 2, 2, 0)
    reasons = {f["url"].rsplit("/", 1)[1]: f["reason"] for f in first.failures}
    assert reasons["gone"] == "HTTP 404"
    assert reasons["terms"].startswith("robots.txt unreachable: down")

    watched.log.clear()
    second = run(1)
    assert (second.not_modified, second.new_snapshots) == (2, 0)
    for path in ("/terms", "/prices.pdf"):  # an unchanged page: one conditional request
        (sent,) = watched.requests_to(path)
        assert "If-None-Match" in sent

    # New markup, menu, tracking link and footer date, same main text: no snapshot.
    watched.put("/terms", html_page(*TERMS_V1, updated="6 December 2026", menu="Start"))
    third = run(2)
    assert (third.fetched, third.new_snapshots, third.changes) == (1, 0, 0)

    # A date and rewording in the text itself: a snapshot and a cosmetic change.
    watched.put(
        "/terms",
        html_page(
            "Terms valid from 7 December 2026.",
            "Payment within 30 days of the invoice date.",
            "We accept returns within 30 days of delivery.",
            "Delivery in 5 business days.",
        ),
    )
    fourth = run(3)
    assert (fourth.new_snapshots, fourth.changes, fourth.material_changes) == (1, 1, 0)

    # The PDF price moved: material, classified as price, with the values.
    watched.put(
        "/prices.pdf", pdf_bytes("Price list", "Widget EUR 54.90"), content_type="application/pdf"
    )
    fifth = run(4)
    assert (fifth.changes, fifth.material_changes) == (1, 1)
    cosmetic, material = changes()
    assert not cosmetic.material and cosmetic.notify_state is None
    assert material.material and material.points == ["price"]
    assert material.summary == "price: EUR 49.9 → EUR 54.9"
    assert "-Widget EUR 49.90" in material.diff and "+Widget EUR 54.90" in material.diff
    assert material.notify_state == "pending"
    assert count(CompetitorSnapshot) == 4


def test_faulty_pages_are_recorded_with_their_reason_and_tried_again_each_run(
    watched: Site,
) -> None:
    run(0)
    run(1)
    with session_scope() as s:
        gone = s.scalar(select(CompetitorPage).where(CompetitorPage.url.endswith("/gone")))
        assert gone is not None
        assert (gone.last_outcome, gone.last_reason) == ("failed", "HTTP 404")
        assert gone.consecutive_failures == 2
        logged = s.scalars(select(CompetitorFetch.reason).where(CompetitorFetch.page_id == gone.id))
        assert list(logged) == ["HTTP 404", "HTTP 404"]
    assert len(watched.requests_to("/gone")) == 2
    watched.put("/gone", html_page("Warranty of 24 months on all products."))
    assert run(2).new_snapshots == 1


def test_a_crash_while_saving_loses_and_duplicates_nothing(
    watched: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "SAVE_CHUNK", 1)
    real = competitors_store.record_results
    calls = {"n": 0}

    def crash_on_second(*args: Any, **kwargs: Any) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(competitors_store, "record_results", crash_on_second)
    with pytest.raises(RuntimeError):
        run(0)
    monkeypatch.setattr(competitors_store, "record_results", real)
    run(0)
    run(1)
    with session_scope() as s:
        per_page = s.execute(
            select(CompetitorSnapshot.page_id, func.count()).group_by(CompetitorSnapshot.page_id)
        ).all()
    assert sorted(n for _, n in per_page) == [1, 1]
    assert changes() == []


@pytest.mark.usefixtures("prefect_harness")
def test_material_change_is_one_event_and_one_email_to_head_and_managers(
    watched: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emitted: list[dict[str, Any]] = []
    real_emit = pipeline.emit_event

    def recording_emit(**kwargs: Any) -> Any:
        emitted.append(kwargs)
        return real_emit(**kwargs)

    monkeypatch.setattr(pipeline, "emit_event", recording_emit)
    watch = run_to_end(watch_flow)
    watch(as_of=DAY)
    watched.put(
        "/terms",
        html_page(
            "Payment within 45 days of the invoice date.",
            "Returns accepted within 30 days of delivery.",
            "Delivery in 5 business days.",
        ),
    )
    summary = watch(as_of=DAY + timedelta(days=1))
    assert (summary.material_changes, summary.events_emitted, summary.notified) == (1, 1, 1)
    watch(as_of=DAY + timedelta(days=2))  # a rerun announces and mails nothing again
    (event,) = emitted
    assert event["event"] == "competitor.policy.changed"
    assert event["resource"]["prefect.resource.id"] == "accountflow.competitor.acme"
    assert event["payload"]["points"] == ["payment_terms"]
    (mail,) = (tmp_path / "outbox").glob("*.eml")
    message = message_from_bytes(mail.read_bytes(), policy=policy.default)
    assert message["To"] == "boss@example.com, ana@example.com, bia@example.com, caio@example.com"
    assert "payment terms: 30 days → 45 days" in message.get_content()  # type: ignore[attr-defined]
    (change,) = changes()
    assert change.notify_state == "sent" and change.event_emitted_at is not None

    report = run_to_end(report_flow)(as_of=DAY + timedelta(days=2), days=7)
    assert report.material_changes == 1 and report.faults == 2
    assert "| policy point | us | Acme | Beta |" in report.markdown
    assert "| payment terms | Payment within 30 days of invoice. | 45 days | — |" in report.markdown
    assert "+Payment within 45 days of the invoice date." in report.markdown
    page = Path(report.html_path).read_text()
    assert "<svg" in page and page.count("</title></circle>") == 1 and "<script" not in page

    frame = export_frame("competitor-changes")
    assert frame["material"].tolist() == [True] and frame["notify_state"].tolist() == ["sent"]


@pytest.mark.usefixtures("prefect_harness")
def test_cli_watch_report_and_export(watched: Site, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["competitors", "watch", "--as-of", "2026-12-07T05:00:00Z"])
    assert result.exit_code == 0, result.output
    assert "pages               4" in result.output and "HTTP 404" in result.output
    result = runner.invoke(app, ["report", "competitors", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["faults"] == 2
    out = tmp_path / "changes.csv"
    result = runner.invoke(app, ["export", "competitor-changes", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("change_id,competitor_id,url,detected_at,material")
