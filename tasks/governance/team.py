"""The effective team and who may change it or act for whom (pure: data in, data out).

``config/team.yaml`` is the seed; each change a person makes is a record (kind, member,
details, author, time) and the team in force is the seed with every record applied in
order. The rules are the job description's: the head alone appoints and dismisses
managers; a manager's deputy and absences are set by the manager or the head; while the
owner is absent the deputy holds all the owner's rights over their complaints and
accounts, and not after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from config.team_policy import Absence, Manager, TeamPolicy

KINDS = ("appoint", "dismiss", "set_deputy", "absence")


class GovernanceError(ValueError):
    """A change or action that is refused, with a message meant for the person who tried."""


class NotAllowedError(GovernanceError):
    """The actor is known but lacks the right (HTTP 403)."""


class UnknownMemberError(GovernanceError):
    """The change names a member the team does not have (HTTP 404)."""


@dataclass(frozen=True)
class TeamChangeRecord:
    kind: str
    member_id: str
    details: dict[str, Any]
    author: str
    at: datetime
    id: int = 0


@dataclass(frozen=True)
class Outcome:
    """What a permitted change does: the team after it, and who takes a dismissed manager's
    territories and accounts."""

    team: TeamPolicy
    successor: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _replace(team: TeamPolicy, managers: list[Manager]) -> TeamPolicy:
    return TeamPolicy.model_validate(
        {**team.model_dump(exclude={"managers"}), "managers": [m.model_dump() for m in managers]}
    )


def present_managers(team: TeamPolicy, as_of: datetime, exclude: str | None = None) -> list[str]:
    """Managers who can take work now: not absent, taking accounts, not ``exclude``."""
    return [
        m.id
        for m in team.managers
        if m.id != exclude and m.takes_new_accounts and not m.is_absent(as_of)
    ]


def handover_receivers(team: TeamPolicy, member_id: str, as_of: datetime) -> list[str]:
    """Who takes over a dismissed manager's work: their deputy when present, else every
    present manager in turn (round robin), else the head."""
    deputy = team.by_id[member_id].deputy
    if deputy and deputy in team.by_id and not team.by_id[deputy].is_absent(as_of):
        return [deputy]
    return present_managers(team, as_of, exclude=member_id) or [team.head]


def successor_of(team: TeamPolicy, member_id: str, as_of: datetime) -> str:
    """Who takes a dismissed manager's territories and accounts in the policy."""
    return handover_receivers(team, member_id, as_of)[0]


def apply_change(team: TeamPolicy, change: TeamChangeRecord) -> TeamPolicy:
    """The team after ``change`` (already authorised and validated when it was recorded)."""
    managers = list(team.managers)
    index = {m.id: i for i, m in enumerate(managers)}
    target = change.member_id
    if change.kind == "appoint":
        manager = Manager.model_validate({"id": target, **change.details})
        if target in index:
            managers[index[target]] = manager
        else:
            managers.append(manager)
        return _replace(team, managers)
    if target not in index:
        raise UnknownMemberError(f"no manager {target!r} in the team")
    if change.kind == "dismiss":
        gone = managers[index[target]]
        heir = str(change.details.get("successor") or team.head)
        kept = []
        for m in managers:
            if m.id == target:
                continue
            update: dict[str, Any] = {}
            if m.deputy == target:
                update["deputy"] = None
            if m.team_lead == target:
                update["team_lead"] = None
            if m.id == heir:
                update["territories"] = [*m.territories, *gone.territories]
                update["accounts"] = [*m.accounts, *gone.accounts]
            kept.append(m.model_copy(update=update) if update else m)
        return _replace(team, kept)
    if change.kind == "set_deputy":
        managers[index[target]] = managers[index[target]].model_copy(
            update={"deputy": change.details.get("deputy")}
        )
        return _replace(team, managers)
    if change.kind == "absence":
        absence = Absence.model_validate(change.details)
        m = managers[index[target]]
        managers[index[target]] = m.model_copy(update={"absences": [*m.absences, absence]})
        return _replace(team, managers)
    raise GovernanceError(f"unknown team change {change.kind!r}; expected one of {KINDS}")


def effective_team(seed: TeamPolicy, changes: list[TeamChangeRecord]) -> TeamPolicy:
    team = seed
    for change in sorted(changes, key=lambda c: c.id):
        team = apply_change(team, change)
    return team


