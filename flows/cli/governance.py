"""`accountflow team ...` and `accountflow audit`: team changes by the head, as a member."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.options import JsonOpt, TokenOpt, parse_instant

team_app = typer.Typer(no_args_is_help=True, help="The account team: tokens, appointments, ...")


def _run(what: Any) -> Any:
    """Call a governance act; a refusal is a clear message and exit code 1, no traceback."""
    from tasks.governance.team import GovernanceError

    try:
        return what()
    except (GovernanceError, LookupError) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(code=1) from exc


def _echo_change(result: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "change_id": result.change_id,
                    "kind": result.kind,
                    "member_id": result.member_id,
                    "author": result.author,
                    "at": result.at.isoformat(),
                    "details": result.details,
                    "companies_handed_over": result.companies_handed_over,
                    "complaints_handed_over": result.complaints_handed_over,
                    "handed_over": result.handed_over,
                },
                indent=2,
            )
        )
        return
    typer.echo(f"{result.kind} {result.member_id}: change {result.change_id} by {result.author}")
    if result.kind == "dismiss":
        moved = ", ".join(f"{len(v)} {k}" for k, v in result.handed_over.items() if v)
        typer.echo(
            f"  handed over {moved or 'nothing'} (successor {result.details.get('successor')})"
        )


@team_app.command("token")
def token_cmd(
    member: Annotated[str, typer.Argument(help="Manager id from the team.")],
    label: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
    token: TokenOpt = None,
) -> None:
    """Issue an API token for MEMBER (printed once; only its hash is stored).

    The head issues tokens; the first one of an installation is the head's and needs none.
    """
    from tasks.governance.service import issue_member_token

    issued = _run(lambda: issue_member_token(token, member, label))
    typer.echo(issued)


@team_app.command("appoint")
def appoint_cmd(
    member: Annotated[str, typer.Argument(help="New manager id.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    email: Annotated[str | None, typer.Option(help="Work email.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone.")] = "UTC",
    territory: Annotated[list[str] | None, typer.Option(help="Territory (repeatable).")] = None,
    deputy: Annotated[str | None, typer.Option(help="Deputy's manager id.")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Appoint a manager (the head only)."""
    from tasks.governance.service import change_team

    details: dict[str, Any] = {"name": name, "timezone": timezone}
    if email:
        details["email"] = email
    if territory:
        details["territories"] = territory
    if deputy:
        details["deputy"] = deputy
    _echo_change(_run(lambda: change_team(token, "appoint", member, details)), as_json)


