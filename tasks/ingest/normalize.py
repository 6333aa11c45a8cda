"""Turn a file's raw cells into normalised, validated lead rows (pure, vectorised).

The output keeps every row: a row that cannot become a lead carries a quarantine
``reason``; a row that can but was dirty carries ``flags``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
from email_validator import EmailNotValidError, validate_email
from stdnum.br import cnpj, cpf
from stdnum.es import nif as es_nif
from stdnum.eu import vat as eu_vat
from stdnum.pt import nif as pt_nif

from config.policies import SourcesPolicy
from connectors.exhibition_files import NUL_MARK, RawTable
from tasks.common.spreadsheet_safety import formula_mask
from tasks.common.tax_ids import valid_cnpjs
from tasks.common.text import as_strings, fold, fold_arrow
from tasks.ingest.mapping import ColumnMapping

# Addresses this plain are valid for email-validator too; only the rest pay for a full check.
_PLAIN_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_SPECIAL_USE_TLDS = ("arpa", "invalid", "local", "localhost", "onion", "test")
_DATE_FORMATS = (
    "ISO8601",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d-%m-%Y %H:%M",
    "%d.%m.%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%Y/%m/%d %H:%M",
)

OUTPUT_COLUMNS = [
    "row_number",
    "raw",
    "reason",
    "flags",
    "first_name",
    "last_name",
    "full_name",
    "name_key",
    "email",
    "email_domain",
    "is_free_mail",
    "phone",
    "company",
    "company_key",
    "tax_id",
    "tax_kind",
    "person_tax_id",
    "company_tax_id",
    "country",
    "state",
    "city",
    "job_title",
    "notes",
    "lead_rating",
    "scan_time",
]


# Python's ``\s`` spelled out: pandas hands ``\s`` to Python's re cell by cell (RE2's ``\s``
# misses some Unicode spaces), while a plain character class stays in pyarrow.
_WHITESPACE_RUN = "[" + "".join(sorted({c for c in map(chr, range(0x3001)) if c.isspace()})) + "]+"
# Control characters JSON must escape, other than the three escaped by hand below.
_JSON_CONTROL = "[\x00-\x08\x0b\x0c\x0e-\x1f]"
# What JSON escapes by hand, backslash first; and a pattern finding any of it (RE2).
_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))
_JSON_ESCAPED = '[\\\\"\n\r\t]'


# What _WHITESPACE_RUN changes: a whitespace character other than a space, or two spaces.
_ODD_WHITESPACE = "[" + _WHITESPACE_RUN[1:-2].replace(" ", "") + "]|  "


FORMULA_STRICT_FIELDS = frozenset({"first_name", "last_name", "full_name", "company"})


def _blank_to_na(s: pd.Series) -> pd.Series:
    """Trimmed, each whitespace run one space, and empty as NA; only the cells holding a
    run to fold are rewritten: few cells have one, and rewriting all is costly."""
    s = s.str.strip()
    odd = s.str.contains(_ODD_WHITESPACE, regex=True).fillna(False)
    s = _rewrite_where(s, odd, lambda v: v.str.replace(_WHITESPACE_RUN, " ", regex=True))
    return s.mask(s == "")


def _rewrite_where(
    s: pd.Series, where: pd.Series, how: Callable[[pd.Series], pd.Series]
) -> pd.Series:
    """``s`` with only the cells ``where`` selects rewritten by ``how``: when few cells
    need a slow rewrite, finding them costs less than rewriting every cell."""
    if not where.any():
        return s
    s = s.copy()
    s[where] = how(s[where])
    return s


def json_objects(cells: pd.DataFrame, names: list[str]) -> pd.Series:
    """Each row as the JSON text of ``{header: cell}`` (a repeated header keeps its last cell).

    Built column by column with vectorised string operations, and joined in one Arrow pass:
    a dict and ``json.dumps`` per row cost more than the rest of staging a row, and
    appending column after column copied each row's text once per column. Only the cells
    holding a character JSON escapes go through the escapes (five passes over every cell
    of every column cost 0.6 s of the 8 s a 90,000-row export took to stage).
    """
    text_type = pa.large_string()
    pieces: list[pa.Array | pa.Scalar] = []
    for i, name in enumerate(names):
        s = cells[i]
        text = pa.array(s.array, type=text_type)
        special = pc.fill_null(pc.match_substring_regex(text, _JSON_ESCAPED), False)
        if pc.any(special).as_py():
            escaped = text.filter(special)
            for old, new in _JSON_ESCAPES:
                escaped = pc.replace_substring(escaped, old, new)
            text = pc.replace_with_mask(text, special, escaped)
        odd = s.str.contains(_JSON_CONTROL, regex=True)
        if odd.any():
            fixed = s[odd].map(lambda v: json.dumps(v, ensure_ascii=False)[1:-1])
            mask = pa.array(odd.fillna(False).to_numpy(bool))
            text = pc.replace_with_mask(text, mask, pa.array(fixed.tolist(), type=text_type))
        key = ("{" if i == 0 else ",") + json.dumps(name, ensure_ascii=False) + ':"'
        pieces += [pa.scalar(key, text_type), text]
        pieces.append(pa.scalar('"', text_type))
    if not pieces:
        return pd.Series("{}", index=cells.index, dtype="object")
    pieces.append(pa.scalar("}", text_type))
    joined = pc.binary_join_element_wise(*pieces, pa.scalar("", text_type))
    return as_strings(joined, cells.index)


def display_name(s: pd.Series, particles: Iterable[str]) -> pd.Series:
    """Title-case names typed all in capitals or all in lower case; keep mixed case."""
    needs = s.notna() & ((s == s.str.upper()) | (s == s.str.lower()))
    titled = s.where(~needs, s.str.title())
    words = "|".join(re.escape(p.title()) for p in particles)
    # Python's re with a function per match is slow: only names holding a particle go
    # through it (spaces stand in for \s: names reach here with single spaces).
    fix = needs & (" " + titled).str.contains(f" (?:{words}) ", regex=True).fillna(False)
    pattern = rf"(?:(?<=\s)|^)({words})(?=\s)"
    return _rewrite_where(
        titled, fix, lambda v: v.str.replace(pattern, lambda m: m.group(1).lower(), regex=True)
    )


def name_keys(full: pd.Series, particles: Iterable[str]) -> pd.Series:
    """Folded name tokens, particles dropped, sorted: word order and accents do not matter.

    In Arrow, token by token: sorted by (row, token) and joined back per row.
    """
    tokens = pc.utf8_split_whitespace(fold_arrow(full))
    row = pc.list_parent_indices(tokens)
    word = pc.list_flatten(tokens)
    keep = pc.and_(
        pc.greater(pc.utf8_length(word), 1),
        pc.invert(pc.is_in(word, pa.array(sorted(set(particles)), type=word.type))),
    )
    kept = pa.table({"row": pc.filter(row, keep), "word": pc.filter(word, keep)})
    kept = kept.take(pc.sort_indices(kept, [("row", "ascending"), ("word", "ascending")]))
    counts = np.bincount(kept["row"].to_numpy(), minlength=len(full))
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), type=pa.int32())
    words = pa.ListArray.from_arrays(offsets, kept["word"].combine_chunks())
    joined = pc.binary_join(words, pa.scalar(" ", pa.large_string()))
    return as_strings(pc.if_else(pc.equal(joined, ""), None, joined), full.index)


def company_keys(company: pd.Series, policy: SourcesPolicy) -> pd.Series:
    """Folded company names without legal suffixes ("ACME Ltda." -> "acme")."""
    suffixes = sorted((fold(s) for s in policy.legal_suffixes), key=len, reverse=True)
    pattern = r"(?: +(?:" + "|".join(re.escape(s) for s in suffixes if s) + r"))+$"
    keys = pc.utf8_trim(pc.replace_substring_regex(fold_arrow(company), pattern, ""), " ")
    return as_strings(pc.if_else(pc.equal(keys, ""), None, keys), company.index)


@lru_cache(maxsize=1 << 16)
def _check_email(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def normalize_emails(raw: pd.Series) -> pd.Series:
    """Valid addresses lower-cased; invalid ones become NA (the caller flags them)."""
    s = raw.str.strip().str.lower().str.removeprefix("mailto:").str.strip("<> ")
    plain = s.str.match(_PLAIN_EMAIL) & (s.str.len() <= 254)
    plain &= s.str.find("@") <= 64  # the local part (a plain address has one "@")
    plain &= ~s.str.rsplit(".", n=1).str[-1].isin(_SPECIAL_USE_TLDS)
    out = s.where(plain)
    rest = s.notna() & ~plain
    if rest.any():
        out[rest] = s[rest].map(_check_email)
    return out


_PHONE_PUNCT = re.compile(r"[\s().\-/]")
_DIGITS = re.compile(r"\+?[1-9][0-9]{5,16}")


def _quick_number(raw: str, region: str) -> tuple[int, str] | None:
    """(country code, national significant number) without ``phonenumbers.parse`` for plain
    inputs (parse costs ~50 us).

    Only "+<digits>" or national digits without a trunk prefix take this path, and the
    result still has to be valid; anything else goes through ``parse``.
    """
    compact = _PHONE_PUNCT.sub("", raw)
    if not _DIGITS.fullmatch(compact):
        return None
    if compact.startswith("+"):
        digits = compact[1:]
        for size in (1, 2, 3):
            cc = int(digits[:size])
            if cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                if digits[size : size + 1] in ("", "0"):  # Italian-style leading zero: parse it
                    return None
                return cc, digits[size:]
        return None
    cc = phonenumbers.country_code_for_region(region)
    if not cc:
        return None
    own_code, rest = str(cc), compact[len(str(cc)) :]
    if (
        compact.startswith(own_code)
        and rest[:1] not in ("", "0")
        and phonenumbers.is_possible_number_with_reason(
            phonenumbers.PhoneNumber(country_code=cc, national_number=int(compact))
        )
        == phonenumbers.ValidationResult.TOO_LONG
        and not _national_prefix(region).match(rest)
    ):
        # "5511987654321": E.164 typed without its "+". ``parse`` strips the region's own
        # country code from a number too long without it; where it would then strip a
        # national prefix as well, ``parse`` decides.
        return cc, rest
    return cc, compact


@cache
def _national_prefix(region: str) -> re.Pattern[str]:
    """What ``parse`` would strip as a national (trunk) prefix in ``region``; never matches
    when the region has none."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    pattern = metadata.national_prefix_for_parsing if metadata else None
    return re.compile(pattern or r"(?!)")


