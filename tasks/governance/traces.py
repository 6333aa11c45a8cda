"""An erased person's traces outside the database: files under the data dir, and the
Prefect artifacts of our runs.

Files are found by what names the person: an email address or phone number we held for
them (phones also as bare digits, since files format them freely), and the demo sender's
``outbox-mail/<outbox id>.eml``. A message file (.eml, .ics, .html, .txt, .pdf) that
names them is deleted; a line-based file (an export in incoming/processed, a send journal,
a log, the local Prefect server's among them) loses the lines that name them (an export)
or has the identity masked in place (a journal or log, whose other lines other processes
still need); a spreadsheet loses the rows. Databases and secret files are not touched.

Prefect keeps every version of an artifact; the API deletes one by id, and its data goes
with it. Artifacts naming the person in clear, or listing one of their outbox rows (the
failed-outreach table masks addresses but names rows by outbox id), are deleted; the
failed-outreach table is then published again, so its latest version lists what is left.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

MESSAGE_SUFFIXES = (".eml", ".ics", ".html", ".htm", ".txt", ".pdf")
EXPORT_SUFFIXES = (".csv", ".tsv")
MASKED_SUFFIXES = (".journal", ".log", ".jsonl", ".json")
SHEET_SUFFIXES = (".xlsx",)
# Never rewritten here: databases (ours is erased in its own transaction; Prefect's
# artifacts through its API) and secrets. Staging holds a run's files only while it runs.
SKIPPED_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal", ".sqlite", ".sqlite3")
SKIPPED_NAMES = ("link-secrets.json",)
SKIPPED_DIRS = ("staging",)
MAX_BYTES = 64 * 1024 * 1024
ERASED = b"[erased]"
ARTIFACT_PAGE = 200
_PHONE_RUN = re.compile(rb"\+?\d[\d ()./-]{6,}\d")


def needles(identities: Iterable[str]) -> tuple[list[bytes], list[bytes]]:
    """The byte strings that name the person in a file (lower-cased), and phone digits."""
    texts, digits = set(), set()
    for identity in identities:
        value = identity.strip().lower()
        if not value:
            continue
        texts.add(value.encode("utf-8"))
        only_digits = re.sub(r"\D", "", value)
        if "@" not in value and len(only_digits) >= 9:
            digits.add(only_digits.encode())
            national = _national_number(value)
            if len(national) >= 9:  # files write it without the country code too
                digits.add(national.encode())
    return sorted(texts), sorted(digits)


def _national_number(phone: str) -> str:
    import phonenumbers

    try:
        return str(phonenumbers.parse(phone, None).national_number)
    except phonenumbers.NumberParseException:
        return ""


def names_person(data: bytes, texts: Sequence[bytes], digits: Sequence[bytes]) -> bool:
    lowered = data.lower()
    if any(t in lowered for t in texts):
        return True
    # A phone is a run of digits and separators whose digits end with one of ours
    # (written with or without the country code).
    for run in _PHONE_RUN.findall(data) if digits else ():
        bare = re.sub(rb"\D", b"", run)
        if any(bare.endswith(d) for d in digits):
            return True
    return False


def _mask(data: bytes, texts: Sequence[bytes]) -> bytes:
    for t in texts:
        data = re.sub(re.escape(t), ERASED, data, flags=re.IGNORECASE)
    return data


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".erasing")
    temporary.write_bytes(data)
    temporary.replace(path)


def _scrub_sheet(path: Path, texts: Sequence[bytes], digits: Sequence[bytes]) -> int:
    from openpyxl import load_workbook

    book = load_workbook(path)
    dropped = 0
    for sheet in book.worksheets:
        doomed = [
            int(row[0].row or 0)
            for row in sheet.iter_rows()
            if row
            and names_person(
                " ".join("" if c.value is None else str(c.value) for c in row).encode(),
                texts,
                digits,
            )
        ]
        for number in reversed(doomed):
            sheet.delete_rows(number)
        dropped += len(doomed)
    if dropped:
        book.save(path)
    return dropped


def scrub_files(
    data_dir: Path, identities: Sequence[str], outbox_ids: Sequence[int]
) -> dict[str, int]:
    """Delete or rewrite what names the person under ``data_dir``; counts of what was done."""
    counts = {"files_deleted": 0, "export_lines_dropped": 0, "files_masked": 0,
              "sheet_rows_dropped": 0}  # fmt: skip
    if not data_dir.is_dir():
        return counts
    texts, digits = needles(identities)
    mailed = {f"{i}.eml" for i in outbox_ids}
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if not path.is_file() or path.name in SKIPPED_NAMES:
            continue
        if path.name.lower().endswith(SKIPPED_SUFFIXES):
            continue
        if relative.parts and relative.parts[0] in SKIPPED_DIRS:
            continue
        suffix = path.suffix.lower()
        if path.parent.name == "outbox-mail" and path.name in mailed:
            path.unlink()
            counts["files_deleted"] += 1
            continue
        if not (texts or digits) or path.stat().st_size > MAX_BYTES:
            continue
        if suffix in SHEET_SUFFIXES:
            counts["sheet_rows_dropped"] += _scrub_sheet(path, texts, digits)
            continue
        if suffix not in (*MESSAGE_SUFFIXES, *EXPORT_SUFFIXES, *MASKED_SUFFIXES):
            continue
        data = path.read_bytes()
        if not names_person(data, texts, digits):
            continue
        if suffix in MESSAGE_SUFFIXES:
            path.unlink()
            counts["files_deleted"] += 1
        elif suffix in EXPORT_SUFFIXES:
            lines = data.splitlines(keepends=True)
            kept = [line for line in lines if not names_person(line, texts, digits)]
            counts["export_lines_dropped"] += len(lines) - len(kept)
            _write(path, b"".join(kept))
        else:
            _write(path, _mask(data, texts))
            counts["files_masked"] += 1
    return counts


def artifact_names_person(
    data: Any, identities: Sequence[str], full_name: str | None, outbox_ids: Sequence[int]
) -> bool:
    """Whether an artifact's data names the person in clear or lists one of their outbox
    rows (a table row whose ``id`` is theirs, in a table of outbox rows)."""
    text = str(data).lower()
    clear = [i.lower() for i in identities if i] + ([full_name.lower()] if full_name else [])
    if any(c and c in text for c in clear):
        return True
    wanted = set(outbox_ids)
    rows = data if isinstance(data, list) else []
    return any(
        isinstance(row, dict) and "address" in row and row.get("id") in wanted for row in rows
    )


def _artifact_data(data: Any) -> Any:
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data


def scrub_artifacts(
    identities: Sequence[str], full_name: str | None, outbox_ids: Sequence[int]
) -> int:
    """Delete every artifact version naming the person (see ``artifact_names_person``) and
    publish the failed-outreach table again if it was one; returns how many were deleted."""
    from prefect.client.orchestration import get_client

    from tasks.outreach.failed import FAILED_OUTREACH_KEY
    from tasks.outreach.reports import publish_failed_outreach

    doomed: list[Any] = []
    republish = False
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_artifacts(limit=ARTIFACT_PAGE, offset=offset)
            for artifact in page:
                data = _artifact_data(artifact.data)
                if artifact_names_person(data, identities, full_name, outbox_ids):
                    doomed.append(artifact.id)
                    republish |= artifact.key == FAILED_OUTREACH_KEY
            if len(page) < ARTIFACT_PAGE:
                break
            offset += ARTIFACT_PAGE
        for artifact_id in doomed:
            client.delete_artifact(artifact_id)
    if republish:
        publish_failed_outreach()
    return len(doomed)
