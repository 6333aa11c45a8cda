"""Prefect tasks for inbox ingestion: read, parse, classify and store messages in batches.

Each batch is one transaction: its messages, the contacts its leads resolve to, the
complaints it opens, the suppressions it adds and (for IMAP) the checkpoint that covers it
commit together, so a crash mid-run neither skips nor repeats a message. Parsing and
classification happen before the transaction opens, so SQLite's write lock is held only for
the writes. Senders of leads and complaints go through the exhibition pipeline unchanged
(``normalize_table``, ``match_rows`` and the same merge and insert path), as one staged
"file" per batch whose rows are the messages.
"""

from __future__ import annotations

import hashlib
import imaplib
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from config.policies import get_ingest_policies
from config.settings import ImapSettings, get_settings
from connectors.database import governance_store, inbox_store, outreach_store
from connectors.database import ingest_store as store
from connectors.database.base import utcnow
from connectors.database.engine import session_scope
from connectors.database.inbox_store import ThreadRef
from connectors.database.migrate import ensure_schema
from connectors.exhibition_files import RawTable
from connectors.link_secrets import accepted_secrets
from connectors.mailbox import EmlDirReader, ImapReader, MaildirReader, MessageSource, RawMessage
from tasks.inbox.classification import (
    BounceInfo,
    Classification,
    Evidence,
    MailClassifier,
    MessageClass,
    extract_signature_fields,
    thread_parent,
)
from tasks.inbox.parsing import Malformed, ParsedMail, ParseLimits, oversize_record, parse_message
from tasks.ingest.mapping import ColumnMapping
from tasks.ingest.normalize import normalize_table
from tasks.ingest.pipeline import IngestSummary, store_batch
from tasks.ingest.staging import StagedFile, write_staged
from tasks.outreach.rendering import parse_return_path

# Senders resolved into contacts: people who write to us about business, and who answer
# our invitations. Mail the classifier is not sure of (``other``) is stored for review and
# creates no contact.
PEOPLE = frozenset({MessageClass.LEAD, MessageClass.COMPLAINT, MessageClass.RSVP})
# Classes that join a complaint when they follow up on it ("any news?" reads as other);
# machine mail never does.
ATTACHABLE = frozenset({MessageClass.LEAD, MessageClass.COMPLAINT, MessageClass.OTHER})
# Senders we look up (never create) so their message and suppression point at a contact.
LOOKED_UP = frozenset(
    {
        MessageClass.UNSUBSCRIBE,
        MessageClass.AUTO_REPLY,
        MessageClass.BOUNCE,
        MessageClass.OTHER,
    }
)
MAX_BODY_CHARS = 20_000
SOURCE_KINDS = ("imap", "eml", "maildir")


class InboxCounts(BaseModel):
    """What one batch (or a whole run) did; counts add up across batches."""

    messages_in: int = 0
    stored: int = 0
    already_stored: int = 0
    by_class: dict[str, int] = {}
    malformed_by_reason: dict[str, int] = {}
    oversize: int = 0
    new_contacts: int = 0
    matched_contacts: int = 0
    senders_quarantined: int = 0
    new_companies: int = 0
    new_complaints: int = 0
    attached_followups: int = 0
    suppressions_added: int = 0
    suppressions_by_reason: dict[str, int] = {}
    hard_bounces: int = 0
    soft_bounces: int = 0
    bounces_matched_to_outbox: int = 0
    rsvps: dict[str, int] = {}
    uidvalidity_reset: bool = False
    moved: int = 0

    def add(self, other: InboxCounts) -> None:
        for name, value in other:
            mine = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, dict(Counter(mine) + Counter(value)))
            elif isinstance(value, bool):
                setattr(self, name, mine or value)
            else:
                setattr(self, name, mine + value)


class InboxSummary(InboxCounts):
    batch_id: int
    source: str
    location: str
    seconds: float = 0.0

    @property
    def reconciles(self) -> bool:
        classified = sum(self.by_class.values())
        return self.messages_in == self.stored + self.already_stored and classified == self.stored


