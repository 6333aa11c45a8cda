"""What one fetch means for a page: snapshot, change, nothing, or a fault; never a raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.database.competitors_store import PageState
from connectors.web_pages import FetchOutcome, FetchResult
from tasks.competitors.extraction import content_hash
from tasks.competitors.watching import interleave_by_host, judge

OLD_TEXT = "Terms\nPayment within 30 days."
PAGE = PageState(7, "acme", "http://a.example/t", '"v1"', None, 3, content_hash(OLD_TEXT), OLD_TEXT)


def fetched(body: bytes, kind: str = "html") -> FetchResult:
    return FetchResult(PAGE.url, FetchOutcome.FETCHED, 200, kind, body, '"v2"', None)


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(["html", "pdf"]))
def test_any_bytes_become_a_record_never_an_exception(body: bytes, kind: str) -> None:
    record = judge(PAGE, fetched(body, kind))
    assert record.outcome in ("fetched", "unreadable")
    if record.outcome == "unreadable":  # read again in full next run
        assert record.etag == PAGE.etag and record.snapshot is None and record.reason


def test_same_text_in_new_markup_stores_nothing_but_the_new_validators() -> None:
    body = b"<html><body><main><h1>Terms</h1><p>Payment within 30 days.</p></main></body></html>"
    record = judge(PAGE, fetched(body))
    assert record.snapshot is None and record.change is None and record.etag == '"v2"'


def test_new_text_is_a_snapshot_and_a_classified_change() -> None:
    body = b"<html><body><main><h1>Terms</h1><p>Payment within 60 days.</p></main></body></html>"
    record = judge(PAGE, fetched(body))
    assert record.snapshot is not None and record.change is not None
    assert record.change["material"] and record.change["points"] == ["payment_terms"]
    assert record.change["details"][0]["before"] == ["30 days"]


def test_a_first_snapshot_is_no_change() -> None:
    first = PageState(8, "acme", "http://a.example/u", None, None, None, None, None)
    record = judge(first, fetched(b"<p>Warranty of 24 months on all products we sell.</p>"))
    assert record.snapshot is not None and record.change is None


def test_faults_keep_their_reason() -> None:
    result = FetchResult(PAGE.url, FetchOutcome.FAILED, 503, reason="HTTP 503")
    record = judge(PAGE, result)
    assert (record.outcome, record.reason, record.snapshot) == ("failed", "HTTP 503", None)


def test_pages_are_interleaved_round_robin_over_hosts() -> None:
    pages = [PageState(i, "c", f"http://{h}.example/{i}", None, None, None, None, None)
             for i, h in enumerate("aaabbc")]  # fmt: skip
    order = [p.url.split("/")[2][0] for p in interleave_by_host(pages)]
    assert order == ["a", "b", "c", "a", "b", "a"]