@team_app.command("dismiss")
def dismiss_cmd(
    member: Annotated[str, typer.Argument(help="Manager id.")],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dismiss a manager (the head only); their companies and open complaints go to their
    deputy, or in turn to the managers present."""
    from tasks.governance.service import change_team

    _echo_change(_run(lambda: change_team(token, "dismiss", member)), as_json)


@team_app.command("set-deputy")
def set_deputy_cmd(
    member: Annotated[str, typer.Argument(help="Manager id.")],
    deputy: Annotated[str | None, typer.Argument(help="Deputy's id; omit to clear.")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set (or clear) a manager's deputy (the manager or the head)."""
    from tasks.governance.service import change_team

    _echo_change(
        _run(lambda: change_team(token, "set_deputy", member, {"deputy": deputy})), as_json
    )


@team_app.command("absence")
def absence_cmd(
    member: Annotated[str, typer.Argument(help="Manager id.")],
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last day (YYYY-MM-DD).")],
    reason: Annotated[str, typer.Option(help="Vacation, sick leave, ...")] = "absence",
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record an absence (the manager or the head); the deputy holds the rights meanwhile."""
    from tasks.governance.service import change_team
    from tasks.governance.team import absence_details

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise typer.BadParameter(f"not a YYYY-MM-DD date: {exc}") from exc
    details = _run(lambda: absence_details(first, last, reason))
    _echo_change(_run(lambda: change_team(token, "absence", member, details)), as_json)


@team_app.command("show")
def show_cmd(as_json: JsonOpt = False) -> None:
    """The team in force: the seed file with every recorded change applied."""
    from connectors.database.engine import session_scope
    from connectors.database.migrate import ensure_schema
    from tasks.governance.service import team_in_force

    ensure_schema()
    with session_scope() as s:
        team = team_in_force(s)
    if as_json:
        typer.echo(team.model_dump_json(indent=2))
        return
    typer.echo(f"head: {team.head}")
    for m in team.managers:
        absences = ", ".join(f"{a.start}..{a.end}" for a in m.absences) or "-"
        typer.echo(f"  {m.id:<12} {m.name:<24} deputy {m.deputy or '-':<10} absent {absences}")


def audit_cmd(
    since: Annotated[
        str | None, typer.Option("--since", help="From this instant (ISO 8601).")
    ] = None,
    who: Annotated[str | None, typer.Option("--who", help="Only this member's acts.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail: who changed what, when, with the state before and after."""
    from connectors.database import governance_store as store
    from connectors.database.engine import session_scope
    from connectors.database.migrate import ensure_schema

    ensure_schema()
    with session_scope() as s:
        records = store.audit_records(s, parse_instant(since, "--since"), who)
    if as_json:
        typer.echo(json.dumps(records, default=str, indent=1, ensure_ascii=False))
        return
    for r in records:
        typer.echo(f"{r['at']:%Y-%m-%d %H:%M:%S}  {r['actor']:<12} {r['action']:<22} {r['target']}")
        typer.echo(f"    before {json.dumps(r['before'], ensure_ascii=False)}")
        typer.echo(f"    after  {json.dumps(r['after'], ensure_ascii=False)}")


def rotate_link_secret_cmd() -> None:
    """Retire the generated unsubscribe-link secret for a new one; old links keep working
    for ACCOUNTFLOW_UNSUBSCRIBE_SECRET_GRACE_DAYS."""
    from config.settings import get_settings
    from connectors.link_secrets import InsecureLinkSecretError, rotate_generated_secret

    try:
        ring = rotate_generated_secret(get_settings())
    except InsecureLinkSecretError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"rotated; {len(ring.retired)} retired secret(s) kept for their grace period")


privacy_app = typer.Typer(no_args_is_help=True, help="Data-subject requests (LGPD/GDPR).")


@privacy_app.command("export")
def privacy_export_cmd(
    person: Annotated[str, typer.Argument(help="Contact id, email or phone.")],
    out: Annotated[Path | None, typer.Option(help="Write to this file (default stdout).")] = None,
) -> None:
    """Everything held on PERSON, as JSON: contact, identifiers, source rows, messages,
    scores, outreach, complaints, audit."""
    from tasks.governance.privacy import export_person

    data = _run(lambda: export_person(person))
    text = json.dumps(data, indent=1, ensure_ascii=False, default=str)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


@privacy_app.command("erase")
def privacy_erase_cmd(
    person: Annotated[str, typer.Argument(help="Contact id, email or phone.")],
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase PERSON everywhere in one transaction; only salted keys of their addresses stay,
    on the suppression list, so they are never re-imported nor contacted."""
    from tasks.governance.privacy import erase_person

    counts = _run(lambda: erase_person(person, token))
    if as_json:
        typer.echo(json.dumps(counts, indent=2))
    else:
        typer.echo("erased: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def check_freshness_cmd(
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO 8601; default now.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the `check-freshness` flow: stale contact fields per owner, the share of fresh
    values per field and owner (a table artifact), and re-verification emails enqueued."""
    from flows.governance import check_freshness

    summary = check_freshness(as_of=parse_instant(as_of))
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
        return
    typer.echo(f"{summary.stale_values} stale of {summary.values_checked} values checked")
    for field, share in sorted(summary.share_fresh_by_field.items()):
        typer.echo(f"  {field:<10} {share:6.1%} fresh")
    for owner, count in sorted(summary.stale_contacts_by_owner.items()):
        typer.echo(f"  {owner:<12} {count} contacts with a stale field")
    typer.echo(
        f"{summary.reverification_emails_enqueued} re-verification emails put in the outbox"
        " (sent by the reverify-details campaign's dispatch)"
    )
    if summary.bases_raised_to_contract:
        typer.echo(f"{summary.bases_raised_to_contract} contacts now held on their contract")


def register(app: typer.Typer) -> None:
    app.command("check-freshness")(check_freshness_cmd)
    app.add_typer(privacy_app, name="privacy")
    app.add_typer(team_app, name="team")
    team_app.command("rotate-link-secret")(rotate_link_secret_cmd)
    app.command("audit")(audit_cmd)
