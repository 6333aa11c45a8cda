"""Tax-id check digits for a whole column at once.

python-stdnum is the reference, but it checks one string per call (a few microseconds
each), which alone would blow the 500,000 rows/s scoring budget. The schemes that make up
almost all of our data (Brazilian CNPJ/CPF, Portuguese NIF) are therefore checked here
with numpy over a digit matrix; every other shape (EU VAT with a country prefix, Spanish
NIF with letters, the 2026 alphanumeric CNPJ) goes to python-stdnum, once per distinct
value. tests/unit/scoring/test_scoring.py pins the numpy path against stdnum as the oracle.
"""

from __future__ import annotations

import importlib

import numpy as np
import numpy.typing as npt
import pandas as pd
from stdnum import exceptions as stdnum_exceptions
from stdnum.eu import vat as eu_vat
from stdnum.util import get_cc_module

# Result codes; int8 so a million rows cost a megabyte.
ABSENT: int = -1
INVALID: int = 0
VALID: int = 1
_UNDECIDED = -2

_SEPARATORS = " -./"  # what stdnum's compact() strips for these schemes
_CNPJ_W = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)  # first digit uses the last 12
_CPF_W = (11, 10, 9, 8, 7, 6, 5, 4, 3, 2)  # first digit uses the last 9
_NIF_W = (9, 8, 7, 6, 5, 4, 3, 2)

Digits = npt.NDArray[np.int32]  # shape (positions, rows): one contiguous vector per digit
Flags = npt.NDArray[np.bool_]


def _dv(d: Digits, weights: tuple[int, ...]) -> npt.NDArray[np.int32]:
    """The ``(11 - weighted sum) mod 11 mod 10`` check digit shared by CNPJ, CPF and NIF."""
    total = np.zeros(d.shape[1], dtype=np.int32)
    for k, w in enumerate(weights):
        total += w * d[k]
    return np.asarray((11 - total) % 11 % 10, dtype=np.int32)


def _valid_cnpj(d: Digits) -> Flags:
    ok = (d[12] == _dv(d, _CNPJ_W[1:])) & (d[13] == _dv(d, _CNPJ_W))
    return np.asarray(ok & d[:12].any(axis=0))  # stdnum rejects 000000000000xx


def _valid_cpf(d: Digits) -> Flags:
    ok = (d[9] == _dv(d, _CPF_W[1:])) & (d[10] == _dv(d, _CPF_W))
    return np.asarray(ok & d.any(axis=0))


def valid_cnpjs(digits: list[str]) -> Flags:
    """For strings of exactly 14 ASCII digits: which are valid CNPJs, by the same rule as
    python-stdnum. Staging's fast path: most tax ids at a Brazilian fair are CNPJs."""
    chars = np.frombuffer("".join(digits).encode("ascii"), dtype=np.uint8).reshape(-1, 14)
    return _valid_cnpj(np.ascontiguousarray((chars - 48).T).astype(np.int32))


def _valid_pt_nif(d: Digits) -> Flags:
    return np.asarray((d[0] != 0) & (d[8] == _dv(d, _NIF_W)))


def _stdnum_valid(value: str, country: str) -> bool:
    """One value through python-stdnum: EU VAT by prefix, else the stated country's scheme."""
    compact = "".join(ch for ch in value if ch not in _SEPARATORS).upper()
    if len(compact) > 2 and compact[:2].isalpha() and eu_vat.is_valid(compact):
        return True
    if not country:
        return False
    module = get_cc_module(country.lower(), "vat")
    if module is None:
        return False
    try:
        return bool(module.is_valid(compact))
    except (stdnum_exceptions.ValidationError, ValueError):
        return False


