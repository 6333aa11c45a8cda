"""Account health: a 0-100 score per company, its band, and the reasons in words.

Each factor maps what we know about the account to a factor score in [0, 1] (0.5 when we
know nothing: missing data neither helps nor hurts); the health is the weighted mean times
100, with the weights from ``config/accounts.yaml``. The reasons are the factors that moved
the score most away from neutral (weight x distance from 0.5), each said in words with the
numbers behind it, prefixed "raises" or "lowers". Everything is column-wise over all
companies at once: 100,000 accounts are a few array operations per factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from config.accounts_policy import HEALTH_FACTORS, HealthPolicy

BAND_POINTS = {"A": 1.0, "B": 0.75, "C": 0.4, "D": 0.1}
SIGNAL_COLUMNS = {
    # counts in the health window (``window_days``) unless said otherwise
    "replies": 0,
    "rsvps_accepted": 0,
    "talks_held": 0,
    "outreach_sent": 0,  # last 180 days
    "outreach_failed": 0,  # failed permanently, suppressed or bounced, last 180 days
    "open_low": 0,
    "open_medium": 0,
    "open_high": 0,
    "open_critical": 0,
    "breaches": 0,  # complaints in the window whose SLA was breached
    "complaints_window": 0,  # complaints created in the window
    "late_obligations": 0,
    "missed_obligations": 0,
    "obligations_total": 0,
}
OPTIONAL_COLUMNS = (
    "best_band",  # best reliability band among the company's contacts, None if unscored
    "data_age_days",  # days since the newest contact data was seen, NaN if none
    "days_since_contact",  # NaN when never contacted
    "previous_score",  # the health about ``window_days`` ago, NaN if no history
)


def _linear(days: npt.NDArray[np.float64], full: float, zero: float) -> npt.NDArray[np.float64]:
    """1 up to ``full`` days, 0 from ``zero`` days, linear in between."""
    return np.clip((zero - days) / (zero - full), 0.0, 1.0)


def _int_text(values: pd.Series) -> pd.Series:
    return values.astype(np.int64).astype(str)


@dataclass(frozen=True)
class HealthResult:
    factors: pd.DataFrame  # one column per factor, scores in [0, 1]
    score: npt.NDArray[np.float64]
    band: npt.NDArray[np.object_]
    reasons: list[str]
    base_score: npt.NDArray[np.float64]  # without the trend factor: what the trend compares


def _counts(signals: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=signals.index)
    for column, default in SIGNAL_COLUMNS.items():
        raw = signals.get(column, default)
        out[column] = pd.to_numeric(pd.Series(raw, index=signals.index)).fillna(0).astype(float)
    return out


def factor_scores(signals: pd.DataFrame, policy: HealthPolicy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(factor scores in [0, 1], the words for each factor), one row per company."""
    c = _counts(signals)
    f = pd.DataFrame(index=signals.index)
    words = pd.DataFrame(index=signals.index)

    engaged = c["replies"] + c["rsvps_accepted"] + 2 * c["talks_held"]
    f["engagement"] = np.clip(engaged / policy.engagement_target, 0.0, 1.0)
    words["engagement"] = (
        _int_text(c["replies"])
        + " replies, "
        + _int_text(c["rsvps_accepted"])
        + " accepted invitations and "
        + _int_text(c["talks_held"])
        + f" talks in {policy.window_days} days"
    )

    tried = c["outreach_sent"] + c["outreach_failed"]
    f["outreach"] = np.where(tried > 0, c["outreach_sent"] / tried.where(tried > 0, 1), 0.5)
    words["outreach"] = np.where(
        tried > 0,
        _int_text(c["outreach_sent"])
        + " messages delivered, "
        + _int_text(c["outreach_failed"])
        + " failed or suppressed",
        "no outreach yet",
    )

    sev = policy.complaint_severity_penalty
    penalty = (
        sev["low"] * c["open_low"]
        + sev["medium"] * c["open_medium"]
        + sev["high"] * c["open_high"]
        + sev["critical"] * c["open_critical"]
        + policy.breach_penalty * c["breaches"]
        + policy.repeat_penalty * (c["complaints_window"] >= 2)
    )
    f["complaints"] = np.clip(1.0 - penalty, 0.0, 1.0)
    opened = c["open_low"] + c["open_medium"] + c["open_high"] + c["open_critical"]
    words["complaints"] = (
        _int_text(opened)
        + " open complaints ("
        + _int_text(c["open_critical"])
        + " critical), "
        + _int_text(c["breaches"])
        + " SLA breaches, "
        + _int_text(c["complaints_window"])
        + f" complaints in {policy.window_days} days"
    )

    bad = c["late_obligations"] + 2 * c["missed_obligations"]
    # All on track is full marks; one late obligation is already below neutral (0.4), and
    # every further late one (a missed one counts twice) takes another 0.2.
    troubled = np.clip(0.4 - 0.2 * (bad - 1), 0.0, 0.4)
    f["obligations"] = np.where(c["obligations_total"] > 0, np.where(bad > 0, troubled, 1.0), 0.5)
    words["obligations"] = np.where(
        c["obligations_total"] > 0,
        _int_text(c["late_obligations"])
        + " late and "
        + _int_text(c["missed_obligations"])
        + " missed of "
        + _int_text(c["obligations_total"])
        + " contract obligations",
        "no contract obligations",
    )

    band = (
        signals["best_band"].astype(object)
        if "best_band" in signals
        else pd.Series(None, index=signals.index, dtype=object)
    )
    f["reliability"] = band.map(BAND_POINTS).fillna(0.5).astype(float)
    words["reliability"] = np.where(
        band.isin(list(BAND_POINTS)),
        "best contact's reliability band " + band.astype(str),
        "no reliability score",
    )

    age = pd.to_numeric(signals.get("data_age_days", pd.Series(np.nan, index=signals.index)))
    f["freshness"] = np.where(
        age.notna(), _linear(age.to_numpy(float), policy.fresh_days, policy.stale_days), 0.5
    )
    words["freshness"] = np.where(
        age.notna(),
        "contact data seen " + age.fillna(0).round().astype(int).astype(str) + " days ago",
        "no contact data",
    )

    since = pd.to_numeric(signals.get("days_since_contact", pd.Series(np.nan, index=signals.index)))
    f["contact_recency"] = np.where(
        since.notna(),
        _linear(since.to_numpy(float), policy.contact_full_days, policy.contact_zero_days),
        0.0,
    )
    words["contact_recency"] = np.where(
        since.notna(),
        "last contact " + since.fillna(0).round().astype(int).astype(str) + " days ago",
        "never in contact",
    )
    return f, words


