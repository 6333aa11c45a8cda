"""Pairwise precision and recall of entity resolution on generated, labelled leads.

Run: ``python -m benchmarks.dedupe_quality --rows 200000 [--heldout]`` on the realistic
world (``benchmarks/worldgen.py``; ``--heldout`` draws from the configuration the matcher
was never tuned on), or ``--generator leadgen`` for the older, easier generator;
``--misses`` prints the reachable pairs missed, by what their rows share; ``--unreachable``
counts the true pairs no shared evidence links, by what the closure's guard says of them
(both on the tuned world only).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from benchmarks import worldgen
from benchmarks.leadgen import generate, write_mixed
from config.policies import get_ingest_policies
from config.settings import get_settings
from connectors.exhibition_files import RawTable, read_table
from tasks.ingest.mapping import looks_like_header, map_columns
from tasks.ingest.matching import (
    KEY_COLUMNS,
    expected_namesakes,
    free_mail_domains,
    match_rows,
    names_compatible,
    role_mailbox,
)
from tasks.ingest.normalize import normalize_table

STAGE_CHUNK = 100_000


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
    """Precision and recall on ``benchmarks/leadgen.py``'s rows, through its files."""
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


def stage_world(cells: list[list[str]]) -> pd.DataFrame:
    """Normalise generated rows as staging does, from memory, a chunk at a time."""
    policies = get_ingest_policies()
    mapping = map_columns(worldgen.HEADER, policies.sources)
    frames = []
    for start in range(0, len(cells), STAGE_CHUNK):
        part = cells[start : start + STAGE_CHUNK]
        table = RawTable(header=worldgen.HEADER, rows=list(enumerate(part, start=start + 1)))
        frames.append(
            normalize_table(
                table,
                mapping,
                policies.sources,
                default_region="PT",
                timezone="UTC",
                max_field_chars=1000,
            ).drop(columns=["raw"])
        )
    return pd.concat(frames, ignore_index=True)


