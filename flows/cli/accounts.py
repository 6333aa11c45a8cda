"""`accountflow contracts import|events FILE|watch` and `accountflow accounts score|actions`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.options import AsOfOpt, JsonOpt, parse_instant

contracts_app = typer.Typer(no_args_is_help=True, help="Contracts, obligations and their watch.")
FileArg = Annotated[Path, typer.Argument(help="CSV (header = field names) or JSON file.")]


def _rejections(rows: list[Any]) -> None:
    for r in rows:
        typer.echo(f"  {r.text()}")


@contracts_app.command("import")
def import_cmd(file: FileArg, as_json: JsonOpt = False) -> None:
    """Run the `import-contracts` flow; rejected rows name the file, row and field."""
    from flows.accounts import import_contracts

    if not file.is_file():
        raise typer.BadParameter(f"file not found: {file}")
    try:
        summary = import_contracts(str(file))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
    else:
        typer.echo(
            f"Contracts from {file.name}: {summary.rows_in} rows in = {summary.rows_accepted}"
            f" accepted + {summary.rows_rejected} rejected; contracts {summary.contracts_created}"
            f" created, {summary.contracts_updated} updated, {summary.contracts_unchanged}"
            f" unchanged; obligations {summary.obligations_created} created,"
            f" {summary.obligations_updated} updated"
        )
        _rejections(summary.rejected_rows)
    if summary.rows_rejected:
        raise typer.Exit(code=1)


@contracts_app.command("events")
def events_cmd(file: FileArg, as_json: JsonOpt = False) -> None:
    """Record fulfilment events (delivered, partially_delivered, invoiced, credited, sla_met,
    sla_missed, completed) from a file."""
    from flows.accounts import import_contract_events

    if not file.is_file():
        raise typer.BadParameter(f"file not found: {file}")
    try:
        summary = import_contract_events(str(file))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
    else:
        typer.echo(
            f"Events from {file.name}: {summary.rows_in} rows in = {summary.recorded} recorded"
            f" + {summary.duplicates} duplicates + {summary.rejected} rejected"
        )
        _rejections(summary.rejected_rows)
    if summary.rejected:
        raise typer.Exit(code=1)


@contracts_app.command("watch")
def watch_cmd(as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Run the `watch-obligations` flow once."""
    from flows.accounts import watch_obligations

    summary = asyncio.run(watch_obligations(as_of=parse_instant(as_of)))
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
        return
    states = ", ".join(f"{k} {v}" for k, v in sorted(summary.states.items())) or "none"
    typer.echo(
        "\n".join(
            [
                f"Obligations watch at {summary.as_of.isoformat()}",
                f"  watched        {summary.watched:>8}   ({states})",
                f"  changed        {summary.changed:>8}",
                f"  notices        {summary.new_notices:>8} new",
                *summary.channel_lines(),
                f"  seconds        {summary.seconds:>8.2f}",
            ]
        )
    )


accounts_app = typer.Typer(no_args_is_help=True, help="Account health and next best actions.")


@accounts_app.command("score")
def score_cmd(as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Run the `score-accounts` flow: health, band changes and next actions."""
    from flows.accounts import score_accounts

    summary = asyncio.run(score_accounts(as_of=parse_instant(as_of)))
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
        return
    bands = ", ".join(f"{k} {v}" for k, v in sorted(summary.bands.items())) or "none"
    typer.echo(
        f"Account health at {summary.as_of.isoformat()}: {summary.companies} companies"
        f" ({bands}); {summary.band_changes} band changes; {summary.actions} next actions"
    )


@accounts_app.command("actions")
def actions_cmd(
    company: Annotated[str | None, typer.Argument(help="Only this company (its name).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The next best actions of the latest `score-accounts` run, soonest due first."""
    from connectors.database import accounts_store
    from connectors.database.engine import session_scope
    from connectors.database.migrate import ensure_schema
    from tasks.accounts.pipeline import action_table

    ensure_schema()
    with session_scope() as s:
        rows = action_table(accounts_store.latest_actions(s, company))
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("No next actions (run `accountflow accounts score` first).")
    for r in rows:
        typer.echo(
            f"{r['due']}  {r['assignee']:<10} {r['company']}: {r['action']}"
            f"  [health {r['health']} {r['band']}; {r['reason']}]"
        )


@accounts_app.command("plan")
def plan_cmd(
    company: Annotated[str, typer.Argument(help="The company's name.")],
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the account plan (HTML and PDF) of a company: run the `account-plan` flow."""
    from prefect.states import State

    from flows.accounts import account_plan

    state: State = account_plan(company, as_of=parse_instant(as_of), return_state=True)
    if not state.is_completed():
        typer.echo(f"error: {state.message}", err=True)
        raise typer.Exit(code=1)
    result = state.result()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo(f"Account plan for {result.company}:\n  {result.html_path}\n  {result.pdf_path}")


talks_app = typer.Typer(no_args_is_help=True, help="Preliminary talks with interested clients.")


def _talk_line(talk: Any) -> str:
    slots = ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in talk.slots)
    return (
        f"talk {talk.talk_id} with {talk.company} ({talk.recipient}), owner {talk.owner_id}:"
        f" {talk.status}; slots (UTC) {slots}; email {talk.email_outcome or 'pending'}"
    )


@talks_app.command("propose")
def talks_propose(
    company: Annotated[str, typer.Argument(help="The company's name.")],
    contact: Annotated[str | None, typer.Option(help="The contact's email.")] = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose a preliminary talk: 2-3 slots in the owner's hours, each an invitation."""
    from flows.accounts import propose_talk

    try:
        talk = propose_talk(company, contact, as_of=parse_instant(as_of))
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(talk.model_dump_json(indent=2) if as_json else _talk_line(talk))


@talks_app.command("send")
def talks_send(as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Send the proposals still due through the outreach outbox (window, throttles)."""
    from flows.accounts import send_talk_proposals

    counts = send_talk_proposals(as_of=parse_instant(as_of))
    if as_json:
        typer.echo(json.dumps(counts, indent=2))
    else:
        typer.echo(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))


@talks_app.command("sync")
def talks_sync(as_json: JsonOpt = False) -> None:
    """Apply the RSVPs the inbox recognised to their talks."""
    from flows.accounts import sync_talk_replies

    summary = sync_talk_replies()
    typer.echo(
        summary.model_dump_json(indent=2)
        if as_json
        else f"{summary.rsvps_seen} RSVPs to talks seen, {summary.talks_updated} talks updated"
    )


@talks_app.command("record")
def talks_record(
    talk_id: Annotated[int, typer.Argument(help="Talk id.")],
    outcome: Annotated[str, typer.Option(help="held | no_show | cancelled | won | lost")],
    note: Annotated[str | None, typer.Option(help="What was agreed.")] = None,
) -> None:
    """Record what came of a talk."""
    from tasks.accounts.pipeline import record_talk_outcome

    try:
        talk = record_talk_outcome(talk_id, outcome, note)
    except (LookupError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(_talk_line(talk))


def register(app: typer.Typer) -> None:
    app.add_typer(contracts_app, name="contracts")
    app.add_typer(accounts_app, name="accounts")
    app.add_typer(talks_app, name="talks")
