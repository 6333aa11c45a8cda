"""A person from a fair file and the inbox: export, erase, re-ingest the same file and mail,
and find them suppressed and uncontacted; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from config.settings import CONFIG_DIR
from connectors.database.engine import session_scope
from connectors.database.governance_models import AuditRecord
from connectors.database.inbox_models import InboundMessage, Suppression
from connectors.database.ingest_models import Contact, SourceRow
from connectors.database.outreach_store import suppressed_among
from flows.cli import app
from flows.inbox import ingest_inbox as ingest_inbox_flow
from flows.ingest import ingest_exhibition_leads as ingest_flow
from tasks.governance.privacy import UnknownPersonError, erase_person, export_person
from tests.flow_runs import run_to_end

pytestmark = pytest.mark.usefixtures("prefect_harness")
ingest = run_to_end(ingest_flow)
ingest_inbox = run_to_end(ingest_inbox_flow)

FAIR = CONFIG_DIR / "samples" / "exhibitions" / "expo-sp-2026.csv"
EMAIL = "carlos@transportes-rapido.com.br"
MAIL = f"""From: "Carlos Pereira" <{EMAIL}>
To: vendas@accountflow.example
Subject: Orçamento para a frota
Date: Tue, 17 Mar 2026 10:01:00 -0300
Message-ID: <carlos-0001@transportes-rapido.com.br>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Bom dia, conhecemos vocês na Expo SP. Podem mandar um orçamento para 200 caminhões?

