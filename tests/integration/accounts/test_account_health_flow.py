"""`score-accounts` against real SQLite and PostgreSQL: health from what the other
capabilities stored, history, band-change events, next actions routed to stand-ins."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from config.accounts_policy import clear_accounts_caches
from connectors.database.accounts_models import AccountAction, AccountHealth
from connectors.database.engine import session_scope
from connectors.database.scoring_models import AppEvent
from flows.accounts import account_plan
from flows.accounts import score_accounts as score_accounts_flow
from flows.cli import app
from tasks.accounts.contracts import ContractIn, EventIn, ObligationIn
from tasks.accounts.pipeline import evaluate_watch, store_contracts, store_events
from tasks.complaints.intake import ComplaintIn
from tasks.complaints.pipeline import record_complaint_event, store_complaints
from tests.conftest import missing_peer
from tests.flow_runs import run_to_end
from tests.integration.complaints.support import at, complaint_policies  # noqa: F401

pytestmark = [pytest.mark.usefixtures("prefect_harness", "database", "complaint_policies")]
score = run_to_end(score_accounts_flow)


@pytest.fixture(autouse=True)
def _accounts_policy() -> Iterator[None]:
    clear_accounts_caches()
    yield
    clear_accounts_caches()


def troubled_account() -> int:
    """Cliente Ltda (São Paulo: ana's territory) with an open critical complaint."""
    return store_complaints(
        [
            ComplaintIn(
                email="cliente@example.com.br",
                company="Cliente Ltda",
                country="BR",
                state="SP",
                severity="critical",
                subject="everything broke",
                created_at=at(7, 9),
            )
        ],
        "api",
    ).complaint_ids[0]


def test_a_critical_complaint_gives_a_call_today_action_to_the_owner_or_stand_in() -> None:
    complaint = troubled_account()
    store_contracts(
        [
            (
                [1],
                ContractIn(
                    reference="CT-7",
                    company="Cliente Ltda",
                    start_date="2026-01-01",
                    obligations=[
                        ObligationIn(
                            kind="delivery", item="kits", quantity=5, due_date="2026-12-01"
                        )
                    ],
                ),
            )
        ],
        "api",
        rows_in=1,
        rejected=[],
    )
    first = score(as_of=at(7, 12))
    assert first.companies == 1 and first.actions_by_rule == {"call-critical-complaint": 1}
    with session_scope() as s:
        action = s.scalars(select(AccountAction)).one()
        health = s.scalars(select(AccountHealth)).one()
    assert (action.owner_id, action.assignee_id) == ("ana", "ana")
    assert str(action.due_date) == "2026-12-07"  # today: 0 business days
    assert "critical complaints open 1 (>= 1.0)" in action.reason
    assert "lowers: 1 open complaints (1 critical)" in health.reasons
    assert health.band == "at_risk"

    again = score(as_of=at(7, 12))  # a rerun replaces the run, it does not add to it
    assert again.band_changes == 0
    with session_scope() as s:
        assert len(s.scalars(select(AccountHealth)).all()) == 1

    record_complaint_event(complaint, "resolved", at(8, 10))
    assert evaluate_watch(at(14, 11)).states == {"late": 1}
    absent = score(as_of=at(14, 12))  # ana and bia away: caio stands in
    assert absent.band_changes == 0  # the late delivery keeps the account at risk
    with session_scope() as s:
        latest = s.scalars(select(AccountAction).order_by(AccountAction.as_of.desc())).first()
    # The contract's delivery is still open: the next action is about it, for caio.
    assert latest is not None and latest.rule == "recover-late-obligation"
    assert (latest.owner_id, latest.assignee_id) == ("ana", "caio")

    delivered = EventIn(contract="CT-7", item="kits", kind="delivered", at=at(14, 15))
    assert store_events([(1, delivered)], "api", 1, []).recorded == 1
    assert evaluate_watch(at(15, 11)).changed == 1
    recovered = score(as_of=at(15, 12))
    assert recovered.band_changes == 1 and recovered.events_emitted == 1
    with session_scope() as s:
        history = s.scalars(select(AccountHealth).order_by(AccountHealth.as_of)).all()
        event = s.scalars(select(AppEvent).where(AppEvent.kind.like("account.%"))).one()
    assert [h.band for h in history][-1] != "at_risk"
    assert event.payload["previous_band"] == "at_risk"
    assert event.payload["new_band"] == history[-1].band

    result = CliRunner().invoke(app, ["accounts", "actions", "Cliente Ltda", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["company"] for r in rows] == ["Cliente Ltda"]


def test_the_account_plan_renders_html_and_a_pdf_that_pdftoppm_turns_into_pages(
    tmp_path: Path,
) -> None:
    if shutil.which("pdftoppm") is None:
        missing_peer("pdftoppm (poppler-utils)")
    troubled_account()
    store_contracts(
        [
            (
                [1],
                ContractIn(
                    reference="CT-8",
                    company="Cliente Ltda",
                    start_date="2026-01-01",
                    renewal_date="2027-01-31",
                    notice_days=30,
                    obligations=[
                        ObligationIn(
                            kind="delivery", item="kits", quantity=5, due_date="2026-12-01"
                        )
                    ],
                ),
            )
        ],
        "api",
        rows_in=1,
        rejected=[],
    )
    for day in (1, 7):
        score(as_of=at(day, 12))
    result = account_plan("cliente ltda", as_of=at(7, 13))
    html = Path(result.html_path).read_text()
    assert "Account plan: Cliente Ltda" in html and "<svg" in html and "CT-8" in html
    assert html.count("<circle") == 2  # one point per stored score
    pages = tmp_path / "page"
    subprocess.run(["pdftoppm", "-png", "-r", "60", result.pdf_path, str(pages)], check=True)
    pngs = sorted(tmp_path.glob("page*.png"))
    assert pngs and all(p.stat().st_size > 5_000 for p in pngs)
    result = CliRunner().invoke(app, ["accounts", "plan", "Nobody Inc"])
    assert result.exit_code == 1 and "no company named 'Nobody Inc'" in result.output