@dataclass(frozen=True)
class Examined:
    """One message read, parsed and classified; the raw bytes are not kept."""

    source: str
    size: int
    oversize: bool
    mailbox: str | None
    uidvalidity: int | None
    uid: int | None
    parsed: ParsedMail | Malformed
    verdict: Classification


@dataclass(frozen=True)
class Placement:
    """Where a message sits in its thread and which complaint it belongs to."""

    thread_parent_id: int | None
    complaint_id: int | None
    opens_complaint: bool
    attached: bool


# --- pure functions --------------------------------------------------------------------------


def examine(record: RawMessage, classifier: MailClassifier, limits: ParseLimits) -> Examined:
    """Parse and classify one message; oversize ones are recorded as malformed without bytes."""
    if record.raw is None:
        parsed: ParsedMail | Malformed = oversize_record(record.size)
    else:
        parsed = parse_message(record.raw, limits)
    return Examined(
        record.source,
        record.size,
        record.oversize,
        record.mailbox,
        record.uidvalidity,
        record.uid,
        parsed,
        classifier.classify(parsed),
    )


def place_in_threads(
    examined: Sequence[Examined],
    ids: Sequence[int],
    known: dict[str, ThreadRef],
    complaint_ids: Iterator[int],
) -> list[Placement]:
    """Link follow-ups to their parents; a complaint in a complaint's thread joins it.

    ``known`` holds stored messages by Message-ID and grows with this batch, in order, so a
    complaint and its follow-up arriving together still form one complaint.
    """
    known = dict(known)
    out: list[Placement] = []
    for e, mid in zip(examined, ids, strict=True):
        parent: ThreadRef | None = None
        if isinstance(e.parsed, ParsedMail):
            parent = thread_parent(e.parsed, known)
        label = e.verdict.label
        complaint_id = parent.complaint_id if parent is not None else None
        attached = complaint_id is not None and label in ATTACHABLE
        if not attached:
            complaint_id = None
        opens = label is MessageClass.COMPLAINT and complaint_id is None
        if opens:
            complaint_id = next(complaint_ids)
        out.append(Placement(parent.message_id if parent else None, complaint_id, opens, attached))
        if isinstance(e.parsed, ParsedMail) and e.parsed.message_id:
            known.setdefault(e.parsed.message_id, ThreadRef(mid, complaint_id))
    return out


LEAD_HEADER = [
    "message", "first_name", "last_name", "email", "company", "phone", "tax_id", "notes",
    "scan_time",
]  # fmt: skip


def sender_cells(e: Examined, classifier: MailClassifier, region: str) -> list[str]:
    """The sender as an exhibition row: name, company, phone and tax id from the signature."""
    assert isinstance(e.parsed, ParsedMail)
    p = e.parsed
    sig = extract_signature_fields(classifier.own_text(p.text), p.from_name, region)
    note = f"{e.verdict.label.value} by email: {p.subject}".strip()[:200]
    # First and last name, split at the first space as normalize_table splits a full name
    # (its full-name-only path trips over a batch where no name has a comma).
    first, _, last = sig.get("name", "").strip().partition(" ")
    return [
        e.source,
        first,
        last,
        p.from_address,
        sig.get("company", ""),
        sig.get("phone", ""),
        sig.get("tax_id", ""),
        note,
        p.date.isoformat() if p.date else "",
    ]


def senders_frame(rows: list[list[str]], max_field_chars: int, region: str) -> pd.DataFrame:
    """Normalised, validated sender rows, exactly as an exhibition file's rows would be."""
    numbered = [(n + 1, r) for n, r in enumerate(rows)]
    table = RawTable(header=list(LEAD_HEADER), rows=numbered)
    mapping = ColumnMapping(
        fields={i: name for i, name in enumerate(LEAD_HEADER) if name != "message"},
        unmapped=["message"],
        source=None,
    )
    frame = normalize_table(
        table,
        mapping,
        get_ingest_policies().sources,
        default_region=region,
        timezone="UTC",  # message dates carry their offset; this only covers naive ones
        max_field_chars=max_field_chars,
    )
    return frame


