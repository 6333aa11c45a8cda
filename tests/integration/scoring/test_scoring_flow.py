"""score-prospects and analyze-audience end to end on real SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from config.settings import get_settings
from connectors.database import scoring_store as store
from connectors.database.complaints_models import Complaint
from connectors.database.engine import session_scope
from connectors.database.ingest_models import Company, Contact
from connectors.database.scoring_models import (
    AppEvent,
    Outcome,
    ProspectScore,
    RegistryCacheEntry,
    ScoreReason,
)
from flows.cli import app
from flows.scoring import analyze_audience_flow as analyze_audience_flow_flow
from flows.scoring import score_prospects as score_prospects_flow
from tasks.common.exports import export_frame
from tasks.scoring.pipeline import score_contacts
from tests.flow_runs import run_to_end

pytestmark = pytest.mark.usefixtures("prefect_harness")

AS_OF = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CNPJ = "11.222.333/0001-81"  # valid check digits
SEEN = datetime(2026, 9, 1, 10, 0)


analyze_audience_flow = run_to_end(analyze_audience_flow_flow)


score_prospects = run_to_end(score_prospects_flow)


@pytest.fixture(autouse=True)
def scoring_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No registry unless a test configures one; settings re-read per test."""
    monkeypatch.delenv("ACCOUNTFLOW_REGISTRY__BASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def seed() -> dict[str, int]:
    """Three prospects: a strong executive, a free-mail staffer, a sparse cold lead."""
    with session_scope() as s:
        acme = Company(name="Acme Tecnologia Ltda", name_key="acme tecnologia", tax_id=CNPJ)
        beta = Company(name="Beta Comercial SA", name_key="beta comercial", tax_id=None)
        s.add_all([acme, beta])
        s.flush()
        people = {
            "ana": Contact(
                first_name="Ana",
                email="ana@acme.com.br",
                email_domain="acme.com.br",
                phone="+5511987654321",
                job_title="Diretora Comercial",
                company_id=acme.id,
                country="BR",
                state="SP",
                lead_rating="Hot",
                notes="pediu orcamento e demo",
                source_event="expo-sp",
                first_seen_at=SEEN,
                last_seen_at=SEEN,
            ),
            "bruno": Contact(
                first_name="Bruno",
                email="bruno@gmail.com",
                email_domain="gmail.com",
                is_free_mail=True,
                phone="+351912345678",
                job_title="Analista",
                company_id=beta.id,
                country="BR",
                lead_rating="Warm",
                source_event="expo-sp",
                first_seen_at=SEEN,
                last_seen_at=SEEN,
            ),
            "carla": Contact(
                first_name="Carla",
                email="carla@mailinator.com",
                email_domain="mailinator.com",
                lead_rating="Cold",
                source_event="feria-madrid",
                first_seen_at=datetime(2022, 1, 10),
                last_seen_at=datetime(2022, 1, 10),
            ),
        }
        s.add_all(people.values())
        s.flush()
        return {k: v.id for k, v in people.items()}


def history_count(contact_id: int | None = None) -> int:
    with session_scope() as s:
        query = select(func.count()).select_from(ProspectScore)
        if contact_id is not None:
            query = query.where(ProspectScore.contact_id == contact_id)
        return int(s.scalar(query) or 0)


def latest(contact_id: int) -> Contact:
    with session_scope() as s:
        contact = s.get(Contact, contact_id)
        assert contact is not None
        return contact


def explanation_count() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(ScoreReason)) or 0)


def reasons_of(contact_id: int) -> str:
    """The readable reasons of the contact's latest score ("" when unscored)."""
    with session_scope() as s:
        text = s.scalar(
            select(ScoreReason.reasons)
            .join(Contact, Contact.score_reason_id == ScoreReason.id)
            .where(Contact.id == contact_id)
        )
    return text or ""


def band_events() -> list[AppEvent]:
    with session_scope() as s:
        return list(
            s.scalars(select(AppEvent).where(AppEvent.kind == "prospect.band.changed")).all()
        )


