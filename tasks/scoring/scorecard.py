"""Reliability score, band and reason codes for a batch of contacts, vectorised.

Two steps, both pure: :func:`factor_levels` turns raw contact columns into one small
integer per factor (which level of the scorecard the contact lands on, 0 = input absent),
and :func:`score_levels` turns those levels into points, a 0-100 score, a band and the
reasons. The split lets calibration fit a model on the same levels the scorecard uses, so
a learned model explains itself with the same reason codes.

Nothing here loops over rows: string work runs once per distinct value (job titles,
domains, company names repeat a lot) and the rest is numpy over whole columns.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import phonenumbers
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist

from config.scoring_policy import (
    ABSENT,
    BANDS,
    FACTOR_LEVELS,
    FACTORS,
    ScoringPolicy,
    reason_code,
)
from tasks.common import tax_ids

InputKind = Literal["id", "text", "flag", "number", "time"]
# The scoring inputs and how each is held (text as str, numbers as float64 with NaN for
# "unknown", times as UTC-naive datetime64): the one declaration that INPUT_COLUMNS and
# tasks.scoring.pipeline's canonical dtypes both read.
INPUTS: dict[str, InputKind] = {
    "contact_id": "id",
    "email": "text",
    "email_domain": "text",
    "is_free_mail": "flag",
    "phone": "text",
    "country": "text",
    "company_name": "text",
    "company_tax_id": "text",
    "person_tax_id": "text",
    "job_title": "text",
    "lead_rating": "text",
    "created_at": "time",
    "updated_at": "time",
    "replies": "number",
    "opens": "number",
    "complaints_total": "number",
    "complaints_critical": "number",
    "obligations_missed": "number",
    "payment_delays": "number",
    "registry_status": "text",
    "registry_founded": "time",
    "registry_size": "text",
}
INPUT_COLUMNS: tuple[str, ...] = tuple(INPUTS)


def inputs_of(kind: InputKind) -> tuple[str, ...]:
    """The input columns of one kind, in INPUT_COLUMNS order."""
    return tuple(name for name, k in INPUTS.items() if k == kind)


OUTPUT_COLUMNS: tuple[str, ...] = (
    "contact_id",
    "score",
    "band",
    "scorecard_version",
    "as_of",
    "reason_codes",
    "reasons",
    "skipped_codes",
)

Levels = npt.NDArray[np.int8]

# Domain labels that are registry plumbing, not a name: acme.com.br -> "acme".
_SECOND_LEVEL = frozenset({"com", "co", "org", "net", "gov", "edu", "ind", "gob", "ac", "adv"})
_LEGAL_SUFFIXES = re.compile(
    r"\b(ltda|lda|s\.?a|sa|s\.?l|sl|slu|me|epp|eireli|mei|inc|llc|ltd|gmbh|co|cia|"
    r"corp|company|companhia|group|grupo|holding|do|da|de|dos|das|del|y|e|and|the)\b"
)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_STARS = re.compile(r"^\s*([0-5])\s*(?:/\s*5|stars?|estrelas?|estrellas?)?\s*$")


# ---------------------------------------------------------------- column helpers


class Coded:
    """A text column as integer codes into its distinct values (-1 = null or blank).

    Every string factor works on ``uniques`` (a few thousand job titles, not a million
    rows) and spreads its answer back with one ``take``; factorising each column once
    and sharing it between factors is most of what keeps scoring fast.
    """

    def __init__(self, codes: npt.ArrayLike, uniques: pd.Series) -> None:
        self.codes: npt.NDArray[np.intp] = np.asarray(codes, dtype=np.intp)
        self.uniques: pd.Series = uniques

    @classmethod
    def of(cls, series: pd.Series) -> Coded:
        # Factorise the Series itself: pandas' string dtypes do it natively, while going
        # through an object array first costs more than the factorising.
        codes, uniques = pd.factorize(series)
        values = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
        blank = values.astype(str).str.strip().eq("").to_numpy(dtype=bool)
        if blank.any():
            remap = np.where(blank, -1, np.arange(len(values)))
            codes = np.where(codes >= 0, remap[codes], -1)
        return cls(codes, values)

    @property
    def present(self) -> npt.NDArray[np.bool_]:
        return self.codes >= 0

    def spread(self, per_unique: npt.ArrayLike, absent: object = 0) -> npt.NDArray[Any]:
        """Per-row values from one value per distinct entry; null rows get ``absent``."""
        table = np.asarray(per_unique)
        table = np.append(table, np.asarray([absent], dtype=table.dtype))
        return table[self.codes]  # code -1 picks the appended ``absent``


class _Columns:
    """Lazily coded input columns, each computed once per scoring call."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self._coded: dict[str, Coded] = {}

    def raw(self, name: str) -> pd.Series:
        if name in self.df.columns:
            return self.df[name]
        return pd.Series(np.full(len(self.df), None, dtype=object), index=self.df.index)

    def coded(self, name: str) -> Coded:
        if name not in self._coded:
            self._coded[name] = Coded.of(self.raw(name))
        return self._coded[name]


