"""Prefect tasks for exhibition lead ingestion: stage files, resolve entities, store, report.

Staging (read + map + normalise, ``tasks.ingest.staging``) runs per file and writes an
Arrow file under the data dir; resolution and storage run as one transaction over the
whole batch, so a crash stores nothing and the rerun starts clean.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from pydantic import BaseModel

from config.policies import MatchingPolicy, get_ingest_policies
from config.settings import get_settings
from connectors.database import ingest_store as store
from connectors.database.engine import session_scope
from connectors.database.ingest_models import Disposition, FileStatus
from connectors.database.migrate import ensure_schema
from tasks.governance.privacy import erased_rows
from tasks.governance.provenance import SourceRecorder, source_kind
from tasks.ingest.matching import linkable_companies, match_rows
from tasks.ingest.merge import FIRST_WINS, LATEST_WINS, current_values, history
from tasks.ingest.staging import StagedFile, read_staged, stage_all, stage_one


class FileSummary(BaseModel):
    name: str
    path: str
    status: str  # ingested | rejected | skipped
    rows_in: int = 0
    error: str | None = None
    first_batch_id: int | None = None
    detail: dict[str, Any] = {}


class IngestSummary(BaseModel):
    batch_id: int | None
    event: str | None
    files: list[FileSummary]
    rows_in: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantined_by_reason: dict[str, int] = {}
    new_contacts: int = 0
    updated_contacts: int = 0
    matched_existing: int = 0
    new_companies: int = 0
    merges_by_rule: dict[str, int] = {}
    bulk_load: bool = False  # indexes and keys built once, after the rows (see store.bulk_load)
    seconds: float = 0.0

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.accepted + self.duplicates + self.quarantined


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@task(name="register-files", cache_policy=NO_CACHE)
def register_files(files: list[str], event: str | None) -> list[StagedFile]:
    """Hash the inputs in the order given; a file missing on disk fails the run up front."""
    ensure_schema()
    out = []
    for order, name in enumerate(files):
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"input file not found: {path}")
        out.append(
            StagedFile(
                order=order,
                name=path.name,
                path=str(path.resolve()),
                sha256=file_sha256(path),
                size_bytes=path.stat().st_size,
                event=event,
            )
        )
    return out


@task(name="stage-file", cache_policy=NO_CACHE, retries=1)
def stage_file(
    entry: StagedFile, source: str | None, staging_dir: str, timezone: str | None = None
) -> StagedFile:
    """Read, map and normalise one file; a file we cannot read is rejected with its reason."""
    return stage_one(entry, source, staging_dir, timezone)


@task(name="stage-files", cache_policy=NO_CACHE, retries=1)
def stage_files(
    entries: list[StagedFile], source: str | None, staging_dir: str, timezone: str | None = None
) -> list[StagedFile]:
    """Stage every file of the batch; large batches file by file in parallel processes."""
    return stage_all(entries, source, staging_dir, timezone)


def _targets(rows: pd.DataFrame, matches: pd.DataFrame) -> pd.Series:
    """A merge key per row: ``c:<id>`` for an existing contact, ``n:<leader>`` for a new one."""
    existing = matches["contact_id"]
    leader_key = "n:" + matches["leader"].astype(int).astype(str)
    return leader_key.where(existing.isna(), "c:" + existing.astype("Int64").astype(str))


@task(
    name="resolve-and-store",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
)
def resolve_and_store(staged: list[StagedFile], event: str | None) -> IngestSummary:
    """Match the batch against itself and the database, then store it in one transaction."""
    started = time.perf_counter()
    policy = get_ingest_policies().matching
    with session_scope() as s:
        store.lock_for_ingestion(s)
        seen = store.ingested_files(s, [f.sha256 for f in staged])
        files: list[FileSummary] = []
        todo: list[StagedFile] = []
        shas_this_run: set[str] = set()
        for f in staged:
            if f.sha256 in seen or f.sha256 in shas_this_run:
                files.append(
                    FileSummary(
                        name=f.name,
                        path=f.path,
                        status="skipped",
                        first_batch_id=seen.get(f.sha256),
                        error="already ingested (same content)",
                    )
                )
                continue
            shas_this_run.add(f.sha256)
            todo.append(f)
            files.append(
                FileSummary(
                    name=f.name,
                    path=f.path,
                    status=f.status,
                    rows_in=f.rows_in,
                    error=f.error,
                    detail=f.detail,
                )
            )
        batch_id = store.create_batch(s, "exhibition", event)
        summary = IngestSummary(batch_id=batch_id, event=event, files=files)
        if todo:
            store_batch(s, batch_id, todo, policy, summary)
        summary.seconds = round(time.perf_counter() - started, 3)
        store.finish_batch(s, batch_id, summary.model_dump(mode="json"))
    for f in todo:
        if f.staged_path:
            Path(f.staged_path).unlink(missing_ok=True)
    return summary


def store_batch(
    s: Any, batch_id: int, todo: list[StagedFile], policy: Any, summary: IngestSummary
) -> None:
    """Resolve staged rows against each other and the database, and write everything.

    Shared by exhibition files and email leads (tasks/inbox/pipeline.py), so both land the same way.
    """
    # A rejected file is not recorded as a source file (its reason stays in the batch
    # summary): once the mapping is fixed, the same file must be ingestible.
    todo = [f for f in todo if f.status != "rejected"]
    file_ids = store.reserve_ids(s, store.SourceFile, len(todo))
    files = pd.DataFrame(
        {
            "id": file_ids,
            "batch_id": batch_id,
            "name": [f.name for f in todo],
            "path": [f.path for f in todo],
            "sha256": [f.sha256 for f in todo],
            "size_bytes": [f.size_bytes for f in todo],
            "event": pd.Series([f.event for f in todo], dtype=object),
            "rows_in": [f.rows_in for f in todo],
            "status": FileStatus.ingested.value,
            "detail": pd.Series([f.detail for f in todo], dtype=object),
        }
    )
    store.bulk_insert(s, store.SourceFile, files)
    # The raw cells, the bulk of a row, stay on disk until their rows are written.
    frames, raw_paths = [], []
    for f, fid in zip(todo, file_ids, strict=True):
        if f.staged_path:
            frame = read_staged(f.staged_path, without=["raw"])
            frames.append(frame.assign(file_id=fid, event=f.event))
            raw_paths.append(f.staged_path)
    if not frames:
        return
    rows = pd.concat(frames, ignore_index=True)
    del frames
    # An erased data subject (LGPD/GDPR) is never re-imported: quarantined, kept verbatim.
    rows["reason"] = rows["reason"].mask(
        rows["reason"].isna() & erased_rows(s, rows), "erased_subject"
    )
    rows["row_key"] = np.arange(len(rows))
    good = rows.loc[rows["reason"].isna(), rows.columns.drop("flags")]
    rows = rows[["file_id", "row_number", "reason", "flags", "row_key"]]  # what a row keeps
    matches = match_rows(good, known_candidates(s, good, policy), policy)
    rows["disposition"] = Disposition.quarantined.value
    rows.loc[good.index, "disposition"] = matches["disposition"]
    rows.loc[good.index, "match_rule"] = matches["match_rule"]
    rows.loc[good.index, "match_score"] = matches["match_score"]

    good = good.assign(
        target=_targets(good, matches),
        company_label=matches["company_label"],
        company_id=matches["company_id"],
    )
    # Every read and id reservation first: from the first write on, the writer may hold
    # the session's connection (see store.BulkWriter).
    companies = _new_companies(good)
    company_ids = store.reserve_ids(s, store.Company, len(companies))
    new_company_ids = dict(zip(companies.index, company_ids, strict=True))
    good["company_id"] = good["company_id"].fillna(good["company_label"].map(new_company_ids))

    merged = current_values(good)
    company_of = good.dropna(subset=["company_id"]).groupby("target")["company_id"].last()
    merged["company_id"] = company_of.reindex(merged.index)
    events = good.groupby("target", sort=False)["event"].first()
    is_new = merged.index.str.startswith("n:")
    new_vals = merged[is_new]
    contacts = _contact_frame(new_vals, events)
    new_ids = store.reserve_ids(s, store.Contact, len(contacts))
    contact_of = pd.Series(new_ids, index=new_vals.index, dtype="Int64")
    existing_keys = merged.index[~is_new]
    contact_of = pd.concat(
        [
            contact_of,
            pd.Series([int(k[2:]) for k in existing_keys], index=existing_keys, dtype="Int64"),
        ]
    )
    existing_ids = contact_of[existing_keys].astype(int).tolist()
    stored = store.load_contact_values(s, existing_ids, [*LATEST_WINS, "notes"])
    stored.index = ["c:" + str(i) for i in stored.index]
    known_identifiers = store.load_identifiers(s, existing_ids)
    row_ids = store.reserve_ids(s, store.SourceRow, len(rows))
    sources = SourceRecorder(
        s,
        pd.DataFrame(
            {
                "id": file_ids,
                "name": [f.name for f in todo],
                "event": [f.event for f in todo],
                "kind": [source_kind(f.detail) for f in todo],
            }
        ),
        merged["company_id"].dropna().astype(int).tolist(),
        existing_ids,
    )
    bulk = store.wants_bulk_load(s, len(rows), get_settings().bulk_load_min_rows)

    # The writer ends (every write done) before the bulk load builds indexes and checks keys.
    with store.bulk_load(s, bulk) as summary.bulk_load, store.BulkWriter(s) as writer:
        if len(companies):
            writer.insert(store.Company, companies.reset_index(drop=True).assign(id=company_ids))
        writer.insert(store.Contact, contacts.assign(id=new_ids))
        changes = history(good, stored)
        summary.matched_existing = len(existing_keys)
        updates: list[dict[str, Any]] = []
        if len(existing_keys):
            updates = _existing_updates(merged.loc[existing_keys], stored["notes"], contact_of)
            writer.submit(store.update_contacts, updates)
            summary.updated_contacts = (
                int(changes["target"].isin(existing_keys).groupby(changes["target"]).any().sum())
                if len(changes)
                else 0
            )

        # Before the source rows: what builds them is freed before their raw text, the run's
        # memory peak, is read (on PostgreSQL it waits in the writer's queue).
        own = known_identifiers.loc[known_identifiers["own"], ["contact_id", "kind", "value"]]
        own = _own_identifiers(contacts[list(store.OWN_IDENTIFIERS)].assign(id=new_ids), own)
        own = _own_identifiers(pd.DataFrame(updates), own)
        for identifiers in _new_identifiers(good, contact_of, known_identifiers, own):
            writer.insert(store.ContactIdentifier, identifiers)
        del own

        rows["contact_id"] = pd.Series(good["target"].map(contact_of), index=good.index)
        source_rows = _source_row_frame(rows)
        source_rows["id"] = row_ids
        start = 0
        for path in raw_paths:  # files were concatenated in this order
            raw = read_staged(path, only=["raw"])["raw"]
            sources.read_raw(raw)  # consent columns, while the raw cells are in memory
            part = source_rows.iloc[start : start + len(raw)]
            part = part.assign(raw=raw.set_axis(part.index))  # stays Arrow text until a chunk
            writer.insert(store.SourceRow, part, {"raw"})
            start += len(raw)
        row_id_of = pd.Series(row_ids, index=rows["row_key"].to_numpy())
        company_of = pd.Series(
            merged["company_id"].to_numpy(), index=contact_of[merged.index].to_numpy()
        ).dropna()
        sources.write(
            writer,
            pd.DataFrame(
                {
                    "contact_id": source_rows["contact_id"],
                    "source_row_id": row_ids,
                    "file_id": source_rows["file_id"],
                    "row_number": source_rows["row_number"],
                }
            ),
            company_of,
        )
        if len(changes):
            history_rows = pd.DataFrame(
                {
                    "contact_id": changes["target"].map(contact_of).astype("Int64"),
                    "field": changes["field"],
                    "old_value": changes["old_value"],
                    "new_value": changes["new_value"],
                    "source_row_id": changes["row_key"].map(row_id_of).astype("Int64"),
                }
            )
            writer.insert(store.ContactHistory, history_rows.reset_index(drop=True))

    counts = rows["disposition"].value_counts()
    summary.rows_in = len(rows)
    summary.accepted = int(counts.get("accepted", 0))
    summary.duplicates = int(counts.get("duplicate", 0))
    summary.quarantined = int(counts.get("quarantined", 0))
    summary.quarantined_by_reason = {
        str(k): int(v) for k, v in rows["reason"].dropna().value_counts().items()
    }
    summary.merges_by_rule = {
        str(k): int(v) for k, v in rows["match_rule"].dropna().value_counts().items()
    }
    summary.new_contacts = len(new_ids)
    summary.new_companies = len(new_company_ids)


def known_candidates(s: Any, good: pd.DataFrame, policy: MatchingPolicy) -> pd.DataFrame:
    """The stored contacts and companies ``good`` can link to, not the whole database.

    Every matching rule (tasks/ingest/matching.py) needs a shared email, phone or personal tax id,
    company, or corporate email domain, so no other stored contact can link to these rows;
    and links between stored contacts alone were settled when they were stored. So a few
    new leads cost what they touch, not what the database holds.
    """
    companies = linkable_companies(good, store.load_companies(s), policy)
    ids: list[int] = []
    if store.has_contacts(s):
        free = good["is_free_mail"].fillna(False).astype(bool)
        ids = store.contacts_sharing(
            s,
            {
                kind: good[col].dropna().unique().tolist()
                for kind, col in store.IDENTIFIER_COLUMNS.items()
            },
            companies["company_id"].tolist(),
            good.loc[~free, "email_domain"].dropna().unique().tolist(),
        )
    return store.load_known(s, ids, companies)


def _new_companies(good: pd.DataFrame) -> pd.DataFrame:
    """A company per resolved cluster that has no stored company yet, by cluster label."""
    fresh = good[good["company_id"].isna() & good["company_label"].notna()]
    firsts = fresh.groupby("company_label", sort=False).agg(
        name=("company", "first"),
        name_key=("company_key", "first"),
        tax_id=("company_tax_id", "first"),
        country=("country", "first"),
    )
    firsts["name"] = firsts["name"].fillna(firsts["tax_id"])
    firsts["name_key"] = firsts["name_key"].fillna("")
    return firsts


def _none(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _contact_frame(new_vals: pd.DataFrame, events: pd.Series) -> pd.DataFrame:
    cols = [c for c in [*FIRST_WINS, *LATEST_WINS, "notes"] if c != "company"]
    frame = new_vals[[*cols, "company_id", "first_seen_at", "last_seen_at"]].copy()
    frame["is_free_mail"] = frame["is_free_mail"].fillna(False).astype(bool)
    frame["company_id"] = frame["company_id"].astype("Int64")
    frame["source_event"] = events.reindex(frame.index)
    for c in ("first_seen_at", "last_seen_at"):
        frame[c] = pd.to_datetime(frame[c])
    return frame.reset_index(drop=True)


def _existing_updates(
    merged: pd.DataFrame, stored_notes: pd.Series, contact_of: pd.Series
) -> list[dict[str, Any]]:
    """Latest career fields, company and freshness for existing contacts; notes extended."""
    out = []
    for key, r in merged.iterrows():
        values: dict[str, Any] = {"id": int(contact_of.loc[str(key)])}
        for c in LATEST_WINS:
            if c != "company" and _none(r[c]) is not None:
                values[c] = _none(r[c])
        notes = [n for n in (_none(stored_notes.get(key)), _none(r["notes"])) if n]
        if notes:
            values["notes"] = " | ".join(dict.fromkeys(" | ".join(notes).split(" | ")))
        if _none(r["company_id"]) is not None:
            values["company_id"] = int(r["company_id"])
        if _none(r["last_seen_at"]) is not None:
            values["last_seen_at"] = _none(r["last_seen_at"])
        out.append(values)
    return out


def _source_row_frame(rows: pd.DataFrame) -> pd.DataFrame:
    cols = [
        "file_id",
        "row_number",
        "disposition",
        "reason",
        "flags",
        "contact_id",
        "match_rule",
        "match_score",
    ]
    frame = rows[cols].copy()
    frame["contact_id"] = frame["contact_id"].astype("Int64")
    frame["match_score"] = pd.to_numeric(frame["match_score"]).astype("Float64")
    return frame.reset_index(drop=True)


def _own_identifiers(rows: pd.DataFrame, earlier: pd.DataFrame) -> pd.DataFrame:
    """(contact_id, kind, value): each contact's own email and phone once ``rows`` (contact
    rows or updates, by ``id``) are written over ``earlier`` (the same shape); a value
    ``rows`` leaves out or empty stays as it was."""
    written = [
        pd.DataFrame({"contact_id": rows["id"], "kind": kind, "value": rows[kind]}).dropna()
        for kind in store.OWN_IDENTIFIERS
        if kind in rows
    ]
    # Only non-empty parts: an empty object column would turn Arrow text into Python strings.
    now = pd.concat([p for p in [earlier, *written] if len(p)] or [earlier], ignore_index=True)
    return now.drop_duplicates(["contact_id", "kind"], keep="last").astype({"contact_id": "int64"})


def _new_identifiers(
    good: pd.DataFrame, contact_of: pd.Series, known: pd.DataFrame, own: pd.DataFrame
) -> list[pd.DataFrame]:
    """The rows contact_identifiers gains: every email, phone and personal tax id a contact
    was seen with, in this batch or on its row before it, that is neither its own after
    this batch (``own``, see ContactIdentifier) nor there already (``known``, from
    ``load_identifiers``).

    One kind at a time: hashing the three together for duplicates costs three times the
    memory for the same result, as kinds never collide.
    """
    ids = good["target"].map(contact_of)
    keys = ["contact_id", "value"]
    out = []
    for kind, col in store.IDENTIFIER_COLUMNS.items():
        has = good[col].notna()
        of_kind = known[known["kind"] == kind]
        idents = pd.concat(
            [
                pd.DataFrame({"contact_id": ids[has].astype("int64"), "value": good.loc[has, col]}),
                of_kind.loc[of_kind["own"], keys],  # an own phone the batch replaced
            ],
            ignore_index=True,
        ).drop_duplicates()
        # One own value per contact and kind: compared in place, not joined on text.
        mine = own.loc[own["kind"] == kind].set_index("contact_id")["value"]
        theirs = mine.reindex(idents["contact_id"]).reset_index(drop=True)
        differ = idents["value"].reset_index(drop=True) != theirs  # NA: no own value
        idents = idents[differ.fillna(True).to_numpy(dtype=bool)]
        stored = of_kind.loc[~of_kind["own"], keys]
        if len(stored):
            idents = idents.merge(stored, how="left", indicator=True)
            idents = idents[idents["_merge"] == "left_only"].drop(columns="_merge")
        out.append(idents.assign(kind=kind)[["contact_id", "kind", "value"]])
    return out


@task(name="publish-ingest-summary", cache_policy=NO_CACHE)
def publish_summary(summary: IngestSummary) -> None:
    """A table artifact ops can read in the UI; numbers only, no personal data."""
    logger = get_run_logger()
    table: list[dict[str, Any]] = [
        {"measure": "rows in", "value": summary.rows_in},
        {"measure": "accepted", "value": summary.accepted},
        {"measure": "duplicates", "value": summary.duplicates},
        {"measure": "quarantined", "value": summary.quarantined},
        {"measure": "new contacts", "value": summary.new_contacts},
        {"measure": "updated contacts", "value": summary.updated_contacts},
        {"measure": "new companies", "value": summary.new_companies},
        {"measure": "loaded in bulk", "value": "yes" if summary.bulk_load else "no"},
        {"measure": "seconds", "value": summary.seconds},
    ]
    table += [
        {"measure": f"quarantined: {k}", "value": v}
        for k, v in sorted(summary.quarantined_by_reason.items())
    ]
    table += [
        {"measure": f"merged by rule: {k}", "value": v}
        for k, v in sorted(summary.merges_by_rule.items())
    ]
    table += [
        {
            "measure": f"file {f.name}",
            "value": f"{f.status} ({f.rows_in} rows)" + (f": {f.error}" if f.error else ""),
        }
        for f in summary.files
    ]
    create_table_artifact(
        key="ingest-exhibition-summary",
        table=table,
        description=f"Exhibition ingestion, batch {summary.batch_id}",
    )
    logger.info(
        "batch %s: %s rows in = %s accepted + %s duplicates + %s quarantined",
        summary.batch_id,
        summary.rows_in,
        summary.accepted,
        summary.duplicates,
        summary.quarantined,
    )