def _naive(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=None) if value is not None else None  # parser gives UTC


def _cut(value: str | None, size: int) -> str | None:
    return value[:size] if value else None


def message_values(
    e: Examined, mid: int, place: Placement, contact_id: int | None
) -> dict[str, Any]:
    """The inbound_messages row: provenance, class, evidence; malformed ones keep only the hash."""
    v = e.verdict
    row: dict[str, Any] = {
        "id": mid,
        "source": e.source[:500],
        "mailbox": e.mailbox,
        "uidvalidity": e.uidvalidity,
        "uid": e.uid,
        "size": e.size,
        "label": v.label.value,
        "evidence": [{"rule": x.rule, "score": x.score, "detail": x.detail} for x in v.evidence],
        "scores": dict(v.scores) or None,
        "severity": v.severity,
        "reference": _cut(v.reference, 120),
        "oversize": e.oversize,
        "thread_parent_id": place.thread_parent_id,
        "complaint_id": place.complaint_id,
        "contact_id": contact_id,
        "rsvp_answer": v.rsvp.answer if v.rsvp else None,
        "rsvp_uid": _cut(v.rsvp.uid if v.rsvp else None, 300),
        "suppressed_address": None,
        "ingested_at": utcnow(),
    }
    p = e.parsed
    if isinstance(p, Malformed):
        row.update(
            sha256=p.sha256,
            malformed_reason=p.reason.value,
            malformed_detail=_cut(p.detail, 2000),
        )
        for key in ("message_id", "in_reply_to", "references", "from_address", "from_name"):
            row[key] = None
        row.update(subject=None, received_at=None)
        return row
    row.update(
        sha256=p.sha256,
        malformed_reason=None,
        malformed_detail=None,
        message_id=_cut(p.message_id, 998),
        in_reply_to=_cut(p.in_reply_to, 998),
        references=" ".join(p.references) or None,
        from_address=_cut(p.from_address, 320),
        from_name=_cut(p.from_name, 300),
        subject=p.subject,
        received_at=_naive(p.date),
    )
    return row


# --- one batch, one transaction ----------------------------------------------------------------


def _resolve_senders(
    s: Session,
    batch_id: int,
    people: list[Examined],
    location: str,
    classifier: MailClassifier,
    counts: InboxCounts,
) -> list[int | None]:
    """Contacts for lead and complaint senders, through the exhibition ingestion path."""
    settings = get_settings()
    rows = [sender_cells(e, classifier, settings.default_region) for e in people]
    frame = senders_frame(rows, settings.max_field_chars, settings.default_region)
    sha = hashlib.sha256("\n".join(e.source for e in people).encode()).hexdigest()
    staged_path = settings.data_dir.resolve() / "staging" / f"inbox-{sha}.arrow"
    write_staged(frame, staged_path)
    name = f"inbox {people[0].source}" + (f" (+{len(people) - 1})" if len(people) > 1 else "")
    staged = StagedFile(
        order=0,
        name=name[:500],
        path=location,
        sha256=sha,
        size_bytes=sum(e.size for e in people),
        event="inbox",
        staged_path=str(staged_path),
        rows_in=len(frame),
        detail={"source": "inbox"},
    )
    result = IngestSummary(batch_id=batch_id, event="inbox", files=[])
    try:
        store_batch(s, batch_id, [staged], get_ingest_policies().matching, result)
    finally:
        staged_path.unlink(missing_ok=True)
    counts.new_contacts += result.new_contacts
    counts.matched_contacts += result.matched_existing + result.duplicates
    counts.senders_quarantined += result.quarantined
    counts.new_companies += result.new_companies
    by_row = inbox_store.row_contacts(s, sha)
    return [by_row.get(n + 1) for n in range(len(people))]


