"""Inbox throughput: read + parse + classify ``n`` messages from a Maildir, then store them.

The issue's target is 500 messages/s including storage. ``core`` measures the part before
storage so the budget left for the database is visible; ``stored`` runs the same code as
the `ingest-inbox` flow's folder task (batches, one transaction each, senders through the
exhibition entity resolution) against a fresh SQLite database, or PostgreSQL with
``--database-url``. ``--imap N`` also fetches and stores N messages from a throwaway dovecot
in one run (needs dovecot-imapd and root, like the tests). Peak memory is the traced Python
heap during a second, untimed pass (tracemalloc slows the code it watches).
Run: ``.venv/bin/python -m benchmarks.bench_inbox 10000 [--database-url URL] [--imap 1000]``.
"""

from __future__ import annotations

import argparse
import json
import mailbox
import os
import resource
import tempfile
import time
import tracemalloc
from collections import Counter
from itertools import islice
from pathlib import Path

from connectors.mailbox import MaildirReader
from tasks.inbox.classification import MailClassifier
from tasks.inbox.parsing import oversize_record, parse_message

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mail"


def _samples() -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIXTURES.rglob("*.eml"))]


def _pass(directory: Path, classifier: MailClassifier, limit: int | None = None) -> Counter[str]:
    counts: Counter[str] = Counter()
    for record in islice(MaildirReader(directory).messages(), limit):
        parsed = (
            parse_message(record.raw) if record.raw is not None else oversize_record(record.size)
        )
        counts[classifier.classify(parsed).label.value] += 1
    return counts


def _core(n: int) -> dict[str, object]:
    """Generate ``n`` messages (cycling the labelled fixtures) and time the inbox core."""
    samples = _samples()
    classifier = MailClassifier.default()
    with tempfile.TemporaryDirectory(prefix="bench-inbox-") as tmp:
        mailbox.Maildir(Path(tmp) / "Maildir", create=True)
        new = Path(tmp) / "Maildir" / "new"
        for i in range(n):  # direct writes: mailbox.Maildir.add is slow and not under test
            (new / f"{i:08d}.bench:2,").write_bytes(samples[i % len(samples)])
        start, cpu_start = time.perf_counter(), time.process_time()
        counts = _pass(Path(tmp) / "Maildir", classifier)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start  # wall time is noisy on a shared machine
        tracemalloc.start()
        # The pipeline streams, so the peak is reached early; 2,000 keeps the pass short.
        _pass(Path(tmp) / "Maildir", classifier, limit=2_000)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "messages": n,
        "seconds": round(elapsed, 3),
        "messages_per_second": round(n / elapsed, 1),
        "cpu_seconds": round(cpu, 3),
        "messages_per_cpu_second": round(n / cpu, 1),
        "peak_traced_mb": round(peak / 1e6, 2),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "classes": dict(sorted(counts.items())),
    }


def _use_database(data_dir: Path, url: str | None) -> None:
    """Point settings at a fresh data dir (and database) and build the schema."""
    from config.policies import get_ingest_policies
    from config.settings import get_settings
    from connectors.database.engine import reset_engine
    from connectors.database.migrate import upgrade

    os.environ["ACCOUNTFLOW_DATA_DIR"] = str(data_dir)
    if url:
        os.environ["ACCOUNTFLOW_DATABASE_URL"] = url
    reset_engine()
    get_settings.cache_clear()
    get_ingest_policies.cache_clear()
    upgrade()


def _new_batch(kind: str) -> int:
    from connectors.database import ingest_store
    from connectors.database.engine import session_scope

    with session_scope() as s:
        return ingest_store.create_batch(s, "inbox", kind)


def _stored(n: int, batch_size: int, url: str | None) -> dict[str, object]:
    """Read, parse, classify and store ``n`` messages the way the flow's folder task does."""
    from tasks.inbox.pipeline import ingest_folder

    samples = _samples()
    with tempfile.TemporaryDirectory(prefix="bench-inbox-db-") as tmp:
        _use_database(Path(tmp) / "data", url)
        box = Path(tmp) / "Maildir"
        mailbox.Maildir(box, create=True)
        for i in range(n):
            (box / "new" / f"{i:08d}.bench:2,").write_bytes(samples[i % len(samples)])
        batch = _new_batch("maildir")
        start, cpu_start = time.perf_counter(), time.process_time()
        counts = ingest_folder.fn(batch, "maildir", str(box), batch_size)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        start = time.perf_counter()
        again = ingest_folder.fn(_new_batch("maildir"), "maildir", str(box), batch_size)
        rerun = time.perf_counter() - start
    return {
        "messages": n,
        "batch_size": batch_size,
        "database": "postgresql" if url else "sqlite",
        "seconds": round(elapsed, 3),
        "messages_per_second": round(n / elapsed, 1),
        "cpu_seconds": round(cpu, 3),
        "messages_per_cpu_second": round(n / cpu, 1),
        "stored": counts.stored,
        "new_contacts": counts.new_contacts,
        "new_complaints": counts.new_complaints,
        "suppressions_added": counts.suppressions_added,
        "rerun_seconds": round(rerun, 3),
        "rerun_stored": again.stored,
    }


def _imap(n: int, batch_size: int) -> dict[str, object]:
    """Fetch and store ``n`` messages from a local dovecot in one run of the IMAP task."""
    from config.settings import get_settings
    from tasks.inbox.pipeline import ingest_imap
    from tests.peers.dovecot import run_dovecot

    samples = [s for s in _samples() if s.strip()]
    with (
        tempfile.TemporaryDirectory(prefix="bench-imap-") as tmp,
        tempfile.TemporaryDirectory(prefix="bench-dovecot-") as root,
        run_dovecot(Path(root)) as server,
    ):
        server.deliver([samples[i % len(samples)] for i in range(n)])
        _use_database(Path(tmp) / "data", None)
        for key, value in {
            "HOST": server.host, "PORT": str(server.port), "USERNAME": server.username,
            "PASSWORD": server.password, "SECURITY": "plain",
        }.items():  # fmt: skip
            os.environ[f"ACCOUNTFLOW_IMAP__{key}"] = value
        get_settings.cache_clear()
        start = time.perf_counter()
        counts = ingest_imap.fn(_new_batch("imap"), batch_size)
        elapsed = time.perf_counter() - start
        again = ingest_imap.fn(_new_batch("imap"), batch_size)
    return {
        "messages": n,
        "stored": counts.stored,
        "seconds": round(elapsed, 3),
        "messages_per_second": round(n / elapsed, 1),
        "rerun_fetched": again.messages_in,
    }


def run(n: int, batch_size: int = 2000, url: str | None = None, imap: int = 0) -> dict[str, object]:
    out: dict[str, object] = {"core": _core(n), "stored": _stored(n, batch_size, url)}
    if imap:
        out["imap"] = _imap(imap, 250)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=10_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--imap", type=int, default=0, help="also fetch N messages over IMAP")
    args = parser.parse_args()
    print(json.dumps(run(args.n, args.batch_size, args.database_url, args.imap), indent=2))
