"""Re-verification through the outbox: check-freshness enqueues one email per stale
contact and period, the ordinary dispatch sends it to a real SMTP peer (suppression
holds) in the contact's language, and the signed link, followed on the web app, marks
the contact's details fresh; SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from config.campaign_policy import CAMPAIGNS_DIR
from config.settings import get_settings
from connectors.database.base import utcnow
from connectors.database.engine import session_scope
from connectors.database.governance_models import ContactConfirmation
from connectors.database.inbox_models import Suppression
from connectors.database.ingest_models import Contact
from connectors.database.outreach_models import OutboxItem, OutreachProfile
from connectors.link_secrets import link_key_ring
from flows.governance import check_freshness
from flows.outreach import dispatch_campaign as dispatch_campaign_flow
from flows.web import create_app
from tasks.governance.reverification import ConfirmationRefused, confirm_details
from tasks.outreach.rendering import sign_confirm_token
from tests.flow_runs import run_to_end
from tests.integration.outreach.support import ALL_DAY, use_campaigns, use_smtp
from tests.peers.smtp import SmtpPeer, smtp_peer_fixture  # noqa: F401

pytestmark = pytest.mark.usefixtures("prefect_harness")
dispatch_campaign = run_to_end(dispatch_campaign_flow)
CAMPAIGN = "reverify-details"
LONG_AGO = datetime(2024, 1, 10)
PEOPLE = {  # contact id: (email, profile language or None, country)
    1: ("ana@horizonte.com.br", "pt", "BR"),
    2: ("jorge@sierra.es", "es", "ES"),
    3: ("mary@harbor.example.com", "en", "US"),
    4: ("lucia@pampa.com.ar", None, "AR"),  # no profile language: Spanish for Argentina
    5: ("optout@vale.com.br", "pt", "BR"),  # unsubscribed: never mailed
}
SUBJECT_WORD = {"pt": "seus dados", "es": "sus datos", "en": "the details"}


@pytest.fixture
def reverify(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_peer: SmtpPeer
) -> Iterator[SmtpPeer]:
    """The shipped campaign, open all day (the run is at the real time of day), stale
    contacts seen two years ago, one of them unsubscribed; mail goes to the peer."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    data = yaml.safe_load((CAMPAIGNS_DIR / f"{CAMPAIGN}.yaml").read_text(encoding="utf-8"))
    data["send_window"] = ALL_DAY
    (folder / f"{CAMPAIGN}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    use_campaigns(monkeypatch, folder)
    use_smtp(monkeypatch, smtp_peer.host, smtp_peer.port)
    now = utcnow()
    with session_scope() as s:
        for cid, (email, _, country) in PEOPLE.items():
            s.add(Contact(id=cid, first_name=f"P{cid}", full_name=f"P{cid} Silva", email=email,
                          phone=f"+551199999000{cid}", job_title="Compras", country=country,
                          last_seen_at=LONG_AGO, created_at=now, updated_at=now))  # fmt: skip
        s.flush()
        for cid, (_, language, _) in PEOPLE.items():
            if language:
                s.add(OutreachProfile(contact_id=cid, language=language, updated_at=now))
        s.add(Suppression(channel="email", address=PEOPLE[5][0], reason="opt_out",
                          source="token", contact_id=5))  # fmt: skip
    yield smtp_peer


def _outbox() -> dict[int, OutboxItem]:
    with session_scope() as s:
        rows = s.scalars(select(OutboxItem).where(OutboxItem.campaign == CAMPAIGN)).all()
        for r in rows:
            s.expunge(r)
        return {r.contact_id: r for r in rows}


def test_stale_contacts_get_one_email_each_in_their_language_and_the_link_confirms(
    reverify: SmtpPeer,
) -> None:
    now = datetime.now(UTC)
    first = check_freshness(as_of=now)
    assert first.reverification_emails_enqueued == 5
    assert set(first.stale_contacts_by_owner.values()) == {5}
    # Rerun, and a month later: the period's email is not enqueued again.
    assert check_freshness(as_of=now).reverification_emails_enqueued == 0
    assert check_freshness(as_of=now + timedelta(days=30)).reverification_emails_enqueued == 0
    assert len(_outbox()) == 5

    summary = dispatch_campaign(CAMPAIGN, as_of=now)
    assert summary.sent == 4
    outbox = _outbox()
    assert outbox[5].status == "suppressed"
    by_recipient = {m.message["To"].addresses[0].addr_spec: m.message for m in reverify.received}
    assert set(by_recipient) == {PEOPLE[c][0] for c in (1, 2, 3, 4)}
    for cid, language in ((1, "pt"), (2, "es"), (3, "en"), (4, "es")):
        message = by_recipient[PEOPLE[cid][0]]
        assert SUBJECT_WORD[language] in str(message["Subject"]), (cid, message["Subject"])
    text = by_recipient[PEOPLE[2][0]].get_body(("plain",)).get_content()
    [link] = re.findall(r"https?://\S+/confirm/(\S+)", text)

    with TestClient(create_app()) as client:
        page = client.get(f"/confirm/{link}")
        assert page.status_code == 200 and PEOPLE[2][0] in page.text and "Compras" in page.text
        with session_scope() as s:  # the page alone changes nothing
            assert s.scalar(select(func.count()).select_from(ContactConfirmation)) == 0
        assert client.post(f"/confirm/{link}").status_code == 200
        assert client.post(f"/confirm/{link}").status_code == 200  # a second click: no change
        assert client.post(f"/confirm/{link[:-3]}xyz").status_code == 404
        # A validly signed link naming another contact's email is refused.
        secret = SecretStr(link_key_ring(get_settings()).current)
        crossed = sign_confirm_token(1, outbox[2].id, secret)
        assert client.post(f"/confirm/{crossed}").status_code == 404
    with session_scope() as s:
        confirmations = s.execute(
            select(ContactConfirmation.contact_id, ContactConfirmation.outbox_id)
        ).all()
    assert confirmations == [(2, outbox[2].id)]

    after = check_freshness(as_of=now + timedelta(minutes=1))
    assert after.stale_values == first.stale_values - 3  # jorge's email, phone and title
    with pytest.raises(ConfirmationRefused, match="expired"):
        confirm_details(1, outbox[1].id, as_of=now + timedelta(days=61))


def test_a_contact_asked_in_an_earlier_period_is_asked_again_in_the_next(
    reverify: SmtpPeer,
) -> None:
    now = datetime.now(UTC)
    assert check_freshness(as_of=now).reverification_emails_enqueued == 5
    assert check_freshness(as_of=now + timedelta(days=366)).reverification_emails_enqueued == 5
    assert len({r.idempotency_key for r in _all_rows()}) == 10


def _all_rows() -> list[OutboxItem]:
    with session_scope() as s:
        rows = list(s.scalars(select(OutboxItem)))
        for r in rows:
            s.expunge(r)
        return rows


def test_the_cli_says_how_many_emails_it_put_in_the_outbox(reverify: SmtpPeer) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["check-freshness"])
    assert result.exit_code == 0, result.output
    assert "5 re-verification emails put in the outbox" in result.output
    again = CliRunner().invoke(app, ["check-freshness"])
    assert "0 re-verification emails" in again.output
