"""What `accountflow export` writes: one table per kind, safe to open in a spreadsheet."""

from __future__ import annotations

import importlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
from sqlalchemy import select

from connectors.database.engine import session_scope
from connectors.database.ingest_models import Company, Contact, SourceFile, SourceRow
from connectors.database.scoring_models import ScoreReason
from tasks.common.spreadsheet_safety import neutralise


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


def export_frame(kind: str) -> pd.DataFrame:
    """The table for ``kind`` (see ``KINDS``)."""
    query = export_query(kind)
    with session_scope() as s:
        frame = pd.read_sql(query, s.connection())
    if "disposition" in frame:
        frame["disposition"] = frame["disposition"].map(lambda d: getattr(d, "value", d))
    if "raw" in frame:
        frame["raw"] = frame["raw"].map(
            lambda r: r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)
        )
    return frame


def _xlsx_value(value: Any) -> Any:
    """A cell value openpyxl writes as what it is: numbers as numbers, text as text."""
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


def write_export(frame: pd.DataFrame, fmt: str, out: Path | TextIO) -> None:
    """CSV and XLSX are neutralised against formula injection; JSON is written as records."""
    if fmt == "csv":
        # RFC 4180 line ends: Python's csv quotes a field holding any character of the line
        # terminator, so with a bare "\n" a carriage return inside a cell went unquoted and
        # a spreadsheet started a new row (and a formula) there.
        neutralise(frame).to_csv(out, index=False, lineterminator="\r\n")
    elif fmt == "xlsx":
        if not isinstance(out, Path):
            raise ValueError("xlsx needs a file: pass --out FILE")
        write_xlsx(frame, out)
    elif fmt == "json":
        text = frame.to_json(orient="records", date_format="iso", force_ascii=False, indent=1)
        if isinstance(out, Path):
            out.write_text(text + "\n", encoding="utf-8")
        else:
            out.write(text + "\n")
    else:
        raise ValueError(f"unknown format {fmt!r}; expected csv, xlsx or json")
