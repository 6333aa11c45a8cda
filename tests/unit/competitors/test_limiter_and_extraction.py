"""The per-host limiter on a fake clock, and main-text extraction from HTML and PDF."""

from __future__ import annotations

import pytest
from fpdf import FPDF

from config.competitors_policy import CompetitorsPolicy
from config.policy_loader import PolicyError, load_policy
from connectors.web_pages import HostRateLimiter, content_kind, origin
from tasks.competitors.extraction import ExtractionError, canonical_text, html_text, pdf_text


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_limiter_grants_at_most_n_per_host_in_any_window() -> None:
    clock = FakeClock()
    limiter = HostRateLimiter(5, 60.0, clock=clock, sleep=clock.sleep)
    grants, answers = [], []
    for _ in range(17):
        limiter.acquire("http://a:80")
        grants.append(clock.now)
        clock.now += 0.5  # the request's time in flight
        answers.append(clock.now)
        limiter.release("http://a:80")
    # The sixth is granted a full window after the first one's answer (its latest possible
    # arrival at the server), not after its grant.
    assert all(grants[i + 5] - answers[i] >= 60.0 for i in range(len(grants) - 5))
    assert grants[:5] == [0.0, 0.5, 1.0, 1.5, 2.0] and grants[5] == 60.5


def test_limiter_counts_requests_still_in_flight() -> None:
    clock = FakeClock()
    limiter = HostRateLimiter(2, 60.0, clock=clock, sleep=clock.sleep)
    limiter.acquire("http://a:80")
    clock.now = 100.0  # long after the window, but the first request never got an answer
    limiter.acquire("http://a:80")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        limiter.release("http://a:80")  # both answers arrive at 100.0
        clock.sleep(seconds)

    limiter._sleep = sleep
    limiter.acquire("http://a:80")
    # It polled while both were in flight, then waited a window from their answers.
    assert slept == [0.05, 60.0 - 0.05] and clock.now == 160.0


def test_limiter_never_makes_one_host_wait_for_another() -> None:
    clock = FakeClock()
    limiter = HostRateLimiter(1, 60.0, clock=clock, sleep=clock.sleep)
    limiter.acquire("http://a:80")
    assert limiter.acquire("http://b:80") == 0.0


def test_origin_writes_the_default_port() -> None:
    assert origin("https://Example.com/x?y") == "https://example.com:443"
    assert origin("http://127.0.0.2:8080/p") == "http://127.0.0.2:8080"


def test_only_html_and_pdf_are_read() -> None:
    assert content_kind("text/html; charset=utf-8", b"") == "html"
    assert content_kind("application/octet-stream", b"%PDF-1.7") == "pdf"
    assert content_kind("application/octet-stream", b"<html>") is None
    assert content_kind("image/png", b"%PDF-") is None


def test_html_main_text_leaves_menus_footers_and_scripts_out() -> None:
    page = (
        b"<html><head><script>document.write('99% off everything')</script></head><body>"
        b"<nav><a href='/?utm_source=x'>Home</a> Products Contact</nav><main>"
        b"<h1>Terms</h1><p>Payment within 30 days of the invoice date.</p>"
        b"<p>All products carry a 24-month warranty.</p></main>"
        b"<footer>Updated 3 December 2026</footer></body></html>"
    )
    text = html_text(page)
    assert "Payment within 30 days" in text and "24-month warranty" in text
    assert "99%" not in text and "Products Contact" not in text and "utm_source" not in text


def test_a_short_page_falls_back_to_the_body_text() -> None:
    assert "Net 30" in html_text(b"<html><body><table><tr><td>Net 30</td></tr></table></body>")


def test_pdf_text_is_read_and_garbage_is_an_extraction_error() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(0, 10, "Widget EUR 49.90")
    assert "Widget EUR 49.90" in pdf_text(bytes(pdf.output()))
    with pytest.raises(ExtractionError):
        pdf_text(b"%PDF-1.4 not really")


def test_canonical_text_folds_whitespace_and_blank_lines() -> None:
    assert canonical_text("  a \u00a0 b\r\n\r\n\n c  ") == "a b\nc"


def test_policy_errors_name_the_file_and_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "competitors.yaml"
    path.write_text(
        "fetch: {user_agent: 'accountflow test agent'}\nours: {price: x}\n"
        "competitors:\n- id: a\n  name: A\n  pages: [{url: 'ftp://x/y'}]\n"
    )
    with pytest.raises(PolicyError, match=r"competitors\.yaml: key 'competitors.0.pages.0.url'"):
        load_policy(path, CompetitorsPolicy)
    path.write_text(
        "fetch: {user_agent: 'accountflow test agent'}\nours: {prices: x}\ncompetitors: []\n"
    )
    with pytest.raises(PolicyError, match=r"ours\.prices"):
        load_policy(path, CompetitorsPolicy)


def test_the_shipped_policy_file_is_valid() -> None:
    from config.settings import CONFIG_DIR

    policy = load_policy(CONFIG_DIR / "competitors.yaml", CompetitorsPolicy)
    assert policy.competitors and policy.fetch.requests_per_host_per_minute >= 1
