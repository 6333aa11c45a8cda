"""The page fetcher against a real HTTP server on loopback: politeness and every fault."""

from __future__ import annotations

import socket
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors import web_pages
from connectors.web_pages import FetchOutcome, HostRateLimiter, PageFetcher, make_session
from tests.integration.competitors.support import USER_AGENT, Site, html_page, pdf_bytes


def fetcher(
    limit: int = 600,
    window: float = 60.0,
    retries: int = 0,
    read_timeout: float = 2.0,
    total_timeout: float = 5.0,
    max_bytes: int = 200_000,
) -> PageFetcher:
    limiter = HostRateLimiter(limit, window)
    return PageFetcher(
        session=make_session(USER_AGENT, retries, 0.0, max_redirects=4, limiter=limiter),
        limiter=limiter,
        user_agent=USER_AGENT,
        connect_timeout=1.0,
        read_timeout=read_timeout,
        total_timeout=total_timeout,
        max_bytes=max_bytes,
        max_redirects=4,
    )


def test_unchanged_page_costs_one_conditional_request_answered_304(site: Site) -> None:
    site.put("/terms", html_page("Payment within 30 days."))
    f = fetcher()
    first = f.fetch(site.url("/terms"))
    assert first.outcome == FetchOutcome.FETCHED and first.etag == '"v1"'
    site.log.clear()
    second = f.fetch(site.url("/terms"), first.etag, first.last_modified)
    assert second.outcome == FetchOutcome.NOT_MODIFIED and second.http_status == 304
    assert [p for _, p, _ in site.log] == ["/terms"]  # robots.txt read once per fetcher
    sent = site.requests_to("/terms")[0]
    assert sent["If-None-Match"] == '"v1"' and sent["If-Modified-Since"] == first.last_modified


def test_if_modified_since_alone_gets_304_from_a_server_without_etags(site: Site) -> None:
    site.put("/terms", html_page("Payment within 30 days."))
    site.pages["/terms"].etag = None
    first = fetcher().fetch(site.url("/terms"))
    assert first.etag is None and first.last_modified
    again = fetcher().fetch(site.url("/terms"), None, first.last_modified)
    assert again.outcome == FetchOutcome.NOT_MODIFIED


def test_a_changed_page_comes_back_in_full_with_its_new_validators(site: Site) -> None:
    site.put("/terms", html_page("Payment within 30 days."))
    first = fetcher().fetch(site.url("/terms"))
    site.put("/terms", html_page("Payment within 45 days."))
    second = fetcher().fetch(site.url("/terms"), first.etag, first.last_modified)
    assert second.outcome == FetchOutcome.FETCHED and second.etag == '"v2"'
    assert b"45 days" in second.body


def test_user_agent_names_us(site: Site) -> None:
    site.put("/terms", html_page("x"))
    fetcher().fetch(site.url("/terms"))
    assert all(h["User-Agent"] == USER_AGENT for _, _, h in site.log)


def test_robots_txt_disallow_is_obeyed_and_the_page_never_requested(site: Site) -> None:
    site.robots = "User-agent: *\nDisallow: /private/\n"
    site.put("/private/prices", html_page("Prices"))
    site.put("/public", html_page("Payment within 30 days."))
    f = fetcher()
    blocked = f.fetch(site.url("/private/prices"))
    allowed = f.fetch(site.url("/public"))
    assert blocked.outcome == FetchOutcome.BLOCKED and "robots.txt" in (blocked.reason or "")
    assert allowed.outcome == FetchOutcome.FETCHED
    assert site.requests_to("/private/prices") == []
    assert len(site.requests_to("/robots.txt")) == 1


def test_robots_txt_rules_for_our_agent_apply_to_us(site: Site) -> None:
    site.robots = (
        "User-agent: accountflow-competitor-watch\nDisallow: /\n\nUser-agent: *\nAllow: /\n"
    )
    site.put("/terms", html_page("x"))
    assert fetcher().fetch(site.url("/terms")).outcome == FetchOutcome.BLOCKED


