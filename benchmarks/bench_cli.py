"""How long `accountflow` commands take from the shell, end to end (process start included).

Each command runs ``--rounds`` times, the commands interleaved round by round so that load
from elsewhere on the machine falls on all of them alike; the table gives the median wall
time and the median CPU time (user + sys of the command's process tree), which drifts less
with load. A bare ``python -c pass`` is the floor.

    python -m benchmarks.bench_cli [--rounds 5] [--ephemeral-rounds 2]

Runs in a temporary data dir: a local Prefect server is started there (and stopped at the
end) for the ingestion "with the local server"; the ingestion "without" uses Prefect's
temporary server, as every command did before the local one.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flows.ingest import sample_exports


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ephemeral-rounds", type=int, default=2)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="bench-cli-")) / "data"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["ACCOUNTFLOW_DATA_DIR"] = str(data)
    cli = [sys.executable, "-m", "flows.cli"]
    samples = sample_exports()

    subprocess.run([*cli, "db", "upgrade"], env=env, capture_output=True, check=True)
    # Without the local server first: the ingestion on Prefect's temporary server.
    timings: dict[str, list[tuple[float, float, int]]] = {}
    ingest = [*cli, "ingest", "exhibition", *samples, "--event", "bench"]
    for _ in range(args.ephemeral_rounds):
        timings.setdefault("ingest 21 sample leads, temporary server", []).append(_run(ingest, env))
    commands = {
        "python -c pass (the floor)": [sys.executable, "-c", "pass"],
        "accountflow --help": [*cli, "--help"],
        "accountflow server status": [*cli, "server", "status"],
        "accountflow outreach failed": [*cli, "outreach", "failed"],
        "accountflow export contacts": [*cli, "export", "contacts"],
        "accountflow db upgrade": [*cli, "db", "upgrade"],
        "ingest 21 sample leads, local server up": ingest,
    }
    subprocess.run([*cli, "server", "start"], env=env, capture_output=True, check=True)
    try:
        for _ in range(args.rounds):
            for name, command in commands.items():
                timings.setdefault(name, []).append(_run(command, env))
    finally:
        subprocess.run([*cli, "server", "stop"], env=env, capture_output=True, check=False)

    print(f"{'command':<45} {'wall s (median)':>16} {'cpu s (median)':>15} {'runs':>5}")
    for name, runs in timings.items():
        failed = sum(1 for _, _, rc in runs if rc not in (0, 1))
        wall = statistics.median(w for w, _, _ in runs)
        cpu = statistics.median(c for _, c, _ in runs)
        note = f"  ({failed} failed)" if failed else ""
        print(f"{name:<45} {wall:>16.2f} {cpu:>15.2f} {len(runs):>5}{note}")


if __name__ == "__main__":
    main()
