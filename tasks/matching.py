"""Entity resolution: which rows are the same real person, and which company they work for.

Rows are linked by rules (exact email, personal tax id, exact name within one company or
email domain, shared phone with agreeing names, fuzzy name within one company), then the
links are closed transitively (connected components). Every rule blocks on a key, so the
cost stays near-linear in the number of rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from config.policies import MatchingPolicy

# Lower number = stronger evidence; a row records the strongest rule that linked it.
RULES = {
    "contact": 0,
    "email": 1,
    "tax_id": 2,
    "name_company": 3,
    "name_domain": 4,
    "phone_name": 5,
    "fuzzy_name_company": 6,
}
RULE_NAMES = {v: k for k, v in RULES.items()}
KEY_COLUMNS = [
    "name_key",
    "email",
    "email_domain",
    "is_free_mail",
    "phone",
    "person_tax_id",
    "company_key",
    "company_tax_id",
]


def _nonnull(s: pd.Series) -> pd.Series:
    return s.notna() & (s.astype("object") != "")


def _blocks(keys: pd.Series, max_size: int) -> Iterator[np.ndarray]:
    """Positions sharing a key, for keys held by 2..max_size rows."""
    valid = keys[_nonnull(keys)]
    codes, _ = pd.factorize(valid)
    counts = np.bincount(codes) if len(codes) else np.array([], dtype=np.int64)
    keep = (counts[codes] >= 2) & (counts[codes] <= max_size) if len(codes) else codes > 0
    codes, positions = codes[keep], valid.index.to_numpy()[keep]
    order = np.argsort(codes, kind="stable")
    codes, positions = codes[order], positions[order]
    bounds = np.flatnonzero(np.diff(codes)) + 1
    yield from np.split(positions, bounds) if len(positions) else []


def _exact_pairs(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Link every row to the first row holding the same key (a star per key)."""
    valid = keys[_nonnull(keys)]
    codes, _ = pd.factorize(valid)
    positions = valid.index.to_numpy().astype(np.int64)
    if not len(codes):
        return positions, positions
    _, first_occurrence = np.unique(codes, return_index=True)
    first = positions[first_occurrence][codes]
    keep = first != positions
    return first[keep], positions[keep]


SMALL_BLOCK = 24


