"""FaxGateway against a pytest-httpserver gateway on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.campaign_policy import CAMPAIGNS_DIR, load_campaign
from connectors.fax_gateway import (
    SIGNATURE_HEADER,
    FaxDocument,
    FaxGateway,
    callback_signature,
    final_result,
    parse_callback,
    verify_callback,
)
from connectors.smtp_sender import SendOutcome
from tasks.outreach.rendering import Contact, LinkSigning, OutboxItem, TemplateStore, render_fax

API_KEY = SecretStr("fax-api-key")
CALLBACK_SECRET = SecretStr("fax-callback-secret")


@pytest.fixture(scope="module")
def fax() -> FaxDocument:
    campaign = load_campaign(CAMPAIGNS_DIR / "welcome-fair.yaml")
    step = next(s for s in campaign.steps if s.channel == "fax")
    return render_fax(
        campaign,
        step,
        Contact(3, "Ana Souza", fax="(11) 3333-4444", country="BR", language="pt"),
        OutboxItem(77, campaign.name, step.name, "k" * 32),
        date=datetime(2026, 3, 2, 13, tzinfo=UTC),
        links=LinkSigning(SecretStr("s" * 20), "https://acme.example.com"),
        templates=TemplateStore(),
    )


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _gateway(server: HTTPServer, session: requests.Session, read: float = 5.0) -> FaxGateway:
    return FaxGateway(session, server.url_for("/v2"), api_key=API_KEY, timeout=(2.0, read))


def _record(fax_id: int, status: str, **extra: str) -> dict[str, object]:
    return {"id": fax_id, "status": status, "tags": {"outbox_id": "77"}, **extra}


def test_accepted_fax_is_sent_with_gateway_id_and_carries_number_tag_pdf_and_callback(
    httpserver: HTTPServer, session: requests.Session, fax: FaxDocument
) -> None:
    httpserver.expect_request("/v2/faxes", method="POST").respond_with_json(
        {"success": True, "data": {"id": 4242}}
    )
    result = _gateway(httpserver, session).send(fax, callback_url="https://us/callbacks/fax")
    assert result.outcome is SendOutcome.SENT and result.provider_id == "4242"
    [(request, _)] = httpserver.log
    assert request.form["to"] == "+551133334444"
    assert request.form["tag[outbox_id]"] == "77"
    assert request.form["header_text"] == fax.header_text
    assert request.form["callback_url"] == "https://us/callbacks/fax"
    assert request.files["file"].read() == fax.pdf
    assert request.headers["Authorization"] == "Bearer fax-api-key"


def test_gateway_5xx_is_retry_with_code_and_text(
    httpserver: HTTPServer, session: requests.Session, fax: FaxDocument
) -> None:
    httpserver.expect_request("/v2/faxes", method="POST").respond_with_data(
        "upstream down", status=503
    )
    result = _gateway(httpserver, session).send(fax)
    assert (result.outcome, result.code, result.detail) == (SendOutcome.RETRY, 503, "upstream down")


def test_rejected_number_is_permanent(
    httpserver: HTTPServer, session: requests.Session, fax: FaxDocument
) -> None:
    httpserver.expect_request("/v2/faxes", method="POST").respond_with_json(
        {"success": False, "message": "invalid number"}, status=422
    )
    result = _gateway(httpserver, session).send(fax)
    assert result.outcome is SendOutcome.FAILED_PERMANENT and result.code == 422


def test_no_answer_after_upload_is_unknown(
    httpserver: HTTPServer, session: requests.Session, fax: FaxDocument
) -> None:
    answered = threading.Event()

    def slow(request: Request) -> Response:
        time.sleep(0.5)
        answered.set()
        return Response(json.dumps({"success": True, "data": {"id": 1}}), status=200)

    httpserver.expect_request("/v2/faxes", method="POST").respond_with_handler(slow)
    result = _gateway(httpserver, session, read=0.2).send(fax)
    assert result.outcome is SendOutcome.UNKNOWN
    answered.wait(5)  # let the late answer land in this test's log, not the next one's
    time.sleep(0.05)


def test_unreachable_gateway_is_retry(session: requests.Session, fax: FaxDocument) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v2"
        result = FaxGateway(session, url, timeout=(1.0, 1.0)).send(fax)
    assert result.outcome is SendOutcome.RETRY


def test_resend_finds_the_live_fax_by_tag_and_does_not_post_again(
    httpserver: HTTPServer, session: requests.Session, fax: FaxDocument
) -> None:
    httpserver.expect_request(
        "/v2/faxes", method="GET", query_string={"tag[outbox_id]": "77"}
    ).respond_with_json({"success": True, "data": [_record(9, "inprogress")]})
    result = _gateway(httpserver, session).send(fax, attempt=2)
    assert result.outcome is SendOutcome.SENT and result.provider_id == "9"
    assert [request.method for request, _ in httpserver.log] == ["GET"]


def test_resend_after_a_failed_fax_posts_a_new_one(
    httpserver: HTTPServer, session: requests.Session, fax: FaxDocument
) -> None:
    httpserver.expect_request("/v2/faxes", method="GET").respond_with_json(
        {"success": True, "data": [_record(9, "failure", error_type="lineError")]}
    )
    httpserver.expect_request("/v2/faxes", method="POST").respond_with_json(
        {"success": True, "data": {"id": 10}}
    )
    result = _gateway(httpserver, session).send(fax, attempt=2)
    assert result.outcome is SendOutcome.SENT and result.provider_id == "10"
    assert [request.method for request, _ in httpserver.log] == ["GET", "POST"]


def test_resend_is_retry_without_posting_when_the_lookup_fails(
    httpserver: HTTPServer, session: requests.Session, fax: FaxDocument
) -> None:
    httpserver.expect_request("/v2/faxes", method="GET").respond_with_data("boom", status=500)
    result = _gateway(httpserver, session).send(fax, attempt=2)
    assert result.outcome is SendOutcome.RETRY and "lookup" in result.detail
    assert [request.method for request, _ in httpserver.log] == ["GET"]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (_record(5, "inprogress"), None),
        (_record(5, "success"), SendOutcome.SENT),
        (_record(5, "failure", error_type="lineError", error_code="Busy"), SendOutcome.RETRY),
        (
            _record(5, "failure", error_type="fatalError", error_code="Invalid number"),
            SendOutcome.FAILED_PERMANENT,
        ),
        (_record(5, "partialsuccess"), SendOutcome.UNKNOWN),
    ],
    ids=["in-progress-is-not-final", "success", "busy-retries", "bad-number-fails", "partial"],
)
def test_polled_status_maps_to_outbox_outcome(
    httpserver: HTTPServer,
    session: requests.Session,
    record: dict[str, object],
    expected: SendOutcome | None,
) -> None:
    httpserver.expect_request("/v2/faxes/5").respond_with_json({"success": True, "data": record})
    status = _gateway(httpserver, session).get_status("5")
    result = final_result(77, status)
    assert (result.outcome if result else None) == expected
    assert status.tag == "77"


def _callback_endpoint(request: Request) -> Response:
    """What the web service does with a gateway callback."""
    body = request.get_data()
    if not verify_callback(body, request.headers.get(SIGNATURE_HEADER), CALLBACK_SECRET):
        return Response("bad signature", status=403)
    record = parse_callback(body)
    return Response(json.dumps({"fax_id": record.fax_id, "status": record.status}), status=200)


@pytest.mark.parametrize(
    ("signature", "tamper", "status"),
    [("good", False, 200), ("good", True, 403), ("wrong-secret", False, 403), (None, False, 403)],
    ids=["good-signature", "tampered-body", "wrong-secret", "unsigned"],
)
def test_callback_is_accepted_only_with_a_valid_signature(
    httpserver: HTTPServer, signature: str | None, tamper: bool, status: int
) -> None:
    httpserver.expect_request("/callbacks/fax", method="POST").respond_with_handler(
        _callback_endpoint
    )
    body = json.dumps({"fax": _record(5, "failure", error_code="Busy")}).encode()
    headers = {}
    if signature == "good":
        headers[SIGNATURE_HEADER] = callback_signature(body, CALLBACK_SECRET)
    elif signature == "wrong-secret":
        headers[SIGNATURE_HEADER] = callback_signature(body, SecretStr("guess"))
    sent = body.replace(b"failure", b"success") if tamper else body
    response = requests.post(httpserver.url_for("/callbacks/fax"), data=sent, headers=headers)
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"fax_id": "5", "status": "failure"}


def test_callbacks_are_refused_when_no_secret_is_configured() -> None:
    body = b'{"fax": {"id": 1, "status": "success"}}'
    assert not verify_callback(body, callback_signature(body, CALLBACK_SECRET), None)