# Bounded: normalize_phones already parses each distinct number once per file; the cache
# only spares repeats across files and inbox batches, and must not grow with every number
# a long-lived worker has seen.
@lru_cache(maxsize=1 << 16)
def _parse_phone(raw: str, region: str) -> tuple[str | None, str | None]:
    quick = _quick_number(raw, region)
    if quick is not None and (own := valid_region(*quick)) is not None:
        # Valid and built from digits without a leading zero: E.164 is "+" cc national.
        return f"+{quick[0]}{quick[1]}", own
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None, None
    nsn = phonenumbers.national_significant_number(number)
    if number.country_code is None or (own := valid_region(number.country_code, nsn)) is None:
        return None, None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), own


# What ``phonenumbers`` tests a number against to give it a type; valid means any of them.
_NUMBER_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)
_Desc = tuple[frozenset[int], re.Pattern[str]]


@cache
def _region_patterns(country_code: int, region: str) -> tuple[_Desc | None, tuple[_Desc, ...]]:
    """A region's general description and its number types' descriptions, compiled once."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)

    def compiled(desc: phonenumbers.PhoneNumberDesc | None) -> _Desc | None:
        if desc is None or not desc.national_number_pattern:
            return None
        return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)

    if metadata is None:
        return None, ()
    types = (compiled(getattr(metadata, name)) for name in _NUMBER_TYPES)
    return compiled(metadata.general_desc), tuple(t for t in types if t is not None)


def _matches(desc: _Desc, nsn: str) -> bool:
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


def _valid_for(country_code: int, region: str, nsn: str) -> bool:
    general, types = _region_patterns(country_code, region)
    return general is not None and _matches(general, nsn) and any(_matches(t, nsn) for t in types)


def valid_region(country_code: int, nsn: str) -> str | None:
    """The number's region if it is valid, else None.

    ``region_code_for_number`` then ``is_valid_number_for_region``, as ``is_valid_number``
    does, on the same metadata, but with each region's patterns compiled once and without
    working out the number's type: through the library, validation was two thirds of
    staging's phone time. A test holds it to ``phonenumbers`` on thousands of numbers.
    """
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    if len(regions) == 1:
        own = regions[0]
    else:
        for candidate in regions:  # as _region_code_for_number_from_list
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(candidate)
            if metadata is None:
                continue
            if metadata.leading_digits is not None:
                if _leading_digits(metadata.leading_digits).match(nsn):
                    own = candidate
                    break
            elif _valid_for(country_code, candidate, nsn):
                own = candidate
                break
        else:
            return None
    return own if _valid_for(country_code, own, nsn) else None


def _too_long(country_code: int, lengths: np.ndarray) -> np.ndarray:
    """``is_possible_number_with_reason`` is TOO_LONG, for national numbers of these
    lengths without a leading zero: longer than the country's general description allows
    and not a local-only length, as the library's ``_test_number_length`` decides."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    general = metadata.general_desc if metadata is not None else None
    if general is None:
        return np.zeros(len(lengths), dtype=bool)
    longest = general.possible_length[-1]
    return (lengths > longest) & ~np.isin(lengths, list(general.possible_length_local_only))


