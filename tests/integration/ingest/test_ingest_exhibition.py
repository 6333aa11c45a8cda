"""Exhibition ingestion end to end against real SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from benchmarks.leadgen import generate, write_csv
from config.policies import get_ingest_policies
from config.settings import CONFIG_DIR, get_settings
from connectors.database import ingest_store
from connectors.database.engine import make_engine, session_scope
from connectors.database.ingest_models import (
    Contact,
    ContactHistory,
    ContactIdentifier,
    SourceFile,
    SourceRow,
)
from connectors.database.ingest_store import BULK_LOADED, contacts_by_identifier
from flows.ingest import ingest_exhibition_leads as ingest_exhibition_leads_flow
from flows.ingest import sample_exports
from tasks.common.exports import export_frame, export_query, write_export
from tasks.ingest.pipeline import known_candidates, register_files, resolve_and_store, stage_file
from tasks.ingest.staging import StagedFile, StagingWorkerError, read_staged, stage_all
from tests.flow_runs import run_to_end

pytestmark = pytest.mark.usefixtures("prefect_harness")
SAMPLES = CONFIG_DIR / "samples" / "exhibitions"


ingest_exhibition_leads = run_to_end(ingest_exhibition_leads_flow)


def counts() -> dict[str, int]:
    with session_scope() as s:
        return {
            "rows": s.scalar(select(func.count()).select_from(SourceRow)) or 0,
            "contacts": s.scalar(select(func.count()).select_from(Contact)) or 0,
            "history": s.scalar(select(func.count()).select_from(ContactHistory)) or 0,
            "files": s.scalar(select(func.count()).select_from(SourceFile)) or 0,
        }


def test_sample_exports_land_with_every_row_accounted_for(database: str) -> None:
    summary = ingest_exhibition_leads(sample_exports(), event="demo")
    assert summary.rows_in == 21 and summary.reconciles
    assert (summary.accepted, summary.duplicates, summary.quarantined) == (11, 4, 6)
    assert summary.quarantined_by_reason == {
        "formula_injection": 2,
        "invalid_email": 1,
        "malformed_row": 1,
        "no_contact": 2,
    }
    assert counts()["rows"] == 21 and counts()["contacts"] == 11
    with session_scope() as s:
        rows = s.execute(
            select(SourceRow.disposition, SourceRow.reason, SourceRow.contact_id)
        ).all()
    assert all(r.reason for r in rows if r.disposition == "quarantined")
    assert all(r.contact_id for r in rows if r.disposition != "quarantined")


def test_reingesting_the_same_files_changes_nothing(database: str) -> None:
    ingest_exhibition_leads(sample_exports(), event="demo")
    before = counts()
    again = ingest_exhibition_leads(sample_exports(), event="demo")
    assert counts() == before
    assert again.rows_in == 0 and {f.status for f in again.files} == {"skipped"}


def test_a_later_export_updates_known_people_and_keeps_their_history(
    database: str, tmp_path: Path
) -> None:
    first = tmp_path / "day1.csv"
    first.write_text(
        "Nome;Sobrenome;E-mail;Empresa;Cargo\n"
        "Ana;Costa;ana@horizonte.com.br;Horizonte Ltda;Compradora\n",
        encoding="utf-8",
    )
    second = tmp_path / "day2.csv"
    second.write_text(
        "First Name,Last Name,Email,Company,Job Title\n"
        "ANA,COSTA,Ana@Horizonte.com.br,HORIZONTE LTDA.,Head of Procurement\n",
        encoding="utf-8",
    )
    ingest_exhibition_leads([str(first)])
    summary = ingest_exhibition_leads([str(second)])
    assert (summary.accepted, summary.duplicates, summary.matched_existing) == (0, 1, 1)
    assert summary.updated_contacts == 1
    with session_scope() as s:
        contact = s.execute(select(Contact)).scalar_one()
        change = s.execute(select(ContactHistory)).scalar_one()
    assert contact.job_title == "Head of Procurement" and contact.first_name == "Ana"
    assert (change.field, change.old_value, change.new_value) == (
        "job_title",
        "Compradora",
        "Head of Procurement",
    )


def test_row_numbers_are_what_a_spreadsheet_user_sees(database: str, tmp_path: Path) -> None:
    path = tmp_path / "titled.csv"
    path.write_text(
        'Export da feira\n\nNome;E-mail;Empresa;Observações\nA;a@x.com.br;X;"duas\nlinhas"\n'
        ";;;\nB;b@x.com.br;X;ok\n",
        encoding="utf-8",
    )
    ingest_exhibition_leads([str(path)])
    with session_scope() as s:
        numbers = s.scalars(select(SourceRow.row_number).order_by(SourceRow.row_number)).all()
    assert numbers == [1, 3]  # the blank row 2 is not a lead but still counts as a row


def test_an_unmappable_file_is_rejected_and_the_others_still_land(
    database: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Foo;Bar\n1;2\n", encoding="utf-8")
    summary = ingest_exhibition_leads([str(bad), *sample_exports()[:1]])
    rejected = summary.files[0]
    assert rejected.status == "rejected" and "Foo" in (rejected.error or "")
    assert summary.files[1].status == "ingested" and summary.rows_in == 11
    # Once its headers are fixed the same content is not "already ingested".
    again = ingest_exhibition_leads([str(bad)])
    assert again.files[0].status == "rejected"


def test_exports_list_every_row_and_neutralise_formulas(database: str) -> None:
    ingest_exhibition_leads(sample_exports(), event="demo")
    rows = export_frame("rows")
    assert {"source_file", "source_row", "disposition", "reason", "contact_id"} <= set(rows)
    assert len(rows) == 21
    out = io.StringIO()
    assert write_export("quarantine", "csv", out) == 6
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(records) == 6 and {r["disposition"] for r in records} == {"quarantined"}
    assert not any(v.startswith(("=", "@")) for r in records for v in r.values())
    buffer = io.StringIO()
    write_export("contacts", "json", buffer)
    contacts = json.loads(buffer.getvalue())
    assert len(contacts) == 11 and all(c["contact_id"] for c in contacts)


def test_the_quarantine_export_reads_quarantined_rows_by_their_own_index(database: str) -> None:
    """Only quarantined rows are indexed by disposition (a partial index), and the export
    finds them through it rather than by reading every row."""
    ingest_exhibition_leads(sample_exports(), event="demo")
    with session_scope() as s:
        conn = s.connection()
        query = export_query("quarantine").compile(
            dialect=conn.dialect, compile_kwargs={"literal_binds": True}
        )
        if database == "postgres":
            definition = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_source_rows_quarantined'"
            ).scalar_one()
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # 21 rows: a scan is cheaper
            plan = conn.exec_driver_sql(f"EXPLAIN {query}").scalars().all()
        else:
            definition = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_source_rows_quarantined'"
            ).scalar_one()
            plan = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}")]
    assert "WHERE" in definition.upper() and "'quarantined'" in definition
    assert any("ix_source_rows_quarantined" in line for line in plan), plan


def ingestion_schema() -> list[tuple[str, ...]]:
    """Every index and constraint of the bulk-loaded tables, as the database spells them."""
    tables = [t.name for t in BULK_LOADED]
    with session_scope() as s:
        conn = s.connection()
        if conn.dialect.name == "postgresql":
            query = text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE conrelid::regclass::text = ANY(:tables)"
                " UNION ALL SELECT tablename, indexname, indexdef FROM pg_indexes"
                " WHERE tablename = ANY(:tables) ORDER BY 1, 2, 3"
            )
            rows = conn.execute(query, {"tables": tables}).all()
        else:
            query = text("SELECT tbl_name, name, sql FROM sqlite_master ORDER BY 1, 2")
            rows = [r for r in conn.execute(query) if r[0] in tables]
    return [tuple(r) for r in rows]


def test_a_load_that_at_least_doubles_the_tables_builds_their_indexes_and_keys_once(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rows land as row by row (the counts pinned above), and every index and key
    is back, as declared, when the load commits; a load smaller than what is stored goes
    row by row."""
    monkeypatch.setenv("ACCOUNTFLOW_BULK_LOAD_MIN_ROWS", "10")
    get_settings.cache_clear()
    schema = ingestion_schema()
    assert len(schema) > 2 * len(BULK_LOADED)
    first = ingest_exhibition_leads(sample_exports(), event="demo")
    assert first.bulk_load and (first.accepted, first.duplicates, first.quarantined) == (11, 4, 6)
    assert ingestion_schema() == schema
    later = tmp_path / "later.csv"
    write_csv([g[0] for g in generate(15, seed=4, bad_rate=0.0)], later)
    second = ingest_exhibition_leads([str(later)])
    assert not second.bulk_load and second.rows_in == 15 and second.reconciles
    assert counts()["rows"] == 36


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_a_bulk_load_that_would_wait_on_a_reader_goes_row_by_row_instead(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a bulk load needs the tables to itself; a session reading contacts
    keeps them, and new readers would queue behind a load waiting for it."""
    monkeypatch.setenv("ACCOUNTFLOW_BULK_LOAD_MIN_ROWS", "10")
    get_settings.cache_clear()
    monkeypatch.setattr(ingest_store, "BULK_LOCK_WAIT", "200ms")
    schema = ingestion_schema()
    reader = make_engine(get_settings().resolved_database_url())
    try:
        with reader.connect() as conn:  # its transaction holds a lock on contacts until it ends
            assert conn.execute(select(func.count()).select_from(Contact)).scalar() == 0
            summary = ingest_exhibition_leads(sample_exports(), event="demo")
            # Read committed: the same transaction's next read sees the committed load.
            assert conn.execute(select(func.count()).select_from(Contact)).scalar() == 11
    finally:
        reader.dispose()
    assert not summary.bulk_load and summary.accepted == 11
    assert counts()["contacts"] == 11 and ingestion_schema() == schema


FAIR_HEADER = "First Name,Last Name,Email Address,Company,Job Title,Phone,Country\n"


def test_a_contacts_own_email_and_phone_live_on_its_row_and_the_others_still_match(
    database: str, tmp_path: Path
) -> None:
    """contact_identifiers holds what a contact was seen with besides its own email and
    phone: a second address, a phone it replaced. Matching and lookups find it by all."""

    def export(name: str, *lines: str) -> str:
        path = tmp_path / name
        path.write_text(FAIR_HEADER + "".join(lines), encoding="utf-8")
        return str(path)

    day1 = export(
        "day1.csv",
        "Ana,Costa,ana@horizonte.com.br,Horizonte Ltda,Buyer,+55 11 91234-5678,BR\n",
        "Ana,Costa,ana.costa@gmail.com,Horizonte Ltda,Buyer,+55 11 91234-5678,BR\n",
    )
    day2 = export(
        "day2.csv", "Ana,Costa,ana@horizonte.com.br,Horizonte Ltda,Buyer,+55 11 99876-5432,BR\n"
    )
    assert ingest_exhibition_leads([day1]).accepted == 1
    assert ingest_exhibition_leads([day2]).matched_existing == 1
    with session_scope() as s:
        ana = s.scalars(select(Contact)).one()
        others = s.execute(select(ContactIdentifier.kind, ContactIdentifier.value)).all()
    assert (ana.email, ana.phone) == ("ana@horizonte.com.br", "+5511998765432")
    assert sorted(others) == [("email", "ana.costa@gmail.com"), ("phone", "+5511912345678")]

    day3 = export(
        "day3.csv",
        "Ana,Costa,,,,+55 11 91234-5678,BR\n",  # the phone she had
        "Ana,Costa,ana.costa@gmail.com,,,,BR\n",  # her other address
        "Ana,Costa,,,,+55 11 99876-5432,BR\n",  # her own phone
    )
    summary = ingest_exhibition_leads([day3])
    assert (summary.accepted, summary.duplicates, summary.matched_existing) == (0, 3, 1)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 1
        assert s.scalar(select(func.count()).select_from(ContactIdentifier)) == 2
        by_email = contacts_by_identifier(
            s, "email", ["ana@horizonte.com.br", "ana.costa@gmail.com", "x@y.com"]
        )
        by_phone = contacts_by_identifier(s, "phone", ["+5511912345678", "+5511998765432"])
    assert by_email == {"ana@horizonte.com.br": ana.id, "ana.costa@gmail.com": ana.id}
    assert by_phone == {"+5511912345678": ana.id, "+5511998765432": ana.id}


def test_a_new_batch_reads_only_the_stored_contacts_it_can_link_to(
    database: str, tmp_path: Path
) -> None:
    """Matching reads the stored contacts sharing an email, phone, company or corporate
    domain with the batch, not the whole database, and still resolves to each of them."""
    first = tmp_path / "first.csv"
    first.write_text(
        FAIR_HEADER
        + "Ana,Souza,ana@acme-tools.com.br,Acme Ferramentas Ltda,Buyer,,BR\n"
        + "Bruno,Lima,,Globex Brasil,Engineer,+55 11 91234-5678,BR\n"
        + "Carla,Dias,carla@initech.com,Initech,CFO,,US\n"
        + "Davi,Rocha,davi@umbrella.example,Umbrella Corp,CEO,,US\n"
        + "Elisa,Prado,elisa@acme-tools.com.br,Acme Ferramentas Ltda,Analyst,,BR\n",
        encoding="utf-8",
    )
    ingest_exhibition_leads([str(first)], event="first")
    second = tmp_path / "second.csv"
    second.write_text(
        FAIR_HEADER
        + "Ana,Souza,ana@acme-tools.com.br,,Head of Purchasing,,BR\n"  # email
        + "Bruno,Lima,,,Engineer,11 91234-5678,BR\n"  # phone and name
        # Name and corporate domain: a shared mailbox there (another personal address at
        # the same domain would be a namesake colleague).
        + "Carla,Dias,compras@initech.com,,CFO,,US\n"
        + "Fabio,Nunes,fabio@acme-tools.com.br,Acme Feramentas Ltda,Buyer,,BR\n",  # typo
        encoding="utf-8",
    )
    [entry] = register_files.fn([str(second)], "second")
    staged = stage_file.fn(entry, None, str(tmp_path / "staging"))
    good = read_staged(str(staged.staged_path), without=["raw"])
    with session_scope() as s:
        emails = select(Contact.email, Contact.id).where(Contact.email.is_not(None))
        id_of: dict[str | None, int | None] = dict(s.execute(emails).tuples().all())
        id_of["bruno"] = s.scalar(select(Contact.id).where(Contact.first_name == "Bruno"))
        known = known_candidates(s, good, get_ingest_policies().matching)
    read = set(known["contact_id"].dropna().astype(int))
    linked = {id_of[k] for k in ("ana@acme-tools.com.br", "bruno", "carla@initech.com")}
    assert read == linked | {id_of["elisa@acme-tools.com.br"]}  # Elisa: Acme, via the typo
    assert id_of["davi@umbrella.example"] not in read
    assert set(known["company_key"].dropna()) >= {"acme ferramentas"}

    summary = ingest_exhibition_leads([str(second)], event="second")
    assert (summary.accepted, summary.duplicates, summary.matched_existing) == (1, 3, 3)
    with session_scope() as s:
        fabio = s.scalars(select(Contact).where(Contact.first_name == "Fabio")).one()
        ana = s.scalars(select(Contact).where(Contact.first_name == "Ana")).one()
    assert fabio.company_id == ana.company_id and ana.job_title == "Head of Purchasing"


def _two_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int) -> list[StagedFile]:
    """Two registered exports of ``rows`` leads in all (a UTF-8 ``,`` and a cp1252 ``;``
    with a title row), with two staging workers allowed."""
    monkeypatch.setenv("ACCOUNTFLOW_STAGING_WORKERS", "2")
    get_settings.cache_clear()
    leads = [g[0] for g in generate(rows, seed=4)]
    paths = [tmp_path / "a.csv", tmp_path / "b.csv"]
    write_csv(leads[: rows // 2], paths[0])
    write_csv(leads[rows // 2 :], paths[1], delimiter=";", encoding="cp1252", title_rows=1)
    return register_files.fn([str(p) for p in paths], "fair")


def _staged_in_process_and_in_workers_alike(entries: list[StagedFile], tmp_path: Path) -> list[int]:
    """Stage ``entries`` in this process and in workers (each CSV in pieces); assert both
    give the same entries and the same staged frames; return the rows each file held."""
    inline = stage_all(entries, None, str(tmp_path / "one"), parallel_min_bytes=10**12)
    parallel = stage_all(
        entries, None, str(tmp_path / "two"), parallel_min_bytes=0, split_min_bytes=0
    )
    assert [f.rows_in for f in parallel] == [f.rows_in for f in inline]
    for a, b in zip(inline, parallel, strict=True):
        assert a.model_dump(exclude={"staged_path"}) == b.model_dump(exclude={"staged_path"})
        assert read_staged(str(a.staged_path)).equals(read_staged(str(b.staged_path)))
    return [f.rows_in for f in parallel]


def test_files_staged_in_worker_processes_match_files_staged_in_process(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _two_exports(tmp_path, monkeypatch, 300)
    assert _staged_in_process_and_in_workers_alike(entries, tmp_path) == [150, 150]


def test_two_workers_stage_three_files_as_one_process_would(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker takes the next file when it finishes one: three files, two workers."""
    entries = _two_exports(tmp_path, monkeypatch, 200)
    third = tmp_path / "c.csv"
    write_csv([g[0] for g in generate(90, seed=9)], third, delimiter="\t")
    entries += register_files.fn([str(third)], "fair")
    entries[-1] = entries[-1].model_copy(update={"order": 2})
    assert _staged_in_process_and_in_workers_alike(entries, tmp_path) == [100, 100, 90]


def test_a_staging_worker_that_fails_says_which_file_and_why(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = _two_exports(tmp_path, monkeypatch, 40)
    get_settings()  # this process keeps its settings; only the workers read the next one
    monkeypatch.setenv("ACCOUNTFLOW_MAX_FIELD_CHARS", "many")
    with pytest.raises(StagingWorkerError, match=r"(?s)[ab]\.csv exited with 1.*max_field_chars"):
        stage_all(entries, None, str(tmp_path / "st"), parallel_min_bytes=0)


def test_concurrent_ingestions_of_the_same_people_create_each_contact_once(
    database: str, tmp_path: Path
) -> None:
    rows = [g[0] for g in generate(600, seed=3, bad_rate=0.0)]
    paths = []
    for k in range(2):
        path = tmp_path / f"part{k}.csv"
        write_csv(rows[k * 200 : k * 200 + 400], path)  # the middle 200 rows are in both
        paths.append(path)
    staged = [
        stage_file.fn(e, None, str(tmp_path / "st"))
        for e in register_files.fn([str(p) for p in paths], None)
    ]
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            resolve_and_store.fn([staged[k]], None)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with session_scope() as s:
        emails = s.scalars(select(Contact.email).where(Contact.email.is_not(None))).all()
    assert len(emails) == len(set(emails))


@pytest.mark.slow
def test_a_crash_mid_run_loses_nothing_and_duplicates_nothing(
    database: str, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    path = tmp_path / "big.csv"
    write_csv([g[0] for g in generate(6_000, seed=17)], path)
    # A first load this size goes in bulk: a kill while indexes and keys are off leaves
    # them as they were.
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "ACCOUNTFLOW_BULK_LOAD_MIN_ROWS": "1000",
    }
    schema = ingestion_schema()
    cmd = [sys.executable, "-m", "flows.cli", "ingest", "exhibition", str(path), "--json"]
    for delay in (2.0, 5.0):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = counts()
        # Either the whole batch is stored or none of it.
        assert state["rows"] in (0, 6_000)
        assert ingestion_schema() == schema
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ingestion_schema() == schema
    final = counts()
    assert final["rows"] == 6_000 and final["files"] == 1
    with session_scope() as s:
        emails = s.scalars(select(Contact.email).where(Contact.email.is_not(None))).all()
    assert len(emails) == len(set(emails))
