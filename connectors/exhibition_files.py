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
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
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


# Bytes read at a time while the encoding is checked, so a large export is never held whole.
DECODE_BLOCK = 1 << 22
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is read: its encoding, delimiter, and whether it holds NUL bytes."""

    encoding: str
    delimiter: str
    has_nul: bool


def csv_dialect(path: Path) -> CsvDialect:
    """Encoding (BOMs first, then strict UTF-8, then cp1252, latin-1 for cp1252's five
    gaps), delimiter (``sniff_delimiter``) and NULs of a CSV file, read block by block."""
    with path.open("rb") as fh:
        head = fh.read(4)
    bom = next((enc for mark, enc in BOMS if head.startswith(mark)), None)
    for encoding in (bom,) if bom else ("utf-8", "cp1252", "latin-1"):
        try:
            sample, has_nul = _decode_all(path, encoding)
        except UnicodeDecodeError:
            continue
        delimiter = sniff_delimiter(sample.replace("\x00", NUL_MARK))
        return CsvDialect(encoding, delimiter, has_nul)
    raise AssertionError("latin-1 decodes every byte")


def _decode_all(path: Path, encoding: str) -> tuple[str, bool]:
    """The first ``SNIFF_CHARS`` characters and whether any is NUL; raises
    ``UnicodeDecodeError`` when the whole file is not ``encoding``."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    sample, has_nul = "", False
    with path.open("rb") as fh:
        while True:
            block = fh.read(DECODE_BLOCK)
            text = decoder.decode(block, final=not block)
            has_nul = has_nul or "\x00" in text
            if len(sample) < SNIFF_CHARS:
                sample += text[: SNIFF_CHARS - len(sample)]
            if not block:
                return sample, has_nul


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


@dataclass(frozen=True)
class CsvPiece:
    """A byte range of a CSV file that starts and ends at record boundaries, so it can be
    read on its own (in another process) and give the rows the whole file gives there.

    The first piece (``header`` None) finds the header as the whole file would; the
    others carry it, and the number of their first record.
    """

    index: int
    start: int
    end: int | None  # None: to the end of the file
    first_number: int
    header: list[str] | None
    dialect: CsvDialect


