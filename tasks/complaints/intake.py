"""What a complaint must say to be accepted, from a file or over HTTP, and how its state reads.

One pydantic schema (``ComplaintIn``) serves the CSV/JSON import and ``POST /complaints`` so
both reject the same things with the same messages. Entity resolution is deliberately
simple and exact (see ``complaints_store.resolve_parties``): email, then phone, through the
identifiers ingestion recorded; companies by their folded name key.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.sla_policy import Severity

MAX_TEXT = 20_000


class ComplaintIn(BaseModel):
    """One complaint as a client (or an operator importing a list) reports it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_ref: str | None = Field(
        default=None,
        max_length=200,
        description="The sender's own id; a second complaint with the same ref is a duplicate.",
    )
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=400)
    company: str | None = Field(default=None, max_length=300)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    state: str | None = Field(default=None, max_length=100)
    severity: Severity = "medium"
    tier: str | None = Field(default=None, max_length=32)
    category: str | None = Field(default=None, max_length=64)
    root_cause: str | None = Field(default=None, max_length=120)
    reference: str | None = Field(
        default=None, max_length=120, description="Contract or order number the complaint names."
    )
    subject: str | None = Field(default=None, max_length=1000)
    body: str | None = Field(default=None, max_length=MAX_TEXT)
    created_at: datetime | None = Field(
        default=None, description="When the client complained (ISO 8601 with offset); now if unset."
    )

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        local, _, domain = value.rpartition("@")
        if not local or "." not in domain or " " in value:
            raise ValueError("not an email address")
        return value.lower()

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else None

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("created_at needs a UTC offset (e.g. 2026-12-01T09:00:00-03:00)")
        return value

    @model_validator(mode="after")
    def _someone_complains(self) -> ComplaintIn:
        if not (self.email or self.phone or self.company):
            raise ValueError("a complaint needs an email, a phone or a company to belong to")
        if not (self.subject or self.body):
            raise ValueError("a complaint needs a subject or a body")
        return self


class RejectedRow(BaseModel):
    row: int
    reason: str


def _error_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()
    )


def validate_records(
    records: Iterable[Mapping[str, Any]],
) -> tuple[list[tuple[int, ComplaintIn]], list[RejectedRow]]:
    """Valid complaints with their 1-based row number, and every rejected row with its reason."""
    good: list[tuple[int, ComplaintIn]] = []
    bad: list[RejectedRow] = []
    for number, record in enumerate(records, start=1):
        # CSV cells are strings: an empty cell means "not given", not "empty string".
        clean = {k: v for k, v in record.items() if k and v not in ("", None)}
        try:
            good.append((number, ComplaintIn.model_validate(clean)))
        except ValidationError as exc:
            bad.append(RejectedRow(row=number, reason=_error_text(exc)))
    return good, bad


def read_import_file(path: Path) -> list[dict[str, Any]]:
    """Records of a CSV (header = field names) or JSON file (list, or {"complaints": [...]})."""
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = data.get("complaints")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"{path.name}: expected a list of objects or {{'complaints': [...]}}")
        return data
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return [dict(r) for r in csv.DictReader(fh)]
    raise ValueError(f"{path.name}: expected a .csv or .json file")


def territory_for(country: str | None, state: str | None, known: Iterable[str]) -> str | None:
    """The most specific territory a team claims: ``BR-SP`` before ``BR``."""
    names = set(known)
    if country and state and f"{country}-{state.upper()}" in names:
        return f"{country}-{state.upper()}"
    return country


# Worst first: the single state an export or a dashboard shows for a complaint.
STATE_ORDER = ("breached", "warning", "ok", "paused", "met", "resolved", "not_started")


def overall_states(response: npt.ArrayLike, resolution: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """One SLA state per complaint: the worse of its two clocks, except that a met first
    response stands aside for the resolution clock (which then says what is going on)."""
    rank = {s: i for i, s in enumerate(STATE_ORDER)}
    order = np.array(STATE_ORDER, dtype=object)
    resp = pd.Series(np.asarray(response, dtype=object)).map(rank).to_numpy(dtype=np.int64)
    res = pd.Series(np.asarray(resolution, dtype=object)).map(rank).to_numpy(dtype=np.int64)
    worst = np.minimum(resp, res)
    worst = np.where(worst == rank["met"], res, worst)
    return order[worst]


def utc_naive(value: datetime) -> datetime:
    """Aware instant to the naive UTC the database columns hold."""
    return value.astimezone(UTC).replace(tzinfo=None)


# Event kind -> (statuses it may follow, status after it). "responded" keeps the status:
# answering the client is not resolving the matter.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "responded": (("open", "waiting"), None),
    "waiting_on_client": (("open",), "waiting"),
    "resumed": (("waiting",), "open"),
    "resolved": (("open", "waiting"), "resolved"),
    "reopened": (("resolved",), "open"),
}


def next_status(kind: str, status: str) -> str:
    """The complaint's status after ``kind``; a move that makes no sense is refused."""
    if kind not in TRANSITIONS:
        raise ValueError(f"unknown complaint event {kind!r}; expected one of {list(TRANSITIONS)}")
    allowed, after = TRANSITIONS[kind]
    if status not in allowed:
        raise ValueError(f"cannot record {kind!r} on a complaint that is {status!r}")
    return after or status
