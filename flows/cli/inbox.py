"""`accountflow ingest inbox`: run the `ingest-inbox` flow from a terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.options import group

if TYPE_CHECKING:  # importing the tasks pulls in Prefect and pandas: not for `--help`
    from tasks.inbox.pipeline import InboxSummary


def render_inbox_summary(s: InboxSummary) -> str:
    """The run in a few lines: what came in, what it became, what was quarantined."""

    def listing(values: dict[str, int]) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(values.items())) or "none"

    lines = [
        f"Inbox ingestion ({s.source}: {s.location}), batch {s.batch_id}",
        f"  messages in   {s.messages_in:>8}  ({s.stored} stored, "
        f"{s.already_stored} already stored)",
        f"  by class      {listing(s.by_class)}",
        f"  contacts      {s.new_contacts} new, {s.matched_contacts} matched existing, "
        f"{s.senders_quarantined} senders quarantined",
        f"  complaints    {s.new_complaints} new, {s.attached_followups} follow-ups attached",
        f"  suppressions  {s.suppressions_added} added ({listing(s.suppressions_by_reason)})",
        f"  bounces       {s.hard_bounces} hard, {s.soft_bounces} soft, "
        f"{s.bounces_matched_to_outbox} matched to the outbox",
        f"  quarantined   {listing(s.malformed_by_reason)}",
    ]
    if s.rsvps:
        lines.append(f"  rsvp          {listing(s.rsvps)}")
    if s.uidvalidity_reset:
        lines.append("  UIDVALIDITY changed: the mailbox was read again from the start")
    if s.moved:
        lines.append(f"  moved         {s.moved} messages to the processed folder")
    lines.append(f"  reconciles    {'yes' if s.reconciles else 'NO'}   ({s.seconds:.2f} s)")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    ingest_app = group(app, "ingest", "Bring leads in.")

    @ingest_app.command("inbox")
    def ingest_inbox_command(
        imap: Annotated[
            bool, typer.Option("--imap", help="Read the IMAP mailbox from settings.")
        ] = False,
        eml_dir: Annotated[
            Path | None, typer.Option("--eml-dir", help="A folder of .eml files.")
        ] = None,
        maildir: Annotated[Path | None, typer.Option("--maildir", help="A Maildir.")] = None,
        batch_size: Annotated[
            int | None,
            typer.Option(
                help="Messages per transaction (default 200 for IMAP, 2000 for folders).", min=1
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    ) -> None:
        """Run the `ingest-inbox` flow on exactly one source."""
        if sum([imap, eml_dir is not None, maildir is not None]) != 1:
            raise typer.BadParameter("choose exactly one of --imap, --eml-dir DIR, --maildir DIR")
        for folder in (eml_dir, maildir):
            if folder is not None and not folder.is_dir():
                raise typer.BadParameter(f"not a folder: {folder}")
        from flows.inbox import ingest_inbox

        summary = asyncio.run(
            ingest_inbox(
                imap=imap,
                eml_dir=str(eml_dir) if eml_dir else None,
                maildir=str(maildir) if maildir else None,
                batch_size=batch_size,
            )
        )
        typer.echo(summary.model_dump_json(indent=2) if as_json else render_inbox_summary(summary))
