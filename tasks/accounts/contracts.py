"""What a contract and a fulfilment event must say to be accepted, from a file or over HTTP.

One schema serves the CSV/JSON import and ``POST /contracts``. A CSV file has one row per
obligation with the contract's columns repeated (a row without ``kind`` is a contract with no
obligation on that row); rows with the same ``reference`` form one contract and must agree on
the contract's columns. A JSON file is a list of contracts with nested ``obligations``. Every
error names the file, the row (the CSV line's number among the data rows, or the contract's
position in the JSON list) and the field.

Renewal and notice deadlines are obligations of ours too: ``derived_obligations`` adds them
from the contract's dates, so the watch treats them like any other due date.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.accounts_policy import ObligationKind

REFERENCE_PATTERN = r"^CT-[A-Za-z0-9][A-Za-z0-9-]{0,60}$"
CONTRACT_FIELDS = (
    "reference",
    "company",
    "owner",
    "start_date",
    "end_date",
    "renewal_date",
    "notice_days",
)
OBLIGATION_FIELDS = ("ref", "kind", "item", "quantity", "metric", "target", "due_date")
EventKind = Literal[
    "delivered", "partially_delivered", "invoiced", "credited", "sla_met", "sla_missed", "completed"
]


class ObligationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ref: str | None = Field(default=None, max_length=200)
    kind: ObligationKind
    item: str | None = Field(default=None, max_length=300)
    quantity: float | None = Field(default=None, gt=0)
    metric: Literal["response", "resolution", "uptime"] | None = None
    target: str | None = Field(default=None, max_length=300)
    due_date: date | None = None

    @model_validator(mode="after")
    def _complete(self) -> ObligationIn:
        if self.kind == "delivery" and not (self.item and self.quantity and self.due_date):
            raise ValueError("a delivery needs item, quantity and due_date")
        if self.kind == "service_level" and not (self.metric and self.target):
            raise ValueError("a service level needs metric and target")
        if self.kind in ("report", "price_review") and self.due_date is None:
            raise ValueError(f"a {self.kind} needs due_date")
        if self.kind == "payment_terms" and not self.target:
            raise ValueError("payment terms need target (e.g. 'net 30 days')")
        if self.kind in ("renewal", "notice"):
            raise ValueError(f"{self.kind} obligations come from the contract's dates")
        return self

    def key(self) -> str:
        """The obligation's ref: given, else from what it is, so a re-import finds it again."""
        if self.ref:
            return self.ref
        what = self.item or self.metric or self.target or ""
        return f"{self.kind}:{what}:{self.due_date or ''}"


class ContractIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reference: str = Field(pattern=REFERENCE_PATTERN)
    company: str = Field(min_length=1, max_length=300)
    owner: str | None = Field(default=None, max_length=320, description="Manager id or email.")
    start_date: date
    end_date: date | None = None
    renewal_date: date | None = None
    notice_days: int | None = Field(default=None, ge=0, le=3650)
    obligations: list[ObligationIn] = []

    @model_validator(mode="after")
    def _dates(self) -> ContractIn:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        if self.renewal_date is not None and self.renewal_date < self.start_date:
            raise ValueError(f"renewal_date {self.renewal_date} is before start_date")
        if self.notice_days is not None and not (self.renewal_date or self.end_date):
            raise ValueError("notice_days needs renewal_date or end_date to count back from")
        keys = [o.key() for o in self.obligations]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"obligations: the same obligation twice: {dupes}")
        return self


class EventIn(BaseModel):
    """A fulfilment fact about one obligation of a contract."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    contract: str = Field(pattern=REFERENCE_PATTERN)
    obligation: str | None = Field(default=None, max_length=200, description="Obligation ref.")
    item: str | None = Field(default=None, max_length=300)
    metric: Literal["response", "resolution", "uptime"] | None = None
    kind: EventKind
    quantity: float | None = Field(default=None, gt=0)
    at: datetime
    external_ref: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("at needs a UTC offset (e.g. 2026-12-01T09:00:00-03:00)")
        return value

    @model_validator(mode="after")
    def _quantity(self) -> EventIn:
        if self.kind == "partially_delivered" and self.quantity is None:
            raise ValueError("a partial delivery needs quantity")
        return self

    def key(self) -> str:
        """The event's idempotency key: given, else a digest of what it says."""
        if self.external_ref:
            return self.external_ref
        text = "|".join(
            str(v)
            for v in (
                self.contract,
                self.obligation,
                self.item,
                self.metric,
                self.kind,
                self.quantity,
                self.at.isoformat(),
            )
        )
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:40]


class RejectedRow(BaseModel):
    file: str
    row: int
    field: str
    reason: str

    def text(self) -> str:
        return f"{self.file}: row {self.row}: {self.field}: {self.reason}"


def _rejections(file: str, row: int, exc: ValidationError) -> list[RejectedRow]:
    out = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(row)"
        msg = str(e["msg"]).removeprefix("Value error, ")
        out.append(RejectedRow(file=file, row=row, field=loc, reason=msg))
    return out


def _clean(record: Mapping[str, Any]) -> dict[str, Any]:
    # CSV cells are strings: an empty cell means "not given", not "empty string".
    return {k.strip(): v for k, v in record.items() if k and v not in ("", None)}


@dataclass(frozen=True)
class ParsedContracts:
    contracts: list[tuple[list[int], ContractIn]]  # the rows each contract came from
    rejected: list[RejectedRow]
    rows_in: int


