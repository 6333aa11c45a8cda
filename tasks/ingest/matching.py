"""Entity resolution: which rows are the same real person, and which company they work for.

Rows are linked by rules (exact email, personal tax id, exact name within one company or
email domain, shared phone with agreeing names, fuzzy name within one company), then the
links are closed transitively (connected components). Every rule blocks on a key, so the
cost stays near-linear in the number of rows.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
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


@dataclass(frozen=True)
class Blocks:
    """Rows grouped by a key: group ``g`` is ``positions[starts[g] : starts[g] + sizes[g]]``.

    Flat arrays rather than an array per group: a batch has a hundred thousand groups,
    and an array object each would cost more memory and time than the positions.
    """

    positions: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    codes: np.ndarray  # the key code each group holds

    def subset(self, which: np.ndarray) -> Blocks:
        """The groups ``which`` selects (a boolean mask over groups)."""
        return Blocks(self.positions, self.starts[which], self.sizes[which], self.codes[which])


def _blocks(keys: pd.Series, max_size: int) -> Blocks:
    """Positions (the index) sharing a key, for keys held by 2..max_size rows."""
    valid = keys[_nonnull(keys)]
    codes, _ = pd.factorize(valid)
    return _groups(codes, valid.index.to_numpy(), max_size)


def _groups(codes: np.ndarray, positions: np.ndarray, max_size: int) -> Blocks:
    counts = np.bincount(codes) if len(codes) else np.array([], dtype=np.int64)
    keep = (counts[codes] >= 2) & (counts[codes] <= max_size) if len(codes) else codes > 0
    codes, positions = codes[keep], positions[keep]
    order = np.argsort(codes, kind="stable")
    codes, positions = codes[order], positions[order].astype(np.int64)
    starts = np.flatnonzero(np.diff(codes, prepend=-1)) if len(codes) else codes
    return Blocks(positions, starts, np.diff(starts, append=len(codes)), codes[starts])


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
SCORE_SLICE = 50_000
# A large block is scored in up to SLICES slices of rows, each of at least SLICE_MIN_ROWS.
SLICES = 8
SLICE_MIN_ROWS = 256


def _candidate_pairs(
    values: np.ndarray, blocks: Blocks, scorer: Any, cutoff: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b) within blocks that may reach ``cutoff``: every pair of a small block,
    and the hits of ``process.cdist`` in a large one.

    Most blocks hold two or three rows; paying a cdist call for each would cost more than
    the comparisons, so small blocks are only listed, all blocks of one size at once, and
    scored later in one ``cpdist``.
    """
    small = blocks.sizes <= SMALL_BLOCK
    listed_a, listed_b, _ = _listed_pairs(blocks.subset(small))
    out_a, out_b = [listed_a], [listed_b]
    large = [
        blocks.positions[start : start + size]
        for start, size in zip(blocks.starts[~small], blocks.sizes[~small], strict=True)
    ]

    def hits(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The block's pairs (i < j) that reach ``cutoff``, a slice of rows at a time
        against the block from that slice on: about half of the matrix that ``cdist`` of
        the block against itself scores, each pair twice."""
        block = values[idx].tolist()
        step = max(SLICE_MIN_ROWS, -(-len(block) // SLICES))
        out_i, out_j = [], []
        for start in range(0, len(block), step):
            # uint8 keeps a 5,000-row block's matrix at 25 MB; exact scores come later.
            scores = process.cdist(
                block[start : start + step],
                block[start:],  # a new list: given the same object, cdist is 1.3-1.7x slower
                scorer=scorer,
                score_cutoff=cutoff,
                dtype=np.uint8,
            )
            i, j = np.nonzero(np.triu(scores, k=1))
            out_i.append(idx[start + i])
            out_j.append(idx[start + j])
        return np.concatenate(out_i), np.concatenate(out_j)

    # cdist releases the GIL, so large blocks are scored on every core, in threads.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for a, b in pool.map(hits, large):
            out_a.append(a)
            out_b.append(b)
    return np.concatenate(out_a).astype(np.int64), np.concatenate(out_b).astype(np.int64)


def _scored(
    values: np.ndarray, a: np.ndarray, b: np.ndarray, scorer: Any, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs whose ``scorer`` similarity reaches ``cutoff``, with that score."""
    # cpdist prepares every string of its input before scoring (~100 bytes a pair), so a
    # million pairs go through in slices.
    scores = np.concatenate(
        [
            np.array([], dtype=np.float64),
            *(
                process.cpdist(
                    values[a[i : i + SCORE_SLICE]].tolist(),
                    values[b[i : i + SCORE_SLICE]].tolist(),
                    scorer=scorer,
                    score_cutoff=cutoff,
                    dtype=np.float64,
                    workers=-1,
                )
                for i in range(0, len(a), SCORE_SLICE)
            ),
        ]
    )
    hit = scores >= cutoff
    return a[hit], b[hit], scores[hit]


def _fuzzy_pairs(
    values: np.ndarray, blocks: Blocks, scorer: Any, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (a, b, score) within blocks whose ``scorer`` similarity reaches ``cutoff``."""
    return _scored(values, *_candidate_pairs(values, blocks, scorer, cutoff), scorer, cutoff)


def _token_set_pairs(
    names: pd.Series, blocks: Blocks, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_fuzzy_pairs`` with ``fuzz.token_set_ratio``, without scoring every pair of a block.

    By rapidfuzz's definition, two names that share no token score the plain ``ratio`` of
    their sorted, de-duplicated tokens, which cdist computes several times faster; names
    that share a token are found by blocking on (block, token). Candidates of both kinds
    are scored with ``token_set_ratio`` itself, so the pairs and scores are exactly those
    of scoring every pair (a margin below ``cutoff`` absorbs rounding); most are first
    ruled out by a bound on that score (``_token_set_bound``).
    """
    values = names.to_numpy(dtype=object)
    n = len(values)
    members = blocks.positions
    uniq = pd.unique(values[members])
    token_set = dict(zip(uniq, (" ".join(sorted(set(v.split()))) for v in uniq), strict=True))
    joined = np.array([token_set.get(v) for v in values], dtype=object)
    a1, b1 = _candidate_pairs(joined, blocks, fuzz.ratio, cutoff - 1)
    # (block, token) groups, in Arrow: a Python list per name would cost more than the rest.
    split = pc.utf8_split_whitespace(pa.array(values[members], type=pa.large_string()))
    member = pc.list_parent_indices(split).to_numpy()
    tokens = pc.list_flatten(split).dictionary_encode()
    token = tokens.indices.to_numpy().astype(np.int64)
    token_length = pc.utf8_length(tokens.dictionary).to_numpy()
    group = np.repeat(np.arange(len(blocks.sizes)), blocks.sizes)[member]
    key = group * (int(token.max(initial=0)) + 1) + token
    # A name that repeats a token ("silva silva") joins that token's group once.
    once = ~pd.Series(member * (int(key.max(initial=0)) + 1) + key).duplicated().to_numpy()
    codes, _ = pd.factorize(key[once])
    shared = _groups(codes, members[member[once]], n)
    # Pairs of a group are listed with the group's token length (summed per pair, the
    # length of what they share); a group too large to list goes to cdist, scored whole.
    listed = shared.sizes <= LISTED_GROUP
    a3, b3 = _candidate_pairs(values, shared.subset(~listed), fuzz.token_set_ratio, cutoff)
    token_of_code = np.zeros(int(codes.max(initial=-1)) + 1, dtype=np.int64)
    token_of_code[codes] = token[once]
    by_group = shared.subset(listed)
    a2, b2, length = _listed_pairs(by_group, token_length[token_of_code[by_group.codes]])
    # One int64 per pair (a < b < n). pd.unique hashes; np.unique (numpy 2.4) took a
    # second for a million pairs.
    pair, first = pd.factorize(np.concatenate([a2 * n + b2, a1 * n + b1]))
    counted = np.concatenate([length + 1, np.zeros(len(a1), dtype=np.int64)])
    a, b = np.divmod(first, n)
    # k shared tokens were counted with a space each: the joined intersection is one less.
    sect = np.maximum(np.bincount(pair, weights=counted).astype(np.int64) - 1, 0)
    keep = _token_set_bound(joined, a, b, sect) >= cutoff - 1
    a = np.concatenate([a[keep], a3])
    b = np.concatenate([b[keep], b3])
    pairs = pd.unique(a * n + b)
    return _scored(values, *np.divmod(pairs, n), fuzz.token_set_ratio, cutoff)


# Groups of names sharing a token are listed pair by pair up to this size; larger ones
# (a first name half a company shares) go to cdist.
LISTED_GROUP = 200


def _listed_pairs(
    blocks: Blocks, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (a < b) of every block, all blocks of one size at once, with its block's
    ``weight`` (no weights without one)."""
    empty = np.array([], dtype=np.int64)
    out_a, out_b, out_w = [empty], [empty], [empty]
    for size in np.unique(blocks.sizes):
        which = blocks.sizes == size
        members = blocks.positions[blocks.starts[which][:, None] + np.arange(size)]
        i, j = np.triu_indices(size, k=1)
        out_a.append(members[:, i].ravel())
        out_b.append(members[:, j].ravel())
        if weight is not None:
            out_w.append(np.repeat(weight[which], len(i)))
    return (
        np.concatenate(out_a).astype(np.int64),
        np.concatenate(out_b).astype(np.int64),
        np.concatenate(out_w).astype(np.int64),
    )


_BINS = 32
# A slice's two rows of counts per pair are 13 MB at 100,000 pairs (32 MB at 250,000).
_BOUND_SLICE = 100_000
_COUNT_CHUNK = 16_384


def _token_set_bound(
    joined: np.ndarray, a: np.ndarray, b: np.ndarray, sect: np.ndarray
) -> np.ndarray:
    """An upper bound on ``fuzz.token_set_ratio`` of each pair, from the lengths of the
    sorted token sets (``joined``), the length ``sect`` of their joined intersection, and
    how their letters differ.

    rapidfuzz scores the intersection against each name's whole token set, which the
    lengths alone decide (2 * sect / (sect + len)), and the two names' remaining tokens
    against each other, an Indel ratio over len(a) + len(b) whose distance is at least the
    difference of their letter counts (the shared tokens' letters cancel). Letters are
    counted in 32 bins: two letters sharing a bin only weaken the bound. Names with other
    than ASCII letters get no bound (100).
    """
    out = np.full(len(a), 100.0)
    text = pa.array([v or "" for v in joined], type=pa.large_string())
    if not pc.all(pc.string_is_ascii(text)).as_py():
        return out
    lengths = pc.utf8_length(text).to_numpy()
    counts = _letter_counts(text)
    for start in range(0, len(a), _BOUND_SLICE):
        part = slice(start, start + _BOUND_SLICE)
        la, lb = lengths[a[part]], lengths[b[part]]
        differ = np.abs(counts[a[part]] - counts[b[part]]).sum(axis=1)
        rest = 100.0 * (1 - differ / (la + lb))
        s = sect[part]
        with np.errstate(divide="ignore", invalid="ignore"):
            whole = np.where(s > 0, 200.0 * s / (s + np.minimum(la, lb)), 0.0)
        out[part] = np.maximum(rest, whole)
    return out


def _letter_counts(text: pa.Array) -> np.ndarray:
    """Each ASCII string's letters counted in ``_BINS`` bins (spaces, and what shares
    their bin, not counted): an int16 row per string.

    Counted ``_COUNT_CHUNK`` strings at a time: counting all at once held about 150 MB of
    position and bin arrays at the run's memory peak for a 12 MB result.
    """
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)
    offsets = offsets[text.offset : text.offset + len(text) + 1]  # a slice starts further on
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)
    out = np.zeros((len(text), _BINS), dtype=np.int16)
    for first in range(0, len(text), _COUNT_CHUNK):
        last = min(first + _COUNT_CHUNK, len(text))
        ends = offsets[first : last + 1]
        letter = data[ends[0] : ends[-1]] % _BINS
        owner = np.repeat(np.arange(last - first, dtype=np.int32), np.diff(ends))
        counted = letter != (ord(" ") % _BINS)
        out[first:last] = np.bincount(
            owner[counted] * _BINS + letter[counted], minlength=(last - first) * _BINS
        ).reshape(last - first, _BINS)
    return out


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


def linkable_companies(
    rows: pd.DataFrame, companies: pd.DataFrame, policy: MatchingPolicy
) -> pd.DataFrame:
    """The stored ``companies`` (company_id, company_key, company_tax_id) that a company of
    ``rows`` can resolve to by ``resolve_companies``' rules: the same tax id, the same
    folded name, or a name within ``company_threshold`` in a shared block.

    Only the rows' names are compared with stored names, never stored with stored, so a
    small batch costs little however many companies are stored. A block too large for
    ``resolve_companies`` to score is skipped here too.
    """
    if companies.empty:  # a first load: nothing stored to compare with
        return companies
    companies = companies.reset_index(drop=True)
    keys = rows["company_key"].astype("object")
    taxes = rows["company_tax_id"].astype("object")
    ours = pd.Series(keys[_nonnull(keys)].unique(), dtype="object")
    stored = companies["company_key"].astype("object")
    exact = stored.isin(set(ours)) | companies["company_tax_id"].isin(set(taxes[_nonnull(taxes)]))
    long_stored = _nonnull(stored) & (stored.str.len() >= policy.company_min_length)
    theirs = stored[long_stored].to_numpy(dtype=object)
    values = np.concatenate(
        [ours[ours.str.len() >= policy.company_min_length].to_numpy(dtype=object), theirs]
    )
    n_ours = len(values) - len(theirs)

    def hits(block: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        mine, their = block
        scores = process.cdist(
            values[mine].tolist(),
            theirs[their].tolist(),
            scorer=fuzz.ratio,
            score_cutoff=policy.company_threshold,
            dtype=np.uint8,
        )
        return their[scores.any(axis=0)]

    fuzzy = np.zeros(len(theirs), dtype=bool)
    for start, stop in ((0, 3), (-3, None)):
        codes, _ = pd.factorize(pd.Series(values, dtype="object").str.slice(start, stop))
        a, b, large = _cross_pairs(codes[:n_ours], codes[n_ours:], policy.max_block_size)
        _, found, _ = _scored(values, a, b + n_ours, fuzz.ratio, policy.company_threshold)
        fuzzy[found - n_ours] = True
        # cdist releases the GIL, as in _candidate_pairs.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for their_hits in pool.map(hits, large):
                fuzzy[their_hits] = True
    linked = exact.to_numpy(dtype=bool, copy=True)
    linked[np.flatnonzero(long_stored.to_numpy())[fuzzy]] = True
    return companies[linked]


def _cross_pairs(
    ours: np.ndarray, theirs: np.ndarray, max_size: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Every (ours, theirs) pair of positions sharing a block code, for blocks of at most
    ``max_size`` members in all: listed when a block has few pairs, and the larger blocks
    returned whole as (our positions, their positions) for ``cdist``."""
    n = int(max(ours.max(initial=-1), theirs.max(initial=-1))) + 1
    our_count, their_count = np.bincount(ours, minlength=n), np.bincount(theirs, minlength=n)
    our_order, their_order = np.argsort(ours, kind="stable"), np.argsort(theirs, kind="stable")
    our_start, their_start = np.cumsum(our_count) - our_count, np.cumsum(their_count) - their_count
    shared = (our_count > 0) & (their_count > 0) & (our_count + their_count <= max_size)
    pairs = our_count * their_count
    listed = np.flatnonzero(shared & (pairs <= SMALL_BLOCK**2))
    counts = pairs[listed]
    block = np.repeat(listed, counts)
    offset = np.arange(len(block)) - np.repeat(np.cumsum(counts) - counts, counts)
    a = our_order[our_start[block] + offset // their_count[block]]
    b = their_order[their_start[block] + offset % their_count[block]]
    large = [
        (
            our_order[our_start[g] : our_start[g] + our_count[g]],
            their_order[their_start[g] : their_start[g] + their_count[g]],
        )
        for g in np.flatnonzero(shared & (pairs > SMALL_BLOCK**2))
    ]
    return a.astype(np.int64), b.astype(np.int64), large


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
    # token_set lets "maria lima" match "maria souza lima" (a dropped middle name)...
    blocks = _blocks(block_keys.where(has_name), policy.max_block_size)
    ga, gb, scores = _token_set_pairs(names, blocks, policy.name_threshold)
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