def authorize_change(
    team: TeamPolicy,
    actor: str,
    kind: str,
    member_id: str,
    details: dict[str, Any],
    as_of: datetime,
) -> Outcome:
    """Check ``actor`` may make this change and that it leaves a valid team; the outcome.

    Raises ``NotAllowedError`` (not the head, not the manager), ``UnknownMemberError``, or
    ``GovernanceError`` for a change that would break the team (dismissing the head, a
    deputy who is not on the team, an absence that ends before it starts).
    """
    if actor not in team.by_id:
        raise NotAllowedError(f"{actor!r} is not on the team")
    is_head = actor == team.head
    if kind in ("appoint", "dismiss") and not is_head:
        raise NotAllowedError(
            f"only the head of the company ({team.head}) appoints and dismisses managers;"
            f" {actor} may not {kind} {member_id}"
        )
    if kind in ("set_deputy", "absence") and not (is_head or actor == member_id):
        raise NotAllowedError(
            f"the deputy and absences of {member_id} are set by {member_id} or by the head"
            f" ({team.head}), not by {actor}"
        )
    if kind not in KINDS:
        raise GovernanceError(f"unknown team change {kind!r}; expected one of {KINDS}")
    if kind == "appoint":
        if member_id in team.by_id:
            raise GovernanceError(f"{member_id} is already on the team")
    elif member_id not in team.by_id:
        raise UnknownMemberError(f"no manager {member_id!r} in the team")
    recorded = dict(details)
    successor = None
    if kind == "dismiss":
        if member_id == team.head:
            raise GovernanceError("the head cannot be dismissed through accountflow")
        successor = successor_of(team, member_id, as_of)
        recorded["successor"] = successor
    if kind == "set_deputy":
        deputy = details.get("deputy")
        if deputy is not None and deputy not in team.by_id:
            raise UnknownMemberError(f"deputy {deputy!r} is not on the team")
    change = TeamChangeRecord(kind, member_id, recorded, actor, as_of)
    try:
        after = apply_change(team, change)
    except GovernanceError:
        raise
    except ValueError as exc:  # pydantic: the team or the details do not validate
        raise GovernanceError(f"{kind} {member_id}: {exc}") from exc
    return Outcome(after, successor, recorded)


def may_act_for(team: TeamPolicy, actor: str, owner: str | None, as_of: datetime) -> bool:
    """Whether ``actor`` may act on what ``owner`` owns at ``as_of``.

    The owner, the head, and the owner's deputy while the owner is absent. Something whose
    owner has left the team is the head's until it is handed over.
    """
    if actor not in team.by_id:
        return False
    if actor == team.head or (owner is not None and actor == owner):
        return True
    manager = team.by_id.get(owner) if owner else None
    return manager is not None and manager.deputy == actor and manager.is_absent(as_of)


def round_robin(items: list[int], receivers: list[str]) -> dict[int, str]:
    """Spread ``items`` over ``receivers`` in turn (stable: sorted items)."""
    if not receivers:
        raise GovernanceError("nobody present to hand the work over to")
    return {item: receivers[i % len(receivers)] for i, item in enumerate(sorted(items))}


def absence_details(start: date, end: date, reason: str) -> dict[str, Any]:
    """The details of an absence change; an absence ending before it starts is refused."""
    try:
        Absence(start=start, end=end, reason=reason)
    except ValueError as exc:
        raise GovernanceError(f"absence: {exc}") from exc
    return {"start": start.isoformat(), "end": end.isoformat(), "reason": reason}


def assign_handovers(
    work: dict[str, list[tuple[int, int | None]]], receivers: list[str]
) -> dict[str, dict[int, str]]:
    """Who takes each piece of a dismissed manager's open work.

    ``work``: kind -> (item id, its company or None). Companies go round robin over
    ``receivers``; every other item follows its company to that company's receiver, so an
    account's contract, obligations, complaints and talks stay with one person; items
    whose company did not move go round robin among themselves, kind by kind.
    """
    companies = round_robin([c for c, _ in work.get("company", [])], receivers)
    moved: dict[str, dict[int, str]] = {"company": companies}
    for kind, items in work.items():
        if kind == "company":
            continue
        loose = [item for item, company in items if company not in companies]
        spread = round_robin(loose, receivers) if loose else {}
        moved[kind] = {
            item: companies[company] if company in companies else spread[item]
            for item, company in items
        }
    return moved