def store_examined(
    s: Session,
    batch_id: int,
    examined: Sequence[Examined],
    location: str,
    classifier: MailClassifier,
) -> InboxCounts:
    """Store one batch inside the caller's transaction; messages already stored are skipped."""
    counts = InboxCounts(messages_in=len(examined))
    store.lock_for_ingestion(s)
    done = inbox_store.stored_sources(s, [e.source for e in examined])
    fresh: list[Examined] = []
    for e in examined:
        if e.source in done:
            continue
        done.add(e.source)
        fresh.append(e)
    counts.already_stored = len(examined) - len(fresh)
    counts.stored = len(fresh)
    if not fresh:
        return counts
    ids = inbox_store.reserve_message_ids(s, len(fresh))

    contact_of: dict[int, int | None] = {}
    people = [i for i, e in enumerate(fresh) if e.verdict.label in PEOPLE]
    if people:
        resolved = _resolve_senders(
            s, batch_id, [fresh[i] for i in people], location, classifier, counts
        )
        contact_of.update(zip(people, resolved, strict=True))
    lookups = {
        i: _about(e) for i, e in enumerate(fresh) if e.verdict.label in LOOKED_UP and _about(e)
    }
    by_email = store.contacts_by_identifier(
        s,
        "email",
        [a for a in lookups.values() if a] + [a for e in fresh for a in e.verdict.suppress],
    )
    for i, address in lookups.items():
        contact_of[i] = by_email.get(address) if address else None

    mentioned = [
        m
        for e in fresh
        if isinstance(e.parsed, ParsedMail)
        for m in ([e.parsed.in_reply_to] if e.parsed.in_reply_to else [])
        + list(e.parsed.references)
    ]
    known = inbox_store.thread_refs(s, mentioned)
    n_complaints = sum(e.verdict.label is MessageClass.COMPLAINT for e in fresh)
    complaint_ids = iter(inbox_store.reserve_complaint_ids(s, n_complaints))
    places = place_in_threads(fresh, ids, known, complaint_ids)

    values = [
        message_values(e, mid, place, contact_of.get(i))
        for i, (e, mid, place) in enumerate(zip(fresh, ids, places, strict=True))
    ]
    _store_complaints(s, fresh, ids, places, contact_of, counts)
    fresh = _resolve_through_outbox(s, fresh, classifier)  # bounces naming only a local part
    suppressions, tallies, tallied_before = _suppressions(
        s, fresh, ids, values, by_email, classifier, counts
    )
    inbox_store.insert_messages(s, values)
    # An inbox contact's source is the mail that brought it: its Message-ID.
    governance_store.attach_messages(s, [values[i] for i in people])
    inbox_store.insert_suppressions(s, suppressions)
    inbox_store.save_soft_bounces(s, tallies, tallied_before)
    _store_bounces(s, fresh, ids, counts)

    for e, place in zip(fresh, places, strict=True):
        label = e.verdict.label.value
        counts.by_class[label] = counts.by_class.get(label, 0) + 1
        counts.attached_followups += place.attached
        if isinstance(e.parsed, Malformed):
            reason = e.parsed.reason.value
            counts.malformed_by_reason[reason] = counts.malformed_by_reason.get(reason, 0) + 1
        counts.oversize += e.oversize
        if e.verdict.rsvp is not None:
            answer = e.verdict.rsvp.answer
            counts.rsvps[answer] = counts.rsvps.get(answer, 0) + 1
    return counts


def _about(e: Examined) -> str | None:
    """The address a machine or opt-out message is about: the bounced one, else the sender."""
    if e.verdict.bounce is not None:
        failed = e.verdict.bounce.hard_recipients or e.verdict.bounce.soft_recipients
        return failed[0] if failed else None
    return e.parsed.from_address if isinstance(e.parsed, ParsedMail) else None


