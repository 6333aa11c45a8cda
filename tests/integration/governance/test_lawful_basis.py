"""Every contact's lawful basis and source, set at ingestion (fair files and the inbox),
raised by a consent column or a contract, shown by `privacy export`, exported, and
backfilled for contacts that existed before; SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from typer.testing import CliRunner

from connectors.database.accounts_models import Contract
from connectors.database.engine import get_engine, session_scope
from connectors.database.governance_models import ContactSource
from connectors.database.ingest_models import Contact
from flows.cli import app
from flows.governance import check_freshness
from flows.inbox import ingest_inbox as ingest_inbox_flow
from flows.ingest import ingest_exhibition_leads as ingest_flow
from tasks.governance.privacy import export_person
from tests.flow_runs import run_to_end
from tests.migrations import before_migration

pytestmark = pytest.mark.usefixtures("prefect_harness")
ingest = run_to_end(ingest_flow)
ingest_inbox = run_to_end(ingest_inbox_flow)

HEADER = ["Nome", "Sobrenome", "E-mail", "Empresa", "Cargo", "Consentimento"]
MAIL = """From: "Rita Lopes" <rita@lopes-logistica.com.br>
To: vendas@accountflow.example
Subject: Cotação de frete
Date: Tue, 17 Mar 2026 10:01:00 -0300
Message-ID: <rita-0001@lopes-logistica.com.br>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Bom dia, gostaria de uma cotação de frete para 20 paletes por mês.