def test_scoring_writes_history_and_the_latest_score_on_each_contact(database: str) -> None:
    ids = seed()
    summary = score_prospects(as_of=AS_OF)
    assert (summary.contacts, summary.scored, summary.skipped_unchanged) == (3, 3, 0)
    assert history_count() == 3
    ana, carla = latest(ids["ana"]), latest(ids["carla"])
    assert ana.band == "A" and carla.band == "D"
    assert sum(summary.band_counts.values()) == 3 and summary.band_counts["A"] == 1
    assert ana.scorecard_version == summary.scorecard_version
    assert ana.scored_at == AS_OF.replace(tzinfo=None)
    assert "company tax id is valid" in reasons_of(ids["ana"])
    assert "disposable" in reasons_of(ids["carla"])
    with session_scope() as s:
        row = s.scalars(select(ProspectScore).where(ProspectScore.contact_id == ids["ana"])).one()
        explained = s.get(ScoreReason, row.reason_id)
        assert explained is not None and explained.reason_codes.startswith("+")
    assert row.score == ana.score and row.band == "A"
    assert row.reason_id == ana.score_reason_id
    assert row.input_fingerprint == ana.score_fingerprint
    assert row.flow_run_id is not None


def test_a_run_that_fails_after_writing_leaves_nothing_behind(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed()
    record = store.record_band_changes

    def crash(*_args: object) -> list[int]:
        raise RuntimeError("crashed after the scores were written")

    monkeypatch.setattr(store, "record_band_changes", crash)
    with pytest.raises(RuntimeError):
        score_contacts.fn(AS_OF, False)
    assert explanation_count() == 0 and history_count() == 0 and latest(ids["ana"]).band is None
    monkeypatch.setattr(store, "record_band_changes", record)
    assert score_contacts.fn(AS_OF, False).scored == 3 and history_count() == 3


def test_rerunning_with_the_same_as_of_changes_nothing(database: str) -> None:
    ids = seed()
    score_prospects(as_of=AS_OF)
    before = latest(ids["bruno"])
    explanations = explanation_count()
    again = score_prospects(as_of=AS_OF)
    assert (again.scored, again.skipped_unchanged) == (0, 3)
    full = score_prospects(as_of=AS_OF, full=True)
    assert full.scored == 3 and full.band_changes == 0
    after = latest(ids["bruno"])
    assert history_count() == 3 and explanation_count() == explanations
    assert (after.score, after.band, after.score_reason_id) == (
        before.score,
        before.band,
        before.score_reason_id,
    )
    assert band_events() == []


def test_only_contacts_whose_inputs_changed_are_rescored(database: str) -> None:
    ids = seed()
    score_prospects(as_of=AS_OF)
    with session_scope() as s:
        s.execute(update(Contact).where(Contact.id == ids["bruno"]).values(job_title="CEO"))
    later = score_prospects(as_of=AS_OF + timedelta(days=1))
    assert (later.scored, later.skipped_unchanged) == (1, 2)
    assert history_count(ids["bruno"]) == 2 and history_count(ids["ana"]) == 1
    assert "decision maker" in reasons_of(ids["bruno"])


def test_a_band_change_is_recorded_as_exactly_one_event(database: str) -> None:
    ids = seed()
    score_prospects(as_of=AS_OF)
    with session_scope() as s:
        ana = s.get(Contact, ids["ana"])
        assert ana is not None
        ana.email, ana.email_domain = "ana@yopmail.com", "yopmail.com"
        s.add(
            Complaint(
                source="api",
                contact_id=ids["ana"],
                severity="critical",
                status="open",
                subject="quebra de contrato",
            )
        )
    moved = score_prospects(as_of=AS_OF + timedelta(days=1))
    assert moved.scored == 1 and moved.band_changes == 1
    assert moved.events_recorded == 1 and moved.events_emitted == 1
    events = band_events()
    assert len(events) == 1
    payload = events[0].payload
    assert payload["contact_id"] == ids["ana"] and payload["previous_band"] == "A"
    assert payload["new_band"] == latest(ids["ana"]).band != "A"
    assert "critical complaints" in reasons_of(ids["ana"])
    rerun = score_prospects(as_of=AS_OF + timedelta(days=1), full=True)
    assert rerun.events_recorded == 0 and len(band_events()) == 1


def test_registry_answers_are_cached_and_scored(
    database: str, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed()
    httpserver.expect_request("/companies/11222333000181").respond_with_json(
        {"company": {"status": "BAIXADA", "founded_on": "2025-06-01", "size": "ME"}}
    )
    monkeypatch.setenv("ACCOUNTFLOW_REGISTRY__BASE_URL", httpserver.url_for("/"))
    get_settings.cache_clear()
    summary = score_prospects(as_of=AS_OF)
    assert summary.registry.state == "ok" and summary.registry.answered == 1
    reasons = reasons_of(ids["ana"])
    assert "closed, suspended or irregular" in reasons
    with session_scope() as s:
        cached = s.get(RegistryCacheEntry, "11222333000181")
    assert cached is not None and cached.legal_status == "BAIXADA"
    # A fresh cached answer is used without asking again.
    requests_before = len(httpserver.log)
    assert score_prospects(as_of=AS_OF).registry.requests == 0
    assert len(httpserver.log) == requests_before


def test_registry_down_scoring_proceeds_without_its_factors_and_says_so(
    database: str, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed()
    httpserver.expect_request("/companies/11222333000181").respond_with_data("down", status=503)
    monkeypatch.setenv("ACCOUNTFLOW_REGISTRY__BASE_URL", httpserver.url_for("/"))
    monkeypatch.setenv("ACCOUNTFLOW_REGISTRY__ATTEMPTS", "2")
    monkeypatch.setenv("ACCOUNTFLOW_REGISTRY__BACKOFF_SECONDS", "0")
    get_settings.cache_clear()
    summary = score_prospects(as_of=AS_OF)
    assert summary.scored == 3
    assert summary.registry.state == "unavailable"
    assert summary.registry.unavailable == {"server_error": 1}
    assert "scored without registry factors" in summary.registry.describe()
    assert "company registry not consulted or unavailable" in reasons_of(ids["ana"])


def test_export_contacts_carries_score_band_reasons_and_version(database: str) -> None:
    ids = seed()
    score_prospects(as_of=AS_OF)
    frame = export_frame("contacts")
    assert {"contact_id", "score", "band", "reasons", "scorecard_version"} <= set(frame.columns)
    ana = frame[frame["contact_id"] == ids["ana"]].iloc[0]
    assert ana["band"] == "A" and ana["score"] == latest(ids["ana"]).score
    assert "company tax id is valid" in ana["reasons"]


def test_audience_report_publishes_an_artifact_and_writes_the_html(
    database: str, app_env: Path
) -> None:
    seed()
    score_prospects(as_of=AS_OF)
    summary = analyze_audience_flow(as_of=AS_OF)
    html = Path(summary.html_path)
    assert html.is_file() and html.is_relative_to(app_env.resolve())
    text = html.read_text(encoding="utf-8")
    assert "<svg" in text and "Band mix" in text
    assert summary.contacts == 3 and summary.band_mix["A"] == 1
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["target-audience"])),
        )
    assert any(html.name in str(a.data) and "| band | contacts |" in str(a.data) for a in artifacts)


