"""Who must hear about a complaint, and when: the escalation ladder and absence delegation.

An escalation is due once its ladder step's threshold instant (from ``sla_clock``) is at or
before ``as_of``. Its idempotency key names the complaint, clock, level and kind and nothing
about the run, so every rerun (same or later ``as_of``) produces the same key and the
caller's unique constraint turns "insert, notify if new" into exactly-once notification.

Delegation is recomputed from the team policy at each ``as_of`` rather than stored as a
state machine: the owner never loses ownership, the assignee is "the first present person
on the owner's deputy chain", and hand-overs are the differences from what was recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from config.sla_policy import ClockName, LadderStep, SlaPolicy
from config.team_policy import TeamPolicy
from tasks.complaints.business_hours import Seconds, epoch
from tasks.complaints.sla_clock import ClockBatch

DelegationReason = Literal["present", "deputy", "no_deputy", "deputy_cycle"]


@dataclass(frozen=True)
class Delegation:
    """Who stands in for ``manager_id`` at one instant, and the chain walked to find them."""

    manager_id: str
    assignee_id: str
    chain: tuple[str, ...]  # manager_id, then every absent deputy tried, then the assignee
    reason: DelegationReason


def resolve_delegate(team: TeamPolicy, manager_id: str, as_of: datetime) -> Delegation:
    """The first present manager on ``manager_id``'s deputy chain, or the head.

    The chain stops at a repeat (A → B → A while both are away) or at someone without a
    deputy, and then falls back to the head, who is the last resort even when absent:
    a complaint must always have somebody.
    """
    managers = team.by_id
    chain = [manager_id]
    current = manager_id
    seen = {manager_id}
    while managers[current].is_absent(as_of):
        deputy = managers[current].deputy
        if deputy is None or deputy in seen:
            reason: DelegationReason = "no_deputy" if deputy is None else "deputy_cycle"
            if team.head not in seen:
                chain.append(team.head)
            return Delegation(manager_id, team.head, tuple(chain), reason)
        chain.append(deputy)
        seen.add(deputy)
        current = deputy
    return Delegation(
        manager_id, current, tuple(chain), "present" if current == manager_id else "deputy"
    )


def delegations(team: TeamPolicy, as_of: datetime) -> dict[str, Delegation]:
    return {m.id: resolve_delegate(team, m.id, as_of) for m in team.managers}


def level_recipients(
    team: TeamPolicy,
    owner_id: str | None,
    as_of: datetime,
    table: Mapping[str, Delegation] | None = None,
) -> dict[int, str]:
    """Who receives each ladder level for a complaint owned by ``owner_id``, after delegation.

    Level 1 is the owner, level 2 the owner's team lead (or deputy when there is no lead),
    level 3 the head; each is replaced by their stand-in when absent. Unowned complaints go
    straight to the head. ``table`` is ``delegations(team, as_of)`` when the caller has it.
    """
    stand_in = table if table is not None else delegations(team, as_of)
    head = stand_in[team.head].assignee_id
    if owner_id is None or owner_id not in team.by_id:
        return {1: head, 2: head, 3: head}
    owner = team.by_id[owner_id]
    second = owner.team_lead or owner.deputy or team.head
    return {1: stand_in[owner_id].assignee_id, 2: stand_in[second].assignee_id, 3: head}


def idempotency_key(complaint_id: object, clock: ClockName, step: LadderStep) -> str:
    return f"complaint:{complaint_id}:{clock}:l{step.level}:{step.kind}"


ESCALATION_COLUMNS = [
    "idempotency_key",
    "complaint_id",
    "clock",
    "level",
    "kind",
    "at_fraction",
    "due_at",
    "owner_id",
    "recipient_id",
    "notify",
    "as_of",
]


@dataclass(frozen=True)
class EscalationBatch:
    """Escalations due at ``as_of``, one per array position (see ``ESCALATION_COLUMNS``).

    Arrays because the scheduler produces this every 15 minutes for every open complaint;
    ``to_frame`` is the table to insert (unique on ``idempotency_key``) and to report.
    """

    idempotency_key: npt.NDArray[np.object_]
    complaint_id: npt.NDArray[np.object_]
    clock: npt.NDArray[np.object_]
    level: npt.NDArray[np.int64]
    kind: npt.NDArray[np.object_]
    at_fraction: npt.NDArray[np.float64]
    due: Seconds  # epoch seconds at which the step was crossed
    owner_id: npt.NDArray[np.object_]
    recipient_id: npt.NDArray[np.object_]
    notify: npt.NDArray[np.bool_]
    as_of: datetime

    def __len__(self) -> int:
        return len(self.idempotency_key)

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {c: getattr(self, c) for c in ESCALATION_COLUMNS if c not in ("due_at", "as_of")}
        )
        frame["due_at"] = pd.to_datetime(self.due, unit="s", utc=True)
        frame["as_of"] = pd.Timestamp(self.as_of).tz_convert("UTC")
        return frame[ESCALATION_COLUMNS]


def _repeat(text: str, n: int) -> npt.NDArray[np.object_]:
    # np.full with a str and dtype=object is ~15x slower than repeating a 1-element array.
    return np.repeat(np.array([text], dtype=object), n)


def decide_escalations(
    clocks: ClockBatch,
    owners: pd.Series,
    policy: SlaPolicy,
    team: TeamPolicy,
    as_of: datetime,
) -> EscalationBatch:
    """Every escalation that is due at ``as_of``, already sent or not (see module docstring).

    ``owners`` holds each complaint's owner id, aligned on the batch's index (None when
    unowned). ``notify`` is False when the clock stopped after the step was crossed
    (answered or resolved since): the record is still kept, because the SLA was missed, but
    nobody needs to be paged about a closed matter.
    """
    now = epoch(as_of)
    owner_values = owners.reindex(clocks.index).to_numpy(dtype=object)
    owner_codes, owner_ids = pd.factorize(owner_values)
    # Routes are per owner, not per complaint: a few dozen delegation walks per run.
    known = [o if o in team.by_id else None for o in owner_ids]
    table = delegations(team, as_of)
    routes = [level_recipients(team, o, as_of, table) for o in known]
    routes.append(level_recipients(team, None, as_of, table))  # code -1: no owner at all
    owner_col = np.array([*known, None], dtype=object)
    ids_text: npt.NDArray[np.object_] | None = None
    parts: dict[str, list[npt.NDArray[Any]]] = {
        c: [] for c in ESCALATION_COLUMNS if c not in ("due_at", "as_of")
    }
    parts["due"] = []
    for clock, steps in policy.ladder.items():
        arrays = clocks.clocks[clock]
        for step in steps:
            crossed = arrays.steps[(step.level, step.kind)]
            idx = np.flatnonzero(crossed <= now)  # NEVER is int64 max: never due
            if not idx.size:
                continue
            if ids_text is None:
                ids_text = pd.Series(clocks.complaint_id).astype(str).to_numpy(dtype=object)
            codes = owner_codes[idx]
            recipients = np.array([r[step.level] for r in routes], dtype=object)
            # Same text as idempotency_key(), built column-wise for 100k-row batches.
            parts["idempotency_key"].append(
                "complaint:" + ids_text[idx] + f":{clock}:l{step.level}:{step.kind}"
            )
            parts["complaint_id"].append(clocks.complaint_id[idx])
            parts["clock"].append(_repeat(clock, idx.size))
            parts["level"].append(np.full(idx.size, step.level, dtype=np.int64))
            parts["kind"].append(_repeat(step.kind, idx.size))
            parts["at_fraction"].append(np.full(idx.size, step.at_fraction))
            parts["owner_id"].append(owner_col[codes])
            parts["recipient_id"].append(recipients[codes])
            parts["notify"].append(arrays.running[idx])
            parts["due"].append(crossed[idx])
    empty = {
        "level": np.int64,
        "at_fraction": np.float64,
        "due": np.int64,
        "notify": np.bool_,
    }
    columns = {
        c: np.concatenate(v) if v else np.empty(0, dtype=empty.get(c, object))
        for c, v in parts.items()
    }
    return EscalationBatch(as_of=as_of, **columns)


HANDOVER_COLUMNS = ["complaint_id", "owner_id", "from_id", "to_id", "reason", "chain", "at"]


def plan_handovers(assignments: pd.DataFrame, team: TeamPolicy, as_of: datetime) -> pd.DataFrame:
    """Hand-overs needed at ``as_of`` so each complaint sits with its owner's stand-in.

    ``assignments``: ``complaint_id``, ``owner_id``, ``assignee_id`` (as last recorded).
    A row comes back only where the assignee must change, with reason ``owner_absent``,
    ``delegate_absent`` (the stand-in left too) or ``owner_returned``; applying them and
    rerunning yields nothing, so the history records each hand-over once.
    """
    table = delegations(team, as_of)
    frame = assignments[["complaint_id", "owner_id", "assignee_id"]].reset_index(drop=True)
    target = frame["owner_id"].map({o: d.assignee_id for o, d in table.items()})
    current = frame["assignee_id"].astype(object)
    moves = frame[target.notna() & (target != current)].copy()
    if moves.empty:
        return pd.DataFrame(columns=HANDOVER_COLUMNS)
    to_id = target[moves.index]
    chain = moves["owner_id"].map({o: d.chain for o, d in table.items()})
    was = moves["assignee_id"].astype(object)
    on_chain = [c in ch for c, ch in zip(was, chain, strict=True)]
    reason = np.where(
        to_id == moves["owner_id"],
        "owner_returned",
        np.where(
            (was == moves["owner_id"]) | was.isna() | ~np.array(on_chain, dtype=bool),
            "owner_absent",
            "delegate_absent",
        ),
    )
    return pd.DataFrame(
        {
            "complaint_id": moves["complaint_id"].to_numpy(),
            "owner_id": moves["owner_id"].to_numpy(),
            "from_id": was.to_numpy(),
            "to_id": to_id.to_numpy(),
            "reason": reason,
            "chain": [" > ".join(c) for c in chain],
            "at": pd.Timestamp(as_of).tz_convert("UTC"),
        }
    )[HANDOVER_COLUMNS]


OwnershipRule = Literal["account", "territory", "round_robin"]


def assign_owners(
    accounts: pd.DataFrame, team: TeamPolicy, as_of: datetime, cursor: int = 0
) -> tuple[pd.DataFrame, int]:
    """Owner for each new account: listed account, then territory, then round robin.

    ``accounts``: ``account_id`` and optional ``territory``. Round robin goes through the
    managers who take new accounts and are present at ``as_of`` (in id order), starting at
    ``cursor``; the returned cursor is where the next call continues, so the caller stores
    it and the rotation survives restarts.
    """
    by_account = {a: m.id for m in team.managers for a in m.accounts}
    by_territory = {t: m.id for m in team.managers for t in m.territories}
    pool = sorted(m.id for m in team.managers if m.takes_new_accounts and not m.is_absent(as_of))
    if not pool:
        pool = [resolve_delegate(team, team.head, as_of).assignee_id]
    territories: Iterable[object] = (
        accounts["territory"] if "territory" in accounts else [None] * len(accounts)
    )
    rows: list[tuple[object, str, OwnershipRule]] = []
    for account, territory in zip(accounts["account_id"], territories, strict=True):
        if account in by_account:
            rows.append((account, by_account[account], "account"))
        elif territory in by_territory:
            rows.append((account, by_territory[str(territory)], "territory"))
        else:
            rows.append((account, pool[cursor % len(pool)], "round_robin"))
            cursor += 1
    return pd.DataFrame(rows, columns=["account_id", "owner_id", "rule"]), cursor


def escalation_message(row: Mapping[str, object], team: TeamPolicy) -> dict[str, object]:
    """Slack/Teams-style webhook body for one escalation; no client personal data in it."""
    recipient = team.by_id.get(str(row["recipient_id"]))
    who = recipient.name if recipient else str(row["recipient_id"])
    clock = str(row["clock"]).replace("_", " ")
    text = (
        f"Complaint {row['complaint_id']}: {clock} SLA {row['kind']} "
        f"(level {row['level']}, {float(str(row['at_fraction'])):.0%} of the time used) "
        f"for {who}."
    )
    return {"text": text, "escalation": {k: str(v) for k, v in row.items()}}
