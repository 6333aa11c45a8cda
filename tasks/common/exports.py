"""What `accountflow export` writes: one table per kind, safe to open in a spreadsheet.

CSV is written row by row with the csv module, without pandas (whose import alone was most
of an export's time); JSON and XLSX go through a DataFrame.
"""

from __future__ import annotations

import csv
import importlib
import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import select

from connectors.database.engine import session_scope
from connectors.database.ingest_models import Company, Contact, SourceFile, SourceRow
from connectors.database.scoring_models import ScoreReason
from tasks.common.spreadsheet_safety import neutralise, neutralise_cell

if TYPE_CHECKING:
    import pandas as pd


def _rows_query() -> Any:
    return (
        select(
            SourceFile.name.label("source_file"),
            SourceRow.row_number.label("source_row"),
            SourceFile.event.label("event"),
            SourceRow.disposition,
            SourceRow.reason,
            SourceRow.flags,
            SourceRow.contact_id,
            SourceRow.match_rule,
            SourceRow.match_score,
            SourceRow.raw,
            SourceFile.batch_id,
        )
        .join(SourceFile, SourceFile.id == SourceRow.file_id)
        .order_by(SourceFile.id, SourceRow.row_number)
    )


def _contacts_query() -> Any:
    return (
        select(
            Contact.id.label("contact_id"),
            Contact.first_name,
            Contact.last_name,
            Contact.email,
            Contact.phone,
            Contact.job_title,
            Company.name.label("company"),
            Company.tax_id.label("company_tax_id"),
            Contact.country,
            Contact.state,
            Contact.city,
            Contact.lead_rating,
            Contact.source_event,
            Contact.first_seen_at,
            Contact.last_seen_at,
            Contact.updated_at,
            Contact.score,
            Contact.band,
            ScoreReason.reasons.label("reasons"),
            Contact.scorecard_version,
        )
        .outerjoin(Company, Company.id == Contact.company_id)
        .outerjoin(ScoreReason, ScoreReason.id == Contact.score_reason_id)
        .order_by(Contact.id)
    )


# Exports of other capabilities: kind -> (module, function returning a SELECT).
PLUGGED_EXPORTS = {
    "messages": ("tasks.inbox.exports", "messages_query"),
    "complaints": ("tasks.complaints.exports", "complaints_query"),
    "outbox": ("tasks.outreach.exports", "outbox_query"),
    "competitor-changes": ("tasks.competitors.exports", "competitor_changes_query"),
    "audit": ("tasks.governance.exports", "audit_query"),
    "sources": ("tasks.governance.exports", "sources_query"),
    "contracts": ("tasks.accounts.exports", "contracts_query"),
    "obligations": ("tasks.accounts.exports", "obligations_query"),
}
KINDS = ("rows", "contacts", "quarantine", *PLUGGED_EXPORTS)


def export_query(kind: str) -> Any:
    """The SELECT behind an export of ``kind``."""
    if kind in ("rows", "quarantine"):
        query = _rows_query()
        if kind == "quarantine":
            query = query.where(SourceRow.disposition == "quarantined")
        return query
    if kind == "contacts":
        return _contacts_query()
    if kind in PLUGGED_EXPORTS:
        module, function = PLUGGED_EXPORTS[kind]
        return getattr(importlib.import_module(module), function)()
    raise ValueError(f"unknown export {kind!r}; expected one of {', '.join(KINDS)}")


def _as_exported(column: str, value: Any) -> Any:
    """A stored value as exports show it: a disposition by its name, a raw row as JSON."""
    if column == "disposition":
        return getattr(value, "value", value)
    if column == "raw":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return value


def export_table(kind: str) -> tuple[list[str], list[list[Any]]]:
    """The columns and rows for ``kind`` (see ``KINDS``), values as exported."""
    with session_scope() as s:
        result = s.connection().execute(export_query(kind))
        columns = list(result.keys())
        rows = [[_as_exported(c, v) for c, v in zip(columns, row, strict=True)] for row in result]
    return columns, rows


