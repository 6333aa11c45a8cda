"""`accountflow competitors watch` and `accountflow report competitors`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from flows.cli.options import AsOfOpt, JsonOpt, group, parse_instant

competitors_app = typer.Typer(no_args_is_help=True, help="Competitors' client policies.")


@competitors_app.command("watch")
def watch_cmd(as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """Run the `watch-competitors` flow once: fetch, compare, announce material changes."""
    from flows.competitors import watch_competitors

    s = asyncio.run(watch_competitors(as_of=parse_instant(as_of)))
    if as_json:
        typer.echo(s.model_dump_json(indent=2))
        return
    lines = [
        f"Competitor pages at {s.as_of.isoformat()}",
        f"  pages          {s.pages:>6}   ({s.requests} requests)",
        f"  fetched        {s.fetched:>6}   unchanged (304) {s.not_modified}",
        f"  not read       {s.failed + s.blocked + s.unreadable:>6}   (tried again next run)",
        f"  new snapshots  {s.new_snapshots:>6}",
        f"  changes        {s.changes:>6}   material {s.material_changes}",
        f"  events         {s.events_emitted:>6}",
        f"  emails         {s.notified:>6}   sent, {s.notify_failed} failed ({s.email_channel})",
        f"  seconds        {s.seconds:>6.2f}",
    ]
    lines += [f"  ! {f['url']}: {f['reason']}" for f in s.failures]
    typer.echo("\n".join(lines))


def report_competitors_cmd(
    as_of: AsOfOpt = None,
    days: Annotated[int, typer.Option(help="Changes of this many days.")] = 7,
    as_json: JsonOpt = False,
) -> None:
    """Run the `report-competitors` flow and print its markdown."""
    from flows.competitors import report_competitors

    summary = asyncio.run(report_competitors(as_of=parse_instant(as_of), days=days))
    typer.echo(summary.model_dump_json(indent=2) if as_json else summary.markdown)


def register(app: typer.Typer) -> None:
    app.add_typer(competitors_app, name="competitors")
    group(app, "report", "Reports.").command("competitors")(report_competitors_cmd)
