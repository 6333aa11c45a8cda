"""How long `watch-obligations`' unit of work takes over n obligations on SQLite.

Builds a temp SQLite database with n/10 companies and contracts, n obligations (deliveries,
reports, price reviews, service levels, renewals, notices) due from 60 days before to 120
days after ``as_of`` and owned by the four managers of ``config/team.yaml``, and n/3
fulfilment events, then times ``tasks.accounts.pipeline.evaluate_watch`` (read, evaluate on
the owners' calendars, store notices, write changed states) three times: the first run
(every state is new), a rerun at the same ``as_of`` (must store no notice) and the next
hour. Email and webhook are off, so the figure is the watch, not SMTP. Run:
``python -m benchmarks.bench_accounts watch [n]``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

AS_OF = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
OWNERS = ["helena", "ana", "bruno", "clara"]
KINDS = np.array(
    ["delivery", "delivery", "delivery", "report", "price_review", "service_level", "renewal"],
    dtype=object,
)


def build(n: int) -> None:
    from connectors.database.accounts_models import Contract, Obligation, ObligationEvent
    from connectors.database.engine import session_scope
    from connectors.database.ingest_models import Company
    from connectors.database.ingest_store import bulk_insert
    from connectors.database.migrate import upgrade

    upgrade()
    rng = np.random.default_rng(23)
    contracts = max(1, n // 10)
    ids = np.arange(1, contracts + 1)
    now = AS_OF.replace(tzinfo=None)
    companies = pd.DataFrame(
        {
            "id": ids,
            "name": [f"Company {i}" for i in ids],
            "name_key": [f"company {i}" for i in ids],
        }
    )
    owner = np.array(OWNERS, dtype=object)[rng.integers(0, len(OWNERS), contracts)]
    contract_frame = pd.DataFrame(
        {
            "id": ids,
            "reference": [f"CT-B-{i}" for i in ids],
            "company_id": ids,
            "owner_id": owner,
            "start_date": [now.date() - timedelta(days=365)] * contracts,
            "source": "bench",
        }
    )
    oid = np.arange(1, n + 1)
    contract_of = (oid - 1) // 10 + 1
    kind = KINDS[rng.integers(0, len(KINDS), n)]
    due = pd.Timestamp(now.date()) + pd.to_timedelta(rng.integers(-60, 120, n), unit="D")
    obligations = pd.DataFrame(
        {
            "id": oid,
            "contract_id": contract_of,
            "ref": [f"o{i}" for i in oid],
            "kind": kind,
            "item": np.where(kind == "delivery", "pallets", None),
            "quantity": np.where(kind == "delivery", rng.integers(1, 100, n).astype(float), np.nan),
            "metric": np.where(kind == "service_level", "response", None),
            "target": np.where(kind == "delivery", None, "as agreed"),
            "due_date": due.date,
            "derived": kind == "renewal",
            "owner_id": owner[contract_of - 1],
        }
    )
    m = n // 3
    picked = rng.choice(oid, m, replace=False)
    picked_kind = kind[picked - 1]
    ev_kind = np.where(
        picked_kind == "delivery",
        "delivered",
        np.where(picked_kind == "service_level", "sla_met", "completed"),
    )
    events = pd.DataFrame(
        {
            "id": np.arange(1, m + 1),
            "external_ref": [f"e{i}" for i in range(m)],
            "obligation_id": picked,
            "kind": ev_kind,
            "at": pd.Timestamp(now) - pd.to_timedelta(rng.integers(0, 90 * 24, m), unit="h"),
            "source": "bench",
        }
    )
    with session_scope() as s:
        bulk_insert(s, Company, companies)
        bulk_insert(s, Contract, contract_frame)
        bulk_insert(s, Obligation, obligations)
        bulk_insert(s, ObligationEvent, events)


def watch(n: int) -> dict[str, object]:
    from tasks.accounts.pipeline import evaluate_watch

    started = time.perf_counter()
    build(n)
    built = time.perf_counter() - started
    runs = {}
    for name, at in (
        ("first", AS_OF),
        ("rerun_same_as_of", AS_OF),
        ("next_hour", AS_OF + timedelta(hours=1)),
    ):
        t = time.perf_counter()
        summary = evaluate_watch(at)
        runs[name] = {
            "seconds": round(time.perf_counter() - t, 2),
            "watched": summary.watched,
            "changed": summary.changed,
            "new_notices": summary.new_notices,
            "states": summary.states,
        }
    return {"obligations": n, "build_seconds": round(built, 1), "runs": runs}


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else "watch"
    n = int(argv[1]) if len(argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ACCOUNTFLOW_DATA_DIR"] = tmp
        os.environ.pop("ACCOUNTFLOW_DATABASE_URL", None)
        os.environ["ACCOUNTFLOW_COMPLAINTS_EMAIL"] = "off"
        if mode != "watch":
            raise SystemExit(f"unknown mode {mode!r}; expected watch")
        print(json.dumps(watch(n), indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
