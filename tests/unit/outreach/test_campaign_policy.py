"""Campaign YAML: the sample loads; broken files are refused with file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.campaign_policy import CAMPAIGNS_DIR, Channel, load_campaign, load_campaigns
from config.policy_loader import PolicyError

SAMPLE = CAMPAIGNS_DIR / "welcome-fair.yaml"


def _write(
    tmp_path: Path, edit: dict[str, object] | None = None, name: str = "welcome-fair"
) -> Path:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    data.update(edit or {})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_the_sample_campaign_loads_with_all_three_channels() -> None:
    campaigns = load_campaigns()
    campaign = campaigns["welcome-fair"]
    assert [step.channel for step in campaign.steps] == [
        Channel.EMAIL,
        Channel.INVITATION,
        Channel.FAX,
    ]
    assert campaign.languages.pick("es-AR") == "es"


def _refusal(path: Path) -> str:
    with pytest.raises(PolicyError) as caught:
        load_campaign(path)
    return str(caught.value)


def test_a_misspelt_key_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    data["steps"][0]["stop_onn"] = ["replied"]
    path = _write(tmp_path, {"steps": data["steps"]})
    message = _refusal(path)
    assert str(path) in message and "steps.0.stop_onn" in message


def test_an_unknown_channel_and_stop_condition_are_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    data["steps"][0]["channel"] = "pigeon"
    data["steps"][0]["stop_on"] = ["moon_phase"]
    message = _refusal(_write(tmp_path, {"steps": data["steps"]}))
    assert "steps.0.channel" in message and "steps.0.stop_on.0" in message


def test_an_invitation_without_an_event_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    del data["steps"][1]["event"]
    assert "an invitation step needs an 'event'" in _refusal(
        _write(tmp_path, {"steps": data["steps"]})
    )


def test_a_window_ending_before_it_starts_is_refused(tmp_path: Path) -> None:
    window = {"days": ["mon"], "start": "18:00", "end": "09:00"}
    message = _refusal(_write(tmp_path, {"send_window": window}))
    assert "send_window" in message and "end must be after start" in message


def test_a_missing_template_is_refused_naming_the_step(tmp_path: Path) -> None:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    data["steps"][2]["template"] = "no-such-template"
    message = _refusal(_write(tmp_path, {"steps": data["steps"]}))
    assert "steps.2.template" in message and "no-such-template/pt.fax.txt.j2" in message


def test_a_line_break_in_the_sender_name_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    data["sender"]["from_name"] = "Acme\r\nBcc: x@y.org"
    assert "sender.from_name" in _refusal(_write(tmp_path, {"sender": data["sender"]}))


def test_the_name_must_match_the_file(tmp_path: Path) -> None:
    message = _refusal(_write(tmp_path, name="other-name"))
    assert "key 'name'" in message and "other-name" in message