def test_a_redirected_robots_txt_is_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data(
        "", status=301, headers={"Location": "/policies/robots.txt"}
    )
    httpserver.expect_request("/policies/robots.txt").respond_with_data(
        "User-agent: *\nDisallow: /\n", content_type="text/plain"
    )
    assert fetcher().fetch(httpserver.url_for("/terms")).outcome == FetchOutcome.BLOCKED


def test_robots_txt_server_error_means_no_crawl_this_run(site: Site) -> None:
    site.robots, site.robots_status = "oops", 503
    site.put("/terms", html_page("x"))
    result = fetcher().fetch(site.url("/terms"))
    assert result.outcome == FetchOutcome.FAILED and "robots.txt answered HTTP 503" in (
        result.reason or ""
    )
    assert site.requests_to("/terms") == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_host_that_is_down_is_a_failure_with_its_reason() -> None:
    result = fetcher().fetch(f"http://127.0.0.1:{_free_port()}/terms")
    assert result.outcome == FetchOutcome.FAILED
    assert result.reason and result.reason.startswith(("down", "robots.txt unreachable"))


def test_a_slow_page_is_cut_at_the_read_timeout(httpserver: HTTPServer) -> None:
    def stall(_: Request) -> Response:
        time.sleep(1.5)
        return Response("late", content_type="text/html")

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/slow").respond_with_handler(stall)
    started = time.monotonic()
    result = fetcher(read_timeout=0.3).fetch(httpserver.url_for("/slow"))
    assert result.outcome == FetchOutcome.FAILED and "slow" in (result.reason or "")
    assert time.monotonic() - started < 1.4


def test_a_page_that_trickles_is_cut_at_the_total_deadline(httpserver: HTTPServer) -> None:
    def trickle(_: Request) -> Response:
        def chunks():  # type: ignore[no-untyped-def]
            for _ in range(40):
                time.sleep(0.1)
                yield b"<p>" + b"x" * 70_000 + b"</p>"

        return Response(chunks(), content_type="text/html")

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/trickle").respond_with_handler(trickle)
    result = fetcher(read_timeout=1.0, total_timeout=0.5, max_bytes=10**8).fetch(
        httpserver.url_for("/trickle")
    )
    assert result.outcome == FetchOutcome.FAILED and "slow" in (result.reason or "")