Rita Lopes
Compradora, Lopes Logística Ltda
"""


def _fair(path: Path, rows: list[list[str]]) -> str:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return str(path)


def _source(email: str) -> ContactSource:
    with session_scope() as s:
        contact_id = s.scalar(select(Contact.id).where(Contact.email == email))
        assert contact_id is not None, email
        found = s.get(ContactSource, contact_id)
        assert found is not None, email
        s.expunge(found)
        return found


def test_a_fair_row_is_held_on_the_fairs_basis_or_on_consent_when_its_column_says_so(
    database: str, tmp_path: Path
) -> None:
    fair = _fair(
        tmp_path / "expo-rio-2026.csv",
        [
            ["Ana", "Souza", "ana@horizonte.com.br", "Horizonte SA", "Compras", "Sim"],
            ["Bruno", "Lima", "bruno@vale-verde.com.br", "Vale Verde", "Diretor", "Não"],
            ["Caio", "Reis", "caio@norte.com.br", "Norte Ltda", "Gerente", ""],
        ],
    )
    ingest([fair], event="Expo Rio 2026")
    ana, bruno = _source("ana@horizonte.com.br"), _source("bruno@vale-verde.com.br")
    assert (ana.lawful_basis, ana.basis_rule) == ("consent", "consent_column")
    assert (bruno.lawful_basis, bruno.basis_rule) == ("legitimate_interest", "source:exhibition")
    assert _source("caio@norte.com.br").lawful_basis == "legitimate_interest"
    assert ana.source_kind == "exhibition" and ana.source_event == "Expo Rio 2026"
    assert ana.source_file == "expo-rio-2026.csv" and ana.source_row_number == 1
    assert bruno.source_row_number == 2 and ana.source_row_id is not None

    # Bruno says yes at the next fair: raised to consent, his first source stays.
    later = _fair(
        tmp_path / "expo-bh-2026.csv",
        [["Bruno", "Lima", "bruno@vale-verde.com.br", "Vale Verde", "Diretor", "sim"]],
    )
    ingest([later], event="Expo BH 2026")
    again = _source("bruno@vale-verde.com.br")
    assert (again.lawful_basis, again.basis_rule) == ("consent", "consent_column")
    assert again.source_file == "expo-rio-2026.csv" and again.source_event == "Expo Rio 2026"


def test_an_inbox_lead_is_sourced_to_its_message_id(database: str, tmp_path: Path) -> None:
    mails = tmp_path / "mail"
    mails.mkdir()
    (mails / "rita.eml").write_text(MAIL, encoding="utf-8")
    ingest_inbox(eml_dir=str(mails))
    rita = _source("rita@lopes-logistica.com.br")
    assert rita.source_kind == "inbox" and rita.lawful_basis == "legitimate_interest"
    assert rita.message_id == "<rita-0001@lopes-logistica.com.br>"
    assert rita.inbound_message_id is not None and rita.basis_rule == "source:inbox"


def test_a_contract_signed_later_raises_its_companys_contacts_and_export_shows_it(
    database: str, tmp_path: Path
) -> None:
    fair = _fair(
        tmp_path / "expo-sul.csv",
        [["Dora", "Melo", "dora@sulcargas.com.br", "Sul Cargas", "Compras", ""]],
    )
    ingest([fair], event="Expo Sul")
    with session_scope() as s:
        company_id = s.scalar(
            select(Contact.company_id).where(Contact.email == "dora@sulcargas.com.br")
        )
        assert company_id is not None
        s.add(
            Contract(reference="CT-1", company_id=company_id, owner_id="ana",
                     start_date=date(2026, 1, 1), source="test")
        )  # fmt: skip
    summary = check_freshness(as_of=datetime(2026, 12, 1))
    assert summary.bases_raised_to_contract == 1
    dora = _source("dora@sulcargas.com.br")
    assert (dora.lawful_basis, dora.basis_rule) == ("contract", "contract")

    exported = export_person("dora@sulcargas.com.br")
    shown = exported["lawful_basis_and_source"]
    assert shown["lawful_basis"] == "contract" and shown["source_event"] == "Expo Sul"
    out = tmp_path / "sources.json"
    result = CliRunner().invoke(app, ["export", "sources", "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [(r["lawful_basis"], r["source_file"]) for r in rows] == [("contract", "expo-sul.csv")]


_T = {
    name: sa.table(name, *(sa.column(c) for c in cols))
    for name, cols in {
        "import_batches": ["id", "source", "started_at"],
        "source_files": ["id", "batch_id", "name", "path", "sha256", "size_bytes", "event",
                         "status", "rows_in", "ingested_at"],
        "contacts": ["id", "email", "is_free_mail", "company_id", "created_at", "updated_at"],
        "companies": ["id", "name", "name_key", "created_at", "updated_at"],
        "source_rows": ["id", "file_id", "row_number", "raw", "disposition", "contact_id"],
        "inbound_messages": ["id", "source", "size", "message_id", "label", "contact_id",
                             "oversize", "ingested_at"],
        "contracts": ["id", "reference", "company_id", "owner_id", "start_date", "source",
                      "created_at", "updated_at"],
    }.items()
}  # fmt: skip


def test_the_migration_backfills_existing_contacts_from_their_first_source(
    database: str,
) -> None:
    at = datetime(2026, 3, 1)
    with before_migration("0007_governance"), get_engine().begin() as conn:
        conn.execute(sa.insert(_T["import_batches"]), [{"id": 1, "source": "x", "started_at": at}])
        conn.execute(
            sa.insert(_T["companies"]),
            [{"id": 1, "name": "C", "name_key": "c", "created_at": at, "updated_at": at}],
        )
        conn.execute(
            sa.insert(_T["source_files"]),
            [
                {"id": 1, "batch_id": 1, "name": "fair.csv", "path": "fair.csv", "sha256": "a",
                 "size_bytes": 1, "event": "Expo", "status": "ingested", "rows_in": 2,
                 "ingested_at": at},
                {"id": 2, "batch_id": 1, "name": "inbox INBOX:7", "path": "INBOX", "sha256": "b",
                 "size_bytes": 1, "event": "inbox", "status": "ingested", "rows_in": 1,
                 "ingested_at": at},
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(_T["contacts"]),
            [
                {"id": i, "email": f"p{i}@x.example", "is_free_mail": False,
                 "company_id": 1 if i == 3 else None, "created_at": at, "updated_at": at}
                for i in (1, 2, 3, 4)
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(_T["source_rows"]),
            [
                {"id": 10, "file_id": 1, "row_number": 5, "raw": "{}",
                 "disposition": "accepted", "contact_id": 1},
                {"id": 11, "file_id": 2, "row_number": 1, "raw": "{}",
                 "disposition": "accepted", "contact_id": 2},
                {"id": 12, "file_id": 1, "row_number": 6, "raw": "{}",
                 "disposition": "accepted", "contact_id": 3},
                {"id": 13, "file_id": 2, "row_number": 2, "raw": "{}",
                 "disposition": "duplicate", "contact_id": 1},
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(_T["inbound_messages"]),
            [{"id": 5, "source": "INBOX:7", "size": 1, "message_id": "<m7@x>", "label": "lead",
              "contact_id": 2, "oversize": False, "ingested_at": at}],
        )  # fmt: skip
        conn.execute(
            sa.insert(_T["contracts"]),
            [{"id": 1, "reference": "CT-9", "company_id": 1, "owner_id": "ana",
              "start_date": date(2026, 1, 1), "source": "x", "created_at": at,
              "updated_at": at}],
        )  # fmt: skip
    with session_scope() as s:
        got = {
            r.contact_id: (r.source_kind, r.lawful_basis, r.source_file, r.source_row_number,
                           r.message_id)
            for r in s.scalars(select(ContactSource))
        }  # fmt: skip
    assert got == {
        1: ("exhibition", "legitimate_interest", "fair.csv", 5, None),
        2: ("inbox", "legitimate_interest", "inbox INBOX:7", 1, "<m7@x>"),
        3: ("exhibition", "contract", "fair.csv", 6, None),
        4: ("unknown", "unknown", None, None, None),
    }
