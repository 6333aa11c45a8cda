"""Team changes by the head only, hand-overs on dismissal, the deputy's rights during an
absence, and the audit trail of each act; on SQLite and PostgreSQL.

The seed is config/team.yaml: helena is the head; ana's deputy is bruno, bruno's is ana,
clara's is ana.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from connectors.database.complaints_models import Complaint, ComplaintHandover
from connectors.database.engine import session_scope
from connectors.database.governance_models import AuditRecord, OwnershipHandover
from connectors.database.ingest_models import Company
from flows.cli import app
from tasks.complaints.policies import get_complaint_policies
from tasks.governance.service import (
    AuthenticationError,
    act_on_complaint,
    change_team,
    issue_member_token,
    team_in_force,
)
from tasks.governance.team import GovernanceError, NotAllowedError, absence_details

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


@pytest.fixture
def tokens(database: str) -> dict[str, str]:
    head = issue_member_token(None, "helena")
    return {
        "helena": head,
        **{m: issue_member_token(head, m) for m in ("ana", "bruno", "clara")},
    }


def _company(name: str, owner: str) -> int:
    with session_scope() as s:
        company = Company(name=name, name_key=name.lower(), owner_id=owner)
        s.add(company)
        s.flush()
        return company.id


def _complaint(owner: str, company_id: int | None = None, status: str = "open") -> int:
    with session_scope() as s:
        complaint = Complaint(
            source="api", severity="medium", status=status, owner_id=owner, assignee_id=owner,
            company_id=company_id, subject="late delivery", created_at=NOW.replace(tzinfo=None),
        )  # fmt: skip
        s.add(complaint)
        s.flush()
        return complaint.id


def _audit() -> list[tuple[str, str, str]]:
    with session_scope() as s:
        rows = s.execute(select(AuditRecord.actor, AuditRecord.action, AuditRecord.target))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_the_first_token_is_the_heads_and_later_ones_need_the_head(database: str) -> None:
    with pytest.raises(NotAllowedError, match="first one is the head's"):
        issue_member_token(None, "ana")
    head = issue_member_token(None, "helena")
    with pytest.raises(AuthenticationError):
        issue_member_token(None, "ana")
    ana = issue_member_token(head, "ana")
    with pytest.raises(NotAllowedError):
        issue_member_token(ana, "bruno")
    with session_scope() as s:
        stored = s.execute(text("SELECT token_hash FROM member_tokens")).scalars().all()
    assert head not in stored and ana not in stored and len(stored) == 2


@pytest.mark.parametrize("member", ["ana", "bruno", "clara"])
def test_only_the_head_appoints_and_dismisses(tokens: dict[str, str], member: str) -> None:
    details = {"name": "Dora Reis", "timezone": "America/Sao_Paulo"}
    with pytest.raises(NotAllowedError, match="only the head of the company"):
        change_team(tokens[member], "appoint", "dora", details, as_of=NOW)
    with pytest.raises(NotAllowedError, match="only the head of the company"):
        change_team(tokens[member], "dismiss", "clara", as_of=NOW)
    done = change_team(tokens["helena"], "appoint", "dora", details, as_of=NOW)
    assert done.author == "helena"
    assert "dora" in get_complaint_policies().team.by_id  # escalation sees the change


def test_no_token_or_a_forged_one_changes_nothing(tokens: dict[str, str]) -> None:
    for token in (None, "", "af_forged"):
        with pytest.raises(AuthenticationError):
            change_team(token, "dismiss", "clara", as_of=NOW)
    with session_scope() as s:
        assert "clara" in team_in_force(s).by_id


def test_deputy_and_absence_are_the_managers_or_the_heads(tokens: dict[str, str]) -> None:
    with pytest.raises(NotAllowedError, match="set by ana or by the head"):
        change_team(tokens["bruno"], "set_deputy", "ana", {"deputy": "clara"}, as_of=NOW)
    change_team(tokens["ana"], "set_deputy", "ana", {"deputy": "clara"}, as_of=NOW)
    away = absence_details(date(2026, 12, 20), date(2026, 12, 31), "vacation")
    with pytest.raises(NotAllowedError):
        change_team(tokens["clara"], "absence", "ana", away, as_of=NOW)
    change_team(tokens["helena"], "absence", "ana", away, as_of=NOW)
    with session_scope() as s:
        ana = team_in_force(s).by_id["ana"]
    assert ana.deputy == "clara" and ana.absences[-1].start == date(2026, 12, 20)
    with pytest.raises(GovernanceError, match="ends"):
        absence_details(date(2026, 12, 31), date(2026, 12, 1), "backwards")
    with pytest.raises(GovernanceError, match="not on the team"):
        change_team(tokens["ana"], "set_deputy", "ana", {"deputy": "nobody"}, as_of=NOW)


def test_dismissal_hands_everything_to_the_deputy_and_leaves_no_orphan(
    tokens: dict[str, str],
) -> None:
    companies = [_company(f"Bruno Client {i}", "bruno") for i in range(3)]
    open_ones = [_complaint("bruno", companies[0]), _complaint("bruno"), _complaint("bruno")]
    closed = _complaint("bruno", status="resolved")
    result = change_team(tokens["helena"], "dismiss", "bruno", as_of=NOW)

    assert set(result.companies_handed_over.values()) == {"ana"}  # bruno's deputy
    assert set(result.complaints_handed_over) == set(open_ones)
    with session_scope() as s:
        assert s.scalar(select(func.count()).where(Company.owner_id == "bruno")) == 0
        still = s.scalars(select(Complaint.id).where(Complaint.owner_id == "bruno")).all()
        assert still == [closed]  # history stays as it was; nothing open is left to him
        history = s.execute(
            select(OwnershipHandover.item_kind, OwnershipHandover.item_id, OwnershipHandover.to_id)
        ).all()
        assert sorted(history) == sorted(
            [("company", c, "ana") for c in companies]
            + [("complaint", c, "ana") for c in open_ones]
        )
        reasons = s.scalars(select(ComplaintHandover.reason)).all()
        assert reasons == ["dismissal"] * 3
        team = team_in_force(s)
    assert "bruno" not in team.by_id
    assert {"BR-RJ", "BR-MG"} <= set(team.by_id["ana"].territories)
    assert team.by_id["ana"].deputy is None  # bruno was her deputy
    with pytest.raises(AuthenticationError):  # a dismissed manager's token no longer works
        change_team(tokens["bruno"], "absence", "bruno", {}, as_of=NOW)
    assert ("helena", "team.dismiss", "member:bruno") in _audit()


def test_with_the_deputy_away_the_work_goes_round_robin_to_present_managers(
    tokens: dict[str, str],
) -> None:
    head = tokens["helena"]
    change_team(head, "appoint", "dora", {"name": "Dora Reis"}, as_of=NOW)
    away = absence_details(date(2026, 12, 1), date(2026, 12, 31), "vacation")
    change_team(head, "absence", "ana", away, as_of=NOW)  # bruno's deputy is away
    companies = [_company(f"Client {i}", "bruno") for i in range(4)]
    result = change_team(head, "dismiss", "bruno", as_of=NOW)
    # helena takes no new accounts and ana is away: clara and dora in turn.
    assert sorted(result.companies_handed_over.values()) == ["clara", "clara", "dora", "dora"]
    assert set(result.companies_handed_over) == set(companies)


def test_the_deputy_acts_on_the_owners_complaints_during_the_absence_and_not_after(
    tokens: dict[str, str],
) -> None:
    complaint = _complaint("ana")
    change_team(
        tokens["ana"], "absence", "ana",
        absence_details(date(2026, 12, 7), date(2026, 12, 11), "vacation"), as_of=NOW,
    )  # fmt: skip
    during, after = NOW, NOW + timedelta(days=7)
    with pytest.raises(NotAllowedError, match="deputy while the owner is absent"):
        act_on_complaint(tokens["clara"], complaint, "responded", as_of=during)
    act_on_complaint(tokens["bruno"], complaint, "responded", as_of=during)
    with pytest.raises(NotAllowedError):
        act_on_complaint(tokens["bruno"], complaint, "resolved", as_of=after)
    act_on_complaint(tokens["ana"], complaint, "waiting_on_client", as_of=after)
    act_on_complaint(tokens["helena"], complaint, "resumed", as_of=after)
    trail = [a for a in _audit() if a[1].startswith("complaint.")]
    assert trail == [
        ("bruno", "complaint.responded", f"complaint:{complaint}"),
        ("ana", "complaint.waiting_on_client", f"complaint:{complaint}"),
        ("helena", "complaint.resumed", f"complaint:{complaint}"),
    ]


def test_every_act_is_an_append_only_audit_record(tokens: dict[str, str]) -> None:
    change_team(tokens["ana"], "set_deputy", "ana", {"deputy": "clara"}, as_of=NOW)
    with session_scope() as s:
        record = s.scalars(select(AuditRecord).where(AuditRecord.action == "team.set_deputy")).one()
        assert (record.actor, record.target) == ("ana", "member:ana")
        assert record.before is not None and record.before["deputy"] == "bruno"
        assert record.after is not None and record.after["deputy"] == "clara"
    assert [a[1] for a in _audit()].count("team.token") == 4
    for statement in ("UPDATE audit_records SET actor = 'x'", "DELETE FROM audit_records"):
        with pytest.raises(DBAPIError, match="append-only"), session_scope() as s:
            s.execute(text(statement))


def test_the_cli_acts_as_the_member_whose_token_it_holds(
    tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("ACCOUNTFLOW_TOKEN", tokens["ana"])
    refused = runner.invoke(app, ["team", "dismiss", "clara"])
    assert refused.exit_code == 1 and "only the head of the company (helena)" in refused.output
    monkeypatch.setenv("ACCOUNTFLOW_TOKEN", tokens["helena"])
    done = runner.invoke(app, ["team", "appoint", "dora", "--name", "Dora Reis"])
    assert done.exit_code == 0, done.output
    trail = runner.invoke(app, ["audit", "--who", "helena", "--json"])
    assert '"team.appoint"' in trail.output and '"member:dora"' in trail.output


def test_a_redrive_is_audited_as_the_member_and_refused_without_a_token(
    tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.delenv("ACCOUNTFLOW_TOKEN", raising=False)
    refused = runner.invoke(app, ["outreach", "retry", "--campaign", "spring"])
    assert refused.exit_code == 1 and "no member token" in refused.output
    done = runner.invoke(
        app,
        ["outreach", "retry", "--campaign", "spring", "--confirm-unknown",
         "--token", tokens["clara"]],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert ("clara", "outreach.confirm_unknown", "campaign:spring ids:*") in _audit()
    assert not any(a[1] == "outreach.redrive" for a in _audit())  # the refused one left none
