"""`accountflow complaints ...` and `accountflow report complaints`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.options import AsOfOpt, JsonOpt, TokenOpt, group, parse_instant

NoteOpt = Annotated[str | None, typer.Option("--note", help="What was said or done.")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who did it.")]

complaints_app = typer.Typer(no_args_is_help=True, help="Complaints, SLA clocks and escalation.")


@complaints_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV (header = field names) or JSON file.")],
    as_json: JsonOpt = False,
) -> None:
    """Run the `import-complaints` flow; rejected rows are listed with their reason."""
    from flows.complaints import import_complaints

    if not file.is_file():
        raise typer.BadParameter(f"file not found: {file}")
    summary = import_complaints(str(file))
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
    else:
        typer.echo(
            f"Complaints from {file.name}: {summary.rows_in} rows in = {summary.created} created"
            f" + {summary.duplicates} duplicates + {summary.rejected} rejected"
            f"  ({summary.linked_contacts} linked to known contacts, {summary.new_contacts}"
            f" new contacts, {summary.new_companies} new companies)"
        )
        for r in summary.rejected_rows:
            typer.echo(f"  row {r.row}: {r.reason}")
    if summary.rejected:
        raise typer.Exit(code=1)


@complaints_app.command("escalate")
def escalate_cmd(
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the `escalate-complaints` flow once."""
    from flows.complaints import escalate_complaints

    summary = asyncio.run(escalate_complaints(as_of=parse_instant(as_of)))
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
        return
    states = ", ".join(f"{k} {v}" for k, v in sorted(summary.states.items())) or "none"
    typer.echo(
        "\n".join(
            [
                f"Complaint escalation at {summary.as_of.isoformat()}",
                f"  evaluated      {summary.evaluated:>8}   (open {summary.open}; {states})",
                f"  escalations    {summary.escalations_due:>8} due, {summary.new_escalations} new",
                *summary.channel_lines(),
                f"  pending        {summary.pending_after:>8} notifications for the next run",
                f"  hand-overs     {summary.handovers:>8}"
                + (f"  {summary.handovers_by_reason}" if summary.handovers else ""),
                f"  seconds        {summary.seconds:>8.2f}",
            ]
        )
    )


def _event(
    kind: str,
    complaint_id: int,
    at: datetime | None,
    note: str | None,
    actor: str | None,
    token: str | None = None,
) -> None:
    from tasks.governance.service import act_on_complaint

    try:
        # Once members have tokens, only the owner, the head or the owner's deputy during
        # an absence may act (tasks/governance); every act is audited.
        result = act_on_complaint(token, complaint_id, kind, at=at, note=note, actor=actor)
    except (LookupError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(
        f"complaint {result.complaint_id}: {result.kind} at {result.at.isoformat()}"
        f" (now {result.status})"
    )


def _event_command(name: str, kind: str, help_text: str) -> None:
    def command(
        complaint_id: Annotated[int, typer.Argument(help="Complaint id.")],
        at: Annotated[str | None, typer.Option("--at", help="ISO 8601; default now.")] = None,
        note: NoteOpt = None,
        actor: ActorOpt = None,
        token: TokenOpt = None,
    ) -> None:
        _event(kind, complaint_id, parse_instant(at, "--at"), note, actor, token)

    command.__doc__ = help_text
    complaints_app.command(name)(command)


_event_command("respond", "responded", "Record the first (or a further) response to the client.")
_event_command("wait", "waiting_on_client", "Waiting on the client: the SLA clocks pause.")
_event_command("resume", "resumed", "The client answered: the SLA clocks run again.")
_event_command("resolve", "resolved", "Resolve the complaint: the clocks stop.")
_event_command("reopen", "reopened", "Reopen a resolved complaint: the resolution clock runs on.")


def report_complaints(
    as_of: AsOfOpt = None,
    days: Annotated[int, typer.Option(help="Complaints created in this many days.")] = 90,
    as_json: JsonOpt = False,
) -> None:
    """Run the `analyze-complaints` flow and print its markdown."""
    from flows.complaints import analyze_complaints

    summary = analyze_complaints(as_of=parse_instant(as_of), days=days)
    typer.echo(summary.model_dump_json(indent=2) if as_json else summary.markdown)


def register(app: typer.Typer) -> None:
    app.add_typer(complaints_app, name="complaints")
    group(app, "report", "Reports.").command("complaints")(report_complaints)
