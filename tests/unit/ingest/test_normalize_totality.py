"""Normalisation is total: whatever a cell holds, every normaliser returns a value per row.

Hypothesis feeds each normaliser in tasks/ingest/normalize.py, and ``normalize_table`` as
a whole, random text, random bytes read as cp1252, huge cells and columns that mix
numbers, dates, emails and phones. A value that cannot be read must come back as NA (the
caller's flag) or a quarantine reason, never an exception.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from config.policies import get_ingest_policies
from connectors.exhibition_files import NUL_MARK, RawTable
from tasks.ingest.mapping import UnmappableFile, map_columns
from tasks.ingest.normalize import (
    OUTPUT_COLUMNS,
    _blank_to_na,
    _lookup,
    classify_tax_ids,
    company_keys,
    display_name,
    formula_mask,
    json_objects,
    name_keys,
    normalize_emails,
    normalize_phones,
    normalize_table,
    parse_scan_times,
)
from tests.unit.ingest.test_normalize import HEADER

MAX_FIELD_CHARS = 1_000
# TOTALITY_EXAMPLES=2000 searches harder than a test run can afford to.
TOTAL = settings(
    max_examples=int(os.environ.get("TOTALITY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _cp1252(data: bytes) -> str:
    """Bytes as the CSV reader reads a cp1252 file: the five bytes cp1252 leaves undefined
    as latin-1 (C1 controls)."""
    return "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in data)


def _typed(value: object) -> str:
    """A typed value as an export writes it: its text."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


_typed_values = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.none()
    ),
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-3, minutes=-30))]
        )
    ),
    st.emails(),
).map(_typed)

_odd_text = st.sampled_from(
    [
        "",
        " ",
        "\u00a0",
        NUL_MARK,
        "=1+1",
        "+5511987654321",
        "00",
        "+",
        "@",
        "mailto:",
        ",",
        '"',
        "\\",
        "\r\n",
        "2026-10-06T09:00:01+01:00",
        "2026-10-06T09:00:01Z",
        "2026-10-06T09:00:00.123+00:00",
        "31/02/2026 25:61",
        "0001-01-01",
        "9999-12-31T23:59:59-14:00",
        "2262-04-11T23:47:17",
        "12/31/1677 11:59 PM",
        "11.222.333/0001-81",
        "+999999999999999999999",
        "ES X1234567L",
        "da de do",
        "Ltda.",
        "★★★",
    ]
)

cells = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40).map(_cp1252),
    _typed_values,
    _odd_text,
    st.builds(
        lambda c, n: c * n, st.sampled_from(["9", "a", " ", "é", "@", "\n"]), st.integers(1, 50_000)
    ),
)


def _column(values: list[str]) -> pd.Series:
    """A column as ``normalize_table`` hands it on: Arrow text, blank as NA."""
    return _blank_to_na(pd.Series(values, dtype="string"))


@TOTAL
@given(st.lists(cells, max_size=30))
def test_text_normalisers_return_a_value_per_row_whatever_the_cells(values: list[str]) -> None:
    policy = get_ingest_policies().sources
    raw = pd.Series(values, dtype="string")
    column = _column(values)
    n = len(values)
    assert len(column) == n
    assert len(formula_mask(pd.DataFrame({0: raw}))) == n
    assert len(display_name(column, policy.name_particles)) == n
    assert len(name_keys(column, policy.name_particles)) == n
    assert len(company_keys(column, policy)) == n
    assert len(_lookup(column, policy.countries)) == n
    assert len(_lookup(column, policy.lead_ratings)) == n
    emails = normalize_emails(column)
    assert len(emails) == n and emails[column.isna()].isna().all()


@TOTAL
@given(
    st.lists(
        st.tuples(cells, st.sampled_from(["BR", "PT", "ES", "US", "GB", "ZZ"])),
        max_size=30,
    )
)
def test_phones_and_tax_ids_read_or_come_back_empty(pairs: list[tuple[str, str]]) -> None:
    column = _column([p[0] for p in pairs])
    regions = pd.Series([p[1] for p in pairs], dtype="object", index=column.index)
    e164, region = normalize_phones(column, regions)
    assert len(e164) == len(region) == len(pairs)
    assert all(v.startswith("+") and v[1:].isdigit() for v in e164.dropna())
    parsed = classify_tax_ids(column, regions.where(regions != "ZZ"))
    assert len(parsed) == len(pairs)
    assert all(p is None or p[1] for p in parsed)


