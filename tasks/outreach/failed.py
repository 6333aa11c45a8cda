"""Failed outreach as ops see it, and the rules for sending it again.

One row per failed, unknown, bounced or deferred message: where it was going (masked), what
went wrong (the protocol code and the peer's words) and what to do about it. The CLI
(`accountflow outreach failed|retry`) and the Prefect side (the `failed-outreach` artifact,
the `redrive-outreach` deployment) share these functions, so both say and do the same.

No Prefect here: the CLI's report answers without importing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tasks.common.masking import mask_personal_data

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

FAILED_OUTREACH_KEY = "failed-outreach"
REDRIVE_LINKS_KEY = "failed-outreach-redrive"
REDRIVE_FLOW = "redrive-outreach"
REPORT_FLOW = "report-failed-outreach"
REDRIVEN_MARK = "[redriven by ops]"  # appended to last_detail by the store's redrive

# Answers that say the address itself is wrong (RFC 5321 4.2.3, RFC 3463 X.1.x).
_ADDRESS_CODES = {550, 551, 553}
_ENHANCED = re.compile(r"\b[245]\.(\d{1,3})\.\d{1,3}\b")


def row_kind(row: Mapping[str, Any]) -> str:
    """bounced | unknown | failed | redriven | deferred: what the operator is looking at."""
    if row.get("final_status") == "hard_bounce":
        return "bounced"
    status = row.get("status")
    if status == "unknown":
        return "unknown"
    if status == "retry":
        return "redriven" if REDRIVEN_MARK in (row.get("last_detail") or "") else "deferred"
    return "failed"


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else ""


def redrive_hint(row: Mapping[str, Any]) -> str:
    """What to do about one row, in the words of the rules `redrive` applies."""
    kind = row_kind(row)
    detail = (row.get("last_detail") or "").lower()
    code = row.get("last_code")
    if kind == "bounced":
        return "bounced after delivery; the address is suppressed: correct it on the contact"
    if kind == "unknown":
        return (
            "may have arrived (the send was interrupted): check, then redrive with confirm_unknown"
        )
    if kind == "redriven":
        return "due again: the next dispatch run sends it"
    if kind == "deferred":
        return f"retried automatically at {_when(row.get('next_attempt_at'))}"
    if detail.startswith("render"):
        return "the template could not render for this contact: fix it, then redrive"
    if detail.startswith("gave up"):
        return "gave up after repeated temporary failures: redrive when the peer is back"
    enhanced = _ENHANCED.search(detail)
    if code in _ADDRESS_CODES or (enhanced is not None and enhanced.group(1) == "1"):
        return "address refused: correct the contact's address, then redrive"
    if code == 554 or (enhanced is not None and enhanced.group(1) == "7"):
        return "refused by the receiving server's policy: check sender and content, then redrive"
    if row.get("channel") == "fax":
        return "the fax gateway refused it: check the number, then redrive"
    return "redrive once the cause is fixed"


def mask_address(channel: str, recipient: str | None) -> str:
    """An address ops can tell apart from others without reading it."""
    if not recipient:
        return ""
    if channel == "fax":
        digits = re.sub(r"\D", "", recipient)
        return "***" + digits[-2:]
    return mask_personal_data(recipient)


def report_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The failed-outreach table: one row per outbox row, personal data masked (the
    peer's reply often quotes the address)."""
    out = []
    for row in rows:
        detail = mask_personal_data((row.get("last_detail") or "").replace(REDRIVEN_MARK, ""))
        out.append(
            {
                "id": row["id"],
                "campaign": row["campaign"],
                "step": row.get("step_name") or "",
                "channel": row["channel"],
                "address": mask_address(row["channel"], row.get("recipient")),
                "status": row_kind(row),
                "reason": detail.strip()[:160],
                "code": row.get("last_code") if row.get("last_code") is not None else "",
                "attempts": row.get("attempts", 0),
                "last_attempt": _when(row.get("updated_at")),
                "next_attempt": _when(row.get("next_attempt_at")),
                "redrive": redrive_hint(row),
            }
        )
    return out


