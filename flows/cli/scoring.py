"""CLI for scoring: `accountflow score`, `accountflow report audience|backtest`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.options import AsOfOpt, JsonOpt, group, parse_instant

if TYPE_CHECKING:
    from tasks.scoring.pipeline import ScoringSummary


def render_scoring(s: ScoringSummary) -> str:
    """The run in a few lines: what was scored, skipped, moved, and the registry's state."""
    bands = ", ".join(f"{b} {n}" for b, n in s.band_counts.items())
    return "\n".join(
        [
            f"Reliability scoring as of {s.as_of:%Y-%m-%d %H:%M} UTC ({s.scorecard_version})",
            f"  contacts     {s.contacts:>8}",
            f"  scored       {s.scored:>8}" + ("  (--full)" if s.full else ""),
            f"  unchanged    {s.skipped_unchanged:>8}  (inputs same as last score: skipped)",
            f"  bands        {bands}",
            f"  band changes {s.band_changes:>8}  ({s.events_recorded} new events)",
            f"  registry     {s.registry.describe()}",
            f"  seconds      {s.seconds:>8.2f}",
        ]
    )


def register(app: typer.Typer) -> None:
    report = group(app, "report", "Reports.")

    @app.command("score")
    def score(
        as_of: AsOfOpt = None,
        full: Annotated[
            bool, typer.Option("--full", help="Rescore every contact, changed or not.")
        ] = False,
        as_json: JsonOpt = False,
    ) -> None:
        """Run the `score-prospects` flow."""
        from flows.scoring import score_prospects

        summary = asyncio.run(score_prospects(as_of=parse_instant(as_of), full=full))
        typer.echo(summary.model_dump_json(indent=2) if as_json else render_scoring(summary))

    @report.command("audience")
    def audience(as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
        """Run the `analyze-audience` flow (markdown artifact + HTML report)."""
        from flows.scoring import analyze_audience_flow

        summary = asyncio.run(analyze_audience_flow(as_of=parse_instant(as_of)))
        if as_json:
            typer.echo(summary.model_dump_json(indent=2))
            return
        typer.echo(summary.markdown)
        typer.echo(f"HTML report: {summary.html_path}")

    @report.command("backtest")
    def backtest_cmd(
        outcomes: Annotated[
            Path | None,
            typer.Option(help="CSV with contact_id,outcome (default: the outcomes table)."),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Outcome rates per band and AUC of the stored scores."""
        import json

        from tasks.scoring.calibration import backtest_markdown
        from tasks.scoring.pipeline import run_backtest

        try:
            result = run_backtest(outcomes)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        if as_json:
            payload = {
                "auc": result.auc,
                "n": result.n,
                "scorecard_version": result.scorecard_version,
                "per_band": json.loads(result.per_band.to_json(orient="records")),
            }
            typer.echo(json.dumps(payload, indent=2))
        else:
            typer.echo(backtest_markdown(result))