@TOTAL
@given(st.lists(cells, max_size=30), st.sampled_from(["America/Sao_Paulo", "Europe/Lisbon", "UTC"]))
def test_scan_times_parse_to_utc_or_come_back_empty(values: list[str], tz: str) -> None:
    column = _column(values)
    out = parse_scan_times(column, tz)
    assert len(out) == len(values) and str(out.dtype) == "datetime64[ns]"
    assert out[column.isna()].isna().all()
    years = out.dropna().dt.year
    assert ((years >= 1900) & (years < 2200)).all()


@TOTAL
@given(st.lists(st.lists(cells, min_size=1, max_size=4), max_size=12))
def test_raw_json_holds_every_cell_whatever_it_is(rows: list[list[str]]) -> None:
    width = 4
    padded = [(r + [""] * width)[:width] for r in rows]
    frame = pd.DataFrame(padded, columns=range(width), dtype="string")
    names = ["a", "b", "a", 'q"\n']
    out = json_objects(frame, names)
    for row, text in zip(padded, out, strict=True):
        assert json.loads(text) == dict(zip(names, row, strict=True))


def _headers() -> list[str]:
    """Every header alias we know, as a user would type it."""
    return sorted(
        {a for aliases in get_ingest_policies().sources.aliases.values() for a in aliases}
    )


def _table(draw: st.DrawFn) -> RawTable:
    """Rows under the sample header or any set of known headers (a file with a full-name
    column only, say); each column takes one kind of value or any (a column of dates,
    numbers and emails mixed)."""
    header = draw(
        st.one_of(
            st.just(HEADER),
            st.lists(st.sampled_from(_headers()), min_size=2, max_size=8, unique=True),
        )
    )
    width = len(header)
    n = draw(st.integers(0, 25))
    kinds = [draw(st.sampled_from([cells, _typed_values, _odd_text])) for _ in range(width)]
    rows = [(i + 1, [draw(kinds[c]) for c in range(width)]) for i in range(n)]
    malformed = [
        (n + 1 + i, draw(st.lists(cells, max_size=3)), "wrong width")
        for i in range(draw(st.integers(0, 2)))
    ]
    return RawTable(header=header, rows=rows, malformed=malformed)


@TOTAL
@given(st.composite(_table)(), st.sampled_from(["BR", "PT", "US"]))
def test_every_row_comes_out_accepted_or_quarantined_with_a_reason(
    table: RawTable, region: str
) -> None:
    policy = get_ingest_policies().sources
    try:
        mapping = map_columns(table.header, policy)
    except UnmappableFile:
        assume(False)  # a file without a name and a contact column is rejected whole
    out = normalize_table(
        table,
        mapping,
        policy,
        default_region=region,
        timezone="America/Sao_Paulo",
        max_field_chars=MAX_FIELD_CHARS,
    )
    assert list(out.columns) == OUTPUT_COLUMNS
    expected = sorted([r[0] for r in table.rows] + [m[0] for m in table.malformed])
    assert out["row_number"].tolist() == expected
    accepted = out["reason"].isna()
    assert (out.loc[accepted, "email"].notna() | out.loc[accepted, "phone"].notna()).all()
    assert all(isinstance(json.loads(r), dict) for r in out["raw"])
    for col in ("first_name", "last_name", "company", "notes", "city", "job_title"):
        assert (out[col].dropna().str.len() <= MAX_FIELD_CHARS).all()
    scan = next((i for i, f in mapping.fields.items() if f == "scan_time"), None)
    had_date = pd.Series(
        [scan is not None and bool(r[1][scan].replace(NUL_MARK, "").strip()) for r in table.rows],
        dtype=bool,
    )
    rows = out[out["reason"].fillna("") != "malformed_row"].reset_index(drop=True)
    unread = had_date & rows["scan_time"].isna()
    assert rows.loc[unread, "flags"].fillna("").str.contains("bad_date").all()
