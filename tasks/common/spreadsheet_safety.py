"""Cells a spreadsheet would execute: refused on the way in, neutralised on the way out."""

from __future__ import annotations

import re

import pandas as pd

# "=..." always; "@NAME(", "+NAME(", "-NAME(" function calls; DDE payloads
# ("cmd|' /C calc'!A0") behind any of = + - @. A phone "+55 11 ..." or a note
# "- met at booth" is data, not a formula.
FORMULA = re.compile(r"^\s*(?:=|[@+\-]\s*[A-Za-z_][A-Za-z0-9_.]*\s*\(|[@+\-=].*\|.*!)", re.DOTALL)


def is_formula(value: str) -> bool:
    return bool(FORMULA.match(value))


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix an apostrophe to each cell a spreadsheet would evaluate (OWASP CSV injection)."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            text = s.astype("string")
            mask = text.str.match(FORMULA).fillna(False).astype(bool)
            if mask.any():
                out.loc[mask, col] = "'" + text[mask]
    return out
