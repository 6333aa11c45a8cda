"""Each health factor moves the score the right way with words to say so; each action rule of
the shipped config fires on its own situation and only then."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from config.accounts_policy import AccountsPolicy, HealthPolicy
from config.policy_loader import PolicyError, load_policy
from tasks.accounts.actions import next_actions
from tasks.accounts.health import score_accounts

CONFIG = Path(__file__).resolve().parents[3] / "config" / "accounts.yaml"
POLICY = load_policy(CONFIG, AccountsPolicy)
HEALTH = POLICY.health


def neutral(**overrides: object) -> dict[str, object]:
    """An account we know little about: contacted 10 days ago, fresh data, nothing else."""
    row: dict[str, object] = {
        "company_id": 1,
        "best_band": None,
        "data_age_days": 10.0,
        "days_since_contact": 10.0,
        "previous_score": np.nan,
    }
    row.update(overrides)
    return row


def health(policy: HealthPolicy = HEALTH, **overrides: object) -> tuple[float, str, str]:
    result = score_accounts(pd.DataFrame([neutral(**overrides)]), policy)
    return float(result.score[0]), str(result.band[0]), result.reasons[0]


BASE, _, _ = health()


@pytest.mark.parametrize(
    ("overrides", "direction", "words"),
    [
        ({"replies": 3, "rsvps_accepted": 1}, +1, "raises: 3 replies, 1 accepted invitations"),
        ({"outreach_sent": 10}, +1, "raises: 10 messages delivered"),
        ({"outreach_sent": 1, "outreach_failed": 9}, -1, "lowers: 1 messages delivered, 9 failed"),
        ({"open_critical": 1, "breaches": 1}, -1, "lowers: 1 open complaints (1 critical), 1 SLA"),
        ({"late_obligations": 3, "obligations_total": 5}, -1, "lowers: 3 late and 0 missed of 5"),
        ({"obligations_total": 5}, +1, "raises: 0 late and 0 missed of 5 contract obligations"),
        ({"best_band": "A"}, +1, "raises: best contact's reliability band A"),
        ({"best_band": "D"}, -1, "lowers: best contact's reliability band D"),
        ({"data_age_days": 800.0}, -1, "lowers: contact data seen 800 days ago"),
        ({"days_since_contact": 200.0}, -1, "lowers: last contact 200 days ago"),
        ({"days_since_contact": np.nan}, -1, "lowers: never in contact"),
        ({"previous_score": 20.0}, +1, "raises: health rose"),
        ({"previous_score": 95.0}, -1, "lowers: health fell"),
    ],
)
def test_each_factor_moves_the_score_and_says_why(
    overrides: dict[str, object], direction: int, words: str
) -> None:
    score, _, reasons = health(HEALTH.model_copy(update={"reasons": 8}), **overrides)
    assert np.sign(score - BASE) == direction
    assert words in reasons


def test_a_troubled_account_is_at_risk_and_a_thriving_one_healthy() -> None:
    troubled = health(
        open_critical=1, open_high=1, breaches=2, complaints_window=3, late_obligations=2,
        missed_obligations=1, obligations_total=4, days_since_contact=150.0, best_band="C",
    )  # fmt: skip
    thriving = health(
        replies=4, talks_held=1, outreach_sent=6, obligations_total=3, best_band="A",
        days_since_contact=3.0, previous_score=60.0,
    )  # fmt: skip
    assert troubled[1] == "at_risk" and thriving[1] == "healthy"
    assert troubled[2].count(";") == HEALTH.reasons - 1  # three reasons, most decisive first
    assert "lowers: 2 open complaints (1 critical), 2 SLA breaches" in troubled[2]
    assert "lowers: 2 late and 1 missed of 4 contract obligations" in troubled[2]


def test_weights_from_config_are_validated_with_the_key_named(tmp_path: Path) -> None:
    bad = tmp_path / "accounts.yaml"
    bad.write_text("health:\n  weights: {engagement: -1}\n")
    with pytest.raises(
        PolicyError, match=r"accounts.yaml: key 'health': Value error, weights must"
    ):
        load_policy(bad, AccountsPolicy)
    bad.write_text("health:\n  weights: {engagment: 1}\n")
    with pytest.raises(PolicyError, match=r"health.weights.engagment"):
        load_policy(bad, AccountsPolicy)
    bad.write_text(
        "health: {weights: {engagement: 1}}\n"
        "actions: [{id: x, when: [{signal: mood, op: '==', value: 1}], action: a}]\n"
    )
    with pytest.raises(PolicyError, match=r"actions.0.when.0.signal"):
        load_policy(bad, AccountsPolicy)


def signals(**overrides: object) -> pd.DataFrame:
    row: dict[str, object] = {
        "health": 70.0,
        "health_change_90d": 0.0,
        "band": "healthy",
        "tier_band": "B",
        "critical_complaints_open": 0,
        "complaints_open": 0,
        "late_obligations": 0,
        "renewal_in_days": np.nan,
        "days_since_contact": 10.0,
        "interested_reply": False,
        "hot_lead": False,
    }
    row.update(overrides)
    return pd.DataFrame([row])


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"critical_complaints_open": 1}, "call-critical-complaint"),
        ({"late_obligations": 2}, "recover-late-obligation"),
        ({"renewal_in_days": 45.0, "health_change_90d": -6.0}, "review-before-renewal"),
        ({"interested_reply": True}, "propose-talk"),
        ({"hot_lead": True, "days_since_contact": 8.0}, "propose-talk-hot-lead"),
        ({"tier_band": "A", "days_since_contact": 120.0}, "check-in-a-account"),
        ({}, None),
        ({"renewal_in_days": 45.0, "health_change_90d": 3.0}, None),  # renewal, health rising
        ({"renewal_in_days": 90.0, "health_change_90d": -6.0}, None),  # renewal too far off
        ({"tier_band": "A", "days_since_contact": np.nan}, None),  # unknown is never >= 90
        ({"critical_complaints_open": 1, "interested_reply": True}, "call-critical-complaint"),
    ],
)
def test_each_action_rule_fires_on_its_situation_and_the_first_match_wins(
    overrides: dict[str, object], rule: str | None
) -> None:
    got = next_actions(signals(**overrides), POLICY.actions)
    assert (got.loc[0, "rule"] if pd.notna(got.loc[0, "rule"]) else None) == rule


def test_the_action_reason_names_each_condition_with_the_accounts_value() -> None:
    got = next_actions(signals(renewal_in_days=45.0, health_change_90d=-6.5), POLICY.actions)
    assert got.loc[0, "reason"] == (
        "renewal in days 45 (<= 60.0) and health change 90d -6.5 (< 0.0)"
    )
    assert got.loc[0, "due_in_business_days"] == 5


def test_health_policy_needs_some_weight() -> None:
    with pytest.raises(ValueError, match="weights must not all be zero"):
        HealthPolicy(weights={"engagement": 0.0})
