"""Does the score predict what happened? Backtests, and a scorecard learned from outcomes.

Outcomes are ``won``/``lost`` (sales) or ``paid``/``defaulted`` (clients); ``won`` and
``paid`` are good. The learned model is a logistic regression over the same factor levels
the hand scorecard uses, turned back into a :class:`ScoringPolicy`: its coefficients
become points (``points_to_double_odds`` points double the odds of a good outcome), so
tasks.scoring.scorecard explains a learned score with exactly the same reason codes and texts.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from config.scoring_policy import BANDS, FACTOR_LEVELS, FACTORS, LevelConfig, ScoringPolicy

GOOD_OUTCOMES = frozenset({"won", "paid"})
BAD_OUTCOMES = frozenset({"lost", "defaulted"})


@dataclass(frozen=True)
class Backtest:
    """Per-band outcome rates and how well the score ranks good above bad (AUC)."""

    per_band: pd.DataFrame  # band, count, won, lost, win_rate, paid, defaulted, default_rate
    auc: float | None  # None when only one class of outcome is present
    n: int
    scorecard_version: str


def good_outcome(outcomes: pd.Series) -> pd.Series:
    """1.0 for won/paid, 0.0 for lost/defaulted, NaN for anything else (no outcome yet)."""
    folded = outcomes.astype(object).str.strip().str.lower()
    return pd.Series(
        np.select([folded.isin(GOOD_OUTCOMES), folded.isin(BAD_OUTCOMES)], [1.0, 0.0], np.nan),
        index=outcomes.index,
    )


def backtest(scored: pd.DataFrame, outcomes: pd.Series) -> Backtest:
    """Win rate and default rate per band, and AUC of the score, over rows with an outcome.

    ``scored`` is score_frame's output aligned with ``outcomes`` (same index).
    """
    outcome = outcomes.astype(object).str.strip().str.lower()
    known = outcome.isin(GOOD_OUTCOMES | BAD_OUTCOMES)
    frame = pd.DataFrame({"band": scored["band"].astype(str), "outcome": outcome})[known]
    counts = pd.crosstab(frame["band"], frame["outcome"]).reindex(
        index=list(BANDS), columns=["won", "lost", "paid", "defaulted"], fill_value=0
    )
    per_band = counts.assign(count=counts.sum(axis=1))
    sales = per_band["won"] + per_band["lost"]
    credit = per_band["paid"] + per_band["defaulted"]
    per_band["win_rate"] = (per_band["won"] / sales.where(sales > 0)).round(4)
    per_band["default_rate"] = (per_band["defaulted"] / credit.where(credit > 0)).round(4)
    per_band = per_band.reset_index(names="band")[
        ["band", "count", "won", "lost", "win_rate", "paid", "defaulted", "default_rate"]
    ]
    good = good_outcome(outcomes)[known]
    auc = None
    if good.nunique() == 2:
        auc = round(float(roc_auc_score(good, scored.loc[good.index, "score"])), 4)
    versions = scored["scorecard_version"].astype(str).unique()
    return Backtest(per_band, auc, int(known.sum()), ";".join(sorted(versions)))


def design_matrix(levels: pd.DataFrame) -> pd.DataFrame:
    """One 0/1 column per (factor, level); "absent" is the reference and gets no column."""
    columns = {}
    for factor in FACTORS:
        codes = levels[factor].to_numpy()
        for i, name in enumerate(FACTOR_LEVELS[factor], start=1):
            columns[f"{factor}={name}"] = (codes == i).astype(np.float64)
    return pd.DataFrame(columns, index=levels.index)


@dataclass(frozen=True)
class LearnedScorecard:
    """A logistic regression on factor levels, as points a scorecard can use."""

    coefficients: pd.DataFrame  # factor, level, coefficient (log-odds), points
    intercept: float
    n_samples: int
    version: str

    def to_policy(self, template: ScoringPolicy) -> ScoringPolicy:
        """``template`` with the learned points, logistic combination and a new version."""
        scale = template.points_to_double_odds / math.log(2)
        table = self.coefficients
        points = {
            (str(f), str(lv)): float(p)
            for f, lv, p in zip(
                table["factor"], table["level"], table["points"].to_numpy(dtype=float), strict=True
            )
        }
        factors = {}
        for name, factor in template.factors.items():
            levels = {
                lv: LevelConfig(points=points[(name, lv)], reason=cfg.reason)
                for lv, cfg in factor.levels.items()
            }
            factors[name] = factor.model_copy(update={"levels": levels, "weight": 1.0})
        return template.model_copy(
            update={
                "version": self.version,
                "combine": "logistic",
                "base": round(self.intercept * scale, 2),
                "factors": factors,
            }
        )


def fit_logistic(
    levels: pd.DataFrame,
    outcomes: pd.Series,
    template: ScoringPolicy,
    regularisation: float = 1.0,
) -> LearnedScorecard:
    """Fit good-vs-bad outcome on factor levels (rows without an outcome are ignored).

    L2-regularised so that a level seen a handful of times does not get extreme points;
    lbfgs on a fixed design is deterministic, so the same sample gives the same version.
    """
    good = good_outcome(outcomes)
    known = good.notna()
    x = design_matrix(levels[known])
    y = good[known].to_numpy(dtype=int)
    if len(np.unique(y)) < 2:
        raise ValueError("need both good and bad outcomes to fit a model")
    model = LogisticRegression(C=regularisation, max_iter=2000)
    model.fit(x.to_numpy(), y)
    scale = template.points_to_double_odds / math.log(2)
    coef = model.coef_[0]
    rows = []
    for column, value in zip(x.columns, coef, strict=True):
        factor, level = column.split("=", 1)
        rows.append(
            {
                "factor": factor,
                "level": level,
                "coefficient": float(value),
                "points": round(float(value) * scale, 2),
            }
        )
    table = pd.DataFrame(rows)
    digest = hashlib.sha256(
        table["points"].to_numpy().tobytes() + np.float64(model.intercept_[0]).tobytes()
    ).hexdigest()[:10]
    return LearnedScorecard(
        coefficients=table,
        intercept=float(model.intercept_[0]),
        n_samples=int(known.sum()),
        version=f"logit-{digest}",
    )


def backtest_markdown(result: Backtest) -> str:
    """The backtest as a markdown table (for a Prefect markdown artifact)."""
    lines = [
        f"**Backtest** of `{result.scorecard_version}` on {result.n} outcomes; "
        f"AUC {result.auc if result.auc is not None else 'n/a'}",
        "",
        "| band | count | won | lost | win rate | paid | defaulted | default rate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result.per_band.to_dict("records"):
        win = "n/a" if pd.isna(r["win_rate"]) else f"{float(r['win_rate']):.1%}"
        default = "n/a" if pd.isna(r["default_rate"]) else f"{float(r['default_rate']):.1%}"
        lines.append(
            f"| {r['band']} | {r['count']} | {r['won']} | {r['lost']} | {win} | {r['paid']} | "
            f"{r['defaulted']} | {default} |"
        )
    return "\n".join(lines) + "\n"
