"""Backtest numbers on the shipped labelled sample, and the learned scorecard."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from config.scoring_policy import FACTOR_LEVELS, FACTORS, ScoringPolicy, load_scoring_policy
from tasks.scoring.calibration import backtest, backtest_markdown, fit_logistic, good_outcome
from tasks.scoring.scorecard import factor_levels, score_frame

AS_OF = datetime(2026, 11, 28, tzinfo=UTC)
SAMPLE = Path(__file__).parents[2] / "fixtures" / "scoring" / "outcomes.csv"


@pytest.fixture(scope="module")
def policy() -> ScoringPolicy:
    return load_scoring_policy()


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    text = {"company_tax_id": str, "person_tax_id": str, "registry_size": str, "phone": str}
    return pd.read_csv(SAMPLE, dtype=text)


def test_backtest_of_the_bundled_scorecard_on_the_shipped_sample(
    sample: pd.DataFrame, policy: ScoringPolicy
) -> None:
    # Pinned: these move only if scoring.yaml or the scoring logic changes. If that was
    # intended, rerun the backtest and update the numbers (and the scorecard version).
    result = backtest(score_frame(sample, policy, AS_OF), sample["outcome"])
    assert result.n == 400
    assert result.auc == pytest.approx(0.7721, abs=1e-4)
    table = result.per_band.set_index("band")
    assert table["count"].tolist() == [151, 116, 96, 37]
    assert table["win_rate"].tolist() == pytest.approx([0.8551, 0.7143, 0.4844, 0.25], abs=1e-4)
    assert table["default_rate"].tolist() == pytest.approx(
        [0.0854, 0.2667, 0.4375, 0.7619], abs=1e-4
    )
    assert result.scorecard_version == policy.version


def test_better_bands_win_more_and_default_less(
    sample: pd.DataFrame, policy: ScoringPolicy
) -> None:
    table = backtest(score_frame(sample, policy, AS_OF), sample["outcome"]).per_band
    assert table["win_rate"].is_monotonic_decreasing
    assert table["default_rate"].is_monotonic_increasing


def test_rows_without_an_outcome_are_left_out(sample: pd.DataFrame, policy: ScoringPolicy) -> None:
    outcomes = sample["outcome"].copy()
    outcomes.iloc[:100] = None
    result = backtest(score_frame(sample, policy, AS_OF), outcomes)
    assert result.n == 300
    assert good_outcome(pd.Series(["Won", "paid", "lost", "DEFAULTED", "open"])).tolist()[:4] == [
        1.0,
        1.0,
        0.0,
        0.0,
    ]


def test_learned_scorecard_ranks_at_least_as_well_and_explains_with_the_same_codes(
    sample: pd.DataFrame, policy: ScoringPolicy
) -> None:
    levels = factor_levels(sample, policy, AS_OF)
    learned = fit_logistic(levels, sample["outcome"], policy)
    assert learned.n_samples == 400
    learned_policy = learned.to_policy(policy)
    assert learned_policy.combine == "logistic"
    assert learned_policy.version == learned.version != policy.version

    scored = score_frame(sample, learned_policy, AS_OF)
    hand = backtest(score_frame(sample, policy, AS_OF), sample["outcome"])
    fitted = backtest(scored, sample["outcome"])
    assert fitted.auc is not None and hand.auc is not None
    assert fitted.auc >= hand.auc  # in-sample, so only a sanity bound
    assert scored["scorecard_version"].astype(str).eq(learned.version).all()
    known = {
        f"{sign}{factor}_{level}".upper()
        for factor in FACTORS
        for level in FACTOR_LEVELS[factor]
        for sign in "+-"
    }
    for codes in scored["reason_codes"].astype(str).unique():
        assert set(codes.split(";")) <= known


def test_registry_inactive_is_learned_as_a_strong_negative(
    sample: pd.DataFrame, policy: ScoringPolicy
) -> None:
    learned = fit_logistic(factor_levels(sample, policy, AS_OF), sample["outcome"], policy)
    points = learned.coefficients.set_index(["factor", "level"])["points"]
    # The sample's hidden truth makes an inactive company the worst single signal.
    assert points[("registry_status", "inactive")] < -10
    assert points[("registry_status", "inactive")] < points[("registry_status", "active")]


def test_fit_is_deterministic(sample: pd.DataFrame, policy: ScoringPolicy) -> None:
    levels = factor_levels(sample, policy, AS_OF)
    assert fit_logistic(levels, sample["outcome"], policy).version == (
        fit_logistic(levels, sample["outcome"], policy).version
    )


def test_one_class_outcomes_cannot_be_fitted(sample: pd.DataFrame, policy: ScoringPolicy) -> None:
    levels = factor_levels(sample, policy, AS_OF)
    with pytest.raises(ValueError, match="both good and bad"):
        fit_logistic(levels, pd.Series(["won"] * len(sample)), policy)


def test_backtest_markdown_has_a_row_per_band(sample: pd.DataFrame, policy: ScoringPolicy) -> None:
    text = backtest_markdown(backtest(score_frame(sample, policy, AS_OF), sample["outcome"]))
    assert "AUC 0.7721" in text
    assert "| A | 151 | 59 | 10 | 85.5% |" in text
