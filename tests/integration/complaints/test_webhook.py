"""The webhook sender against a real HTTP peer on loopback (pytest-httpserver)."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.settings import get_settings
from connectors.webhook import WebhookConfigError, WebhookSender

SECRET_PATH = "/services/T000/B000/s3cr3tT0ken"
PAYLOAD = {"text": "Complaint 42: first response SLA breach (level 2)"}


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def scripted(
    httpserver: HTTPServer, *steps: Callable[[Request], Response]
) -> list[dict[str, object]]:
    """Answer successive POSTs with ``steps`` (the last one repeats); return the bodies seen."""
    seen: list[dict[str, object]] = []

    def handler(request: Request) -> Response:
        seen.append(json.loads(request.get_data()))
        return steps[min(len(seen), len(steps)) - 1](request)

    httpserver.expect_request(SECRET_PATH, method="POST").respond_with_handler(handler)
    return seen


def status(code: int, headers: dict[str, str] | None = None) -> Callable[[Request], Response]:
    return lambda _: Response("{}", status=code, headers=headers, content_type="application/json")


def sender(httpserver: HTTPServer, session: requests.Session, **options: float) -> WebhookSender:
    return WebhookSender(
        session,
        SecretStr(httpserver.url_for(SECRET_PATH)),
        ["localhost", "127.0.0.1"],
        backoff_seconds=0.01,
        **options,  # type: ignore[arg-type]
    )


def test_a_peer_that_fails_first_gets_the_notification_on_retry(
    httpserver: HTTPServer, session: requests.Session
) -> None:
    seen = scripted(httpserver, status(503), status(502), status(200))
    result = sender(httpserver, session).send(PAYLOAD)
    assert result.delivered
    assert (result.attempts, result.status) == (3, 200)
    assert seen == [PAYLOAD, PAYLOAD, PAYLOAD]


def test_too_many_requests_is_retried_after_the_advertised_delay(
    httpserver: HTTPServer, session: requests.Session
) -> None:
    seen = scripted(httpserver, status(429, {"Retry-After": "0"}), status(204))
    result = sender(httpserver, session).send(PAYLOAD)
    assert result.delivered and result.attempts == 2
    assert len(seen) == 2


def test_a_client_error_is_not_retried(httpserver: HTTPServer, session: requests.Session) -> None:
    seen = scripted(httpserver, status(400), status(200))
    result = sender(httpserver, session).send(PAYLOAD)
    assert result.outcome == "rejected"
    assert (result.attempts, result.status, result.error) == (1, 400, "HTTP 400")
    assert len(seen) == 1


@pytest.fixture
def threaded_server() -> Iterator[HTTPServer]:
    # A stalled handler must not block the retry behind it, as it would on a real peer.
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_a_redirect_is_not_followed_to_another_host(
    httpserver: HTTPServer, session: requests.Session
) -> None:
    seen = scripted(httpserver, status(302, {"Location": "http://attacker.example/collect"}))
    result = sender(httpserver, session).send(PAYLOAD)
    assert (result.outcome, result.attempts, result.status) == ("rejected", 1, 302)
    assert len(seen) == 1


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap(
    httpserver: HTTPServer, session: requests.Session
) -> None:
    scripted(httpserver, status(503))
    delays: list[float] = []
    result = WebhookSender(
        session,
        SecretStr(httpserver.url_for(SECRET_PATH)),
        ["localhost"],
        max_attempts=6,
        backoff_seconds=0.001,
        max_backoff_seconds=0.008,
        sleep=delays.append,  # record instead of waiting; the peer is still real
        rng=random.Random(5),
    ).send(PAYLOAD)
    assert result.outcome == "gave_up" and result.attempts == 6
    caps = [0.001, 0.002, 0.004, 0.008, 0.008]
    assert len(delays) == 5
    assert all(0 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    assert len(set(delays)) == 5  # jittered, not a fixed schedule


def test_a_timed_out_post_is_retried(
    threaded_server: HTTPServer, session: requests.Session
) -> None:
    def slow(_: Request) -> Response:
        time.sleep(0.6)
        return Response("{}", status=200)

    seen = scripted(threaded_server, slow, status(200))
    result = sender(threaded_server, session, timeout_seconds=0.2).send(PAYLOAD)
    assert result.delivered and result.attempts == 2
    assert len(seen) == 2


def test_a_peer_that_keeps_failing_is_given_up_after_max_attempts(
    httpserver: HTTPServer, session: requests.Session
) -> None:
    seen = scripted(httpserver, status(500))
    result = sender(httpserver, session, max_attempts=3).send(PAYLOAD)
    assert (result.outcome, result.attempts, result.status) == ("gave_up", 3, 500)
    assert len(seen) == 3


def test_an_unreachable_peer_is_given_up_without_leaking_the_url(
    session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    with HTTPServer() as closed:  # start and stop: a port that now refuses connections
        url = closed.url_for(SECRET_PATH)
    caplog.set_level(logging.DEBUG, logger="connectors.webhook")
    result = WebhookSender(
        session, SecretStr(url), ["localhost"], max_attempts=2, backoff_seconds=0.01
    ).send(PAYLOAD)
    assert result.outcome == "gave_up"
    assert result.error == "connection failed (ConnectionError)"
    assert "s3cr3t" not in repr(result)
    # The shared loopback peer (werkzeug) logs request lines of its own; those are not ours.
    assert not any("s3cr3t" in r.getMessage() for r in caplog.records if r.name != "werkzeug")


def test_logs_and_results_show_only_scheme_and_host(
    httpserver: HTTPServer, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    scripted(httpserver, status(503), status(200))
    caplog.set_level(logging.DEBUG, logger="connectors.webhook")
    result = sender(httpserver, session).send(PAYLOAD)
    assert result.target == f"http://localhost:{httpserver.port}"
    ours = [r.getMessage() for r in caplog.records if r.name != "werkzeug"]  # not the peer's
    assert any("retrying" in m for m in ours)
    assert not any("s3cr3t" in m for m in ours)
    assert "s3cr3t" not in repr(result)


def test_a_host_outside_the_allow_list_is_refused_before_any_request(
    httpserver: HTTPServer, session: requests.Session
) -> None:
    seen = scripted(httpserver, status(200))
    with pytest.raises(
        WebhookConfigError, match="'localhost' is not in webhook_allowed_hosts"
    ) as err:
        WebhookSender(session, SecretStr(httpserver.url_for(SECRET_PATH)), ["hooks.slack.com"])
    assert "s3cr3t" not in str(err.value)
    assert seen == []


def test_sender_is_configured_from_settings(
    httpserver: HTTPServer, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = scripted(httpserver, status(200))
    monkeypatch.setenv("ACCOUNTFLOW_WEBHOOK_URL", httpserver.url_for(SECRET_PATH))
    monkeypatch.setenv("ACCOUNTFLOW_WEBHOOK_ALLOWED_HOSTS", '["localhost"]')
    get_settings.cache_clear()
    try:
        result = WebhookSender.from_settings(get_settings(), session).send(PAYLOAD)
    finally:
        get_settings.cache_clear()
    assert result.delivered
    assert seen == [PAYLOAD]
