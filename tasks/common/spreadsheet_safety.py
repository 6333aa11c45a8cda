"""Cells a spreadsheet would execute: refused on the way in, neutralised on the way out.

Two predicates, one place (ingest and every export use these, nothing else):

- ``is_formula``: text a spreadsheet evaluates as an expression that reaches a function, a
  cell reference or a DDE link: ``=`` anything, or ``+``/``-``/``@`` followed by operands
  and operators up to one (``-1+HYPERLINK(...)``, ``@A1``, ``+cmd|' /C calc'!A0``). A phone
  ``+55 11 98765-4321`` or a note ``- met at booth`` is data, not a formula. Ingest
  quarantines rows holding such a cell.
- ``is_unsafe_start``: OWASP's rule for what leaves us: any text beginning with ``=``, ``+``,
  ``-``, ``@`` (after blanks, which an import may trim), a tab or a carriage return. Strict on
  purpose: an export cannot know which spreadsheet, locale or import option will read it.
  Ingest applies it to the fields whose only place is a spreadsheet's text cell (a name, a
  company), where no real value begins that way.

pandas is imported by the frame-wide forms only: the CSV export neutralises cell by cell
without it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Full-width forms too: some import paths fold them to ASCII before parsing.
TRIGGERS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")

_OPERANDS = r"[\s\d.,+\-*/^&%()\"<>;:]*"
_CALL = r"[A-Za-z_][A-Za-z0-9_.]*\s*\("
_REFERENCE = r"\$?[A-Za-z]{1,3}\$?[0-9]+(?![A-Za-z0-9_])"
_SHEET = r"[A-Za-z_][A-Za-z0-9_]*!"
FORMULA = re.compile(
    rf"^\s*(?:[=\uff1d]|[@+\-\uff0b\uff0d\uff20]{_OPERANDS}(?:{_CALL}|{_REFERENCE}|{_SHEET})"
    r"|[@+\-=].*\|.*!)",
    re.DOTALL,
)
UNSAFE_START = re.compile(r"^(?:[\t\r]|[\s\u00a0\u3000]*[=+\-@\uff1d\uff0b\uff0d\uff20])")


def is_formula(value: str) -> bool:
    return bool(FORMULA.match(value))


def is_unsafe_start(value: str) -> bool:
    return bool(UNSAFE_START.match(value))


def neutralise_cell(value: Any) -> Any:
    """One cell as an export writes it: text with an unsafe start behind an apostrophe."""
    return "'" + value if isinstance(value, str) and is_unsafe_start(value) else value


def _candidates(s: pd.Series) -> pd.Series:
    """Cells whose first non-blank character (or first character) could start a formula:
    a cheap vectorised pass so the regular expressions run on a handful of cells only.
    Blanks are what ``str.lstrip`` strips, the same set the patterns' ``\\s`` matches, so
    the frame-wide forms see every cell ``is_unsafe_start`` and ``is_formula`` would."""
    first = s.str.lstrip().str[:1]
    return (first.isin(TRIGGERS) | s.str[:1].isin(["\t", "\r"])).fillna(False).astype(bool)


def formula_mask(frame: pd.DataFrame, strict: Collection[object] = ()) -> pd.Series:
    """Rows holding a cell a spreadsheet would execute (``is_formula``); in the ``strict``
    columns (names, companies) any cell with an unsafe start (``is_unsafe_start``) counts."""
    import pandas as pd

    mask = pd.Series(False, index=frame.index)
    for col in frame.columns:
        s = frame[col].astype("string")
        candidates = _candidates(s)
        if candidates.any():
            pattern = UNSAFE_START if col in strict else FORMULA
            found = s.where(candidates, "").str.match(pattern).fillna(False).astype(bool)
            mask |= candidates & found
    return mask


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix an apostrophe to every text cell with an unsafe start (OWASP CSV injection).

    Number-typed columns stay numbers: a typed number is never parsed as a formula.
    """
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            text = s.where(s.map(lambda v: isinstance(v, str)), pd.NA).astype("string")
            mask = _candidates(text)
            if mask.any():
                mask &= text.where(mask, "").str.match(UNSAFE_START).fillna(False).astype(bool)
            if mask.any():
                out[col] = out[col].astype(object)
                out.loc[mask, col] = "'" + text[mask]
    return out