def test_cli_scores_and_reports_as_json(database: str) -> None:
    seed()
    runner = CliRunner()
    scored = runner.invoke(app, ["score", "--as-of", "2026-11-28T12:00:00", "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["scored"] == 3
    report = runner.invoke(app, ["report", "audience", "--as-of", "2026-11-28", "--json"])
    assert report.exit_code == 0, report.output
    assert Path(json.loads(report.stdout)["html_path"]).is_file()


def test_backtest_reports_rates_per_band_and_auc_from_stored_outcomes(database: str) -> None:
    ids = seed()
    score_prospects(as_of=AS_OF)
    with session_scope() as s:
        s.add_all(
            [
                Outcome(contact_id=ids["ana"], kind="won", occurred_at=datetime(2026, 12, 1)),
                Outcome(contact_id=ids["bruno"], kind="lost", occurred_at=datetime(2026, 12, 1)),
                Outcome(contact_id=ids["carla"], kind="lost", occurred_at=datetime(2026, 12, 1)),
            ]
        )
    result = CliRunner().invoke(app, ["report", "backtest", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 3 and report["auc"] == 1.0
    per_band = {row["band"]: row for row in report["per_band"]}
    assert per_band["A"]["win_rate"] == 1.0 and per_band["D"]["win_rate"] == 0.0