def _store_complaints(
    s: Session,
    fresh: Sequence[Examined],
    ids: Sequence[int],
    places: Sequence[Placement],
    contact_of: dict[int, int | None],
    counts: InboxCounts,
) -> None:
    openers = [i for i, place in enumerate(places) if place.opens_complaint]
    if not openers:
        return
    companies = store.contact_companies(
        s, [c for i in openers if (c := contact_of.get(i)) is not None]
    )
    complaints, events = [], []
    for i in openers:
        e, place = fresh[i], places[i]
        assert isinstance(e.parsed, ParsedMail)
        contact = contact_of.get(i)
        at = _naive(e.parsed.date) or utcnow()
        complaints.append(
            {
                "id": place.complaint_id,
                "source": "inbox",
                "contact_id": contact,
                "company_id": companies.get(contact) if contact is not None else None,
                "inbound_message_id": ids[i],
                "severity": e.verdict.severity or "low",
                "reference": _cut(e.verdict.reference, 120),
                "subject": e.parsed.subject,
                "body": e.parsed.text[:MAX_BODY_CHARS],
                "status": "open",
                "created_at": at,
            }
        )
        events.append({"complaint_id": place.complaint_id, "kind": "created", "at": at})
    inbox_store.insert_complaints(s, complaints, events)
    counts.new_complaints += len(complaints)


# --- bounces that named only a local part: the outbox says whom we mailed --------------------


def resolved_verdict(
    verdict: Classification, address: str, classifier: MailClassifier
) -> Classification:
    """The verdict with its unresolved recipients read as ``address`` (the outbox's), judged
    by the same per-reason table as every other recipient."""
    bounce = verdict.bounce
    if bounce is None or not bounce.unresolved:
        return verdict
    hard, soft = list(bounce.hard_recipients), list(bounce.soft_recipients)
    reason = verdict.suppress_reason
    for rcpt in bounce.unresolved:
        rule = classifier.policy.bounce_reasons.get(rcpt.reason)
        if rule is None or rule.action == "ignore":
            continue
        if rule.action == "suppress" and not rcpt.action.startswith("delay"):
            hard.append(address)
            reason = reason or ("complaint" if rcpt.reason == "feedback" else "hard_bounce")
        else:
            soft.append(address)
    hard = list(dict.fromkeys(hard))
    soft = [a for a in dict.fromkeys(soft) if a not in hard]
    kind: Literal["hard", "soft", "unknown"] = "hard" if hard else "soft" if soft else "unknown"
    info = replace(
        bounce, kind=kind, hard_recipients=tuple(hard), soft_recipients=tuple(soft), unresolved=()
    )
    evidence = (*verdict.evidence, Evidence("recipient_from_outbox", 0.0, address))
    return replace(
        verdict, bounce=info, suppress=tuple(hard), suppress_reason=reason, evidence=evidence
    )


def _resolve_through_outbox(
    s: Session, fresh: Sequence[Examined], classifier: MailClassifier
) -> list[Examined]:
    """Reports that named a recipient only by its local part (or, for a feedback report,
    not at all) are matched to the outbox row they answer, by the original Message-ID or
    by the VERP return path they were sent back to."""
    out = list(fresh)
    pending = [
        i
        for i, e in enumerate(fresh)
        if e.verdict.bounce is not None
        and e.verdict.bounce.unresolved
        and isinstance(e.parsed, ParsedMail)
    ]
    if not pending:
        return out
    # Every secret a VERP address may carry now: one signed before a rotation still counts.
    accepted = [secret.encode() for secret in accepted_secrets(get_settings())]
    by_msgid = inbox_store.outbox_by_message_id(
        s,
        [m for i in pending if (m := _bounce_of(fresh[i]).original_message_id)],
    )
    outbox_of: dict[int, int] = {}
    for i in pending:
        e = fresh[i]
        original = _bounce_of(e).original_message_id
        oid = by_msgid.get(original) if original else None
        if oid is None and isinstance(e.parsed, ParsedMail):
            oid = next(
                (o for a in e.parsed.to if (o := parse_return_path(a, accepted)) is not None), None
            )
        if oid is not None:
            outbox_of[i] = oid
    recipients = inbox_store.outbox_recipients(s, outbox_of.values())
    for i, oid in outbox_of.items():
        if oid in recipients:
            out[i] = replace(
                fresh[i], verdict=resolved_verdict(fresh[i].verdict, recipients[oid], classifier)
            )
    return out


