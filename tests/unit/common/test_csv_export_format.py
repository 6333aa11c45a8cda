"""The CSV export, written with the csv module, formats each column as pandas' ``to_csv``
did when it wrote these exports (pandas is the reference here, not the writer)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from tasks.common.exports import write_csv
from tasks.common.spreadsheet_safety import neutralise

NOON = datetime(2026, 12, 7, 12, 30, 5)
COLUMNS: dict[str, list[Any]] = {
    "ids": [1, 2, 3],
    "ids_with_gap": [7, None, 9],
    "numbers_mixed": [1, 2.5, None],
    "floats": [0.1 + 0.2, 1e-07, 1e22],
    "decimals": [Decimal("1.50"), Decimal("2"), None],
    "flags": [True, False, True],
    "flags_with_gap": [True, None, False],
    "midnights": [datetime(2026, 12, 7), None, datetime(2026, 12, 8)],
    "seconds": [NOON, datetime(2026, 12, 7), None],
    "milliseconds": [NOON.replace(microsecond=250_000), NOON, None],
    "microseconds": [NOON.replace(microsecond=123), NOON.replace(microsecond=250_000), NOON],
    "aware": [NOON.replace(tzinfo=UTC), NOON.replace(microsecond=5_000, tzinfo=UTC), None],
    "dates": [date(2026, 12, 7), None, date(2027, 1, 1)],
    "json": [{"a": 1, "b": ["x"]}, [1, "two"], None],
    "text": ["=1+1", "plain, with comma", 'say "hi"\r\nnext'],
    "text_with_gap": ['-1+HYPERLINK("x")', None, "\t@A1"],
    "nothing": [None, None, None],
    "mixed": [1, "x", None],
}


def _by_pandas(columns: dict[str, list[Any]]) -> str:
    rows = list(zip(*columns.values(), strict=True))
    frame = pd.DataFrame.from_records(rows, columns=list(columns), coerce_float=True)
    return neutralise(frame).to_csv(index=False, lineterminator="\r\n")


@pytest.mark.parametrize("name", COLUMNS)
def test_a_column_is_written_as_pandas_wrote_it(name: str) -> None:
    out = io.StringIO()
    write_csv([name], [[v] for v in COLUMNS[name]], out)
    assert out.getvalue() == _by_pandas({name: COLUMNS[name]})


def test_a_table_of_every_kind_of_column_is_written_as_pandas_wrote_it() -> None:
    out = io.StringIO()
    write_csv(list(COLUMNS), [list(r) for r in zip(*COLUMNS.values(), strict=True)], out)
    assert out.getvalue() == _by_pandas(COLUMNS)


def test_an_empty_export_is_its_header_line() -> None:
    out = io.StringIO()
    write_csv(["a", "b"], [], out)
    assert out.getvalue() == "a,b\r\n" == _by_pandas({"a": [], "b": []})
