"""The unsubscribe and fax-callback endpoints, through the real app in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from config.settings import get_settings
from connectors.database import outreach_store as store
from connectors.database.engine import session_scope
from connectors.database.inbox_models import Suppression
from connectors.database.outreach_models import DeliveryEvent, OutboxItem
from connectors.fax_gateway import SIGNATURE_HEADER, callback_signature
from flows.web import create_app
from tasks.outreach.rendering import sign_unsubscribe_token
from tests.integration.outreach.support import seed_contacts

CALLBACK_SECRET = "fax-callback-secret"


@pytest.fixture
def client(database: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("ACCOUNTFLOW_UNSUBSCRIBE_SECRET", "unsubscribe-secret-for-tests")
    monkeypatch.setenv("ACCOUNTFLOW_FAX__CALLBACK_SECRET", CALLBACK_SECRET)
    get_settings.cache_clear()
    seed_contacts(2, fax=True)
    with TestClient(create_app()) as test_client:
        yield test_client


def token(contact_id: int, secret: str = "unsubscribe-secret-for-tests") -> str:
    return sign_unsubscribe_token(contact_id, "spring", SecretStr(secret))


def suppressions() -> set[tuple[str, str, int | None]]:
    with session_scope() as s:
        found = s.execute(select(Suppression.channel, Suppression.address, Suppression.contact_id))
        return {(c, a, cid) for c, a, cid in found}


def test_the_link_shows_a_confirmation_and_changes_nothing(client: TestClient) -> None:
    page = client.get(f"/u/{token(1)}")
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert suppressions() == set()


def test_one_click_post_suppresses_email_and_fax_of_the_contact_once(client: TestClient) -> None:
    for _ in range(2):
        done = client.post(f"/u/{token(1)}", data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
    assert suppressions() == {
        ("email", "c1@client1.example.org", 1),
        ("fax", "+551130000001", 1),
    }


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        token(1, secret="someone-elses-secret"),
        token(1)[:-2] + ("AA" if not token(1).endswith("AA") else "BB"),
        token(999),  # well signed, but no such contact
    ],
)
def test_a_bad_token_gets_404_and_changes_nothing(client: TestClient, bad: str) -> None:
    assert client.get(f"/u/{bad}").status_code == 404
    assert client.post(f"/u/{bad}").status_code == 404
    assert suppressions() == set()


def _fax_row() -> int:
    with session_scope() as s:
        store.insert_planned(
            s,
            [
                {
                    "idempotency_key": "k" * 32, "campaign": "spring", "step": 2,
                    "step_name": "catalogue-fax", "channel": "fax", "contact_id": 1,
                    "message_id": "<k@acme>", "language": "pt", "recipient": "+551130000001",
                    "status": "sent", "attempts": 1, "due_at": datetime(2026, 3, 2, 13),
                    "next_attempt_at": None, "provider_id": "F-77",
                }
            ],
        )  # fmt: skip
        return int(s.execute(select(OutboxItem.id)).scalar_one())


def _callback(outbox_id: int, status: str, **extra: str) -> bytes:
    record = {"id": "F-77", "status": status, "tags": {"outbox_id": str(outbox_id)}, **extra}
    return json.dumps({"fax": record}).encode()


def test_signed_busy_callback_records_the_event_and_defers_the_fax(client: TestClient) -> None:
    outbox_id = _fax_row()
    body = _callback(outbox_id, "failure", error_type="lineError", error_code="busy")
    signature = callback_signature(body, SecretStr(CALLBACK_SECRET))

    answer = client.post("/callbacks/fax", content=body, headers={SIGNATURE_HEADER: signature})

    assert answer.status_code == 200
    with session_scope() as s:
        row = s.get(OutboxItem, outbox_id)
        assert row is not None
        assert (row.status, row.final_status) == ("retry", "failure")
        [event] = s.execute(select(DeliveryEvent)).scalars()
        assert (event.outbox_id, event.error_code) == (outbox_id, "busy")


def test_signed_success_callback_keeps_the_row_sent(client: TestClient) -> None:
    outbox_id = _fax_row()
    body = _callback(outbox_id, "success")
    signature = callback_signature(body, SecretStr(CALLBACK_SECRET))

    answer = client.post("/callbacks/fax", content=body, headers={SIGNATURE_HEADER: signature})
    assert answer.status_code == 200
    with session_scope() as s:
        row = s.get(OutboxItem, outbox_id)
        assert row is not None
        assert (row.status, row.final_status) == ("sent", "success")


def test_badly_signed_callback_is_refused_and_recorded_nowhere(client: TestClient) -> None:
    outbox_id = _fax_row()
    body = _callback(outbox_id, "failure", error_code="busy")
    forged = callback_signature(body, SecretStr("not-our-secret"))

    assert (
        client.post("/callbacks/fax", content=body, headers={SIGNATURE_HEADER: forged}).status_code
        == 403
    )
    assert client.post("/callbacks/fax", content=body).status_code == 403
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(DeliveryEvent)) == 0
        row = s.get(OutboxItem, outbox_id)
        assert row is not None and row.status == "sent"
