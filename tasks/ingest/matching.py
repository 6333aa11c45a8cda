"""Entity resolution: which rows are the same real person, and which company they work for.

Rows are linked by rules (exact email, personal tax id, exact name within one company or
email domain, shared phone with agreeing names, fuzzy name within one company, a rare full
name within one country), then the links are closed transitively (connected components).
Every rule blocks on a key, so the cost stays near-linear in the number of rows.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import permutations
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from config.policies import MatchingPolicy

# Lower number = stronger evidence; a row records the strongest rule that linked it.
RULES = {
    "contact": 0,
    "email": 1,
    "tax_id": 2,
    "phone_name": 3,
    "name_company": 4,
    "name_domain": 5,
    "fuzzy_name_company": 6,
    "rare_name": 7,
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
    "country",
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


def expected_namesakes(names: pd.Series) -> np.ndarray:
    """Per row, how many of the other named rows would carry its folded name by chance:
    their number times the share of named rows holding each of its words (NaN without a
    name).

    This is Fellegi-Sunter's term-frequency adjustment with a name's words taken as
    independent: agreeing on "joao silva" says little where thousands hold either word,
    agreeing on "teleu cidgilelo" says much. Shares are of words, not of whole names,
    because a whole name's own count includes its holder's repeated badges.
    """
    valid = _nonnull(names).to_numpy()
    text = pa.array(names.astype("object").where(valid, None).tolist(), type=pa.large_string())
    split = pc.utf8_split_whitespace(text)
    owner = pc.list_parent_indices(split).to_numpy().astype(np.int64)
    code = pd.factorize(pc.list_flatten(split).to_numpy(zero_copy_only=False))[0]
    once = ~pd.Series(owner * (int(code.max(initial=0)) + 1) + code).duplicated().to_numpy()
    owner, code = owner[once], code[once]
    n = int(valid.sum())
    share = np.bincount(code) / max(n, 1)
    log = np.bincount(owner, weights=np.log(share[code]), minlength=len(names))
    return np.where(valid, (n - 1) * np.exp(log), np.nan)


def _name_similarity(names: pd.Series, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    values = names.to_numpy(dtype=object)
    return np.array(
        [
            fuzz.token_sort_ratio(x, y) if isinstance(x, str) and isinstance(y, str) else -1.0
            for x, y in zip(values[a], values[b], strict=True)
        ]
    )


@dataclass(frozen=True)
class CompanyTokens:
    """What company names are made of: each name's distinct tokens, and how rare each is.

    A token's weight is its inverse document frequency over the distinct names compared
    (the batch's and the stored companies'), so an industry word or a legal form that
    thousands of names share weighs little and a brand weighs much. On a handful of names
    every weight is about equal, which still tells two brands apart.
    """

    code_list: list[int]  # token codes, name after name
    bounds: list[int]  # name i's tokens are code_list[bounds[i] : bounds[i + 1]]
    words: list[str]  # token text per code
    weight: np.ndarray  # per code
    distinctive: np.ndarray  # per code: rare enough to identify a company
    matrix: csr_matrix  # names x tokens, 1 where a name holds a token
    lengths: np.ndarray  # per code: letters in the token
    compact: np.ndarray  # per name: the name without spaces
    digits: np.ndarray  # per name: its digits, in order

    def tokens(self, i: int) -> list[int]:
        return self.code_list[self.bounds[i] : self.bounds[i + 1]]

    @classmethod
    def of(cls, names: np.ndarray, policy: MatchingPolicy) -> CompanyTokens:
        text = pa.array(names.tolist(), type=pa.large_string())
        split = pc.utf8_split_whitespace(text)
        owner = pc.list_parent_indices(split).to_numpy().astype(np.int64)
        code, words = pd.factorize(pc.list_flatten(split).to_numpy(zero_copy_only=False))
        once = ~pd.Series(owner * (len(words) + 1) + code).duplicated().to_numpy()
        owner, code = owner[once], code[once].astype(np.int64)
        df = np.bincount(code, minlength=len(words))
        n = len(names)
        bounds = np.searchsorted(owner, np.arange(n + 1))  # owners arrive in order
        return cls(
            code_list=code.tolist(),
            bounds=bounds.tolist(),
            words=list(words),
            weight=np.log1p(n / np.maximum(df, 1)),
            distinctive=df <= max(2.0, policy.company_distinctive_share * n),
            matrix=csr_matrix(
                (np.ones(len(code), dtype=np.float64), (owner, code)), shape=(n, len(words))
            ),
            lengths=pd.Series(words, dtype="object").str.len().to_numpy(np.int64),
            compact=_strings(pc.replace_substring(text, " ", "")),
            digits=_strings(pc.replace_substring_regex(text, "[^0-9]", "")),
        )


def _strings(values: pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)


def _one_typo_apart(x: str, y: str) -> bool:
    """One keying error apart (a letter added, dropped, replaced, or two swapped), in words
    of at least five letters: shorter words differ by a letter too often between real
    brands. One error, not more, is what the deletion neighbourhood of
    ``_company_candidates`` finds."""
    if min(len(x), len(y)) < 5 or abs(len(x) - len(y)) > 1:
        return False
    # "Loja 12345" and "Loja 12346" are two shops: numbers are never typos of each other.
    if not (x.isalpha() and y.isalpha()):
        return False
    return bool(OSA.distance(x, y, score_cutoff=1) <= 1)


def company_names_agree(i: int, j: int, t: CompanyTokens, policy: MatchingPolicy) -> bool:
    """Whether names ``i`` and ``j`` name one company: the tokens they share (equal, or at
    most one pair of rare tokens one typo apart) include a distinctive one and outweigh
    what either name adds.

    Weighted, a name that only adds common words to the other ("Luvia" and "Luvia
    Equipamentos Industriais") is the same company; names that share the common words and
    differ in their brands ("Luvia Equipamentos Industriais", "Quintec Equipamentos
    Industriais") are not, however long the shared part. A typo matches only between two
    rare words, as a brand and its typo are; a typo in an industry word weighs little.
    This is the reference ``_agreeing_pairs`` computes for many pairs at once.
    """
    a, b = set(t.tokens(i)), set(t.tokens(j))
    common = a & b
    typos = [
        (x, y)
        for x in a - b
        for y in b - a
        if t.distinctive[x] and t.distinctive[y] and _one_typo_apart(t.words[x], t.words[y])
    ]
    if not (typos or any(t.distinctive[c] for c in common)):
        return False
    if _keyed_alike(np.array([i]), np.array([j]), t)[0]:
        return True
    w = t.weight
    base = float(sum(w[c] for c in common))
    extra_a = float(sum(w[c] for c in a - common))
    extra_b = float(sum(w[c] for c in b - common))
    if any(t.distinctive[c] for c in common) and _agree(base, extra_a, extra_b, policy):
        return True
    return any(
        _agree(base + (w[x] + w[y]) / 2, extra_a - w[x], extra_b - w[y], policy) for x, y in typos
    )


# Whole names (spaces ignored) one keying error apart are one company's from this length on.
KEYED_ALIKE_MIN = 8


def _keyed_alike(a: np.ndarray, b: np.ndarray, t: CompanyTokens) -> np.ndarray:
    """Whether names ``a`` and ``b`` are one keying error apart once spaces are ignored,
    with the same digits: a letter swapped, dropped or doubled anywhere, including across
    a space ("comerci ode maquinas", "supply chai nl l c"), which splits or merges words
    so that their weights no longer meet. Callers pass pairs that share a distinctive
    token or a typo of one, so a brand stays what tells two names apart; numbers never
    differ ("Loja 12345", "Loja 12346")."""
    x, y = t.compact[a], t.compact[b]
    distance = process.cpdist(x.tolist(), y.tolist(), scorer=OSA.distance, workers=-1)
    lengths = pd.Series(x, dtype="object").str.len().to_numpy()
    return (distance <= 1) & (lengths >= KEYED_ALIKE_MIN) & (t.digits[a] == t.digits[b])


def _agree(shared: Any, extra_a: Any, extra_b: Any, policy: MatchingPolicy) -> Any:
    """The share thresholds, for numbers or arrays alike."""
    with np.errstate(divide="ignore", invalid="ignore"):
        contained = shared / (shared + np.minimum(extra_a, extra_b))
        overlap = shared / (shared + np.maximum(extra_a, extra_b))
    return (contained >= policy.company_containment) & (overlap >= policy.company_overlap)


# A block of names sharing a distinctive token (or one typo of it) is listed pair by pair
# up to this size; a larger one is a token too common to tell companies apart.
COMPANY_BLOCK = 300


def _company_candidates(
    t: CompanyTokens, eligible: np.ndarray, side: np.ndarray | None = None
) -> pd.DataFrame:
    """Pairs (a < b) of eligible names sharing a distinctive token (x = y = -1), or
    holding two distinctive tokens x and y one keying error apart.

    Typo pairs of tokens are found among the distinct tokens, not the names: two words one
    error apart share a form with one letter deleted (the deletion neighbourhood), and
    each pair sharing one is checked with OSA distance. With ``side``, only pairs of names
    on different sides (a batch against stored names).
    """
    rows = np.flatnonzero(eligible)
    coo = t.matrix[rows].tocoo()
    owner, code = rows[coo.row], coo.col.astype(np.int64)
    keep = t.distinctive[code]
    owner, code = owner[keep], code[keep]
    ea, eb, _ = _listed_pairs(_groups(code, owner, COMPANY_BLOCK))
    parts = [pd.DataFrame({"a": ea, "b": eb, "x": -1, "y": -1})]
    used = np.unique(code).tolist()
    form_token: list[int] = []
    forms: list[str] = []
    for c in used:
        word = t.words[c]
        if len(word) >= 5 and word.isalpha():
            variants = {word, *(word[:k] + word[k + 1 :] for k in range(len(word)))}
            form_token.extend([c] * len(variants))
            forms.extend(variants)
    if forms:
        form_code = pd.factorize(pd.Series(forms, dtype="object"))[0]
        ta, tb, _ = _listed_pairs(_groups(form_code, np.asarray(form_token), COMPANY_BLOCK))
        ta, tb = np.divmod(
            pd.unique(np.minimum(ta, tb) * len(t.words) + np.maximum(ta, tb)), len(t.words)
        )
        words = np.asarray(t.words, dtype=object)
        distance = process.cpdist(
            words[ta].tolist(), words[tb].tolist(), scorer=OSA.distance, workers=-1
        )
        lengths = t.lengths[ta], t.lengths[tb]
        close = (distance <= 1) & (ta != tb) & (np.abs(lengths[0] - lengths[1]) <= 1)
        held = pd.DataFrame({"token": code, "name": owner})
        typos = pd.DataFrame({"x": ta[close], "y": tb[close]})
        typos = typos.merge(held.rename(columns={"token": "x", "name": "a"}), on="x")
        typos = typos.merge(held.rename(columns={"token": "y", "name": "b"}), on="y")
        parts.append(typos[["a", "b", "x", "y"]])
    pairs = pd.concat(parts, ignore_index=True)
    swap = pairs["a"] > pairs["b"]
    pairs.loc[swap, ["a", "b", "x", "y"]] = pairs.loc[swap, ["b", "a", "y", "x"]].to_numpy()
    pairs = pairs[pairs["a"] != pairs["b"]]
    if side is not None:
        pairs = pairs[side[pairs["a"].to_numpy()] != side[pairs["b"].to_numpy()]]
    return pairs.drop_duplicates().reset_index(drop=True)


def _agreeing_pairs(
    t: CompanyTokens, eligible: np.ndarray, policy: MatchingPolicy, side: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs whose names agree (``company_names_agree``), weighed all at
    once in sparse matrices: the equal tokens of a pair, plus its one typo pair if any."""
    pairs = _company_candidates(t, eligible, side)
    a, b = pairs["a"].to_numpy(np.int64), pairs["b"].to_numpy(np.int64)
    x, y = pairs["x"].to_numpy(np.int64), pairs["y"].to_numpy(np.int64)
    m = t.matrix
    common = m[a].multiply(m[b])
    shared = common @ t.weight
    distinctive = (common @ t.distinctive.astype(np.float64)) > 0
    total = m @ t.weight
    extra_a, extra_b = total[a] - shared, total[b] - shared
    typo = x >= 0
    # A typo pair counts only between a token of one name that the other lacks, and back.
    if typo.any():
        x_in_b = np.asarray(m[b[typo], x[typo]]).ravel()
        y_in_a = np.asarray(m[a[typo], y[typo]]).ravel()
        typo[typo] = (x_in_b == 0) & (y_in_a == 0)
    wx, wy = np.where(typo, t.weight[x], 0.0), np.where(typo, t.weight[y], 0.0)
    agree = (distinctive | typo) & _agree(
        shared + (wx + wy) / 2, extra_a - wx, extra_b - wy, policy
    )
    agree |= _keyed_alike(a, b, t)
    found = pd.unique(a[agree] * len(t.bounds) + b[agree])
    return np.divmod(found, len(t.bounds))


def free_mail_domains(frame: pd.DataFrame, policy: MatchingPolicy) -> pd.Series:
    """Per row, whether its email domain is free mail: listed as such when staged, or seen
    with ``free_mail_min_companies`` company names or more, none of which holds most of
    its rows (an internet provider's domain that the configured list does not know)."""
    listed = frame["is_free_mail"].fillna(False).astype(bool)
    seen = pd.DataFrame({"domain": frame["email_domain"], "company": frame["company_key"]})
    seen = seen[_nonnull(seen["domain"]) & _nonnull(seen["company"]) & ~listed]
    if seen.empty:
        return listed
    per = seen.value_counts()
    names = per.groupby(level="domain").size()
    top_share = per.groupby(level="domain").max() / per.groupby(level="domain").sum()
    spread = names.index[(names >= policy.free_mail_min_companies) & (top_share < 0.5)]
    return listed | frame["email_domain"].isin(set(spread)).fillna(False).astype(bool)


def _names_fit(
    names: pd.Series, a: np.ndarray, b: np.ndarray, which: np.ndarray, *, strict: bool = False
) -> np.ndarray:
    """Whether the names of pairs ``which`` selects fit each other (``names_compatible``,
    ``strict`` typos with ``strict``), each of at least two words: a lone "maria" fits
    every Maria."""
    out = np.zeros(len(a), dtype=bool)
    values = names.to_numpy(dtype=object)
    for k in np.flatnonzero(which).tolist():
        x, y = values[a[k]].split(), values[b[k]].split()
        out[k] = len(x) >= 2 and len(y) >= 2 and names_compatible(x, y, strict=strict)
    return out


def resolve_companies(
    frame: pd.DataFrame, policy: MatchingPolicy, free: pd.Series | None = None
) -> pd.Series:
    """A company cluster label per row (NA without company data).

    Clusters distinct names and tax ids: a tax id given with a name joins them; names
    join when ``company_names_agree`` (rare tokens decide, not shared industry words),
    strongest first, unless the join would bring together two different company tax ids
    or two different corporate email domains seen with the names (``_guarded_labels``):
    typos of a brand join it, a real brand one letter away with its own domain does not.
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
    uniq = pd.Series(keys[_nonnull(keys)].unique(), dtype="object")
    uniq_nodes = pos.reindex("k:" + uniq).to_numpy()
    tokens = CompanyTokens.of(uniq.to_numpy(dtype=object), policy)
    a, b = _agreeing_pairs(tokens, (uniq.str.len() >= policy.company_min_length).to_numpy(), policy)
    src.append(uniq_nodes[a])
    dst.append(uniq_nodes[b])
    forced = sum(len(s) for s in src[:1])
    # What tells two companies apart: a tax id (its own node) and the corporate domains
    # seen with a name.
    is_free = free if free is not None else frame["is_free_mail"].fillna(False).astype(bool)
    domain = frame["email_domain"].where(~is_free.to_numpy(dtype=bool))
    seen = pd.DataFrame({"node": ("k:" + keys).map(pos), "value": domain})
    seen = seen.dropna().drop_duplicates()
    tax_nodes = pos[pos.index.str.startswith("t:")].to_numpy()
    evidence = {
        "tax": (tax_nodes, tax_nodes),
        "domain": (seen["node"].to_numpy(np.int64), pd.factorize(seen["value"])[0]),
    }
    a_all, b_all = np.concatenate(src), np.concatenate(dst)
    rank = np.r_[np.zeros(forced, dtype=np.int64), np.ones(len(a_all) - forced, dtype=np.int64)]
    guards = np.where(rank == 0, 0, GUARD_TAX | GUARD_DOMAIN)
    labels = _guarded_labels(len(nodes), a_all, b_all, rank, np.zeros(len(a_all)), guards, evidence)
    label_of = pd.Series(labels, index=nodes)
    by_key = ("k:" + keys).map(label_of)
    by_tax = ("t:" + taxes).map(label_of)
    return by_tax.fillna(by_key).astype("object").where(lambda s: s.notna(), None)


def linkable_companies(
    rows: pd.DataFrame, companies: pd.DataFrame, policy: MatchingPolicy
) -> pd.DataFrame:
    """The stored ``companies`` (company_id, company_key, company_tax_id) that a company of
    ``rows`` can resolve to by ``resolve_companies``' rules: the same tax id, the same
    folded name, or a name that agrees (``company_names_agree``, token weights over the
    batch's and every stored name).

    Only the rows' names are compared with stored names, never stored with stored, so a
    small batch costs little however many companies are stored.
    """
    if companies.empty:  # a first load: nothing stored to compare with
        return companies
    companies = companies.reset_index(drop=True)
    keys = rows["company_key"].astype("object")
    taxes = rows["company_tax_id"].astype("object")
    ours = pd.Series(keys[_nonnull(keys)].unique(), dtype="object")
    stored = companies["company_key"].astype("object")
    exact = stored.isin(set(ours)) | companies["company_tax_id"].isin(set(taxes[_nonnull(taxes)]))
    has_key = _nonnull(stored).to_numpy()
    theirs = stored[has_key].to_numpy(dtype=object)
    values = np.concatenate([ours.to_numpy(dtype=object), theirs])
    side = np.r_[np.zeros(len(ours), dtype=bool), np.ones(len(theirs), dtype=bool)]
    tokens = CompanyTokens.of(values, policy)
    long_enough = pd.Series(values).str.len().to_numpy() >= policy.company_min_length
    a, b = _agreeing_pairs(tokens, long_enough, policy, side)
    found = np.r_[a[side[a]], b[side[b]]] - len(ours)
    linked = exact.to_numpy(dtype=bool, copy=True)
    linked[np.flatnonzero(has_key)[found]] = True
    return companies[linked]


GUARD_TAX = 1
GUARD_DOMAIN = 2
GUARD_ADDRESS = 4  # two addresses at one domain
GUARD_NAME = 8  # two names neither of which holds the other's words


def _name_typo(x: str, y: str, *, strict: bool = False) -> bool:
    """One keying error apart, in a name word ("jse" for "jose", "gmes" for "gomes"): names
    are compared only within one company, phone or address, where a letter tells fewer
    people apart than among all company names.

    ``strict``, for names that nothing but a company links: words of five letters or more
    with the same first letter, since short names one letter apart ("lina", "lino") and
    names differing in their first ("celiana", "neliana") are usually two names."""
    if min(len(x), len(y)) < 3 or max(len(x), len(y)) < 4 or abs(len(x) - len(y)) > 1:
        return False
    if strict and (min(len(x), len(y)) < 5 or x[0] != y[0]):
        return False
    return bool(OSA.distance(x, y, score_cutoff=1) <= 1)


def names_compatible(x: list[str], y: list[str], *, strict: bool = False) -> bool:
    """Whether two folded names can be one person's: every word of the shorter is a word
    of the longer (equal or one typo apart, ``_name_typo``), each used once. "luis
    nogueira" fits "luis carvalho nogueira" and "luis nogueira vaz"; those two do not fit
    each other.

    A space dropped or mistyped makes one word of two ("mourasilva", "rosadonsilva" for
    "moura silva", "rosado silva"): two words of either name, joined in either order, may
    stand for one word of the other."""
    if _words_fit(x, y, strict):
        return True
    # Only worth trying when a word of one starts or ends with a word of the other.
    if not any(
        len(w) > len(v) + 2 and (w.startswith(v) or w.endswith(v))
        for a, b in ((x, y), (y, x))
        for w in a
        for v in b
    ):
        return False
    for joined, other in ((x, y), (y, x)):
        for i, j in permutations(range(len(joined)), 2):
            fewer = [w for k, w in enumerate(joined) if k not in (i, j)]
            if _words_fit([*fewer, joined[i] + joined[j]], other, strict):
                return True
    return False


def _words_fit(x: list[str], y: list[str], strict: bool) -> bool:
    """``names_compatible`` without joined words."""
    short, long = (x, y) if len(x) <= len(y) else (y, x)
    rest = list(long)
    for word in short:
        hit = next((w for w in rest if w == word), None)
        if hit is None:
            hit = next((w for w in rest if _name_typo(w, word, strict=strict)), None)
        if hit is None:
            return False
        rest.remove(hit)
    return True


@dataclass(frozen=True)
class NameEvidence:
    """The folded name of each row that has one, as codes into ``keys``."""

    nodes: np.ndarray
    codes: np.ndarray
    keys: np.ndarray  # folded name per code

    def words(self, code: int, cache: dict[int, list[str]]) -> list[str]:
        if code not in cache:
            cache[code] = str(self.keys[code]).split()
        return cache[code]


def _name_conflicts(
    labels: np.ndarray, names: NameEvidence, cache: dict[int, list[str]]
) -> np.ndarray:
    """The components holding a name that does not fit their longest name."""
    held = pd.DataFrame({"c": labels[names.nodes], "code": names.codes}).drop_duplicates()
    keys = pd.Series(names.keys, dtype="object")
    held["words"] = keys.str.count(" ").to_numpy()[held["code"].to_numpy()]
    held["chars"] = keys.str.len().to_numpy()[held["code"].to_numpy()]
    held = held.sort_values(["c", "words", "chars"], ascending=[True, False, False])
    anchor = held.groupby("c")["code"].transform("first").to_numpy()
    other = held["code"].to_numpy() != anchor
    out = np.zeros(int(labels.max(initial=-1)) + 1, dtype=bool)
    for c, code, top in zip(
        held["c"].to_numpy()[other].tolist(),
        held["code"].to_numpy()[other].tolist(),
        anchor[other].tolist(),
        strict=True,
    ):
        if not out[c] and not names_compatible(names.words(code, cache), names.words(top, cache)):
            out[c] = True
    return out


def _guarded_labels(
    n: int,
    a: np.ndarray,
    b: np.ndarray,
    rank: np.ndarray,
    score: np.ndarray,
    guards: np.ndarray,
    evidence: dict[str, tuple[np.ndarray, np.ndarray]],
    address_domain: np.ndarray | None = None,
    names: NameEvidence | None = None,
) -> np.ndarray:
    """Connected components of the links (a, b), except that a link whose ``guards`` bit
    for an evidence kind is set never joins two groups each holding a value of that kind
    the other lacks (two tax ids, two corporate domains; ``address``: two addresses at one
    domain), nor (``GUARD_NAME``) two groups whose longest names do not fit each other.
    Links are taken strongest first (``rank``, then ``score``).

    A plain closure chains: a row links to a homonym who links to a third. Guarding the
    closure, not only the pairs, stops the chain at the first link that would join two
    groups the evidence tells apart. Only components whose plain closure holds two values
    of a kind (or a name that does not fit its longest) are walked link by link, in
    Python; the rest keep their plain labels.
    """
    labels = _components(n, a, b)
    cache: dict[int, list[str]] = {}
    conflicted = np.zeros(int(labels.max(initial=-1)) + 1, dtype=bool)
    for nodes, values in evidence.values():
        if len(nodes):
            held = pd.DataFrame({"c": labels[nodes], "v": values}).drop_duplicates()
            counts = held["c"].value_counts()
            conflicted[counts.index[counts.to_numpy() >= 2].to_numpy()] = True
    if names is not None and len(names.nodes):
        conflicted |= _name_conflicts(labels, names, cache)
    if not conflicted.any():
        return labels
    inside = conflicted[labels[a]]
    order = np.lexsort((-score[inside], rank[inside]))
    ea, eb, eg = a[inside][order], b[inside][order], guards[inside][order]
    members = np.flatnonzero(conflicted[labels])
    held_by: dict[int, dict[str, set[int]]] = {int(v): {} for v in members}
    for kind, (nodes, values) in evidence.items():
        keep = conflicted[labels[nodes]]
        for node, value in zip(nodes[keep].tolist(), values[keep].tolist(), strict=True):
            held_by[node].setdefault(kind, set()).add(value)
    anchor: dict[int, int] = {}
    if names is not None:
        keep = conflicted[labels[names.nodes]]
        anchor = dict(zip(names.nodes[keep].tolist(), names.codes[keep].tolist(), strict=True))
    parent = {int(v): int(v) for v in members}

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def clash(kind: str, x: set[int], y: set[int]) -> bool:
        if kind == "address" and address_domain is not None:
            # Different addresses at one domain are two people; at two domains, a move.
            return bool({address_domain[v] for v in x - y} & {address_domain[v] for v in y - x})
        return bool(x - y) and bool(y - x)

    def longer(u: int, v: int) -> int:
        assert names is not None
        return u if len(names.words(u, cache)) >= len(names.words(v, cache)) else v

    bits = {"tax": GUARD_TAX, "domain": GUARD_DOMAIN, "address": GUARD_ADDRESS}
    for x, y, g in zip(ea.tolist(), eb.tolist(), eg.tolist(), strict=True):
        rx, ry = root(x), root(y)
        if rx == ry:
            continue
        hx, hy = held_by[rx], held_by[ry]
        if any(
            g & bits[kind] and clash(kind, hx[kind], hy[kind]) for kind in hx.keys() & hy.keys()
        ):
            continue
        ax, ay = anchor.get(rx), anchor.get(ry)
        both = ax is not None and ay is not None and ax != ay
        if (
            both
            and g & GUARD_NAME
            and names is not None
            and not names_compatible(names.words(ax, cache), names.words(ay, cache))  # type: ignore[arg-type]
        ):
            continue
        parent[ry] = rx
        for kind, joined in hy.items():
            hx.setdefault(kind, set()).update(joined)
        del held_by[ry]
        if both:
            anchor[rx] = longer(ax, ay)  # type: ignore[arg-type]
        elif ay is not None:
            anchor[rx] = ay
    out = labels.copy()
    roots = np.array([root(int(v)) for v in members], dtype=np.int64)
    out[members] = len(conflicted) + roots
    return out


def _components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def companies_by_evidence(frame: pd.DataFrame, org: pd.Series) -> pd.Series:
    """``org`` with a company for rows that name none, from their corporate email domain
    or their phone: the company that most rows holding that domain (or phone) and naming
    a company name, if it is more than half of them.

    A badge without a company field still says where its holder works through a work
    address (helena.gomes@cortragengen.pt) or the switchboard's number, so the same
    person's other badges, which name the company, are within reach of the name rules.
    Rows that name a company keep it: a job change leaves the mobile behind.
    """
    out = org.reset_index(drop=True).copy()
    domain = _corporate_domains(frame)
    for keys in (domain, frame["phone"].reset_index(drop=True)):
        missing = out.isna() & _nonnull(keys)
        if missing.any():
            out[missing] = keys[missing].map(_mostly(keys, out))
    # A domain no badge names a company with may still be the brand's own
    # (cortragengen.pt, "Cortragengen Soluções Informáticas"): its first label against the
    # first word of the company names.
    missing = out.isna() & _nonnull(domain)
    if missing.any():
        label = _first(domain[missing], r"\..*$")
        label = label.where(label.str.len() >= DOMAIN_LABEL_MIN)
        brand = _first(frame["company_key"].reset_index(drop=True), " .*$")
        out[missing] = label.map(_mostly(brand, out))
    return out.where(out.notna(), None)


# A domain's first label names a brand from this length on (shorter ones are initials).
DOMAIN_LABEL_MIN = 5


def _first(values: pd.Series, rest: str) -> pd.Series:
    """Each value without the part that the regular expression ``rest`` matches."""
    text = pa.array(values.astype("object").where(_nonnull(values), None), type=pa.large_string())
    return pd.Series(
        pc.replace_substring_regex(text, rest, "").to_numpy(zero_copy_only=False),
        index=values.index,
        dtype="object",
    )


def _corporate_domains(frame: pd.DataFrame) -> pd.Series:
    free = frame["is_free_mail"].fillna(False).astype(bool).to_numpy()
    return frame["email_domain"].astype("object").where(~free).reset_index(drop=True)


def _mostly(keys: pd.Series, values: pd.Series) -> pd.Series:
    """Per key, the value that more than half of the rows holding both hold."""
    held = (_nonnull(keys) & _nonnull(values)).to_numpy()
    key_codes, key_values = pd.factorize(keys[held])
    value_codes, value_values = pd.factorize(values[held])
    width = max(len(value_values), 1)
    pairs, counts = np.unique(key_codes.astype(np.int64) * width + value_codes, return_counts=True)
    key, value = np.divmod(pairs, width)
    total = np.bincount(key, weights=counts, minlength=len(key_values))
    order = np.lexsort((-counts, key))
    top = order[np.r_[True, key[order][1:] != key[order][:-1]]] if len(order) else order
    top = top[counts[top] > total[key[top]] / 2]
    return pd.Series(
        np.asarray(value_values, dtype=object)[value[top]],
        index=np.asarray(key_values, dtype=object)[key[top]],
        dtype="object",
    )


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
    role = role_mailbox(frame["email"], policy).to_numpy()[a]
    # A shared mailbox is not a person: names on it must agree as on a shared phone.
    need = np.where(role, policy.phone_name_threshold, policy.email_name_conflict)
    # A typo in a shortened name ("jaoo jesus", "joao odimiro jesus") scores low and still
    # fits: on a person's own address that is the person.
    keep = (sim < 0) | (sim >= need) | _names_fit(names, a, b, ~role & (sim >= 0) & (sim < need))
    add("email", a[keep], b[keep], np.where(sim[keep] < 0, 100.0, sim[keep]))
    has_name = _nonnull(names)
    # The star above compares each row with the first on the address or phone only; rows
    # with the same name on it are one person whoever came first.
    add("email", *_exact_pairs(_joined(frame["email"], names).where(has_name)))
    add("tax_id", *_exact_pairs(frame["person_tax_id"]))
    add(
        "name_company",
        *_exact_pairs(_joined(names, org).where(has_name & org.notna())),
    )
    corporate = frame["email_domain"].where(~frame["is_free_mail"].fillna(False).astype(bool))
    add("name_domain", *_exact_pairs(_joined(names, corporate).where(has_name)))
    emails = frame["email"].to_numpy(dtype=object)
    company_code = pd.factorize(org)[0]
    domain_code = pd.factorize(frame["email_domain"])[0]
    # A shared mailbox is nobody's own address: it tells no two people apart.
    free = (
        frame["is_free_mail"].fillna(False).astype(bool) | role_mailbox(frame["email"], policy)
    ).to_numpy()

    def work_email_conflict(a: np.ndarray, b: np.ndarray, *, moves: bool = False) -> np.ndarray:
        """Two different work addresses mean two people (the near-miss), whatever the names;
        with ``moves``, not when the rows are at two companies, each with its own domain:
        that is a job change."""
        differ = np.array(
            [
                isinstance(x, str) and isinstance(y, str) and x != y
                for x, y in zip(emails[a], emails[b], strict=True)
            ],
            dtype=bool,
        )
        if moves:
            ca, cb = company_code[a], company_code[b]
            other_company = (ca >= 0) & (cb >= 0) & (ca != cb)
            differ &= ~(other_company & (domain_code[a] != domain_code[b]))
        return differ & ~free[a] & ~free[b]

    a, b = _exact_pairs(frame["phone"])
    sim = _name_similarity(names, a, b)
    # A name shortened on one badge ("Carlos Moreira", "Carlos Gusmão Moreira") is below
    # any threshold and still fits the other (names_compatible); the closure's name guard
    # keeps a switchboard from gathering several such people.
    fits = _names_fit(names, a, b, (sim >= 0) & (sim < policy.phone_name_threshold))
    # A job change keeps the mobile: work addresses at two companies do not tell its
    # holders apart, two at one company do (a switchboard's colleagues).
    keep = (sim < 0) | (
        ((sim >= policy.phone_name_threshold) | fits)
        & ((sim == 100) | ~work_email_conflict(a, b, moves=True))
    )
    add("phone_name", a[keep], b[keep], np.where(sim[keep] < 0, 100.0, sim[keep]))
    add("phone_name", *_exact_pairs(_joined(frame["phone"], names).where(has_name)))

    # Fuzzy names only inside one company (or one corporate domain): typos and middle names
    # of the same person, never two people who merely share a surname elsewhere.
    block_keys = org.astype("object").where(org.notna(), "d:" + corporate.astype("object"))
    tokens = names.str.count(" ").fillna(0).to_numpy() + 1
    # token_set lets "maria lima" match "maria souza lima" (a dropped middle name)...
    blocks = _blocks(block_keys.where(has_name), policy.max_block_size)
    ga, gb, scores = _token_set_pairs(
        names, blocks, min(policy.name_threshold, policy.name_fit_threshold)
    )
    # Below the threshold, a pair links only if its names fit each other: a typo and a
    # dropped middle name together ("nelene ferreira", "nelene maria ferrenra").
    low = scores < policy.name_threshold
    if low.any():
        keep = ~low | _names_fit(names, ga, gb, low, strict=True)
        ga, gb, scores = ga[keep], gb[keep], scores[keep]
    # ...but a lone "maria" is a subset of every Maria: single tokens need the whole name.
    single = (tokens[ga] < 2) | (tokens[gb] < 2)
    if single.any():
        whole = _name_similarity(names, ga[single], gb[single]) >= policy.name_threshold
        keep = ~single
        keep[np.flatnonzero(single)[whole]] = True
        ga, gb, scores = ga[keep], gb[keep], scores[keep]
    conflict = work_email_conflict(ga, gb)
    add("fuzzy_name_company", ga[~conflict], gb[~conflict], scores[~conflict])
    # A name that hardly anyone else could carry is its holder's wherever it is seen: a
    # badge that shows no company, or one at a firm without its own domain. Two corporate
    # domains or two personal tax ids still keep its holders apart (RULE_GUARDS).
    if has_name.sum() >= policy.rare_name_min_names:
        rare = (tokens >= 2) & (expected_namesakes(names) <= policy.rare_name_max_namesakes)
        add("rare_name", *_exact_pairs(_joined(names, frame["country"]).where(rare)))
    if not parts["a"]:
        return pd.DataFrame({"a": [], "b": [], "rule": [], "score": []})
    edges = pd.DataFrame({k: np.concatenate(v) for k, v in parts.items()})
    edges["rule"] = edges["rule"].map(RULE_NAMES)
    return edges


# Which evidence each rule's links must not contradict (see _guarded_labels): a stored
# contact's own lines and a shared personal tax id are the person; everything else is
# evidence that two groups of rows could still be two people.
RULE_GUARDS = {
    "contact": 0,
    "email": GUARD_TAX,
    "tax_id": 0,
    "phone_name": GUARD_TAX | GUARD_ADDRESS | GUARD_NAME,
    "name_company": GUARD_TAX | GUARD_DOMAIN | GUARD_ADDRESS | GUARD_NAME,
    "name_domain": GUARD_TAX | GUARD_DOMAIN | GUARD_ADDRESS | GUARD_NAME,
    "fuzzy_name_company": GUARD_TAX | GUARD_DOMAIN | GUARD_ADDRESS | GUARD_NAME,
    "rare_name": GUARD_TAX | GUARD_DOMAIN | GUARD_ADDRESS | GUARD_NAME,
}


def role_mailbox(emails: pd.Series, policy: MatchingPolicy) -> pd.Series:
    """Whether each address is a shared mailbox by its local part (info@, compras@)."""
    text = pa.array(emails.astype("string").array, type=pa.large_string())
    local = pc.replace_substring_regex(text, "@.*$", "")
    roles = pa.array(sorted(set(policy.role_mailboxes)), type=pa.large_string())
    return pd.Series(
        pc.fill_null(pc.is_in(local, roles), False).to_numpy(zero_copy_only=False),
        index=emails.index,
    )


def person_labels(
    frame: pd.DataFrame,
    links: pd.DataFrame,
    policy: MatchingPolicy,
    org: pd.Series | None = None,
) -> np.ndarray:
    """A person label per row of ``frame``: the closure of ``links``, guarded so that no
    chain of links joins two personal tax ids, two corporate email domains (unless a
    personal identifier links them directly: a move to another company) or two work
    addresses at one domain.

    A work address shared by rows whose names disagree is a shared mailbox (compras@,
    info@), not evidence of a person, and is left out. A row without a corporate domain
    at a company (``org``) whose rows mostly write one holds that domain: a badge at the
    old company, without an address, is the old company's, so a person who moved is not
    stays one domain apart from a namesake elsewhere, not from their own later badges.
    """
    free = frame["is_free_mail"].fillna(False).astype(bool).to_numpy()
    email = frame["email"].astype("object").where(~free)
    a, b = _exact_pairs(email)
    sim = _name_similarity(frame["name_key"], a, b)
    low = (sim >= 0) & (sim < policy.email_name_conflict)
    low &= ~_names_fit(frame["name_key"], a, b, low)
    shared = set(email.to_numpy()[a[low]])
    email = email.where(~email.isin(shared) & ~role_mailbox(email, policy))
    domain = frame["email_domain"].astype("object").where(~free)
    if org is not None:
        org = org.reset_index(drop=True)
        domain = domain.reset_index(drop=True)
        missing = ~_nonnull(domain) & org.notna()
        domain[missing] = org[missing].map(_mostly(org, domain))
        domain.index = frame.index
    evidence: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for kind, values in (("tax", frame["person_tax_id"]), ("domain", domain), ("address", email)):
        held = _nonnull(values).to_numpy()
        evidence[kind] = (np.flatnonzero(held), pd.factorize(values[held])[0])
    held = _nonnull(email).to_numpy()
    address_codes, addresses = pd.factorize(email[held])
    domain_codes = pd.factorize(np.array([a.rpartition("@")[2] for a in addresses], dtype=object))[
        0
    ]
    evidence["address"] = (np.flatnonzero(held), address_codes)
    held = _nonnull(frame["name_key"]).to_numpy()
    name_codes, name_keys = pd.factorize(frame["name_key"].astype("object")[held])
    names = NameEvidence(np.flatnonzero(held), name_codes, np.asarray(name_keys, dtype=object))
    rule = links["rule"].to_numpy()
    return _guarded_labels(
        len(frame),
        links["a"].to_numpy(np.int64),
        links["b"].to_numpy(np.int64),
        pd.Series(rule).map(RULES).to_numpy(np.int64),
        links["score"].to_numpy(float),
        pd.Series(rule).map(RULE_GUARDS).to_numpy(np.int64),
        evidence,
        domain_codes,
        names,
    )


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
    frame["is_free_mail"] = free_mail_domains(frame, policy)
    org = resolve_companies(frame, policy)
    at = companies_by_evidence(frame, org)
    links = link_rows(frame, at, policy)
    labels = person_labels(frame, links, policy, at)
    links = links[labels[links["a"].to_numpy(np.int64)] == labels[links["b"].to_numpy(np.int64)]]

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
