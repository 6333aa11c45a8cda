"""Exhibition ingestion throughput and peak memory per stage, against SQLite or PostgreSQL.

Run: ``python -m benchmarks.bench_ingest --rows 200000 [--database-url URL]``.
Stages are the task functions themselves (``.fn``), so the figures are ours, not Prefect's;
``--flow`` also times the whole flow on a Prefect test harness.

``--cli`` measures the user's path instead: ``accountflow ingest exhibition FILE...`` as a
subprocess (process start, Prefect and all), on one file of ``--rows`` rows and on the
three-file set, each with Prefect's temporary server and with a running ``prefect server
start`` (``PREFECT_API_URL``), beside the floor; ``--compare DIR`` runs a checkout of other
code (``git archive main | tar -x -C DIR``) the same way, alternating with this one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, insert

from benchmarks.leadgen import generate, write_csv, write_mixed
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


def one_file(rows: int, seed: int = 5) -> Path:
    """The same leads as ``dataset`` in one cp1252 ``;`` export with two title rows."""
    path = DATA / f"one-{rows}-{seed}" / "big-cp1252-semicolon.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        write_csv([g[0] for g in generate(rows, seed=seed)], partial, title_rows=2)
        partial.rename(path)
    return path


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """A ``prefect server start`` on loopback (SQLite in ``home``); yields its API URL."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    home.mkdir(parents=True, exist_ok=True)
    with (home / "server.log").open("wb") as log:
        command = [sys.executable, "-m", "prefect", "server", "start"]
        proc = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start: see {home / 'server.log'}")
            time.sleep(0.5)
        yield api
    finally:
        proc.terminate()
        proc.wait(30)


def cli_run(
    paths: list[Path], rows: int, code: Path | None, api_url: str | None, prefect_home: Path
) -> dict[str, Any]:
    """``accountflow ingest exhibition PATHS --json`` into a new, migrated SQLite database:
    wall time from process start to exit, and the process tree's peak memory (sampled)."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    env = {**os.environ, "ACCOUNTFLOW_DATA_DIR": str(data_dir), "PREFECT_HOME": str(prefect_home)}
    env.pop("ACCOUNTFLOW_DATABASE_URL", None)
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if code is None:
        cli = [str(Path(sys.executable).with_name("accountflow"))]
    else:  # another checkout: its packages first on the path
        cli = [sys.executable, "-m", "flows.cli"]
        env["PYTHONPATH"] = str(code)
    cwd = str(code) if code else None
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=cwd, check=True, capture_output=True)
    peak = [0.0]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*cli, "ingest", "exhibition", *map(str, paths), "--json"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    shutil.rmtree(data_dir, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"accountflow exited with {proc.returncode}: {err[-2000:]}")
    summary = json.loads(out[out.index("{") :])
    return {
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "peak_tree_mb": round(peak[0]),
        "rows_in": summary["rows_in"],
        "reconciles": summary["rows_in"]
        == summary["accepted"] + summary["duplicates"] + summary["quarantined"],
    }


PREFECTS = ("temporary server", "running server")


def run_cli(
    rows: int, compare: Path | None, rounds: int, prefects: tuple[str, ...] = PREFECTS
) -> dict[str, Any]:
    """The CLI on one file and on three, with the temporary and a running Prefect server
    (``prefects``), this code and ``compare`` alternating, beside each set's floor."""
    sets = {"one file": [one_file(rows)], "three files": dataset(rows)}
    codes: dict[str, Path | None] = {"this": None}
    if compare is not None:
        codes = {"compare": compare.resolve(), **codes}
    home = Path(tempfile.mkdtemp(prefix="bench-prefect-"))
    scratch = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    result: dict[str, Any] = {"rows": rows, "runs": []}
    for name, paths in sets.items():
        url = f"sqlite:///{scratch / 'floor.db'}"
        result[f"floor_s ({name})"] = round(floor(paths, url), 2)
        print(json.dumps({f"floor_s ({name})": result[f"floor_s ({name})"]}), file=sys.stderr)
    for prefect in prefects:
        with (
            prefect_server(home / "server")
            if prefect == "running server"
            else contextlib.nullcontext(None)
        ) as api_url:
            # A first run of each code warms the Prefect database and the file cache.
            for code in codes.values():
                cli_run([Path(p) for p in _sample_paths()], 21, code, api_url, home)
            for name, paths in sets.items():
                for _ in range(rounds):
                    for label, code in codes.items():
                        figures = cli_run(paths, rows, code, api_url, home)
                        floor_s = result[f"floor_s ({name})"]
                        figures["ratio_to_floor"] = round(figures["seconds"] / floor_s, 2)
                        run = {"code": label, "files": name, "prefect": prefect, **figures}
                        result["runs"].append(run)
                        print(json.dumps(run), file=sys.stderr, flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def _sample_paths() -> list[str]:
    from flows.ingest import sample_exports

    return sample_exports()


def _reset_postgres(url: str) -> None:
    import connectors.database.models  # noqa: F401  (every table, to drop them all)
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
    parser.add_argument("--cli", action="store_true", help="time `accountflow ingest exhibition`")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout, for --cli")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each --cli case")
    parser.add_argument(
        "--prefect", choices=PREFECTS, action="append", help="only this Prefect, for --cli"
    )
    args = parser.parse_args()
    if args.cli:
        prefects = tuple(args.prefect or PREFECTS)
        print(json.dumps(run_cli(args.rows, args.compare, args.rounds, prefects), indent=2))
        return
    if args.staging_workers:
        os.environ["ACCOUNTFLOW_STAGING_WORKERS"] = str(args.staging_workers)
    if args.database_url:
        _configure(args.database_url, Path(tempfile.mkdtemp()))
        _reset_postgres(args.database_url)
    print(json.dumps(run(args.rows, args.database_url, args.flow), indent=2))


if __name__ == "__main__":
    main()