def _bounce_of(e: Examined) -> BounceInfo:
    assert e.verdict.bounce is not None
    return e.verdict.bounce


def _suppressions(
    s: Session,
    fresh: Sequence[Examined],
    ids: Sequence[int],
    values: list[dict[str, Any]],
    by_email: dict[str, int],
    classifier: MailClassifier,
    counts: InboxCounts,
) -> tuple[list[dict[str, Any]], dict[str, tuple[int, str | None, int]], set[str]]:
    """Hard bounces and opt-outs, and soft bounces once they reach the policy's limit.

    Returns the suppressions to add and the soft-bounce tallies to write (after the
    messages they point at).

    The message that asked is the evidence (``inbound_message_id``); an address already on
    the list keeps its first reason.
    """
    soft = [a for e in fresh if e.verdict.bounce for a in e.verdict.bounce.soft_recipients]
    wanted = [a for e in fresh for a in e.verdict.suppress] + soft
    listed = inbox_store.suppressed(s, "email", wanted)
    tallies = inbox_store.soft_bounce_counts(s, soft)
    existing = set(tallies)
    updates: dict[str, tuple[int, str | None, int]] = {}
    limit = classifier.policy.soft_bounce_limit
    out: list[dict[str, Any]] = []
    now = utcnow()

    def suppress(address: str, reason: str, index: int) -> None:
        if len(address) > 320:
            return
        if values[index]["suppressed_address"] is None:
            values[index]["suppressed_address"] = address
        if address in listed:
            return
        listed.add(address)
        out.append(
            {
                "channel": "email",
                "address": address,
                "reason": reason,
                "source": "inbox",
                "inbound_message_id": ids[index],
                "contact_id": by_email.get(address),
                "created_at": now,
            }
        )
        counts.suppressions_by_reason[reason] = counts.suppressions_by_reason.get(reason, 0) + 1

    for i, e in enumerate(fresh):
        v = e.verdict
        for address in v.suppress:
            suppress(address, v.suppress_reason or "opt_out", i)
        if v.bounce is None:
            continue
        for address in v.bounce.soft_recipients:
            tallies[address] = tallies.get(address, 0) + 1
            updates[address] = (tallies[address], v.bounce.status, ids[i])
            if tallies[address] >= limit:
                suppress(address, "soft_bounce_limit", i)
    counts.suppressions_added += len(out)
    return out, updates, existing


def _store_bounces(
    s: Session, fresh: Sequence[Examined], ids: Sequence[int], counts: InboxCounts
) -> None:
    bounced = [(i, e.verdict.bounce) for i, e in enumerate(fresh) if e.verdict.bounce is not None]
    if not bounced:
        return
    outbox = inbox_store.outbox_by_message_id(
        s, [b.original_message_id for _, b in bounced if b.original_message_id]
    )
    rows = []
    for i, b in bounced:
        outbox_id = outbox.get(b.original_message_id) if b.original_message_id else None
        for kind, recipients in (("hard", b.hard_recipients), ("soft", b.soft_recipients)):
            for address in recipients:
                rows.append(
                    {
                        "inbound_message_id": ids[i],
                        "recipient": address[:320],
                        "kind": kind,
                        "status": _cut(b.status, 16),
                        "original_message_id": _cut(b.original_message_id, 998),
                        "outbox_id": outbox_id,
                    }
                )
                counts.hard_bounces += kind == "hard"
                counts.soft_bounces += kind == "soft"
                counts.bounces_matched_to_outbox += outbox_id is not None
    inbox_store.insert_bounces(s, rows)
    outreach_store.record_bounces(s, [r for r in rows if r["outbox_id"] is not None])


