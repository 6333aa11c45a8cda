"""Contracts and obligations through the flows, the CLI and the web service, against real
SQLite and PostgreSQL and a real SMTP peer.

The team is the complaints tests' all-UTC one (09:00-17:00, no holidays): ana is away
14-18 December 2026 with her deputy bia away 14-15, so bia's deputy caio stands in.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from config.accounts_policy import clear_accounts_caches
from config.settings import get_settings
from connectors.database import accounts_store
from connectors.database.accounts_models import Obligation
from connectors.database.engine import session_scope
from flows.accounts import import_contract_events, import_contracts
from flows.accounts import watch_obligations as watch_obligations_flow
from flows.cli import app
from flows.complaints import escalate_complaints as escalate_complaints_flow
from flows.web import create_app
from tasks.common.exports import export_frame
from tasks.complaints.intake import ComplaintIn
from tasks.complaints.pipeline import store_complaints
from tasks.complaints.policies import clear_caches
from tests.flow_runs import run_to_end
from tests.integration.complaints.support import at, complaint_policies  # noqa: F401
from tests.peers.smtp import SmtpPeer

pytestmark = [pytest.mark.usefixtures("prefect_harness", "database", "complaint_policies")]
watch = run_to_end(watch_obligations_flow)
escalate = run_to_end(escalate_complaints_flow)
COLUMNS = [
    "reference", "company", "owner", "start_date", "end_date", "renewal_date", "notice_days",
    "ref", "kind", "item", "quantity", "metric", "target", "due_date",
]  # fmt: skip
HEAD = ["CT-2026-0001", "Cliente Ltda", "ana", "2026-01-01", "2027-06-30", "2027-01-31", "30"]


@pytest.fixture(autouse=True)
def _accounts_policy() -> Iterator[None]:
    clear_accounts_caches()
    yield
    clear_accounts_caches()


@pytest.fixture
def alarms_by_smtp(smtp_peer: SmtpPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Obligation notices go by email to the SMTP peer."""
    monkeypatch.setenv("ACCOUNTFLOW_COMPLAINTS_EMAIL", "auto")
    monkeypatch.setenv("ACCOUNTFLOW_SMTP__HOST", smtp_peer.host)
    monkeypatch.setenv("ACCOUNTFLOW_SMTP__PORT", str(smtp_peer.port))
    get_settings.cache_clear()
    clear_caches()


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return path


def contract_file(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "contracts.csv",
        [
            [*HEAD, "pallets", "delivery", "pallets", "40", "", "", "2026-12-11"],
            [*HEAD, "december-report", "report", "", "", "", "monthly report", "2026-12-18"],
            [*HEAD, "", "service_level", "", "", "response", "first answer in 1 h", ""],
            # A second contract with a bad date: rejected whole, naming file, row and field.
            [
                "CT-2026-0002",
                "Outra SA",
                "ana",
                "2026-01-01",
                "",
                "",
                "",
                "",
                "delivery",
                "boxes",
                "5",
                "",
                "",
                "2026-13-01",
            ],
            [
                "CT-2026-0003",
                "Terceira",
                "nobody",
                "2026-01-01",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
            ],
        ],
    )


