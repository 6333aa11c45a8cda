"""Governance acts, as the CLI and the HTTP API call them: authenticate the member by their
token, authorise with the pure rules in ``team``, write the change, its hand-overs and its
audit record in one transaction.

These are short interactive acts, not pipelines: they run as plain functions (a Prefect
task run would add its overhead to every keystroke's command and nothing observable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from config.policy_loader import load_policy
from config.settings import get_complaint_settings, get_settings
from config.team_policy import TeamPolicy
from connectors.database import governance_store as store
from connectors.database.engine import session_scope
from connectors.database.migrate import ensure_schema
from tasks.governance.team import (
    GovernanceError,
    NotAllowedError,
    TeamChangeRecord,
    UnknownMemberError,
    assign_handovers,
    authorize_change,
    effective_team,
    handover_receivers,
    may_act_for,
)


class AuthenticationError(GovernanceError):
    """No token, or one we did not issue (HTTP 401)."""


@dataclass
class ChangeResult:
    change_id: int
    kind: str
    member_id: str
    author: str
    at: datetime
    details: dict[str, Any]
    companies_handed_over: dict[int, str] = field(default_factory=dict)
    complaints_handed_over: dict[int, str] = field(default_factory=dict)
    # Every kind of open work moved (company, complaint, contract, obligation, ...).
    handed_over: dict[str, dict[int, str]] = field(default_factory=dict)


def seed_team() -> TeamPolicy:
    """``config/team.yaml`` (or ``ACCOUNTFLOW_COMPLAINTS_TEAM_FILE``): the seed."""
    team_file = get_complaint_settings().team_file or get_settings().config_dir / "team.yaml"
    return load_policy(team_file, TeamPolicy)


def team_in_force(s: Session, seed: TeamPolicy | None = None) -> TeamPolicy:
    """The seed with every recorded change applied."""
    changes = [TeamChangeRecord(**c) for c in store.team_changes(s)]
    return effective_team(seed or seed_team(), changes)


def team_version() -> int:
    """Changes recorded so far: the complaints' policy cache is keyed by it."""
    with session_scope() as s:
        return store.team_version(s)


def authenticate(s: Session, token: str | None) -> str:
    if not token:
        raise AuthenticationError(
            "no member token: pass --token or set ACCOUNTFLOW_TOKEN (issued by"
            " `accountflow team token MEMBER`)"
        )
    member = store.member_for_token(s, token)
    if member is None:
        raise AuthenticationError("unknown or revoked member token")
    return member


def _now(as_of: datetime | None) -> datetime:
    return (as_of or datetime.now(UTC)).astimezone(UTC)


def _forget_cached_team() -> None:
    from tasks.complaints.policies import clear_caches

    clear_caches()


def change_team(
    token: str | None,
    kind: str,
    member_id: str,
    details: dict[str, Any] | None = None,
    as_of: datetime | None = None,
) -> ChangeResult:
    """Apply one team change as the member holding ``token``; a dismissal hands over all the
    dismissed manager's open work (``store.open_work``) and revokes their tokens."""
    ensure_schema()
    now = _now(as_of)
    with session_scope() as s:
        actor = authenticate(s, token)
        team = team_in_force(s)
        outcome = authorize_change(team, actor, kind, member_id, details or {}, now)
        change_id = store.record_change(s, kind, member_id, outcome.details, actor, now)
        result = ChangeResult(change_id, kind, member_id, actor, now, outcome.details)
        if kind == "dismiss":
            work = store.open_work(s, member_id, now)
            moved = assign_handovers(work, handover_receivers(team, member_id, now))
            result.handed_over = moved
            result.companies_handed_over = moved.get("company", {})
            result.complaints_handed_over = moved.get("complaint", {})
            store.hand_over(s, change_id, member_id, moved, now)
            store.revoke_tokens(s, member_id, now)
        before = team.by_id[member_id].model_dump(mode="json") if member_id in team.by_id else None
        gone = outcome.team.by_id.get(member_id)
        after: dict[str, Any] | None = gone.model_dump(mode="json") if gone else None
        if kind == "dismiss":
            after = {
                "dismissed": True,
                "successor": outcome.successor,
                "companies_handed_over": len(result.companies_handed_over),
                "complaints_handed_over": len(result.complaints_handed_over),
                "handed_over": {k: len(v) for k, v in result.handed_over.items()},
            }
        store.append_audit(s, actor, f"team.{kind}", f"member:{member_id}", before, after, now)
    _forget_cached_team()
    return result