def test_a_redirect_loop_is_a_failure_not_a_hang(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    result = fetcher().fetch(httpserver.url_for("/a"))
    assert result.outcome == FetchOutcome.FAILED and "redirect loop" in (result.reason or "")


def test_redirects_are_followed_each_hop_under_robots_txt(site: Site) -> None:
    site.robots = "User-agent: *\nDisallow: /private/\n"
    site.put("/new-terms", html_page("Payment within 30 days."))
    site.redirects.update({"/old-terms": "/new-terms", "/sneaky": "/private/x"})
    f = fetcher()
    moved = f.fetch(site.url("/old-terms"))
    assert moved.outcome == FetchOutcome.FETCHED and moved.final_url == site.url("/new-terms")
    assert f.fetch(site.url("/sneaky")).outcome == FetchOutcome.BLOCKED


def test_a_long_redirect_chain_is_cut_at_the_bound(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    for i in range(10):
        httpserver.expect_request(f"/r{i}").respond_with_data(
            "", status=302, headers={"Location": f"/r{i + 1}"}
        )
    result = fetcher().fetch(httpserver.url_for("/r0"))
    assert result.outcome == FetchOutcome.FAILED and result.reason == "more than 4 redirects"
    assert len([r for r, _ in httpserver.log if r.path[:2] == "/r" and r.path[2:].isdigit()]) == 5


def test_a_huge_page_is_cut_by_its_declared_length(site: Site) -> None:
    site.put("/huge", html_page("x" * 500_000))
    result = fetcher(max_bytes=100_000).fetch(site.url("/huge"))
    assert result.outcome == FetchOutcome.FAILED and "larger than 100000 bytes" in (
        result.reason or ""
    )


def test_a_huge_streamed_page_without_length_is_cut_while_reading(httpserver: HTTPServer) -> None:
    sent: list[int] = []

    def endless(_: Request) -> Response:
        def chunks():  # type: ignore[no-untyped-def]
            for i in range(10_000):
                sent.append(i)
                yield b"y" * 65_536

        return Response(chunks(), content_type="text/html")

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/endless").respond_with_handler(endless)
    result = fetcher(max_bytes=1_000_000).fetch(httpserver.url_for("/endless"))
    assert result.outcome == FetchOutcome.FAILED and "larger than" in (result.reason or "")
    assert len(sent) < 10_000  # the client stopped reading; the body was never all sent


def test_a_page_that_is_neither_html_nor_pdf_is_refused(site: Site) -> None:
    site.put("/logo", b"\x89PNG\r\n\x1a\n" + b"0" * 100, content_type="image/png")
    result = fetcher().fetch(site.url("/logo"))
    assert result.outcome == FetchOutcome.FAILED
    assert result.reason == "not HTML or PDF (Content-Type image/png)"


def test_a_pdf_price_list_is_fetched_as_pdf(site: Site) -> None:
    site.put("/prices.pdf", pdf_bytes("Widget EUR 49.90"), content_type="application/pdf")
    result = fetcher().fetch(site.url("/prices.pdf"))
    assert result.outcome == FetchOutcome.FETCHED and result.kind == "pdf"
    assert result.body.startswith(b"%PDF-")


def test_server_errors_are_retried_with_backoff_and_each_retry_counts_against_the_host(
    httpserver: HTTPServer,
) -> None:
    answers = iter([503, 429, 200])

    def flaky(_: Request) -> Response:
        status = next(answers)
        return Response("<p>ok</p>" if status == 200 else "busy", status=status,
                        content_type="text/html", headers={"Retry-After": "0"})  # fmt: skip

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    f = fetcher(retries=2)
    result = f.fetch(httpserver.url_for("/flaky"))
    assert result.outcome == FetchOutcome.FETCHED
    assert f.limiter.granted == 4  # robots.txt, the first try and two retries


def test_retries_under_a_limit_of_one_wait_for_the_window_instead_of_deadlocking(
    httpserver: HTTPServer,
) -> None:
    answers = iter([503, 200])

    def flaky(_: Request) -> Response:
        status = next(answers)
        return Response("<p>ok</p>", status=status, content_type="text/html")

    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    f = fetcher(limit=1, window=0.5, retries=1)
    started = time.monotonic()
    assert f.fetch(httpserver.url_for("/flaky")).outcome == FetchOutcome.FETCHED
    assert time.monotonic() - started >= 1.0  # robots, try, retry: two full windows apart


def test_a_retry_after_of_an_hour_is_capped(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/later").respond_with_data(
        "busy", status=429, headers={"Retry-After": "3600"}
    )
    monkeypatch.setattr(web_pages, "RETRY_AFTER_CAP", 0.2)
    started = time.monotonic()
    result = fetcher(retries=1).fetch(httpserver.url_for("/later"))
    assert result.outcome == FetchOutcome.FAILED and result.reason == "HTTP 429"
    assert 0.2 <= time.monotonic() - started < 5


def test_a_page_that_keeps_failing_is_recorded_with_its_status(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("", status=404)
    httpserver.expect_request("/down").respond_with_data("busy", status=503)
    result = fetcher(retries=1).fetch(httpserver.url_for("/down"))
    assert result.outcome == FetchOutcome.FAILED and result.reason == "HTTP 503"
    assert len([r for r, _ in httpserver.log if r.path == "/down"]) == 2


def test_per_host_limit_holds_in_every_window_at_the_server(site: Site) -> None:
    for i in range(9):
        site.put(f"/p{i}", html_page(f"page {i}"))
    f = fetcher(limit=3, window=1.0)
    started = time.monotonic()
    for i in range(9):
        assert f.fetch(site.url(f"/p{i}")).outcome == FetchOutcome.FETCHED
    times = sorted(t for t, _, _ in site.log)  # 10 requests: robots.txt and 9 pages
    assert len(times) == 10
    assert all(times[i + 3] - times[i] >= 0.95 for i in range(len(times) - 3))
    assert time.monotonic() - started >= 3.0  # it waited rather than exceeding the limit
