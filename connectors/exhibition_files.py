"""Read badge-scan exports (CSV in any common dialect, XLSX) into rows of text cells.

Nothing is interpreted here beyond what a spreadsheet user would see: each record becomes
its cells as text, numbered as the user counts rows (1 = first data row after the header),
and records with the wrong number of cells are kept aside as malformed, not dropped.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from config.settings import Settings

NUL_MARK = "\ue000"  # stands in for NUL bytes until normalisation strips and flags them
DELIMITERS = (",", ";", "\t", "|")
HEADER_SCAN_ROWS = 20
SNIFF_CHARS = 64_000


class FileRejected(ValueError):
    """The file as a whole cannot be read (bomb limits, not a spreadsheet, no header)."""


@dataclass
class RawTable:
    header: list[str]
    rows: list[tuple[int, list[str]]]
    malformed: list[tuple[int, list[str], str]] = field(default_factory=list)
    meta: dict[str, object] = field(default_factory=dict)


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode CSV bytes: BOMs first, then strict UTF-8, then cp1252 (latin-1 for its gaps)."""
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(enc), enc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        # cp1252 leaves five byte values undefined; latin-1 maps every byte.
        return data.decode("latin-1"), "latin-1"


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter that splits the first records into the most consistent width."""
    sample = text[:SNIFF_CHARS]
    best, best_key = ",", (0, 0, 0)
    for delim in DELIMITERS:
        widths = [len(r) for r in _head(csv.reader(io.StringIO(sample), delimiter=delim), 40)]
        widths = [w for w in widths if w > 1]
        if not widths:
            continue
        mode, freq = Counter(widths).most_common(1)[0]
        key = (freq, mode, -DELIMITERS.index(delim))
        if key > best_key:
            best, best_key = delim, key
    return best


def _head(rows: Iterable[list[str]], n: int) -> list[list[str]]:
    out: list[list[str]] = []
    try:
        for row in rows:
            out.append(row)
            if len(out) >= n:
                break
    except csv.Error:
        pass
    return out


def read_csv(
    path: Path, is_header: Callable[[Sequence[str]], bool], slice_rows: int | None = None
) -> Generator[RawTable, None, None]:
    """The file's rows in slices (see ``read_table_slices``).

    The whole text is decoded once to choose the encoding and delimiter, then dropped: the
    records are read from the file as a stream, so a slice's cells, not the file's, are
    held at a time.
    """
    text, encoding = decode_text(path.read_bytes())
    delimiter = sniff_delimiter(text[:SNIFF_CHARS].replace("\x00", NUL_MARK))
    has_nul = "\x00" in text
    del text
    meta: dict[str, object] = {"encoding": encoding, "delimiter": delimiter, "format": "csv"}
    # newline="" as csv wants: lines end at \r, \n or \r\n, and quoted newlines are kept.
    with path.open(encoding=encoding, newline="") as fh:
        # Only a file with NUL bytes pays for a generator step per line.
        lines = (line.replace("\x00", NUL_MARK) for line in fh) if has_nul else fh
        records = csv.reader(lines, delimiter=delimiter, strict=False)
        yield from _tabulate(records, is_header, meta, slice_rows)


def check_zip_limits(path: Path, settings: Settings) -> None:
    """Refuse XLSX files that would expand past our limits, before any reader inflates them."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise FileRejected(f"{path.name}: not a valid XLSX (zip) file") from exc
    if len(infos) > settings.xlsx_max_entries:
        raise FileRejected(f"{path.name}: {len(infos)} zip entries exceed the limit")
    total = sum(i.file_size for i in infos)
    if total > settings.xlsx_max_uncompressed_bytes:
        raise FileRejected(
            f"{path.name}: expands to {total} bytes, over the limit of "
            f"{settings.xlsx_max_uncompressed_bytes} (possible zip bomb)"
        )
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1_000_000 and ratio > settings.xlsx_max_compression_ratio:
            raise FileRejected(
                f"{path.name}: entry {info.filename} compresses {ratio:.0f}:1 (possible zip bomb)"
            )


