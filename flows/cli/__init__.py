"""The `accountflow` command: the same flows as the deployments, from a terminal.

Each capability's commands live in its own module here and are added by its ``register``;
a command imports Prefect, pandas and the database only when it runs, so `--help` stays fast.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os

import typer

# The network here is closed to everything but package registries: Prefect's telemetry would
# only log a failure on every run.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The ephemeral API's default 20 s start-up budget is too short on a busy 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

# At exit the interpreter's last garbage collections walk every object Prefect, pandas and
# SQLAlchemy made, which can outlast a short command's own work. Freezing them first (after
# every later-registered exit handler, Prefect's log and event drains among them, has run)
# skips that walk; reference counting still frees what it can.
atexit.register(gc.freeze)

app = typer.Typer(no_args_is_help=True, help="Account management pipelines (Prefect 3).")

# ``ingest`` before ``inbox``: the inbox adds `ingest inbox` to the group ingest creates.
CAPABILITY_COMMANDS = (
    "flows.cli.ops",
    "flows.cli.ingest",
    "flows.cli.inbox",
    "flows.cli.scoring",
    "flows.cli.outreach",
    "flows.cli.complaints",
    "flows.cli.competitors",
    "flows.cli.governance",
    "flows.cli.accounts",
)

for _name in CAPABILITY_COMMANDS:
    importlib.import_module(_name).register(app)
