"""`accountflow campaign run` and `accountflow outreach failed|retry`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.options import AsOfOpt, JsonOpt, TokenOpt, parse_instant

if TYPE_CHECKING:  # the tasks pull in Prefect, pandas and SQLAlchemy: not for `--help`
    from tasks.outreach.dispatch import DispatchSummary


def render_dispatch_summary(summary: DispatchSummary) -> str:
    from tasks.outreach.dispatch import summary_table

    title = f"Campaign {summary.campaign} at {summary.as_of:%Y-%m-%d %H:%M} UTC" + (
        " (dry run: nothing sent)" if summary.dry_run else ""
    )
    lines = [title]
    lines += [f"  {row['measure']:<40} {row['value']}" for row in summary_table(summary)]
    if summary.preview_dir:
        lines.append(f"  previews in {summary.preview_dir}")
    lines.append(f"  ({summary.seconds:.2f} s, {summary.batches} batches)")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    campaign_app = typer.Typer(no_args_is_help=True, help="Outreach campaigns.")
    outreach_app = typer.Typer(no_args_is_help=True, help="Failed outreach: review and redrive.")
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(outreach_app, name="outreach")

    @campaign_app.command("run")
    def campaign_run(
        name: Annotated[str, typer.Argument(help="Campaign name (config/campaigns/NAME.yaml).")],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Render and count; send nothing.")
        ] = False,
        as_of: AsOfOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Run the `dispatch-campaign` flow."""
        from config.policy_loader import PolicyError
        from flows.outreach import dispatch_campaign

        when = parse_instant(as_of)
        try:
            summary = asyncio.run(dispatch_campaign(name, dry_run=dry_run, as_of=when))
        except PolicyError as exc:
            typer.echo(f"campaign refused: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        typer.echo(
            summary.model_dump_json(indent=2) if as_json else render_dispatch_summary(summary)
        )

    @outreach_app.command("failed")
    def outreach_failed(
        campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
        deferred: Annotated[
            bool, typer.Option("--deferred", help="Also rows waiting for a retry after a 4xx.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """List failed, unknown and bounced outbox rows: why, and what to do about each."""
        from connectors.database import outreach_failed_store as store
        from connectors.database.engine import session_scope
        from connectors.database.migrate import ensure_schema
        from tasks.outreach.failed import redrive_hint, row_kind

        ensure_schema()
        with session_scope() as s:
            rows = store.failed_rows(s, campaign, deferred=deferred)
        if as_json:
            typer.echo(json.dumps(rows, indent=2, default=str))
            return
        if not rows:
            typer.echo("no failed, unknown or bounced outreach")
            return
        for r in rows:
            code = f" {r['last_code']}" if r["last_code"] is not None else ""
            typer.echo(
                f"{r['id']:>8}  {row_kind(r):<9} {r['campaign']}/{r['step_name']} "
                f"{r['channel']:<10} contact {r['contact_id']}{code}: {r['last_detail'] or ''}"
                f"\n{'':>10}-> {redrive_hint(r)}"
            )

    @outreach_app.command("retry")
    def outreach_retry(
        campaign: Annotated[str | None, typer.Option(help="Only this campaign.")] = None,
        ids: Annotated[
            list[int] | None, typer.Option("--ids", help="Outbox ids (repeat the option).")
        ] = None,
        confirm_unknown: Annotated[
            bool,
            typer.Option(
                "--confirm-unknown",
                help="Also resend rows whose first send may have arrived (ops checked).",
            ),
        ] = False,
        as_json: JsonOpt = False,
        token: TokenOpt = None,
    ) -> None:
        """Make the chosen failed rows due again; the next `campaign run` sends them.

        The same rules as the `redrive-outreach` deployment's form in the Prefect UI.
        """
        from tasks.governance.service import audit_act
        from tasks.governance.team import GovernanceError
        from tasks.outreach.failed import RedriveChoiceError, redrive, redrive_audit_terms

        # Who redrove (and who confirmed unknown rows) is audited in the same transaction.
        action, target = redrive_audit_terms(campaign, ids, confirm_unknown)
        try:
            result = redrive(
                datetime.now(UTC),
                campaign=campaign,
                ids=ids,
                confirm_unknown=confirm_unknown,
                audit=lambda s, counts: audit_act(
                    s, token, action, target, None, {"redriven": counts}
                ),
            )
        except RedriveChoiceError as exc:
            raise typer.BadParameter("choose rows with --campaign and/or --ids") from exc
        except GovernanceError as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(code=1) from exc
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "redriven": result.redriven,
                        "unknown_left_for_review": result.unknown_left_for_review,
                    },
                    indent=2,
                )
            )
            return
        total = result.total
        typer.echo(
            f"{total} rows due again ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(result.redriven.items()))
            + ")"
        )
        if result.unknown_left_for_review:
            typer.echo(
                f"{result.unknown_left_for_review} unknown rows left as they are: they may have "
                "been delivered; pass --confirm-unknown to resend them"
            )