def _bools(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def valid_regions(country_codes: np.ndarray, nsns: np.ndarray) -> np.ndarray:
    """``valid_region`` per (country code, national number), for a whole column: the
    same metadata's patterns, each run once over the numbers of its country code."""
    out = np.full(len(nsns), None, dtype=object)
    for code in np.unique(country_codes):
        rows = np.flatnonzero(country_codes == code)
        numbers = pa.array(nsns[rows].tolist(), type=pa.large_string())
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(code), ())
        if len(regions) == 1:
            out[rows[_all_valid_for(int(code), regions[0], numbers)]] = regions[0]
            continue
        todo = np.ones(len(rows), dtype=bool)
        for candidate in regions:  # as valid_region: the first region that claims it
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(candidate)
            if metadata is None or not todo.any():
                continue
            if metadata.leading_digits is not None:
                claims = _bools(
                    pc.match_substring_regex(numbers, f"^(?:{metadata.leading_digits})")
                )
            else:
                claims = _all_valid_for(int(code), candidate, numbers)
            mine = todo & claims
            todo &= ~claims
            mine[mine] = _all_valid_for(int(code), candidate, numbers.filter(pa.array(mine)))
            out[rows[mine]] = candidate
    return out


def _all_valid_for(country_code: int, region: str, numbers: pa.Array) -> np.ndarray:
    """``_valid_for`` of every number: the general description and any number type's."""
    general, types = _region_patterns(country_code, region)
    if general is None:
        return np.zeros(len(numbers), dtype=bool)
    ok = _all_match(general, numbers)
    typed = np.zeros(len(numbers), dtype=bool)
    for desc in types:
        todo = ok & ~typed
        if not todo.any():
            break
        typed[todo] = _all_match(desc, numbers.filter(pa.array(todo)))
    return ok & typed