def _fuzzy_pairs(
    values: np.ndarray, blocks: Iterator[np.ndarray], scorer: Any, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a, b, score) within blocks whose ``scorer`` similarity reaches ``cutoff``.

    Most blocks hold two or three rows; paying a cdist call for each would cost more than
    the comparisons, so small blocks are flattened into one list of pairs and scored in a
    single pass, and only large blocks get cdist.
    """
    small_a: list[np.ndarray] = []
    small_b: list[np.ndarray] = []
    large: list[np.ndarray] = []
    for idx in blocks:
        if len(idx) <= SMALL_BLOCK:
            i, j = np.triu_indices(len(idx), k=1)
            small_a.append(idx[i])
            small_b.append(idx[j])
        else:
            large.append(idx)

    def score_block(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        block = values[idx].tolist()
        scores = process.cdist(block, block, scorer=scorer, score_cutoff=cutoff, dtype=np.uint8)
        i, j = np.nonzero(np.triu(scores, k=1))
        return idx[i], idx[j], scores[i, j].astype(float)

    # cdist releases the GIL, so large blocks are scored on every core, in threads.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        scored = list(pool.map(score_block, large))
    out_a = [a for a, _, _ in scored]
    out_b = [b for _, b, _ in scored]
    out_s = [sc for _, _, sc in scored]
    if small_a:
        a, b = np.concatenate(small_a), np.concatenate(small_b)
        scores = np.fromiter(
            (scorer(x, y, score_cutoff=cutoff) for x, y in zip(values[a], values[b], strict=True)),
            dtype=float,
            count=len(a),
        )
        hit = scores >= cutoff
        out_a.append(a[hit])
        out_b.append(b[hit])
        out_s.append(scores[hit])
    if not out_a:
        empty = np.array([], dtype=np.int64)
        return empty, empty, np.array([], dtype=float)
    return (
        np.concatenate(out_a).astype(np.int64),
        np.concatenate(out_b).astype(np.int64),
        np.concatenate(out_s),
    )


def _joined(*parts: pd.Series) -> pd.Series:
    """Composite key per row; NA if any part is NA (whatever dtype each part arrived in)."""
    out = parts[0].astype("string")
    for part in parts[1:]:
        out = out + "|" + part.astype("string")
    return out


def _name_similarity(names: pd.Series, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    values = names.to_numpy(dtype=object)
    return np.array(
        [
            fuzz.token_sort_ratio(x, y) if isinstance(x, str) and isinstance(y, str) else -1.0
            for x, y in zip(values[a], values[b], strict=True)
        ]
    )


def resolve_companies(frame: pd.DataFrame, policy: MatchingPolicy) -> pd.Series:
    """A company cluster label per row (NA without company data).

    Clusters unique keys, not rows: exact tax id, exact folded name, and fuzzy names that
    differ by a typo (blocked by first and last three letters).
    """
    keys = frame["company_key"].astype("object")
    taxes = frame["company_tax_id"].astype("object")
    nodes = pd.Index(
        pd.concat([("k:" + keys[_nonnull(keys)]), ("t:" + taxes[_nonnull(taxes)])]).unique()
    )
    if nodes.empty:
        return pd.Series(pd.NA, index=frame.index, dtype="object")
    pos = pd.Series(np.arange(len(nodes)), index=nodes)
    both = _nonnull(keys) & _nonnull(taxes)
    src = [pos.reindex(pd.Index("k:" + keys[both])).to_numpy()]
    dst = [pos.reindex(pd.Index("t:" + taxes[both])).to_numpy()]
    uniq = pd.Series(keys[_nonnull(keys)].unique())
    uniq = uniq[uniq.str.len() >= policy.company_min_length].reset_index(drop=True)
    uniq_nodes = pos.reindex("k:" + uniq).to_numpy()
    uniq_values = uniq.to_numpy(dtype=object)
    for block_key in (uniq.str[:3], uniq.str[-3:]):
        blocks = _blocks(block_key, policy.max_block_size)
        a, b, _ = _fuzzy_pairs(uniq_values, blocks, fuzz.ratio, policy.company_threshold)
        src.append(uniq_nodes[a])
        dst.append(uniq_nodes[b])
    labels = _components(len(nodes), np.concatenate(src), np.concatenate(dst))
    label_of = pd.Series(labels, index=nodes)
    by_key = ("k:" + keys).map(label_of)
    by_tax = ("t:" + taxes).map(label_of)
    return by_tax.fillna(by_key).astype("object").where(lambda s: s.notna(), None)


def _components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def link_rows(frame: pd.DataFrame, org: pd.Series, policy: MatchingPolicy) -> pd.DataFrame:
    """All pairwise links between rows of ``frame`` (positional index), with rule and score."""
    frame = frame.reset_index(drop=True)
    org = org.reset_index(drop=True)
    names = frame["name_key"]
    parts: dict[str, list[np.ndarray]] = {"a": [], "b": [], "rule": [], "score": []}

    def add(rule: str, a: np.ndarray, b: np.ndarray, score: np.ndarray | float = 100.0) -> None:
        if len(a):
            parts["a"].append(np.asarray(a, dtype=np.int64))
            parts["b"].append(np.asarray(b, dtype=np.int64))
            parts["rule"].append(np.full(len(a), RULES[rule], dtype=np.int8))
            parts["score"].append(np.broadcast_to(np.asarray(score, dtype=float), (len(a),)))

    if "contact_id" in frame:
        add("contact", *_exact_pairs(frame["contact_id"]))
    a, b = _exact_pairs(frame["email"])
    sim = _name_similarity(names, a, b)
    keep = (sim < 0) | (sim >= policy.email_name_conflict)  # a shared mailbox is not a person
    add("email", a[keep], b[keep], np.where(sim[keep] < 0, 100.0, sim[keep]))
    add("tax_id", *_exact_pairs(frame["person_tax_id"]))
    has_name = _nonnull(names)
    add(
        "name_company",
        *_exact_pairs(_joined(names, org).where(has_name & org.notna())),
    )
    corporate = frame["email_domain"].where(~frame["is_free_mail"].fillna(False).astype(bool))
    add("name_domain", *_exact_pairs(_joined(names, corporate).where(has_name)))
    emails = frame["email"].to_numpy(dtype=object)
    free = frame["is_free_mail"].fillna(False).astype(bool).to_numpy()

    def work_email_conflict(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Two different work addresses mean two people (the near-miss), whatever the names."""
        differ = np.array(
            [
                isinstance(x, str) and isinstance(y, str) and x != y
                for x, y in zip(emails[a], emails[b], strict=True)
            ],
            dtype=bool,
        )
        return differ & ~free[a] & ~free[b]

    a, b = _exact_pairs(frame["phone"])
    sim = _name_similarity(names, a, b)
    keep = (sim < 0) | (
        (sim >= policy.phone_name_threshold) & ((sim == 100) | ~work_email_conflict(a, b))
    )
    add("phone_name", a[keep], b[keep], np.where(sim[keep] < 0, 100.0, sim[keep]))

    # Fuzzy names only inside one company (or one corporate domain): typos and middle names
    # of the same person, never two people who merely share a surname elsewhere.
    block_keys = org.astype("object").where(org.notna(), "d:" + corporate.astype("object"))
    tokens = names.str.count(" ").fillna(0).to_numpy() + 1
    name_values = names.to_numpy(dtype=object)
    # token_set lets "maria lima" match "maria souza lima" (a dropped middle name)...
    blocks = _blocks(block_keys.where(has_name), policy.max_block_size)
    ga, gb, scores = _fuzzy_pairs(name_values, blocks, fuzz.token_set_ratio, policy.name_threshold)
    # ...but a lone "maria" is a subset of every Maria: single tokens need the whole name.
    single = (tokens[ga] < 2) | (tokens[gb] < 2)
    if single.any():
        whole = _name_similarity(names, ga[single], gb[single]) >= policy.name_threshold
        keep = ~single
        keep[np.flatnonzero(single)[whole]] = True
        ga, gb, scores = ga[keep], gb[keep], scores[keep]
    conflict = work_email_conflict(ga, gb)
    add("fuzzy_name_company", ga[~conflict], gb[~conflict], scores[~conflict])
    if not parts["a"]:
        return pd.DataFrame({"a": [], "b": [], "rule": [], "score": []})
    edges = pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()})
    edges["rule"] = edges["rule"].map(RULE_NAMES)
    return edges


