"""Exhibition ingestion throughput and peak memory per stage, against SQLite or PostgreSQL.

Run: ``python -m benchmarks.bench_ingest --rows 200000 [--database-url URL]``.
Stages are the task functions themselves (``.fn``), so the figures are ours, not Prefect's;
``--flow`` also times the whole flow on a Prefect test harness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, insert

from benchmarks.leadgen import generate, write_mixed
from config.settings import get_settings

DATA = Path(__file__).resolve().parent / ".data"


def dataset(rows: int, seed: int = 5) -> list[Path]:
    folder = DATA / f"leads-{rows}-{seed}"
    marker = folder / "done"
    if not marker.exists():
        generated = generate(rows, seed=seed)
        write_mixed([g[0] for g in generated], folder)
        marker.write_text("ok")
    return sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".xlsx"))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc), in MB."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/status") as fh:
            total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except (OSError, StopIteration):  # the process ended while we looked
        return total
    return total + sum(_tree_rss_mb(c) for c in children)


class TreePeak:
    """Peak resident memory of this process plus its staging workers, sampled every 20 ms.

    ru_maxrss is per process: with staging workers beside the main process, what the
    machine must hold at once is their sum, which only sampling sees.
    """

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _tree_rss_mb(os.getpid()))
            self._stop.wait(0.02)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _configure(database_url: str | None, data_dir: Path) -> None:
    from config.policies import get_ingest_policies
    from connectors.database.engine import reset_engine

    os.environ["ACCOUNTFLOW_DATA_DIR"] = str(data_dir)
    if database_url:
        os.environ["ACCOUNTFLOW_DATABASE_URL"] = database_url
    get_settings.cache_clear()
    get_ingest_policies.cache_clear()
    reset_engine()


def floor(paths: list[Path], url: str) -> float:
    """pandas reading the same files plus a bulk insert of the raw rows: seconds."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    meta = MetaData()
    table = Table("floor_raw", meta, Column("id", Integer, primary_key=True), Column("raw", Text))
    meta.drop_all(engine)
    meta.create_all(engine)
    started = time.perf_counter()
    frames = []
    for p in paths:
        if p.suffix == ".xlsx":
            # The reader the pipeline uses for values, so the ratio compares like with like.
            frames.append(pd.read_excel(p, dtype=str, header=1, engine="calamine"))
        else:
            enc = "utf-8-sig" if "utf8" in p.name else "cp1252"
            sep = "," if "comma" in p.name else ";"
            skip = 2 if "cp1252" in p.name else 0
            frames.append(
                pd.read_csv(p, dtype=str, encoding=enc, sep=sep, skiprows=skip, on_bad_lines="skip")
            )
    raw = pd.concat(frames).fillna("").to_json(orient="values", lines=False)
    values = [{"raw": json.dumps(r, ensure_ascii=False)} for r in json.loads(raw)]
    with engine.begin() as conn:
        conn.execute(insert(table), values)
    elapsed = time.perf_counter() - started
    meta.drop_all(engine)
    engine.dispose()
    return elapsed


def run(rows: int, database_url: str | None = None, with_flow: bool = False) -> dict[str, Any]:
    paths = dataset(rows)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    _configure(database_url, tmp)
    from connectors.database.migrate import upgrade
    from tasks.ingest.pipeline import register_files, resolve_and_store, stage_files

    upgrade()
    result: dict[str, Any] = {"rows": rows, "files": [p.name for p in paths]}
    rss_before = _peak_mb()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    with TreePeak() as tree:
        registered = register_files.fn([str(p) for p in paths], "bench")
        t1 = time.perf_counter()
        staged = stage_files.fn(registered, None, str(tmp / "staging"))
        t2 = time.perf_counter()
        staging_peak = tree.peak_mb
        summary = resolve_and_store.fn(staged, "bench")
        t3 = time.perf_counter()
    cpu3 = time.process_time()
    total = t3 - t0
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.update(
        register_s=round(t1 - t0, 2),
        stage_s=round(t2 - t1, 2),
        resolve_store_s=round(t3 - t2, 2),
        total_s=round(total, 2),
        rows_per_s=round(rows / total),
        # CPU seconds: a fairer before/after than wall time on a shared machine.
        cpu_s=round(cpu3 - cpu0, 2),
        staging_workers_cpu_s=round(workers.ru_utime + workers.ru_stime, 2),
        # tracemalloc would slow this allocation-heavy code several-fold, so memory is the
        # process's peak RSS (imports included), read before and after.
        peak_rss_before_mb=round(rss_before),
        process_peak_rss_mb=round(_peak_mb()),
        # Large batches are staged in worker processes (tasks/ingest/staging.py): the largest of
        # them, which runs beside this process while it stages.
        staging_worker_peak_rss_mb=round(workers.ru_maxrss / 1024),
        # This process and its staging workers together, at the worst moment (sampled).
        staging_total_peak_rss_mb=round(staging_peak),
        total_peak_rss_mb=round(tree.peak_mb),
        reconciles=summary.reconciles,
        accepted=summary.accepted,
        duplicates=summary.duplicates,
        quarantined=summary.quarantined,
    )
    # The same files again: every file is skipped, nothing changes.
    t4 = time.perf_counter()
    again = resolve_and_store.fn(staged, "bench")
    result["rerun_s"] = round(time.perf_counter() - t4, 2)
    result["rerun_rows_in"] = again.rows_in
    # A day's few leads into the database the run just filled: matching must read only
    # the stored contacts they can link to, not all of them.
    from flows.ingest import sample_exports

    t5 = time.perf_counter()
    sample = register_files.fn(sample_exports(), "daily")
    daily = resolve_and_store.fn(stage_files.fn(sample, None, str(tmp / "daily")), "daily")
    result["sample_into_filled_s"] = round(time.perf_counter() - t5, 2)
    result["sample_into_filled_rows"] = daily.rows_in
    url = get_settings().resolved_database_url()
    result["floor_s"] = round(floor(paths, url), 2)
    result["ratio_to_floor"] = round(total / result["floor_s"], 2)
    if with_flow:
        from prefect.testing.utilities import prefect_test_harness

        from flows.ingest import ingest_exhibition_leads

        _configure(database_url, Path(tempfile.mkdtemp(prefix="bench-flow-")))
        if database_url:
            _reset_postgres(database_url)
        upgrade()
        with prefect_test_harness():
            t5 = time.perf_counter()
            asyncio.run(ingest_exhibition_leads([str(p) for p in paths], event="bench"))
            result["flow_s"] = round(time.perf_counter() - t5, 2)
            result["flow_rows_per_s"] = round(rows / result["flow_s"])
    return result


def _reset_postgres(url: str) -> None:
    from connectors.database.base import Base
    from connectors.database.engine import get_engine

    Base.metadata.drop_all(get_engine())
    with get_engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--flow", action="store_true")
    parser.add_argument(
        "--staging-workers", type=int, default=None, help="processes staging files in parallel"
    )
    args = parser.parse_args()
    if args.staging_workers:
        os.environ["ACCOUNTFLOW_STAGING_WORKERS"] = str(args.staging_workers)
    if args.database_url:
        _configure(args.database_url, Path(tempfile.mkdtemp()))
        _reset_postgres(args.database_url)
    print(json.dumps(run(args.rows, args.database_url, args.flow), indent=2))


if __name__ == "__main__":
    main()
