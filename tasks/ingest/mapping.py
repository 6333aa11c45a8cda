"""Decide which of a file's headers carry which of our fields."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from config.policies import SourcesPolicy
from tasks.common.text import fold

CONTACT_FIELDS = {"email", "phone", "mobile"}
NAME_FIELDS = {"first_name", "last_name", "full_name"}


class UnmappableFile(ValueError):
    """The headers do not say where a lead's name or contact details are."""


@dataclass(frozen=True)
class ColumnMapping:
    fields: dict[int, str]  # column index -> our field
    unmapped: list[str]
    source: str | None


def _alias_index(policy: SourcesPolicy) -> dict[str, str]:
    return {fold(alias): name for name, aliases in policy.aliases.items() for alias in aliases}


def looks_like_header(cells: Sequence[str], policy: SourcesPolicy) -> bool:
    """A header names at least two of our fields (title rows above it name none)."""
    index = _alias_index(policy)
    return len({index[f] for c in cells if (f := fold(c)) in index}) >= 2


def choose_source(file_name: str, policy: SourcesPolicy, source: str | None) -> str | None:
    if source is not None:
        if source not in policy.sources:
            raise UnmappableFile(f"unknown source {source!r}; configured: {sorted(policy.sources)}")
        return source
    for name, spec in policy.sources.items():
        if any(fnmatch.fnmatch(file_name.lower(), pattern.lower()) for pattern in spec.match):
            return name
    return None


def map_columns(
    header: Sequence[str], policy: SourcesPolicy, source: str | None = None
) -> ColumnMapping:
    """Map header cells to fields; the first column wins when two carry the same field."""
    explicit = {fold(k): v for k, v in policy.sources[source].columns.items()} if source else {}
    aliases = _alias_index(policy)
    fields: dict[int, str] = {}
    unmapped: list[str] = []
    for i, cell in enumerate(header):
        key = fold(cell)
        name = explicit.get(key) or aliases.get(key)
        if name is None or name in fields.values():
            if cell.strip():
                unmapped.append(cell)
            continue
        fields[i] = name
    found = set(fields.values())
    if not (found & CONTACT_FIELDS) or not (found & (NAME_FIELDS | {"company"})):
        raise UnmappableFile(
            "cannot map this file's columns: need a name or company column and an email or "
            f"phone column; mapped {sorted(found) or 'nothing'}; unmapped headers: {unmapped}. "
            "Add the headers to config/sources.yaml (aliases, or a named source)."
        )
    return ColumnMapping(fields=fields, unmapped=unmapped, source=source)