def fold(series: pd.Series) -> pd.Series:
    """Lower-case ASCII without accents: 'Diretora Comercial' and 'diretora comercial' match."""
    return series.astype(str).map(
        lambda v: (
            unicodedata.normalize("NFKD", v)
            .encode("ascii", "ignore")
            .decode("ascii")
            .lower()
            .strip()
        )
    )


def _number(series: pd.Series) -> npt.NDArray[np.float64]:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _timestamps(series: pd.Series) -> npt.NDArray[np.datetime64]:
    """UTC-naive microsecond timestamps; strings are parsed as ISO 8601 (slow path)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(series.dtype):
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
        series = parsed.dt.tz_localize(None)
    return series.to_numpy(dtype="datetime64[us]")


def _as_of_naive(as_of: datetime) -> np.datetime64:
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    return np.datetime64(as_of, "us")


def _days_since(
    stamps: npt.NDArray[np.datetime64], as_of: np.datetime64
) -> npt.NDArray[np.float64]:
    """Days from each stamp to ``as_of`` (NaT gives NaN; callers test isnat first)."""
    delta = (as_of - stamps).astype("timedelta64[s]")
    return np.where(np.isnat(delta), np.nan, delta.astype(np.int64) / 86400.0)


def _keyword_regex(words: Iterable[str]) -> re.Pattern[str]:
    """Whole-word alternation, longest first so 'vice president' wins over 'president'."""
    alternatives = sorted({re.escape(w.strip().lower()) for w in words if w.strip()}, key=len)
    return re.compile(r"\b(?:" + "|".join(reversed(alternatives)) + r")\b")


# ---------------------------------------------------------------- factors


def _tax_id_levels(cols: _Columns) -> Levels:
    country = cols.raw("country")
    company = tax_ids.validate_tax_ids(cols.raw("company_tax_id"), country)
    person = tax_ids.validate_tax_ids(cols.raw("person_tax_id"), country)
    # A valid company id outranks a valid personal one; an invalid id counts against the
    # contact only when no id at all checks out.
    invalid = (company == tax_ids.INVALID) | (person == tax_ids.INVALID)
    return np.select(
        [company == tax_ids.VALID, person == tax_ids.VALID, invalid], [1, 2, 3], 0
    ).astype(np.int8)


def _domains(cols: _Columns) -> Coded:
    """Email domains, from ``email_domain`` or else the part of ``email`` after the @."""
    domain = cols.coded("email_domain")
    missing = ~domain.present
    if "email" not in cols.df.columns or not missing.any():
        return domain
    email = cols.raw("email")[missing].astype(object)
    derived = email.str.extract(r"@([^@\s]+)$", expand=False)
    extra = Coded.of(derived)
    # A domain seen in both sources gets two codes; every consumer works per distinct
    # value, so that costs one extra classification, not a wrong answer.
    codes = domain.codes.copy()
    codes[missing] = np.where(extra.codes >= 0, extra.codes + len(domain.uniques), -1)
    return Coded(codes, pd.concat([domain.uniques, extra.uniques], ignore_index=True))


def _email_domain_levels(domain: Coded, cols: _Columns, policy: ScoringPolicy) -> Levels:
    d = domain.uniques.astype(str).str.strip().str.lower()
    per_unique = np.select(
        [d.isin(set(policy.disposable_domains)), d.isin(set(policy.free_mail_domains))],
        [3, 2],
        1,
    ).astype(np.int8)
    levels = domain.spread(per_unique)
    flag = cols.raw("is_free_mail")
    flagged = (
        flag.to_numpy(dtype=bool)
        if pd.api.types.is_bool_dtype(flag.dtype)
        else flag.to_numpy(dtype=object) == True  # noqa: E712  (object column: True, not truthy)
    )
    return np.where(flagged & (levels == 1), np.int8(2), levels).astype(np.int8)


def _phone_present_and_head(cols: _Columns) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.str_]]:
    phone = cols.raw("phone")
    present = phone.notna().to_numpy()
    # Five characters hold "+" and any calling code (at most 3 digits) plus a spare.
    if isinstance(phone.array, pd.arrays.ArrowStringArray):
        # Arrow slices in C++; the few distinct heads then become fixed-width strings.
        heads = Coded.of(phone.str.slice(0, 5))
        head = heads.spread(heads.uniques.to_numpy(dtype=str).astype("U5"), absent="")
    else:
        head = np.where(present, phone.to_numpy(dtype=object), "").astype("U5")
    return present & (head != ""), head


def _completeness_levels(
    cols: _Columns, domain: Coded, phone_present: npt.NDArray[np.bool_]
) -> Levels:
    tax_present = (
        cols.raw("company_tax_id").notna().to_numpy() | cols.raw("person_tax_id").notna().to_numpy()
    )
    count = (
        domain.present.astype(np.int8)
        + phone_present
        + cols.coded("country").present
        + cols.coded("company_name").present
        + tax_present
        + cols.coded("job_title").present
    )
    return np.select([count == 6, count >= 4], [1, 2], 3).astype(np.int8)


def _phone_country_levels(cols: _Columns, head: npt.NDArray[np.str_]) -> Levels:
    """Compare the phone's E.164 calling code with the stated country's.

    Calling codes are prefix-free (ITU-T E.164), so "starts with +<code>" is exact. A
    shared code (+1 for US/CA and the Caribbean) counts as a match: phonenumbers cannot
    tell those regions apart without the full number plan, and it is not a red flag.
    """
    country = cols.coded("country")
    prefixes = [
        phonenumbers.country_code_for_region(str(cc).strip().upper()) for cc in country.uniques
    ]
    table = np.array([f"+{code}" if code else "" for code in prefixes], dtype="U5")
    expected = country.spread(table, absent="")
    known = (expected != "") & np.strings.startswith(head, "+")
    match = np.strings.startswith(head, expected)
    return np.select([known & match, known], [1, 2], 0).astype(np.int8)


def _domain_label(domain: str) -> str:
    """acme.com.br -> acme; mail.acme.pt -> acme."""
    parts = domain.lower().strip().strip(".").split(".")[:-1]
    while parts and parts[-1] in _SECOND_LEVEL:
        parts.pop()
    return parts[-1] if parts else ""


def _company_keys(names: pd.Series) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """Compact name without legal suffixes, and its initials ("Banco do Brasil" -> "bb")."""
    words = fold(names).str.replace(_NON_ALNUM, " ", regex=True)
    stripped = words.str.replace(_LEGAL_SUFFIXES, " ", regex=True)
    compact = stripped.str.replace(" ", "")
    initials = stripped.str.split().map(lambda ws: "".join(w[0] for w in ws))
    return compact.to_numpy(dtype=object), initials.to_numpy(dtype=object)


def _domain_company_levels(
    domain: Coded, email_levels: Levels, cols: _Columns, policy: ScoringPolicy
) -> Levels:
    company = cols.coded("company_name")
    usable = (email_levels == 1) & company.present
    out = np.zeros(len(email_levels), dtype=np.int8)
    if not usable.any():
        return out
    width = len(company.uniques)
    pair = domain.codes[usable].astype(np.int64) * width + company.codes[usable]
    p_codes, p_uniques = pd.factorize(pair)
    labels = np.array([_domain_label(str(d)) for d in domain.uniques], dtype=object)
    compact, initials = _company_keys(company.uniques)
    pair_label = labels[p_uniques // width]
    pair_compact = compact[p_uniques % width]
    # partial_ratio finds the label inside the name (or the name inside the label); labels
    # under 3 letters only count on an exact initials match, or "ab" would match anything.
    similarity = cpdist(
        pair_label.tolist(), pair_compact.tolist(), scorer=fuzz.partial_ratio, workers=-1
    )
    long_enough = np.array([len(x) >= 3 for x in pair_label], dtype=bool)
    matched = ((similarity >= policy.thresholds.domain_company_min_similarity) & long_enough) | (
        pair_label == initials[p_uniques % width]
    )
    matched &= pair_label != ""
    out[usable] = np.where(matched, 1, 2).astype(np.int8)[p_codes]
    return out


def job_levels(titles: pd.Series, policy: ScoringPolicy) -> npt.NDArray[np.int8]:
    """Seniority level per title (1 executive, 2 manager, 3 staff, 4 other); titles distinct."""
    text = fold(titles).str.replace(_NON_ALNUM, " ", regex=True)
    patterns = [
        _keyword_regex(policy.seniority_keywords.get(level, []))
        for level in ("executive", "manager", "staff")
    ]
    conditions = [text.str.contains(p).to_numpy(dtype=bool) for p in patterns]
    return np.select(conditions, [1, 2, 3], 4).astype(np.int8)


def _seniority_levels(cols: _Columns, policy: ScoringPolicy) -> Levels:
    titles = cols.coded("job_title")
    return titles.spread(job_levels(titles.uniques, policy)).astype(np.int8)


def _lead_rating_levels(cols: _Columns, policy: ScoringPolicy) -> Levels:
    order = {level: i + 1 for i, level in enumerate(FACTOR_LEVELS["lead_rating"])}
    aliases = {k.strip().lower(): order[v] for k, v in policy.lead_rating.aliases.items()}
    stars = {k: order[v] for k, v in policy.lead_rating.stars.items()}

    def one(text: str) -> int:
        if text in aliases:
            return aliases[text]
        star_count = text.count("★") + text.count("*")
        if star_count and not text.strip("★* "):
            return stars.get(star_count, 0)
        found = _STARS.match(text)
        return stars.get(int(found.group(1)), 0) if found else 0

    ratings = cols.coded("lead_rating")
    # fold() would drop the ★ character, so only lower-case here.
    per_unique = [one(str(v).strip().lower()) for v in ratings.uniques]
    folded = fold(ratings.uniques)
    per_unique = [p or aliases.get(f, 0) for p, f in zip(per_unique, folded, strict=True)]
    return ratings.spread(np.array(per_unique, dtype=np.int8)).astype(np.int8)


def _engagement_levels(cols: _Columns) -> Levels:
    replies, opens = _number(cols.raw("replies")), _number(cols.raw("opens"))
    unknown = np.isnan(replies) & np.isnan(opens)
    return np.select([unknown, replies > 0, opens > 0], [0, 1, 2], 3).astype(np.int8)


def _complaint_levels(cols: _Columns, policy: ScoringPolicy) -> Levels:
    total = _number(cols.raw("complaints_total"))
    critical = _number(cols.raw("complaints_critical"))
    severe = (critical > 0) | (total >= policy.thresholds.critical_complaints_total)
    unknown = np.isnan(total) & np.isnan(critical)
    return np.select([unknown, severe, total > 0], [0, 3, 2], 1).astype(np.int8)


def _obligation_levels(cols: _Columns) -> Levels:
    missed = _number(cols.raw("obligations_missed"))
    delays = _number(cols.raw("payment_delays"))
    unknown = np.isnan(missed) & np.isnan(delays)
    return np.select([unknown, missed > 0, delays > 0], [0, 3, 2], 1).astype(np.int8)


def _data_age_levels(cols: _Columns, as_of: np.datetime64, policy: ScoringPolicy) -> Levels:
    updated = _timestamps(cols.raw("updated_at"))
    stamp = np.where(np.isnat(updated), _timestamps(cols.raw("created_at")), updated)
    age_days = _days_since(stamp, as_of)
    t = policy.thresholds
    return np.select(
        [np.isnat(stamp), age_days <= t.fresh_max_days, age_days <= t.aging_max_days],
        [0, 1, 2],
        3,
    ).astype(np.int8)


def _registry_status_levels(cols: _Columns, policy: ScoringPolicy) -> Levels:
    status = cols.coded("registry_status")
    s = fold(status.uniques)
    active = {x.lower() for x in policy.registry.active_statuses}
    inactive = {x.lower() for x in policy.registry.inactive_statuses}
    per_unique = np.select([s.isin(active), s.isin(inactive)], [1, 2], 0).astype(np.int8)
    return status.spread(per_unique).astype(np.int8)


def _company_age_levels(cols: _Columns, as_of: np.datetime64, policy: ScoringPolicy) -> Levels:
    founded = _timestamps(cols.raw("registry_founded"))
    years = _days_since(founded, as_of) / 365.25
    t = policy.thresholds
    return np.select(
        [np.isnat(founded), years >= t.established_min_years, years >= t.young_min_years],
        [0, 1, 2],
        3,
    ).astype(np.int8)


def size_levels(sizes: pd.Series, policy: ScoringPolicy) -> npt.NDArray[np.int8]:
    """Size level per value: an employee count, or a named class (EPP, pequena, large)."""
    order = {level: i + 1 for i, level in enumerate(FACTOR_LEVELS["company_size"])}
    aliases = {k.strip().lower(): order[v] for k, v in policy.registry.size_aliases.items()}
    t = policy.thresholds
    employees = _number(sizes)
    by_count = np.select(
        [
            np.isnan(employees),
            employees >= t.large_min_employees,
            employees >= t.medium_min_employees,
            employees >= t.small_min_employees,
        ],
        [0, 1, 2, 3],
        4,
    )
    by_name = fold(sizes).map(aliases).fillna(0).to_numpy(dtype=np.int64)
    return np.where(by_count > 0, by_count, by_name).astype(np.int8)


def _company_size_levels(cols: _Columns, policy: ScoringPolicy) -> Levels:
    sizes = cols.coded("registry_size")
    return sizes.spread(size_levels(sizes.uniques, policy)).astype(np.int8)


# Factors whose level can change with ``as_of`` alone, inputs unchanged.
AS_OF_FACTORS: tuple[str, ...] = ("data_age", "company_age")


def as_of_levels(df: pd.DataFrame, policy: ScoringPolicy, as_of: datetime) -> pd.DataFrame:
    """The levels of AS_OF_FACTORS as of ``as_of`` (the same values factor_levels gives).

    A score is a function of the inputs and these levels, so "inputs and these levels
    unchanged" means "score unchanged": a later run rescores a contact whose data aged
    into another bucket, and only such contacts, without hashing ``as_of`` itself.
    """
    cols = _Columns(df)
    when = _as_of_naive(as_of)
    return pd.DataFrame(
        {
            "data_age": _data_age_levels(cols, when, policy),
            "company_age": _company_age_levels(cols, when, policy),
        },
        index=df.index,
    )


def factor_levels(df: pd.DataFrame, policy: ScoringPolicy, as_of: datetime) -> pd.DataFrame:
    """One int8 column per factor: 0 = input absent, i = the i-th level in FACTOR_LEVELS."""
    cols = _Columns(df)
    domain = _domains(cols)
    email_levels = _email_domain_levels(domain, cols, policy)
    phone_present, phone_head = _phone_present_and_head(cols)
    columns: dict[str, Levels] = {
        "tax_id": _tax_id_levels(cols),
        "email_domain": email_levels,
        "completeness": _completeness_levels(cols, domain, phone_present),
        "phone_country": _phone_country_levels(cols, phone_head),
        "domain_company": _domain_company_levels(domain, email_levels, cols, policy),
        "seniority": _seniority_levels(cols, policy),
        "lead_rating": _lead_rating_levels(cols, policy),
        "engagement": _engagement_levels(cols),
        "complaints": _complaint_levels(cols, policy),
        "obligations": _obligation_levels(cols),
        "registry_status": _registry_status_levels(cols, policy),
        "company_size": _company_size_levels(cols, policy),
    }
    aged = as_of_levels(df, policy, as_of)
    columns.update({name: aged[name].to_numpy() for name in AS_OF_FACTORS})
    return pd.DataFrame({name: columns[name] for name in FACTORS}, index=df.index)


# ---------------------------------------------------------------- points, bands, reasons


def points_table(policy: ScoringPolicy) -> list[npt.NDArray[np.float64]]:
    """Per factor, weighted points indexed by level code (index 0, absent, is always 0)."""
    tables = []
    for name in FACTORS:
        factor = policy.factors[name]
        pts = [0.0] + [factor.weight * factor.levels[lv].points for lv in FACTOR_LEVELS[name]]
        tables.append(np.array(pts, dtype=np.float64))
    return tables


def bands_for(score: npt.NDArray[np.float64], policy: ScoringPolicy) -> npt.NDArray[np.int8]:
    """Band index into BANDS per score; the vectorised twin of ScoringPolicy.band_for."""
    b = policy.bands
    return np.select([score >= b.A, score >= b.B, score >= b.C], [0, 1, 2], 3).astype(np.int8)


def _fmt_points(value: float) -> str:
    return f"{value:+.0f}" if float(value).is_integer() else f"{value:+.1f}"


def _explain(
    levels: npt.NDArray[np.int8], policy: ScoringPolicy
) -> tuple[npt.NDArray[np.float64], pd.Categorical, pd.Categorical, pd.Categorical]:
    """Score and reasons per row of ``levels`` (one row per distinct level combination).

    Reasons depend only on which (factor, level) pairs are the top movers and which
    factors are absent, and far fewer of those exist than level combinations, so each
    text is rendered once per distinct key.
    """
    tables = points_table(policy)
    contrib = np.column_stack([tables[i][levels[:, i]] for i in range(len(FACTORS))])
    total = policy.base + contrib.sum(axis=1)
    if policy.combine == "logistic":
        z = total * (math.log(2) / policy.points_to_double_odds)
        raw = 100.0 / (1.0 + np.exp(-z))
    else:
        raw = np.clip(total, 0.0, 100.0)
    score = np.round(raw, 1)

    # Stable sort on -|points|: ties keep the scorecard's factor order, so the reasons are
    # the same for the same inputs. Each slot holds 1 + (factor, level) id, 0 if unmoved.
    offsets = np.cumsum([0] + [len(FACTOR_LEVELS[f]) + 1 for f in FACTORS])
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, : policy.max_reasons]
    rows = np.arange(len(levels))[:, None]
    moved = contrib[rows, order] != 0
    slot_ids = np.where(moved, offsets[order] + levels[rows, order] + 1, 0).astype(np.int64)
    top_key = np.zeros(len(levels), dtype=np.int64)
    for slot in range(slot_ids.shape[1]):  # ids < 128 with 14 factors: 7 bits per slot
        top_key |= slot_ids[:, slot] << (7 * slot)
    absent_key = ((levels == 0).astype(np.int64) << np.arange(len(FACTORS))).sum(axis=1)

    by_id: dict[int, tuple[str, str]] = {}
    for fi, name in enumerate(FACTORS):
        for li, level in enumerate(FACTOR_LEVELS[name], start=1):
            pts = tables[fi][li]
            code = ("+" if pts > 0 else "-") + reason_code(name, level)
            by_id[int(offsets[fi]) + li + 1] = (
                code,
                f"{_fmt_points(pts)} {policy.factors[name].levels[level].reason}",
            )

    def top_parts(key: int) -> list[tuple[str, str]]:
        ids = [(key >> (7 * s)) & 127 for s in range(policy.max_reasons)]
        return [by_id[i] for i in ids if i]

    def absent_names(mask: int) -> list[str]:
        return [f for i, f in enumerate(FACTORS) if (mask >> i) & 1]

    top_idx, top_keys = pd.factorize(top_key)
    absent_idx, absent_masks = pd.factorize(absent_key)
    top_parts_list = [top_parts(int(k)) for k in top_keys]
    absent_lists = [absent_names(int(m)) for m in absent_masks]
    top_codes = [";".join(code for code, _ in parts) for parts in top_parts_list]
    top_texts = [
        "; ".join(text for _, text in parts) or "no factor moved the score from the base"
        for parts in top_parts_list
    ]
    absent_codes = [";".join(reason_code(f, ABSENT) for f in names) for names in absent_lists]
    absent_texts = ["; ".join(policy.factors[f].absent for f in names) for names in absent_lists]
    # The full sentence per distinct (top, absent) pair: concatenating two pre-rendered
    # halves is cheap even for tens of thousands of pairs.
    pair = top_idx.astype(np.int64) * len(absent_texts) + absent_idx
    pair_idx, pair_uniques = pd.factorize(pair)
    texts = [
        top_texts[t] + (". Not scored: " + absent_texts[m] if absent_texts[m] else "")
        for t, m in (divmod(int(p), len(absent_texts)) for p in pair_uniques)
    ]
    # Code strings are distinct per key by construction; sentences could repeat only if
    # two reasons in the YAML read the same, so only they are checked.
    return (
        score,
        pd.Categorical.from_codes(top_idx, categories=pd.Index(top_codes, dtype=object)),
        _categorical(texts, np.asarray(pair_idx, dtype=np.intp)),
        pd.Categorical.from_codes(absent_idx, categories=pd.Index(absent_codes, dtype=object)),
    )


def _categorical(rendered: list[str], idx: npt.NDArray[np.intp]) -> pd.Categorical:
    """Per-row strings as a categorical: a million rows share a few thousand texts.

    ``rendered`` may repeat (two keys, same text); categories must not.
    """
    if len(set(rendered)) == len(rendered):  # the usual case; a set is the cheap check
        return pd.Categorical.from_codes(idx, categories=pd.Index(rendered, dtype=object))
    codes, categories = pd.factorize(pd.Series(rendered, dtype=object))
    return pd.Categorical.from_codes(
        np.asarray(codes)[idx], categories=pd.Index(categories, dtype=object)
    )


def score_levels(
    levels: pd.DataFrame,
    policy: ScoringPolicy,
    as_of: datetime,
    contact_id: pd.Series | None = None,
) -> pd.DataFrame:
    """Turn factor levels into score, band, version and reasons (see module docstring).

    A score depends only on the combination of levels, and a million contacts share a few
    thousand combinations, so points and reasons are worked out once per combination.
    """
    lv = levels[list(FACTORS)].to_numpy(dtype=np.int8)
    key = np.zeros(len(lv), dtype=np.int64)
    for i in range(len(FACTORS)):  # at most 7 levels per factor: 3 bits each
        key |= lv[:, i].astype(np.int64) << (3 * i)
    combo, uniques = pd.factorize(key)
    shifts = np.arange(len(FACTORS), dtype=np.int64) * 3
    distinct = ((np.asarray(uniques)[:, None] >> shifts) & 7).astype(np.int8)
    score, codes, texts, skipped = _explain(distinct, policy)
    take = np.asarray(combo, dtype=np.intp)
    ids = contact_id if contact_id is not None else pd.Series(levels.index, index=levels.index)
    n = len(lv)
    return pd.DataFrame(
        {
            "contact_id": ids.to_numpy(),
            "score": score[combo],
            "band": pd.Categorical.from_codes(
                bands_for(score, policy)[combo], categories=pd.Index(list(BANDS))
            ),
            "scorecard_version": pd.Categorical.from_codes(
                np.zeros(n, dtype=np.int8), categories=pd.Index([policy.version])
            ),
            "as_of": np.full(n, _as_of_naive(as_of)),
            "reason_codes": codes.take(take),
            "reasons": texts.take(take),
            "skipped_codes": skipped.take(take),
        },
        index=levels.index,
    )


def score_frame(df: pd.DataFrame, policy: ScoringPolicy, as_of: datetime) -> pd.DataFrame:
    """Score every row of ``df`` (columns in INPUT_COLUMNS, all optional) as of ``as_of``.

    Returns OUTPUT_COLUMNS, one row per input row in the same order: score 0-100 with one
    decimal, band A-D, the scorecard version, ``as_of`` (UTC), and reasons:
    ``reason_codes`` (signed codes of the top factors, ``+TAX_ID_VALID_COMPANY;-EMAIL_...``),
    ``reasons`` (the same in words, then which factors were not scored and why) and
    ``skipped_codes`` (``REGISTRY_STATUS_ABSENT;...``). Text columns are categoricals.
    """
    levels = factor_levels(df, policy, as_of)
    ids = df["contact_id"] if "contact_id" in df.columns else None
    return score_levels(levels, policy, as_of, ids)


def band_changes(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Contacts whose band moved: the rows behind ``prospect.band.changed`` events.

    Both frames have contact_id and band (``current`` is score_frame's output). A contact
    scored for the first time is not a change.
    """
    merged = current[["contact_id", "band", "score", "scorecard_version", "as_of"]].merge(
        previous[["contact_id", "band"]].rename(columns={"band": "previous_band"}),
        on="contact_id",
        how="inner",
    )
    changed = merged[merged["band"] != merged["previous_band"]]
    return changed.rename(columns={"band": "new_band"})[
        ["contact_id", "previous_band", "new_band", "score", "scorecard_version", "as_of"]
    ].reset_index(drop=True)