def export_frame(kind: str) -> pd.DataFrame:
    """The table for ``kind`` as a DataFrame, typed as ``pandas.read_sql`` would type it."""
    import pandas as pd

    columns, rows = export_table(kind)
    return pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _csv_format(values: Sequence[Any]) -> Callable[[Any], Any]:
    """How one column's cells are written, decided from all its values, as pandas' ``to_csv``
    wrote these exports before the csv module did (files read by scripts stay the same):

    - numbers: integers as integers unless the column has a gap or a fraction, then every
      number in float form (``12.0``);
    - date-times: dates alone when every one is at midnight, else one precision for the
      whole column (seconds, milliseconds or microseconds, the finest any value needs);
    - anything else as ``str`` gives it, text neutralised (``neutralise_cell``).
    """
    present = [v for v in values if not _missing(v)]
    if not present:
        return lambda v: ""
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in present):
        if len(present) == len(values) and all(isinstance(v, int) for v in present):
            return str
        return lambda v: "" if _missing(v) else repr(float(v))
    if all(isinstance(v, datetime) for v in present) and len({v.tzinfo for v in present}) == 1:
        if present[0].tzinfo is None and all(v.time() == time() for v in present):
            return lambda v: "" if v is None else v.date().isoformat()
        micros = {v.microsecond for v in present}
        spec = (
            "microseconds"
            if any(m % 1000 for m in micros)
            else ("milliseconds" if any(micros) else "seconds")
        )
        return lambda v: "" if v is None else v.isoformat(sep=" ", timespec=spec)
    return lambda v: "" if _missing(v) else neutralise_cell(v)


def write_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]], out: Path | TextIO) -> None:
    """RFC 4180 CSV: a header, then the rows with every cell formatted as its column says."""
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8", newline="") as handle:
            write_csv(columns, rows, handle)
        return
    formats = [_csv_format([row[i] for row in rows]) for i in range(len(columns))]
    # RFC 4180 line ends: Python's csv quotes a field holding any character of the line
    # terminator, so with a bare "\n" a carriage return inside a cell went unquoted and a
    # spreadsheet started a new row (and a formula) there.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([f(v) for f, v in zip(formats, row, strict=True)] for row in rows)


def _xlsx_value(value: Any) -> Any:
    """A cell value openpyxl writes as what it is: numbers as numbers, text as text."""
    import pandas as pd

    if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        return (
            stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
        ).to_pydatetime()
    if isinstance(value, bool | int | float):
        return value
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return value.item()
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def write_xlsx(frame: pd.DataFrame, out: Path) -> None:
    """One sheet; text cells neutralised and typed as strings, so none is read as a formula."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("export")
    sheet.append([str(c) for c in frame.columns])
    for record in neutralise(frame).itertuples(index=False, name=None):
        cells = []
        for value in record:
            cell = WriteOnlyCell(sheet, value=_xlsx_value(value))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # openpyxl would take a leading "=" as a formula
            cells.append(cell)
        sheet.append(cells)
    book.save(out)


def write_export(kind: str, fmt: str, out: Path | TextIO) -> int:
    """Write the export of ``kind`` as ``fmt``; returns how many rows.

    CSV and XLSX are neutralised against formula injection; JSON is written as records.
    """
    if fmt == "csv":
        columns, rows = export_table(kind)
        write_csv(columns, rows, out)
        return len(rows)
    if fmt not in ("xlsx", "json"):
        raise ValueError(f"unknown format {fmt!r}; expected csv, xlsx or json")
    frame = export_frame(kind)
    if fmt == "xlsx":
        if not isinstance(out, Path):
            raise ValueError("xlsx needs a file: pass --out FILE")
        write_xlsx(frame, out)
    elif fmt == "json":
        text = frame.to_json(orient="records", date_format="iso", force_ascii=False, indent=1)
        if isinstance(out, Path):
            out.write_text(text + "\n", encoding="utf-8")
        else:
            out.write(text + "\n")
    return len(frame)
