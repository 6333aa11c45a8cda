"""Exports we did not write: mixed time offsets, a file that fails in a way nobody
foresaw, and one large export staged in pieces by several workers."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from prefect.artifacts import Artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from sqlalchemy import select
from typer.testing import CliRunner

from benchmarks.leadgen import HEADER, generate, write_csv
from config.settings import get_settings
from connectors.database.engine import session_scope
from connectors.database.ingest_models import Contact, SourceRow
from connectors.exhibition_files import CsvPiece, RawTable
from flows.cli import app
from flows.ingest import ingest_exhibition_leads as ingest_exhibition_leads_flow
from flows.ingest import sample_exports
from tasks.ingest import staging
from tasks.ingest.pipeline import register_files
from tasks.ingest.staging import read_staged, stage_all
from tests.flow_runs import run_to_end

pytestmark = pytest.mark.usefixtures("prefect_harness")
ingest_exhibition_leads = run_to_end(ingest_exhibition_leads_flow)


def _artifact(key: str) -> Artifact:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
        )
    assert found, f"no artifact {key}"
    return found[0]


def test_scan_times_with_mixed_offsets_land_in_utc(database: str, tmp_path: Path) -> None:
    path = tmp_path / "app-export.csv"
    path.write_text(
        "Name,Email,Company,Scanned at\n"
        "Ana Lima,ana@lima.example,Lima,2026-10-06T09:00:01+01:00\n"
        "Rui Sol,rui@sol.example,Sol,2026-10-06T09:00:01Z\n"
        "Eva Mar,eva@mar.example,Mar,2026-10-06T09:00:00.123+00:00\n"
        "Ivo Rio,ivo@rio.example,Rio,2026-10-06T09:00:01\n"
        "Ugo Céu,ugo@ceu.example,Ceu,yesterday\n",
        encoding="utf-8",
    )
    summary = ingest_exhibition_leads([str(path)], timezone="Europe/Lisbon")
    assert summary.files[0].status == "ingested", summary.files[0].error
    assert summary.accepted == 5
    with session_scope() as s:
        seen = dict(s.execute(select(Contact.email, Contact.first_seen_at)).tuples().all())
        flags = s.scalars(select(SourceRow.flags).order_by(SourceRow.row_number)).all()
    assert {k: v and v.isoformat() for k, v in seen.items()} == {
        "ana@lima.example": "2026-10-06T08:00:01",
        "rui@sol.example": "2026-10-06T09:00:01",
        "eva@mar.example": "2026-10-06T09:00:00.123000",
        "ivo@rio.example": "2026-10-06T08:00:01",  # Lisbon summer time, UTC+1
        "ugo@ceu.example": None,
    }
    assert "bad_date" in (flags[4] or "") and not any("bad_date" in (f or "") for f in flags[:4])


def _raise_on_marked_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """normalize_table failing on one file only, as an unforeseen bug would."""
    real = staging.normalize_table

    def failing(table: RawTable, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if any("BOOM" in cell for _, row in table.rows for cell in row):
            raise KeyError("an unforeseen bug")
        return real(table, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(staging, "normalize_table", failing)


def _marked_export(tmp_path: Path) -> Path:
    path = tmp_path / "odd.csv"
    path.write_text("Nome;E-mail;Empresa\nBOOM;b@boom.example;Boom\n", encoding="utf-8")
    return path


def test_a_file_that_fails_unexpectedly_is_rejected_and_the_others_land(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _raise_on_marked_rows(monkeypatch)
    summary = ingest_exhibition_leads([str(_marked_export(tmp_path)), *sample_exports()])
    odd = summary.files[0]
    assert odd.status == "rejected"
    assert odd.error and "KeyError" in odd.error and "an unforeseen bug" in odd.error
    assert [f.status for f in summary.files[1:]] == ["ingested"] * len(sample_exports())
    assert summary.rows_in == 21 and summary.reconciles
    table = _artifact("ingest-exhibition-summary").data
    assert "odd.csv" in str(table) and "KeyError" in str(table)
    staged = get_settings().data_dir / "staging"
    assert not list(staged.glob("*.arrow"))  # nothing left behind by the failed file


def test_the_cli_exits_non_zero_when_a_file_failed_and_still_stores_the_others(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _raise_on_marked_rows(monkeypatch)
    good = sample_exports()[0]
    result = CliRunner().invoke(
        app, ["ingest", "exhibition", str(_marked_export(tmp_path)), good, "--json"]
    )
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert [f["status"] for f in out["files"]] == ["rejected", "ingested"]
    with session_scope() as s:
        assert len(s.scalars(select(SourceRow.id)).all()) == out["rows_in"] > 0


def _export_with_quoted_newlines(path: Path, rows: int) -> None:
    """A cp1252 ``;`` export with title rows whose notes hold newlines (\\n and \\r\\n)
    and quotes, blank records and short rows among the leads."""
    leads = [g[0] for g in generate(rows, seed=11)]
    notes = HEADER.index("Observações")
    for i, lead in enumerate(leads):
        if i % 3 == 0:
            lead[notes] = f'visitou o stand\nlinha {i}\r\ndisse "ok"; volta'
    leads[rows // 2 : rows // 2] = [[""] * len(HEADER), ["curta", "linha"]]
    write_csv(leads, path, title_rows=2)


def test_one_large_export_staged_in_pieces_gives_the_rows_staged_whole_gives(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNTFLOW_STAGING_WORKERS", "2")
    get_settings.cache_clear()
    path = tmp_path / "big.csv"
    _export_with_quoted_newlines(path, 3_000)
    entries = register_files.fn([str(path)], "fair")
    planned: list[list[CsvPiece]] = []
    plan = staging.plan_csv_pieces
    monkeypatch.setattr(
        staging, "plan_csv_pieces", lambda *a: planned.append(plan(*a)) or planned[-1]
    )
    whole = stage_all(entries, None, str(tmp_path / "whole"), parallel_min_bytes=10**12)
    pieces = stage_all(
        entries, None, str(tmp_path / "pieces"), parallel_min_bytes=0, split_min_bytes=0
    )
    assert not list((tmp_path / "pieces").glob("*.*.arrow"))  # the pieces were joined
    assert pieces[0].model_dump(exclude={"staged_path"}) == whole[0].model_dump(
        exclude={"staged_path"}
    )
    with (
        pa.ipc.open_file(str(whole[0].staged_path)) as a,
        pa.ipc.open_file(str(pieces[0].staged_path)) as b,
    ):
        assert a.read_all().equals(b.read_all())
    frame = read_staged(str(pieces[0].staged_path))
    # Row 1501 is the blank record: counted, not kept; 1502 the short one.
    assert frame["row_number"].tolist() == [*range(1, 1_501), *range(1_502, 3_003)]
    assert frame["reason"].iloc[1_500] == "malformed_row"
    assert [len(p) for p in planned] == [2]
    assert "linha 3\\r\\ndisse" in frame["raw"].iloc[3]


def test_a_piece_that_fails_rejects_its_file_and_leaves_no_piece_behind(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In this process, as a worker would: the second piece of the file fails."""
    monkeypatch.setenv("ACCOUNTFLOW_STAGING_WORKERS", "2")
    get_settings.cache_clear()
    path = tmp_path / "big.csv"
    _export_with_quoted_newlines(path, 400)
    entries = register_files.fn([str(path)], "fair")
    real = staging.normalize_table

    def second_piece_fails(table: RawTable, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if table.rows and table.rows[0][0] > 1:
            raise KeyError("an unforeseen bug")
        return real(table, *args, **kwargs)  # type: ignore[arg-type]

    def in_process(todo, job, workers):  # type: ignore[no-untyped-def]
        out = []
        while (item := todo.get()) is not None:
            entry, piece = item
            source, into, zone = job["source"], job["staging_dir"], job["timezone"]
            out.append((item, staging.stage_one(entry, source, into, zone, piece)))
        return out

    monkeypatch.setattr(staging, "normalize_table", second_piece_fails)
    monkeypatch.setattr(staging, "_run_worker", in_process)
    staged = stage_all(entries, None, str(tmp_path / "st"), parallel_min_bytes=0, split_min_bytes=0)
    assert staged[0].status == "rejected" and "KeyError" in (staged[0].error or "")
    assert not list((tmp_path / "st").glob("*.arrow"))


def test_the_same_large_export_given_twice_is_staged_twice_in_pieces_that_do_not_meet(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNTFLOW_STAGING_WORKERS", "2")
    get_settings.cache_clear()
    path = tmp_path / "big.csv"
    _export_with_quoted_newlines(path, 600)
    entries = register_files.fn([str(path), str(path)], "fair")
    staged = stage_all(entries, None, str(tmp_path / "st"), parallel_min_bytes=0, split_min_bytes=0)
    assert [f.status for f in staged] == ["ingested", "ingested"]
    assert [f.rows_in for f in staged] == [601, 601]  # the blank record is no row
    assert read_staged(str(staged[1].staged_path))["row_number"].iloc[-1] == 602
