"""The company-registry connector against a real HTTP peer (pytest-httpserver) on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.scoring_policy import RegistryMapping, load_scoring_policy
from connectors.company_registry import (
    CompanyRegistryClient,
    InMemoryRegistryCache,
    RegistryRecord,
    RegistryUnavailable,
    json_path,
    results_frame,
)
from tasks.scoring.scorecard import factor_levels

TAX_ID = "11222333000181"
PATH = f"/companies/{TAX_ID}"
BODY = {"company": {"status": "ATIVA", "founded_on": "2005-03-01", "size": "EPP"}}
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def mapping() -> RegistryMapping:
    return load_scoring_policy().registry


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def client(
    session: requests.Session,
    url: str,
    mapping: RegistryMapping,
    **kwargs: object,
) -> CompanyRegistryClient:
    defaults: dict[str, object] = {
        "timeout_seconds": 2.0,
        "attempts": 3,
        "backoff_seconds": 0.01,
        "clock": Clock(),
    }
    defaults.update(kwargs)
    return CompanyRegistryClient(session, url, mapping, **defaults)  # type: ignore[arg-type]


def test_found_company_is_mapped_through_the_configured_json_paths(
    httpserver: HTTPServer, session: requests.Session, mapping: RegistryMapping
) -> None:
    httpserver.expect_request(PATH).respond_with_json(BODY)
    result = client(session, httpserver.url_for(""), mapping).lookup(TAX_ID)
    assert result == RegistryRecord(TAX_ID, "ATIVA", date(2005, 3, 1), "EPP", NOW)


def test_timeouts_are_retried_then_reported_as_unavailable(
    httpserver: HTTPServer, session: requests.Session, mapping: RegistryMapping
) -> None:
    release = threading.Event()

    def slow(_: Request) -> Response:
        release.wait(5)  # held until the client has given up
        return Response("{}", content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(slow)
    registry = client(session, httpserver.url_for(""), mapping, timeout_seconds=0.2, attempts=2)
    result = registry.lookup(TAX_ID)
    release.set()
    assert isinstance(result, RegistryUnavailable)
    assert result.reason == "timeout"
    assert registry.requests_made == 2
    # Let the server finish both held requests so they cannot leak into the next test.
    deadline = time.monotonic() + 5
    while len(httpserver.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)


def test_server_error_then_success_is_retried_with_backoff(
    httpserver: HTTPServer, session: requests.Session, mapping: RegistryMapping
) -> None:
    httpserver.expect_oneshot_request(PATH).respond_with_data("busy", status=503)
    httpserver.expect_oneshot_request(PATH).respond_with_data("oops", status=500)
    httpserver.expect_request(PATH).respond_with_json(BODY)
    pauses: list[float] = []
    registry = client(session, httpserver.url_for(""), mapping, sleep=pauses.append)
    result = registry.lookup(TAX_ID)
    assert isinstance(result, RegistryRecord)
    assert pauses == [0.01, 0.02]  # exponential: base, then doubled


def test_persistent_server_errors_give_up_after_the_attempts(
    httpserver: HTTPServer, session: requests.Session, mapping: RegistryMapping
) -> None:
    httpserver.expect_request(PATH).respond_with_data("down", status=502)
    registry = client(session, httpserver.url_for(""), mapping, attempts=3)
    result = registry.lookup(TAX_ID)
    assert isinstance(result, RegistryUnavailable) and result.reason == "server_error"
    assert len(httpserver.log) == 3


def test_malformed_json_is_unavailable_not_an_exception(
    httpserver: HTTPServer, session: requests.Session, mapping: RegistryMapping
) -> None:
    httpserver.expect_request(PATH).respond_with_data(
        '{"company": {"status": ', content_type="application/json"
    )
    result = client(session, httpserver.url_for(""), mapping).lookup(TAX_ID)
    assert isinstance(result, RegistryUnavailable)
    assert result.reason == "malformed_response"
    assert len(httpserver.log) == 1  # a broken body is not retried


def test_json_without_the_configured_fields_is_malformed(
    httpserver: HTTPServer, session: requests.Session, mapping: RegistryMapping
) -> None:
    httpserver.expect_request(PATH).respond_with_json({"data": {"situacao": "ATIVA"}})
    result = client(session, httpserver.url_for(""), mapping).lookup(TAX_ID)
    assert isinstance(result, RegistryUnavailable) and result.reason == "malformed_response"


def test_unknown_tax_id_is_not_retried(
    httpserver: HTTPServer, session: requests.Session, mapping: RegistryMapping
) -> None:
    httpserver.expect_request(PATH).respond_with_data("not found", status=404)
    result = client(session, httpserver.url_for(""), mapping).lookup(TAX_ID)
    assert isinstance(result, RegistryUnavailable) and result.reason == "unknown_tax_id"
    assert len(httpserver.log) == 1


def test_cache_answers_within_the_refresh_age_and_refetches_after(
    httpserver: HTTPServer, session: requests.Session, mapping: RegistryMapping
) -> None:
    httpserver.expect_request(PATH).respond_with_json(BODY)
    clock = Clock()
    cache = InMemoryRegistryCache()
    registry = client(session, httpserver.url_for(""), mapping, cache=cache, clock=clock)
    first = registry.lookup(TAX_ID)
    clock.now = NOW + timedelta(days=mapping.refresh_age_days - 1)
    assert registry.lookup(TAX_ID) == first
    assert len(httpserver.log) == 1
    clock.now = NOW + timedelta(days=mapping.refresh_age_days + 1)
    refreshed = registry.lookup(TAX_ID)
    assert len(httpserver.log) == 2
    assert isinstance(refreshed, RegistryRecord) and refreshed.fetched_at == clock.now


def test_registry_down_lets_scoring_proceed_without_the_registry_factors(
    session: requests.Session, mapping: RegistryMapping
) -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    registry = client(session, f"http://127.0.0.1:{port}", mapping, attempts=2)
    results = registry.lookup_many([TAX_ID, TAX_ID])
    assert len(results) == 1
    assert isinstance(results[0], RegistryUnavailable)
    assert results[0].reason == "connection_error"

    registry_cols = results_frame(results)
    contacts = pd.DataFrame({"contact_id": [1], "tax_id": [TAX_ID], "country": ["BR"]})
    merged = contacts.merge(registry_cols, on="tax_id", how="left")
    levels = factor_levels(merged, load_scoring_policy(), NOW)
    assert list(levels.loc[0, ["registry_status", "company_age", "company_size"]]) == [0, 0, 0]
    assert merged["registry_unavailable"].iloc[0].startswith("connection_error")


def test_json_path_walks_objects_and_list_indexes() -> None:
    doc = {"items": [{"a": {"b": 3}}]}
    assert json_path(doc, "items.0.a.b") == 3
    assert json_path(doc, "items.1.a") is None
    assert json_path(doc, "items.x") is None
