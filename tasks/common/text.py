"""Text folding shared by header mapping, name keys and company keys."""

from __future__ import annotations

import re
import unicodedata

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower-case ASCII words: accents dropped, punctuation to single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = decomposed.encode("ascii", "ignore").decode("ascii").lower()
    return _NON_ALNUM.sub(" ", ascii_only).strip()


def fold_arrow(values: pd.Series) -> pa.Array:
    """``fold`` for a column, as an Arrow array (null where the value is missing).

    Arrow's kernels do in C++ what ``fold`` does per string in Python, five times faster
    on a batch's names and companies; a test holds the two to the same results.
    """
    text = pa.array(values.astype("string").array, type=pa.large_string())
    text = pc.utf8_normalize(text, "NFKD")
    text = pc.replace_substring_regex(text, r"[^\x00-\x7f]+", "")
    text = pc.replace_substring_regex(pc.ascii_lower(text), r"[^0-9a-z]+", " ")
    return pc.utf8_trim(text, " ")


def as_strings(array: pa.Array, index: pd.Index) -> pd.Series:
    """An Arrow string array as a pandas string column, without a copy through Python."""
    return pd.Series(pd.arrays.ArrowStringArray(array.cast(pa.large_string())), index=index)
