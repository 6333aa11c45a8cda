"""How long the pure escalation pass takes for n open complaints.

Measures ``evaluate_clocks`` + ``decide_escalations`` + ``plan_handovers`` (no database, no
Prefect) on a synthetic but realistic mix: 12 managers in four time zones with holidays and
absences, and histories with responses, pauses, resumptions and reopenings. The target is
100,000 complaints in 10 s including the database round trip, so the pure part should stay
well under 5 s. ``--db`` also times the real unit of work (``tasks.complaints.pipeline.
evaluate_escalations``) against SQLite in a temp dir. Run:
``python -m benchmarks.bench_escalation [n] [--db]``.

Figures are in benchmarks/README.md. The cold first run inserts every escalation already
due (398,641 at n = 100,000) through ``ingest_store.bulk_insert``; SQLAlchemy's per-row bind
processing made that run take two minutes before.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from config.sla_policy import SEVERITIES, SlaPolicy, SlaTarget
from config.team_policy import Absence, Manager, TeamPolicy
from tasks.complaints.escalation import decide_escalations, plan_handovers
from tasks.complaints.sla_clock import evaluate_clocks, team_calendars

AS_OF = datetime(2026, 12, 2, 15, 7, tzinfo=UTC)
_ZONES = [
    ("America/Sao_Paulo", "BR"),
    ("Europe/Berlin", "DE"),
    ("America/New_York", "US"),
    ("Asia/Tokyo", "JP"),
]


def bench_team() -> TeamPolicy:
    managers = []
    for i in range(12):
        zone, country = _ZONES[i % len(_ZONES)]
        absences = (
            [Absence(start=date(2026, 11, 30), end=date(2026, 12, 4), reason="vacation")]
            if i % 5 == 1
            else []
        )
        managers.append(
            Manager(
                id=f"m{i:02d}",
                name=f"Manager {i}",
                timezone=zone,
                holiday_country=country,
                deputy=f"m{(i + 1) % 12:02d}",
                team_lead="m00" if i else None,
                absences=absences,
            )
        )
    return TeamPolicy(head="m00", managers=managers)


def bench_policy() -> SlaPolicy:
    minutes = {"critical": (60, 480), "high": (120, 960), "medium": (240, 2400), "low": (480, 4800)}
    return SlaPolicy(
        targets={
            s: SlaTarget(first_response_minutes=minutes[s][0], resolution_minutes=minutes[s][1])
            for s in SEVERITIES
        },
        tiers={
            "key_account": {
                "critical": SlaTarget(first_response_minutes=30, resolution_minutes=240)
            }
        },
    )


def synthetic(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """n open complaints with 1 to 5 events each, created in the 30 days before AS_OF."""
    rng = np.random.default_rng(seed)
    now = int(AS_OF.timestamp())
    ids = np.arange(n, dtype=np.int64)
    owners = np.array([f"m{i:02d}" for i in rng.integers(0, 12, n)], dtype=object)
    complaints = pd.DataFrame(
        {
            "complaint_id": ids,
            "severity": rng.choice(np.array(SEVERITIES, dtype=object), n),
            "tier": np.array(["key_account", None], dtype=object)[(rng.random(n) >= 0.1) * 1],
            "calendar": owners,
        }
    )
    created = now - rng.integers(60, 30 * 86400, n)
    span = now - created
    cols: list[tuple[np.ndarray, str, np.ndarray]] = [(ids, "created", created)]
    responded = rng.random(n) < 0.6
    t_resp = created + (span * rng.uniform(0.05, 0.3, n)).astype(np.int64)
    cols.append((ids[responded], "responded", t_resp[responded]))
    paused = responded & (rng.random(n) < 0.3)
    t_wait = t_resp + (span * 0.1).astype(np.int64)
    cols.append((ids[paused], "waiting_on_client", t_wait[paused]))
    resumed = paused & (rng.random(n) < 0.5)
    t_resume = t_wait + (span * 0.2).astype(np.int64)
    cols.append((ids[resumed], "resumed", t_resume[resumed]))
    reopened = responded & ~paused & (rng.random(n) < 0.1)
    t_res = t_resp + (span * 0.2).astype(np.int64)
    cols.append((ids[reopened], "resolved", t_res[reopened]))
    cols.append(
        (ids[reopened], "reopened", t_res[reopened] + (span * 0.1).astype(np.int64)[reopened])
    )
    events = pd.DataFrame(
        {
            "complaint_id": np.concatenate([c[0] for c in cols]),
            "kind": np.concatenate([np.full(c[0].size, c[1], dtype=object) for c in cols]),
            "at": pd.to_datetime(np.concatenate([c[2] for c in cols]), unit="s", utc=True),
        }
    )
    return complaints, events, pd.Series(owners, index=complaints.index)


def run(n: int) -> dict[str, float | int]:
    """Seconds and rows/s for one pure escalation pass over n open complaints."""
    team, policy = bench_team(), bench_policy()
    complaints, events, owners = synthetic(n)
    calendars = team_calendars(team, policy)
    # Interval tables are built once per process in production too; warm them outside the clock.
    evaluate_clocks(
        complaints.head(100), events[events.complaint_id < 100], policy, calendars, AS_OF
    )
    started = time.perf_counter()
    clocks = evaluate_clocks(complaints, events, policy, calendars, AS_OF)
    t_clock = time.perf_counter()
    escalations = decide_escalations(clocks, owners, policy, team, AS_OF)
    t_esc = time.perf_counter()
    assignments = pd.DataFrame(
        {"complaint_id": complaints.complaint_id, "owner_id": owners, "assignee_id": owners}
    )
    handovers = plan_handovers(assignments, team, AS_OF)
    finished = time.perf_counter()
    seconds = finished - started
    return {
        "n": n,
        "events": len(events),
        "seconds": round(seconds, 3),
        "rows_per_second": round(n / seconds),
        "clock_seconds": round(t_clock - started, 3),
        "escalation_seconds": round(t_esc - t_clock, 3),
        "handover_seconds": round(finished - t_esc, 3),
        "escalations_due": len(escalations),
        "handovers": len(handovers),
    }


def seed_database(n: int) -> None:
    """Store the synthetic batch as complaints + events in the configured database."""
    from connectors.database import complaints_store, ingest_store
    from connectors.database.complaints_models import Complaint, ComplaintEvent
    from connectors.database.engine import session_scope
    from connectors.database.migrate import upgrade

    upgrade()
    complaints, events, owners = synthetic(n)
    created = events[events.kind == "created"].set_index("complaint_id")["at"]
    rows = [
        {
            "id": int(i) + 1,
            "source": "import",
            "severity": sev,
            "tier": tier,
            "owner_id": owner,
            "assignee_id": owner,
            "status": "open",
            "created_at": created[i].to_pydatetime().replace(tzinfo=None),
        }
        for i, sev, tier, owner in zip(
            complaints.complaint_id, complaints.severity, complaints.tier, owners, strict=True
        )
    ]
    # The synthetic "reopened" histories end open; pauses leave some waiting.
    event_rows = [
        {"complaint_id": int(c) + 1, "kind": k, "at": t.to_pydatetime().replace(tzinfo=None)}
        for c, k, t in zip(events.complaint_id, events.kind, events["at"], strict=True)
    ]
    with session_scope() as s:
        ingest_store.insert_rows(s, Complaint, rows)
        ingest_store.insert_rows(s, ComplaintEvent, event_rows)
        complaints_store.set_state(s, complaints_store.ROUND_ROBIN_KEY, "0")


def run_with_database(n: int, workdir: str) -> dict[str, float | int]:
    """The `escalate-complaints` unit of work on SQLite: load, clocks, escalations, cache,
    hand-overs, commit; cold (every escalation new), a rerun at the same ``as_of`` (nothing
    new) and the next 15-minute tick. Notifications off: they are IO-bound and per row."""
    import os
    from datetime import timedelta
    from pathlib import Path

    import yaml

    from tasks.complaints.pipeline import evaluate_escalations
    from tasks.complaints.policies import clear_caches, get_complaint_policies

    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "team.yaml").write_text(yaml.safe_dump(bench_team().model_dump(mode="json")))
    (root / "sla.yaml").write_text(yaml.safe_dump(bench_policy().model_dump(mode="json")))
    os.environ.update(
        {
            "ACCOUNTFLOW_DATA_DIR": str(root / "data"),
            "ACCOUNTFLOW_COMPLAINTS_TEAM_FILE": str(root / "team.yaml"),
            "ACCOUNTFLOW_COMPLAINTS_SLA_FILE": str(root / "sla.yaml"),
            "ACCOUNTFLOW_COMPLAINTS_EMAIL": "off",
        }
    )
    os.environ.pop("ACCOUNTFLOW_DATABASE_URL", None)
    os.environ.pop("ACCOUNTFLOW_WEBHOOK_URL", None)
    clear_caches()
    started = time.perf_counter()
    seed_database(n)
    seeded = time.perf_counter() - started
    get_complaint_policies()  # calendars are built once per worker process
    out: dict[str, float | int] = {"n": n, "seed_seconds": round(seeded, 2)}
    for label, as_of in (
        ("cold", AS_OF),
        ("rerun", AS_OF),
        ("next_tick", AS_OF + timedelta(minutes=15)),
    ):
        t0 = time.perf_counter()
        summary = evaluate_escalations(as_of)
        out[f"{label}_seconds"] = round(time.perf_counter() - t0, 3)
        out[f"{label}_new_escalations"] = summary.new_escalations
        out[f"{label}_handovers"] = summary.handovers
    out["evaluated"] = summary.evaluated
    return out


if __name__ == "__main__":
    import tempfile

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    size = int(args[0]) if args else 100_000
    result: dict[str, object] = {"pure": run(size)}
    if "--db" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            result["sqlite"] = run_with_database(size, tmp)
    print(json.dumps(result, indent=2))
