"""Fold a contact's sightings into its current values and a history of what changed (pure).

Names, email and tax id keep the first value seen (a later badge with the name typed the
other way round must not rename a person); everything that moves with a career (job
title, company, phone, location, rating, notes) takes the latest value, and each change
becomes a history entry pointing at the row that brought it.
"""

from __future__ import annotations

import pandas as pd

FIRST_WINS = [
    "first_name",
    "last_name",
    "full_name",
    "name_key",
    "email",
    "email_domain",
    "is_free_mail",
    "tax_id",
]
LATEST_WINS = ["job_title", "company", "phone", "country", "state", "city", "lead_rating"]
TRACKED = LATEST_WINS
# Compared by resolved company: "ACME Ltda." after "Acme" is a spelling, not a new employer.
COMPARE_KEY = {"company": "company_id"}


def current_values(rows: pd.DataFrame) -> pd.DataFrame:
    """Per ``target`` (rows ordered oldest first): the contact's values after these rows."""
    grouped = rows.groupby("target", sort=False)
    first = grouped[FIRST_WINS].first()
    latest = grouped[LATEST_WINS].last()
    # Notes are what each sighting said; keep all of them, in order, once each.
    said = rows[["target", "notes"]].dropna().drop_duplicates()
    several = said["target"].duplicated(keep=False)
    notes = pd.concat(
        [
            said[~several].set_index("target")["notes"],
            said[several].groupby("target", sort=False)["notes"].agg(" | ".join),
        ]
    )
    scans = pd.to_datetime(rows["scan_time"]).groupby(rows["target"], sort=False)
    seen = pd.DataFrame({"first_seen_at": scans.min(), "last_seen_at": scans.max()})
    return pd.concat([first, latest, notes.rename("notes").reindex(first.index), seen], axis=1)


def history(rows: pd.DataFrame, stored: pd.DataFrame | None = None) -> pd.DataFrame:
    """Changes of tracked fields: (target, field, old_value, new_value, row_key).

    ``stored`` holds the values already in the database for existing targets, so the first
    sighting in this run is compared with them; for new contacts the first value is not a
    change.
    """
    # A change needs an earlier value: a contact seen once, with nothing stored, has none.
    # Most contacts are; leaving them out makes the grouping below a fraction of the rows.
    earlier = rows["target"].duplicated(keep=False)
    if stored is not None:
        earlier |= rows["target"].isin(stored.index)
    rows = rows[earlier]
    out = []
    for field in TRACKED:
        key = COMPARE_KEY.get(field, field)
        cols = list(dict.fromkeys(["target", "row_key", field, key]))
        seq = rows.loc[rows[field].notna(), cols]
        if stored is not None and field in stored:
            base = stored[list(dict.fromkeys([field, key]))].dropna().rename_axis("target")
            base = base.reset_index().assign(row_key=None, _order=-1)
            seq = pd.concat([base, seq.assign(_order=range(len(seq)))], ignore_index=True)
            seq = seq.sort_values(["_order"], kind="stable").drop(columns="_order")
        grouped = seq.groupby("target", sort=False)
        prev, prev_key = grouped[field].shift(), grouped[key].shift()
        changed = prev_key.notna() & (prev_key != seq[key])
        if changed.any():
            out.append(
                pd.DataFrame(
                    {
                        "target": seq.loc[changed, "target"],
                        "field": field,
                        "old_value": prev[changed].astype(str),
                        "new_value": seq.loc[changed, field].astype(str),
                        "row_key": seq.loc[changed, "row_key"],
                    }
                )
            )
    if not out:
        return pd.DataFrame(columns=["target", "field", "old_value", "new_value", "row_key"])
    return pd.concat(out, ignore_index=True)