def _all_match(desc: _Desc, numbers: pa.Array) -> np.ndarray:
    """``_matches`` of every number (RE2 takes the metadata's patterns as they are)."""
    lengths, pattern = desc
    ok = _bools(pc.match_substring_regex(numbers, f"^(?:{pattern.pattern})$"))
    if lengths:
        ok &= np.isin(pc.utf8_length(numbers).to_numpy(zero_copy_only=False), list(lengths))
    return ok


@cache
def _leading_digits(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def normalize_phones(raw: pd.Series, region: pd.Series) -> tuple[pd.Series, pd.Series]:
    """E.164 and the number's own region, parsed once per distinct (number, region).

    The plain numbers ``_parse_phone`` would take by its quick path are read for the
    column at once (``_quick_phones``); only the rest go through it one by one.
    """
    pairs = pd.DataFrame({"raw": raw, "region": region}).dropna(subset=["raw"])
    if pairs.empty:
        empty = pd.Series(pd.NA, index=raw.index, dtype="object")
        return empty, empty.copy()
    uniq = pairs.drop_duplicates()
    e164, own = _quick_phones(uniq["raw"], uniq["region"])
    rest = np.flatnonzero(pd.isna(e164))
    for i, r, g in zip(rest, uniq["raw"].iloc[rest], uniq["region"].iloc[rest], strict=True):
        e164[i], own[i] = _parse_phone(r, g)
    uniq = uniq.assign(
        e164=pd.Series(e164, index=uniq.index, dtype="object"),
        phone_region=pd.Series(own, index=uniq.index, dtype="object"),
    )
    merged = pairs.reset_index().merge(uniq, on=["raw", "region"], how="left").set_index("index")
    e164_column = merged["e164"].reindex(raw.index)
    return e164_column, merged["phone_region"].reindex(raw.index)


# _PHONE_PUNCT and _DIGITS for RE2 (Python's \s spelled out, as in _WHITESPACE_RUN).
_PHONE_PUNCT_RE2 = "[" + _WHITESPACE_RUN[1:-2] + "().\\-/]"
_PLAIN_PHONE_RE2 = "^\\+?[1-9][0-9]{5,16}$"
_COUNTRY_CODES = np.array(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE), dtype=np.int64)