def score_accounts(signals: pd.DataFrame, policy: HealthPolicy) -> HealthResult:
    """Health, band and reasons per row of ``signals`` (see SIGNAL_COLUMNS, OPTIONAL_COLUMNS)."""
    f, words = factor_scores(signals, policy)
    weights: dict[str, float] = {k: float(policy.weights.get(k, 0.0)) for k in HEALTH_FACTORS}
    base_factors = [k for k in HEALTH_FACTORS if k != "trend"]
    base_w = sum(weights[k] for k in base_factors)
    base_matrix = f[base_factors].to_numpy(float)
    base: npt.NDArray[np.float64] = (
        100.0 * (base_matrix @ np.array([weights[k] for k in base_factors])) / base_w
        if base_w > 0
        else np.full(len(f), 50.0)
    )
    previous = pd.to_numeric(signals.get("previous_score", pd.Series(np.nan, index=signals.index)))
    delta = base - previous.to_numpy(float)
    has_trend = ~np.isnan(delta)
    f["trend"] = np.where(
        has_trend, np.clip(0.5 + np.nan_to_num(delta) / (2 * policy.trend_full_points), 0, 1), 0.5
    )
    rounded = np.round(np.nan_to_num(delta)).astype(int)
    words["trend"] = np.where(
        has_trend,
        np.where(rounded >= 0, "health rose ", "health fell ")
        + pd.Series(np.abs(rounded), index=f.index).astype(str)
        + f" points in {policy.window_days} days",
        "no health history yet",
    )
    total_w = sum(weights.values())
    matrix = f[list(HEALTH_FACTORS)].to_numpy(float)
    w = np.array([weights[k] for k in HEALTH_FACTORS])
    score = np.round(100.0 * (matrix @ w) / total_w, 1)
    band = np.where(
        score >= policy.bands.healthy,
        "healthy",
        np.where(score >= policy.bands.watch, "watch", "at_risk"),
    ).astype(object)
    return HealthResult(
        factors=f[list(HEALTH_FACTORS)],
        score=score,
        band=band,
        reasons=_reasons(matrix, w, words[list(HEALTH_FACTORS)], policy.reasons),
        base_score=np.round(base, 1),
    )


