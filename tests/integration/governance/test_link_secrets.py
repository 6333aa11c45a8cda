"""Unsubscribe links cannot be forged on a default install, and rotation keeps old links."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import CliRunner

from config.settings import get_settings
from connectors.database.engine import session_scope
from connectors.database.outreach_models import OutboxItem
from connectors.link_secrets import (
    RING_FILE,
    InsecureLinkSecretError,
    LinkKeyRing,
    link_key_ring,
    require_safe_link_secret,
    rotate_generated_secret,
)
from flows.cli import app
from flows.outreach import dispatch_campaign as dispatch_campaign_flow
from flows.web import create_app
from tasks.outreach.rendering import LinkSigning, sign_unsubscribe_token
from tests.flow_runs import run_to_end
from tests.integration.outreach.support import seed_contacts, use_campaigns, write_campaign

PUBLISHED = "change-me-in-production"
STRONG = "k3Vq9-rotation-test-secret-0123456789"
dispatch_campaign = run_to_end(dispatch_campaign_flow)


def _use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(f"ACCOUNTFLOW_{key}", value)
    get_settings.cache_clear()


def test_a_default_install_signs_with_a_random_secret_kept_private(app_env: Path) -> None:
    signing = LinkSigning.from_settings(get_settings())
    secret = signing.secret.get_secret_value()
    assert secret != PUBLISHED and len(secret) >= 40
    ring_file = app_env / RING_FILE
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
    # The same secret on every later use, so links sent yesterday still verify today.
    assert LinkSigning.from_settings(get_settings()).secret == signing.secret
    forged = sign_unsubscribe_token(1, "spring", SecretStr(PUBLISHED))
    assert forged != sign_unsubscribe_token(1, "spring", signing.secret)


def test_two_installs_do_not_share_a_secret(tmp_path: Path) -> None:
    first = link_key_ring(get_settings().model_copy(update={"data_dir": tmp_path / "a"}))
    second = link_key_ring(get_settings().model_copy(update={"data_dir": tmp_path / "b"}))
    assert first.current != second.current


@pytest.mark.parametrize("secret", [PUBLISHED, "", "short"])
def test_web_refuses_a_known_or_empty_secret_outside_loopback(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: served.append(k))
    _use(monkeypatch, UNSUBSCRIBE_SECRET=secret)
    refused = CliRunner().invoke(app, ["web", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and served == []
    assert "ACCOUNTFLOW_UNSUBSCRIBE_SECRET" in refused.output
    local = CliRunner().invoke(app, ["web", "--host", "127.0.0.1"])
    assert local.exit_code == 0 and len(served) == 1


def test_web_serves_a_strong_or_generated_secret_anywhere(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: served.append(k))
    assert CliRunner().invoke(app, ["web", "--host", "0.0.0.0"]).exit_code == 0
    _use(monkeypatch, UNSUBSCRIBE_SECRET=STRONG)
    assert CliRunner().invoke(app, ["web", "--host", "0.0.0.0"]).exit_code == 0
    assert len(served) == 2


@pytest.mark.usefixtures("prefect_harness")
def test_a_real_dispatch_refuses_a_published_secret_for_public_links(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "campaigns"
    use_campaigns(monkeypatch, folder)
    name = write_campaign(folder)
    seed_contacts(3)
    _use(
        monkeypatch,
        UNSUBSCRIBE_SECRET=PUBLISHED,
        PUBLIC_BASE_URL="https://acme.example.com",
        OUTREACH_MAIL_TRANSPORT="directory",
    )
    with pytest.raises(InsecureLinkSecretError, match="forge"):
        dispatch_campaign(name, as_of=datetime(2026, 3, 2, 13, tzinfo=UTC))
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(OutboxItem)) == 0
    preview = dispatch_campaign(name, dry_run=True, as_of=datetime(2026, 3, 2, 13, tzinfo=UTC))
    assert preview.previews == 3  # a dry run sends nothing, so it may preview


def test_loopback_public_links_may_use_any_secret(app_env: Path) -> None:
    settings = get_settings().model_copy(
        update={"unsubscribe_secret": SecretStr(PUBLISHED), "public_base_url": "http://[::1]:8000"}
    )
    require_safe_link_secret(settings)
    with pytest.raises(InsecureLinkSecretError):
        require_safe_link_secret(settings, exposed_host="10.0.0.5")


def test_rotation_keeps_old_links_for_the_grace_period_only() -> None:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    ring = LinkKeyRing("old").rotated("new", t0)
    grace = timedelta(days=30)
    assert ring.accepted(t0 + timedelta(days=29), grace) == ["new", "old"]
    assert ring.accepted(t0 + timedelta(days=31), grace) == ["new"]
    assert LinkKeyRing.from_json(ring.to_json()) == ring


def test_a_link_signed_before_a_rotation_still_unsubscribes_within_the_grace(
    database: str, monkeypatch: pytest.MonkeyPatch, app_env: Path
) -> None:
    seed_contacts(1)
    _use(monkeypatch, UNSUBSCRIBE_SECRET=STRONG)
    old_link = sign_unsubscribe_token(1, "spring", LinkSigning.from_settings(get_settings()).secret)
    _use(monkeypatch, UNSUBSCRIBE_SECRET=STRONG + "-rotated")
    with TestClient(create_app()) as client:
        assert client.get(f"/u/{old_link}").status_code == 200
        _use(monkeypatch, UNSUBSCRIBE_SECRET_GRACE_DAYS="0")
        assert client.get(f"/u/{old_link}").status_code == 404
    ring = link_key_ring(get_settings())
    assert [r.secret for r in ring.retired] == [STRONG]


def test_a_generated_secret_rotates_and_keeps_the_old_one(app_env: Path) -> None:
    before = link_key_ring(get_settings()).current
    after = rotate_generated_secret(get_settings())
    assert after.current != before and [r.secret for r in after.retired] == [before]
    assert link_key_ring(get_settings()) == after
    assert stat.S_IMODE((app_env / RING_FILE).stat().st_mode) == 0o600
