"""Orchestration overhead: the daily pipeline as Prefect flows vs the same stages as plain
functions, on a day of N new leads.

Run: ``python -m benchmarks.bench_daily [--leads 10000] [--repeat 2]``.

Both modes run the same flow and task bodies on the same generated exports, each time into a
fresh SQLite database under a new data dir: ingest the exports, score, plan and dry-run the
sample campaign (every message rendered, nothing sent), escalate complaints. The inbox stage
is skipped in both (no IMAP account), as a production day without one would.

- ``flow``: ``daily_pipeline`` itself, on the Prefect API the environment gives (the
  ephemeral one unless ``PREFECT_API_URL`` is set). The ephemeral server's start-up is paid
  once, by a warm-up flow before timing, and reported on its own: a served deployment never
  pays it.
- ``plain``: each stage flow's ``.fn`` called in turn, with Prefect's call machinery
  bypassed (a task call runs its ``.fn``), run loggers replaced by a standard logger, and
  artifacts and events not written. What remains is our code.

Overhead = (flow - plain) / flow, from the medians of alternating runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

from prefect import flow
from prefect.tasks import Task

from benchmarks.bench_ingest import _configure, dataset
from flows.daily import DEMO_AS_OF

CAMPAIGN = "welcome-fair"
# Prefect calls our code makes besides task calls: in plain mode they do nothing (artifacts,
# events) or log to a standard logger (run loggers).
_SILENCED = (
    "create_table_artifact",
    "create_markdown_artifact",
    "create_link_artifact",
    "create_progress_artifact",
    "update_progress_artifact",
    "emit_event",
)


@contextmanager
def plain_prefect() -> Iterator[None]:
    """Task calls run their function directly; run loggers, artifacts and events are off."""
    logger = logging.getLogger("accountflow.bench.plain")
    with ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(Task, "__call__", lambda self, *a, **k: self.fn(*a, **k))
        )
        for module in list(sys.modules.values()):
            if module is None or module.__name__.split(".")[0] not in ("tasks", "flows"):
                continue
            if hasattr(module, "get_run_logger"):
                stack.enter_context(
                    mock.patch.object(module, "get_run_logger", lambda *a, **k: logger)
                )
            for name in _SILENCED:
                if hasattr(module, name):
                    stack.enter_context(mock.patch.object(module, name, lambda *a, **k: None))
        yield


def run_plain(files: list[str], as_of: datetime) -> dict[str, float]:
    """The daily pipeline's stages, in its order, as plain functions: seconds per stage."""
    from flows.complaints import escalate_complaints
    from flows.ingest import ingest_exhibition_leads
    from flows.outreach import dispatch_campaign
    from flows.scoring import score_prospects

    # The stage flows are async (see flows.daily); their bodies are sync, so each runs to
    # completion inside one asyncio.run.
    stages: list[tuple[str, Any]] = [
        ("ingest", lambda: ingest_exhibition_leads.fn(files, event=None)),
        ("score", lambda: score_prospects.fn(as_of=as_of)),
        ("campaign", lambda: dispatch_campaign.fn(CAMPAIGN, dry_run=True, as_of=as_of)),
        ("complaints", lambda: escalate_complaints.fn(as_of=as_of)),
    ]
    seconds: dict[str, float] = {}
    with plain_prefect():
        for name, call in stages:
            started = time.perf_counter()
            asyncio.run(call())
            seconds[name] = round(time.perf_counter() - started, 2)
    return seconds


def run_flow(exports_dir: Path, as_of: datetime) -> dict[str, Any]:
    from flows.daily import daily_pipeline

    summary = asyncio.run(
        daily_pipeline(as_of=as_of, exports_dir=str(exports_dir), campaign=CAMPAIGN)
    )
    return {name: stage.status for name, stage in summary.stages.items()}


@flow(name="bench-warm-up")
def _warm_up() -> None:
    """Starts the ephemeral API (when no server is set) outside the timed runs."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    files = dataset(args.leads)
    exports_dir = files[0].parent
    from connectors.database.migrate import upgrade

    started = time.perf_counter()
    _warm_up()
    result: dict[str, Any] = {
        "leads": args.leads,
        "api_start_up_s": round(time.perf_counter() - started, 2),
    }
    walls: dict[str, list[float]] = {"plain": [], "flow": []}
    for i in range(args.repeat):
        for mode in ("plain", "flow"):
            _configure(None, Path(tempfile.mkdtemp(prefix=f"bench-daily-{mode}-")))
            upgrade()
            started = time.perf_counter()
            detail = (
                run_plain([str(p) for p in files], DEMO_AS_OF)
                if mode == "plain"
                else run_flow(exports_dir, DEMO_AS_OF)
            )
            walls[mode].append(round(time.perf_counter() - started, 2))
            result[f"{mode}_{i}"] = detail
    plain, flowed = statistics.median(walls["plain"]), statistics.median(walls["flow"])
    result.update(
        plain_s=walls["plain"],
        flow_s=walls["flow"],
        overhead_s=round(flowed - plain, 2),
        overhead_share=round((flowed - plain) / flowed, 3),
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
