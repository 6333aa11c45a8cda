"""What one fetch of one page means: a new snapshot, a change, nothing, or a fault.

Pure: it takes the page's stored state and the fetch result and returns the record to
save. The text is compared by hash, so a page re-served with new markup, menus or tracking
links but the same main text stores nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import zip_longest

from connectors.database.competitors_store import PageRecord, PageState
from connectors.web_pages import FetchOutcome, FetchResult, origin
from tasks.competitors.diffing import assess
from tasks.competitors.extraction import ExtractionError, content_hash, page_text


def judge(page: PageState, result: FetchResult) -> PageRecord:
    """The record one fetch leaves (see module docstring)."""
    record = PageRecord(
        page_id=page.id,
        competitor_id=page.competitor_id,
        outcome=result.outcome.value,
        http_status=result.http_status,
        reason=result.reason,
        elapsed_ms=int(result.elapsed_seconds * 1000),
        etag=result.etag,
        last_modified=result.last_modified,
        previous_snapshot_id=page.snapshot_id,
    )
    if result.outcome != FetchOutcome.FETCHED:
        return record
    # Unreadable is not saved as fetched: the validators stay as they were, so the page
    # is read in full again next run.
    unreadable = replace(
        record, outcome="unreadable", etag=page.etag, last_modified=page.last_modified
    )
    try:
        text = page_text(result.kind or "", result.body)
    except ExtractionError as exc:
        return replace(unreadable, reason=str(exc))
    if not text:
        return replace(unreadable, reason="no text found")
    digest = content_hash(text)
    if digest == page.content_hash:
        return record
    change = None
    if page.text is not None:
        found = assess(page.text, text)
        change = {
            "material": found.material,
            "points": [p.value for p in found.points],
            "summary": found.summary(),
            "details": [
                {
                    "point": c.point.value,
                    "what": c.what,
                    "before": list(c.before),
                    "after": list(c.after),
                }
                for c in found.changes
            ],
            "diff": found.diff,
        }
    return replace(record, snapshot=(digest, text, result.kind or "html"), change=change)


def interleave_by_host(pages: Sequence[PageState]) -> list[PageState]:
    """Pages reordered round-robin over their hosts, so parallel workers spread over hosts
    instead of queueing behind one host's limit."""
    by_host: dict[str, list[PageState]] = {}
    for page in pages:
        by_host.setdefault(origin(page.url), []).append(page)
    rounds = zip_longest(*by_host.values())
    return [page for group in rounds for page in group if page is not None]
