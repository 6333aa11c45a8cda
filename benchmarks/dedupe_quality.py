"""Pairwise precision and recall of entity resolution on generated, labelled leads.

Run: ``python -m benchmarks.dedupe_quality [ROWS]``.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from itertools import combinations
from pathlib import Path

import pandas as pd

from benchmarks.leadgen import generate, write_mixed
from config.policies import get_ingest_policies
from config.settings import get_settings
from connectors.exhibition_files import read_table
from tasks.ingest.mapping import looks_like_header, map_columns
from tasks.ingest.matching import match_rows
from tasks.ingest.normalize import normalize_table


def _pairs(groups: pd.Series) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for _, members in groups.groupby(groups):
        out.update(combinations(sorted(members.index), 2))
    return out


def resolve_files(paths: list[Path]) -> pd.DataFrame:
    """Stage and resolve files as the flow does, without a database (nothing known yet)."""
    settings, policies = get_settings(), get_ingest_policies()
    frames = []
    for path in paths:
        table = read_table(path, settings, lambda c: looks_like_header(c, policies.sources))
        mapping = map_columns(table.header, policies.sources)
        frames.append(
            normalize_table(
                table,
                mapping,
                policies.sources,
                default_region="BR",
                timezone="America/Sao_Paulo",
                max_field_chars=1000,
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    good = rows[rows["reason"].isna()]
    matches = match_rows(good, pd.DataFrame(), policies.matching)
    return rows.join(matches)


def evaluate(n_rows: int = 5_000, seed: int = 11) -> dict[str, float]:
    generated = generate(n_rows, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_mixed([g[0] for g in generated], Path(tmp))
        resolved = resolve_files(paths)
    truth = pd.Series([g[1] for g in generated], dtype="object")
    variants = pd.Series([g[2] for g in generated])
    # Files keep rows in order, so resolved row i is generated row i.
    assert len(resolved) == len(generated)
    good = resolved["reason"].isna()
    cluster = resolved["leader"].where(good)
    true_pairs = _pairs(truth[good & truth.notna()])
    pred_pairs = _pairs(cluster[good].astype(int))
    tp = len(true_pairs & pred_pairs)
    precision = tp / len(pred_pairs) if pred_pairs else 1.0
    recall = tp / len(true_pairs) if true_pairs else 1.0
    missed = Counter(variants[b] for a, b in true_pairs - pred_pairs)
    wrong = Counter(f"{variants[a]}~{variants[b]}" for a, b in pred_pairs - true_pairs)
    quarantine_ok = (resolved["reason"].notna() == truth.isna()).mean()
    email_only = _pairs(resolved["email"].where(good).dropna())
    email_recall = len(true_pairs & email_only) / len(true_pairs) if true_pairs else 1.0
    return {
        "rows": float(n_rows),
        "true_pairs": float(len(true_pairs)),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "exact_email_only_recall": round(email_recall, 4),
        "quarantine_agreement": round(float(quarantine_ok), 4),
        "missed_by_variant": dict(missed),  # type: ignore[dict-item]
        "wrong_by_variant": dict(wrong),  # type: ignore[dict-item]
    }


if __name__ == "__main__":
    print(evaluate(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000))
