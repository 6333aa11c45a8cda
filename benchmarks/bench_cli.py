"""How long `accountflow` commands take from the shell, end to end (process start included).

Each command runs ``--rounds`` times, the commands interleaved round by round so that load
from elsewhere on the machine falls on all of them alike; the table gives the median wall
time and the median CPU time (user + sys of the command's process tree), which drifts less
with load. A bare ``python -c pass`` is the floor.

    python -m benchmarks.bench_cli [--rounds 5] [--ephemeral-rounds 2] [--baseline DIR]

With ``--baseline DIR`` (another checkout, e.g. ``git worktree add DIR main``), each command
that runs no flow also runs from that code, alternating with this one in every round, and
the table gives both side by side: a before/after under the same load.

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

HERE = Path(__file__).resolve().parent.parent


def _run(command: list[str], env: dict[str, str], cwd: Path = HERE) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # ``python -m flows.cli`` imports the code of the directory it starts in.
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ephemeral-rounds", type=int, default=2)
    parser.add_argument(
        "--baseline", type=Path, default=None, help="another checkout to compare against"
    )
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
    quick = [name for name in commands if name.startswith("accountflow")]
    baseline: dict[str, list[tuple[float, float, int]]] = {}
    subprocess.run([*cli, "server", "start"], env=env, capture_output=True, check=True)
    try:
        for _ in range(args.rounds):
            for name, command in commands.items():
                timings.setdefault(name, []).append(_run(command, env))
                if args.baseline is not None and name in quick:
                    baseline.setdefault(name, []).append(_run(command, env, args.baseline))
    finally:
        subprocess.run([*cli, "server", "stop"], env=env, capture_output=True, check=False)

    header = f"{'command':<45} {'wall s (median)':>16} {'cpu s (median)':>15} {'runs':>5}"
    print(header + (f"   {'baseline wall':>13} {'baseline cpu':>12}" if baseline else ""))
    for name, runs in timings.items():
        wall, cpu, note = _medians(runs)
        line = f"{name:<45} {wall:>16.2f} {cpu:>15.2f} {len(runs):>5}"
        if name in baseline:
            b_wall, b_cpu, b_note = _medians(baseline[name])
            line += f"   {b_wall:>13.2f} {b_cpu:>12.2f}{b_note}"
        print(line + note)


def _medians(runs: list[tuple[float, float, int]]) -> tuple[float, float, str]:
    failed = sum(1 for _, _, rc in runs if rc not in (0, 1))
    wall = statistics.median(w for w, _, _ in runs)
    cpu = statistics.median(c for _, c, _ in runs)
    return wall, cpu, f"  ({failed} failed)" if failed else ""


if __name__ == "__main__":
    main()
