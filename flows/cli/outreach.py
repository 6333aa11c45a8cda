"""`accountflow campaign run` and `accountflow outreach failed|retry`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from flows.cli.options import AsOfOpt, JsonOpt, TokenOpt, parse_instant
from tasks.outreach.dispatch import DispatchSummary, summary_table


def render_dispatch_summary(summary: DispatchSummary) -> str:
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
        as_json: JsonOpt = False,
    ) -> None:
        """List failed and unknown outbox rows with their reasons."""
        from connectors.database import outreach_store as store
        from connectors.database.engine import session_scope
        from connectors.database.migrate import ensure_schema

        ensure_schema()
        with session_scope() as s:
            rows = store.failed_rows(s, campaign)
        if as_json:
            typer.echo(json.dumps(rows, indent=2, default=str))
            return
        if not rows:
            typer.echo("no failed, unknown or bounced outreach")
            return
        for r in rows:
            code = f" {r['last_code']}" if r["last_code"] is not None else ""
            status = r["final_status"] if r["final_status"] == "hard_bounce" else r["status"]
            typer.echo(
                f"{r['id']:>8}  {status:<16} {r['campaign']}/{r['step_name']} "
                f"{r['channel']:<10} contact {r['contact_id']}{code}: {r['last_detail'] or ''}"
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
        """Make the chosen failed rows due again; the next `campaign run` sends them."""
        from connectors.database import outreach_store as store
        from connectors.database.engine import session_scope
        from connectors.database.migrate import ensure_schema
        from tasks.governance.service import audit_act
        from tasks.governance.team import GovernanceError

        if not campaign and not ids:
            raise typer.BadParameter("choose rows with --campaign and/or --ids")
        ensure_schema()
        with session_scope() as s:
            counts = store.redrive(
                s,
                datetime.now(UTC),
                campaign=campaign,
                ids=ids,
                include_unknown=confirm_unknown,
            )
            left_unknown = 0 if confirm_unknown else store.skipped_unknown(s, ids or [])
            # Who redrove (and who confirmed unknown rows) is audited in the same transaction.
            action = "outreach.confirm_unknown" if confirm_unknown else "outreach.redrive"
            target = f"campaign:{campaign or '*'} ids:{','.join(map(str, ids or [])) or '*'}"
            try:
                audit_act(s, token, action, target, None, {"redriven": counts})
            except GovernanceError as exc:
                typer.echo(f"refused: {exc}", err=True)
                raise typer.Exit(code=1) from exc
        result = {"redriven": counts, "unknown_left_for_review": left_unknown}
        if as_json:
            typer.echo(json.dumps(result, indent=2))
            return
        total = sum(counts.values())
        typer.echo(
            f"{total} rows due again ("
            + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
            + ")"
        )
        if left_unknown:
            typer.echo(
                f"{left_unknown} unknown rows left as they are: they may have been delivered; "
                "pass --confirm-unknown to resend them"
            )
