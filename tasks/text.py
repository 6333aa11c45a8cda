"""Text folding shared by header mapping, name keys and company keys."""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower-case ASCII words: accents dropped, punctuation to single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return _NON_ALNUM.sub(" ", ascii_only).strip()


def fold_series(values: pd.Series) -> pd.Series:
    """``fold`` for a column; NFKD runs per unique value, the rest is vectorised."""
    uniq = pd.Series(values.dropna().unique())
    ascii_only = uniq.map(
        lambda s: unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")
    )
    folded = ascii_only.str.lower().str.replace(r"[^0-9a-z]+", " ", regex=True).str.strip()
    # astype: a column blank on every row maps to all-NA floats, which have no .str accessor.
    return values.map(dict(zip(uniq, folded, strict=True))).astype("string")