def parse_contract_records(
    file: str, records: list[dict[str, Any]], nested: bool
) -> ParsedContracts:
    """Validate contract records; ``nested`` for JSON (obligations inside each contract)."""
    if nested:
        good: list[tuple[list[int], ContractIn]] = []
        bad: list[RejectedRow] = []
        for number, record in enumerate(records, start=1):
            try:
                good.append(([number], ContractIn.model_validate(_clean(record))))
            except ValidationError as exc:
                bad.extend(_rejections(file, number, exc))
        return ParsedContracts(good, bad, len(records))
    return _parse_flat(file, records)


def _parse_flat(file: str, records: list[dict[str, Any]]) -> ParsedContracts:
    """CSV rows grouped by reference; one bad row rejects its whole contract (all or nothing)."""
    bad: list[RejectedRow] = []
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for number, record in enumerate(records, start=1):
        clean = _clean(record)
        unknown = sorted(set(clean) - set(CONTRACT_FIELDS) - set(OBLIGATION_FIELDS))
        if unknown:
            bad.append(
                RejectedRow(file=file, row=number, field=unknown[0], reason="unknown column")
            )
            continue
        ref = str(clean.get("reference", ""))
        if not ref:
            bad.append(RejectedRow(file=file, row=number, field="reference", reason="missing"))
            continue
        groups.setdefault(ref, []).append((number, clean))
    good: list[tuple[list[int], ContractIn]] = []
    for rows in groups.values():
        first_row, first = rows[0]
        head = {k: first[k] for k in CONTRACT_FIELDS if k in first}
        problems: list[RejectedRow] = []
        for number, row in rows[1:]:
            for k in CONTRACT_FIELDS:
                if k in row and str(row[k]) != str(head.get(k, row[k])):
                    problems.append(
                        RejectedRow(
                            file=file,
                            row=number,
                            field=k,
                            reason=f"{row[k]!r} disagrees with {head.get(k)!r} on row {first_row}",
                        )
                    )
        obligations: list[ObligationIn] = []
        for number, row in rows:
            part = {k: row[k] for k in OBLIGATION_FIELDS if k in row}
            if not part:
                continue
            try:
                obligations.append(ObligationIn.model_validate(part))
            except ValidationError as exc:
                problems.extend(_rejections(file, number, exc))
        if not problems:
            try:
                contract = ContractIn.model_validate({**head, "obligations": obligations})
                good.append(([n for n, _ in rows], contract))
            except ValidationError as exc:
                problems.extend(_rejections(file, first_row, exc))
        bad.extend(problems)
    return ParsedContracts(good, bad, len(records))


def parse_event_records(
    file: str, records: list[dict[str, Any]]
) -> tuple[list[tuple[int, EventIn]], list[RejectedRow]]:
    good: list[tuple[int, EventIn]] = []
    bad: list[RejectedRow] = []
    for number, record in enumerate(records, start=1):
        try:
            good.append((number, EventIn.model_validate(_clean(record))))
        except ValidationError as exc:
            bad.extend(_rejections(file, number, exc))
    return good, bad


def read_records(path: Path, key: str) -> tuple[list[dict[str, Any]], bool]:
    """Records of a CSV (header = field names) or JSON file (a list, or ``{key: [...]}``);
    the flag says whether they came from JSON (nested)."""
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.name}: not valid JSON: {exc}") from exc
        if isinstance(data, dict):
            data = data.get(key)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValueError(f"{path.name}: expected a list of objects or {{'{key}': [...]}}")
        return data, True
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return [dict(r) for r in csv.DictReader(fh)], False
    raise ValueError(f"{path.name}: expected a .csv or .json file")


def derived_obligations(contract: ContractIn) -> list[ObligationIn]:
    """The renewal date and the last day to give notice, as obligations of ours."""
    out: list[ObligationIn] = []
    if contract.renewal_date is not None:
        out.append(
            ObligationIn.model_construct(
                ref="renewal",
                kind="renewal",
                item=None,
                quantity=None,
                metric=None,
                target="decide on the renewal with the client",
                due_date=contract.renewal_date,
            )
        )
    end = contract.renewal_date or contract.end_date
    if contract.notice_days is not None and end is not None:
        out.append(
            ObligationIn.model_construct(
                ref="notice",
                kind="notice",
                item=None,
                quantity=None,
                metric=None,
                target=f"last day to give {contract.notice_days} days' notice",
                due_date=end - timedelta(days=contract.notice_days),
            )
        )
    return out


def all_obligations(contract: ContractIn) -> list[tuple[ObligationIn, bool]]:
    """The contract's obligations (service levels due at the contract's end unless dated),
    then the derived ones; the flag marks derived."""
    own = [
        (
            o.model_copy(update={"due_date": o.due_date or contract.end_date})
            if o.kind == "service_level"
            else o,
            False,
        )
        for o in contract.obligations
    ]
    return own + [(o, True) for o in derived_obligations(contract)]


def match_obligation(
    event: EventIn, candidates: Iterable[Mapping[str, Any]]
) -> tuple[int | None, str | None]:
    """The obligation an event is about among its contract's (dicts: id, ref, kind, item,
    metric), or None with the field and reason to report."""
    rows = list(candidates)
    if event.obligation:
        found = [r for r in rows if r["ref"] == event.obligation]
        return (int(found[0]["id"]), None) if found else (None, "obligation: no such ref")
    if event.kind in ("sla_met", "sla_missed"):
        found = [
            r
            for r in rows
            if r["kind"] == "service_level"
            and (event.metric is None or r["metric"] == event.metric)
        ]
        what = "metric"
    elif event.item:
        found = [r for r in rows if r["item"] == event.item]
        what = "item"
    else:
        return None, "obligation: give the obligation ref or the item"
    if len(found) == 1:
        return int(found[0]["id"]), None
    if not found:
        return None, f"{what}: no obligation of the contract matches"
    return None, f"{what}: matches {len(found)} obligations; give the obligation ref"