def plan_csv_pieces(
    path: Path, is_header: Callable[[Sequence[str]], bool], pieces: int
) -> list[CsvPiece]:
    """``pieces`` byte ranges of about equal size, each starting at a record boundary, for
    reading one large CSV in several processes; none (read it whole) when it is not worth
    it or not safe: UTF-16, no header found, fewer records than pieces.

    The boundaries come from the csv module reading the file as ``read_csv`` does (a
    quoted field's newlines, the dialect, title rows and blank records all count as they
    do there), and only as far as the last boundary.
    """
    dialect = csv_dialect(path)
    if pieces < 2 or dialect.encoding == "utf-16":
        return []
    size = path.stat().st_size
    _allow_fields_of(size)
    # Each line's length in bytes: in cp1252, latin-1 and UTF-8 a line ends at the same
    # bytes whatever comes before it, so byte offsets of line ends are record boundaries.
    measure = "utf-8" if dialect.encoding == "utf-8-sig" else dialect.encoding
    consumed = [len(codecs.BOM_UTF8) if dialect.encoding == "utf-8-sig" else 0]

    def lines(fh: Iterable[str]) -> Iterator[str]:
        for line in fh:
            consumed[0] += len(line.encode(measure))
            yield line.replace("\x00", NUL_MARK) if dialect.has_nul else line

    targets = [size * k // pieces for k in range(1, pieces)]
    bounds: list[tuple[int, int]] = []  # (byte offset, number of the record starting there)
    with path.open(encoding=dialect.encoding, newline="") as fh:
        records = csv.reader(lines(fh), delimiter=dialect.delimiter, strict=False)
        found = _find_header(records, is_header)
        if found is None or found[1]:  # no header: read whole, the mapping will say why
            return []
        for number, _ in enumerate(records, start=1):
            if consumed[0] >= targets[len(bounds)]:
                bounds.append((consumed[0], number + 1))
                if len(bounds) == len(targets):
                    break
    bounds = [b for b in bounds if b[0] < size]
    if not bounds:
        return []
    header = _clean_header(found[0])
    starts = [(0, 1), *bounds]
    ends: list[int | None] = [b[0] for b in bounds]
    ends.append(None)
    return [
        CsvPiece(i, start, end, first, None if i == 0 else header, dialect)
        for i, ((start, first), end) in enumerate(zip(starts, ends, strict=True))
    ]


def _allow_fields_of(size: int) -> None:
    """Let the csv module read a field as long as the file (its default stops at 128 KiB
    and raises; long cells are truncated and flagged later, not refused here)."""
    if csv.field_size_limit() < size + 1:
        csv.field_size_limit(size + 1)


def read_csv(
    path: Path,
    is_header: Callable[[Sequence[str]], bool],
    slice_rows: int | None = None,
    piece: CsvPiece | None = None,
) -> Generator[RawTable, None, None]:
    """The file's rows in slices (see ``read_table_slices``), or one piece's rows.

    The encoding and delimiter are found first, block by block; then the records are read
    from the file as a stream, so a slice's cells, not the file's, are held at a time.
    """
    dialect = piece.dialect if piece is not None else csv_dialect(path)
    _allow_fields_of(path.stat().st_size)
    meta: dict[str, object] = {
        "encoding": dialect.encoding,
        "delimiter": dialect.delimiter,
        "format": "csv",
    }
    # newline="" as csv wants: lines end at \r, \n or \r\n, and quoted newlines are kept.
    with _open_text(path, dialect.encoding, piece) as fh:
        # Only a file with NUL bytes pays for a generator step per line.
        lines = (line.replace("\x00", NUL_MARK) for line in fh) if dialect.has_nul else fh
        records = csv.reader(lines, delimiter=dialect.delimiter, strict=False)
        if piece is None or piece.header is None:
            yield from _tabulate(records, is_header, meta, slice_rows)
        else:
            yield from _numbered(records, piece.header, piece.first_number, meta, slice_rows)


def _open_text(path: Path, encoding: str, piece: CsvPiece | None) -> io.TextIOBase:
    """The file, or only its piece's bytes, as text (newlines untranslated)."""
    if piece is None or (piece.start == 0 and piece.end is None):
        return path.open(encoding=encoding, newline="")
    with path.open("rb") as raw:
        raw.seek(piece.start)
        data = raw.read(-1 if piece.end is None else piece.end - piece.start)
    if piece.start > 0 and encoding == "utf-8-sig":
        encoding = "utf-8"  # the mark is at the start of the file only
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")


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
    piece: CsvPiece | None = None,
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
        yield from read_csv(path, is_header, slice_rows, piece)
    else:
        raise FileRejected(
            f"{path.name}: unsupported file type {suffix!r} (expected .csv or .xlsx)"
        )


def _find_header(
    records: Iterator[list[str]], is_header: Callable[[Sequence[str]], bool]
) -> tuple[list[str], list[list[str]], int] | None:
    """The header among the first records: (header, the records read after it that are
    rows, how many records were above it); the first non-empty record when none looks
    like a header (so the mapping error can list what the headers were); None when all
    are empty."""
    preface: list[list[str]] = []
    for rec in records:
        preface.append(rec)
        if is_header(rec):
            return rec, [], len(preface) - 1
        if len(preface) >= HEADER_SCAN_ROWS:
            break
    nonempty = [r for r in preface if any(c.strip() for c in r)]
    if not nonempty:
        return None
    at = preface.index(nonempty[0])
    return nonempty[0], preface[at + 1 :], at


def _clean_header(header: list[str]) -> list[str]:
    header = [h.strip() for h in header]
    while header and not header[-1]:
        header.pop()
    return header


def _tabulate(
    records: Iterable[list[str]],
    is_header: Callable[[Sequence[str]], bool],
    meta: dict[str, object],
    slice_rows: int | None,
) -> Generator[RawTable, None, None]:
    it = iter(records)
    found = _find_header(it, is_header)
    if found is None:
        raise FileRejected("the file has no header row and no data")
    header, rest, title_rows = found
    meta = {"title_rows": title_rows, **meta}
    yield from _numbered(_chain(rest, it), _clean_header(header), 1, meta, slice_rows)


def _numbered(
    records: Iterable[list[str]],
    header: list[str],
    first_number: int,
    meta: dict[str, object],
    slice_rows: int | None,
) -> Generator[RawTable, None, None]:
    """Records after the header as numbered rows (blank ones counted, not kept) and
    malformed records, in slices of ``slice_rows`` rows."""
    width = len(header)
    rows: list[tuple[int, list[str]]] = []
    malformed: list[tuple[int, list[str], str]] = []
    number = first_number - 1
    first = True
    for rec in records:
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
