"""Reading badge-scan exports: every CSV dialect and XLSX quirk, and refusing zip bombs."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.policies import get_ingest_policies
from config.settings import Settings
from connectors.exhibition_files import (
    NUL_MARK,
    FileRejected,
    plan_csv_pieces,
    read_table,
    read_table_slices,
)
from tasks.ingest.mapping import looks_like_header

HEADER_PT = "Nome;Sobrenome;E-mail;Empresa;Celular"


def _is_header(cells: object) -> bool:
    return looks_like_header(cells, get_ingest_policies().sources)  # type: ignore[arg-type]


def _read(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], list, dict]:
    t = read_table(path, Settings(), _is_header)
    return t.header, t.rows, t.malformed, t.meta


def test_cp1252_semicolon_file_with_title_rows_reads_accents(tmp_path: Path) -> None:
    row = "João;Conceição;j@x.com.br;Açúcar Ltda;11999999999"
    text = f"Feira X - crachás\r\n\r\n{HEADER_PT}\r\n{row}\r\n"
    path = tmp_path / "a.csv"
    path.write_bytes(text.encode("cp1252"))
    header, rows, malformed, meta = _read(path)
    assert header == ["Nome", "Sobrenome", "E-mail", "Empresa", "Celular"]
    assert rows == [(1, ["João", "Conceição", "j@x.com.br", "Açúcar Ltda", "11999999999"])]
    assert meta["encoding"] == "cp1252" and meta["delimiter"] == ";" and meta["title_rows"] == 2
    assert malformed == []


def test_utf8_bom_comma_file_keeps_quoted_commas_quotes_and_newlines(tmp_path: Path) -> None:
    text = (
        "Nombre,Apellidos,Correo,Compañía,Comentarios\n"
        'Lucía,García,l@x.es,"Iberia, S.L.","dijo ""hola""\ny se fue"\n'
        "Javier,Martín,j@x.es,Iberia SL,ok\n"
    )
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    header, rows, _, meta = _read(path)
    assert header[0] == "Nombre"  # the BOM is not part of the first header
    assert rows[0] == (1, ["Lucía", "García", "l@x.es", "Iberia, S.L.", 'dijo "hola"\ny se fue'])
    assert rows[1][0] == 2  # a quoted newline does not shift row numbers
    assert meta["encoding"] == "utf-8-sig" and meta["delimiter"] == ","


def test_utf16_tab_separated_export_is_read(tmp_path: Path) -> None:
    text = "First Name\tLast Name\tEmail\tCompany\r\nSarah\tJohnson\ts@o.com\tOcean Inc\r\n"
    path = tmp_path / "c.txt"
    path.write_bytes(text.encode("utf-16"))
    header, rows, _, meta = _read(path)
    assert meta["delimiter"] == "\t" and header[2] == "Email"
    assert rows == [(1, ["Sarah", "Johnson", "s@o.com", "Ocean Inc"])]


def test_latin1_bytes_undefined_in_cp1252_still_decode(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"Nome;E-mail;Empresa\r\nJos\x81;j@x.com;ACME\r\n")
    _, rows, _, meta = _read(path)
    assert meta["encoding"] == "latin-1" and rows[0][1][0] == "Jos\x81"


def test_rows_with_too_many_or_too_few_cells_are_kept_as_malformed(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        f"{HEADER_PT}\nA;B;a@x.com;C;1\nA;B;a@x.com;C;1;surprise\nA;B\nA;B;a@x.com;C;1;\n\n\n",
        encoding="utf-8",
    )
    _, rows, malformed, _ = _read(path)
    assert [r[0] for r in rows] == [1, 4]  # a trailing empty cell is not "too many"
    assert [(m[0], m[2]) for m in malformed] == [
        (2, "6 cells, header has 5"),
        (3, "2 cells, header has 5"),
    ]


def test_a_file_read_in_slices_gives_the_same_rows_in_order_with_its_malformed_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.csv"
    lines = [f"A{i};B;a{i}@x.com;C;1" if i % 3 else f"A{i};B" for i in range(1, 11)]
    path.write_text("Export\n" + HEADER_PT + "\n" + "\n".join(lines) + "\n", encoding="cp1252")
    whole = read_table(path, Settings(), _is_header)
    slices = list(read_table_slices(path, Settings(), _is_header, 2))
    assert [len(t.rows) for t in slices] == [2, 2, 2, 1]
    assert [r for t in slices for r in t.rows] == whole.rows
    assert [m for t in slices for m in t.malformed] == whole.malformed
    # each malformed row travels with the rows around it, so slices stay in file order
    numbers = [
        n for t in slices for n in sorted([r[0] for r in t.rows] + [m[0] for m in t.malformed])
    ]
    assert numbers == list(range(1, 11))
    assert all(t.header == whole.header and t.meta == whole.meta for t in slices)


def test_nul_bytes_are_marked_for_normalisation_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"Nome;E-mail;Empresa\nAn\x00a;a@x.com;ACME\n")
    _, rows, _, _ = _read(path)
    assert rows[0][1][0] == f"An{NUL_MARK}a"


def test_xlsx_with_title_rows_blank_column_dates_numeric_phones_and_trailing_rows(
    tmp_path: Path,
) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Trade show 2026"])
    ws.append([])
    ws.append(["First Name", "Last Name", None, "Email Address", "Company", "Phone", "Scan Time"])
    ws.append(
        ["Mike", "Brown", None, "m@o.com", "Ocean", 13055550123, dt.datetime(2026, 4, 2, 9, 30)]
    )
    ws.append([None] * 7)
    ws.append([None] * 7)
    path = tmp_path / "g.xlsx"
    wb.save(path)
    header, rows, malformed, meta = _read(path)
    assert header[:4] == ["First Name", "Last Name", "", "Email Address"]
    assert rows == [
        (1, ["Mike", "Brown", "", "m@o.com", "Ocean", "13055550123", "2026-04-02T09:30:00"])
    ]
    assert malformed == [] and meta["title_rows"] == 2


def test_xlsx_formula_cells_arrive_as_formula_text(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Name", "Email", "Company"])
    ws.append(["Eve", "e@x.com", '=HYPERLINK("http://evil.example","x")'])
    path = tmp_path / "h.xlsx"
    wb.save(path)
    _, rows, _, _ = _read(path)
    assert rows[0][1][2].startswith("=HYPERLINK")


def test_xlsx_date_only_cell_reads_as_a_midnight_timestamp(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Name", "Email", "Scan Date"])
    ws.append(["Eve", "e@x.com", dt.date(2026, 4, 2)])
    path = tmp_path / "d.xlsx"
    wb.save(path)
    assert _read(path)[1] == [(1, ["Eve", "e@x.com", "2026-04-02T00:00:00"])]


def test_formulas_in_a_workbook_of_several_sheets_still_arrive_as_formula_text(
    tmp_path: Path,
) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Name", "Email", "Company"])
    ws.append(["Eve", "e@x.com", "=cmd|' /C calc'!A0"])
    wb.create_sheet("Other").append(["=1+1"])
    path = tmp_path / "two.xlsx"
    wb.save(path)
    rows = _read(path)[1]
    assert rows == [(1, ["Eve", "e@x.com", "=cmd|' /C calc'!A0"])]


def test_xlsx_that_expands_past_the_limit_is_refused_before_opening(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"0" * (50 * 1024 * 1024))
    settings = Settings(xlsx_max_uncompressed_bytes=10 * 1024 * 1024)
    with pytest.raises(FileRejected, match="zip bomb"):
        read_table(path, settings, _is_header)


def test_highly_compressed_entry_is_refused_even_under_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "ratio.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/sharedStrings.xml", b"A" * (20 * 1024 * 1024))
    with pytest.raises(FileRejected, match="compresses"):
        read_table(path, Settings(), _is_header)


def test_a_file_that_is_not_a_spreadsheet_is_rejected_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"this is not a zip")
    with pytest.raises(FileRejected, match="not a valid XLSX"):
        read_table(path, Settings(), _is_header)
    other = tmp_path / "leads.pdf"
    other.write_bytes(b"%PDF")
    with pytest.raises(FileRejected, match="unsupported file type"):
        read_table(other, Settings(), _is_header)


_PIECE_CELLS = st.one_of(
    st.sampled_from(["", " ", "a@x.com", "João", '5" screen', 'say "hi"', "a;b", "a,b"]),
    st.sampled_from(["two\nlines", "cr\ronly", "crlf\r\ninside", "\n", "ç\r\n\r\n", "x\x00y"]),
    st.text(alphabet=st.sampled_from('ab;,"\n\r\x00 éç€'), max_size=12),
)


def _pieces_read(path: Path, pieces: int) -> tuple[list, list, list]:
    planned = plan_csv_pieces(path, _is_header, pieces)
    tables = [t for p in planned for t in read_table_slices(path, Settings(), _is_header, 3, p)]
    return planned, [r for t in tables for r in t.rows], [m for t in tables for m in t.malformed]


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.lists(_PIECE_CELLS, min_size=4, max_size=6), min_size=2, max_size=40),
    dialect=st.sampled_from(
        [("cp1252", ";", 2, "\r\n"), ("utf-8-sig", ",", 0, "\n"), ("utf-8", "\t", 1, "\r")]
    ),
    pieces=st.integers(2, 5),
)
def test_a_csv_read_in_byte_pieces_gives_the_rows_and_numbers_read_whole_gives(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[list[str]],
    dialect: tuple[str, str, int, str],
    pieces: int,
) -> None:
    """Quoted newlines (\\n, \\r, \\r\\n), quotes inside unquoted cells, blank and short
    records, NULs, title rows and a BOM: every piece starts where a record does."""
    encoding, delimiter, title_rows, newline = dialect
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    for _ in range(title_rows):
        writer.writerow(["Exportação de leads"])
    writer.writerow(["Nome", "E-mail", "Empresa", "Observações"])
    for row in rows:
        # A cell with a quote but no delimiter or newline is written bare, as some
        # exporters do: the csv module then reads its quote as text.
        writer.writerow(row)
    path = tmp_path_factory.mktemp("pieces") / "export.csv"
    path.write_bytes(buf.getvalue().encode("utf-8" if encoding == "utf-8-sig" else encoding))
    if encoding == "utf-8-sig":
        path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    whole = list(read_table_slices(path, Settings(), _is_header))
    planned, got_rows, got_malformed = _pieces_read(path, pieces)
    if not planned:  # too few records for the pieces asked
        return
    assert [p.index for p in planned] == list(range(len(planned)))
    assert planned[0].start == 0 and planned[-1].end is None
    assert got_rows == [r for t in whole for r in t.rows]
    assert got_malformed == [m for t in whole for m in t.malformed]


def test_a_large_csv_is_cut_into_pieces_of_about_equal_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows = [f'A{i};B;a{i}@x.com;C;1;"Line one\nline two"' for i in range(1, 2001)]
    path.write_text("Feira\n" + HEADER_PT + ";Notas\n" + "\n".join(rows) + "\n", encoding="cp1252")
    planned, got_rows, _ = _pieces_read(path, 4)
    size = path.stat().st_size
    assert len(planned) == 4
    sizes = [(p.end or size) - p.start for p in planned]
    assert max(sizes) - min(sizes) < size // 20
    assert [r[0] for r in got_rows] == list(range(1, 2001))
    assert got_rows[1500][1][0] == "A1501" and got_rows[1500][1][5] == "Line one\nline two"


def test_a_cell_longer_than_the_csv_modules_limit_is_read_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(f"Nome;E-mail;Notas\nAna;a@x.com;{'x' * 200_000}\n", encoding="utf-8")
    _, rows, _, _ = _read(path)
    assert len(rows[0][1][2]) == 200_000