# --- tasks -------------------------------------------------------------------------------------


def _batched(records: Iterable[RawMessage], size: int) -> Iterator[list[RawMessage]]:
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield chunk


def _limits(cap: int) -> ParseLimits:
    return ParseLimits(max_bytes=cap)


@task(name="open-inbox-run", cache_policy=NO_CACHE)
def open_inbox_run(kind: str, location: str | None) -> int:
    """Check the source exists, then register the run (its summary is stored at the end)."""
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown inbox source {kind!r}; expected one of {SOURCE_KINDS}")
    if kind != "imap" and (location is None or not Path(location).is_dir()):
        raise FileNotFoundError(f"inbox folder not found: {location}")
    ensure_schema()
    with session_scope() as s:
        return store.create_batch(s, "inbox", kind)


def _ingest_stream(
    batch_id: int, source: MessageSource, location: str, batch_size: int, cap: int
) -> InboxCounts:
    classifier, limits = MailClassifier.default(), _limits(cap)
    total = InboxCounts()
    for chunk in _batched(source.messages(), batch_size):
        # A cheap look before parsing, so a rerun over a big folder costs little; the
        # transaction checks again under the lock.
        with session_scope() as s:
            done = inbox_store.stored_sources(s, [r.source for r in chunk])
        todo = [r for r in chunk if r.source not in done]
        examined = [examine(r, classifier, limits) for r in todo]
        with session_scope() as s:
            counts = store_examined(s, batch_id, examined, location, classifier)
        counts.messages_in += len(chunk) - len(todo)
        counts.already_stored += len(chunk) - len(todo)
        total.add(counts)
    return total