def cell_text(value: object) -> str:
    """Render an XLSX cell as the text a person sees (phones stored as numbers keep digits)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e17 else repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        # A date-formatted cell is a timestamp at midnight, as openpyxl has always given it.
        return datetime.combine(value, time()).isoformat()
    if isinstance(value, time):
        return value.isoformat()
    return str(value)


# A formula cell in worksheet XML: <c r="C7" ...><f>HYPERLINK(...)</f><v/></c> (the schema puts
# <f> first). Text never holds a raw "<", so every match is markup.
_FORMULA_ELEMENT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s/>]")
_FORMULA_CELL = re.compile(rb"<c\b([^>]*)>\s*<f>([^<]*)</f>")
_CELL_REF = re.compile(rb'\br="([A-Z]{1,3})([0-9]+)"')


def formula_cells(path: Path) -> dict[tuple[int, int], str] | None:
    """Formula text ("=...") by (row, column) from 0, for a workbook with one worksheet.

    None when calamine's values cannot simply be patched: several worksheets with formulas
    somewhere, or a formula not spelled out in its own cell (shared, array, no reference).
    """
    with zipfile.ZipFile(path) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
        xml = zf.read(sheets[0]) if len(sheets) == 1 else b""
        if len(sheets) != 1:
            return {} if not any(_FORMULA_ELEMENT.search(zf.read(n)) for n in sheets) else None
    found: dict[tuple[int, int], str] = {}
    for match in _FORMULA_CELL.finditer(xml):
        ref = _CELL_REF.search(match.group(1))
        if ref is None:
            return None
        col = 0
        for letter in ref.group(1):
            col = col * 26 + letter - 64
        found[(int(ref.group(2)) - 1, col - 1)] = "=" + html.unescape(match.group(2).decode())
    if len(found) != len(_FORMULA_ELEMENT.findall(xml)):
        return None
    return found


def read_xlsx(
    path: Path,
    settings: Settings,
    is_header: Callable[[Sequence[str]], bool],
    slice_rows: int | None = None,
) -> Generator[RawTable, None, None]:
    """Read the first worksheet; the zip-bomb limits are checked before any reader opens it.

    calamine (Rust) reads values several times faster than openpyxl but sees only a
    formula's cached result, and a formula must arrive as its text to be quarantined: the
    formula cells are read from the sheet's XML and laid over calamine's values. A workbook
    where that is not plain (see ``formula_cells``) is read with openpyxl instead.
    """
    check_zip_limits(path, settings)
    import python_calamine

    try:
        formulas = formula_cells(path)
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # zipfile and calamine raise many types for a broken workbook
        raise FileRejected(f"{path.name}: cannot open as XLSX: {exc}") from exc
    if formulas is None:
        workbook.close()
        yield from _read_xlsx_formulas(path, is_header, slice_rows)
        return
    try:
        names = [
            m.name
            for m in workbook.sheets_metadata
            if m.typ == python_calamine.SheetTypeEnum.WorkSheet
        ]
        if not names:
            raise FileRejected(f"{path.name}: the workbook has no worksheet")
        grid = workbook.get_sheet_by_name(names[0]).to_python(skip_empty_area=False)
    except python_calamine.CalamineError as exc:
        raise FileRejected(f"{path.name}: cannot read as XLSX: {exc}") from exc
    finally:
        workbook.close()
    rows = [[cell_text(v) for v in row] for row in grid]
    for (r, c), text in formulas.items():
        # A formula without a cached value is outside calamine's range: widen it.
        while len(rows) <= r:
            rows.append([])
        row = rows[r]
        row.extend([""] * (c + 1 - len(row)))
        row[c] = text
    yield from _tabulate(rows, is_header, {"format": "xlsx", "sheet": names[0]}, slice_rows)


def _read_xlsx_formulas(
    path: Path, is_header: Callable[[Sequence[str]], bool], slice_rows: int | None
) -> Generator[RawTable, None, None]:
    import openpyxl  # imported late: it is slow to import and only formula workbooks need it

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise FileRejected(f"{path.name}: cannot open as XLSX: {exc}") from exc
    try:
        ws = wb.worksheets[0]
        records = ([cell_text(v) for v in row] for row in ws.iter_rows(values_only=True))
        yield from _tabulate(records, is_header, {"format": "xlsx", "sheet": ws.title}, slice_rows)
    finally:
        wb.close()


def read_table(
    path: Path, settings: Settings, is_header: Callable[[Sequence[str]], bool]
) -> RawTable:
    """Read one export; ``is_header`` recognises the header row below any title rows."""
    with closing(read_table_slices(path, settings, is_header)) as slices:
        return next(slices)


def read_table_slices(
    path: Path,
    settings: Settings,
    is_header: Callable[[Sequence[str]], bool],
    slice_rows: int | None = None,
) -> Generator[RawTable, None, None]:
    """``read_table`` a slice at a time: tables of up to ``slice_rows`` rows (all of them
    when None), each with the header, the file's meta and the malformed records met among
    its rows, in file order. The first is there even for a file without rows; a file that
    cannot be read raises ``FileRejected`` when it is asked for.
    """
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        yield from read_xlsx(path, settings, is_header, slice_rows)
    elif suffix in (".csv", ".txt", ".tsv"):
        yield from read_csv(path, is_header, slice_rows)
    else:
        raise FileRejected(
            f"{path.name}: unsupported file type {suffix!r} (expected .csv or .xlsx)"
        )


def _tabulate(
    records: Iterable[list[str]],
    is_header: Callable[[Sequence[str]], bool],
    meta: dict[str, object],
    slice_rows: int | None,
) -> Generator[RawTable, None, None]:
    it = iter(records)
    preface: list[list[str]] = []
    header: list[str] | None = None
    for rec in it:
        preface.append(rec)
        if is_header(rec):
            header = rec
            break
        if len(preface) >= HEADER_SCAN_ROWS:
            break
    if header is None:
        # No recognisable header: use the first non-empty record, so the mapping error can
        # list what the file's headers actually were.
        nonempty = [r for r in preface if any(c.strip() for c in r)]
        if not nonempty:
            raise FileRejected("the file has no header row and no data")
        header = nonempty[0]
        rest: Iterable[list[str]] = preface[preface.index(header) + 1 :]
        title_rows = preface.index(header)
    else:
        rest = []
        title_rows = len(preface) - 1
    header = [h.strip() for h in header]
    while header and not header[-1]:
        header.pop()
    width = len(header)
    meta = {"title_rows": title_rows, **meta}
    rows: list[tuple[int, list[str]]] = []
    malformed: list[tuple[int, list[str], str]] = []
    number = 0
    first = True
    for rec in _chain(rest, it):
        number += 1
        if not "".join(rec).strip():  # a blank record (one join beats a test per cell)
            continue
        if len(rec) > width:
            if any(c.strip() for c in rec[width:]):
                malformed.append((number, rec, f"{len(rec)} cells, header has {width}"))
                continue
            rec = rec[:width]
        elif len(rec) < width:
            malformed.append((number, rec, f"{len(rec)} cells, header has {width}"))
            continue
        rows.append((number, rec))
        if slice_rows is not None and len(rows) >= slice_rows:
            yield RawTable(header=header, rows=rows, malformed=malformed, meta=meta)
            rows, malformed, first = [], [], False
    if first or rows or malformed:
        yield RawTable(header=header, rows=rows, malformed=malformed, meta=meta)


def _chain(first: Iterable[list[str]], second: Iterable[list[str]]) -> Iterable[list[str]]:
    yield from first
    yield from second
