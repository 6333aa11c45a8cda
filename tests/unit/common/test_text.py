"""Folding text for matching: the vectorised fold must agree with the per-string one."""

from __future__ import annotations

import pandas as pd

from tasks.common.text import fold, fold_arrow

TRICKY = [
    "João da Silva",
    "  MARÍA   José  Pérez-Núñez ",
    "Ærø Ølsen",  # letters NFKD does not decompose: dropped, as fold drops them
    "ﬁnance Ｆｕｌｌｗｉｄｔｈ",  # ligature and fullwidth letters: compatibility forms
    "Çağrı Öztürk",
    "Zoë\tO'Brien\nJr.",
    "Straße 12/3",
    "Ação & Cia. Ltda.",
    "北京 Trading Co",
    "—",
    "",
]


def test_fold_arrow_gives_what_fold_gives_string_by_string() -> None:
    values = pd.Series([*TRICKY, None], dtype="string")
    folded = fold_arrow(values).to_pylist()
    assert folded[:-1] == [fold(v) for v in TRICKY]
    assert folded[-1] is None
