"""Shared set-up for the outreach tests: a campaign folder, seeded contacts, settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.campaign_policy import CAMPAIGNS_DIR
from connectors.database import ingest_store
from connectors.database.base import utcnow
from connectors.database.engine import session_scope
from connectors.database.ingest_models import Contact
from connectors.database.outreach_models import OutreachProfile

SAMPLE = CAMPAIGNS_DIR / "welcome-fair.yaml"
ALL_DAY = {
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "start": "00:00",
    "end": "23:59",
    "skip_holidays": False,
    "default_timezone": "UTC",
}


def write_campaign(folder: Path, name: str = "spring", **edits: Any) -> str:
    """A copy of the sample campaign under ``name`` with open audience and windows, and
    throttles high enough not to matter unless a test sets them."""
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    data["name"] = name
    data["audience"] = {"not_yet_contacted": True}
    data["send_window"] = ALL_DAY
    data["throttles"] = {
        "global_per_minute": 100_000,
        "per_domain_per_minute": 100_000,
        "fax_per_minute": 1_000,
        "daily_cap_per_sender": 100_000,
    }
    data["retry_base_seconds"] = 60
    for key, value in edits.items():
        data[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return name


def use_campaigns(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    from config.settings import get_outreach_settings

    monkeypatch.setenv("ACCOUNTFLOW_OUTREACH_CAMPAIGNS_DIR", str(folder))
    monkeypatch.setenv("ACCOUNTFLOW_OUTREACH_THROTTLE_WAIT_SECONDS", "15")
    get_outreach_settings.cache_clear()


def use_smtp(monkeypatch: pytest.MonkeyPatch, host: str, port: int) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("ACCOUNTFLOW_SMTP__HOST", host)
    monkeypatch.setenv("ACCOUNTFLOW_SMTP__PORT", str(port))
    monkeypatch.setenv("ACCOUNTFLOW_SMTP__TIMEOUT_SECONDS", "1.5")
    get_settings.cache_clear()


def seed_contacts(
    count: int,
    *,
    start: int = 1,
    fax: bool = False,
    country: str = "BR",
    extra: Sequence[dict[str, Any]] = (),
) -> list[int]:
    """Contacts ``c<i>@client<i % 7>.example.org`` with a profile; returns their ids."""
    now = utcnow()
    contacts = [
        {
            "id": i,
            "first_name": f"Nome{i}",
            "last_name": "Silva",
            "full_name": f"Nome{i} Silva",
            "email": f"c{i}@client{i % 7}.example.org",
            "email_domain": f"client{i % 7}.example.org",
            "is_free_mail": False,
            "country": country,
            "band": "A",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(start, start + count)
    ]
    for row in extra:
        contacts.append({"created_at": now, "updated_at": now, "is_free_mail": False, **row})
    profiles = [
        {
            "contact_id": c["id"],
            "timezone": "America/Sao_Paulo",
            "fax": f"+5511{30000000 + c['id']}" if fax else None,
            "updated_at": now,
        }
        for c in contacts
    ]
    with session_scope() as s:
        ingest_store.insert_rows(s, Contact, contacts)
        ingest_store.insert_rows(s, OutreachProfile, profiles)
    return [int(c["id"]) for c in contacts]