def issue_member_token(
    token: str | None, member_id: str, label: str | None = None, as_of: datetime | None = None
) -> str:
    """A new token for ``member_id``, issued by the head (or by the member for themself).

    The very first token of an installation can only be the head's, and needs none: that is
    how the head gets in. Its issue is audited like any other.
    """
    ensure_schema()
    with session_scope() as s:
        team = team_in_force(s)
        if member_id not in team.by_id:
            raise UnknownMemberError(f"no manager {member_id!r} in the team")
        if store.tokens_issued(s) == 0:
            if member_id != team.head:
                raise NotAllowedError(
                    f"no token issued yet: the first one is the head's ({team.head})"
                )
            actor = member_id
        else:
            actor = authenticate(s, token)
            if actor not in (team.head, member_id):
                raise NotAllowedError(
                    f"tokens are issued by the head ({team.head}) or by a member for themself"
                )
        issued = store.issue_token(s, member_id, actor, label)
        store.append_audit(
            s, actor, "team.token", f"member:{member_id}", None, {"label": label}, _now(as_of)
        )
    return issued


def authorize_complaint_action(
    s: Session, token: str | None, complaint_id: int, as_of: datetime
) -> tuple[str | None, dict[str, Any]]:
    """The member acting on a complaint (None while no token has been issued at all: an
    installation that has not switched governance on), and the complaint's state before.

    Refused unless the member is the owner or assignee, the head, or the owner's deputy
    during the owner's absence (judged at ``as_of``, the real time of the act).
    """
    state = store.complaint_state(s, complaint_id)
    if state is None:
        raise LookupError(f"no complaint {complaint_id}")
    if token is None and store.tokens_issued(s) == 0:
        return None, state
    actor = authenticate(s, token)
    team = team_in_force(s)
    if not any(may_act_for(team, actor, state[k], as_of) for k in ("owner_id", "assignee_id")):
        raise NotAllowedError(
            f"{actor} may not act on complaint {complaint_id} of {state['owner_id']}: only its"
            " owner, the head, or the owner's deputy while the owner is absent"
        )
    return actor, state


def act_on_complaint(
    token: str | None,
    complaint_id: int,
    kind: str,
    at: datetime | None = None,
    note: str | None = None,
    actor: str | None = None,
    as_of: datetime | None = None,
) -> Any:
    """Record a complaint event as an authorised member, and audit it."""
    from tasks.complaints.pipeline import record_complaint_event

    ensure_schema()
    now = _now(as_of)
    with session_scope() as s:
        member, before = authorize_complaint_action(s, token, complaint_id, now)
    result = record_complaint_event(complaint_id, kind, at=at, note=note, actor=member or actor)
    with session_scope() as s:
        after = store.complaint_state(s, complaint_id)
        store.append_audit(
            s, member or actor or "unauthenticated", f"complaint.{kind}",
            f"complaint:{complaint_id}", before, after, now,
        )  # fmt: skip
    return result


def audit_act(
    s: Session, token: str | None, action: str, target: str, before: Any, after: Any
) -> str:
    """Audit an act another capability performs (a redrive, an unknown confirmed), in its
    transaction, as the token's member; returns who. Once tokens exist one is required,
    so the act fails (and rolls back) without one."""
    actor = "unauthenticated"
    if token is not None or store.tokens_issued(s) > 0:
        actor = authenticate(s, token)
    store.append_audit(s, actor, action, target, before, after)
    return actor


def audit_ui_act(
    s: Session, requested_by: str | None, run: str, action: str, target: str, after: Any
) -> str:
    """Audit an act asked for in the Prefect UI (a deployment's form), in its transaction.

    Prefect's open-source UI has no login, so the name is the one typed in the form, kept
    as declared and marked so, beside the flow run that carried it out; an audit reader
    can tell it from a token-authenticated act. Returns the actor as recorded.
    """
    name = " ".join((requested_by or "").split())[:80] or "unnamed"
    actor = f"prefect-ui:{name} (declared; flow run {run})"
    store.append_audit(s, actor, action, target, None, after)
    return actor