def transient_failure(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what a second attempt can fix (network, a dropped IMAP or database link).

    A constraint violation or a parsing bug fails the same way every time, so it fails the
    run at once; the committed batches and checkpoint stay, and the next run resumes.
    """
    try:
        state.result()
    except (OSError, imaplib.IMAP4.abort, OperationalError):
        return True
    except Exception:
        return False
    return False


@task(
    name="ingest-inbox-folder",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=2,
    retry_condition_fn=transient_failure,
)
def ingest_folder(batch_id: int, kind: str, directory: str, batch_size: int) -> InboxCounts:
    """Read a folder of .eml files or a Maildir; each batch commits on its own."""
    cap = get_settings().imap.max_message_bytes
    path = Path(directory)
    reader: MessageSource = (
        EmlDirReader(path, max_bytes=cap) if kind == "eml" else MaildirReader(path, max_bytes=cap)
    )
    return _ingest_stream(batch_id, reader, str(path.resolve()), batch_size, cap)


def imap_password(settings: ImapSettings) -> str | None:
    """The password from settings, else from the Prefect Secret block they name."""
    if settings.password is not None:
        return settings.password.get_secret_value()
    if settings.password_block:
        from prefect.blocks.system import Secret

        secret = Secret.load(settings.password_block)
        return str(secret.get())  # type: ignore[union-attr]
    return None


@task(
    name="ingest-inbox-imap",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=transient_failure,
)
def ingest_imap(batch_id: int, batch_size: int) -> InboxCounts:
    """Fetch above the stored checkpoint; each batch commits with the checkpoint that covers it.

    A crash (or a retry) resumes after the last committed batch. Mail is moved to
    ``move_to`` only after its batch committed; a crash before the move leaves it for the
    next run's move.
    """
    settings = get_settings().imap
    host, user = settings.host, settings.username or ""
    classifier, limits = MailClassifier.default(), _limits(settings.max_message_bytes)
    location = f"imap://{host}/{settings.mailbox}"
    with session_scope() as s:
        checkpoint = inbox_store.load_checkpoint(s, host, user, settings.mailbox)
    total = InboxCounts()
    with ImapReader(settings, imap_password(settings)) as reader:
        for batch in reader.batches(checkpoint, batch_size):
            examined = [examine(r, classifier, limits) for r in batch.messages]
            with session_scope() as s:
                counts = store_examined(s, batch_id, examined, location, classifier)
                inbox_store.save_checkpoint(s, host, user, batch.checkpoint)
            counts.uidvalidity_reset = batch.uidvalidity_reset
            total.add(counts)
            checkpoint = batch.checkpoint
            if batch.uidvalidity_reset:
                get_run_logger().warning(
                    "%s: UIDVALIDITY changed (%s -> %s); read the mailbox again from UID 1",
                    settings.mailbox,
                    batch.previous_uidvalidity,
                    batch.checkpoint.uidvalidity,
                )
        if checkpoint is not None and settings.move_to:
            total.moved = reader.acknowledge(checkpoint)
    return total


@task(name="finish-inbox-run", cache_policy=NO_CACHE)
def finish_inbox_run(
    batch_id: int, kind: str, location: str, counts: InboxCounts, started: float
) -> InboxSummary:
    summary = InboxSummary(
        batch_id=batch_id,
        source=kind,
        location=location,
        seconds=round(time.perf_counter() - started, 3),
        **counts.model_dump(),
    )
    with session_scope() as s:
        store.finish_batch(s, batch_id, summary.model_dump(mode="json"))
    return summary


def summary_table(summary: InboxSummary) -> list[dict[str, Any]]:
    """Numbers only: no addresses or subjects (artifacts are not a place for personal data)."""
    table: list[dict[str, Any]] = [
        {"measure": "messages in", "value": summary.messages_in},
        {"measure": "stored", "value": summary.stored},
        {"measure": "already stored", "value": summary.already_stored},
        *({"measure": f"class: {k}", "value": v} for k, v in sorted(summary.by_class.items())),
        {"measure": "new contacts", "value": summary.new_contacts},
        {"measure": "matched existing contacts", "value": summary.matched_contacts},
        {"measure": "senders quarantined", "value": summary.senders_quarantined},
        {"measure": "new complaints", "value": summary.new_complaints},
        {"measure": "follow-ups attached to complaints", "value": summary.attached_followups},
        {"measure": "suppressions added", "value": summary.suppressions_added},
        *(
            {"measure": f"suppressed: {k}", "value": v}
            for k, v in sorted(summary.suppressions_by_reason.items())
        ),
        {"measure": "hard bounces", "value": summary.hard_bounces},
        {"measure": "soft bounces", "value": summary.soft_bounces},
        {"measure": "bounces matched to outbox", "value": summary.bounces_matched_to_outbox},
        *(
            {"measure": f"quarantined: {k}", "value": v}
            for k, v in sorted(summary.malformed_by_reason.items())
        ),
        *({"measure": f"rsvp: {k}", "value": v} for k, v in sorted(summary.rsvps.items())),
        {"measure": "moved to folder", "value": summary.moved},
        {"measure": "UIDVALIDITY reset", "value": "yes" if summary.uidvalidity_reset else "no"},
        {"measure": "seconds", "value": summary.seconds},
    ]
    return table


@task(name="publish-inbox-summary", cache_policy=NO_CACHE)
def publish_inbox_summary(summary: InboxSummary) -> None:
    create_table_artifact(
        key="ingest-inbox-summary",
        table=summary_table(summary),
        description=f"Inbox ingestion ({summary.source}), batch {summary.batch_id}",
    )
    get_run_logger().info(
        "inbox batch %s: %s in = %s stored + %s already stored; %s",
        summary.batch_id,
        summary.messages_in,
        summary.stored,
        summary.already_stored,
        ", ".join(f"{k} {v}" for k, v in sorted(summary.by_class.items())) or "nothing new",
    )
