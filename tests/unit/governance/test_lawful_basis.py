"""The lawful basis each contact is held on: consent columns, precedence, first source."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from config.governance_policy import ConsentRule, LawfulBasisPolicy
from tasks.common.text import fold
from tasks.governance.provenance import consent_given, contact_sources, decide_bases

RULE = ConsentRule(headers=["Consentimento", "opt in"], agreed=["sim", "yes", "x"])
POLICY = LawfulBasisPolicy(consent=RULE)


def _raw(rows: list[dict[str, str]]) -> pd.Series:
    """Rows as staging writes them: compact JSON objects of header -> cell."""
    texts = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rows]
    return pd.Series(texts, dtype="string")


def test_a_consent_column_answering_yes_in_any_spelling_is_consent() -> None:
    raw = _raw(
        [
            {"Nome": "Ana", "CONSENTIMENTO ": "Sim"},
            {"Nome": "Bia", "CONSENTIMENTO ": "Não"},
            {"Nome": "Caio", "CONSENTIMENTO ": ""},
            {"Nome": "Duda", "CONSENTIMENTO ": "SIM!"},
        ]
    )
    assert consent_given(raw, RULE).tolist() == [True, False, False, True]


def test_a_file_without_a_consent_column_gives_no_consent() -> None:
    raw = _raw([{"Nome": "Ana", "Observações": "sim"}])
    assert consent_given(raw, RULE).tolist() == [False]


def test_a_quote_inside_another_cell_does_not_fool_the_extraction() -> None:
    raw = _raw([{"Nome": 'Ana "Opt-In": "yes"', "Opt-In": "no"}])
    assert consent_given(raw, RULE).tolist() == [False]


@given(
    st.lists(
        st.sampled_from(["Sim", " yes", "X", "no", 'a "b"', "\\", "não"]) | st.text(max_size=8),
        max_size=6,
    )
)
@example(["x\n", 'sim"', "yes\\"])  # JSON escapes in the raw text
def test_consent_is_read_for_every_row_whatever_the_cells(cells: list[str]) -> None:
    raw = _raw([{"Nome": c, "Opt in": c} for c in cells])
    given_ = consent_given(raw, RULE)
    assert len(given_) == len(cells)
    assert given_.tolist() == [fold(c) in ("sim", "yes", "x") for c in cells]


def test_precedence_picks_consent_over_contract_over_the_source_basis() -> None:
    kind = pd.Series(["exhibition", "exhibition", "inbox", "inbox"])
    consent = pd.Series([False, True, False, True])
    contract = pd.Series([False, False, True, True])
    decided = decide_bases(kind, consent, contract, POLICY)
    assert decided["lawful_basis"].tolist() == [
        "legitimate_interest", "consent", "contract", "consent",
    ]  # fmt: skip
    assert decided["basis_rule"].tolist() == [
        "source:exhibition", "consent_column", "contract", "consent_column",
    ]  # fmt: skip


def test_a_new_contact_keeps_its_first_row_as_source_and_its_best_basis() -> None:
    rows = pd.DataFrame(
        {
            "contact_id": [7, 7, 8],
            "source_row_id": [100, 101, 102],
            "file_id": [1, 2, 2],
            "row_number": [5, 9, 10],
            "consent": [False, True, False],
            "contract": [False, False, False],
        }
    )
    files = pd.DataFrame(
        {"id": [1, 2], "name": ["a.csv", "b.csv"], "event": ["Expo", None], "kind": "exhibition"}
    )
    known = pd.DataFrame({"contact_id": [8], "lawful_basis": ["consent"]})
    fresh, raised = contact_sources(rows, files, known, POLICY)
    [seven] = fresh.to_dict(orient="records")
    assert seven["source_file"] == "a.csv" and seven["source_row_number"] == 5
    assert seven["lawful_basis"] == "consent" and seven["basis_rule"] == "consent_column"
    assert raised.empty  # 8 holds consent already: a weaker sighting does not lower it


def test_a_known_contact_is_raised_not_lowered() -> None:
    rows = pd.DataFrame(
        {"contact_id": [3, 4], "source_row_id": [1, 2], "file_id": [1, 1], "row_number": [1, 2],
         "consent": [True, False], "contract": [False, False]}
    )  # fmt: skip
    files = pd.DataFrame({"id": [1], "name": ["x.csv"], "event": [None], "kind": ["exhibition"]})
    known = pd.DataFrame({"contact_id": [3, 4], "lawful_basis": ["legitimate_interest"] * 2})
    fresh, raised = contact_sources(rows, files, known, POLICY)
    assert fresh.empty
    assert raised.to_dict(orient="records") == [
        {"contact_id": 3, "lawful_basis": "consent", "basis_rule": "consent_column"}
    ]


def test_a_policy_naming_an_unknown_basis_or_leaving_one_unranked_is_refused() -> None:
    with pytest.raises(ValueError, match="legitimate_interest"):
        LawfulBasisPolicy(precedence=["consent", "contract"])
    with pytest.raises(ValueError):
        LawfulBasisPolicy.model_validate({"by_source": {"exhibition": "because", "inbox": "x"}})