def failure_note(
    attempted: int,
    failed: int,
    unknown: int,
    retried: int,
    failed_by_reason: Mapping[str, int],
) -> str | None:
    """What a dispatch run's state says when something went wrong, e.g.
    ``6 of 13 failed: 4 x 550, 2 x 554``; None for a clean run."""
    if not (failed or unknown or retried):
        return None
    parts = []
    if failed:
        reasons = sorted(failed_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        codes = ", ".join(f"{n} x {_short(reason)}" for reason, n in reasons)
        parts.append(f"{failed} of {attempted} failed" + (f": {codes}" if codes else ""))
    if unknown:
        parts.append(f"{unknown} of {attempted} unknown (may have arrived; review before redrive)")
    if retried:
        parts.append(f"{retried} deferred, retried later")
    return "; ".join(parts)


def _short(reason: str) -> str:
    """``smtp 550`` -> ``550``; other reasons as they are."""
    head, _, code = reason.partition(" ")
    return code if head in ("smtp", "http") and code.isdigit() else reason


class RedriveChoiceError(ValueError):
    """Neither ids nor a campaign: a redrive never means "everything"."""


@dataclass
class RedriveResult:
    redriven: dict[str, int] = field(default_factory=dict)
    unknown_left_for_review: int = 0

    @property
    def total(self) -> int:
        return sum(self.redriven.values())

    def message(self) -> str:
        text = f"{self.total} rows due again" + (
            " (" + ", ".join(f"{k}: {v}" for k, v in sorted(self.redriven.items())) + ")"
            if self.redriven
            else ""
        )
        if self.unknown_left_for_review:
            text += (
                f"; {self.unknown_left_for_review} unknown rows left as they are: they may "
                "have been delivered; confirm_unknown resends them"
            )
        return text


def check_choice(campaign: str | None, ids: Sequence[int] | None) -> None:
    if not campaign and not ids:
        raise RedriveChoiceError("choose rows by ids and/or a campaign")


def redrive_audit_terms(
    campaign: str | None, ids: Sequence[int] | None, confirm_unknown: bool
) -> tuple[str, str]:
    """The audit's action and target for a redrive, the same from the CLI and the UI."""
    action = "outreach.confirm_unknown" if confirm_unknown else "outreach.redrive"
    target = f"campaign:{campaign or '*'} ids:{','.join(map(str, ids or [])) or '*'}"
    return action, target


def redrive(
    now: datetime,
    *,
    campaign: str | None,
    ids: Sequence[int] | None,
    confirm_unknown: bool,
    audit: Callable[[Session, dict[str, int]], object] | None = None,
) -> RedriveResult:
    """Make the chosen failed (and, when confirmed, unknown) rows due again.

    Rows whose send may have arrived (``unknown``) stay as they are unless ops confirm,
    so a redrive never sends twice without a person saying so; bounced rows are never
    redriven (their address is suppressed). ``audit`` records who asked, in the same
    transaction, so a refused audit (no valid token) redrives nothing.
    """
    from connectors.database import outreach_failed_store as store
    from connectors.database.engine import session_scope
    from connectors.database.migrate import ensure_schema

    check_choice(campaign, ids)
    ensure_schema()
    with session_scope() as s:
        counts = store.redrive(s, now, campaign=campaign, ids=ids, include_unknown=confirm_unknown)
        if audit is not None:
            audit(s, counts)
        left = 0 if confirm_unknown else store.skipped_unknown(s, ids or [])
    return RedriveResult(redriven=counts, unknown_left_for_review=left)


def load_report(campaign: str | None = None) -> list[dict[str, Any]]:
    """The failed-outreach table for one campaign or all, from the database."""
    from connectors.database import outreach_failed_store as store
    from connectors.database.engine import session_scope
    from connectors.database.migrate import ensure_schema

    ensure_schema()
    with session_scope() as s:
        return report_rows(store.failed_rows(s, campaign, deferred=True))