def _compact(
    values: list[str],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Separators removed from all values at once: one buffer, with row starts and lengths.

    Joining with newlines and deleting separators with ``bytes.translate`` runs in C over
    the whole column; a per-value ``str.replace`` would cost more than the rest of scoring.
    """
    text = "\n".join(values)
    buf = np.frombuffer(
        text.encode("utf-8", "replace").translate(None, _SEPARATORS.encode()) + b"\n",
        dtype=np.uint8,
    )
    ends = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    return buf, starts, (ends - starts).astype(np.int64)


def _compact_arrow(
    values: pd.Series,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """The same buffer, starts and lengths read straight from an Arrow-backed column.

    pandas 3 keeps strings in Arrow when pyarrow is installed; then the separators go in
    one Arrow kernel and the bytes are read without making a Python string per row.
    Returns None for any other storage, which takes the join path.
    """
    if not isinstance(values.array, pd.arrays.ArrowStringArray):
        return None
    # Imported by name: pyarrow is pandas' optional accelerator, not our dependency.
    pa = importlib.import_module("pyarrow")
    pc = importlib.import_module("pyarrow.compute")

    column = pa.chunked_array(pa.array(values.array)).combine_chunks()
    compacted = column
    for separator in _SEPARATORS:  # four literal passes beat one regex pass by 3x
        compacted = pc.replace_substring(compacted, pattern=separator, replacement="")
    compacted = compacted.cast(pa.large_string())
    _, offsets_buf, data_buf = compacted.buffers()
    start = compacted.offset
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[start : start + len(compacted) + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(1, np.uint8)
    )
    return data, offsets[:-1].copy(), np.diff(offsets)


def validate_tax_ids(values: pd.Series, countries: pd.Series) -> npt.NDArray[np.int8]:
    """Per row: ``VALID``, ``INVALID`` or ``ABSENT`` (null or blank).

    ``countries`` (ISO2, may be null) only picks the scheme for values that are not a
    CNPJ/CPF/NIF shape; a 9-digit value is a Portuguese NIF unless another country is
    stated.
    """
    out = np.full(len(values), ABSENT, dtype=np.int8)
    idx = np.flatnonzero(values.notna().to_numpy())
    if len(idx) == 0:
        return out
    arrow = _compact_arrow(values)
    if arrow is not None:
        buf, all_starts, all_lengths = arrow
        starts, lengths = all_starts[idx], all_lengths[idx]
    else:
        present: list[str] = values.iloc[idx].tolist()
        try:
            buf, starts, lengths = _compact(present)
        except TypeError:  # numbers read from a spreadsheet: their text is what we check
            present = [str(v) for v in present]
            buf, starts, lengths = _compact(present)
        if len(starts) != len(present):
            # A newline inside a value shifted the rows after it: such a value is no tax
            # id, so swap it for one that checks as invalid and compact again.
            present = ["?" if "\n" in v else v for v in present]
            buf, starts, lengths = _compact(present)

    verdict = np.full(len(idx), _UNDECIDED, dtype=np.int8)
    verdict[lengths == 0] = ABSENT
    for length, check in ((14, _valid_cnpj), (11, _valid_cpf), (9, _valid_pt_nif)):
        rows = np.flatnonzero(lengths == length)
        if length == 9 and len(rows):
            stated = countries.iloc[idx[rows]].astype(object)
            pt = stated.isna() | stated.astype(str).str.upper().eq("PT")
            rows = rows[pt.to_numpy(dtype=bool)]
        if not len(rows):
            continue
        chars = buf[starts[rows, None] + np.arange(length)]
        all_digits = ((chars - 48) < 10).all(axis=1)  # uint8 wraps below '0'
        digits = np.ascontiguousarray((chars[all_digits] - 48).T).astype(np.int32)
        verdict[rows[all_digits]] = check(digits).astype(np.int8)

    # Everything else: python-stdnum once per distinct (value, country).
    rest = np.flatnonzero(verdict == _UNDECIDED)
    if len(rest):
        rest_country = countries.iloc[idx[rest]].astype(object).fillna("").astype(str)
        pairs = pd.MultiIndex.from_arrays(
            [values.iloc[idx[rest]].astype(str).to_numpy(dtype=object), rest_country.to_numpy()]
        )
        codes, uniques = pairs.factorize()
        answers = np.array([_stdnum_valid(v, c) for v, c in uniques], dtype=np.int8)
        verdict[rest] = answers[codes]
    out[idx] = verdict
    return out