def events_file(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    path = tmp_path / "events.json"
    path.write_text(json.dumps({"events": rows}))
    return path


def test_import_reports_each_bad_row_by_file_row_and_field_and_a_reimport_changes_nothing(
    tmp_path: Path,
) -> None:
    path = contract_file(tmp_path)
    first = import_contracts(str(path))
    assert (first.rows_in, first.rows_accepted, first.rows_rejected) == (5, 3, 2)
    assert first.contracts_created == 1
    assert first.obligations_created == 5  # three of its own, renewal and notice
    texts = sorted(r.text() for r in first.rejected_rows)
    assert texts[0].startswith("contracts.csv: row 4: due_date: ")
    assert texts[1] == (
        "contracts.csv: row 5: owner: 'nobody' is not a manager id or email in the team"
    )
    again = import_contracts(str(path))
    assert (again.contracts_unchanged, again.obligations_created, again.obligations_updated) == (
        1,
        0,
        0,
    )
    obligations = export_frame("obligations").set_index("ref")
    assert str(obligations.loc["notice", "due_date"])[:10] == "2027-01-01"  # 30 days before
    assert obligations.loc["renewal", "owner_id"] == "ana"


def test_states_move_with_events_and_time_and_notices_reach_owner_or_stand_in_once(
    tmp_path: Path, smtp_peer: SmtpPeer, alarms_by_smtp: None
) -> None:
    import_contracts(str(contract_file(tmp_path)))
    # A critical complaint naming the contract, unanswered: its first response breaches.
    store_complaints(
        [
            ComplaintIn(
                email="cliente@example.com.br",
                company="Cliente Ltda",
                severity="critical",
                reference="CT-2026-0001",
                subject="late",
                created_at=at(7, 9),
            )
        ],
        "api",
    )
    escalate(as_of=at(7, 12))

    monday = watch(as_of=at(7, 12))
    assert monday.complaint_events == 1
    assert monday.states == {"on_track": 4, "missed": 1}
    assert monday.new_notices == 1 and monday.emails_sent == 1

    tuesday = watch(as_of=at(8, 10))  # three business days before Friday the 11th
    assert tuesday.states["due_soon"] == 1 and tuesday.new_notices == 1
    assert watch(as_of=at(8, 10)).new_notices == 0  # a rerun notifies nothing

    recorded = import_contract_events(
        str(
            events_file(
                tmp_path,
                [
                    {
                        "contract": "CT-2026-0001",
                        "item": "pallets",
                        "kind": "partially_delivered",
                        "quantity": "20",
                        "at": "2026-12-10T15:00:00+00:00",
                    },
                    {
                        "contract": "CT-2026-0001",
                        "item": "pallets",
                        "kind": "partially_delivered",
                        "quantity": "20",
                        "at": "2026-12-10T15:00:00+00:00",
                    },
                    {
                        "contract": "CT-2026-0009",
                        "item": "x",
                        "kind": "delivered",
                        "at": "2026-12-10T15:00:00+00:00",
                    },
                    {
                        "contract": "CT-2026-0001",
                        "item": "pallets",
                        "kind": "delivered",
                        "at": "2026-12-10",
                    },
                ],
            )
        )
    )
    assert (recorded.recorded, recorded.duplicates, recorded.rejected) == (1, 1, 2)
    assert {(r.row, r.field) for r in recorded.rejected_rows} == {(3, "contract"), (4, "at")}

    saturday = watch(as_of=at(12, 10))  # 20 of 40 delivered: late
    assert saturday.states["late"] == 1 and saturday.new_notices == 1

    absent = watch(as_of=at(15, 10))  # the report is due soon; ana and bia are away
    assert absent.new_notices == 1
    mails = [m for m in smtp_peer.received if str(m.message["Subject"]).startswith("[obligation")]
    assert [m.rcpt_tos for m in mails] == [
        ("ana@example.com",),
        ("ana@example.com",),
        ("ana@example.com",),
        ("caio@example.com",),
    ]
    last = mails[-1].message
    assert str(last["Subject"]).startswith("[obligation due soon] CT-2026-0001: report")
    assert "standing in for Ana" in last.get_content()
    assert watch(as_of=at(15, 10)).emails_sent == 0
    with session_scope() as s:
        notices = accounts_store.notices_of(s)
    assert list(notices["state"]) == ["missed", "due_soon", "late", "due_soon"]
    assert list(notices["delegation"]) == ["present", "present", "present", "deputy"]
    exported = export_frame("obligations").set_index("ref")
    assert exported.loc["pallets", "state"] == "late"
    assert exported.loc["december-report", "state"] == "due_soon"


def test_cli_imports_watches_and_exports_contracts(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["contracts", "import", str(contract_file(tmp_path))])
    assert result.exit_code == 1  # some rows were rejected
    assert "contracts.csv: row 4: due_date:" in result.output
    result = runner.invoke(app, ["contracts", "watch", "--as-of", "2026-12-08T10:00:00", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["states"]["due_soon"] == 1
    out = tmp_path / "contracts.json"
    result = runner.invoke(app, ["export", "contracts", "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [c["reference"] for c in json.loads(out.read_text())] == ["CT-2026-0001"]


def test_post_contracts_behind_the_token_creates_then_finds_the_same_contract(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACCOUNTFLOW_API_TOKEN", "t0ken")
    get_settings.cache_clear()
    body = {
        "reference": "CT-2026-0100",
        "company": "Web Cliente",
        "owner": "bia@example.com",
        "start_date": "2026-01-01",
        "obligations": [
            {"kind": "delivery", "item": "kits", "quantity": 3, "due_date": "2026-12-20"}
        ],
    }
    with TestClient(create_app()) as client:
        assert client.post("/contracts", json=body).status_code == 401
        made = client.post("/contracts", json=body, headers={"Authorization": "Bearer t0ken"})
        assert made.status_code == 201 and made.json()["created"] is True
        again = client.post("/contracts", json=body, headers={"Authorization": "Bearer t0ken"})
        assert again.json() == {
            "reference": "CT-2026-0100",
            "created": False,
            "obligations_created": 0,
            "obligations_updated": 0,
        }
        bad = client.post(
            "/contracts",
            json={**body, "obligations": [{"kind": "delivery", "item": "kits"}]},
            headers={"Authorization": "Bearer t0ken"},
        )
        assert bad.status_code == 422
        assert "a delivery needs item, quantity and due_date" in bad.text
    assert export_frame("obligations")["owner_id"].tolist() == ["bia"]


def test_invoices_and_credit_notes_move_payment_terms_deliveries_and_breaches(
    tmp_path: Path, smtp_peer: SmtpPeer, alarms_by_smtp: None
) -> None:
    contracts = write_csv(
        tmp_path / "contracts.csv",
        [
            [*HEAD, "pallets", "delivery", "pallets", "40", "", "", "2026-12-11"],
            [*HEAD, "terms", "payment_terms", "", "", "", "net 30", "2026-12-31"],
            [*HEAD, "uptime", "service_level", "", "", "uptime", "99.5 %", "2026-12-31"],
        ],
    )
    import_contracts(str(contracts))

    def events(name: str, *rows: dict[str, str]) -> None:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"events": [{"contract": "CT-2026-0001", **r} for r in rows]}))
        assert import_contract_events(str(path)).recorded == len(rows)

    def states() -> dict[str, str]:
        return {
            str(k): str(v) for k, v in export_frame("obligations").set_index("ref")["state"].items()
        }

    events(
        "first",
        {"item": "pallets", "kind": "delivered", "quantity": "40", "at": "2026-12-09T10:00:00Z"},
        {"obligation": "terms", "kind": "invoiced", "at": "2026-12-09T11:00:00Z"},
        {"obligation": "uptime", "kind": "sla_missed", "at": "2026-12-09T12:00:00Z"},
    )
    first = watch(as_of=at(9, 14))
    assert {k: states()[k] for k in ("pallets", "terms", "uptime")} == {
        "pallets": "met", "terms": "met", "uptime": "missed",
    }  # fmt: skip
    assert first.new_notices == 1  # the breach
    assert watch(as_of=at(9, 14)).watched == 0  # a rerun reads nothing, notifies nothing

    events(
        "credits",
        # Ten pallets come back damaged: credited, so the delivery is short again.
        {"item": "pallets", "kind": "credited", "quantity": "10", "at": "2026-12-14T09:00:00Z"},
        # The invoice is cancelled by a credit note; the breach gets a service credit.
        {"obligation": "terms", "kind": "credited", "at": "2026-12-14T09:00:00Z"},
        {"obligation": "uptime", "kind": "credited", "at": "2026-12-14T09:00:00Z"},
    )
    before = watch(as_of=at(14, 8))  # the credits are dated later: nothing moves yet
    assert before.changed == 0 and before.new_notices == 0
    with session_scope() as s:  # ... until their time comes, when the watch looks again
        checks = {o.ref: o.next_check_at for o in s.scalars(select(Obligation))}
    assert checks["pallets"] == checks["uptime"] == datetime(2026, 12, 14, 9)
    after = watch(as_of=at(14, 10))
    assert {k: states()[k] for k in ("pallets", "terms", "uptime")} == {
        "pallets": "late", "terms": "on_track", "uptime": "compensated",
    }  # fmt: skip
    assert after.new_notices == 1  # late again: a new notice (ana and bia are away)
    with session_scope() as s:
        keys = list(accounts_store.notices_of(s)["idempotency_key"])
    assert keys[-1].endswith(":late:2026-12-11:c1")
    mails = [m for m in smtp_peer.received if str(m.message["Subject"]).startswith("[obligation")]
    assert [m.rcpt_tos for m in mails] == [("ana@example.com",), ("caio@example.com",)]

    events(
        "again",
        {"obligation": "terms", "kind": "invoiced", "at": "2026-12-15T09:00:00Z"},
        {"item": "pallets", "kind": "partially_delivered", "quantity": "10",
         "at": "2026-12-15T09:00:00Z"},
    )  # fmt: skip
    watch(as_of=at(15, 10))
    assert {k: states()[k] for k in ("pallets", "terms")} == {"pallets": "met", "terms": "met"}