def match_rows(rows: pd.DataFrame, known: pd.DataFrame, policy: MatchingPolicy) -> pd.DataFrame:
    """Resolve ``rows`` (in file order) against each other and against ``known`` contacts.

    ``known`` has one line per identifier a stored contact carries (``contact_id`` plus key
    columns and ``company_id``). Returns, per row of ``rows`` (same index): ``contact_id``
    of an existing contact or NA, ``leader`` (the position in ``rows`` of the row that
    creates the contact) , ``disposition`` (accepted / duplicate), ``match_rule`` and
    ``match_score``.
    """
    n_known = len(known)
    known_part = known.reindex(columns=[*KEY_COLUMNS, "contact_id", "company_id"])
    new_part = rows.reindex(columns=KEY_COLUMNS).assign(contact_id=None, company_id=None)
    frame = pd.concat([known_part, new_part], ignore_index=True)
    org = resolve_companies(frame, policy)
    links = link_rows(frame, org, policy)
    labels = _components(len(frame), links["a"].to_numpy(np.int64), links["b"].to_numpy(np.int64))

    best = pd.concat(
        [
            links[["a", "rule", "score"]].rename(columns={"a": "node"}),
            links[["b", "rule", "score"]].rename(columns={"b": "node"}),
        ]
    )
    best = best.assign(rank=best["rule"].map(RULES)).sort_values(
        ["node", "rank", "score"], ascending=[True, True, False]
    )
    best = best.drop_duplicates("node").set_index("node")

    comp = pd.DataFrame({"label": labels, "contact_id": frame["contact_id"]})
    known_of_label = (
        comp.iloc[:n_known].dropna(subset=["contact_id"]).groupby("label")["contact_id"].min()
    )
    new = comp.iloc[n_known:].copy()
    new["position"] = np.arange(len(new))
    new["contact_id"] = new["label"].map(known_of_label)
    new["leader"] = new.groupby("label")["position"].transform("min")
    new["disposition"] = np.where(
        new["contact_id"].isna() & (new["position"] == new["leader"]), "accepted", "duplicate"
    )
    nodes = np.arange(n_known, len(frame))
    new["match_rule"] = best["rule"].reindex(nodes).to_numpy()
    new["match_score"] = best["score"].reindex(nodes).to_numpy()
    new.loc[new["disposition"] == "accepted", ["match_rule", "match_score"]] = None
    new["company_label"] = org.iloc[n_known:].to_numpy()
    known_company = pd.DataFrame(
        {"label": org.iloc[:n_known], "company_id": known_part["company_id"]}
    )
    company_of_label = known_company.dropna().groupby("label")["company_id"].min()
    new["company_id"] = new["company_label"].map(company_of_label)
    new.index = rows.index
    return new[
        [
            "contact_id",
            "leader",
            "disposition",
            "match_rule",
            "match_score",
            "company_label",
            "company_id",
        ]
    ]