def _quick_phones(raw: pd.Series, region: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(E.164, own region) per value as ``_parse_phone`` gives them where its quick path
    decides (``_quick_number`` finds the digits, ``valid_region`` accepts them); None
    where it does not, for ``_parse_phone`` itself.

    Whole columns in Arrow and numpy: one ``_parse_phone`` call per number was a quarter
    of the time a 90,000-row export took to stage.
    """
    compact = pc.replace_substring_regex(
        pa.array(raw.astype("string").array, type=pa.large_string()), _PHONE_PUNCT_RE2, ""
    )
    plain = _bools(pc.match_substring_regex(compact, _PLAIN_PHONE_RE2))
    plus = plain & _bools(pc.starts_with(compact, "+"))
    digits = pc.if_else(pa.array(plus), pc.utf8_slice_codeunits(compact, 1), compact)
    cc, cut = _national_codes(digits, region, plain & ~plus)
    international = np.flatnonzero(plus)
    cc[international], cut[international] = _international_codes(
        digits.take(pa.array(international))
    )
    return _valid_e164(digits, cc, cut)


def _international_codes(typed: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(country code, how many digits it takes) of each number typed after a "+": the
    first code of one, two or three digits that exists, followed by a digit other than
    "0" (an Italian-style leading zero: ``_parse_phone`` decides it); 0, 0 where none."""
    code = np.zeros(len(typed), dtype=np.int64)
    size = np.zeros(len(typed), dtype=np.int64)
    for width in (1, 2, 3):
        prefix = pc.cast(pc.utf8_slice_codeunits(typed, 0, width), pa.int64()).to_numpy()
        found = (size == 0) & np.isin(prefix, _COUNTRY_CODES)
        code[found], size[found] = prefix[found], width
    for width in (1, 2, 3):
        zero = _bools(pc.starts_with(pc.utf8_slice_codeunits(typed, width), "0"))
        size[(size == width) & zero] = 0
    return np.where(size > 0, code, 0), size


def _national_codes(
    digits: pa.Array, region: pd.Series, national: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(country code, digits before the national number) of each ``national`` number: its
    row region's code, and that code stripped where the number is E.164 typed without its
    "+" (too long with it, and no national prefix after it); 0, 0 elsewhere."""
    cc = np.zeros(len(digits), dtype=np.int64)
    cut = np.zeros(len(digits), dtype=np.int64)
    regions = region.astype("object").to_numpy()
    for reg in pd.unique(regions[national]):
        rows = np.flatnonzero(national & (regions == reg))
        region_code = phonenumbers.country_code_for_region(reg)
        if not region_code:
            continue
        cc[rows] = region_code
        own_code = str(region_code)
        typed = digits.take(pa.array(rows))
        rest = pc.utf8_slice_codeunits(typed, len(own_code))
        maybe = _bools(pc.starts_with(typed, own_code)) & ~_bools(pc.starts_with(rest, "0"))
        maybe &= _too_long(region_code, pc.utf8_length(typed).to_numpy(zero_copy_only=False))
        for i, number in zip(rows[maybe], rest.filter(pa.array(maybe)).to_pylist(), strict=True):
            if not _national_prefix(reg).match(number):
                cut[i] = len(own_code)
    return cc, cut


def _valid_e164(digits: pa.Array, cc: np.ndarray, cut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E.164, own region) where country code ``cc`` and the digits after ``cut`` make a
    valid number (``valid_regions``); None elsewhere."""
    decided = np.flatnonzero(cc > 0)
    nsn = np.empty(len(decided), dtype=object)
    for width in np.unique(cut[decided]):
        part = cut[decided] == width
        sliced = pc.utf8_slice_codeunits(digits.take(pa.array(decided[part])), int(width))
        nsn[part] = sliced.to_numpy(zero_copy_only=False)
    regions_of = valid_regions(cc[decided], nsn)
    valid = pd.notna(regions_of)
    e164 = np.full(len(digits), None, dtype=object)
    own = np.full(len(digits), None, dtype=object)
    own[decided[valid]] = regions_of[valid]
    e164[decided[valid]] = pc.binary_join_element_wise(
        "+",
        pc.cast(pa.array(cc[decided[valid]]), pa.string()),
        pa.array(nsn[valid].tolist(), pa.string()),
        "",
    ).to_numpy(zero_copy_only=False)
    return e164, own


@lru_cache(maxsize=100_000)
def classify_tax_id(value: str, country: str | None) -> tuple[str, str, str] | None:
    """(compact id, kind, holder) for a valid id; holder is 'person' or 'company'."""
    compact = re.sub(r"[^0-9A-Za-z]", "", value).upper()
    digits = re.sub(r"\D", "", value)
    if len(digits) == 14 and cnpj.is_valid(digits):
        return digits, "cnpj", "company"
    if len(digits) == 11 and country in (None, "BR") and cpf.is_valid(digits):
        return digits, "cpf", "person"
    if country in (None, "PT") and len(digits) == 9 and pt_nif.is_valid(digits):
        return digits, "pt_nif", "person" if digits[0] in "123" else "company"
    if country in (None, "ES") and es_nif.is_valid(compact):
        return (
            compact,
            "es_nif",
            "company" if compact[0].isalpha() and compact[0] not in "XYZKLM" else "person",
        )
    if eu_vat.is_valid(compact):
        return compact, "eu_vat", "company"
    return None


def classify_tax_ids(values: pd.Series, countries: pd.Series) -> list[tuple[str, str, str] | None]:
    """``classify_tax_id`` per row, the valid plain CNPJs checked for the column at once.

    One stdnum call per value cost 0.5-0.6 of the 6-8 CPU seconds a 90,000-row export takes
    to stage; a value that is not 14 ASCII digits once the rest is stripped, or not a valid
    CNPJ, still takes ``classify_tax_id``.
    """
    out: list[tuple[str, str, str] | None] = [None] * len(values)
    digits = values.str.replace(r"[^0-9]", "", regex=True)
    plain = (values.str.isascii() & (digits.str.len() == 14)).fillna(False).to_numpy(bool)
    candidates = np.flatnonzero(plain)
    cnpj_digits = digits.iloc[candidates].tolist()
    valid = valid_cnpjs(cnpj_digits) if len(candidates) else np.zeros(0, dtype=bool)
    for i, d in zip(candidates[valid], np.array(cnpj_digits, dtype=object)[valid], strict=True):
        out[i] = (d, "cnpj", "company")
    rest = np.flatnonzero(values.notna().to_numpy(bool))
    rest = rest[~np.isin(rest, candidates[valid])]
    country = countries.astype("object").where(countries.notna(), None).tolist()
    for i in rest.tolist():
        out[i] = classify_tax_id(values.iat[i], country[i])
    return out


def _lookup(values: pd.Series, table: dict[str, list[str]]) -> pd.Series:
    """Each value's canonical key, by folded alias; a column holds few distinct values, so
    each is folded once."""
    index = {fold(alias) or alias: key for key, aliases in table.items() for alias in aliases}
    distinct = values.dropna().unique()
    key_of = {v: index.get(fold(v) or v.strip()) for v in distinct}
    return values.map(key_of).astype("object")


# An ISO 8601 value that carries its own offset ("Z", "+01:00", "-0300") after a time:
# it is read as that instant; one without is local time in the file's zone.
_ISO_OFFSET = (
    r"[Tt ][0-9]{2}(?::?[0-9]{2}(?::?[0-9]{2}(?:[.,][0-9]+)?)?)?"
    r"\s*(?:[zZ]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
)
# Scan times outside these years are typing errors, and outside datetime64[ns] besides.
_PLAUSIBLE = (pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01"))


def parse_scan_times(values: pd.Series, tz: str) -> pd.Series:
    """Local timestamps (ISO or day-first PT/ES, month-first EN) to naive UTC; a value
    with its own offset is that instant, whatever the other values' offsets.

    Total: a value no format reads, or one outside 1900-2200, is NaT (the caller flags it).
    """
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for fmt in _DATE_FORMATS:
        todo = values.notna() & out.isna()
        if not todo.any():
            break
        shape = _format_shape(fmt)
        if shape is not None:
            # A format that fails on a whole column still costs a full parse: only values
            # of its shape are offered to it.
            fits = pc.match_substring_regex(pa.array(values[todo].array), shape)
            todo[todo] = fits.to_numpy(zero_copy_only=False)
            if not todo.any():
                continue
        text = values[todo]
        # utc=True: pandas refuses a column of several offsets (or offsets and none)
        # otherwise. Values without an offset come out as if they were UTC, and are then
        # read again as the wall time they are.
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True).dt.tz_localize(None)
        if shape is None:
            aware = pc.match_substring_regex(pa.array(text.str.strip().array), _ISO_OFFSET)
            naive = ~pd.Series(_bools(aware), index=text.index)
        else:
            naive = pd.Series(True, index=text.index)
        if naive.any():
            local = parsed[naive].dt.tz_localize(
                ZoneInfo(tz), ambiguous="NaT", nonexistent="shift_forward"
            )
            parsed[naive] = local.dt.tz_convert("UTC").dt.tz_localize(None)
        good = parsed.notna() & (parsed >= _PLAUSIBLE[0]) & (parsed < _PLAUSIBLE[1])
        out[good[good].index] = parsed[good].astype("datetime64[ns]")
    return out


@cache
def _format_shape(fmt: str) -> str | None:
    """A regular expression every text ``fmt`` accepts contains (None for ISO 8601).

    Looser than the format on purpose (any digits, any spacing): it only spares the parser
    values that cannot be of this format, never one that could.
    """
    if not fmt.startswith("%"):
        return None
    space = _WHITESPACE_RUN[:-1]  # the class, as Python's \\s (RE2's is ASCII only)
    shape = ""
    for part in re.split(r"(%[dmYHMSIp])", fmt):
        if part == "%p":
            shape += f"{space}*[^{space[1:]}+"
        elif part.startswith("%"):
            shape += f"{space}*\\p{{Nd}}+"  # any decimal digits, as Python's \\d
        else:
            shape += "".join(f"{space}+" if c.isspace() else re.escape(c) for c in part)
    return shape


def normalize_table(
    table: RawTable,
    mapping: ColumnMapping,
    policy: SourcesPolicy,
    *,
    default_region: str,
    timezone: str,
    max_field_chars: int,
) -> pd.DataFrame:
    """Normalise and validate every row of ``table``; see the module docstring."""
    width = len(table.header)
    names = [h or f"column_{i + 1}" for i, h in enumerate(table.header)]
    cells = pd.DataFrame([r[1] for r in table.rows], columns=range(width), dtype="object")
    cells = cells.astype("string") if len(cells) else cells
    flags = pd.Series("", index=cells.index, dtype="object")

    had_nul = pd.Series(False, index=cells.index)
    too_long = pd.Series(False, index=cells.index)
    for c in cells.columns:
        s = cells[c]
        nul = s.str.contains(NUL_MARK, regex=False)
        if nul.any():
            had_nul |= nul
            cells[c] = s.str.replace(NUL_MARK, "", regex=False)
        long = cells[c].str.len() > max_field_chars
        if long.any():
            too_long |= long
            cells[c] = cells[c].str.slice(0, max_field_chars)
    flags = _add_flag(flags, had_nul, "nul_stripped")
    flags = _add_flag(flags, too_long, "truncated")

    df = pd.DataFrame(
        {"row_number": [r[0] for r in table.rows], "raw": json_objects(cells, names)},
        index=cells.index,
    )
    field = {name: _blank_to_na(cells[i]) for i, name in mapping.fields.items()}

    def col(name: str) -> pd.Series:
        return field.get(name, pd.Series(pd.NA, index=cells.index, dtype="string"))

    particles = policy.name_particles
    first, last, full = col("first_name"), col("last_name"), col("full_name")
    comma = (full.str.contains(",", regex=False) & first.isna() & last.isna()).fillna(False)

    def surname_last(names: pd.Series) -> pd.Series:
        parts = names.str.split(",", n=1)
        return parts.str[1].str.strip() + " " + parts.str[0].str.strip()

    full = _rewrite_where(full, comma, surname_last)
    # As text: a column where no name has a space gives no second part at all (floats).
    words = full.str.split(" ", n=1)
    first = first.fillna(words.str[0].astype("string"))
    last = last.fillna(words.str[1].astype("string"))
    first, last = display_name(first, particles), display_name(last, particles)
    composed = (first.fillna("") + " " + last.fillna("")).str.strip()
    df["first_name"], df["last_name"] = first, last
    df["full_name"] = composed.mask(composed == "")
    df["name_key"] = name_keys(df["full_name"], particles)

    country = _lookup(col("country"), policy.countries)
    country = country.fillna(col("country").str.upper().where(col("country").str.len() == 2))

    email_raw = col("email")
    email = normalize_emails(email_raw)
    df["email"] = email
    df["email_domain"] = email.str.extract(r"^[^@]*@([^@]*)", expand=False)
    df["is_free_mail"] = df["email_domain"].isin(set(policy.free_mail_domains))
    flags = _add_flag(flags, email_raw.notna() & email.isna(), "invalid_email")
    flags = _add_flag(flags, df["is_free_mail"], "free_mail")

    phone_raw = col("mobile").fillna(col("phone"))
    region = country.fillna(default_region)
    phone, phone_region = normalize_phones(phone_raw, region)
    df["phone"] = phone
    flags = _add_flag(flags, phone_raw.notna() & phone.isna(), "invalid_phone")
    df["country"] = country.fillna(phone_region)

    df["company"] = col("company")
    df["company_key"] = company_keys(df["company"], policy)
    tax = col("tax_id")
    parsed = classify_tax_ids(tax, df["country"])
    df["tax_id"] = [p[0] if p else None for p in parsed]
    df["tax_kind"] = [p[1] if p else None for p in parsed]
    holder = pd.Series([p[2] if p else None for p in parsed], index=df.index)
    df["person_tax_id"] = df["tax_id"].where(holder == "person")
    df["company_tax_id"] = df["tax_id"].where(holder == "company")
    flags = _add_flag(flags, tax.notna() & df["tax_id"].isna(), "invalid_tax_id")

    state = col("state")
    df["state"] = state.where(state.str.len() > 3, state.str.upper())  # UF codes upper-case
    df["city"], df["job_title"], df["notes"] = col("city"), col("job_title"), col("notes")
    df["lead_rating"] = _lookup(col("lead_rating"), policy.lead_ratings)
    df["scan_time"] = parse_scan_times(col("scan_time"), timezone)
    flags = _add_flag(flags, col("scan_time").notna() & df["scan_time"].isna(), "bad_date")

    reason = pd.Series(pd.NA, index=df.index, dtype="object")
    contactable = df["email"].notna() | df["phone"].notna()
    reason = reason.mask(~contactable & phone_raw.notna(), "invalid_phone")
    reason = reason.mask(~contactable & email_raw.notna(), "invalid_email")
    reason = reason.mask(~contactable & email_raw.isna() & phone_raw.isna(), "no_contact")
    # Names and companies land in text cells of every export: any unsafe start is refused.
    strict = [i for i, name in mapping.fields.items() if name in FORMULA_STRICT_FIELDS]
    reason = reason.mask(formula_mask(cells, strict), "formula_injection")
    df["reason"] = reason
    df["flags"] = flags.str.strip(",").replace("", None)

    malformed = pd.DataFrame(
        {
            "row_number": [m[0] for m in table.malformed],
            "raw": [
                json.dumps({"cells": m[1], "problem": m[2]}, ensure_ascii=False)
                for m in table.malformed
            ],
            "reason": "malformed_row",
        }
    )
    out = pd.concat([df, malformed], ignore_index=True) if len(malformed) else df
    out = out.reindex(columns=OUTPUT_COLUMNS).sort_values("row_number", kind="stable")
    # Text stays in Arrow strings (missing is NA): Python objects per cell would cost more
    # memory than the rest of staging.
    return out.reset_index(drop=True)


def _add_flag(flags: pd.Series, mask: pd.Series, name: str) -> pd.Series:
    return flags.where(~mask.fillna(False).astype(bool), flags + "," + name)
