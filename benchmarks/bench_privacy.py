"""Time `privacy export` and `privacy erase` of one person in a database of N contacts.

Builds a migrated database (SQLite under benchmarks/.data/, or a PostgreSQL URL) holding
N contacts, a source row, a lawful basis and an identifier each, an inbound message and a
suppression for one contact in ten, then exports and erases ``--people`` random contacts
one at a time and prints JSON with each figure. An erasure includes the scan of the data
dir; the scan of Prefect artifacts only with ``--artifacts``. The generated rows are
set-based inserts, so a million contacts build in minutes, not hours.

    python -m benchmarks.bench_privacy --contacts 1000000 [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

from sqlalchemy import text

DATA = Path(__file__).resolve().parent / ".data"
CHUNK = 50_000


def _build(contacts: int) -> None:
    from connectors.database.engine import get_engine

    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO import_batches (id, source, started_at) VALUES (1, 'files', :now)"),
            {"now": "2026-12-01 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO source_files (id, batch_id, name, path, sha256, size_bytes,"
                " rows_in, status, ingested_at) VALUES (1, 1, 'bench.csv', 'bench.csv', 'x',"
                " 0, :n, 'ingested', :now)"
            ),
            {"n": contacts, "now": "2026-12-01 00:00:00"},
        )
    for start in range(1, contacts + 1, CHUNK):
        ids = range(start, min(start + CHUNK, contacts + 1))
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO contacts (id, first_name, last_name, full_name, email,"
                    " email_domain, is_free_mail, phone, job_title, created_at, updated_at)"
                    " VALUES (:id, 'Nome', :last, :full, :email, 'client.example', false,"
                    " :phone, 'Comprador', '2026-12-01', '2026-12-01')"
                ),
                [
                    {"id": i, "last": f"S{i}", "full": f"Nome S{i}",
                     "email": f"p{i}@client.example", "phone": f"+5511{i:09d}"}
                    for i in ids
                ],
            )  # fmt: skip
            conn.execute(
                text(
                    "INSERT INTO source_rows (id, file_id, row_number, raw, disposition,"
                    " contact_id) VALUES (:id, 1, :id, :raw, 'accepted', :id)"
                ),
                [{"id": i, "raw": json.dumps({"email": f"p{i}@client.example"})} for i in ids],
            )
            conn.execute(
                text(
                    "INSERT INTO contact_identifiers (contact_id, kind, value, created_at)"
                    " VALUES (:id, 'email', :v, '2026-12-01')"
                ),
                [{"id": i, "v": f"p{i}.old@client.example"} for i in ids],
            )
            conn.execute(
                text(
                    "INSERT INTO contact_sources (contact_id, lawful_basis, basis_rule,"
                    " source_kind, source_event, source_file, source_row_id, source_row_number,"
                    " recorded_at, updated_at) VALUES (:id, 'legitimate_interest',"
                    " 'source:exhibition', 'exhibition', 'Bench', 'bench.csv', :id, :id,"
                    " '2026-12-01', '2026-12-01')"
                ),
                [{"id": i} for i in ids],
            )
            tenth = [i for i in ids if i % 10 == 0]
            if tenth:
                conn.execute(
                    text(
                        "INSERT INTO inbound_messages (source, mailbox, uidvalidity, uid, sha256,"
                        " size, from_address, subject, received_at, label, oversize,"
                        " ingested_at) VALUES (:src, 'INBOX', 1, :uid, :sha, 100, :a,"
                        " 'Pedido', '2026-12-01', 'lead', false, '2026-12-01')"
                    ),
                    [
                        {
                            "src": f"INBOX:{i}",
                            "uid": i,
                            "sha": f"{i:064d}",
                            "a": f"p{i}@client.example",
                        }
                        for i in tenth
                    ],
                )
                conn.execute(
                    text(
                        "INSERT INTO suppressions (channel, address, reason, source,"
                        " created_at) VALUES ('email', :a, 'opt_out', 'token', '2026-12-01')"
                    ),
                    [{"a": f"p{i}@client.example"} for i in tenth],
                )
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--reuse", action="store_true", help="Keep a database built before.")
    parser.add_argument("--seed", type=int, default=25)
    parser.add_argument(
        "--artifacts",
        action="store_true",
        help="Also scan and delete Prefect artifacts naming the person (needs a Prefect API).",
    )
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    os.environ["ACCOUNTFLOW_DATA_DIR"] = str(DATA / f"privacy-{args.contacts}")
    if args.database_url:
        os.environ["ACCOUNTFLOW_DATABASE_URL"] = args.database_url
    elif not args.reuse:
        db = DATA / f"privacy-{args.contacts}" / "accountflow.db"
        db.unlink(missing_ok=True)
        db.parent.mkdir(parents=True, exist_ok=True)
    from connectors.database.migrate import upgrade
    from tasks.governance.privacy import erase_person, export_person

    started = time.perf_counter()
    upgrade()  # on a database built before: the new migrations, backfills included
    upgrade_s = time.perf_counter() - started
    started = time.perf_counter()
    if not args.reuse:
        _build(args.contacts)
    build_s = time.perf_counter() - started
    people = random.Random(args.seed).sample(range(1, args.contacts + 1), args.people)
    exports, erasures = [], []
    for person in people:
        t0 = time.perf_counter()
        exported = export_person(f"p{person}@client.example")
        exports.append(time.perf_counter() - t0)
        assert exported["contact_id"] == person
        t0 = time.perf_counter()
        erase_person(str(person), artifacts=args.artifacts)
        erasures.append(time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "contacts": args.contacts,
                "database": "postgresql" if args.database_url else "sqlite",
                "upgrade_s": round(upgrade_s, 1),
                "build_s": round(build_s, 1),
                "export_s": [round(x, 3) for x in exports],
                "erase_s": [round(x, 3) for x in erasures],
                "export_median_s": round(statistics.median(exports), 3),
                "erase_median_s": round(statistics.median(erasures), 3),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