Carlos Pereira
Gerente de Logística, Transportes Rápido S/A
+55 21 99876-5432
"""


def _land(tmp: Path, name: str) -> None:
    """The fair file (a fresh copy, so it is read again) and the mail, ingested."""
    copy = tmp / name
    copy.write_bytes(FAIR.read_bytes() + f"\n;;;;;;;;;;;;;{name}\n".encode("latin-1"))
    ingest([str(copy)], event="Expo SP 2026")
    mails = tmp / f"mail-{name}"
    mails.mkdir()
    (mails / "carlos.eml").write_text(
        MAIL.replace("carlos-0001", f"carlos-{name}"), encoding="utf-8"
    )
    ingest_inbox(eml_dir=str(mails))


def _carlos() -> list[int]:
    with session_scope() as s:
        return list(s.scalars(select(Contact.id).where(func.lower(Contact.email) == EMAIL)))


def test_export_erase_and_reingest_leaves_the_person_suppressed_and_uncontacted(
    database: str, tmp_path: Path
) -> None:
    _land(tmp_path, "first.csv")
    [contact_id] = _carlos()

    exported = export_person(EMAIL)
    assert exported["contact"][0]["email"] == EMAIL
    assert exported["source_rows"] and any(m["from_address"] == EMAIL for m in exported["messages"])
    json.dumps(exported)  # all of it is JSON

    counts = erase_person(EMAIL)
    assert counts["contact"] == 1 and counts["erased_keys"] >= 2
    with session_scope() as s:
        contact = s.get(Contact, contact_id)
        assert contact is not None and contact.email is None and contact.full_name is None
        raws = s.scalars(select(SourceRow.raw).where(SourceRow.contact_id == contact_id)).all()
        assert raws and all(r == {"erased": True} for r in raws)
        assert (
            s.scalar(select(func.count()).where(func.lower(InboundMessage.from_address) == EMAIL))
            == 0
        )
        kept = s.scalars(select(Suppression.address).where(Suppression.reason == "erased")).all()
        assert kept and all(a.startswith("erased:") and EMAIL not in a for a in kept)
        audit = s.scalars(select(AuditRecord).where(AuditRecord.action == "privacy.erase")).one()
        assert audit.target == f"contact:{contact_id}" and EMAIL not in json.dumps(audit.after)
    with pytest.raises(UnknownPersonError):
        export_person(EMAIL)

    _land(tmp_path, "again.csv")
    assert _carlos() == []  # neither the file nor the mail brought them back
    with session_scope() as s:
        reasons = s.scalars(
            select(SourceRow.reason).where(SourceRow.reason == "erased_subject")
        ).all()
        assert reasons  # the fair row, kept verbatim and quarantined
        # The second mail is stored (nothing is lost) but names no contact with an address.
        linked = (
            s.execute(
                select(Contact.email)
                .join(InboundMessage, InboundMessage.contact_id == Contact.id)
                .where(InboundMessage.message_id.like("%carlos-again%"))
            )
            .scalars()
            .all()
        )
        assert all(email is None for email in linked)
        # Should they reach an outbox row by another road, the claim suppresses them.
        row = {"id": 1, "recipient": EMAIL.upper(), "contact_id": 999, "channel": "email"}
        assert suppressed_among(s, [row]) == {1: "erased"}


def test_the_cli_exports_and_erases_by_email(database: str, tmp_path: Path) -> None:
    _land(tmp_path, "first.csv")
    out = tmp_path / "carlos.json"
    runner = CliRunner()
    exported = runner.invoke(app, ["privacy", "export", EMAIL, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert json.loads(out.read_text())["identities"]
    erased = runner.invoke(app, ["privacy", "erase", EMAIL, "--json"])
    assert erased.exit_code == 0 and json.loads(erased.stdout)["contact"] == 1
    again = runner.invoke(app, ["privacy", "erase", EMAIL])
    assert again.exit_code == 1 and "no contact matches" in again.output


def test_erasure_reaches_delivery_events_data_dir_files_and_prefect_artifacts(
    database: str, tmp_path: Path
) -> None:
    from prefect.artifacts import create_table_artifact
    from prefect.client.orchestration import get_client

    from config.settings import get_settings
    from connectors.database.base import utcnow
    from connectors.database.outreach_models import DeliveryEvent, OutboxItem

    _land(tmp_path, "first.csv")
    [contact_id] = _carlos()
    other = "joao.silva@logistica-bh.com.br"  # another visitor on the same export
    with session_scope() as s:
        item = OutboxItem(idempotency_key="k-carlos", campaign="c", step=0, channel="email",
                          contact_id=contact_id, message_id="<k@x>", language="pt",
                          recipient=EMAIL, status="sent", due_at=utcnow())  # fmt: skip
        s.add(item)
        s.flush()
        outbox_id = item.id
        s.add(DeliveryEvent(outbox_id=outbox_id, status="failed",
                            error_message=f"550 5.1.1 <{EMAIL}>: mailbox full"))  # fmt: skip
    data = get_settings().data_dir
    (data / "outbox-mail").mkdir(parents=True, exist_ok=True)
    sent = data / "outbox-mail" / f"{outbox_id}.eml"
    sent.write_bytes(b"To: someone\r\n\r\nhello")  # named by outbox id only
    preview = data / "previews" / "c" / "20261207T100000" / "1-intro.eml"
    preview.parent.mkdir(parents=True)
    preview.write_bytes(f"To: {EMAIL.upper()}\r\nSubject: hi\r\n\r\nOla".encode())
    processed = data / "incoming" / "processed" / "2026-12-07" / "expo.csv"
    processed.parent.mkdir(parents=True)
    processed.write_bytes(FAIR.read_bytes() + f"Joao;Silva;{other};X\n".encode("latin-1"))
    journal = data / "dispatcher-1.journal"
    journal.write_text(f'{{"id": {outbox_id}, "detail": "250 ok {EMAIL}"}}\n{{"id": 9}}\n')
    create_table_artifact(key="failed-outreach", table=[
        {"id": outbox_id, "address": "c***@transportes-rapido.com.br", "status": "failed"}
    ])  # fmt: skip
    create_table_artifact(key="someone-elses", table=[{"id": 12345, "name": "Ana"}])
    create_table_artifact(key="leaky-report", table=[{"who": "Carlos Pereira", "n": 1}])

    held = export_person(EMAIL)  # the export lists what the erasure is about to reach
    assert [e["outbox_id"] for e in held["delivery_events"]] == [outbox_id]
    assert held["confirmations"] == [] and held["talks"] == [] and "bounces" in held

    counts = erase_person(EMAIL)

    assert counts["delivery_events"] == 1 and counts["artifacts_deleted"] == 2
    assert counts["files_deleted"] == 2 and counts["files_masked"] == 1
    assert not sent.exists() and not preview.exists()
    kept = processed.read_bytes().decode("latin-1")
    assert EMAIL not in kept and other in kept and counts["export_lines_dropped"] == 1
    assert EMAIL not in journal.read_text() and '{"id": 9}' in journal.read_text()
    with session_scope() as s:
        assert s.scalars(select(DeliveryEvent.error_message)).all() == [None]
        traces = s.scalars(
            select(AuditRecord).where(AuditRecord.action == "privacy.erase.traces")
        ).one()
        assert traces.after is not None and traces.after["files_deleted"] == 2
    with get_client(sync_client=True) as client:
        left = client.read_artifacts(limit=200)
    texts = [str(a.data).replace("'", '"') for a in left]
    assert not any("Carlos Pereira" in t or f'"id": {outbox_id},' in t for t in texts)
    assert any("12345" in t for t in texts)  # another person's artifact stays
    assert "failed-outreach" in [a.key for a in left]  # published again, without the row
