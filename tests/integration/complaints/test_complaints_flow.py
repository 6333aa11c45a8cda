"""Complaints through the flows and the CLI, against real SQLite and PostgreSQL, a real SMTP
peer and a pytest-httpserver webhook."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from typer.testing import CliRunner
from werkzeug import Request, Response

from config.settings import get_settings
from connectors.database import complaints_store
from connectors.database.complaints_models import Complaint, ComplaintEscalation
from connectors.database.engine import session_scope
from connectors.database.ingest_models import Company, Contact, ContactIdentifier
from flows.cli import app
from flows.complaints import analyze_complaints, import_complaints
from flows.complaints import escalate_complaints as escalate_complaints_flow
from tasks.common.exports import export_frame
from tasks.complaints.intake import ComplaintIn
from tasks.complaints.pipeline import record_complaint_event, store_complaints
from tasks.complaints.policies import clear_caches
from tests.flow_runs import run_to_end
from tests.integration.complaints.support import at, complaint_policies  # noqa: F401
from tests.peers.smtp import SmtpPeer

pytestmark = [
    pytest.mark.usefixtures("prefect_harness", "database", "complaint_policies"),
]
FIELDS = ["external_ref", "email", "phone", "name", "company", "country", "state", "severity"]
FIELDS += ["category", "subject", "created_at"]


escalate_complaints = run_to_end(escalate_complaints_flow)


def one_complaint(severity: str = "high", created: str = "2026-12-07T09:00:00+00:00") -> int:
    """A complaint from a new contact in São Paulo: owned by ana (territory BR-SP)."""
    body = ComplaintIn(
        email="cliente@example.com.br",
        company="Cliente Ltda",
        country="BR",
        state="SP",
        severity=severity,
        subject="order late",
        created_at=created,
    )
    return store_complaints([body], "api").complaint_ids[0]


def exported(complaint_id: int) -> dict[str, object]:
    frame = export_frame("complaints").set_index("complaint_id")
    return {str(k): v for k, v in frame.loc[complaint_id].items()}


def test_import_links_known_contacts_creates_the_rest_and_reports_rejected_rows(
    tmp_path: Path,
) -> None:
    with session_scope() as s:
        s.add(Company(id=50, name="Kunde GmbH", name_key="kunde", country="DE"))
        s.add(Contact(id=70, full_name="Known Person", email="known@kunde.de", company_id=50))
        s.flush()
        s.add(ContactIdentifier(contact_id=70, kind="email", value="known@kunde.de"))
    path = tmp_path / "complaints.csv"
    rows = [
        ["C-1", "Known@Kunde.de", "", "", "", "", "", "critical", "billing", "charged", ""],
        ["C-2", "", "+55 11 98765-4321", "Zé", "Nova SA", "BR", "SP", "low", "", "late", ""],
        ["C-3", "not-an-email", "", "", "", "", "", "loud", "", "", ""],
        ["C-4", "", "", "", "Listed Account", "", "", "medium", "", "x", "2026-12-07T09:00"],
    ]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        writer.writerows(rows)

    first = import_complaints(str(path))
    assert (first.rows_in, first.created, first.duplicates, first.rejected) == (4, 2, 0, 2)
    assert first.reconciles
    reasons = {r.row: r.reason for r in first.rejected_rows}
    assert "email" in reasons[3] and "severity" in reasons[3]
    assert "created_at" in reasons[4]  # a naive instant is refused, not guessed
    assert (first.linked_contacts, first.new_contacts, first.new_companies) == (1, 1, 1)
    with session_scope() as s:
        got = {c.external_ref: c for c in s.scalars(select(Complaint))}
        known, fresh = got["C-1"], got["C-2"]
        assert (known.contact_id, known.company_id) == (70, 50)
        # Kunde GmbH had no owner: territory DE belongs to bia, and the company keeps her.
        assert known.owner_id == known.assignee_id == "bia"
        kunde = s.get(Company, 50)
        assert kunde is not None and (kunde.owner_id, kunde.owner_rule) == ("bia", "territory")
        assert fresh.owner_id == "ana"
        new_contact = s.get(Contact, fresh.contact_id)
        assert new_contact is not None and new_contact.phone == "+5511987654321"
    again = import_complaints(str(path))
    assert (again.created, again.duplicates, again.rejected) == (0, 2, 2)


def test_round_robin_and_listed_accounts_assign_owners_and_the_cursor_persists() -> None:
    bodies = [
        ComplaintIn(company=name, subject="s", country="US")
        for name in ("Listed Account", "Alpha", "Beta", "Gamma")
    ]
    summary = store_complaints(bodies, "import")
    with session_scope() as s:
        owners = [s.get(Complaint, i).owner_id for i in summary.complaint_ids]  # type: ignore[union-attr]
        cursor = complaints_store.get_state(s, complaints_store.ROUND_ROBIN_KEY)
    # boss takes no new accounts; round robin goes ana, bia, caio in id order.
    assert owners == ["ana", "ana", "bia", "caio"]
    assert cursor == "3"


def test_respond_wait_resolve_and_reopen_move_the_clocks_and_the_export() -> None:
    cid = one_complaint("high")  # Monday 09:00; 120 min to respond, 480 to resolve
    escalate_complaints(as_of=at(7, 9, 30))
    row = exported(cid)
    assert row["sla_state"] == "ok" and row["owner_id"] == "ana"
    assert str(row["response_due_at"]).startswith("2026-12-07 11:00")
    assert str(row["resolution_due_at"]).startswith("2026-12-07 17:00")

    record_complaint_event(cid, "waiting_on_client", at(7, 10))
    record_complaint_event(cid, "resumed", at(7, 11))
    escalate_complaints(as_of=at(7, 11, 5))
    row = exported(cid)
    assert str(row["response_due_at"]).startswith("2026-12-07 12:00")  # paused one hour
    assert row["status"] == "open"

    record_complaint_event(cid, "responded", at(7, 11, 30))
    record_complaint_event(cid, "resolved", at(7, 12))
    escalate_complaints(as_of=at(7, 13))
    row = exported(cid)
    assert (row["status"], row["response_state"], row["resolution_state"]) == (
        "resolved",
        "met",
        "resolved",
    )
    assert row["sla_state"] == "resolved"

    with pytest.raises(ValueError, match="resolved"):
        record_complaint_event(cid, "resolved", at(7, 13))
    record_complaint_event(cid, "reopened", at(8, 9))
    escalate_complaints(as_of=at(8, 9, 30))
    row = exported(cid)
    # 2 h used on Monday (09-10 and 11-12, the hour between paused): 6 h left from Tuesday 09:00.
    assert row["status"] == "open" and row["resolution_state"] == "ok"
    assert str(row["resolution_due_at"]).startswith("2026-12-08 15:00")


def _webhook_failing_first(httpserver: HTTPServer) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []

    def handler(request: Request) -> Response:
        seen.append(json.loads(request.get_data()))
        return Response("{}", status=500 if len(seen) == 1 else 200)

    httpserver.expect_request("/hooks/escalations", method="POST").respond_with_handler(handler)
    return seen


def test_escalations_are_stored_once_and_notified_once_by_email_and_webhook(
    httpserver: HTTPServer, smtp_peer: SmtpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNTFLOW_COMPLAINTS_EMAIL", "auto")
    monkeypatch.setenv("ACCOUNTFLOW_SMTP__HOST", smtp_peer.host)
    monkeypatch.setenv("ACCOUNTFLOW_SMTP__PORT", str(smtp_peer.port))
    monkeypatch.setenv("ACCOUNTFLOW_WEBHOOK_URL", httpserver.url_for("/hooks/escalations"))
    monkeypatch.setenv("ACCOUNTFLOW_WEBHOOK_ALLOWED_HOSTS", '["localhost", "127.0.0.1"]')
    monkeypatch.setenv("ACCOUNTFLOW_COMPLAINTS_WEBHOOK_ATTEMPTS", "1")
    get_settings.cache_clear()
    clear_caches()
    seen = _webhook_failing_first(httpserver)
    cid = one_complaint("high")  # warning at 10:30 (ana), breach at 11:00 (level 2: boss)
    answered = one_complaint("high")
    record_complaint_event(answered, "responded", at(7, 11, 30))  # late, but answered now

    first = escalate_complaints(as_of=at(7, 12))
    assert (first.new_escalations, first.to_notify) == (4, 2)
    assert first.emails_sent == 2 and first.webhooks_failed == 1
    assert first.pending_after == 2  # both webhooks still owed
    assert sorted(m.rcpt_tos for m in smtp_peer.received) == [
        ("ana@example.com",),
        ("boss@example.com",),
    ]
    subjects = sorted(str(m.message["Subject"]) for m in smtp_peer.received)
    assert subjects[0].startswith(f"[SLA breach] complaint {cid}: first response (level 2)")

    second = escalate_complaints(as_of=at(7, 12))
    assert (second.new_escalations, second.emails_sent, second.webhooks_delivered) == (0, 0, 2)
    assert second.pending_after == 0
    third = escalate_complaints(as_of=at(7, 12))
    assert (third.new_escalations, third.emails_sent, third.webhooks_delivered) == (0, 0, 0)
    assert len(seen) == 3 and len(smtp_peer.received) == 2
    keys = [str(body["escalation"]["idempotency_key"]) for body in seen[1:]]  # type: ignore[index]
    assert sorted(keys) == [
        f"complaint:{cid}:first_response:l1:warning",
        f"complaint:{cid}:first_response:l2:breach",
    ]
    with session_scope() as s:
        rows = s.scalars(select(ComplaintEscalation).order_by(ComplaintEscalation.id)).all()
        by_complaint = {(r.complaint_id, r.level): r for r in rows}
        assert by_complaint[(cid, 2)].recipient_id == "boss"
        assert by_complaint[(cid, 2)].webhook_outcome == "delivered"
        assert by_complaint[(cid, 2)].email_outcome == "sent"
        assert by_complaint[(cid, 1)].webhook_attempts == 2  # failed once, then delivered
        assert not by_complaint[(answered, 2)].notify  # recorded: the SLA was missed
        assert by_complaint[(answered, 2)].email_outcome is None

    later = escalate_complaints(as_of=at(7, 16))  # resolution warning at 15:00 for both
    assert later.new_escalations == 2 and later.emails_sent == 2


def test_absent_owner_hands_over_along_the_deputy_chain_and_gets_it_back() -> None:
    cid = one_complaint("low", created="2026-12-11T09:00:00+00:00")  # Friday, owner ana
    escalate_complaints(as_of=at(11, 10))
    # Monday 14th: ana and bia are away, so caio; the first response is due (480 min).
    monday = escalate_complaints(as_of=at(14, 10))
    assert monday.handovers == 1
    with session_scope() as s:
        complaint = s.get(Complaint, cid)
        assert complaint is not None and (complaint.owner_id, complaint.assignee_id) == (
            "ana",
            "caio",
        )
        breach = s.scalar(
            select(ComplaintEscalation).where(
                ComplaintEscalation.complaint_id == cid, ComplaintEscalation.kind == "breach"
            )
        )
        assert breach is not None and breach.recipient_id == "boss"
        warning = s.scalar(
            select(ComplaintEscalation).where(
                ComplaintEscalation.complaint_id == cid, ComplaintEscalation.kind == "warning"
            )
        )
        assert warning is not None and warning.recipient_id == "caio"
    # Wednesday: bia is back, ana still away; Monday 21st: ana is back.
    assert escalate_complaints(as_of=at(16, 10)).handovers == 1
    assert escalate_complaints(as_of=at(16, 10)).handovers == 0
    assert escalate_complaints(as_of=at(21, 10)).handovers == 1
    with session_scope() as s:
        history = complaints_store.handovers_of(s, cid)
        complaint = s.get(Complaint, cid)
        assert complaint is not None and complaint.assignee_id == "ana"
    assert [(h["from_id"], h["to_id"], h["reason"]) for h in history] == [
        ("ana", "caio", "owner_absent"),
        ("caio", "bia", "owner_absent"),
        ("bia", "ana", "owner_returned"),
    ]
    assert history[0]["chain"] == "ana > bia > caio"


def test_complaints_closed_since_the_last_run_still_get_their_escalations_recorded() -> None:
    cid = one_complaint("critical")  # 60 min to respond
    escalate_complaints(as_of=at(7, 9, 10))
    record_complaint_event(cid, "resolved", at(7, 11))  # answered late, between two runs
    summary = escalate_complaints(as_of=at(7, 11, 15))
    assert summary.evaluated == 1
    with session_scope() as s:
        frame = complaints_store.escalations_of(s, [cid])
    assert set(zip(frame.clock, frame.kind, frame.notify, strict=True)) == {
        ("first_response", "warning", False),
        ("first_response", "breach", False),
    }
    assert escalate_complaints(as_of=at(7, 12)).evaluated == 0


def test_cli_records_events_escalates_as_json_and_prints_the_analysis() -> None:
    cid = one_complaint("medium")
    runner = CliRunner()
    result = runner.invoke(
        app, ["complaints", "respond", str(cid), "--at", "2026-12-07T09:30:00+00:00"]
    )
    assert result.exit_code == 0, result.output
    assert "responded" in result.output
    result = runner.invoke(app, ["complaints", "reopen", str(cid)])
    assert result.exit_code == 1 and "cannot record 'reopened'" in result.output
    result = runner.invoke(
        app, ["complaints", "escalate", "--as-of", "2026-12-08T10:00:00+00:00", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["evaluated"] == 1 and summary["states"] == {"ok": 1}
    result = runner.invoke(app, ["report", "complaints", "--as-of", "2026-12-08T10:00:00+00:00"])
    assert result.exit_code == 0, result.output
    assert "## Accounts at risk" in result.output and "Cliente Ltda" in result.output


def test_analysis_names_accounts_at_risk_and_repeat_complainers() -> None:
    for _ in range(3):
        one_complaint("critical")
    resolved = one_complaint("low")
    record_complaint_event(resolved, "resolved", at(7, 10))
    report = analyze_complaints(as_of=at(9, 12), days=30)
    assert report.stats == {
        "complaints": 4,
        "open": 3,
        "breached": 3,
        "resolved": 1,
        "repeat_complainers": 1,
        "accounts_at_risk": 1,
    }
    risk = report.markdown.split("## Accounts at risk")[1].split("##")[0]
    assert "| Cliente Ltda | 15 | 3 | 3 | 3 |" in risk
    assert "cliente@example.com.br" not in report.markdown  # contacts by id only
    by_severity = report.markdown.split("## By severity")[1].split("##")[0]
    assert "| critical | 3 | 3 | 3 |" in by_severity


def test_unowned_complaints_from_the_inbox_get_owners_on_the_next_escalation_run() -> None:
    created = at(7, 9).replace(tzinfo=None)
    with session_scope() as s:
        s.add(Company(id=60, name="Owned Co", name_key="owned co", owner_id="caio"))
        s.add(Contact(id=80, full_name="Someone", country="DE"))
        s.flush()
        for cid, company, contact in ((901, 60, None), (902, None, 80)):
            s.add(
                Complaint(
                    id=cid,
                    source="inbox",
                    company_id=company,
                    contact_id=contact,
                    severity="low",
                    subject="from the inbox",
                    status="open",
                    created_at=created,
                )
            )
        s.flush()
        complaints_store.insert_events(
            s, [{"complaint_id": c, "kind": "created", "at": created} for c in (901, 902)]
        )
    summary = escalate_complaints(as_of=at(7, 10))
    assert summary.owners_assigned == 2 and summary.evaluated == 2
    with session_scope() as s:
        owned, by_territory = s.get(Complaint, 901), s.get(Complaint, 902)
        assert owned is not None and (owned.owner_id, owned.assignee_id) == ("caio", "caio")
        assert by_territory is not None and by_territory.owner_id == "bia"  # DE is bia's
        assert owned.sla_state == "ok"
