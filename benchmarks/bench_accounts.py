"""How long the accounts' units of work take on SQLite: the obligations watch and health.

``watch [n]``: `watch-obligations`' unit of work over n obligations.

Builds a temp SQLite database with n/10 companies and contracts, n obligations (deliveries,
reports, price reviews, service levels, renewals, notices) due from 60 days before to 120
days after ``as_of`` and owned by the four managers of ``config/team.yaml``, and n/3
fulfilment events, then times ``tasks.accounts.pipeline.evaluate_watch`` (read, evaluate on
the owners' calendars, store notices, write changed states and next checks): the first run
(every state is new), a rerun at the same ``as_of`` (must store no notice), the next hour,
the next day (the obligations whose deadlines passed at midnight), and the next day again
after a calendar edit (every open obligation judged again). Email and webhook are off, so
the figure is the watch, not SMTP. Run:
``python -m benchmarks.bench_accounts watch [n]``.

``health [companies]``: `score-accounts`' unit of work (signals read in SQL, health, reasons,
band changes, next actions, all stored) over that many companies with ten contacts each,
a tenth of them with inbound messages, sent outreach, complaints and a contract with a late
delivery; timed for a first run, and for a second run 30 days later that sees the history
(trend, band changes). Run: ``python -m benchmarks.bench_accounts health [companies]``.
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
    from connectors.database.accounts_store import refresh_event_totals
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
        refresh_event_totals(s, None)  # as storing events through the store keeps them


def watch(n: int) -> dict[str, object]:
    from tasks.accounts.pipeline import evaluate_watch

    started = time.perf_counter()
    build(n)
    built = time.perf_counter() - started
    from connectors.database import complaints_store
    from connectors.database.engine import session_scope
    from tasks.accounts.pipeline import FINGERPRINT_KEY

    def edit_calendars() -> None:
        # The team's calendars or the warnings changed: every open obligation is judged
        # again (as each run did before the next checks were stored), the worst hourly run.
        with session_scope() as s:
            complaints_store.set_state(s, FINGERPRINT_KEY, "calendars edited")

    runs = {}
    for name, at in (
        ("first", AS_OF),
        ("rerun_same_as_of", AS_OF),
        ("next_hour", AS_OF + timedelta(hours=1)),
        ("next_day", AS_OF + timedelta(days=1)),
        ("after_calendar_edit", AS_OF + timedelta(days=1)),
    ):
        if name == "after_calendar_edit":
            edit_calendars()
        t, cpu = time.perf_counter(), time.process_time()
        summary = evaluate_watch(at)
        runs[name] = {
            "seconds": round(time.perf_counter() - t, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2),
            "watched": summary.watched,
            "changed": summary.changed,
            "new_notices": summary.new_notices,
            "states": summary.states,
        }
    return {"obligations": n, "build_seconds": round(built, 1), "runs": runs}


def build_health(companies: int) -> None:
    from connectors.database.accounts_models import Contract, Obligation
    from connectors.database.complaints_models import Complaint
    from connectors.database.engine import session_scope
    from connectors.database.inbox_models import InboundMessage
    from connectors.database.ingest_models import Company, Contact
    from connectors.database.ingest_store import bulk_insert
    from connectors.database.migrate import upgrade
    from connectors.database.outreach_models import OutboxItem

    upgrade()
    rng = np.random.default_rng(7)
    now = pd.Timestamp(AS_OF.replace(tzinfo=None))
    ids = np.arange(1, companies + 1)
    owners = np.array(OWNERS, dtype=object)[rng.integers(0, len(OWNERS), companies)]
    n = companies * 10
    cid = np.arange(1, n + 1)
    company_of = (cid - 1) // 10 + 1
    bands = np.array(["A", "B", "C", "D", None], dtype=object)[rng.integers(0, 5, n)]
    rating = np.array(["Hot", "Warm", None, None], dtype=object)[rng.integers(0, 4, n)]
    seen = now - pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    m = companies  # a message, an outbox row and (for a tenth) a complaint per company
    who = rng.choice(cid, m, replace=False)
    with session_scope() as s:
        bulk_insert(
            s,
            Company,
            pd.DataFrame(
                {
                    "id": ids,
                    "name": [f"Company {i}" for i in ids],
                    "name_key": [f"company {i}" for i in ids],
                    "owner_id": owners,
                }
            ),
        )
        bulk_insert(
            s,
            Contact,
            pd.DataFrame(
                {
                    "id": cid,
                    "company_id": company_of,
                    "band": bands,
                    "lead_rating": rating,
                    "last_seen_at": seen,
                }
            ),
        )
        bulk_insert(
            s,
            InboundMessage,
            pd.DataFrame(
                {
                    "id": np.arange(1, m + 1),
                    "source": [f"bench:{i}" for i in range(m)],
                    "size": 1000,
                    "label": np.array(["lead", "auto_reply", "complaint"], dtype=object)[
                        rng.integers(0, 3, m)
                    ],
                    "received_at": now - pd.to_timedelta(rng.integers(0, 200, m), unit="D"),
                    "contact_id": who,
                }
            ),
        )
        bulk_insert(
            s,
            OutboxItem,
            pd.DataFrame(
                {
                    "id": np.arange(1, m + 1),
                    "idempotency_key": [f"k{i}" for i in range(m)],
                    "campaign": "bench",
                    "step": 1,
                    "channel": "email",
                    "contact_id": rng.choice(cid, m),
                    "message_id": [f"<m{i}@bench>" for i in range(m)],
                    "language": "pt",
                    "recipient": "x@example.com",
                    "status": np.array(
                        ["sent", "sent", "failed_permanent", "planned"], dtype=object
                    )[rng.integers(0, 4, m)],
                    "due_at": now - pd.to_timedelta(rng.integers(0, 150, m), unit="D"),
                }
            ),
        )
        k = companies // 10
        bulk_insert(
            s,
            Complaint,
            pd.DataFrame(
                {
                    "id": np.arange(1, k + 1),
                    "source": "bench",
                    "company_id": rng.choice(ids, k, replace=False),
                    "severity": np.array(["low", "medium", "high", "critical"], dtype=object)[
                        rng.integers(0, 4, k)
                    ],
                    "status": "open",
                    "created_at": now - pd.to_timedelta(rng.integers(0, 60, k), unit="D"),
                }
            ),
        )
        with_contract = rng.choice(ids, k, replace=False)
        bulk_insert(
            s,
            Contract,
            pd.DataFrame(
                {
                    "id": np.arange(1, k + 1),
                    "reference": [f"CT-H-{i}" for i in range(k)],
                    "company_id": with_contract,
                    "owner_id": owners[with_contract - 1],
                    "start_date": [now.date() - timedelta(days=300)] * k,
                    "renewal_date": [now.date() + timedelta(days=45)] * k,
                    "source": "bench",
                }
            ),
        )
        bulk_insert(
            s,
            Obligation,
            pd.DataFrame(
                {
                    "id": np.arange(1, k + 1),
                    "contract_id": np.arange(1, k + 1),
                    "ref": "kits",
                    "kind": "delivery",
                    "item": "kits",
                    "quantity": 5.0,
                    "due_date": [now.date() - timedelta(days=3)] * k,
                    "owner_id": owners[with_contract - 1],
                    "state": np.where(rng.random(k) < 0.5, "late", "on_track"),
                }
            ),
        )


def health(companies: int) -> dict[str, object]:
    from tasks.accounts.pipeline import score_accounts_at

    started = time.perf_counter()
    build_health(companies)
    built = time.perf_counter() - started
    runs = {}
    for name, at in (("first", AS_OF - timedelta(days=30)), ("thirty_days_later", AS_OF)):
        t = time.perf_counter()
        summary = score_accounts_at(at)
        runs[name] = {
            "seconds": round(time.perf_counter() - t, 2),
            "companies": summary.companies,
            "bands": summary.bands,
            "band_changes": summary.band_changes,
            "actions_by_rule": summary.actions_by_rule,
        }
    return {"companies": companies, "contacts": companies * 10, "build_seconds": round(built, 1),
            "runs": runs}  # fmt: skip


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else "watch"
    n = int(argv[1]) if len(argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ACCOUNTFLOW_DATA_DIR"] = tmp
        os.environ.pop("ACCOUNTFLOW_DATABASE_URL", None)
        os.environ["ACCOUNTFLOW_COMPLAINTS_EMAIL"] = "off"
        if mode == "watch":
            print(json.dumps(watch(n), indent=1))
        elif mode == "health":
            print(json.dumps(health(int(argv[1]) if len(argv) > 1 else 100_000), indent=1))
        else:
            raise SystemExit(f"unknown mode {mode!r}; expected watch or health")


if __name__ == "__main__":
    main(sys.argv[1:])
