"""The weekly complaint analysis as data in, markdown out (no IO, no Prefect).

Accounts "at risk" use a plain, explainable score rather than a model: each breached SLA
counts 3, each open critical complaint 2, each other open complaint 1; an account is at
risk from a score of 3 (one breach, or three open complaints). Contacts appear by id only,
since the artifact is visible to everyone with access to the Prefect UI.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

RISK_THRESHOLD = 3


def _table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_\n"
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _breakdown(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    keyed = frame.assign(**{by: frame[by].fillna("(none)")})
    out = keyed.groupby(by).agg(
        complaints=("complaint_id", "size"),
        open=("is_open", "sum"),
        breached=("breached", "sum"),
    )
    return out.sort_values(["complaints", "breached"], ascending=False).reset_index()


def analysis_frame(complaints: pd.DataFrame, clocks: pd.DataFrame) -> pd.DataFrame:
    """Complaints with the clock columns the report needs (``ClockBatch.to_frame`` rows)."""
    frame = complaints.reset_index(drop=True).copy()
    c = clocks.reset_index(drop=True)
    frame["is_open"] = frame["status"] != "resolved"
    frame["breached"] = (c["first_response_state"] == "breached") | (
        c["resolution_state"] == "breached"
    )
    frame["resolution_used_min"] = c["resolution_used_min"]
    frame["resolution_target_min"] = c["resolution_target_min"]
    return frame


def accounts_at_risk(frame: pd.DataFrame) -> pd.DataFrame:
    with_company = frame[frame["company_id"].notna()]
    if with_company.empty:
        return pd.DataFrame(columns=["account", "score", "open", "open_critical", "breached"])
    critical = with_company["is_open"] & (with_company["severity"] == "critical")
    grouped = with_company.assign(open_critical=critical).groupby("company_id")
    out = grouped.agg(
        account=("company", "first"),
        open=("is_open", "sum"),
        open_critical=("open_critical", "sum"),
        breached=("breached", "sum"),
    )
    out["score"] = (
        3 * out["breached"] + 2 * out["open_critical"] + (out["open"] - out["open_critical"])
    )
    out = out[out["score"] >= RISK_THRESHOLD].sort_values("score", ascending=False)
    return out.reset_index(drop=True)[["account", "score", "open", "open_critical", "breached"]]


def render_report(
    frame: pd.DataFrame, as_of: datetime, since: datetime
) -> tuple[str, dict[str, int]]:
    """Markdown for the artifact, and the headline numbers for the flow's summary."""
    resolved = frame[~frame["is_open"]]
    if resolved.empty:
        sla_table = pd.DataFrame()
    else:
        sla_table = (
            resolved.assign(
                within=resolved["resolution_used_min"] < resolved["resolution_target_min"]
            )
            .groupby("severity")
            .agg(
                resolved=("complaint_id", "size"),
                median_business_min=("resolution_used_min", "median"),
                target_min=("resolution_target_min", "median"),
                within_sla=("within", "sum"),
            )
            .round(1)
            .reset_index()
        )
    repeats = (
        frame.dropna(subset=["contact_id"])
        .groupby("contact_id")
        .agg(complaints=("complaint_id", "size"), account=("company", "first"))
        .query("complaints >= 2")
        .sort_values("complaints", ascending=False)
        .reset_index()
    )
    if not repeats.empty:
        repeats["contact_id"] = repeats["contact_id"].astype(int)
    risk = accounts_at_risk(frame)
    stats = {
        "complaints": len(frame),
        "open": int(frame["is_open"].sum()),
        "breached": int(frame["breached"].sum()),
        "resolved": len(resolved),
        "repeat_complainers": len(repeats),
        "accounts_at_risk": len(risk),
    }
    parts = [
        f"# Complaints {since:%Y-%m-%d} to {as_of:%Y-%m-%d %H:%M} UTC\n",
        " · ".join(f"**{k.replace('_', ' ')}**: {v}" for k, v in stats.items()) + "\n",
        "## Accounts at risk\n",
        "Score = 3 per SLA breach + 2 per open critical complaint + 1 per other open one; "
        f"listed from {RISK_THRESHOLD}.\n",
        _table(risk.head(20)),
        "## Time to resolve against SLA (business minutes)\n",
        _table(sla_table),
    ]
    for by, title in (
        ("category", "By category"),
        ("severity", "By severity"),
        ("company", "By account"),
        ("root_cause", "By root cause"),
    ):
        parts += [f"## {title}\n", _table(_breakdown(frame, by).head(20))]
    parts += ["## Repeat complainers (contact id)\n", _table(repeats.head(20))]
    return "\n".join(parts), stats