def _reasons(
    matrix: npt.NDArray[np.float64], w: npt.NDArray[np.float64], words: pd.DataFrame, k: int
) -> list[str]:
    """The ``k`` factors furthest from neutral (by weight), worded, most decisive first."""
    pull = w * (matrix - 0.5)
    order = np.argsort(-np.abs(pull), axis=1, kind="stable")[:, :k]
    text = words.to_numpy(dtype=object)
    out = []
    for row, picks in enumerate(order):
        parts = [
            ("raises: " if pull[row, j] > 0 else "lowers: ") + str(text[row, j])
            for j in picks
            if pull[row, j] != 0
        ]
        out.append("; ".join(parts) or "nothing known about this account yet")
    return out


def _days(later: pd.Series | pd.Timestamp, earlier: pd.Series) -> pd.Series:
    return (later - pd.to_datetime(earlier)).dt.total_seconds() / 86400.0


def signals_from(
    raw: pd.DataFrame, previous: pd.DataFrame, as_of_naive: pd.Timestamp
) -> pd.DataFrame:
    """The store's per-company rows as the signals health and the action rules read.

    ``previous``: company_id and score about a window ago (the trend's reference).
    """
    s = raw.copy()
    for column in SIGNAL_COLUMNS:
        s[column] = pd.to_numeric(s[column]).fillna(0) if column in s else 0.0
    inbound = pd.to_datetime(s["last_inbound"])
    outbound = pd.to_datetime(s["last_outbound"])
    last = pd.concat([inbound, outbound], axis=1).max(axis=1)
    s["days_since_contact"] = _days(as_of_naive, last)
    s["data_age_days"] = _days(as_of_naive, s["data_seen"])
    renewal = pd.to_datetime(s["next_renewal"])
    s["renewal_in_days"] = _days(renewal, pd.Series(as_of_naive.normalize(), index=s.index))
    s["tier_band"] = s["best_band"]
    s["critical_complaints_open"] = s["open_critical"]
    s["complaints_open"] = s["open_low"] + s["open_medium"] + s["open_high"] + s["open_critical"]
    s["interested_reply"] = pd.to_numeric(s["interested"]).fillna(0) > 0
    s["hot_lead"] = pd.to_numeric(s["hot"]).fillna(0) > 0
    prev = previous.set_index("company_id")["score"] if len(previous) else pd.Series(dtype=float)
    s["previous_score"] = s["company_id"].map(prev).astype(float)
    return s


def factors_json(factors: pd.DataFrame) -> npt.NDArray[np.object_]:
    """Each row's factor scores as JSON text, built column-wise (a dict per row and
    ``json.dumps`` cost more than the scoring itself)."""
    text = pd.Series("{", index=factors.index)
    for i, column in enumerate(factors.columns):
        values = factors[column].astype(float).round(3).astype(str)
        text = text + ("" if i == 0 else ", ") + f'"{column}": ' + values
    return (text + "}").to_numpy(dtype=object)
