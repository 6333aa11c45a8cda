"""`POST /complaints` on the web service: token auth, validation, storage (both databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from config.settings import get_settings
from connectors.database.complaints_models import Complaint, ComplaintEvent
from connectors.database.engine import session_scope
from flows.web import create_app
from tests.integration.complaints.support import complaint_policies  # noqa: F401

pytestmark = pytest.mark.usefixtures("database", "complaint_policies")
TOKEN = "t0ken-for-tests"
BODY = {
    "external_ref": "WEB-1",
    "email": "Cliente@Example.com.br",
    "company": "Cliente Ltda",
    "country": "BR",
    "state": "SP",
    "severity": "critical",
    "reference": "PO-5521",
    "subject": "wrong items",
    "created_at": "2026-12-07T09:00:00-03:00",
}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("ACCOUNTFLOW_API_TOKEN", TOKEN)
    get_settings.cache_clear()
    with TestClient(create_app()) as c:
        yield c


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored() -> list[Complaint]:
    with session_scope() as s:
        return list(s.scalars(select(Complaint)))


def test_a_valid_complaint_is_stored_with_its_created_event_and_owner(client: TestClient) -> None:
    response = client.post("/complaints", json=BODY, headers=auth())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["duplicate"] is False
    with session_scope() as s:
        complaint = s.get(Complaint, body["complaint_id"])
        assert complaint is not None
        assert (complaint.source, complaint.severity, complaint.reference) == (
            "api",
            "critical",
            "PO-5521",
        )
        assert complaint.owner_id == "ana" and complaint.status == "open"
        assert str(complaint.created_at) == "2026-12-07 12:00:00"  # stored as UTC
        events = s.scalars(select(ComplaintEvent.kind)).all()
        assert events == ["created"]
    again = client.post("/complaints", json=BODY, headers=auth())
    assert again.status_code == 201
    assert again.json() == {"complaint_id": body["complaint_id"], "duplicate": True}
    assert len(stored()) == 1


def test_missing_or_wrong_token_is_refused_before_anything_is_read(client: TestClient) -> None:
    assert client.post("/complaints", json=BODY).status_code == 401
    wrong = client.post("/complaints", json=BODY, headers=auth("nope"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    # Even an invalid body gets 401, not a 422 that would describe the schema.
    assert client.post("/complaints", json={"x": 1}, headers=auth("nope")).status_code == 401
    assert stored() == []


def test_without_a_configured_token_the_endpoint_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACCOUNTFLOW_API_TOKEN", raising=False)
    get_settings.cache_clear()
    with TestClient(create_app()) as c:
        assert c.post("/complaints", json=BODY, headers=auth()).status_code == 503
    assert stored() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"severity": "apocalyptic"}, "severity"),
        ({"email": "not-an-address"}, "email"),
        ({"created_at": "2026-12-07T09:00:00"}, "created_at"),
        ({"unexpected": "field"}, "unexpected"),
        ({"subject": None, "body": None}, "subject or a body"),
    ],
)
def test_invalid_complaints_get_422_naming_the_problem(
    client: TestClient, change: dict[str, object], field: str
) -> None:
    response = client.post("/complaints", json={**BODY, **change}, headers=auth())
    assert response.status_code == 422
    assert field in response.text
    assert stored() == []
