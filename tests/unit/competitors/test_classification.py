"""Policy points, values and materiality of a change, in Portuguese, Spanish and English."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.competitors_policy import PolicyPoint as P
from tasks.competitors.classification import analyse, extract_values, parse_number
from tasks.competitors.diffing import assess, current_statements


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1.200,50", 1200.5), ("1,200.50", 1200.5), ("49,90", 49.9), ("49.90", 49.9),
     ("1.200", 1200.0), ("30", 30.0), ("1 200", 1200.0)],
)  # fmt: skip
def test_numbers_read_in_both_decimal_conventions(raw: str, value: float) -> None:
    assert parse_number(raw) == value


@pytest.mark.parametrize(
    ("text", "point", "values"),
    [
        ("Pagamento em até 30 dias após a emissão da nota fiscal.", P.PAYMENT_TERMS,
         {("days", "30")}),
        ("Garantía de 24 meses en todos los productos.", P.WARRANTY, {("months", "24")}),
        ("A 2-year warranty covers parts.", P.WARRANTY, {("months", "24")}),
        ("Entrega em 5 dias úteis para capitais.", P.DELIVERY_TIME, {("business_days", "5")}),
        ("Desconto de 5% para pedidos acima de R$ 1.200,00.", P.DISCOUNT,
         {("pct", "5"), ("amount", "BRL", "1200")}),
        ("Atención al cliente de lunes a viernes de 9:00 a 18:00.", P.SUPPORT_HOURS,
         {("weekdays", "Mon-Fri"), ("hours", "09:00-18:00")}),
        ("Support Monday to Friday, 9am to 5pm.", P.SUPPORT_HOURS,
         {("weekdays", "Mon-Fri"), ("hours", "09:00-17:00")}),
        ("Loyalty members earn 3% cashback.", P.LOYALTY, {("pct", "3")}),
        ("Returns are free within thirty days.", P.RETURNS, {("days", "30"), ("free",)}),
    ],
)  # fmt: skip
def test_points_and_values_are_read_in_three_languages(
    text: str, point: P, values: set[tuple[str, ...]]
) -> None:
    (passage,) = analyse(text)
    assert point in passage.points
    assert values <= set(passage.values)


def test_dates_are_never_values() -> None:
    for text in ("Updated on 3 December 2026", "Atualizado em 03/12/2026 10:32",
                 "Actualizado el 3 de diciembre de 2026", "2026-12-03T10:00:00Z"):  # fmt: skip
        assert extract_values(text) == ()


def test_a_bare_amount_on_a_price_list_is_a_price() -> None:
    (row,) = analyse("Widget XL | € 49,90 |")
    assert row.points == (P.PRICE,) and row.values == (("amount", "EUR", "49.9"),)


def test_values_under_a_heading_belong_to_the_heading_point() -> None:
    rows = analyse("Warranty\nAll items: 24 months.")
    assert rows[1].points == (P.WARRANTY,)


def test_a_value_that_moved_is_material() -> None:
    found = assess("Returns accepted within 30 days.", "Returns accepted within 14 days.")
    assert found.material and found.points == (P.RETURNS,)
    assert found.changes[0].what == "value moved"
    assert found.summary() == "returns: 30 days → 14 days"


def test_a_clause_added_or_removed_is_material() -> None:
    base = "Payment within 30 days."
    added = assess(base, base + "\nLoyalty programme: members earn points on every order.")
    assert added.material and added.changes[0].what == "clause added"
    removed = assess(base + "\nFree shipping on every order.", base)
    assert removed.material and removed.changes[0].what == "clause removed"


def test_a_clause_turned_negative_is_material() -> None:
    found = assess("Aceptamos devoluciones en 30 días.", "No aceptamos devoluciones en 30 días.")
    assert found.material and found.changes[0].what == "clause negated"


def test_portuguese_no_is_not_a_negation() -> None:
    found = assess("Devolução em 7 dias.", "Devolução no prazo de 7 dias.")
    assert not found.material


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Payment within 30 days.\nUpdated on 3 December 2026.",
         "Payment within 30 days.\nUpdated on 6 December 2026."),
        ("Payment within 30 days.", "Payment   within 30\u00a0days."),
        ("Payment within 30 days. Warranty of 24 months.",
         "Warranty of 24 months. Payment within 30 days."),
        ("Returns accepted within 30 days.", "We accept returns within 30 days."),
        ("Payment within 30 days.", "Payment within 30 days.\nOur new office opened in Porto."),
    ],
)  # fmt: skip
def test_cosmetic_changes_are_not_material(old: str, new: str) -> None:
    assert not assess(old, new).material


def test_current_statements_give_a_cell_per_point() -> None:
    cells = current_statements("Warranty of 24 months.\nNo returns on custom orders.")
    assert cells[P.WARRANTY] == ["24 months"]
    assert cells[P.RETURNS] == ["not offered"]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400), st.text(max_size=400))
def test_any_text_is_assessed_without_raising_and_equal_text_is_never_material(
    old: str, new: str
) -> None:
    found = assess(old, new)
    assert isinstance(found.material, bool)
    assert not assess(new, new).material
