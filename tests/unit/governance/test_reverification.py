"""Re-verification emails: their rows in the outbox, and the signed confirmation link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from config.campaign_policy import CAMPAIGNS_DIR, load_campaign
from tasks.governance.reverification import reverification_rows
from tasks.outreach.rendering import (
    sign_confirm_token,
    sign_unsubscribe_token,
    verify_confirm_token,
)

SECRET = SecretStr("a-long-enough-secret-for-tests")
CAMPAIGN = load_campaign(CAMPAIGNS_DIR / "reverify-details.yaml")
NOW = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)


def test_a_confirmation_token_round_trips_and_nothing_else_passes_for_one() -> None:
    token = sign_confirm_token(7, 42, SECRET)
    found = verify_confirm_token(token, SECRET)
    assert found is not None and (found.contact_id, found.outbox_id) == (7, 42)
    assert verify_confirm_token(token, SecretStr("another-secret-entirely")) is None
    assert verify_confirm_token(token[:-2] + "AA", SECRET) is None
    # An unsubscribe token is signed for another purpose: it confirms nothing.
    assert verify_confirm_token(sign_unsubscribe_token(7, "x", SECRET), SECRET) is None
    assert verify_confirm_token("not-a-token", SECRET) is None


def test_rows_are_planned_now_in_the_contacts_language_and_keyed_by_period() -> None:
    candidates = [
        {"contact_id": 1, "email": "Ana@Horizonte.com.br", "country": "BR", "language": None},
        {"contact_id": 2, "email": "jorge@sierra.es", "country": "ES", "language": None},
        {"contact_id": 3, "email": "mary@harbor.example", "country": "US", "language": "en"},
        {"contact_id": 4, "email": "not an address", "country": "BR", "language": "pt"},
    ]
    rows = reverification_rows(candidates, CAMPAIGN, NOW, every_days=365)
    assert [(r["contact_id"], r["language"], r["recipient"]) for r in rows] == [
        (1, "pt", "ana@horizonte.com.br"),
        (2, "es", "jorge@sierra.es"),
        (3, "en", "mary@harbor.example"),
    ]
    assert {r["status"] for r in rows} == {"planned"} and {r["step"] for r in rows} == {0}
    same = reverification_rows(candidates, CAMPAIGN, NOW + timedelta(days=1), every_days=365)
    later = reverification_rows(candidates, CAMPAIGN, NOW + timedelta(days=400), every_days=365)
    keys = [r["idempotency_key"] for r in rows]
    assert [r["idempotency_key"] for r in same] == keys
    assert not set(keys) & {r["idempotency_key"] for r in later}