def pairs(*keys: np.ndarray) -> int:
    """How many pairs of rows agree on every one of ``keys``."""
    sizes = pd.DataFrame({str(i): k for i, k in enumerate(keys)}).value_counts().to_numpy()
    return int((sizes * (sizes - 1) // 2).sum())


def pair_counts(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Pairwise precision and recall of a clustering against the truth, by counting.

    Pairs are never listed: a cluster of ``n`` rows holds n(n-1)/2 of them, so every count
    is a sum of that over the groups of ``truth``, of ``predicted`` and of both together.
    """

    true_pairs, found, both = pairs(truth), pairs(predicted), pairs(truth, predicted)
    return {
        "true_pairs": true_pairs,
        "predicted_pairs": found,
        "precision": round(both / found, 4) if found else 1.0,
        "recall": round(both / true_pairs, 4) if true_pairs else 1.0,
    }


def shows_company(staged: pd.DataFrame) -> np.ndarray:
    """Per row, whether it says where its holder works: it names a company, writes a work
    address (not free mail), or gives a phone that a row naming a company gives too (a
    switchboard)."""
    free = free_mail_domains(staged.reindex(columns=KEY_COLUMNS), get_ingest_policies().matching)
    phone = staged["phone"].astype("object")
    named = staged["company_key"].notna().to_numpy()
    return np.asarray(
        named
        | (staged["email_domain"].notna() & ~free).to_numpy()
        | phone.isin(set(phone[named].dropna())).to_numpy()
    )


def linkable(
    staged: pd.DataFrame, truth: np.ndarray, company: np.ndarray, *, shown: bool = True
) -> np.ndarray:
    """Per row, a label of the rows of its person that evidence can link it to at all:
    those sharing an address (not a shared mailbox), a phone or a tax id with it, or its
    true company, transitively. A person seen at two companies with nothing in common
    between the sightings is two labels: no matcher can join them, so the pairs across
    are the recall that is out of reach (the ceiling).

    With ``shown``, a row is at its company only if it shows it (``shows_company``): a
    badge with a free-mail address and no company, or with nothing but a mobile, says
    nothing of where its holder works. Without ``shown``, every row is at its true
    company (the ceiling as first reported)."""
    role = role_mailbox(staged["email"], get_ingest_policies().matching)
    n = len(staged)
    at = pd.Series(company, dtype="object")
    if shown:
        at = at.where(shows_company(staged))
    src, dst = [], []
    for keys in (
        staged["email"].astype("object").where(~role),
        staged["phone"].astype("object"),
        staged["tax_id"].astype("object"),
        at,
    ):
        joined = (pd.Series(truth).astype(str) + "|" + keys.astype(str)).where(keys.notna())
        codes = pd.factorize(joined)[0]
        has = codes >= 0
        first = pd.Series(np.flatnonzero(has)).groupby(codes[has]).transform("first")
        src.append(np.flatnonzero(has))
        dst.append(first.to_numpy())
    a, b = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def held_domains(staged: pd.DataFrame, company: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Per row, the corporate domain it writes, and the one it holds: the one it writes or,
    if it writes none and shows its company (``shows_company``), the domain its company's
    rows write most."""
    free = free_mail_domains(staged.reindex(columns=KEY_COLUMNS), get_ingest_policies().matching)
    domain = pd.Series(staged["email_domain"].astype("object").where(~free).to_numpy())
    seen = pd.DataFrame({"c": company, "d": domain}).dropna().value_counts()
    by_company = seen.reset_index().drop_duplicates("c").set_index("c")["d"]  # the most written
    held = domain.where(
        domain.notna(), pd.Series(company).map(by_company).where(shows_company(staged))
    )
    return domain, held


def guard_permitted(
    staged: pd.DataFrame,
    truth: np.ndarray,
    company: np.ndarray,
    reachable: np.ndarray,
    leader: np.ndarray,
) -> dict[str, float]:
    """The true pairs that the closure's guard lets any matcher join, and our recall of them.

    The guard never joins two groups of rows each holding a corporate email domain the
    other lacks. A group holds the corporate domains its rows write, and a row that shows
    its company (``linkable``) holds the domain that company's rows mostly write. Pairs
    across two reachable groups of one person (``linkable``) that clash so are forbidden
    to every matcher that keeps the guard; the rest are permitted, whatever evidence a
    matcher would need to find them. (A person holds one personal tax id, so that half of
    the guard forbids nothing here.)"""
    frame = pd.DataFrame(
        {"t": truth, "r": reachable, "l": leader, "d": held_domains(staged, company)[1]}
    )
    split = frame.groupby("t")["r"].transform("nunique").to_numpy() > 1
    forbidden = found_forbidden = 0
    for _, person in frame[split].groupby("t"):
        parts = [(set(g["d"].dropna()), g["l"].value_counts()) for _, g in person.groupby("r")]
        for (dx, lx), (dy, ly) in combinations(parts, 2):
            if dx - dy and dy - dx:
                forbidden += int(lx.sum() * ly.sum())
                found_forbidden += int((lx * ly.reindex(lx.index, fill_value=0)).sum())
    true_pairs, found_true = pairs(truth), pairs(truth, leader)
    return {
        "forbidden_pairs": forbidden,
        "recall_ceiling_guard": round(1 - forbidden / true_pairs, 4),
        "recall_of_permitted": round((found_true - found_forbidden) / (true_pairs - forbidden), 4),
    }


def evaluate_world(
    n_rows: int,
    config: worldgen.WorldConfig,
    *,
    misses: bool = False,
    unreachable: bool = False,
) -> dict[str, Any]:
    """Precision, recall and matching time of ours and of exact email alone on the world."""
    t0 = time.perf_counter()
    generated = worldgen.generate(n_rows, config)
    t1 = time.perf_counter()
    staged = stage_world([g[0] for g in generated])
    truth = np.array([g[1] for g in generated])
    good = staged["reason"].isna().to_numpy()
    t2, c2 = time.perf_counter(), os.times()
    matches = match_rows(staged[good], pd.DataFrame(), get_ingest_policies().matching)
    t3, c3 = time.perf_counter(), os.times()
    ours = pair_counts(truth[good], matches["leader"].to_numpy())
    company = np.array([g[2] for g in generated])[good]
    resolved = staged[good].reset_index(drop=True)
    reachable = linkable(resolved, truth[good], company)
    ceiling = pair_counts(truth[good], reachable)["predicted_pairs"] / ours["true_pairs"]
    within = pair_counts(reachable, matches["leader"].to_numpy())
    by_true = linkable(resolved, truth[good], company, shown=False)
    true_ceiling = pair_counts(truth[good], by_true)["predicted_pairs"] / ours["true_pairs"]
    guard = guard_permitted(resolved, truth[good], company, reachable, matches["leader"].to_numpy())
    if misses:
        print_misses(resolved, truth[good], company, reachable, matches["leader"].to_numpy())
    if unreachable:
        print_unreachable(resolved, truth[good], company, reachable, matches["leader"].to_numpy())
    email = staged["email"][good].astype("object")
    # Exact email alone: rows without an address are clusters of their own.
    alone = np.where(email.isna(), -np.arange(1, good.sum() + 1), pd.factorize(email)[0])
    return {
        "world": "heldout" if config == worldgen.HELDOUT else "tuned",
        "rows": n_rows,
        "rows_resolved": int(good.sum()),
        "ours": ours,
        # The share of true pairs that evidence can link at all, and our recall of those.
        "recall_ceiling": round(ceiling, 4),
        "recall_of_linkable": within["recall"],
        # The same, counting every row as at its true company whether it shows it or not.
        "recall_ceiling_true_company": round(true_ceiling, 4),
        "recall_of_linkable_true_company": pair_counts(by_true, matches["leader"].to_numpy())[
            "recall"
        ],
        # The share of true pairs that the closure's guard lets any matcher join, and our
        # recall of those.
        **guard,
        "exact_email": pair_counts(truth[good], alone),
        "seconds": {
            "generate": round(t1 - t0, 1),
            "stage": round(t2 - t1, 1),
            "match": round(t3 - t2, 1),
            # user + system CPU of the matching, every thread: comparable on a busy machine.
            "match_cpu": round(c3.user - c2.user + c3.system - c2.system, 1),
        },
    }


def print_misses(
    rows: pd.DataFrame,
    truth: np.ndarray,
    company: np.ndarray,
    reachable: np.ndarray,
    leader: np.ndarray,
    examples: int = 3,
) -> None:
    """The reachable true pairs we miss, counted by what the two rows share (an address,
    a phone, a tax id, the true company, nothing but a chain), with a few examples each."""
    cols = ["first_name", "last_name", "email", "company", "phone", "tax_id"]
    df = rows.assign(_reach=reachable, _leader=leader, _company=company)
    kinds: Counter[str] = Counter()
    shown: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for _, group in df.groupby("_reach"):
        if group["_leader"].nunique() < 2:
            continue
        records = group.to_dict("records")
        for x, y in combinations(records, 2):
            if x["_leader"] == y["_leader"]:
                continue
            key = [c for c in ("email", "phone", "tax_id") if pd.notna(x[c]) and x[c] == y[c]]
            if x["_company"] == y["_company"]:
                key.append("true_company")
            kind = ",".join(key) or "transitive_only"
            kinds[kind] += 1
            shown.setdefault(kind, [])
            if len(shown[kind]) < examples:
                shown[kind].append(({c: x[c] for c in cols}, {c: y[c] for c in cols}))
    print("missed reachable pairs", sum(kinds.values()))
    for kind, count in kinds.most_common():
        print(count, kind)
        for first, second in shown[kind]:
            print("    ", first)
            print("    ", second)


def print_unreachable(
    rows: pd.DataFrame,
    truth: np.ndarray,
    company: np.ndarray,
    reachable: np.ndarray,
    leader: np.ndarray,
) -> None:
    """The true pairs across two reachable groups of one person (``linkable``), counted by
    what the guard says of them (``guard_permitted``: two domains both rows write, or one
    held through the row's company, or permitted), whether the person changed company,
    how their names agree (the same name, rare or common by ``expected_namesakes``; a name
    that fits the other; neither) and whether we join them."""
    policy = get_ingest_policies().matching
    written, held = (d.to_numpy() for d in held_domains(rows, company))
    names = rows["name_key"].to_numpy(dtype=object)
    namesakes = expected_namesakes(rows["name_key"])
    frame = pd.DataFrame({"t": truth, "r": reachable})
    split = frame.groupby("t")["r"].transform("nunique").to_numpy() > 1
    kinds: Counter[tuple[str, str, str, str]] = Counter()

    def clash(x: set[str], y: set[str]) -> bool:
        return bool(x - y) and bool(y - x)

    for _, person in frame[split].groupby("t"):
        parts = [g.index.to_numpy() for _, g in person.groupby("r")]
        for px, py in combinations(parts, 2):
            sets = [
                [{d for d in values[p] if isinstance(d, str)} for p in (px, py)]
                for values in (written, held)
            ]
            guard = (
                "forbidden: two written domains"
                if clash(*sets[0])
                else "forbidden: a company's domain"
                if clash(*sets[1])
                else "permitted"
            )
            for i in px.tolist():
                for j in py.tolist():
                    x, y = names[i], names[j]
                    if isinstance(x, str) and x == y:
                        rare = namesakes[i] <= policy.rare_name_max_namesakes
                        name = "same rare name" if rare else "same common name"
                    elif isinstance(x, str) and isinstance(y, str):
                        fits = names_compatible(x.split(), y.split())
                        name = "name fits" if fits else "names differ"
                    else:
                        name = "a name missing"
                    move = "job change" if company[i] != company[j] else "same company"
                    found = "found" if leader[i] == leader[j] else "missed"
                    kinds[(guard, move, name, found)] += 1
    print("true pairs across reachable groups", sum(kinds.values()))
    for kind, count in sorted(kinds.items()):
        print(count, ", ".join(kind))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows_positional", nargs="?", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--heldout", action="store_true", help="the held-out configuration")
    parser.add_argument("--generator", choices=["world", "leadgen"], default="world")
    parser.add_argument(
        "--misses", action="store_true", help="print the missed reachable pairs, by kind"
    )
    parser.add_argument(
        "--unreachable",
        action="store_true",
        help="count the true pairs no shared evidence links, by what the guard says of them",
    )
    args = parser.parse_args()
    if args.heldout and (args.misses or args.unreachable):
        parser.error("held-out pairs are never listed: --misses and --unreachable are tuned only")
    rows = args.rows_positional or args.rows
    if args.generator == "leadgen":
        print(evaluate(rows))
        return
    config = worldgen.HELDOUT if args.heldout else worldgen.TUNED
    result = evaluate_world(rows, config, misses=args.misses, unreachable=args.unreachable)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
